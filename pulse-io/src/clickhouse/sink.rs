//! A [`WindowSink`] for ClickHouse: one `INSERT` per batch the pipeline
//! hands over, about once per interval.

use std::time::Duration;

use async_trait::async_trait;
use pulse_core::Window;

use super::{ClickHouseConfig, ClickHouseError, WindowRow, WindowStore};
use crate::Metrics;
use crate::sink::{Batching, SinkError, WindowSink};

/// Writes windows to `pulse_metrics`.
///
/// It asks the [`Pipeline`](crate::Pipeline) for batches at most once per
/// `insert_interval` (default 1 s), so the server sees about one insert
/// per second whatever the window rate. While the server is down the
/// pipeline keeps the windows (up to `max_pending`, default 1 000 000, then
/// it holds the source back) and retries with backoff, counting each failed
/// insert once.
///
/// Rows are keyed by (symbol, window_start) in a ReplacingMergeTree, so a
/// window written twice is harmless. Windows must start on whole seconds.
/// A window whose times `DateTime` cannot hold is not written: it is
/// logged and counted in `pulse_windows_rejected_total{reason="time_range"}`
/// (see [`metrics`](Self::metrics)).
#[derive(Debug)]
pub struct ClickHouseWindowSink {
    store: WindowStore,
    batching: Batching,
    metrics: Metrics,
}

impl ClickHouseWindowSink {
    /// A sink for `config`, after creating the database and tables if
    /// they are missing.
    pub async fn connect(config: ClickHouseConfig) -> Result<Self, ClickHouseError> {
        let store = WindowStore::new(config)?;
        store.create_schema().await?;
        Ok(Self::new(store))
    }

    /// A sink writing through `store` (whose tables must exist).
    pub fn new(store: WindowStore) -> Self {
        ClickHouseWindowSink {
            store,
            batching: Batching {
                interval: Some(Duration::from_secs(1)),
                max_pending: 1_000_000,
            },
            metrics: Metrics::new(),
        }
    }

    /// Counts rejected windows in `metrics` (by default in a private set
    /// nobody serves).
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Sets the least time between two inserts (default 1 s); `None`
    /// inserts only when the pipeline stores a checkpoint or stops.
    pub fn insert_interval(mut self, interval: Option<Duration>) -> Self {
        self.batching.interval = interval;
        self
    }

    /// Sets how many rows may wait while the server is down (default 1 000 000).
    pub fn max_pending(mut self, rows: usize) -> Self {
        self.batching.max_pending = rows.max(1);
        self
    }
}

#[async_trait]
impl WindowSink for ClickHouseWindowSink {
    fn name(&self) -> &'static str {
        "clickhouse"
    }

    fn batching(&self) -> Batching {
        self.batching
    }

    async fn write_windows(&mut self, windows: &[Window]) -> Result<(), SinkError> {
        let mut rows = Vec::with_capacity(windows.len());
        let mut rejected = Vec::new();
        for w in windows {
            match WindowRow::try_from(w) {
                Ok(row) => rows.push(row),
                Err(e) => rejected.push((w, e)),
            }
        }
        self.store.insert_windows(&rows).await?;
        // Counted once the batch is done: a failed insert is retried with
        // the same windows.
        for (w, e) in rejected {
            self.metrics.reject_window(w.symbol.as_str(), e.reason());
            tracing::warn!(symbol = %w.symbol, window_start_ms = w.start_ms, trades = w.trade_count, error = %e, "window not stored in ClickHouse");
        }
        Ok(())
    }
}
