//! The drop-oldest queue between socket readers and the consumer.
//!
//! Readers never wait: when the consumer falls behind, the oldest trades are
//! evicted and counted, and the evicted id ranges are reported so the
//! consumer backfills them over REST.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use pulse_core::{DropOldest, IdRange, Symbol, Trade};
use tokio::sync::Notify;

use crate::Metrics;

#[derive(Debug)]
pub(crate) struct Inbox {
    state: Mutex<State>,
    ready: Notify,
    metrics: Metrics,
}

#[derive(Debug)]
struct State {
    queue: DropOldest<Trade>,
    /// Lowest and highest evicted id per symbol since the last drain.
    evicted: BTreeMap<Symbol, IdRange>,
    /// Trades pushed so far: the position the next push takes.
    pushed: u64,
    /// Trades drained or evicted so far: the position of the oldest queued.
    taken: u64,
}

impl Inbox {
    pub(crate) fn new(capacity: usize, metrics: Metrics) -> Self {
        Inbox {
            state: Mutex::new(State {
                queue: DropOldest::new(capacity),
                evicted: BTreeMap::new(),
                pushed: 0,
                taken: 0,
            }),
            ready: Notify::new(),
            metrics,
        }
    }

    /// Queues `trade`, evicting the oldest one when full.
    pub(crate) fn push(&self, trade: Trade) {
        let mut state = self.state.lock().unwrap();
        state.pushed += 1;
        if let Some(old) = state.queue.push(trade) {
            state.taken += 1;
            self.metrics.queue_dropped.inc();
            if state.evicted.is_empty() {
                tracing::warn!(
                    capacity = state.queue.capacity(),
                    "trade queue full: dropping the oldest trades; backfill will repair them"
                );
            }
            let range = state.evicted.entry(old.symbol).or_insert(IdRange {
                first: old.id,
                last: old.id,
            });
            range.first = range.first.min(old.id);
            range.last = range.last.max(old.id);
        }
        drop(state);
        self.ready.notify_one();
    }

    /// Moves everything queued into `trades`, each with its position (see
    /// [`pushed`](Self::pushed)), and the evicted ranges into `evicted`.
    pub(crate) fn drain(
        &self,
        trades: &mut VecDeque<(u64, Trade)>,
        evicted: &mut Vec<(Symbol, IdRange)>,
    ) {
        let mut state = self.state.lock().unwrap();
        trades.reserve(state.queue.len());
        while let Some(t) = state.queue.pop() {
            trades.push_back((state.taken, t));
            state.taken += 1;
        }
        evicted.extend(std::mem::take(&mut state.evicted));
    }

    /// The position the next trade pushed takes: a reader notes it before
    /// its new connection delivers anything, so the consumer can tell the
    /// trades before the reconnect from those after.
    pub(crate) fn pushed(&self) -> u64 {
        self.state.lock().unwrap().pushed
    }

    /// Resolves after the next push (or at once if one happened since the
    /// last wait). Cancel-safe: nothing is taken from the queue.
    pub(crate) async fn wait(&self) {
        self.ready.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_core::{Decimal, Side, TradeKind};

    fn trade(symbol: &str, id: u64) -> Trade {
        Trade {
            symbol: Symbol::new(symbol).unwrap(),
            id,
            kind: TradeKind::AggTrade,
            price: Decimal::from_raw(1),
            quantity: Decimal::from_raw(1),
            side: Side::Buy,
            trade_time_ms: 0,
            event_time_ms: 0,
            first_trade_id: id,
            last_trade_id: id,
        }
    }

    #[test]
    fn evictions_are_counted_and_reported_per_symbol() {
        let metrics = Metrics::new();
        let inbox = Inbox::new(2, metrics.clone());
        for (s, id) in [
            ("BTCUSDT", 1),
            ("ETHUSDT", 7),
            ("BTCUSDT", 2),
            ("BTCUSDT", 3),
            ("ETHUSDT", 8),
        ] {
            inbox.push(trade(s, id));
        }
        let (mut trades, mut evicted) = (VecDeque::new(), Vec::new());
        inbox.drain(&mut trades, &mut evicted);
        // Positions count the evicted trades too.
        let ids: Vec<(u64, u64)> = trades.iter().map(|(at, t)| (*at, t.id)).collect();
        assert_eq!(ids, vec![(3, 3), (4, 8)]);
        assert_eq!(inbox.pushed(), 5);
        let btc = Symbol::new("BTCUSDT").unwrap();
        let eth = Symbol::new("ETHUSDT").unwrap();
        assert_eq!(
            evicted,
            vec![
                (btc, IdRange { first: 1, last: 2 }),
                (eth, IdRange { first: 7, last: 7 })
            ]
        );
        assert_eq!(metrics.queue_dropped.get(), 3);
        inbox.drain(&mut trades, &mut evicted);
        assert_eq!(evicted.len(), 2, "reported once");
    }
}
