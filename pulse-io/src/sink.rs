//! Where results go: the [`WindowSink`] and [`TradeSink`] traits.

use async_trait::async_trait;
use pulse_core::{Trade, Window};

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

/// Takes closed windows: a terminal, a CSV file, ClickHouse, a dashboard...
#[async_trait]
pub trait WindowSink: Send {
    /// A short name for logs and metrics labels, e.g. `clickhouse`.
    fn name(&self) -> &'static str;

    /// Accepts a batch of windows. On a retryable error the caller keeps the
    /// batch and calls again with it.
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

    /// Makes everything written so far durable. Called at shutdown.
    async fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}
