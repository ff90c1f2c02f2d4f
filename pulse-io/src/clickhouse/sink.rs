//! A [`WindowSink`] for ClickHouse that batches to about one insert per
//! interval and keeps its own copy of the batch while the server is down.

use std::time::Duration;

use async_trait::async_trait;
use pulse_core::Window;
use tokio::time::Instant;

use super::{ClickHouseConfig, ClickHouseError, MetricsStore, WindowRow};
use crate::metrics::Metrics;
use crate::retry::{Backoff, RetryPolicy};
use crate::sink::{SinkError, WindowSink};

/// Writes windows to `pulse_metrics`.
///
/// Windows collect in memory and go out in one `INSERT` once
/// `insert_interval` (default 1 s) has passed since the last one, so the
/// server sees about one insert per second whatever the window rate. The
/// `clickhouse` crate drops its buffer when an insert fails, so this sink
/// keeps its own rows and retries them with backoff; meanwhile it keeps
/// accepting windows up to `max_pending` (default 1 000 000), then refuses
/// new ones with a retryable error so the caller holds them.
///
/// Rows are keyed by (symbol, window_start) in a ReplacingMergeTree, so a
/// window written twice is harmless. Windows must start on whole seconds.
pub struct ClickHouseWindowSink {
    store: MetricsStore,
    metrics: Metrics,
    pending: Vec<WindowRow>,
    insert_interval: Duration,
    max_pending: usize,
    retry: RetryPolicy,
    flush_attempts: u32,
    next_attempt: Instant,
    backoff: Backoff,
}

impl std::fmt::Debug for ClickHouseWindowSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseWindowSink")
            .field("store", &self.store)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl ClickHouseWindowSink {
    /// A sink for `config`, after creating the database and tables if
    /// they are missing.
    pub async fn connect(
        config: ClickHouseConfig,
        metrics: Metrics,
    ) -> Result<Self, ClickHouseError> {
        let store = MetricsStore::new(config)?;
        store.create_schema().await?;
        Ok(Self::new(store, metrics))
    }

    /// A sink writing through `store` (whose tables must exist).
    pub fn new(store: MetricsStore, metrics: Metrics) -> Self {
        let retry = RetryPolicy::default();
        ClickHouseWindowSink {
            store,
            metrics,
            pending: Vec::new(),
            insert_interval: Duration::from_secs(1),
            max_pending: 1_000_000,
            retry,
            flush_attempts: 10,
            next_attempt: Instant::now(),
            backoff: retry.delays(),
        }
    }

    /// Sets the least time between two inserts (default 1 s).
    pub fn insert_interval(mut self, interval: Duration) -> Self {
        self.insert_interval = interval;
        self
    }

    /// Sets how many rows may wait while the server is down (default 1 000 000).
    pub fn max_pending(mut self, rows: usize) -> Self {
        self.max_pending = rows.max(1);
        self
    }

    /// Sets the backoff between failed inserts and how many attempts
    /// [`flush`](WindowSink::flush) makes (defaults: [`RetryPolicy::default`], 10).
    pub fn retry(mut self, retry: RetryPolicy, flush_attempts: u32) -> Self {
        self.retry = retry;
        self.backoff = retry.delays();
        self.flush_attempts = flush_attempts.max(1);
        self
    }

    /// Rows accepted but not yet stored.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Tries to store every pending row now.
    async fn insert_pending(&mut self) -> Result<(), ClickHouseError> {
        match self.store.insert_windows(&self.pending).await {
            Ok(()) => {
                self.pending.clear();
                self.backoff.reset();
                self.next_attempt = Instant::now() + self.insert_interval;
                Ok(())
            }
            Err(e) => {
                self.metrics
                    .sink_errors
                    .get_or_create(&Metrics::sink("clickhouse"))
                    .inc();
                let delay = self.backoff.next_delay();
                self.next_attempt = Instant::now() + delay;
                tracing::warn!(error = %e, pending = self.pending.len(), retry_in = ?delay, "ClickHouse insert failed; keeping the rows");
                Err(e)
            }
        }
    }
}

#[async_trait]
impl WindowSink for ClickHouseWindowSink {
    fn name(&self) -> &'static str {
        "clickhouse"
    }

    async fn write_windows(&mut self, windows: &[Window]) -> Result<(), SinkError> {
        if self.pending.len() + windows.len() > self.max_pending {
            // Full: refuse, so the caller keeps these windows and backs off.
            self.insert_pending().await?;
        }
        self.pending.extend(windows.iter().map(WindowRow::from));
        if Instant::now() >= self.next_attempt && !self.pending.is_empty() {
            match self.insert_pending().await {
                Ok(()) => {}
                // The rows are safe here; try again after the backoff.
                Err(e) if e.is_retryable() => {
                    self.metrics
                        .sink_retries
                        .get_or_create(&Metrics::sink("clickhouse"))
                        .inc();
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        let mut attempt = 0;
        while !self.pending.is_empty() {
            attempt += 1;
            match self.insert_pending().await {
                Ok(()) => {}
                Err(e) if e.is_retryable() && attempt < self.flush_attempts => {
                    tokio::time::sleep_until(self.next_attempt).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}
