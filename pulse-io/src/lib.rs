//! # pulse-io
//!
//! The adapters that connect [`pulse_core`] to the outside world.
//!
//! ## Layout
//! - [`source`]: the [`TradeSource`] and [`Source`] traits.
//! - [`sink`]: the [`WindowSink`], [`TradeSink`] and [`CheckpointStore`] traits.
//! - [`driver`]: the one [`Pipeline`] loop joining a [`Source`], a [`Stage`]
//!   (pulse-core's aggregator, or the consumer's partitions) and sinks.
//! - [`metrics`]: Prometheus metrics shared by every part.
//! - [`retry`]: backoff with jitter.
//! - [`csv_sink`]: the CSV export of windows ([`CsvSink`]).
//! - [`row_version`](mod@row_version): the `version` column of a stored window.
//! - [`terminal`]: one printed line per window ([`TerminalSink`]).
//! - [`time`]: the wall clock and RFC 3339 times.
//! - [`binance`] (feature `binance`): the live Binance USD-M source with
//!   reconnects, a stall watchdog and REST backfill ([`BinanceSource`]).
//! - [`replay`] (feature `replay`): JSONL captures and dump CSV/zip files
//!   ([`open_replay`]).
//! - [`kafka`] (feature `kafka`): the trade producer ([`kafka::KafkaTradeSink`]),
//!   the message schema and the partition reader.
//! - [`clickhouse`] (feature `clickhouse`): the `pulse_metrics` DDL, consumer
//!   positions and a batching window sink.
//! - [`consumer`] (features `kafka` + `clickhouse`): topic → windows →
//!   ClickHouse with exactly-once results across crashes.

// The consumer's fetch task nests rskafka's futures deeper than the
// default limit lets rustc lay them out with `kafka` + `clickhouse` alone.
#![recursion_limit = "256"]
// The layout above links every adapter; without its feature a link has
// nothing to point at.
#![cfg_attr(
    not(all(
        feature = "binance",
        feature = "replay",
        feature = "kafka",
        feature = "clickhouse"
    )),
    allow(rustdoc::broken_intra_doc_links)
)]

#[cfg(any(feature = "binance", feature = "clickhouse"))]
mod causes;
pub mod csv_sink;
pub mod driver;
pub mod metrics;
pub mod retry;
pub mod row_version;
pub mod sink;
pub mod source;
pub mod terminal;
pub mod time;

/// The attribute that implements this crate's async traits
/// ([`TradeSource`], [`WindowSink`], …), so a user needs no crate of their own for it.
pub use async_trait::async_trait;
pub use csv_sink::CsvSink;
pub use driver::{Outcome, Pipeline, PipelineError, PipelineSummary, Stage, TradeStage};
pub use metrics::{Metrics, SourceTotals};
pub use retry::RetryPolicy;
pub use row_version::row_version;
pub use sink::{Batching, CheckpointStore, SinkError, TradeSink, WindowSink};
pub use source::{Source, SourceError, TradeSource};
pub use terminal::TerminalSink;
pub use tokio_util::sync::CancellationToken;

#[cfg(feature = "binance")]
pub mod binance;
#[cfg(feature = "clickhouse")]
pub mod clickhouse;
#[cfg(all(feature = "kafka", feature = "clickhouse"))]
pub mod consumer;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "replay")]
pub mod replay;

#[cfg(feature = "binance")]
pub use binance::{BinanceConfig, BinanceSource};
#[cfg(feature = "replay")]
pub use replay::{ReplayOptions, ReplaySource, open_replay};

/// The README's examples run as doctests (the first replays a file).
#[cfg(all(doctest, feature = "replay"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
