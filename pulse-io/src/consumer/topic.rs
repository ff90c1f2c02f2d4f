//! The topic as a pipeline [`Source`]: one fetch task per partition feeding
//! a bounded channel (full channel = backpressure while ClickHouse is slow
//! or down), and a task that looks for new partitions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::kafka::KafkaClient;
use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::PartitionSelection;
use super::fetcher::{self, FetchContext, FetchTarget, Fetched};
use crate::clickhouse::PartitionPosition;
use crate::kafka::{FetchConfig, FetchedRecord, topic_partitions};
use crate::metrics::{Metrics, TopicLabel};
use crate::retry::RetryPolicy;
use crate::source::{Source, SourceError};

/// What the consumer's stage reads, per partition in order.
#[derive(Debug)]
pub(crate) enum TopicInput {
    /// Reading `partition` starts, from `position` or afresh (`None`); see
    /// [`Fetched::Start`].
    Start {
        partition: i32,
        position: Option<PartitionPosition>,
        versions_from: u64,
    },
    /// One record and the partition it came from.
    Record {
        partition: i32,
        record: FetchedRecord,
    },
}

/// Which partitions to add when the topic grows.
#[derive(Debug, Clone)]
pub(crate) struct Growth {
    pub(crate) selection: PartitionSelection,
    /// Stored positions of partitions not read yet.
    pub(crate) stored: BTreeMap<i32, PartitionPosition>,
    /// How often to read the topic's partitions; zero: never.
    pub(crate) interval: Duration,
}

/// The partitions read so far, shared with the caller for its summary.
pub(crate) type ReadPartitions = Arc<Mutex<BTreeSet<i32>>>;

/// Records of the selected partitions, each partition in offset order.
/// Dropping it stops the fetch tasks.
pub(crate) struct TopicSource {
    rx: mpsc::Receiver<fetcher::FetchResult>,
    stop: CancellationToken,
}

impl TopicSource {
    /// Starts fetching every target, and adding partitions as `growth` says.
    pub(crate) fn start(
        client: Arc<KafkaClient>,
        fetch: FetchConfig,
        retry: RetryPolicy,
        metrics: Metrics,
        topic: &str,
        targets: Vec<FetchTarget>,
        growth: Growth,
    ) -> (Self, ReadPartitions) {
        let stop = CancellationToken::new();
        let (tx, rx) = mpsc::channel(4 * targets.len().max(4));
        let ctx = FetchContext {
            client,
            config: fetch,
            retry,
            metrics,
            tx,
            stop: stop.clone(),
        };
        let read: ReadPartitions = Arc::default();
        for target in targets {
            add(&ctx, &read, target);
        }
        if !growth.interval.is_zero() {
            tokio::spawn(watch_partitions(
                ctx,
                topic.to_owned(),
                growth,
                read.clone(),
            ));
        }
        (TopicSource { rx, stop }, read)
    }
}

/// Starts the fetch task of `target` and updates the gauge.
fn add(ctx: &FetchContext, read: &ReadPartitions, target: FetchTarget) {
    let count = {
        let mut read = read.lock().unwrap_or_else(|e| e.into_inner());
        read.insert(target.partition);
        read.len()
    };
    ctx.metrics
        .partitions_read
        .get_or_create(&TopicLabel {
            topic: target.topic.clone(),
        })
        .set(count as i64);
    fetcher::spawn(ctx.clone(), target);
}

/// Reads the topic's partitions every interval and starts fetching the new
/// ones the selection takes, from their stored position or the earliest
/// record. Failures are logged and retried at the next interval.
async fn watch_partitions(
    ctx: FetchContext,
    topic: String,
    mut growth: Growth,
    read: ReadPartitions,
) {
    loop {
        tokio::select! {
            _ = ctx.stop.cancelled() => return,
            _ = tokio::time::sleep(growth.interval) => {}
        }
        let available = match topic_partitions(&ctx.client, &topic).await {
            Ok(Some(ids)) => ids,
            Ok(None) => {
                tracing::debug!(topic, "topic not in metadata; looking again later");
                continue;
            }
            Err(e) => {
                tracing::warn!(topic, error = %e, "reading the topic's partitions failed; trying again later");
                ctx.metrics.source_retry("partition_list");
                continue;
            }
        };
        let known = read.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for partition in available {
            if known.contains(&partition) || !growth.selection.includes(partition) {
                continue;
            }
            let stored = growth.stored.remove(&partition);
            tracing::info!(
                topic,
                partition,
                stored_position = stored.as_ref().map(|p| p.next_offset),
                "the topic gained a partition; reading it"
            );
            let target = FetchTarget {
                topic: topic.clone(),
                partition,
                stored,
            };
            add(&ctx, &read, target);
        }
    }
}

impl Drop for TopicSource {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[async_trait]
impl Source<TopicInput> for TopicSource {
    /// Cancel-safe: `mpsc::Receiver::recv` is.
    async fn next_batch(&mut self, out: &mut Vec<TopicInput>) -> Result<bool, SourceError> {
        match self.rx.recv().await {
            Some(Ok(Fetched::Start {
                partition,
                position,
                versions_from,
            })) => {
                out.push(TopicInput::Start {
                    partition,
                    position,
                    versions_from,
                });
                Ok(true)
            }
            Some(Ok(Fetched::Records { partition, records })) => {
                out.extend(
                    records
                        .into_iter()
                        .map(|record| TopicInput::Record { partition, record }),
                );
                Ok(true)
            }
            Some(Err(e)) => Err(e.into()),
            None => Ok(false),
        }
    }
}
