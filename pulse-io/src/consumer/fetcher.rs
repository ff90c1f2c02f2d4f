//! One task per partition that fetches records and hands them to the
//! consumer loop over a bounded channel (full channel = backpressure while
//! ClickHouse is slow or down).
//!
//! Each time it opens the partition (at start, again after any fetch error,
//! such as a broker that restarted, and when a fetch finds the partition
//! ending before the position) the task first checks that the
//! partition still holds the last record it or the stored position covers
//! (`identity.rs`). When it does not, the topic was recreated, truncated or
//! expired under the consumer: the task warns, counts it, tells the loop to
//! start the partition's state afresh, and reads from the earliest record.
//! It checks again before records that follow an empty fetch or a quiet
//! spell or that a slow fetch brought, and every second while records
//! come, as rskafka reconnects to a restarted broker without an error and
//! a topic deleted and made again on a running broker raises none. A
//! check looks for the last record handed on at the check before (the
//! anchor), not the newest, so a new topic's records that came through
//! between two checks are found out too; windows made from them are
//! superseded by the re-read's versions unless they hold more trades.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use crate::kafka::KafkaClient;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use super::identity::{self, LastRecord, Mismatch};
use super::partition::PartitionState;
use crate::clickhouse::PartitionPosition;
use crate::kafka::{FetchConfig, FetchedRecord, KafkaError, PartitionReader};
use crate::metrics::{Metrics, TopicResetLabel};
use crate::retry::RetryPolicy;

/// How often a fetch task checks, while records come, that the partition
/// still holds the last record it handed on.
const RECHECK_EVERY: Duration = Duration::from_secs(1);

/// What a fetch task tells the consumer loop, per partition in order.
#[derive(Debug)]
pub(crate) enum Fetched {
    /// Reading starts: restore the partition's state from `position`, or
    /// start it fresh (`None`). Sent once the position is checked, before
    /// any record, and again after a topic reset. Positions stored from now
    /// on must have versions above `versions_from`, so that they, not the
    /// position found not to belong to the topic, are loaded next time.
    Start {
        partition: i32,
        position: Option<PartitionPosition>,
        versions_from: u64,
    },
    /// Records, in offset order.
    Records {
        partition: i32,
        records: Vec<FetchedRecord>,
    },
    /// The topic no longer has the partition (sent by the partition
    /// watcher, not the fetch task).
    Gone { partition: i32 },
}

pub(crate) type FetchResult = Result<Fetched, KafkaError>;

/// Where one fetch task reads.
#[derive(Debug, Clone)]
pub(crate) struct FetchTarget {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    /// The stored position, if any: reading resumes at its `resume_offset`
    /// once it is found to belong to the partition.
    pub(crate) stored: Option<PartitionPosition>,
}

/// What every fetch task shares.
#[derive(Clone)]
pub(crate) struct FetchContext {
    pub(crate) client: Arc<KafkaClient>,
    pub(crate) config: FetchConfig,
    pub(crate) retry: RetryPolicy,
    pub(crate) metrics: Metrics,
    pub(crate) tx: mpsc::Sender<FetchResult>,
    pub(crate) stop: CancellationToken,
    /// Partitions the topic's metadata no longer lists: their tasks retry
    /// without a warning each time (the watcher warned once).
    pub(crate) gone: GonePartitions,
}

/// Partitions read before that the topic no longer has.
pub(crate) type GonePartitions = Arc<Mutex<BTreeSet<i32>>>;

/// Where a fetch task is.
struct Cursor {
    /// Offset to open the reader at; `None`: the earliest record.
    next: Option<i64>,
    /// The last record processed (stored or fetched).
    last: Option<LastRecord>,
    /// What the next identity check looks for: the last record handed on
    /// when the topic was last found unchanged, or the first one handed on
    /// since reading started afresh; `None`: `last`. Older than the records
    /// since, so a topic made again whose records came through unchecked
    /// (no error, no empty fetch between) still shows: its records at the
    /// anchor's offset are not the anchor.
    anchor: Option<LastRecord>,
    /// The loop has not been told where the partition starts yet.
    unannounced: Option<Option<PartitionPosition>>,
    /// The stored position's version.
    stored_version: u64,
    /// The last end offset found before the position and checked.
    checked_end: Option<i64>,
}

