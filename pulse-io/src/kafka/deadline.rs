//! A bound on each whole request to the brokers.
//!
//! rskafka retries inside a request, but its deadline bounds only the
//! pauses between tries, and its retry loops nest (a produce looks the
//! leader up, which connects, each in its own loop): a dead broker took two
//! minutes to show, and one that held the connection without answering was
//! never reported at all. So pulse bounds every request itself, and the
//! caller logs, counts and backs off as for any other failure.

use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rskafka::client::error::Error as ClientError;
use tokio::time::Instant;

use super::KafkaError;
use super::error::request_error;
use crate::metrics::OperationLabel;

/// An answer this much later than the broker could give it means rskafka
/// retried inside the request (a broker restarting, a leader moving),
/// which it neither logs nor counts: pulse does both.
const SLOW: Duration = Duration::from_secs(1);

/// Requests answered late, by operation, in every [`Metrics`] of the
/// process (the requests know no `Metrics` of their own).
///
/// [`Metrics`]: crate::Metrics
pub(crate) static SLOW_REQUESTS: LazyLock<Family<OperationLabel, Counter>> =
    LazyLock::new(Family::default);

/// `request`, or [`KafkaError::TimedOut`] once it has taken `limit`; the
/// broker's own errors are left to the caller to sort.
pub(super) async fn within<T>(
    limit: Duration,
    operation: &'static str,
    topic: &str,
    request: impl Future<Output = Result<T, ClientError>>,
) -> Result<Result<T, ClientError>, KafkaError> {
    within_after(limit, Duration::ZERO, operation, topic, request).await
}

/// [`within`], for a request the broker may hold for `held` before it
/// answers (a fetch waiting for records).
pub(super) async fn within_after<T>(
    limit: Duration,
    held: Duration,
    operation: &'static str,
    topic: &str,
    request: impl Future<Output = Result<T, ClientError>>,
) -> Result<Result<T, ClientError>, KafkaError> {
    let started = Instant::now();
    let result = tokio::time::timeout(limit, request)
        .await
        .map_err(|_| KafkaError::TimedOut {
            operation,
            topic: topic.to_owned(),
            after: limit,
        })?;
    let took = started.elapsed();
    // A request that failed in the end is logged and counted by its caller.
    if result.is_ok() && took > held + SLOW {
        // The log names the operation as the metric's label does.
        let label = OperationLabel {
            operation: format!("kafka_{}", operation.replace(' ', "_")),
        };
        SLOW_REQUESTS.get_or_create(&label).inc();
        tracing::warn!(
            operation = %label.operation,
            topic,
            ?took,
            "Kafka answered late: the broker was unreachable or slow meanwhile, and the request was retried"
        );
    }
    Ok(result)
}

/// [`within`], with the broker's errors as [`KafkaError::Request`].
pub(super) async fn request<T>(
    limit: Duration,
    operation: &'static str,
    topic: &str,
    request: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, KafkaError> {
    within(limit, operation, topic, request)
        .await?
        .map_err(|source| request_error(operation, topic, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_request_without_an_answer_times_out_and_may_be_retried() {
        let hung = std::future::pending::<Result<(), ClientError>>();
        let err = request(Duration::from_secs(10), "produce", "trades/0", hung)
            .await
            .unwrap_err();
        assert!(err.is_retryable());
        assert_eq!(
            err.to_string(),
            "Kafka produce on trades/0: no answer within 10s (is the broker down or hung?)"
        );
    }

    /// rskafka retried inside: the answer comes, late, and pulse says so.
    #[tokio::test(start_paused = true)]
    async fn an_answer_a_second_late_is_counted() {
        let label = |operation: &str| OperationLabel {
            operation: operation.to_owned(),
        };
        let late = async {
            tokio::time::sleep(Duration::from_millis(1_500)).await;
            Ok(1)
        };
        let limit = Duration::from_secs(10);
        assert_eq!(request(limit, "late test", "t/0", late).await.unwrap(), 1);
        assert_eq!(
            SLOW_REQUESTS.get_or_create(&label("kafka_late_test")).get(),
            1
        );

        // A fetch the broker held for its 2 s wait is on time.
        let held = async {
            tokio::time::sleep(Duration::from_millis(2_500)).await;
            Ok::<_, ClientError>(1)
        };
        let wait = Duration::from_secs(2);
        within_after(limit, wait, "held test", "t/0", held)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            SLOW_REQUESTS.get_or_create(&label("kafka_held_test")).get(),
            0
        );
    }

    #[tokio::test(start_paused = true)]
    async fn answers_and_errors_within_the_limit_pass_through() {
        let ok = request(Duration::from_secs(1), "fetch", "t/0", async { Ok(7) }).await;
        assert_eq!(ok.unwrap(), 7);
        let failed = async { Err::<(), _>(ClientError::Timeout) };
        let err = request(Duration::from_secs(1), "fetch", "t/0", failed)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                KafkaError::Request {
                    operation: "fetch",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
