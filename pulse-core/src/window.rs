//! One window's exact running sums, and the metrics row it closes into.
//!
//! Sums are checked, not wrapped or saturated: a window whose sums leave
//! their integer range, or whose exact columns do not fit a [`Decimal`],
//! closes into a [`WindowError`] instead of a row. Checking costs a flag
//! per add; the build profile's `overflow-checks` are not relied on, since
//! an embedder's release build decides those.

use std::cmp::Ordering;

use crate::decimal::{SCALE, ratio_to_f64};
use crate::{Decimal, DecimalSum, Side, Signal, Symbol, Trade};

/// Why a window has no row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WindowError {
    /// A running sum left the `i128` range.
    #[error("{sum} overflows 128 bits")]
    Overflow {
        /// Which sum, e.g. `Σ(p·q)`.
        sum: &'static str,
    },
    /// Σq is not positive, so VWAP and buy pressure are undefined (only
    /// trades built by hand can do this: parsers reject such quantities).
    #[error("total volume is not positive")]
    NoVolume,
}

/// A closed window that has no row, see [`WindowError`]. Its trades are
/// counted here instead of in a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RejectedWindow {
    /// Trading pair.
    pub symbol: Symbol,
    /// Inclusive window start, ms since the epoch.
    pub start_ms: i64,
    /// Exclusive window end, ms since the epoch.
    pub end_ms: i64,
    /// The emission it would have been (1 first, higher when re-emitted).
    pub version: u64,
    /// Trades in it.
    pub trade_count: u64,
    /// Why it has no row.
    pub error: WindowError,
}

impl WindowStats {
    /// [`finish`](Self::finish), as the event the aggregator reports.
    pub(crate) fn close(
        &self,
        symbol: Symbol,
        start_ms: i64,
        end_ms: i64,
        version: u64,
    ) -> crate::Event {
        match self.finish(symbol, start_ms, end_ms, version) {
            Ok(window) => crate::Event::Window(window),
            Err(error) => crate::Event::Rejected(RejectedWindow {
                symbol,
                start_ms,
                end_ms,
                version,
                trade_count: self.trade_count,
                error,
            }),
        }
    }
}

impl WindowError {
    /// Every label [`reason`](Self::reason) gives, so a metric can show
    /// each at zero before the first rejected window.
    pub const REASONS: &'static [&'static str] = &["overflow", "no_volume"];

    /// A short, stable label for metrics, e.g. `overflow`.
    pub fn reason(&self) -> &'static str {
        match self {
            WindowError::Overflow { .. } => "overflow",
            WindowError::NoVolume => "no_volume",
        }
    }
}

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
    /// A sum overflowed at some add; sticky, so the window is rejected.
    overflowed: Option<&'static str>,
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
            overflowed: None,
        };
        stats.add(trade);
        stats
    }

    /// Adds one trade.
    #[inline]
    pub fn add(&mut self, trade: &Trade) {
        let p = trade.price.raw() as i128;
        let q = trade.quantity.raw() as i128;
        // 2^64 trades in one window cannot happen.
        self.trade_count += 1;
        // |p|, |q| ≤ 2^63, so p·q ≤ 2^126 fits; the sums may not. Flags are
        // or-ed rather than branched on: this is the hot path.
        let buy = if trade.side == Side::Buy { q } else { 0 };
        let (volume, o1) = self.volume.overflowing_add(q);
        let (buy_volume, o2) = self.buy_volume.overflowing_add(buy);
        let (notional, o3) = self.notional.overflowing_add(p * q);
        let (price_sum, o4) = self.price_sum.overflowing_add(p);
        if o1 | o2 | o3 | o4 {
            self.overflowed = self.overflowed.or(Some(match (o1, o2, o3) {
                (true, _, _) => "Σq",
                (_, true, _) => "Σq(BUY)",
                (_, _, true) => "Σ(p·q)",
                _ => "Σp",
            }));
        }
        (self.volume, self.buy_volume) = (volume, buy_volume);
        (self.notional, self.price_sum) = (notional, price_sum);
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
    pub fn volume(&self) -> DecimalSum {
        DecimalSum::from_raw(self.volume)
    }

    /// Computes the metrics row, or says why the window cannot have one.
    pub fn finish(
        &self,
        symbol: Symbol,
        start_ms: i64,
        end_ms: i64,
        version: u64,
    ) -> Result<Window, WindowError> {
        if let Some(sum) = self.overflowed {
            return Err(WindowError::Overflow { sum });
        }
        if self.volume <= 0 {
            return Err(WindowError::NoVolume);
        }
        let n = self.trade_count as i128;
        // 0 ≤ Σq(BUY) ≤ Σq, so neither difference can overflow.
        let sell_volume = self.volume - self.buy_volume;
        let delta = self.buy_volume - sell_volume;
        // avg vs vwap exactly: Σp/n vs Σpq/Σq  ⇔  Σp·Σq vs Σpq·n (n, Σq > 0);
        // the products can need more than 128 bits.
        let avg_vs_vwap = cmp_products(self.price_sum, self.volume, self.notional, n);
        // Exactly, low ≤ vwap ≤ high and low ≤ avg ≤ high; clamping keeps the
        // last-bit rounding of the f64 division from stepping outside.
        let (low, high) = (self.low.to_f64(), self.high.to_f64());
        Ok(Window {
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
            volume: DecimalSum::from_raw(self.volume),
            buy_volume: DecimalSum::from_raw(self.buy_volume),
            sell_volume: DecimalSum::from_raw(sell_volume),
            first_trade_id: self.first_id,
            last_trade_id: self.last_id,
        })
    }
}

