//! # pulse-testkit
//!
//! Test fixtures for the pulse workspace, kept out of the published crates:
//! real servers for integration tests and a local fake Binance. Only
//! pulse's own tests depend on it (as a dev-dependency); it is not
//! published.
//!
//! pulse's tests talk to a real ClickHouse and a real Kafka-compatible
//! broker (tansu). `scripts/services.sh up` starts shared instances and
//! `scripts/services.sh env` prints the variables this crate reads; see
//! `docs/testing.md`.
//!
//! ## Rules every integration test follows
//! - A test that needs a server asks for it here and gets `None` when the
//!   variable naming it is unset: it prints why to stderr and returns early.
//! - With `CI=true` a missing variable panics instead, so CI cannot pass by
//!   skipping.
//! - Each test gets a fresh random topic or database, so tests run in
//!   parallel against the same shared server.
//! - Nothing sleeps a fixed time: [`wait_until`] polls a condition against a
//!   deadline.
//!
//! ## Layout
//! - [`fake_binance`]: a local fake Binance USD-M (WebSocket and REST) with
//!   fault injection ([`fake_binance::FakeBinance`]), and checks of what a
//!   client delivered against its tape.
//! - `env`: variable names, the skip-or-panic rule, [`data_dir`], [`unique_name`].
//! - `services`: handles on the shared servers: [`clickhouse()`], [`kafka()`],
//!   [`durable_kafka()`].
//! - `clickhouse_process`, `tansu_process`: private servers a test can stop,
//!   kill and restart ([`ClickHouseProcess`], [`TansuProcess`]).
//! - `server`: the child-process plumbing both launchers share.
//! - `silent_proxy`: [`SilentProxy`], whose connections can go silently dead.
//! - `wait`: [`wait_until`].
//! - `text`: opening a capture as text lines, plain or gzip.
//!
//! The ClickHouse config templates live next to `src/`, in
//! `pulse-testkit/clickhouse/` (`config.xml`, `users.xml`), shared with
//! `scripts/services.sh`.
//!
//! Panicking is this crate's failure mode: a harness that cannot set up a
//! server fails the test that asked for it, with the server's log attached.

pub mod fake_binance;

mod clickhouse_process;
mod env;
mod server;
mod services;
mod silent_proxy;
mod tansu_process;
mod text;
mod wait;

pub use clickhouse_process::{ClickHouseProcess, PASSWORD_USER};
pub use env::{
    CLICKHOUSE_SERVER_BIN_VAR, CLICKHOUSE_URL_VAR, DATA_DIR_VAR, KAFKA_BROKERS_VAR,
    KAFKA_DURABLE_BROKERS_VAR, TANSU_BIN_VAR, data_dir, is_ci, require_env, skip, unique_name,
};
pub use services::{
    TestClickHouse, TestKafka, clickhouse, clickhouse_client, durable_kafka, kafka, kafka_client,
};
pub use silent_proxy::SilentProxy;
pub use tansu_process::TansuProcess;
pub use wait::wait_until;
