//! A bound on each whole request to the brokers.
//!
//! rskafka retries inside a request, but its deadline bounds only the
//! pauses between tries, and its retry loops nest (a produce looks the
//! leader up, which connects, each in its own loop): a dead broker took two
//! minutes to show, and one that held the connection without answering was
//! never reported at all. So pulse bounds every request itself, and the
//! caller logs, counts and backs off as for any other failure.

use std::future::Future;
use std::time::Duration;

use rskafka::client::error::Error as ClientError;

use super::KafkaError;
use super::error::request_error;

/// `request`, or [`KafkaError::TimedOut`] once it has taken `limit`; the
/// broker's own errors are left to the caller to sort.
pub(super) async fn within<T>(
    limit: Duration,
    operation: &'static str,
    topic: &str,
    request: impl Future<Output = Result<T, ClientError>>,
) -> Result<Result<T, ClientError>, KafkaError> {
    tokio::time::timeout(limit, request)
        .await
        .map_err(|_| KafkaError::TimedOut {
            operation,
            topic: topic.to_owned(),
            after: limit,
        })
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
