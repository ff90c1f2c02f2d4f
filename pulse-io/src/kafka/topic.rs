//! Looking up and creating topics.

use std::time::Duration;

use rskafka::client::error::{Error as ClientError, ProtocolError};

use super::error::request_error;
use super::{KafkaClient, KafkaError, deadline};

/// How long a freshly created topic may take to show up in metadata.
const CREATE_VISIBLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The partition ids of `topic`, sorted, or `None` when it does not exist.
pub async fn topic_partitions(
    client: &KafkaClient,
    topic: &str,
) -> Result<Option<Vec<i32>>, KafkaError> {
    let list = |c: std::sync::Arc<rskafka::client::Client>| async move { c.list_topics().await };
    let topics = client.request("list topics", topic, list).await?;
    Ok(topics
        .into_iter()
        .find(|t| t.name == topic)
        .map(|t| t.partitions.into_iter().collect()))
}

/// A topic as [`ensure_topic`] left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnsuredTopic {
    /// Its partition ids, sorted.
    pub partitions: Vec<i32>,
    /// It did not exist when looked up: it is new (made by this call, or by
    /// another client meanwhile).
    pub created: bool,
}

/// Creates `topic` with `partitions` partitions unless it exists. An
/// existing topic keeps its partition count; a different request is
/// logged, not enforced.
pub async fn ensure_topic(
    client: &KafkaClient,
    topic: &str,
    partitions: i32,
    replication_factor: i16,
) -> Result<EnsuredTopic, KafkaError> {
    if partitions < 1 {
        return Err(KafkaError::Config(format!(
            "a topic needs at least 1 partition, got {partitions}"
        )));
    }
    if let Some(existing) = topic_partitions(client, topic).await? {
        if existing.len() as i32 != partitions {
            tracing::warn!(
                topic,
                existing = existing.len(),
                requested = partitions,
                "topic exists with a different partition count; using it as it is"
            );
        }
        return Ok(EnsuredTopic {
            partitions: existing,
            created: false,
        });
    }
    let controller = client
        .rskafka()
        .controller_client()
        .map_err(|source| request_error("create topic", topic, source))?;
    let create = controller.create_topic(topic, partitions, replication_factor, 5_000);
    match deadline::within(client.request_deadline(), "create topic", topic, create).await? {
        Ok(()) => tracing::info!(topic, partitions, "created topic"),
        // Another producer won the race: fine.
        Err(ClientError::ServerError {
            protocol_error: ProtocolError::TopicAlreadyExists,
            ..
        }) => {}
        Err(source) => return Err(request_error("create topic", topic, source)),
    }
    let deadline = tokio::time::Instant::now() + CREATE_VISIBLE_TIMEOUT;
    loop {
        if let Some(ids) = topic_partitions(client, topic).await?
            && !ids.is_empty()
        {
            return Ok(EnsuredTopic {
                partitions: ids,
                created: true,
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(KafkaError::TopicMissing(topic.to_owned()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
