//! Trades held ahead of their symbol's clock until decided: one far ahead
//! of the symbol's newest time (or its very first) waits for the next trade,
//! the other symbols' time or the caller's clock to confirm or refute it.

use std::collections::{BTreeMap, BTreeSet};

use super::symbol_state::SymbolState;
use super::windows::{accept, window_end, window_start};
use super::{AggregatorConfig, Event, Outputs, TimeOutlier};
use crate::{Symbol, Trade};

/// A time a trade is checked against ([`front`], [`consensus`] or its own
/// symbol's newest), with the caller's clock when it was seen.
#[derive(Clone, Copy, Debug)]
pub(super) struct Reference {
    pub(super) time_ms: i64,
    /// The caller's clock at the input that time is from, if live.
    pub(super) input_at: Option<i64>,
}

impl Reference {
    /// Whether `trade` is too far ahead of this to be taken at once: more
    /// than `allowance` beyond it, and, live, beyond what the caller's
    /// clock at `now_ms` says has passed since.
    pub(super) fn too_far(&self, trade: &Trade, allowance: i64, now_ms: Option<i64>) -> bool {
        trade.trade_time_ms > self.time_ms.saturating_add(allowance)
            && self
                .plausible_at(trade, allowance)
                .is_none_or(|at| now_ms.is_none_or(|now| now < at))
    }

    /// When the caller's clock makes `trade`'s jump from here plausible.
    pub(super) fn plausible_at(&self, trade: &Trade, allowance: i64) -> Option<i64> {
        let jump = trade.trade_time_ms.saturating_sub(self.time_ms);
        Some(
            self.input_at?
                .saturating_add(jump.saturating_sub(allowance)),
        )
    }
}

/// The newest trade time of the symbols other than `except` that have one,
/// with the caller's clock at their latest input: what a trade far ahead of
/// its own symbol's time, or with none, is checked against too.
pub(super) fn front(symbols: &BTreeMap<Symbol, SymbolState>, except: Symbol) -> Option<Reference> {
    let started = symbols
        .iter()
        .filter(|(symbol, s)| **symbol != except && s.max_time > i64::MIN)
        .map(|(_, s)| s);
    Some(Reference {
        time_ms: started.clone().map(|s| s.max_time).max()?,
        input_at: started.filter_map(|s| s.last_input_at).max(),
    })
}

/// What the symbols other than `except` say the time is: the lower median
/// of their newest times, a symbol with none counting its earliest held
/// trade (at a live start every symbol's first trade is held), with the
/// caller's clock at their latest input. A median, as one wrong time either
/// way among them must not decide.
pub(super) fn consensus(
    symbols: &BTreeMap<Symbol, SymbolState>,
    except: Symbol,
) -> Option<Reference> {
    let others = symbols
        .iter()
        .filter(|(symbol, _)| **symbol != except)
        .map(|(_, s)| s);
    let mut times: Vec<i64> = others
        .clone()
        .filter_map(|s| {
            let held = || s.ahead.values().map(|a| a.trade.trade_time_ms).min();
            (s.max_time > i64::MIN).then_some(s.max_time).or_else(held)
        })
        .collect();
    if times.is_empty() {
        return None;
    }
    let lower = (times.len() - 1) / 2;
    Some(Reference {
        time_ms: *times.select_nth_unstable(lower).1,
        input_at: others.filter_map(|s| s.last_input_at).max(),
    })
}

/// A trade held far ahead of its symbol's clock.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ahead {
    pub(super) trade: Trade,
    /// What it was too far ahead of; none for the very first trade.
    pub(super) reference: Option<Reference>,
    /// Checked against the other symbols when its window would have closed.
    pub(super) checked: bool,
}

impl Ahead {
    /// When the caller's clock has covered its jump from its reference.
    pub(super) fn clock_due(&self, config: &AggregatorConfig) -> Option<i64> {
        self.reference?
            .plausible_at(&self.trade, config.outlier_jump_ms)
    }

