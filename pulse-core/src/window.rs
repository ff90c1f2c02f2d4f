//! One window's exact running sums, and the metrics row it closes into.

use crate::decimal::{SCALE, ratio_to_f64};
use crate::{Decimal, Side, Signal, Symbol, Trade};

/// A price with the trade that set it, ordered by (trade time, id) so that
/// open and close do not depend on arrival order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Stamped {
    time_ms: i64,
    id: u64,
    price: Decimal,
}

/// Exact running sums for one symbol's window. All integer, so adding the
/// same trades in any order gives the same state.
#[derive(Clone, Debug)]
pub struct WindowStats {
    trade_count: u64,
    /// Σq, in units of 10^-8.
    volume: i128,
    buy_volume: i128,
    /// Σ(p·q), in units of 10^-16.
    notional: i128,
    /// Σp, in units of 10^-8.
    price_sum: i128,
    open: Stamped,
    close: Stamped,
    high: Decimal,
    low: Decimal,
    first_id: u64,
    last_id: u64,
}

impl WindowStats {
    /// Sums for a window holding just `trade`.
    pub fn new(trade: &Trade) -> Self {
        let stamp = Stamped {
            time_ms: trade.trade_time_ms,
            id: trade.id,
            price: trade.price,
        };
        let mut stats = WindowStats {
            trade_count: 0,
            volume: 0,
            buy_volume: 0,
            notional: 0,
            price_sum: 0,
            open: stamp,
            close: stamp,
            high: trade.price,
            low: trade.price,
            first_id: trade.id,
            last_id: trade.id,
        };
        stats.add(trade);
        stats
    }

    /// Adds one trade.
    #[inline]
    pub fn add(&mut self, trade: &Trade) {
        let p = trade.price.raw() as i128;
        let q = trade.quantity.raw() as i128;
        self.trade_count += 1;
        self.volume += q;
        if trade.side == Side::Buy {
            self.buy_volume += q;
        }
        self.notional += p * q;
        self.price_sum += p;
        let stamp = Stamped {
            time_ms: trade.trade_time_ms,
            id: trade.id,
            price: trade.price,
        };
        self.open = self.open.min(stamp);
        self.close = self.close.max(stamp);
        self.high = self.high.max(trade.price);
        self.low = self.low.min(trade.price);
        self.first_id = self.first_id.min(trade.id);
        self.last_id = self.last_id.max(trade.id);
    }

    /// Number of trades added.
    pub fn trade_count(&self) -> u64 {
        self.trade_count
    }

    /// Exact total volume Σq.
    pub fn volume(&self) -> Decimal {
        to_decimal(self.volume)
    }

    /// Computes the metrics row.
    pub fn finish(&self, symbol: Symbol, start_ms: i64, end_ms: i64, version: u64) -> Window {
        let n = self.trade_count as i128;
        let sell_volume = self.volume - self.buy_volume;
        let delta = self.buy_volume - sell_volume;
        // avg vs vwap exactly: Σp/n vs Σpq/Σq  ⇔  Σp·Σq vs Σpq·n (all positive).
        let avg_vs_vwap = (self.price_sum * self.volume).cmp(&(self.notional * n));
        // Exactly, low ≤ vwap ≤ high and low ≤ avg ≤ high; clamping keeps the
        // last-bit rounding of the f64 division from stepping outside.
        let (low, high) = (self.low.to_f64(), self.high.to_f64());
        Window {
            symbol,
            start_ms,
            end_ms,
            version,
            vwap: ratio_to_f64(self.notional, self.volume * SCALE as i128).clamp(low, high),
            net_delta: ratio_to_f64(delta, SCALE as i128),
            buy_pressure_pct: ratio_to_f64(100 * self.buy_volume, self.volume),
            total_volume: ratio_to_f64(self.volume, SCALE as i128),
            trade_count: self.trade_count,
            avg_price_1_sec: ratio_to_f64(self.price_sum, n * SCALE as i128).clamp(low, high),
            signal: Signal::classify(avg_vs_vwap, delta.cmp(&0)),
            open: self.open.price,
            high: self.high,
            low: self.low,
            close: self.close.price,
            volume: to_decimal(self.volume),
            buy_volume: to_decimal(self.buy_volume),
            sell_volume: to_decimal(sell_volume),
            first_trade_id: self.first_id,
            last_trade_id: self.last_id,
        }
    }
}

