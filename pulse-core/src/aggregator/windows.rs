//! Opening and closing one symbol's windows: the hot path every trade takes.

use super::symbol_state::SymbolState;
use super::{AggregatorConfig, Event, LatePolicy, Outputs, WatermarkPolicy};
use crate::{Symbol, Trade, WindowStats};

/// Start of the window holding `time_ms`; negative times round down too.
pub(super) fn window_start(time_ms: i64, window_ms: i64) -> i64 {
    time_ms.div_euclid(window_ms).saturating_mul(window_ms)
}

/// End (exclusive) of the window starting at `start`; saturates, so a
/// window at the end of `i64` time never wraps.
pub(super) fn window_end(start: i64, window_ms: i64) -> i64 {
    start.saturating_add(window_ms)
}

/// Moves `state`'s watermark up to `watermark` and emits, in start order,
/// every window whose end it reaches. A free function so the hot path can
/// call it while holding `state`.
pub(super) fn close_windows(
    config: &AggregatorConfig,
    symbol: Symbol,
    state: &mut SymbolState,
    watermark: i64,
    out: &mut Outputs,
) {
    if watermark <= state.watermark {
        return;
    }
    let window_ms = config.window_ms;
    let keep = config.late_policy == LatePolicy::Reemit;
    state.watermark = watermark;
    while let Some(entry) = state.open.first_entry() {
        let start = *entry.key();
        if window_end(start, window_ms) > watermark {
            break;
        }
        let window = entry.remove();
        let event = window.close(symbol, start, window_end(start, window_ms), 1);
        match event {
            Event::Rejected(_) => out.stats.rejected_windows += 1,
            _ => out.stats.windows += 1,
        }
        out.events.push_back(event);
        if keep {
            state.emitted.insert(start, window, 1);
        }
    }
    if keep {
        let horizon = state.correction_horizon(config);
        // Starts ascend, so what is past the horizon is a prefix: no full
        // scan on every trade that moves the clock.
        state
            .emitted
            .expire(|start| window_end(start, window_ms) <= horizon);
    }
}

/// Adds a trade that is not late to its open window and moves the symbol's
/// clock. A free function so the hot path can call it while holding `state`.
pub(super) fn accept(
    config: &AggregatorConfig,
    state: &mut SymbolState,
    trade: Trade,
    out: &mut Outputs,
) {
    let window_ms = config.window_ms;
    let start = window_start(trade.trade_time_ms, window_ms);
    match state.open.get_mut(&start) {
        Some(window) => window.add(&trade),
        None => {
            state.open.insert(start, WindowStats::new(&trade));
        }
    }
    out.stats.trades += 1;
    let first_end = *state.first_end.get_or_insert(window_end(start, window_ms));
    let newest = state.max_time.max(trade.trade_time_ms);
    let trailing = newest.saturating_sub(config.allowed_lateness_ms);
    let follows_ids = config.watermark == WatermarkPolicy::IdOrder
        && !(config.track_sequence && state.sequence.has_gaps())
        && trailing >= first_end;
    if trade.trade_time_ms > state.max_time || follows_ids {
        state.max_time = newest;
        // Every earlier id is in: nothing before the newest time is missing.
        let watermark = if follows_ids { newest } else { trailing };
        close_windows(config, trade.symbol, state, watermark, out);
    }
}
