//! Where results go: the [`WindowSink`], [`TradeSink`] and
//! [`CheckpointStore`] traits, and how a window sink wants its [`Batching`].

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use pulse_core::{Symbol, Trade, Window};

/// Why a sink could not take a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The store is unreachable or refused the write for now; the caller
    /// keeps the batch and retries.
    #[error("{sink} unavailable: {reason}")]
    Unavailable {
        /// Which sink.
        sink: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The write can never succeed (bad schema, bad credentials, ...).
    #[error("{sink} rejected the write: {reason}")]
    Rejected {
        /// Which sink.
        sink: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// A local file could not be written.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl SinkError {
    /// True when retrying the same batch later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SinkError::Unavailable { .. })
    }
}

/// How the [`Pipeline`](crate::Pipeline) batches windows for one sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batching {
    /// Least time between two writes; zero writes after every input batch.
    /// `None` writes only when the pipeline stores a checkpoint or stops.
    pub interval: Option<Duration>,
    /// Write at once, and hold the source back until written, when this
    /// many windows wait.
    pub max_pending: usize,
}

impl Batching {
    /// Every window as soon as it closes: terminals, files, dashboards.
    pub const IMMEDIATE: Batching = Batching {
        interval: Some(Duration::ZERO),
        max_pending: 100_000,
    };
}

impl Default for Batching {
    fn default() -> Self {
        Batching::IMMEDIATE
    }
}

/// Takes closed windows: a terminal, a CSV file, ClickHouse, a dashboard...
///
/// A sink only writes: the [`Pipeline`](crate::Pipeline) keeps each sink's
/// pending windows, batches them as [`batching`](Self::batching) asks,
/// and retries a failed write with backoff, counting each failure once.
#[async_trait]
pub trait WindowSink: Send {
    /// A short name for logs and metrics labels, e.g. `clickhouse`.
    fn name(&self) -> &'static str;

    /// How often the pipeline should write to this sink.
    fn batching(&self) -> Batching {
        Batching::IMMEDIATE
    }

    /// Stores a batch of windows. On a retryable error the caller keeps the
    /// batch and calls again with it (and possibly more) later.
    async fn write_windows(&mut self, windows: &[Window]) -> Result<(), SinkError>;

    /// Makes everything written so far durable. Called at shutdown.
    async fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Takes raw trades, e.g. the Kafka producer.
#[async_trait]
pub trait TradeSink: Send {
    /// A short name for logs and metrics labels, e.g. `kafka`.
    fn name(&self) -> &'static str;

    /// Accepts a batch of trades, in order. On a retryable error the caller
    /// keeps the batch and calls again with it.
    async fn write_trades(&mut self, trades: &[Trade]) -> Result<(), SinkError>;

    /// Records that every trade of each symbol before its watermark was
    /// accepted by [`write_trades`](Self::write_trades) already, for readers
    /// downstream (the Kafka producer writes progress markers). On a
    /// retryable error the caller calls again. Default: nothing to do.
    async fn write_watermarks(
        &mut self,
        watermarks: &BTreeMap<Symbol, i64>,
    ) -> Result<(), SinkError> {
        let _ = watermarks;
        Ok(())
    }

    /// Makes everything written so far durable. Called at shutdown.
    async fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Stores a pipeline stage's checkpoint once every window it covers is
/// written: `pulse consume` saves partition positions this way, so a
/// restart resumes exactly where the stored windows end.
#[async_trait]
pub trait CheckpointStore<C: Sync>: Send {
    /// A short name for logs and metrics labels, e.g. `clickhouse`.
    fn name(&self) -> &'static str;

    /// Saves `checkpoint`. On a retryable error the caller calls again.
    async fn save(&mut self, checkpoint: &C) -> Result<(), SinkError>;
}
