//! One `pulse_metrics` row.

use pulse_core::Window;
use serde::{Deserialize, Serialize};

use crate::row_version::row_version;

/// A window as stored in `pulse_metrics` (see `pulse-io/sql/001_pulse_metrics.sql`).
///
/// `DateTime` columns travel as seconds since the epoch, so windows must
/// start on whole seconds (the default 1 s windows do).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ::clickhouse::Row)]
#[clickhouse(crate = "::clickhouse")]
pub struct WindowRow {
    /// Window start, seconds since the epoch (`DateTime`).
    pub window_start: u32,
    /// Window end (exclusive), seconds since the epoch (`DateTime`).
    pub window_end: u32,
    /// Σ(p·q) / Σq.
    pub vwap: f64,
    /// Σq(BUY) − Σq(SELL).
    pub net_delta: f64,
    /// 100 · Σq(BUY) / Σq.
    pub buy_pressure_pct: f64,
    /// Σq.
    pub total_volume: f64,
    /// Number of trades.
    pub trade_count: i64,
    /// Mean price.
    pub avg_price_1_sec: f64,
    /// `STRONG BUY`, `STRONG SELL`, `ACCUMULATING`, `DISTRIBUTING` or `NEUTRAL`.
    pub signal: String,
    /// Trading pair.
    pub symbol: String,
    /// First price by (trade time, id).
    pub open: f64,
    /// Highest price.
    pub high: f64,
    /// Lowest price.
    pub low: f64,
    /// Last price by (trade time, id).
    pub close: f64,
    /// Σq(BUY).
    pub buy_volume: f64,
    /// Σq(SELL).
    pub sell_volume: f64,
    /// Smallest trade id in the window.
    pub first_trade_id: u64,
    /// Largest trade id in the window.
    pub last_trade_id: u64,
    /// [`row_version`] of the window.
    pub version: u64,
}

/// Why a window has no `pulse_metrics` row.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RowError {
    /// `DateTime` holds 1970-01-01 00:00:00 to 2106-02-07 06:28:15 UTC;
    /// clamping would put several windows onto one row.
    #[error(
        "window [{start_ms}, {end_ms}) ms is outside ClickHouse DateTime (1970-01-01 to 2106-02-07 UTC)"
    )]
    TimeOutOfRange {
        /// Window start, ms since the epoch.
        start_ms: i64,
        /// Window end, ms since the epoch.
        end_ms: i64,
    },
}

impl RowError {
    /// Every label [`reason`](Self::reason) gives.
    pub const REASONS: &'static [&'static str] = &["time_range"];

    /// A short, stable label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            RowError::TimeOutOfRange { .. } => "time_range",
        }
    }
}

impl TryFrom<&Window> for WindowRow {
    type Error = RowError;

    fn try_from(w: &Window) -> Result<Self, RowError> {
        let out_of_range = || RowError::TimeOutOfRange {
            start_ms: w.start_ms,
            end_ms: w.end_ms,
        };
        let window_start = seconds(w.start_ms).ok_or_else(out_of_range)?;
        let window_end = seconds(w.end_ms).ok_or_else(out_of_range)?;
        Ok(WindowRow {
            window_start,
            window_end,
            vwap: w.vwap,
            net_delta: w.net_delta,
            buy_pressure_pct: w.buy_pressure_pct,
            total_volume: w.total_volume,
            trade_count: i64::try_from(w.trade_count).unwrap_or(i64::MAX),
            avg_price_1_sec: w.avg_price_1_sec,
            signal: w.signal.as_str().to_owned(),
            symbol: w.symbol.as_str().to_owned(),
            open: w.open.to_f64(),
            high: w.high.to_f64(),
            low: w.low.to_f64(),
            close: w.close.to_f64(),
            buy_volume: w.buy_volume.to_f64(),
            sell_volume: w.sell_volume.to_f64(),
            first_trade_id: w.first_trade_id,
            last_trade_id: w.last_trade_id,
            version: row_version(w),
        })
    }
}

/// `DateTime` is unsigned 32-bit seconds; `None` outside it.
fn seconds(ms: i64) -> Option<u32> {
    u32::try_from(ms.div_euclid(1000)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_core::{Decimal, DecimalSum, Signal, Symbol};

    fn window(start_ms: i64, end_ms: i64) -> Window {
        let one = Decimal::from_raw(100_000_000);
        Window {
            symbol: Symbol::new("BTCUSDT").unwrap(),
            start_ms,
            end_ms,
            version: 1,
            vwap: 1.0,
            net_delta: 1.0,
            buy_pressure_pct: 100.0,
            total_volume: 1.0,
            trade_count: 1,
            avg_price_1_sec: 1.0,
            signal: Signal::Neutral,
            open: one,
            high: one,
            low: one,
            close: one,
            volume: one.into(),
            buy_volume: one.into(),
            sell_volume: DecimalSum::ZERO,
            first_trade_id: 1,
            last_trade_id: 1,
        }
    }

    #[test]
    fn times_outside_datetime_are_rejected_not_clamped() {
        let last = i64::from(u32::MAX) * 1000;
        let cases = [
            ("the epoch", 0, 1000, Some((0, 1))),
            (
                "a real window",
                1_723_161_256_000,
                1_723_161_257_000,
                Some((1_723_161_256, 1_723_161_257)),
            ),
            (
                "the last second starts in range, ends past it",
                last,
                last + 1000,
                None,
            ),
            (
                "the last whole window",
                last - 1000,
                last,
                Some((u32::MAX - 1, u32::MAX)),
            ),
            ("before 1970", -1000, 0, None),
            ("far before", i64::MIN, i64::MIN + 1000, None),
            ("far after", i64::MAX - 1000, i64::MAX, None),
        ];
        for (name, start, end, want) in cases {
            let got = WindowRow::try_from(&window(start, end));
            match (got, want) {
                (Ok(row), Some(want)) => {
                    assert_eq!((row.window_start, row.window_end), want, "{name}")
                }
                (Err(e), None) => {
                    assert_eq!(
                        e,
                        RowError::TimeOutOfRange {
                            start_ms: start,
                            end_ms: end
                        }
                    );
                    assert_eq!(e.reason(), "time_range");
                }
                (got, _) => panic!("{name}: {got:?}"),
            }
        }
    }
}
