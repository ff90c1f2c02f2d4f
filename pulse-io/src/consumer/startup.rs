//! The consumer's start-up steps (schema, broker, topic, stored positions),
//! each retried with backoff while its server is unavailable.

use std::future::Future;

use tokio_util::sync::CancellationToken;

use super::ConsumeError;
use crate::kafka::{KafkaClient, KafkaError, topic_partitions};
use crate::metrics::Metrics;
use crate::retry::RetryPolicy;

/// Runs start-up steps until they succeed; `Ok(None)` once shutdown is
/// requested, so Ctrl-C while a server is down exits cleanly.
pub(super) struct Startup<'a> {
    pub(super) retry: RetryPolicy,
    pub(super) shutdown: &'a CancellationToken,
    pub(super) metrics: &'a Metrics,
}

impl Startup<'_> {
    /// Runs `op` until it succeeds, retrying errors `retryable` accepts.
    pub(super) async fn until_ok<T, E, F, Fut>(
        &self,
        what: &str,
        mut op: F,
        retryable: fn(&E) -> bool,
    ) -> Result<Option<T>, ConsumeError>
    where
        E: std::fmt::Display + Into<ConsumeError>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut delays = self.retry.delays();
        loop {
            let attempt = tokio::select! {
                _ = self.shutdown.cancelled() => return Ok(None),
                result = op() => result,
            };
            match attempt {
                Ok(v) => return Ok(Some(v)),
                Err(e) if retryable(&e) => {
                    let delay = delays.next_delay();
                    tracing::warn!(error = %e, retry_in = ?delay, "{what} failed; retrying");
                    // "Kafka find topic" counts as `kafka_find_topic`.
                    self.metrics
                        .source_retry(&what.to_lowercase().replace(' ', "_"));
                    tokio::select! {
                        _ = self.shutdown.cancelled() => return Ok(None),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The partition ids of `topic`; [`KafkaError::TopicMissing`] while it
/// does not exist yet.
pub(super) async fn existing_partitions(
    client: &KafkaClient,
    topic: &str,
) -> Result<Vec<i32>, KafkaError> {
    match topic_partitions(client, topic).await? {
        Some(ids) if !ids.is_empty() => Ok(ids),
        _ => Err(KafkaError::TopicMissing(topic.to_owned())),
    }
}

/// A missing topic is worth waiting for: the producer may create it any
/// moment.
pub(super) fn topic_retryable(e: &KafkaError) -> bool {
    e.is_retryable() || matches!(e, KafkaError::TopicMissing(_))
}
