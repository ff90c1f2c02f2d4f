//! One `pulse_metrics` row.

use pulse_core::Window;
use serde::{Deserialize, Serialize};

/// A window as stored in `pulse_metrics` (see `sql/001_pulse_metrics.sql`).
///
/// `DateTime` columns travel as seconds since the epoch, so windows must
/// start on whole seconds (the default 1 s windows do).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ::clickhouse::Row)]
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

/// The `version` column: the window's trade count. Every later row of a
/// window holds a superset of an earlier row's trades (a correction adds a
/// late trade, a complete window follows one flushed at shutdown), so
/// ReplacingMergeTree keeping the largest keeps the fullest. A count, not
/// the core's re-emission counter, because a restarted `pulse consume`
/// rebuilds a window's trades but not how often it was emitted.
pub fn row_version(window: &Window) -> u64 {
    window.trade_count
}

impl From<&Window> for WindowRow {
    fn from(w: &Window) -> Self {
        WindowRow {
            window_start: seconds(w.start_ms),
            window_end: seconds(w.end_ms),
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
        }
    }
}

/// `DateTime` is unsigned 32-bit seconds; clamp rather than wrap.
fn seconds(ms: i64) -> u32 {
    ms.div_euclid(1000).clamp(0, i64::from(u32::MAX)) as u32
}
