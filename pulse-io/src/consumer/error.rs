//! Why a consumer run stopped.

use super::SelectionError;
use crate::clickhouse::ClickHouseError;
use crate::kafka::KafkaError;

/// A failure that stops [`Consumer::run`](super::Consumer::run). Transient
/// trouble (broker or ClickHouse down) is retried inside, not returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumeError {
    /// The broker refused something a retry cannot fix.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// ClickHouse refused something a retry cannot fix.
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
    /// The partition selection does not fit the topic.
    #[error(transparent)]
    Selection(#[from] SelectionError),
    /// A setting was invalid.
    #[error("invalid consumer configuration: {0}")]
    Config(String),
    /// The pipeline stopped: a fatal broker error, or ClickHouse still
    /// refusing the last windows at shutdown. Nothing is lost: the stored
    /// positions predate unstored windows, so the next run writes them.
    #[error(transparent)]
    Pipeline(#[from] crate::driver::PipelineError),
}
