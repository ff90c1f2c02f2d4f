//! Errors of the Kafka adapter, split into retryable and fatal.

use rskafka::client::error::{Error as ClientError, ProtocolError};

use crate::sink::SinkError;

/// Why a Kafka operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaError {
    /// No bootstrap broker answered.
    #[error("connecting to Kafka brokers {brokers}: {source}")]
    Connect {
        /// The bootstrap list, comma-separated.
        brokers: String,
        /// The cause (boxed: rskafka's error is large).
        source: Box<ClientError>,
    },
    /// A request to the broker failed.
    #[error("Kafka {operation} on {topic}: {source}")]
    Request {
        /// What was being done, e.g. `produce`.
        operation: &'static str,
        /// Topic (and partition, when known), e.g. `trades_btc/0`.
        topic: String,
        /// The cause (boxed: rskafka's error is large).
        source: Box<ClientError>,
    },
    /// A request got no answer in time, its retries inside rskafka
    /// included: the broker is down, unreachable or hung.
    #[error(
        "Kafka {operation} on {topic}: no answer within {after:?} (is the broker down or hung?)"
    )]
    TimedOut {
        /// What was being done, e.g. `produce`.
        operation: &'static str,
        /// Topic (and partition, when known), e.g. `trades_btc/0`.
        topic: String,
        /// How long pulse waited.
        after: std::time::Duration,
    },
    /// The topic does not exist (and was not to be created).
    #[error("Kafka topic {0} does not exist")]
    TopicMissing(String),
    /// A stored position lies beyond the end of the partition: the topic was
    /// probably deleted and re-created.
    #[error(
        "stored position {offset} is beyond the end ({end}) of {topic}/{partition}; \
         was the topic re-created? Delete its rows from the positions table to start over"
    )]
    PositionBeyondEnd {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The stored position.
        offset: i64,
        /// The partition's end offset.
        end: i64,
    },
    /// A setting was invalid.
    #[error("invalid Kafka configuration: {0}")]
    Config(String),
}

/// A failed request on `topic`, e.g. `trades_btc` or `trades_btc/0`.
pub(super) fn request_error(
    operation: &'static str,
    topic: impl Into<String>,
    source: ClientError,
) -> KafkaError {
    KafkaError::Request {
        operation,
        topic: topic.into(),
        source: Box::new(source),
    }
}

impl KafkaError {
    /// True when the same request may succeed later (broker down, leader
    /// moving, timeouts); false for errors a retry cannot fix.
    pub fn is_retryable(&self) -> bool {
        match self {
            KafkaError::Connect { .. } | KafkaError::TimedOut { .. } => true,
            KafkaError::Request { source, .. } => client_error_is_retryable(source),
            KafkaError::TopicMissing(_)
            | KafkaError::PositionBeyondEnd { .. }
            | KafkaError::Config(_) => false,
        }
    }

    /// The broker's protocol error code, if the broker answered with one.
    pub fn protocol_error(&self) -> Option<ProtocolError> {
        match self {
            KafkaError::Connect { source, .. } | KafkaError::Request { source, .. } => {
                match source.as_ref() {
                    ClientError::ServerError { protocol_error, .. } => Some(*protocol_error),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// Transport trouble and transient broker states are retryable; a broker
/// refusing the request itself (too large, not authorised, bad record) is not.
pub(crate) fn client_error_is_retryable(error: &ClientError) -> bool {
    match error {
        // rskafka reports metadata that lags a change (a partition or its
        // leader missing while the cluster restarts, or a topic is
        // recreated) as an invalid response: the next try may see it.
        ClientError::Connection(_)
        | ClientError::Request(_)
        | ClientError::InvalidResponse(_)
        | ClientError::RetryFailed(_)
        | ClientError::Timeout => true,
        ClientError::ServerError { protocol_error, .. } => matches!(
            protocol_error,
            ProtocolError::UnknownServerError
                | ProtocolError::UnknownTopicOrPartition
                | ProtocolError::LeaderNotAvailable
                | ProtocolError::NotLeaderOrFollower
                | ProtocolError::RequestTimedOut
                | ProtocolError::BrokerNotAvailable
                | ProtocolError::ReplicaNotAvailable
                | ProtocolError::NetworkException
                | ProtocolError::CoordinatorLoadInProgress
                | ProtocolError::CoordinatorNotAvailable
                | ProtocolError::NotCoordinator
                | ProtocolError::NotEnoughReplicas
                | ProtocolError::NotEnoughReplicasAfterAppend
                | ProtocolError::NotController
                | ProtocolError::KafkaStorageError
                | ProtocolError::FencedLeaderEpoch
                | ProtocolError::UnknownLeaderEpoch
                | ProtocolError::OffsetNotAvailable
                | ProtocolError::PreferredLeaderNotAvailable
                | ProtocolError::EligibleLeadersNotAvailable
                | ProtocolError::ThrottlingQuotaExceeded
        ),
        _ => false,
    }
}

impl From<KafkaError> for SinkError {
    fn from(e: KafkaError) -> Self {
        let reason = e.to_string();
        if e.is_retryable() {
            SinkError::Unavailable {
                sink: "kafka",
                reason,
            }
        } else {
            SinkError::Rejected {
                sink: "kafka",
                reason,
            }
        }
    }
}
