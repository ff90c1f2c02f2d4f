//! The shard readers running now, each stoppable on its own, so a new
//! shard plan can replace some connections and keep the others.
//!
//! Every reader gets a shard index of its own for the source's lifetime
//! (`0..n` at start-up, then counting on), so logs never mix up an old
//! connection and its replacement.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use pulse_core::{Shard, Symbol};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::config::BinanceConfig;
use super::connect::Ws;
use super::inbox::Inbox;
use super::reader::{ShardEvent, ShardReader};
use crate::{Metrics, SourceError};

/// What every reader shares with the source.
#[derive(Debug)]
pub(crate) struct ReaderParts {
    pub(crate) config: Arc<BinanceConfig>,
    pub(crate) tls: Arc<rustls::ClientConfig>,
    pub(crate) inbox: Arc<Inbox>,
    pub(crate) events: mpsc::UnboundedSender<ShardEvent>,
    pub(crate) metrics: Metrics,
    /// The source's token; each reader's is a child of it.
    pub(crate) cancel: CancellationToken,
}

#[derive(Debug)]
struct Running {
    shard: Shard,
    stop: CancellationToken,
}

/// The readers, by shard index. Dropping it stops them all.
#[derive(Debug)]
pub(crate) struct Readers {
    parts: ReaderParts,
    /// Each task returns its shard index when it ends.
    tasks: JoinSet<usize>,
    running: BTreeMap<usize, Running>,
    next_index: usize,
}

impl Readers {
    pub(crate) fn new(parts: ReaderParts) -> Self {
        Readers {
            parts,
            tasks: JoinSet::new(),
            running: BTreeMap::new(),
            next_index: 0,
        }
    }

    /// Gives `shard` the next index, to call before connecting it.
    pub(crate) fn number(&mut self, mut shard: Shard) -> Shard {
        shard.index = self.next_index;
        self.next_index += 1;
        shard
    }

    /// Starts reading a numbered shard already connected (at start-up).
    pub(crate) fn start_connected(&mut self, shard: Shard, ws: Ws) {
        let reader = self.reader(shard);
        let index = reader.shard.index;
        self.tasks.spawn(async move {
            reader.run(ws).await;
            index
        });
    }

    /// Starts a new shard that connects by itself and reports
    /// [`ShardEvent::Connected`] with the index returned.
    pub(crate) fn start(&mut self, shard: Shard) -> usize {
        let shard = self.number(shard);
        let reader = self.reader(shard);
        let index = reader.shard.index;
        self.tasks.spawn(async move {
            reader.connect_then_run().await;
            index
        });
        index
    }

    fn reader(&mut self, shard: Shard) -> ShardReader {
        let stop = self.parts.cancel.child_token();
        self.running.insert(
            shard.index,
            Running {
                shard: shard.clone(),
                stop: stop.clone(),
            },
        );
        let parts = &self.parts;
        ShardReader {
            followed: shard.symbols.iter().copied().collect(),
            carried_agg_trades: HashSet::new(),
            shard,
            config: parts.config.clone(),
            tls: parts.tls.clone(),
            inbox: parts.inbox.clone(),
            events: parts.events.clone(),
            metrics: parts.metrics.clone(),
            cancel: stop,
            rejected: 0,
            delivered_until_ms: None,
            backoff: parts.config.retry.delays(),
        }
    }

    /// Stops a reader; its connection closes and its task ends quietly.
    pub(crate) fn stop(&mut self, index: usize) {
        if let Some(running) = self.running.remove(&index) {
            running.stop.cancel();
        }
    }

    /// True while the reader `index` runs (it was started and not stopped).
    pub(crate) fn is_running(&self, index: usize) -> bool {
        self.running.contains_key(&index)
    }

    /// The reader whose connection carries exactly `url`'s streams.
    pub(crate) fn find(&self, url: &str) -> Option<usize> {
        self.running
            .iter()
            .find(|(_, r)| r.shard.url == url)
            .map(|(&index, _)| index)
    }

    /// The indices of every reader running.
    pub(crate) fn indices(&self) -> Vec<usize> {
        self.running.keys().copied().collect()
    }

    /// The symbols reader `index` carries.
    pub(crate) fn symbols(&self, index: usize) -> &[Symbol] {
        self.running
            .get(&index)
            .map_or(&[], |r| r.shard.symbols.as_slice())
    }

    /// Readers running.
    pub(crate) fn len(&self) -> usize {
        self.running.len()
    }

    /// Resolves when a reader ends without being stopped, which is a bug:
    /// readers reconnect for ever. Pending while none does. Cancel-safe.
    pub(crate) async fn failed(&mut self) -> SourceError {
        loop {
            match self.tasks.join_next().await {
                None => std::future::pending::<()>().await,
                Some(Ok(index)) if !self.running.contains_key(&index) => {}
                Some(ended) => {
                    return SourceError::Other(format!("a Binance reader task stopped: {ended:?}"));
                }
            }
        }
    }
}
