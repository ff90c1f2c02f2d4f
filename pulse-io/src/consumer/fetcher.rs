//! One task per partition that fetches records and hands them to the
//! consumer loop over a bounded channel (full channel = backpressure while
//! ClickHouse is slow or down).

use std::sync::Arc;

use rskafka::client::Client;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::kafka::{FetchConfig, FetchedRecord, KafkaError, PartitionReader};
use crate::retry::RetryPolicy;

/// Records fetched from one partition, in offset order.
#[derive(Debug)]
pub(crate) struct FetchedBatch {
    pub(crate) partition: i32,
    pub(crate) records: Vec<FetchedRecord>,
}

pub(crate) type FetchResult = Result<FetchedBatch, KafkaError>;

/// Where one fetch task reads.
#[derive(Debug, Clone)]
pub(crate) struct FetchTarget {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) start: Option<i64>,
}

/// Starts fetching `target` until `stop` is cancelled or the receiver is
/// gone. Retryable errors are logged and retried with backoff; a fatal one
/// is sent to the loop and ends the task.
pub(crate) fn spawn(
    client: Arc<Client>,
    target: FetchTarget,
    config: FetchConfig,
    retry: RetryPolicy,
    tx: mpsc::Sender<FetchResult>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut delays = retry.delays();
        let mut reader: Option<PartitionReader> = None;
        let mut next = target.start;
        loop {
            let result = match reader.as_mut() {
                Some(r) => {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        fetched = r.fetch() => fetched.map(Some),
                    }
                }
                None => {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        opened = PartitionReader::open(&client, &target.topic, target.partition, next, config) => {
                            opened.map(|r| { reader = Some(r); None })
                        }
                    }
                }
            };
            match result {
                Ok(None) => {}
                Ok(Some(records)) => {
                    delays.reset();
                    if let Some(r) = &reader {
                        next = Some(r.next_offset());
                    }
                    if records.is_empty() {
                        continue;
                    }
                    let batch = FetchedBatch {
                        partition: target.partition,
                        records,
                    };
                    if tx.send(Ok(batch)).await.is_err() {
                        return;
                    }
                }
                Err(e) if e.is_retryable() => {
                    let delay = delays.next_delay();
                    tracing::warn!(topic = %target.topic, partition = target.partition, error = %e, retry_in = ?delay, "Kafka fetch failed; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
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
