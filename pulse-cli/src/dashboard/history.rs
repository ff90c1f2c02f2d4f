//! The last windows of each symbol, for browsers that connect late.
//!
//! Stored as columns of exactly the values a [`Row`] holds, 47 bytes a
//! window, not as whole windows or rendered JSON (which took about 370
//! bytes a window): 300 symbols with an hour each take about 48 MiB. JSON
//! is rendered from the columns only when a browser asks for it.

use std::collections::{BTreeMap, VecDeque};

use pulse_core::{Signal, Symbol};

use super::packed::Packed;
use super::row::Row;

/// Up to `limit` windows per symbol, newest last, one per window start.
#[derive(Debug)]
pub struct History {
    limit: usize,
    symbols: BTreeMap<Symbol, Columns>,
}

/// One symbol's windows, sorted by start.
#[derive(Debug)]
struct Columns {
    /// A window's start (the earliest kept, when it was set): the others
    /// are kept as offsets from it, which fit 4 bytes unless the windows
    /// kept are 24 days apart.
    base_ms: i64,
    start_offset_ms: Packed<i32, i64>,
    vwap: VecDeque<f64>,
    net_delta: VecDeque<f64>,
    buy_pressure_pct: VecDeque<f64>,
    total_volume: VecDeque<f64>,
    /// 2 bytes a window unless a window has over 65,535 trades.
    trade_count: Packed<u16, u64>,
    avg_price_1_sec: VecDeque<f64>,
    signal: VecDeque<Signal>,
}

impl History {
    /// Keeps the last `limit` windows (at least 1) of each symbol.
    pub fn new(limit: usize) -> Self {
        History {
            limit: limit.max(1),
            symbols: BTreeMap::new(),
        }
    }

    /// Windows kept per symbol.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Adds a closed window. A re-emitted window (same start, higher
    /// version) replaces the one kept; one older than every kept window of a
    /// full symbol is not kept, since it would be the first to go.
    pub fn record(&mut self, row: &Row) {
        let limit = self.limit;
        let columns = self
            .symbols
            .entry(row.symbol)
            .or_insert_with(|| Columns::with_capacity(limit, row.start_ms));
        // Windows close in start order, so this is nearly always the end.
        let at = match columns.len().checked_sub(1) {
            Some(last) if columns.start_ms(last) < row.start_ms => columns.len(),
            None => 0,
            Some(_) => match columns.position(row.start_ms) {
                Ok(i) => return columns.set(i, row),
                Err(0) if columns.len() == limit => return,
                Err(i) => i,
            },
        };
        if columns.len() == limit {
            columns.pop_front();
            columns.insert(at - 1, row);
        } else {
            columns.insert(at, row);
        }
    }

    /// Symbols with windows, in order.
    pub fn symbols(&self) -> impl Iterator<Item = Symbol> + '_ {
        self.symbols.keys().copied()
    }

    /// `symbol`'s windows, oldest first, appended to `rows`.
    pub fn rows_of(&self, symbol: Symbol, rows: &mut Vec<Row>) {
        if let Some(c) = self.symbols.get(&symbol) {
            rows.extend((0..c.len()).map(|i| c.row(symbol, i)));
        }
    }
}

impl Columns {
    fn with_capacity(limit: usize, base_ms: i64) -> Self {
        // Reserved up front, so no column reallocates: growing in steps
        // instead left freed blocks behind and took more resident memory,
        // not less (measured). Memory stays within symbols × limit × 47 bytes.
        // Past this many, columns grow as usual.
        let n = limit.min(1 << 16);
        Columns {
            base_ms,
            start_offset_ms: Packed::with_capacity(n),
            vwap: VecDeque::with_capacity(n),
            net_delta: VecDeque::with_capacity(n),
            buy_pressure_pct: VecDeque::with_capacity(n),
            total_volume: VecDeque::with_capacity(n),
            trade_count: Packed::with_capacity(n),
            avg_price_1_sec: VecDeque::with_capacity(n),
            signal: VecDeque::with_capacity(n),
        }
    }

    fn len(&self) -> usize {
        self.start_offset_ms.len()
    }

    fn start_ms(&self, i: usize) -> i64 {
        // Wrapping both ways gives back any start exactly.
        self.base_ms.wrapping_add(self.start_offset_ms.get(i))
    }

