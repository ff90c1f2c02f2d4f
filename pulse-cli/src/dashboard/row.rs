//! One window as the page gets it: only the values it draws.

use pulse_core::{Signal, Symbol, Window};
use serde::Serialize;

/// The part of a closed window the page shows: its time, the four charts'
/// series and the signal. Open/high/low/close, `end_ms` and `version` stay
/// in the CSV and ClickHouse; the page never drew them.
///
/// Live `window` events and the snapshot both render through
/// [`Row::write_json`], so a late browser gets the very bytes an early one
/// got.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Row {
    pub symbol: Symbol,
    pub start_ms: i64,
    pub vwap: f64,
    pub net_delta: f64,
    pub buy_pressure_pct: f64,
    pub total_volume: f64,
    pub trade_count: u64,
    pub avg_price_1_sec: f64,
    pub signal: Signal,
}

impl From<&Window> for Row {
    fn from(w: &Window) -> Self {
        Row {
            symbol: w.symbol,
            start_ms: w.start_ms,
            vwap: w.vwap,
            net_delta: w.net_delta,
            buy_pressure_pct: w.buy_pressure_pct,
            total_volume: w.total_volume,
            trade_count: w.trade_count,
            avg_price_1_sec: w.avg_price_1_sec,
            signal: w.signal,
        }
    }
}

/// The JSON object; names follow the CSV and ClickHouse columns, and the
/// start is given both in ms and in the CSV's RFC 3339 form, so the page
/// can show exactly what the CSV holds.
#[derive(Serialize)]
struct RowJson<'a> {
    symbol: &'a str,
    start_ms: i64,
    window_start: String,
    vwap: f64,
    net_delta: f64,
    buy_pressure_pct: f64,
    total_volume: f64,
    trade_count: u64,
    avg_price_1_sec: f64,
    signal: Signal,
}

impl Row {
    /// Appends this row as one JSON object.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let json = RowJson {
            symbol: self.symbol.as_str(),
            start_ms: self.start_ms,
            window_start: pulse_io::time::utc_rfc3339_ms(self.start_ms),
            vwap: self.vwap,
            net_delta: self.net_delta,
            buy_pressure_pct: self.buy_pressure_pct,
            total_volume: self.total_volume,
            trade_count: self.trade_count,
            avg_price_1_sec: self.avg_price_1_sec,
            signal: self.signal,
        };
        // Numbers and plain strings into memory: this cannot fail. (serde_json
        // writes non-finite floats as null, and pulse-core never makes one.)
        let _ = serde_json::to_writer(out, &json);
    }

    /// This row as a JSON string.
    pub fn to_json(self) -> String {
        let mut out = Vec::with_capacity(256);
        self.write_json(&mut out);
        // serde_json writes UTF-8 only.
        String::from_utf8(out).unwrap_or_default()
    }
}
