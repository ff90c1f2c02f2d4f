//! The dashboard's feed: recent windows per symbol for late joiners, and a
//! broadcast of each new window and status change to connected browsers.
//!
//! Publishing is what the pipeline pays for, so it stays small: it records
//! the window's numbers in the [`History`] columns and renders JSON only
//! while a browser is connected. A late browser's snapshot is rendered from
//! the columns one symbol at a time, each under a short lock, so the
//! pipeline never waits for a whole snapshot.

use std::sync::{Arc, Mutex, MutexGuard};

use pulse_core::{Symbol, Window};
use serde::Serialize;
use tokio::sync::broadcast;

use super::history::History;
use super::row::Row;

/// How many updates a slow browser may fall behind before it is sent a
/// fresh snapshot instead.
const BROADCAST_CAPACITY: usize = 1024;

/// One message to connected browsers; the JSON is rendered once, not per
/// browser.
#[derive(Clone, Debug)]
pub enum Update {
    /// A window closed.
    Window(Arc<str>),
    /// The run's state changed.
    Status(Arc<str>),
    /// Nothing more comes: event streams end once they have sent what came
    /// before, so the server can stop without cutting them off.
    End,
}

/// What the run is doing, shown in the page header.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// `running`, `ended` (a replay finished) or `stopped`.
    pub state: &'static str,
    /// Where trades come from, e.g. `Binance USD-M` or `replay of FILE`.
    pub source: String,
    /// Configured symbols, in order (the picker lists these first).
    pub symbols: Vec<String>,
    /// Trades processed so far (only updated at the end of a run).
    pub trades: u64,
    /// Windows emitted so far (only updated at the end of a run).
    pub windows: u64,
}

/// Which windows a snapshot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Every symbol's.
    All,
    /// One symbol's: the page draws one symbol at a time, and a snapshot of
    /// 300 symbols' hours would be hundreds of MB of JSON.
    Of(Symbol),
    /// The symbol a page without a choice shows: the first configured one
    /// with windows, else the first with windows.
    Default,
}

#[derive(Debug)]
struct State {
    history: History,
    status: Arc<str>,
    /// The status's symbols, for [`Selection::Default`].
    configured: Vec<Symbol>,
}

/// Shared between the window sink, which publishes, and the SSE handler,
/// which subscribes.
#[derive(Debug)]
pub struct Feed {
    state: Mutex<State>,
    updates: broadcast::Sender<Update>,
}