    fn offset_of(&self, start_ms: i64) -> i64 {
        start_ms.wrapping_sub(self.base_ms)
    }

    /// Moves the base to the earliest start kept when `start_ms` is too far
    /// from it for 4 bytes: a symbol's windows move on for ever, and after
    /// 24 days its first window's start is far behind them all.
    fn rebase_for(&mut self, start_ms: i64) {
        if i32::try_from(self.offset_of(start_ms)).is_ok() {
            return;
        }
        let earliest = match self.len() {
            0 => start_ms,
            _ => self.start_ms(0).min(start_ms),
        };
        let shift = earliest.wrapping_sub(self.base_ms);
        self.base_ms = earliest;
        self.start_offset_ms
            .rewrite(|offset| offset.wrapping_sub(shift));
    }

    /// Where the window starting at `start_ms` is kept, or would go.
    fn position(&self, start_ms: i64) -> Result<usize, usize> {
        self.start_offset_ms
            .binary_search_by(|offset| self.base_ms.wrapping_add(offset).cmp(&start_ms))
    }

    fn row(&self, symbol: Symbol, i: usize) -> Row {
        Row {
            symbol,
            start_ms: self.start_ms(i),
            vwap: self.vwap[i],
            net_delta: self.net_delta[i],
            buy_pressure_pct: self.buy_pressure_pct[i],
            total_volume: self.total_volume[i],
            trade_count: self.trade_count.get(i),
            avg_price_1_sec: self.avg_price_1_sec[i],
            signal: self.signal[i],
        }
    }

    /// Replaces window `i`, which starts where `row` does.
    fn set(&mut self, i: usize, row: &Row) {
        self.vwap[i] = row.vwap;
        self.net_delta[i] = row.net_delta;
        self.buy_pressure_pct[i] = row.buy_pressure_pct;
        self.total_volume[i] = row.total_volume;
        self.trade_count.set(i, row.trade_count);
        self.avg_price_1_sec[i] = row.avg_price_1_sec;
        self.signal[i] = row.signal;
    }

    fn insert(&mut self, i: usize, row: &Row) {
        if i == self.len() {
            return self.push_back(row);
        }
        self.rebase_for(row.start_ms);
        self.start_offset_ms.insert(i, self.offset_of(row.start_ms));
        self.vwap.insert(i, row.vwap);
        self.net_delta.insert(i, row.net_delta);
        self.buy_pressure_pct.insert(i, row.buy_pressure_pct);
        self.total_volume.insert(i, row.total_volume);
        self.trade_count.insert(i, row.trade_count);
        self.avg_price_1_sec.insert(i, row.avg_price_1_sec);
        self.signal.insert(i, row.signal);
    }

    /// [`insert`](Self::insert) at the end, without `VecDeque::insert`'s
    /// general path (a third of the cost of recording, measured).
    fn push_back(&mut self, row: &Row) {
        self.rebase_for(row.start_ms);
        self.start_offset_ms.push_back(self.offset_of(row.start_ms));
        self.vwap.push_back(row.vwap);
        self.net_delta.push_back(row.net_delta);
        self.buy_pressure_pct.push_back(row.buy_pressure_pct);
        self.total_volume.push_back(row.total_volume);
        self.trade_count.push_back(row.trade_count);
        self.avg_price_1_sec.push_back(row.avg_price_1_sec);
        self.signal.push_back(row.signal);
    }

