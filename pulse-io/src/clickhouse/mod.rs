//! ClickHouse (feature `clickhouse`): the `pulse_metrics` table, the
//! consumer positions next to it, and a batching [`WindowSink`](crate::WindowSink).
//!
//! Works with ClickHouse 18.16 (Debian) and current releases: the DDL avoids
//! newer types, and the client runs without the row validation 18.16 rejects.
//!
//! ## Layout
//! - [`ClickHouseConfig`]: server, database, table.
//! - [`schema_statements`], [`create_schema`]: the DDL from `pulse-io/sql/*.sql`.
//! - [`WindowRow`], [`row_version`], [`RowError`]: one `pulse_metrics` row,
//!   or why a window cannot be one.
//! - [`WindowStore`]: inserts and `FINAL` reads; `partitions` keeps each
//!   insert within the server's partitions-per-insert limit.
//! - [`PartitionPosition`]: consumer positions (`load_positions`, `save_positions`).
//! - [`ClickHouseWindowSink`]: the windows sink, batched by the pipeline.
//! - [`ClickHouseError`]: retryable vs fatal failures.

mod config;
mod durability;
mod error;
mod partitions;
mod positions;
mod row;
mod schema;
mod sink;
mod store;

pub use crate::row_version::row_version;
pub use config::{ClickHouseConfig, POSITIONS_TABLE};
pub use error::ClickHouseError;
pub use positions::PartitionPosition;
pub use row::{RowError, WindowRow};
pub use schema::{METRICS_DDL, POSITIONS_DDL, create_schema, schema_statements};
pub use sink::ClickHouseWindowSink;
pub use store::WindowStore;
