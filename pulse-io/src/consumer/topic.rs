//! The topic as a pipeline [`Source`]: one fetch task per partition feeding
//! a bounded channel (full channel = backpressure while ClickHouse is slow
//! or down).

use std::sync::Arc;

use async_trait::async_trait;
use rskafka::client::Client;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::fetcher::{self, FetchResult, FetchTarget};
use crate::kafka::{FetchConfig, FetchedRecord};
use crate::retry::RetryPolicy;
use crate::source::{Source, SourceError};

/// One record and the partition it came from.
#[derive(Debug)]
pub(crate) struct TopicRecord {
    pub(crate) partition: i32,
    pub(crate) record: FetchedRecord,
}

/// Records of the selected partitions, each partition in offset order.
/// Dropping it stops the fetch tasks.
pub(crate) struct TopicSource {
    rx: mpsc::Receiver<FetchResult>,
    stop: CancellationToken,
}

impl TopicSource {
    /// Starts fetching every target.
    pub(crate) fn start(
        client: Arc<Client>,
        targets: Vec<FetchTarget>,
        config: FetchConfig,
        retry: RetryPolicy,
    ) -> Self {
        let stop = CancellationToken::new();
        let (tx, rx) = mpsc::channel(4 * targets.len().max(1));
        for target in targets {
            fetcher::spawn(
                client.clone(),
                target,
                config,
                retry,
                tx.clone(),
                stop.clone(),
            );
        }
        TopicSource { rx, stop }
    }
}

impl Drop for TopicSource {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[async_trait]
impl Source<TopicRecord> for TopicSource {
    /// Cancel-safe: `mpsc::Receiver::recv` is.
    async fn next_batch(&mut self, out: &mut Vec<TopicRecord>) -> Result<bool, SourceError> {
        match self.rx.recv().await {
            Some(Ok(batch)) => {
                let partition = batch.partition;
                out.extend(
                    batch
                        .records
                        .into_iter()
                        .map(|record| TopicRecord { partition, record }),
                );
                Ok(true)
            }
            Some(Err(e)) => Err(e.into()),
            None => Ok(false),
        }
    }
}
