//! Continuing a topic where it ends: a [`TradeSource`] adapter for a
//! restarted producer.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use pulse_core::{Symbol, Trade};

use super::LastTrade;
use crate::metrics::Metrics;
use crate::source::{SourceError, TradeSource};

/// Passes on only the trades that come after each symbol's last trade on the
/// topic (from [`last_trades_on_topic`](super::last_trades_on_topic)), so a
/// restarted producer does not publish them twice, and reports how many
/// trades are missing between that last trade and the first new one.
///
/// The missing ones are counted in `pulse_gaps_total` and
/// `pulse_trades_unfilled_total`: fetching them over REST is the source's
/// job, once it can be told where to resume.
pub struct ResumeFilter {
    inner: Box<dyn TradeSource>,
    last: BTreeMap<Symbol, u64>,
    started: BTreeSet<Symbol>,
    metrics: Metrics,
    skipped: u64,
}

impl std::fmt::Debug for ResumeFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumeFilter")
            .field("last", &self.last)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

impl ResumeFilter {
    /// Wraps `inner`, resuming each symbol after its entry in `last`.
    pub fn new(
        inner: Box<dyn TradeSource>,
        last: &BTreeMap<Symbol, LastTrade>,
        metrics: Metrics,
    ) -> Self {
        ResumeFilter {
            inner,
            last: last.iter().map(|(s, t)| (*s, t.id)).collect(),
            started: BTreeSet::new(),
            metrics,
            skipped: 0,
        }
    }

    /// Trades dropped because the topic already had them.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Whether `trade` is new; notes the gap before a symbol's first new trade.
    fn admit(&mut self, trade: &Trade) -> bool {
        let Some(&last) = self.last.get(&trade.symbol) else {
            return true;
        };
        if trade.id <= last {
            self.skipped += 1;
            return false;
        }
        if self.started.insert(trade.symbol) {
            let missing = trade.id - last - 1;
            if missing > 0 {
                let label = Metrics::symbol(trade.symbol.as_str());
                self.metrics.gaps.get_or_create(&label).inc();
                self.metrics
                    .trades_unfilled
                    .get_or_create(&label)
                    .inc_by(missing);
                tracing::warn!(
                    symbol = %trade.symbol,
                    last_on_topic = last,
                    first_new = trade.id,
                    missing,
                    "trades between the topic's last trade and the first new one are missing"
                );
            } else {
                tracing::info!(symbol = %trade.symbol, after = last, "continuing the topic without a gap");
            }
        }
        true
    }
}

#[async_trait]
impl TradeSource for ResumeFilter {
    async fn next_trades(&mut self, out: &mut Vec<Trade>) -> Result<bool, SourceError> {
        loop {
            let start = out.len();
            let more = self.inner.next_trades(out).await?;
            let mut kept = start;
            for i in start..out.len() {
                let trade = out[i];
                if self.admit(&trade) {
                    out[kept] = trade;
                    kept += 1;
                }
            }
            out.truncate(kept);
            // Never report "no trades" while the source goes on.
            if kept > start || !more {
                return Ok(more);
            }
        }
    }

    fn is_live(&self) -> bool {
        self.inner.is_live()
    }
}

#[cfg(test)]
mod tests {
    use pulse_core::{Decimal, Side, TradeKind};

    use super::*;

    struct Batches(Vec<Vec<Trade>>);

    #[async_trait]
    impl TradeSource for Batches {
        async fn next_trades(&mut self, out: &mut Vec<Trade>) -> Result<bool, SourceError> {
            if self.0.is_empty() {
                return Ok(false);
            }
            out.extend(self.0.remove(0));
            Ok(!self.0.is_empty())
        }
    }

    fn trade(symbol: &str, id: u64) -> Trade {
        Trade {
            symbol: Symbol::new(symbol).unwrap(),
            id,
            kind: TradeKind::AggTrade,
            price: Decimal::from_raw(100),
            quantity: Decimal::from_raw(1),
            side: Side::Buy,
            trade_time_ms: id as i64,
            event_time_ms: id as i64,
            first_trade_id: id,
            last_trade_id: id,
        }
    }

    #[tokio::test]
    async fn drops_what_the_topic_has_and_counts_the_gap() {
        let btc = Symbol::new("BTCUSDT").unwrap();
        let last = BTreeMap::from([(
            btc,
            LastTrade {
                id: 10,
                trade_time_ms: 10,
                partition: 0,
                offset: 3,
            },
        )]);
        let inner = Batches(vec![
            vec![trade("BTCUSDT", 9), trade("BTCUSDT", 10)],
            vec![
                trade("ETHUSDT", 1),
                trade("BTCUSDT", 14),
                trade("BTCUSDT", 15),
            ],
        ]);
        let metrics = Metrics::new();
        let mut filter = ResumeFilter::new(Box::new(inner), &last, metrics.clone());
        let mut out = Vec::new();
        // The first batch is all old: the filter reads on rather than return nothing.
        assert!(!filter.next_trades(&mut out).await.unwrap());
        let ids: Vec<(&str, u64)> = out.iter().map(|t| (t.symbol.as_str(), t.id)).collect();
        assert_eq!(ids, [("ETHUSDT", 1), ("BTCUSDT", 14), ("BTCUSDT", 15)]);
        assert_eq!(filter.skipped(), 2);
        let text = metrics.encode();
        assert!(
            text.contains("pulse_trades_unfilled_total{symbol=\"BTCUSDT\"} 3"),
            "{text}"
        );
    }
}