/// Starts fetching `target` until `stop` is cancelled or the receiver is
/// gone. Retryable errors are logged and retried with backoff (reopening
/// the partition); a fatal one is sent to the loop and ends the task.
pub(crate) fn spawn(ctx: FetchContext, target: FetchTarget) -> JoinHandle<()> {
    tokio::spawn(async move {
        let FetchContext {
            client,
            config,
            retry,
            metrics,
            tx,
            stop,
            gone,
        } = ctx;
        let mut delays = retry.delays();
        let mut reader: Option<PartitionReader> = None;
        let mut cursor = Cursor {
            next: PartitionState::start_offset(target.stored.as_ref()),
            last: target
                .stored
                .as_ref()
                .filter(|p| p.next_offset > 0)
                .map(|p| LastRecord {
                    offset: p.next_offset - 1,
                    hash: p.last_record_hash,
                }),
            anchor: None,
            unannounced: Some(target.stored.clone()),
            stored_version: target.stored.as_ref().map_or(0, |p| p.version),
            checked_end: None,
        };
        let mut checked_at = Instant::now();
        let mut handed_on_since_check = false;
        // Longer than a fetch that waits out `max_wait` for nothing.
        let quiet = config.max_wait * 2 + Duration::from_millis(200);
        // Longer than a fetch takes, unless rskafka reconnected within it
        // (a broker restarted meanwhile) or the broker was slow.
        let slow = config.max_wait + Duration::from_millis(100);
        let mut records_at = Instant::now();
        // The last fetch found nothing new.
        let mut caught_up = false;
        loop {
            let fetch_started = Instant::now();
            let result = match reader.as_mut() {
                Some(r) => {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        fetched = r.fetch() => fetched,
                    }
                }
                None => {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        opened = open_checked(&client, &target, config, &mut cursor, &metrics) => {
                            opened.map(|r| { reader = Some(r); Vec::new() })
                        }
                    }
                }
            };
            match result {
                Ok(records) => {
                    delays.reset();
                    // rskafka reconnects by itself, so a broker that lost its
                    // data or a recreated topic may raise no error: check the
                    // anchor before records that follow an empty fetch or a
                    // quiet spell or that a slow fetch brought, every second
                    // while records flow, and once after the last ones.
                    let stale = checked_at.elapsed() >= RECHECK_EVERY;
                    let due = match records.is_empty() {
                        false => {
                            stale
                                || caught_up
                                || records_at.elapsed() >= quiet
                                || fetch_started.elapsed() >= slow
                        }
                        true => stale && handed_on_since_check,
                    };
                    caught_up = records.is_empty();
                    if !records.is_empty() {
                        records_at = Instant::now();
                    }
                    if due {
                        checked_at = Instant::now();
                        handed_on_since_check = false;
                        if let Some(r) = reader.as_ref() {
                            let checked = tokio::select! {
                                _ = stop.cancelled() => return,
                                checked = check_cursor(r, &cursor) => checked,
                            };
                            match checked {
                                // A new topic starts at offset 0, so shows
                                // as truncated or replaced; records expired
                                // under a reader that waited (ClickHouse
                                // down) are retention's, counted below.
                                Ok(None | Some((_, Mismatch::Expired { .. }))) => {
                                    cursor.anchor = cursor.last;
                                }
                                Ok(Some((checked, mismatch))) => {
                                    start_over(&mut cursor, &metrics, &target, checked, mismatch);
                                    reader = None;
                                    continue;
                                }
                                // Reopened, and checked, before these records.
                                Err(_) => {
                                    reader = None;
                                    continue;
                                }
                            }
                        }
                    }
                    if let Some(start) = cursor.unannounced.take() {
                        let start = Fetched::Start {
                            partition: target.partition,
                            position: start,
                            versions_from: cursor.stored_version,
                        };
                        if tx.send(Ok(start)).await.is_err() {
                            return;
                        }
                    }
                    if let Some(r) = reader.as_mut() {
                        cursor.next = Some(r.next_offset());
                        if r.take_expired() > 0 {
                            // The reader warned with the count; the state is kept.
                            count_reset(&metrics, &target.topic, target.partition, "retention");
                        }
                    }
                    let Some(newest) = records.last() else {
                        // The partition ends before the position: truncated or
                        // recreated under the running consumer, or a stale end.
                        // Checked once per end reported.
                        let end = reader
                            .as_ref()
                            .and_then(PartitionReader::end_before_position);
                        if end.is_some() && end != cursor.checked_end {
                            cursor.checked_end = end;
                            reader = None;
                        }
                        continue;
                    };
                    if cursor.anchor.is_none() && cursor.last.is_none() {
                        cursor.anchor = records.first().map(LastRecord::of);
                    }
                    cursor.last = Some(LastRecord::of(newest));
                    let batch = Fetched::Records {
                        partition: target.partition,
                        records,
                    };
                    if tx.send(Ok(batch)).await.is_err() {
                        return;
                    }
                    handed_on_since_check = true;
                }
                // Beyond the end: reopening checks the topic's identity.
                Err(e) if e.is_retryable() || matches!(e, KafkaError::PositionBeyondEnd { .. }) => {
                    reader = None;
                    if matches!(e, KafkaError::TimedOut { .. }) {
                        // Reopened on a fresh connection: the old one may be dead.
                        client.mark_stale();
                    }
                    let delay = delays.next_delay();
                    if is_gone(&gone, target.partition) {
                        tracing::debug!(topic = %target.topic, partition = target.partition, error = %e, retry_in = ?delay, "partition gone from the topic; trying again");
                    } else {
                        tracing::warn!(topic = %target.topic, partition = target.partition, error = %e, retry_in = ?delay, "Kafka fetch failed; retrying");
                    }
                    metrics.source_retry("kafka_fetch");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    // Not asked for while the topic does not list it: rskafka
                    // would log each try as an error. Its return is noticed
                    // by the topic's listing, every partition refresh.
                    while is_gone(&gone, target.partition) {
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep(GONE_RECHECK) => {}
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
    })
}

/// Opens the partition at `cursor.next` after checking it still holds
/// the cursor's anchor; on a mismatch, warns, counts it and opens at the
/// earliest record with fresh state.
async fn open_checked(
    client: &KafkaClient,
    target: &FetchTarget,
    config: FetchConfig,
    cursor: &mut Cursor,
    metrics: &Metrics,
) -> Result<PartitionReader, KafkaError> {
    let (topic, partition) = (target.topic.as_str(), target.partition);
    let reader = PartitionReader::open(client, topic, partition, cursor.next, config).await?;
    let Some((checked, mismatch)) = check_cursor(&reader, cursor).await? else {
        cursor.anchor = cursor.last;
        return Ok(reader);
    };
    // Before opening again, so a failed open is not counted twice.
    start_over(cursor, metrics, target, checked, mismatch);
    PartitionReader::open(client, topic, partition, None, config).await
}

/// Whether the partition still holds the cursor's anchor (or, when
/// retention took the anchor, its last record); the record checked and
/// how it differs.
async fn check_cursor(
    reader: &PartitionReader,
    cursor: &Cursor,
) -> Result<Option<(LastRecord, Mismatch)>, KafkaError> {
    let Some(anchor) = cursor.anchor.or(cursor.last) else {
        return Ok(None);
    };
    let found = identity::check(reader, anchor).await?;
    if let (Some(Mismatch::Expired { .. }), Some(last)) = (found, cursor.last)
        && last != anchor
    {
        return Ok(identity::check(reader, last).await?.map(|m| (last, m)));
    }
    Ok(found.map(|m| (anchor, m)))
}

/// The position does not belong to the topic (`checked`, a record it
/// covers, is not there): warns, counts it, and moves the cursor to the
/// earliest record with fresh state.
fn start_over(
    cursor: &mut Cursor,
    metrics: &Metrics,
    target: &FetchTarget,
    checked: LastRecord,
    mismatch: Mismatch,
) {
    let position = cursor.last.map_or(checked.offset, |l| l.offset) + 1;
    tracing::warn!(
        topic = %target.topic,
        partition = target.partition,
        position,
        checked_offset = checked.offset,
        reason = mismatch.reason(),
        "the position does not belong to this topic: {mismatch}; reading the partition again from its earliest record"
    );
    count_reset(metrics, &target.topic, target.partition, mismatch.reason());
    *cursor = Cursor {
        next: None,
        last: None,
        anchor: None,
        unannounced: Some(None),
        ..*cursor
    };
}

/// How often a gone partition's task looks whether the topic lists it again.
const GONE_RECHECK: Duration = Duration::from_millis(500);

fn is_gone(gone: &GonePartitions, partition: i32) -> bool {
    gone.lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&partition)
}

pub(crate) fn count_reset(metrics: &Metrics, topic: &str, partition: i32, reason: &str) {
    metrics
        .topic_resets
        .get_or_create(&TopicResetLabel {
            topic: topic.to_owned(),
            partition,
            reason: reason.to_owned(),
        })
        .inc();
}
