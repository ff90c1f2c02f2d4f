//! One window sink with the windows it has not stored yet.

use pulse_core::Window;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::PipelineError;
use super::sink_retry::SinkRetry;
use crate::metrics::Metrics;
use crate::retry::RetryPolicy;
use crate::sink::{Batching, WindowSink};

/// A window sink, its pending windows and when to write them next. A
/// failing sink keeps its windows and is retried after a backoff while the
/// others go on; only a full slot holds the pipeline back.
pub(super) struct Slot {
    pub(super) sink: Box<dyn WindowSink>,
    pending: Vec<Window>,
    /// Each pending window's end on the monotonic clock, where known.
    pending_ends: Vec<Option<Instant>>,
    batching: Batching,
    next_write: Instant,
    retry: SinkRetry,
}

/// What a successful write stored, for metrics.
pub(super) struct Written<'a> {
    pub(super) sink: &'static str,
    /// The stored windows' ends on the monotonic clock, where known.
    pub(super) window_ends: &'a [Option<Instant>],
}

impl Slot {
    pub(super) fn new(sink: Box<dyn WindowSink>) -> Self {
        let batching = sink.batching();
        Slot {
            retry: SinkRetry::new(sink.name(), RetryPolicy::default(), 0),
            sink,
            pending: Vec::new(),
            pending_ends: Vec::new(),
            batching,
            next_write: Instant::now(),
        }
    }

    /// Retries failed writes with `policy`, `shutdown_retries` times once
    /// shutdown is requested.
    pub(super) fn set_retry(&mut self, policy: RetryPolicy, shutdown_retries: u32) {
        self.retry = SinkRetry::new(self.sink.name(), policy, shutdown_retries);
    }

    /// Queues a window emitted for this sink, with its end on the
    /// monotonic clock.
    pub(super) fn push(&mut self, window: Window, end: Option<Instant>) {
        self.pending.push(window);
        self.pending_ends.push(end);
    }

    /// When this slot wants to write, if it has anything to write.
    pub(super) fn due(&self) -> Option<Instant> {
        if self.pending.is_empty() || self.batching.interval.is_none() {
            return None;
        }
        Some(self.next_write)
    }

    /// Windows not stored yet.
    pub(super) fn pending(&self) -> usize {
        self.pending.len()
    }

    /// True when the source must wait for this sink.
    pub(super) fn full(&self) -> bool {
        self.pending.len() >= self.batching.max_pending
    }

    /// One write attempt if due; a retryable failure schedules the next.
    pub(super) async fn write_if_due(
        &mut self,
        metrics: &Metrics,
        shutdown: &CancellationToken,
        stored: impl FnOnce(Written<'_>),
    ) -> Result<(), PipelineError> {
        if self.due().is_none_or(|due| Instant::now() < due) {
            return Ok(());
        }
        match self.sink.write_windows(&self.pending).await {
            Ok(()) => self.stored(stored),
            Err(e) => {
                let delay = self
                    .retry
                    .failed(e, self.pending.len(), metrics, shutdown)?;
                self.next_write = Instant::now() + delay;
            }
        }
        Ok(())
    }

    /// Writes every pending window, retrying until stored (or, after
    /// shutdown, until the shutdown retries are spent).
    pub(super) async fn write_all(
        &mut self,
        metrics: &Metrics,
        shutdown: &CancellationToken,
        stored: impl FnOnce(Written<'_>),
    ) -> Result<(), PipelineError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        while let Err(e) = self.sink.write_windows(&self.pending).await {
            self.retry
                .wait(e, self.pending.len(), metrics, shutdown)
                .await?;
        }
        self.stored(stored);
        Ok(())
    }

    fn stored(&mut self, stored: impl FnOnce(Written<'_>)) {
        self.retry.succeeded();
        stored(Written {
            sink: self.sink.name(),
            window_ends: &self.pending_ends,
        });
        self.pending.clear();
        self.pending_ends.clear();
        let now = Instant::now();
        self.next_write = self
            .batching
            .interval
            .and_then(|i| now.checked_add(i))
            .unwrap_or(now);
    }
}
