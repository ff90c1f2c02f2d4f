//! The one retry policy for every write the pipeline makes: window sinks,
//! trade sinks and checkpoint stores.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::PipelineError;
use crate::metrics::Metrics;
use crate::retry::{Backoff, RetryPolicy};
use crate::sink::SinkError;

/// Once shutdown is requested, how long after its first failure since then
/// a write is still retried, however many tries are left: a hung server
/// takes a whole request timeout per try.
const SHUTDOWN_RETRY_TIME: Duration = Duration::from_secs(30);

/// Backoff state for one sink. Each failed write is counted once in
/// `pulse_sink_errors_total`; retryable ones back off and retry, for ever
/// while running and `shutdown_retries` times (within [`SHUTDOWN_RETRY_TIME`])
/// once shutdown is requested;
/// anything else stops the pipeline with the unstored count reported.
#[derive(Debug)]
pub(super) struct SinkRetry {
    sink: &'static str,
    delays: Backoff,
    shutdown_retries: u32,
    retries_after_shutdown: u32,
    /// The first failure after shutdown was requested.
    failing_since_shutdown: Option<Instant>,
}

impl SinkRetry {
    pub(super) fn new(sink: &'static str, policy: RetryPolicy, shutdown_retries: u32) -> Self {
        SinkRetry {
            sink,
            delays: policy.delays(),
            shutdown_retries,
            retries_after_shutdown: 0,
            failing_since_shutdown: None,
        }
    }

    /// A write went through: the next failure starts from the first delay.
    pub(super) fn succeeded(&mut self) {
        self.delays.reset();
        self.retries_after_shutdown = 0;
        self.failing_since_shutdown = None;
    }

    /// Counts `err` and says how long to wait before the next try, or gives
    /// up with `pending` items reported.
    pub(super) fn failed(
        &mut self,
        err: SinkError,
        pending: usize,
        metrics: &Metrics,
        shutdown: &CancellationToken,
    ) -> Result<Duration, PipelineError> {
        let sink = self.sink;
        let label = Metrics::sink(sink);
        metrics.sink_errors.get_or_create(&label).inc();
        if shutdown.is_cancelled() {
            if self.failing_since_shutdown.is_none() {
                // Whoever asked to stop is waiting: the retries left start
                // from the first pause, not the long ones a sink down for
                // a while has reached.
                self.delays.reset();
                self.failing_since_shutdown = Some(Instant::now());
            }
            self.retries_after_shutdown += 1;
        }
        let out_of_time = self
            .failing_since_shutdown
            .is_some_and(|since| since.elapsed() >= SHUTDOWN_RETRY_TIME);
        if !err.is_retryable() || self.retries_after_shutdown > self.shutdown_retries || out_of_time
        {
            return Err(PipelineError::Sink {
                sink,
                pending,
                source: err,
            });
        }
        let delay = self.delays.next_delay();
        tracing::warn!(sink, error = %err, retry_in = ?delay, pending, "sink write failed; keeping the batch and retrying");
        metrics.sink_retries.get_or_create(&label).inc();
        Ok(delay)
    }

    /// [`failed`](Self::failed), then waits out the delay. Ctrl-C during a
    /// long backoff does not wait it out: it wakes up and spends the bounded
    /// shutdown retries instead.
    pub(super) async fn wait(
        &mut self,
        err: SinkError,
        pending: usize,
        metrics: &Metrics,
        shutdown: &CancellationToken,
    ) -> Result<(), PipelineError> {
        let delay = self.failed(err, pending, metrics, shutdown)?;
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled(), if !shutdown.is_cancelled() => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down() -> SinkError {
        SinkError::Unavailable {
            sink: "clickhouse",
            reason: "connection refused".to_owned(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_retries_start_from_the_first_pause() {
        let policy = RetryPolicy {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(30),
        };
        let (metrics, shutdown) = (Metrics::new(), CancellationToken::new());
        let mut retry = SinkRetry::new("clickhouse", policy, 2);
        let mut delay = Duration::ZERO;
        for _ in 0..10 {
            delay = retry.failed(down(), 3, &metrics, &shutdown).unwrap();
        }
        assert!(delay >= Duration::from_secs(15), "{delay:?}");

        shutdown.cancel();
        let first = retry.failed(down(), 3, &metrics, &shutdown).unwrap();
        assert!(first <= Duration::from_millis(400), "{first:?}");
        let second = retry.failed(down(), 3, &metrics, &shutdown).unwrap();
        assert!(second <= Duration::from_millis(800), "{second:?}");
        let gave_up = retry.failed(down(), 3, &metrics, &shutdown).unwrap_err();
        assert!(
            matches!(gave_up, PipelineError::Sink { pending: 3, .. }),
            "{gave_up}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_retries_stop_after_their_time_whatever_is_left() {
        let (metrics, shutdown) = (Metrics::new(), CancellationToken::new());
        shutdown.cancel();
        let mut retry = SinkRetry::new("clickhouse", RetryPolicy::default(), 100);
        // Each try of a hung server takes a whole request timeout.
        retry.failed(down(), 3, &metrics, &shutdown).unwrap();
        tokio::time::advance(Duration::from_secs(20)).await;
        retry.failed(down(), 3, &metrics, &shutdown).unwrap();
        tokio::time::advance(Duration::from_secs(20)).await;
        let gave_up = retry.failed(down(), 3, &metrics, &shutdown).unwrap_err();
        assert!(
            matches!(gave_up, PipelineError::Sink { pending: 3, .. }),
            "{gave_up}"
        );
    }
}
