//! [`Consumer`]: start-up, then the topic through the one pipeline driver.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::fetcher::FetchTarget;
use super::partitions::Partitions;
use super::positions::PositionStore;
use super::startup::{Startup, existing_partitions, topic_retryable};
use super::topic::{Growth, TopicSource};
use super::{ConsumeError, ConsumeSummary, ConsumerConfig, SelectionError};
use crate::clickhouse::{ClickHouseConfig, ClickHouseError, ClickHouseWindowSink, WindowStore};
use crate::driver::Pipeline;
use crate::kafka::{KafkaConfig, KafkaError};
use crate::metrics::Metrics;

/// Reads a topic, aggregates each partition with pulse-core and stores the
/// windows and positions in ClickHouse. See [`crate::consumer`].
pub struct Consumer {
    kafka: KafkaConfig,
    store: WindowStore,
    config: ConsumerConfig,
    metrics: Metrics,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("topic", &self.config.topic)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// A consumer, after checking every setting.
    pub fn new(
        kafka: KafkaConfig,
        clickhouse: ClickHouseConfig,
        config: ConsumerConfig,
        metrics: Metrics,
    ) -> Result<Self, ConsumeError> {
        config.validate()?;
        kafka.validate()?;
        let store = WindowStore::new(clickhouse)?;
        Ok(Consumer {
            kafka,
            store,
            config,
            metrics,
        })
    }

    /// Runs until `shutdown` is cancelled, then stores open windows and
    /// pending batches and returns the totals. Waits (with backoff) for the
    /// broker, the topic and ClickHouse while they are unavailable.
    pub async fn run(self, shutdown: CancellationToken) -> Result<ConsumeSummary, ConsumeError> {
        let config = &self.config;
        let topic = &config.topic;
        let startup = Startup {
            retry: config.retry,
            shutdown: &shutdown,
            metrics: &self.metrics,
        };
        let empty = ConsumeSummary::default();
        if startup
            .until_ok(
                "ClickHouse create schema",
                || self.store.create_schema(),
                ClickHouseError::is_retryable,
            )
            .await?
            .is_none()
        {
            return Ok(empty);
        }
        let Some(client) = startup
            .until_ok(
                "Kafka connect",
                || self.kafka.connect(),
                KafkaError::is_retryable,
            )
            .await?
        else {
            return Ok(empty);
        };
        let client = Arc::new(client);
        let find_topic = || existing_partitions(&client, topic);
        let Some(available) = startup
            .until_ok("Kafka find topic", find_topic, topic_retryable)
            .await?
        else {
            return Ok(empty);
        };
        let selected = match config.partitions.select(&available) {
            // An instance whose share the topic does not have yet waits for
            // partitions to be added, when it looks for them.
            Err(SelectionError::Empty(..)) if !config.partition_refresh.is_zero() => {
                tracing::warn!(
                    topic = %topic,
                    selection = %config.partitions,
                    partitions = available.len(),
                    "the selection takes no partition of the topic yet; waiting for partitions to be added"
                );
                Vec::new()
            }
            other => other?,
        };
        let Some(positions) = startup
            .until_ok(
                "ClickHouse load positions",
                || self.store.load_positions(topic),
                ClickHouseError::is_retryable,
            )
            .await?
        else {
            return Ok(empty);
        };

        let mut stored = positions;
        let mut targets = Vec::new();
        for &partition in &selected {
            let position = stored.remove(&partition);
            match &position {
                Some(p) => tracing::info!(
                    topic = %topic,
                    partition,
                    resume_offset = p.resume_offset,
                    processed_to = p.next_offset,
                    "resuming from the stored position, once it is found to belong to the topic"
                ),
                None => {
                    tracing::info!(topic = %topic, partition, "no stored position; reading from the earliest record")
                }
            }
            targets.push(FetchTarget {
                topic: topic.clone(),
                partition,
                stored: position,
            });
        }
        let growth = Growth {
            selection: config.partitions.clone(),
            stored,
            interval: config.partition_refresh,
        };
        let (source, read) = TopicSource::start(
            client,
            config.fetch,
            config.retry,
            self.metrics.clone(),
            topic,
            targets,
            growth,
        );
        // Windows go out with the positions, once per interval: windows
        // first, so a stored position never covers an unstored window.
        let windows = ClickHouseWindowSink::new(self.store.clone())
            .metrics(self.metrics.clone())
            .insert_interval(None)
            .max_pending(config.max_pending_windows);
        let positions = PositionStore {
            store: self.store.clone(),
            topic: topic.clone(),
        };
        let pipeline = Pipeline::with_stage(
            Box::new(source),
            Partitions::new(config.aggregator.clone()),
            self.metrics,
        )
        .retry(config.retry)
        .shutdown_retries(config.shutdown_attempts)
        .progress_interval(config.progress_interval)
        .window_sink(Box::new(windows))
        .checkpoints(Box::new(positions), config.insert_interval);
        let summary = pipeline.run(shutdown).await?;
        let partitions = read
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        Ok(ConsumeSummary {
            partitions,
            records: summary.trades + summary.rejected + summary.markers,
            replayed: summary.replayed,
            trades: summary.accepted,
            duplicates: summary.duplicates,
            late_trades: summary.late_trades,
            late_uncorrected: summary.late_uncorrected,
            rejected: summary.rejected,
            windows: summary.windows,
            inserts: summary.writes.get("clickhouse").copied().unwrap_or(0),
        })
    }
}
