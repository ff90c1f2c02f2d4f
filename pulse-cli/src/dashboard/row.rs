//! The JSON shape of one window on the dashboard feed.

use pulse_core::Window;
use serde::Serialize;

/// One closed window as the browser gets it. Metric names follow the CSV
/// and ClickHouse columns; times are ms since the epoch plus the CSV's
/// RFC 3339 form, so the page can show exactly what the CSV holds.
#[derive(Debug, Serialize)]
pub struct DashboardWindow<'a> {
    symbol: &'a str,
    start_ms: i64,
    end_ms: i64,
    window_start: String,
    version: u64,
    vwap: f64,
    net_delta: f64,
    buy_pressure_pct: f64,
    total_volume: f64,
    trade_count: u64,
    avg_price_1_sec: f64,
    signal: &'static str,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
}

impl<'a> From<&'a Window> for DashboardWindow<'a> {
    fn from(w: &'a Window) -> Self {
        DashboardWindow {
            symbol: w.symbol.as_str(),
            start_ms: w.start_ms,
            end_ms: w.end_ms,
            window_start: pulse_io::time::utc_rfc3339_ms(w.start_ms),
            version: w.version,
            vwap: w.vwap,
            net_delta: w.net_delta,
            buy_pressure_pct: w.buy_pressure_pct,
            total_volume: w.total_volume,
            trade_count: w.trade_count,
            avg_price_1_sec: w.avg_price_1_sec,
            signal: w.signal.as_str(),
            open: w.open.to_f64(),
            high: w.high.to_f64(),
            low: w.low.to_f64(),
            close: w.close.to_f64(),
        }
    }
}

/// Renders `w` as one line of JSON.
pub fn window_json(w: &Window) -> String {
    // A struct of numbers and plain strings always serializes.
    serde_json::to_string(&DashboardWindow::from(w)).unwrap_or_default()
}