/// Sums of real trades fit in i64 by a wide margin; saturate rather than wrap.
fn to_decimal(v: i128) -> Decimal {
    Decimal::from_raw(v.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
}

/// A closed window's metrics: one row of `pulse_metrics`.
///
/// The `f64` fields are computed from exact integer sums, so the same trades
/// always give the same bits. The exact values are kept beside them.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Window {
    /// Trading pair.
    pub symbol: Symbol,
    /// Inclusive window start, ms since the epoch.
    pub start_ms: i64,
    /// Exclusive window end, ms since the epoch.
    pub end_ms: i64,
    /// 1 on first emission; higher when re-emitted with late trades.
    pub version: u64,
    /// Σ(p·q) / Σq.
    pub vwap: f64,
    /// Σq(BUY) − Σq(SELL).
    pub net_delta: f64,
    /// 100 · Σq(BUY) / Σq.
    pub buy_pressure_pct: f64,
    /// Σq.
    pub total_volume: f64,
    /// Number of trades (aggTrades for `@aggTrade` streams).
    pub trade_count: u64,
    /// Simple mean of the prices.
    pub avg_price_1_sec: f64,
    /// The rule-based signal.
    pub signal: Signal,
    /// Price of the first trade by (trade time, id).
    pub open: Decimal,
    /// Highest price.
    pub high: Decimal,
    /// Lowest price.
    pub low: Decimal,
    /// Price of the last trade by (trade time, id).
    pub close: Decimal,
    /// Σq, exact.
    pub volume: Decimal,
    /// Σq(BUY), exact.
    pub buy_volume: Decimal,
    /// Σq(SELL), exact.
    pub sell_volume: Decimal,
    /// Smallest trade id in the window.
    pub first_trade_id: u64,
    /// Largest trade id in the window.
    pub last_trade_id: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TradeKind;

    fn trade(id: u64, t: i64, p: &str, q: &str, side: Side) -> Trade {
        Trade {
            symbol: Symbol::new("BTCUSDT").unwrap(),
            id,
            kind: TradeKind::AggTrade,
            price: p.parse().unwrap(),
            quantity: q.parse().unwrap(),
            side,
            trade_time_ms: t,
            event_time_ms: t,
            first_trade_id: id,
            last_trade_id: id,
        }
    }

    fn window(trades: &[Trade]) -> Window {
        let mut stats = WindowStats::new(&trades[0]);
        for t in &trades[1..] {
            stats.add(t);
        }
        stats.finish(trades[0].symbol, 0, 1000, 1)
    }

    #[test]
    fn metrics_by_hand() {
        // vwap = (100·1 + 110·3) / 4 = 107.5; avg = 105; delta = 1 − 3 = −2.
        let w = window(&[
            trade(1, 10, "100", "1", Side::Buy),
            trade(2, 20, "110", "3", Side::Sell),
        ]);
        assert_eq!(w.vwap, 107.5);
        assert_eq!(w.avg_price_1_sec, 105.0);
        assert_eq!(w.net_delta, -2.0);
        assert_eq!(w.buy_pressure_pct, 25.0);
        assert_eq!(w.total_volume, 4.0);
        assert_eq!(w.trade_count, 2);
        assert_eq!(w.signal, Signal::StrongSell);
        assert_eq!(
            (w.open.to_string(), w.close.to_string()),
            ("100".into(), "110".into())
        );
        assert_eq!(
            (w.low.to_string(), w.high.to_string()),
            ("100".into(), "110".into())
        );
        assert_eq!(w.buy_volume.to_string(), "1");
        assert_eq!(w.sell_volume.to_string(), "3");
        assert_eq!((w.first_trade_id, w.last_trade_id), (1, 2));
    }

    #[test]
    fn signal_table() {
        use Side::*;
        let cases = [
            (
                "all buys, avg>vwap",
                vec![("100", "3", Buy), ("110", "1", Buy)],
                Signal::StrongBuy,
            ),
            (
                "strong buy",
                vec![("100", "1", Sell), ("110", "3", Buy), ("120", "0.5", Buy)],
                Signal::StrongBuy,
            ),
            (
                "strong sell",
                vec![("100", "1", Buy), ("110", "3", Sell)],
                Signal::StrongSell,
            ),
            (
                "accumulating",
                vec![("100", "1", Sell), ("110", "3", Buy)],
                Signal::Accumulating,
            ),
            (
                "distributing",
                vec![("100", "3", Sell), ("110", "1", Buy)],
                Signal::Distributing,
            ),
            (
                "tie price",
                vec![("100", "1", Buy), ("100", "2", Buy)],
                Signal::Neutral,
            ),
            (
                "tie delta",
                vec![("100", "1", Buy), ("110", "1", Sell)],
                Signal::Neutral,
            ),
        ];
        for (name, spec, expected) in cases {
            let trades: Vec<Trade> = spec
                .iter()
                .enumerate()
                .map(|(i, (p, q, s))| trade(i as u64, i as i64, p, q, *s))
                .collect();
            let w = window(&trades);
            assert_eq!(
                w.signal, expected,
                "{name}: avg {} vwap {} delta {}",
                w.avg_price_1_sec, w.vwap, w.net_delta
            );
        }
    }

    #[test]
    fn open_close_follow_time_then_id_not_arrival() {
        let a = trade(7, 500, "1", "1", Side::Buy);
        let b = trade(5, 500, "2", "1", Side::Buy);
        let c = trade(9, 100, "3", "1", Side::Buy);
        let w1 = window(&[a, b, c]);
        let w2 = window(&[c, a, b]);
        assert_eq!(w1, w2);
        assert_eq!(
            (w1.open.to_string(), w1.close.to_string()),
            ("3".into(), "1".into())
        );
    }
}