/// `a·b` against `c·d`, exactly, though the products may need 256 bits.
fn cmp_products(a: i128, b: i128, c: i128, d: i128) -> Ordering {
    let sign = |x: i128, y: i128| x.signum() * y.signum();
    let (left, right) = (sign(a, b), sign(c, d));
    if left != right {
        return left.cmp(&right);
    }
    let l = mul_wide(a.unsigned_abs(), b.unsigned_abs());
    let r = mul_wide(c.unsigned_abs(), d.unsigned_abs());
    // Both negative: the larger magnitude is the smaller product.
    if left < 0 { r.cmp(&l) } else { l.cmp(&r) }
}

/// The full 256-bit product `x·y` as (high, low) 128-bit halves, which
/// compare as a tuple in the order of the product.
fn mul_wide(x: u128, y: u128) -> (u128, u128) {
    const LOW: u128 = u64::MAX as u128;
    let (x1, x0) = (x >> 64, x & LOW);
    let (y1, y0) = (y >> 64, y & LOW);
    let (p00, p01, p10, p11) = (x0 * y0, x0 * y1, x1 * y0, x1 * y1);
    // Each part < 2^64, so the middle column cannot overflow.
    let mid = (p00 >> 64) + (p01 & LOW) + (p10 & LOW);
    let low = (p00 & LOW) | (mid << 64);
    let high = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (high, low)
}

/// A closed window's metrics: one row of `pulse_metrics`.
///
/// The `f64` fields are computed from exact integer sums, so the same trades
/// always give the same bits. The exact values are kept beside them (and
/// [`exact_net_delta`](Self::exact_net_delta) gives the delta exactly).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Window {
    /// Trading pair.
    pub symbol: Symbol,
    /// Inclusive window start, ms since the epoch.
    pub start_ms: i64,
    /// Exclusive window end, ms since the epoch.
    pub end_ms: i64,
    /// 1 on first emission; higher when re-emitted with late trades. This
    /// counts emissions by this aggregator only: a sink that keeps the
    /// newest row of a window across restarts (pulse's `version` column,
    /// ReplacingMergeTree) should order rows by `trade_count`, since every
    /// later row of a window holds more of its trades.
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
    pub volume: DecimalSum,
    /// Σq(BUY), exact.
    pub buy_volume: DecimalSum,
    /// Σq(SELL), exact.
    pub sell_volume: DecimalSum,
    /// Smallest trade id in the window.
    pub first_trade_id: u64,
    /// Largest trade id in the window.
    pub last_trade_id: u64,
}

