//! Backoff for one sink batch that failed.

use tokio_util::sync::CancellationToken;

use super::PipelineError;
use crate::metrics::Metrics;
use crate::retry::{Backoff, RetryPolicy};
use crate::sink::SinkError;

/// Backoff state for one sink batch. Retryable errors back off and retry,
/// for ever while running and `shutdown_retries` times once shutdown is
/// requested; anything else stops the pipeline with the batch size reported.
pub(super) struct SinkRetry<'a> {
    sink: &'static str,
    metrics: &'a Metrics,
    delays: Backoff,
    shutdown_retries: u32,
    retries_after_shutdown: u32,
    pending: usize,
}

impl<'a> SinkRetry<'a> {
    pub(super) fn new(
        sink: &'static str,
        metrics: &'a Metrics,
        policy: RetryPolicy,
        shutdown_retries: u32,
        pending: usize,
    ) -> Self {
        SinkRetry {
            sink,
            metrics,
            delays: policy.delays(),
            shutdown_retries,
            retries_after_shutdown: 0,
            pending,
        }
    }

    /// Counts `err`, then either waits before the next try or gives up.
    pub(super) async fn wait(
        &mut self,
        err: SinkError,
        shutdown: &CancellationToken,
    ) -> Result<(), PipelineError> {
        let sink = self.sink;
        self.metrics
            .sink_errors
            .get_or_create(&Metrics::sink(sink))
            .inc();
        if shutdown.is_cancelled() {
            self.retries_after_shutdown += 1;
        }
        if !err.is_retryable() || self.retries_after_shutdown > self.shutdown_retries {
            return Err(PipelineError::Sink {
                sink,
                pending: self.pending,
                source: err,
            });
        }
        let delay = self.delays.next_delay();
        tracing::warn!(sink, error = %err, retry_in = ?delay, pending = self.pending, "sink write failed; keeping the batch and retrying");
        self.metrics
            .sink_retries
            .get_or_create(&Metrics::sink(sink))
            .inc();
        // Ctrl-C during a long backoff should not wait it out: wake up and
        // spend the bounded shutdown retries instead.
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled(), if !shutdown.is_cancelled() => {}
        }
        Ok(())
    }
}