impl Feed {
    /// A feed keeping the last `history_limit` windows of each symbol.
    pub fn new(history_limit: usize, status: &Status) -> Self {
        Feed {
            state: Mutex::new(State {
                history: History::new(history_limit),
                status: status_json(status),
                configured: configured(status),
            }),
            updates: broadcast::channel(BROADCAST_CAPACITY).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: nothing
        // under the lock panics between changing one column and the next
        // (running out of memory aborts).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records closed windows and sends them to connected browsers.
    pub fn publish(&self, windows: &[Window]) {
        let rows: Vec<Row> = windows.iter().map(Row::from).collect();
        // Rendered before taking the lock, and only when someone listens.
        let mut rendered: Vec<Arc<str>> = if self.updates.receiver_count() > 0 {
            rows.iter().map(|r| r.to_json().into()).collect()
        } else {
            Vec::new()
        };
        let mut state = self.lock();
        for row in &rows {
            state.history.record(row);
        }
        // Sent under the lock, after recording, so a browser subscribing
        // now either finds these rows in its snapshot or receives them (or
        // both; the page applies rows idempotently). Checked again here: a
        // browser may have come since.
        if self.updates.receiver_count() > 0 {
            if rendered.len() < rows.len() {
                rendered = rows.iter().map(|r| r.to_json().into()).collect();
            }
            for json in rendered {
                let _ = self.updates.send(Update::Window(json));
            }
        }
    }

    /// Replaces and broadcasts the run's status.
    pub fn set_status(&self, status: &Status) {
        let mut state = self.lock();
        state.status = status_json(status);
        state.configured = configured(status);
        let _ = self.updates.send(Update::Status(state.status.clone()));
    }

    /// Ends every open event stream after what it has not sent yet.
    pub fn close(&self) {
        let _ = self.updates.send(Update::End);
    }

    /// A receiver for every update from now on, and the snapshot as JSON:
    /// `{"status":{..},"history_limit":N,"symbols":[..],"selected":S,"windows":[..]}`.
    /// `symbols` names every symbol with windows; `selected` is the symbol
    /// whose windows follow (`null` for [`Selection::All`]); `windows` are
    /// grouped by symbol, oldest first.
    ///
    /// Every window published before this call is in the snapshot (unless
    /// the history dropped it) and every one after it comes through the
    /// receiver; one published meanwhile may be in both. Takes time with a
    /// long history: call it off the async workers.
    pub fn subscribe(&self, selection: Selection) -> (String, broadcast::Receiver<Update>) {
        let (receiver, status, limit, symbols, selected) = {
            let state = self.lock();
            let symbols: Vec<Symbol> = state.history.symbols().collect();
            let known = |s: &Symbol| symbols.binary_search(s).is_ok();
            let selected = match selection {
                Selection::All => None,
                Selection::Of(s) if known(&s) || state.configured.contains(&s) => Some(s),
                // The first configured symbol with windows, else the first.
                Selection::Of(_) | Selection::Default => state
                    .configured
                    .iter()
                    .copied()
                    .find(known)
                    .or(symbols.first().copied()),
            };
            let receiver = self.updates.subscribe();
            (
                receiver,
                state.status.clone(),
                state.history.limit(),
                symbols,
                selected,
            )
        };
        let names: Vec<&str> = symbols.iter().map(|s| s.as_str()).collect();
        let names = serde_json::to_string(&names).unwrap_or_default();
        let selected_name =
            serde_json::to_string(&selected.as_ref().map(|s| s.as_str())).unwrap_or_default();
        let mut out = format!(
            r#"{{"status":{status},"history_limit":{limit},"symbols":{names},"selected":{selected_name},"windows":["#
        )
        .into_bytes();
        let targets = match (selection, selected) {
            (Selection::All, _) => symbols,
            (_, selected) => selected.into_iter().collect(),
        };
        let mut rows = Vec::new();
        let mut first = true;
        for symbol in targets {
            rows.clear();
            // A copy of one symbol's rows under the lock; rendered without it.
            self.lock().history.rows_of(symbol, &mut rows);
            for row in &rows {
                if !first {
                    out.push(b',');
                }
                first = false;
                row.write_json(&mut out);
            }
        }
        out.extend_from_slice(b"]}");
        // Built from UTF-8 pieces only.
        (String::from_utf8(out).unwrap_or_default(), receiver)
    }
}

fn status_json(status: &Status) -> Arc<str> {
    serde_json::to_string(status).unwrap_or_default().into()
}

fn configured(status: &Status) -> Vec<Symbol> {
    status
        .symbols
        .iter()
        .filter_map(|s| Symbol::new(s).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};

    use flate2::read::GzDecoder;
    use pulse_core::{Aggregator, AggregatorConfig, Event, Frame, parse_frame};
    use serde_json::Value;

    use super::*;

    const ALTCOINS: &str = "binance-usdm_altcoins@aggTrade_2021-04-05_cryptofeed.jsonl.gz";

    /// The windows pulse-core computes from a real capture.
    fn capture_windows(name: &str) -> Option<Vec<Window>> {
        let file = std::fs::File::open(pulse_testkit::data_dir()?.join(name)).unwrap();
        let mut agg = Aggregator::new(AggregatorConfig::default()).unwrap();
        for line in BufReader::new(GzDecoder::new(file)).lines() {
            if let Ok(Frame::Trade(trade)) = parse_frame(line.unwrap().as_bytes()) {
                agg.handle_trade(trade);
            }
        }
        agg.flush();
        Some(
            std::iter::from_fn(|| agg.poll())
                .filter_map(|e| match e {
                    Event::Window(w) => Some(w),
                    _ => None,
                })
                .collect(),
        )
    }

    /// The row JSON before the history became columns: every field of the
    /// window, rendered once per window.
    fn old_rendering(w: &Window) -> Value {
        serde_json::json!({
            "symbol": w.symbol.as_str(),
            "start_ms": w.start_ms,
            "end_ms": w.end_ms,
            "window_start": pulse_io::time::utc_rfc3339_ms(w.start_ms),
            "version": w.version,
            "vwap": w.vwap,
            "net_delta": w.net_delta,
            "buy_pressure_pct": w.buy_pressure_pct,
            "total_volume": w.total_volume,
            "trade_count": w.trade_count,
            "avg_price_1_sec": w.avg_price_1_sec,
            "signal": w.signal.as_str(),
            "open": w.open.to_f64(),
            "high": w.high.to_f64(),
            "low": w.low.to_f64(),
            "close": w.close.to_f64(),
        })
    }

    fn status() -> Status {
        Status {
            state: "running",
            source: "test".into(),
            symbols: vec!["SANDUSDT".into()],
            trades: 0,
            windows: 0,
        }
    }

    fn window_event(update: Update) -> String {
        match update {
            Update::Window(json) => json.to_string(),
            other => panic!("a window, not {other:?}"),
        }
    }

    #[test]
    fn close_ends_the_updates_after_what_came_before() {
        let feed = Feed::new(10, &status());
        let (_, mut receiver) = feed.subscribe(Selection::All);
        feed.set_status(&status());
        feed.close();
        assert!(matches!(receiver.try_recv(), Ok(Update::Status(_))));
        assert!(matches!(receiver.try_recv(), Ok(Update::End)));
    }

    #[test]
    fn snapshot_rows_are_the_live_rows_and_the_old_rendering_of_the_same_windows() {
        let Some(windows) = capture_windows(ALTCOINS) else {
            return;
        };
        let feed = Feed::new(3600, &status());
        let (_, mut early) = feed.subscribe(Selection::All);
        feed.publish(&windows);
        let live: Vec<String> = windows
            .iter()
            .map(|_| window_event(early.try_recv().unwrap()))
            .collect();

        let (text, _) = feed.subscribe(Selection::All);
        // Grouped by symbol, oldest first: the live rows so sorted, byte
        // for byte what an early browser got.
        let mut expected: Vec<(&Window, &String)> = windows.iter().zip(&live).collect();
        expected.sort_by_key(|(w, _)| (w.symbol, w.start_ms));
        let live_rows: Vec<&str> = expected.iter().map(|(_, json)| json.as_str()).collect();
        assert!(
            text.ends_with(&format!(r#""windows":[{}]}}"#, live_rows.join(","))),
            "{text}"
        );
        let snapshot: Value = serde_json::from_str(&text).unwrap();
        let rows = snapshot["windows"].as_array().unwrap();
        assert_eq!(rows.len(), windows.len());
        for (row, (w, _)) in rows.iter().zip(expected) {
            // Field for field what the old rendering sent.
            let old = old_rendering(w);
            for (key, value) in row.as_object().unwrap() {
                assert_eq!(old[key], *value, "{key} of {} {}", w.symbol, w.start_ms);
            }
        }
        // Only what the page draws.
        let mut kept: Vec<&str> = rows[0].as_object().unwrap().keys().map(|k| &**k).collect();
        kept.sort_unstable();
        assert_eq!(
            kept,
            [
                "avg_price_1_sec",
                "buy_pressure_pct",
                "net_delta",
                "signal",
                "start_ms",
                "symbol",
                "total_volume",
                "trade_count",
                "vwap",
                "window_start",
            ]
        );
        let symbols = snapshot["symbols"].as_array().unwrap();
        assert_eq!(symbols.len(), 5);
        assert_eq!(snapshot["selected"], Value::Null);
    }

    #[test]
    fn one_symbols_snapshot_is_bounded_and_the_stream_continues_after_it() {
        let Some(windows) = capture_windows(ALTCOINS) else {
            return;
        };
        let sand = Symbol::new("SANDUSDT").unwrap();
        let ours: Vec<&Window> = windows.iter().filter(|w| w.symbol == sand).collect();
        assert!(ours.len() > 4, "{} SANDUSDT windows", ours.len());
        let feed = Feed::new(3, &status());
        let (last, rest) = windows.split_last().unwrap();
        feed.publish(rest);
        let (snapshot, mut rx) = feed.subscribe(Selection::Of(sand));
        feed.publish(std::slice::from_ref(last));

        let snapshot: Value = serde_json::from_str(&snapshot).unwrap();
        let starts: Vec<i64> = snapshot["windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                assert_eq!(w["symbol"], "SANDUSDT");
                w["start_ms"].as_i64().unwrap()
            })
            .collect();
        let expected: Vec<i64> = ours
            .iter()
            .filter(|w| !std::ptr::eq(**w, last))
            .map(|w| w.start_ms)
            .collect();
        assert_eq!(starts, expected[expected.len() - 3..]);
        assert_eq!(snapshot["status"]["state"], "running");
        assert_eq!(snapshot["history_limit"], 3);
        assert_eq!(snapshot["selected"], "SANDUSDT");

        let next: Value = serde_json::from_str(&window_event(rx.try_recv().unwrap())).unwrap();
        assert_eq!(next["start_ms"].as_i64(), Some(last.start_ms));
        assert_eq!(next["vwap"].as_f64(), Some(last.vwap));
        assert!(rx.try_recv().is_err(), "nothing else");
    }

    #[test]
    fn the_default_selection_is_the_first_configured_symbol_with_windows() {
        let Some(windows) = capture_windows(ALTCOINS) else {
            return;
        };
        let feed = Feed::new(10, &status());
        let selected = |selection| {
            let (snapshot, _) = feed.subscribe(selection);
            let snapshot: Value = serde_json::from_str(&snapshot).unwrap();
            snapshot["selected"].clone()
        };
        // No windows yet: no default, but a configured symbol can be chosen.
        assert_eq!(selected(Selection::Default), Value::Null);
        let sand = Symbol::new("SANDUSDT").unwrap();
        assert_eq!(selected(Selection::Of(sand)), "SANDUSDT");
        feed.publish(&windows);
        assert_eq!(selected(Selection::Default), "SANDUSDT");
        // A symbol neither configured nor seen falls back to the default.
        let unknown = Symbol::new("NOPEUSDT").unwrap();
        assert_eq!(selected(Selection::Of(unknown)), "SANDUSDT");
        feed.set_status(&Status {
            symbols: vec![],
            ..status()
        });
        // Nothing configured: the first symbol with windows.
        assert_eq!(selected(Selection::Default), "BATUSDT");
    }
}