    /// When its window would close were it taken, `last_input_at` being its
    /// symbol's: then the other symbols' time is asked, so that holding it
    /// delays no row they vouch for. Once only.
    pub(super) fn window_due(
        &self,
        config: &AggregatorConfig,
        last_input_at: Option<i64>,
    ) -> Option<i64> {
        if self.checked {
            return None;
        }
        let time = self.trade.trade_time_ms;
        let end = window_end(window_start(time, config.window_ms), config.window_ms);
        let quiet = end
            .saturating_sub(time)
            .saturating_add(config.idle_margin_ms);
        Some(last_input_at?.saturating_add(quiet))
    }

    /// The earlier of the two, live.
    pub(super) fn due(&self, config: &AggregatorConfig, last_input_at: Option<i64>) -> Option<i64> {
        let window = self.window_due(config, last_input_at);
        match (self.clock_due(config), window) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Holds `trade` ahead of `state`'s clock until decided; `holding` lists
/// the symbols that hold any.
pub(super) fn hold(
    state: &mut SymbolState,
    holding: &mut BTreeSet<Symbol>,
    trade: Trade,
    reference: Option<Reference>,
) {
    let ahead = Ahead {
        trade,
        reference,
        checked: false,
    };
    state.ahead.insert(trade.id, ahead);
    holding.insert(trade.symbol);
}

/// Trades held ahead at once per symbol; past it, one is taken as it is.
pub(super) const MAX_HELD_AHEAD: usize = 64;

/// `next`, a later trade of the symbol, decides the trades held ahead with
/// ids below it, in id order: time never falls as ids rise, so one much
/// earlier refutes them ([`Event::TimeOutlier`]), and one near or after
/// them confirms them. (Two wrong frames in a row thus confirm each other.)
pub(super) fn resolve_ahead(
    config: &AggregatorConfig,
    state: &mut SymbolState,
    next: Trade,
    behind_ms: i64,
    out: &mut Outputs,
) {
    while let Some(held) = state.ahead.first_entry() {
        if *held.key() >= next.id {
            break;
        }
        let ahead = held.remove().trade;
        let floor = ahead.trade_time_ms.saturating_sub(config.outlier_jump_ms);
        if next.trade_time_ms >= floor {
            take(config, state, ahead, behind_ms, out);
        } else {
            out.stats.time_outliers += 1;
            out.events.push_back(Event::TimeOutlier(TimeOutlier {
                trade: ahead,
                newest_ms: (state.max_time > i64::MIN).then_some(state.max_time),
                next,
            }));
        }
    }
}

/// Accepts the trades held ahead of `state`'s clock that `vouched` says
/// are right, in id order, and with them those held with smaller ids and
/// no later times than the last of them: time never falls as ids rise.
pub(super) fn confirm_held(
    config: &AggregatorConfig,
    state: &mut SymbolState,
    vouched: impl Fn(&Ahead) -> bool,
    behind_ms: i64,
    out: &mut Outputs,
) {
    let held: Vec<(Ahead, bool)> = std::mem::take(&mut state.ahead)
        .into_values()
        .map(|a| {
            let v = vouched(&a);
            (a, v)
        })
        .collect();
    let last_vouched = held.iter().rev().find(|(_, v)| *v).map(|(a, _)| a.trade);
    let before =
        |t: &Trade| last_vouched.is_some_and(|v| t.id < v.id && t.trade_time_ms <= v.trade_time_ms);
    for (ahead, vouched) in held {
        if vouched || before(&ahead.trade) {
            take(config, state, ahead.trade, behind_ms, out);
        } else {
            state.ahead.insert(ahead.trade.id, ahead);
        }
    }
}

/// Accepts a trade held ahead, now decided, unless its window closed
/// meanwhile (the trades after it were windowed as usual): then it is late
/// like any other, put in `out.decided_late` for [`Aggregator::settle_late`]. Taken
/// before `behind_ms` (the front less the lateness) it marks its symbol
/// behind the front, as a trade taken at once would: at the start of a
/// file every first trade is held, so the front came after it, and a
/// symbol lagging from the first line shows only so.
fn take(
    config: &AggregatorConfig,
    state: &mut SymbolState,
    trade: Trade,
    behind_ms: i64,
    out: &mut Outputs,
) {
    if trade.trade_time_ms < behind_ms {
        state.behind_front = true;
    }
    let start = window_start(trade.trade_time_ms, config.window_ms);
    if window_end(start, config.window_ms) <= state.watermark {
        out.decided_late.push(trade);
    } else {
        accept(config, state, trade, out);
    }
}
