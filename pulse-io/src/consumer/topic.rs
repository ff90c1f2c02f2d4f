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
use super::fetcher::{self, FetchContext, FetchTarget, Fetched, GonePartitions, count_reset};
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
    /// The topic no longer has `partition`; see [`Fetched::Gone`].
    Gone { partition: i32 },
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
            gone: GonePartitions::default(),
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
    read.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(target.partition);
    set_gauge(ctx, read, &target.topic);
    fetcher::spawn(ctx.clone(), target);
}

/// Partitions read that the topic still has.
fn set_gauge(ctx: &FetchContext, read: &ReadPartitions, topic: &str) {
    let read = read.lock().unwrap_or_else(|e| e.into_inner()).len();
    let gone = ctx.gone.lock().unwrap_or_else(|e| e.into_inner()).len();
    ctx.metrics
        .partitions_read
        .get_or_create(&TopicLabel {
            topic: topic.to_owned(),
        })
        .set(read.saturating_sub(gone) as i64);
}

/// Notes partitions read that `available` lacks in two looks in a row
/// (the topic was re-created with fewer; one look may lag a broker
/// restart) and those back again. A gone partition's task keeps trying
/// without a warning each time; if the partition returns, its records are
/// checked against the position as after any re-creation.
async fn track_gone(
    ctx: &FetchContext,
    read: &ReadPartitions,
    topic: &str,
    available: &[i32],
    missing_before: &mut BTreeSet<i32>,
) {
    let known = read.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let missing: BTreeSet<i32> = known
        .iter()
        .copied()
        .filter(|p| !available.contains(p))
        .collect();
    for partition in known {
        let present = available.contains(&partition);
        let (went, returned) = {
            let mut gone = ctx.gone.lock().unwrap_or_else(|e| e.into_inner());
            let went = missing_before.contains(&partition) && !present && gone.insert(partition);
            (went, present && gone.remove(&partition))
        };
        if went {
            tracing::warn!(
                topic,
                partition,
                partitions_now = available.len(),
                "a partition being read is gone from the topic (re-created with fewer partitions?); \
                 its open windows are stored at shutdown, or go on if it returns"
            );
            count_reset(&ctx.metrics, topic, partition, "gone");
            set_gauge(ctx, read, topic);
            // Ordered after the partition's records already sent.
            let _ = ctx.tx.send(Ok(Fetched::Gone { partition })).await;
        } else if returned {
            tracing::info!(topic, partition, "a gone partition is back; reading it");
            set_gauge(ctx, read, topic);
        }
    }
    *missing_before = missing;
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
    let mut missing = BTreeSet::new();
    loop {
        tokio::select! {
            _ = ctx.stop.cancelled() => return,
            _ = tokio::time::sleep(growth.interval) => {}
        }
        let available = match topic_partitions(&ctx.client, &topic).await {
            // A topic always has a partition: none is a broker still starting.
            Ok(Some(ids)) if !ids.is_empty() => ids,
            Ok(_) => {
                tracing::debug!(topic, "topic not in metadata; looking again later");
                continue;
            }
            Err(e) => {
                tracing::warn!(topic, error = %e, "reading the topic's partitions failed; trying again later");
                ctx.metrics.source_retry("partition_list");
                continue;
            }
        };
        track_gone(&ctx, &read, &topic, &available, &mut missing).await;
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
            Some(Ok(Fetched::Gone { partition })) => {
                out.push(TopicInput::Gone { partition });
                Ok(true)
            }
            Some(Err(e)) => Err(e.into()),
            None => Ok(false),
        }
    }
}