    fn pop_front(&mut self) {
        self.start_offset_ms.pop_front();
        self.vwap.pop_front();
        self.net_delta.pop_front();
        self.buy_pressure_pct.pop_front();
        self.total_volume.pop_front();
        self.trade_count.pop_front();
        self.avg_price_1_sec.pop_front();
        self.signal.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(symbol: &str, start_ms: i64, trade_count: u64) -> Row {
        Row {
            symbol: Symbol::new(symbol).unwrap(),
            start_ms,
            vwap: 61_180.1,
            net_delta: -0.5,
            buy_pressure_pct: 25.0,
            total_volume: 2.0,
            trade_count,
            avg_price_1_sec: 61_180.2,
            signal: Signal::Distributing,
        }
    }

    fn kept(history: &History, symbol: &str) -> Vec<(i64, u64)> {
        let mut rows = Vec::new();
        history.rows_of(Symbol::new(symbol).unwrap(), &mut rows);
        rows.iter().map(|r| (r.start_ms, r.trade_count)).collect()
    }

    #[test]
    fn keeps_the_last_windows_of_each_symbol() {
        let mut history = History::new(3);
        for start in 0..5 {
            history.record(&row("BTCUSDT", start * 1000, 1));
        }
        history.record(&row("ETHUSDT", 7000, 1));
        assert_eq!(kept(&history, "BTCUSDT"), [(2000, 1), (3000, 1), (4000, 1)]);
        assert_eq!(kept(&history, "ETHUSDT"), [(7000, 1)]);
        let symbols: Vec<String> = history.symbols().map(|s| s.to_string()).collect();
        assert_eq!(symbols, ["BTCUSDT", "ETHUSDT"]);
        assert!(kept(&history, "SOLUSDT").is_empty());
    }

    #[test]
    fn a_corrected_window_replaces_the_one_kept_and_order_holds() {
        let mut history = History::new(3);
        for start in [1000, 3000, 4000] {
            history.record(&row("BTCUSDT", start, 1));
        }
        // A re-emission (version 2, one more trade) replaces in place.
        history.record(&row("BTCUSDT", 3000, 2));
        assert_eq!(kept(&history, "BTCUSDT"), [(1000, 1), (3000, 2), (4000, 1)]);
        // A late first emission goes where it belongs; the oldest makes room.
        history.record(&row("BTCUSDT", 2000, 1));
        assert_eq!(kept(&history, "BTCUSDT"), [(2000, 1), (3000, 2), (4000, 1)]);
        // Older than everything kept in a full history: it would go first.
        history.record(&row("BTCUSDT", 0, 1));
        assert_eq!(kept(&history, "BTCUSDT"), [(2000, 1), (3000, 2), (4000, 1)]);
    }

    #[test]
    fn trade_counts_stay_exact_beyond_four_bytes() {
        let mut history = History::new(3);
        history.record(&row("BTCUSDT", 0, 7));
        history.record(&row("BTCUSDT", 1000, u64::from(u32::MAX) + 1));
        history.record(&row("BTCUSDT", 2000, u64::MAX));
        assert_eq!(
            kept(&history, "BTCUSDT"),
            [(0, 7), (1000, 1 << 32), (2000, u64::MAX)]
        );
    }

    #[test]
    fn starts_stay_exact_however_far_apart() {
        let mut history = History::new(4);
        let day = 86_400_000;
        history.record(&row("BTCUSDT", 0, 1));
        history.record(&row("BTCUSDT", 30 * day, 1));
        history.record(&row("BTCUSDT", i64::MAX, 1));
        // Before the first window: a negative offset.
        history.record(&row("BTCUSDT", -1000, 1));
        assert_eq!(
            kept(&history, "BTCUSDT"),
            [(-1000, 1), (0, 1), (30 * day, 1), (i64::MAX, 1)]
        );
        let mut far = History::new(2);
        far.record(&row("ETHUSDT", i64::MAX, 1));
        far.record(&row("ETHUSDT", i64::MIN, 1));
        assert_eq!(kept(&far, "ETHUSDT"), [(i64::MIN, 1), (i64::MAX, 1)]);
    }

    #[test]
    fn starts_stay_narrow_while_a_symbol_runs_for_months() {
        let mut history = History::new(3);
        let day = 86_400_000;
        for start in (0..100).map(|d| d * day) {
            history.record(&row("BTCUSDT", start, 1));
        }
        assert_eq!(
            kept(&history, "BTCUSDT"),
            [(97 * day, 1), (98 * day, 1), (99 * day, 1)]
        );
        let columns = &history.symbols[&Symbol::new("BTCUSDT").unwrap()];
        assert!(matches!(columns.start_offset_ms, Packed::Narrow(_)));
    }

    #[test]
    fn a_limit_of_zero_keeps_one() {
        let mut history = History::new(0);
        history.record(&row("BTCUSDT", 0, 1));
        history.record(&row("BTCUSDT", 1000, 1));
        assert_eq!(kept(&history, "BTCUSDT"), [(1000, 1)]);
    }
}