impl Window {
    /// Σq(BUY) − Σq(SELL), exact: [`net_delta`](Self::net_delta) before
    /// its rounding to `f64`.
    pub fn exact_net_delta(&self) -> DecimalSum {
        // Both lie in 0..=Σq, so the difference cannot overflow.
        DecimalSum::from_raw(self.buy_volume.raw() - self.sell_volume.raw())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TradeKind;

    #[test]
    fn reasons_lists_every_label() {
        let errors = [WindowError::Overflow { sum: "Σq" }, WindowError::NoVolume];
        let labels: Vec<&str> = errors.iter().map(WindowError::reason).collect();
        assert_eq!(labels, WindowError::REASONS);
    }

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
        stats.finish(trades[0].symbol, 0, 1000, 1).unwrap()
    }

    #[test]
    fn the_exact_delta_keeps_what_f64_rounds() {
        // 0.1 + 0.2 of buys against 0.3 of sells: exactly zero.
        let w = window(&[
            trade(1, 10, "100", "0.1", Side::Buy),
            trade(2, 20, "100", "0.2", Side::Buy),
            trade(3, 30, "100", "0.30000001", Side::Sell),
        ]);
        assert_eq!(w.exact_net_delta().to_string(), "-0.00000001");
        assert_eq!(w.exact_net_delta().to_f64(), w.net_delta);
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
        assert_eq!(w.exact_net_delta().to_string(), "-2");
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

    fn raw(id: u64, p: i64, q: i64, side: Side) -> Trade {
        Trade {
            price: Decimal::from_raw(p),
            quantity: Decimal::from_raw(q),
            ..trade(id, id as i64, "1", "1", side)
        }
    }

    fn finish(trades: &[Trade]) -> Result<Window, WindowError> {
        let mut stats = WindowStats::new(&trades[0]);
        for t in &trades[1..] {
            stats.add(t);
        }
        stats.finish(trades[0].symbol, 0, 1000, 1)
    }

    #[test]
    fn extreme_windows_are_exact_or_rejected() {
        let max = i64::MAX;
        let cases: Vec<(&str, Vec<Trade>, Result<(), WindowError>)> = vec![
            (
                "one largest trade",
                vec![raw(1, max, max, Side::Buy)],
                Ok(()),
            ),
            (
                // Two such products still fit i128; three do not.
                "Σ(p·q) overflows",
                vec![
                    raw(1, max, max, Side::Buy),
                    raw(2, max, max, Side::Sell),
                    raw(3, max, max, Side::Buy),
                ],
                Err(WindowError::Overflow { sum: "Σ(p·q)" }),
            ),
            (
                // Past one quantity's range, the sums stay exact.
                "Σq leaves the decimal range",
                vec![raw(1, 1, max, Side::Sell), raw(2, 1, 1, Side::Sell)],
                Ok(()),
            ),
            (
                "zero volume",
                vec![raw(1, 5, 0, Side::Buy)],
                Err(WindowError::NoVolume),
            ),
        ];
        for (name, trades, want) in cases {
            let got = finish(&trades);
            match (&got, want) {
                (Ok(w), Ok(())) => {
                    assert_eq!(w.buy_volume.raw() + w.sell_volume.raw(), w.volume.raw());
                }
                (Err(e), Err(want)) => assert_eq!(*e, want, "{name}"),
                _ => panic!("{name}: {got:?}"),
            }
        }
    }

    /// A busy second of a cheap coin: 100 billion units, more than one
    /// quantity can hold, still one exact row.
    #[test]
    fn volumes_past_one_quantitys_range_are_exact() {
        let w = finish(&[
            trade(1, 100, "0.00000800", "50000000000", Side::Buy),
            trade(2, 500, "0.00000801", "50000000000", Side::Sell),
        ])
        .unwrap();
        assert_eq!(w.volume.to_string(), "100000000000");
        assert_eq!(
            (w.buy_volume.to_string(), w.sell_volume.to_string()),
            ("50000000000".into(), "50000000000".into())
        );
        assert_eq!(
            (w.total_volume, w.net_delta, w.buy_pressure_pct),
            (1e11, 0.0, 50.0)
        );
        assert_eq!(w.vwap, 0.000008005);
    }

    #[test]
    fn sums_past_128_bit_products_still_give_the_signal() {
        // Σp·Σq and Σ(p·q)·n are near 2^138: the old i128 products overflowed.
        let (hi, lo) = (i64::MAX / 2, i64::MAX / 4);
        let mut trades = Vec::new();
        for i in 0..4500 {
            trades.push(raw(2 * i, hi, 1_000_000_000_000_000, Side::Buy));
            trades.push(raw(2 * i + 1, lo, 1_000_000_000_000_001, Side::Sell));
        }
        let w = finish(&trades).unwrap();
        // More sold at the lower price: avg > vwap, delta < 0.
        assert_eq!(w.signal, Signal::Distributing);
        assert_eq!(w.trade_count, 9000);
        assert_eq!(w.volume.raw(), 9_000_000_000_000_004_500);
    }

    #[test]
    fn wide_products_are_exact() {
        let cases: [(u128, u128, (u128, u128)); 4] = [
            (0, u128::MAX, (0, 0)),
            (
                u64::MAX as u128,
                u64::MAX as u128,
                (0, (u64::MAX as u128).pow(2)),
            ),
            (u128::MAX, 2, (1, u128::MAX - 1)),
            (u128::MAX, u128::MAX, (u128::MAX - 1, 1)),
        ];
        for (x, y, want) in cases {
            assert_eq!(mul_wide(x, y), want, "{x}·{y}");
        }
    }

    proptest::proptest! {
        #[test]
        fn wide_product_low_half_and_symmetry(x: u128, y: u128, k in 0u32..128) {
            let (high, low) = mul_wide(x, y);
            proptest::prop_assert_eq!(low, x.wrapping_mul(y));
            proptest::prop_assert_eq!(mul_wide(y, x), (high, low));
            let shifted = if k == 0 { (0, x) } else { (x >> (128 - k), x << k) };
            proptest::prop_assert_eq!(mul_wide(x, 1u128 << k), shifted);
        }

        #[test]
        fn product_comparison_agrees_where_i128_suffices(a: i64, b: i64, c: i64, d: i64) {
            let (a, b, c, d) = (a as i128, b as i128, c as i128, d as i128);
            proptest::prop_assert_eq!(cmp_products(a, b, c, d), (a * b).cmp(&(c * d)));
        }

        #[test]
        fn extreme_trades_never_wrap(
            trades in proptest::collection::vec((1i64..=i64::MAX, 1i64..=i64::MAX, proptest::bool::ANY), 1..8)
        ) {
            let trades: Vec<Trade> = trades
                .iter()
                .enumerate()
                .map(|(i, &(p, q, buy))| raw(i as u64, p, q, if buy { Side::Buy } else { Side::Sell }))
                .collect();
            // The reference: the same sums, each step checked.
            let mut notional = Some(0i128);
            let mut volume = 0i128;
            let mut buy = 0i128;
            for t in &trades {
                let (p, q) = (t.price.raw() as i128, t.quantity.raw() as i128);
                notional = notional.and_then(|n| n.checked_add(p * q));
                volume += q;
                if t.side == Side::Buy { buy += q; }
            }
            match finish(&trades) {
                Ok(w) => {
                    proptest::prop_assert!(notional.is_some());
                    proptest::prop_assert_eq!(w.volume.raw(), volume);
                    proptest::prop_assert_eq!(w.buy_volume.raw(), buy);
                    proptest::prop_assert_eq!(w.sell_volume.raw(), volume - buy);
                    proptest::prop_assert!(w.low.to_f64() <= w.vwap && w.vwap <= w.high.to_f64());
                }
                Err(WindowError::Overflow { .. }) => proptest::prop_assert!(notional.is_none()),
                Err(e) => proptest::prop_assert!(false, "{e}"),
            }
        }
    }
}
