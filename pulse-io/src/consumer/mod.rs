//! `pulse consume` as a library (features `kafka` + `clickhouse`): a topic
//! of trade messages → pulse-core windows → ClickHouse `pulse_metrics`,
//! with exactly-once results across crashes.
//!
//! rskafka has no consumer groups and no offset commits, so each partition's
//! position is stored in ClickHouse, in `pulse_consumer_positions`, right
//! after the windows it covers. A restart restores each symbol's clock and
//! re-reads from the oldest record still in an open window; windows that
//! were already stored are skipped, the others are rebuilt exactly. Windows
//! written twice are identical and collapse in the ReplacingMergeTree (read
//! with `FINAL`). The argument is spelled out in `partition.rs`.
//!
//! A position is only used once the partition is found to still hold the
//! last record it covers; otherwise (the topic was recreated, or the broker
//! lost its data) the partition is read again from its earliest record,
//! with a warning and `pulse_topic_resets_total`.
//!
//! Each partition has its own aggregator, so consumers given disjoint
//! partitions ([`PartitionSelection`]) together write the same table as one
//! consumer reading them all. A symbol must live in one partition (the
//! producer keys by symbol).
//!
//! ## Layout
//! - [`Consumer`], [`ConsumerConfig`], [`ConsumeSummary`], [`ConsumeError`]: the API.
//! - [`PartitionSelection`]: `--partitions 0,2` / `--instance 1/3`.
//! - `partition`: one partition's sans-IO state (aggregation, duplicates,
//!   positions); `stored_ids`: the ids of windows it let go.
//! - `partitions`: all of them as the pipeline's [`Stage`](crate::Stage),
//!   with positions as its checkpoint.
//! - `fetcher`, `topic`: a fetch task per partition, together the
//!   pipeline's [`Source`](crate::Source); partitions the topic gains are
//!   added while running.
//! - `identity`: whether a stored position still belongs to the topic
//!   (recreated, truncated, expired), by the hash of its last record.
//! - `positions`: positions saved after the windows they cover.
//! - `startup`: schema, broker, topic and stored positions, with retries.
//! - `run`: [`Consumer::run`], which assembles them on the one
//!   [`Pipeline`](crate::Pipeline) driver.

mod assignment;
mod config;
#[cfg(test)]
mod crash_tests;
mod error;
mod fetcher;
mod identity;
mod partition;
mod partitions;
mod positions;
mod record_path;
mod run;
mod startup;
mod stored_ids;
mod topic;

pub use assignment::{PartitionSelection, SelectionError};
pub use config::{ConsumeSummary, ConsumerConfig};
pub use error::ConsumeError;
pub use record_path::{RecordPath, RecordPathTotals};
pub use run::Consumer;
