//! The dashboard's feed: recent windows per symbol for late joiners, and a
//! broadcast of each new window and status change to connected browsers.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use pulse_core::{Symbol, Window};
use serde::Serialize;
use tokio::sync::broadcast;

use super::row::window_json;

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

#[derive(Debug)]
struct State {
    history: BTreeMap<Symbol, VecDeque<Arc<str>>>,
    status: Arc<str>,
}

/// Shared between the window sink, which publishes, and the SSE handler,
/// which subscribes.
#[derive(Debug)]
pub struct Feed {
    state: Mutex<State>,
    updates: broadcast::Sender<Update>,
    history_limit: usize,
}

impl Feed {
    /// A feed keeping the last `history_limit` windows of each symbol.
    pub fn new(history_limit: usize, status: &Status) -> Self {
        Feed {
            state: Mutex::new(State {
                history: BTreeMap::new(),
                status: status_json(status),
            }),
            updates: broadcast::channel(BROADCAST_CAPACITY).0,
            history_limit: history_limit.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked mid-update:
        // every update is a single push or assignment.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records and broadcasts closed windows.
    pub fn publish(&self, windows: &[Window]) {
        let mut state = self.lock();
        for w in windows {
            let json: Arc<str> = window_json(w).into();
            let history = state.history.entry(w.symbol).or_default();
            if history.len() == self.history_limit {
                history.pop_front();
            }
            history.push_back(json.clone());
            // Sent under the lock so a subscriber's snapshot and its stream
            // neither overlap nor leave a hole. No receivers is fine.
            let _ = self.updates.send(Update::Window(json));
        }
    }

    /// Replaces and broadcasts the run's status.
    pub fn set_status(&self, status: &Status) {
        let mut state = self.lock();
        state.status = status_json(status);
        let _ = self.updates.send(Update::Status(state.status.clone()));
    }

    /// The current snapshot as JSON, and a receiver for every update after it.
    pub fn subscribe(&self) -> (String, broadcast::Receiver<Update>) {
        let state = self.lock();
        let receiver = self.updates.subscribe();
        (self.snapshot_json(&state), receiver)
    }

    /// `{"status":{..},"history_limit":N,"windows":[..]}`, windows grouped
    /// by symbol, oldest first.
    fn snapshot_json(&self, state: &State) -> String {
        let rows: Vec<&str> = state
            .history
            .values()
            .flat_map(|h| h.iter().map(|row| &**row))
            .collect();
        format!(
            r#"{{"status":{},"history_limit":{},"windows":[{}]}}"#,
            state.status,
            self.history_limit,
            rows.join(",")
        )
    }
}

fn status_json(status: &Status) -> Arc<str> {
    serde_json::to_string(status).unwrap_or_default().into()
}

#[cfg(test)]
mod tests {
    use pulse_core::{Aggregator, AggregatorConfig, Event, Frame, parse_frame};

    use super::*;

    fn windows(n: i64) -> Vec<Window> {
        let mut agg = Aggregator::new(AggregatorConfig::default()).unwrap();
        for i in 0..n {
            let t = 1_723_161_502_000 + i * 1000;
            let frame = format!(
                r#"{{"e":"aggTrade","E":{t},"a":{i},"s":"BTCUSDT","p":"61180.1","q":"0.5","f":{i},"l":{i},"T":{t},"m":false}}"#
            );
            let Ok(Frame::Trade(trade)) = parse_frame(frame.as_bytes()) else {
                panic!("valid frame")
            };
            agg.handle_trade(trade);
        }
        agg.flush();
        std::iter::from_fn(|| agg.poll())
            .filter_map(|e| match e {
                Event::Window(w) => Some(w),
                _ => None,
            })
            .collect()
    }

    fn status() -> Status {
        Status {
            state: "running",
            source: "test".into(),
            symbols: vec!["BTCUSDT".into()],
            trades: 0,
            windows: 0,
        }
    }

    #[test]
    fn snapshot_keeps_the_last_windows_and_stream_continues_after_it() {
        let feed = Feed::new(3, &status());
        let all = windows(5);
        feed.publish(&all[..4]);
        let (snapshot, mut rx) = feed.subscribe();
        feed.publish(&all[4..]);

        let snapshot: serde_json::Value = serde_json::from_str(&snapshot).unwrap();
        let starts: Vec<i64> = snapshot["windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["start_ms"].as_i64().unwrap())
            .collect();
        assert_eq!(starts, [all[1].start_ms, all[2].start_ms, all[3].start_ms]);
        assert_eq!(snapshot["status"]["state"], "running");
        assert_eq!(snapshot["history_limit"], 3);

        let Ok(Update::Window(next)) = rx.try_recv() else {
            panic!("the window after the snapshot")
        };
        let next: serde_json::Value = serde_json::from_str(&next).unwrap();
        assert_eq!(next["start_ms"].as_i64(), Some(all[4].start_ms));
        assert_eq!(next["vwap"].as_f64(), Some(all[4].vwap));
        assert_eq!(next["window_start"], "2024-08-08T23:58:26.000Z");
        assert!(rx.try_recv().is_err(), "nothing else");
    }
}
