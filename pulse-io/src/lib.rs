//! # pulse-io
//!
//! The adapters that connect [`pulse_core`] to the outside world.
//!
//! ## Layout
//! - [`source`]: the [`TradeSource`] trait.
//! - [`sink`]: the [`WindowSink`] and [`TradeSink`] traits.
//! - [`driver`]: the [`Pipeline`] loop joining a source, the aggregator and sinks.
//! - [`metrics`]: Prometheus metrics shared by every part.
//! - [`retry`]: backoff with jitter.

pub mod driver;
pub mod metrics;
pub mod retry;
pub mod sink;
pub mod source;

pub use driver::{Pipeline, PipelineError, PipelineSummary};
pub use metrics::Metrics;
pub use retry::RetryPolicy;
pub use sink::{SinkError, TradeSink, WindowSink};
pub use source::{SourceError, TradeSource};
pub use tokio_util::sync::CancellationToken;

#[cfg(feature = "testsupport")]
pub mod testsupport;
