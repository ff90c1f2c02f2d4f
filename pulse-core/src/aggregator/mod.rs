//! The sans-IO windowing engine: per-symbol event-time tumbling windows with a
//! watermark, in the shape of quinn-proto (`handle_*`, `advance`, `poll`).
//!
//! - `config`: the settings and policies;
//! - `events`: what it reports;
//! - `windows`: opening and closing one symbol's windows (the hot path);
//! - `held`: trades held ahead of their symbol's clock until decided;
//! - `symbol_state`: one symbol's state and live clock;
//! - here: the [`Aggregator`] that drives them.

mod config;
mod events;
mod held;
mod symbol_state;
mod windows;

use std::collections::{BTreeMap, BTreeSet};

pub use config::{AggregatorConfig, ConfigError, LatePolicy, WatermarkPolicy};
use events::Outputs;
pub use events::{AggregatorStats, Event, LateTrade, SymbolCheckpoint, TimeOutlier, TradeOutcome};

use crate::sequence::{IdRange, SequenceOutcome};
use crate::{Symbol, Trade, WindowStats};
use held::{Ahead, MAX_HELD_AHEAD, Reference, confirm_held, consensus, front, hold, resolve_ahead};
use symbol_state::SymbolState;
use windows::{accept, close_windows, window_end, window_start};

/// Turns trades into closed windows. No I/O and no clock: the caller passes
/// time in and pulls results out.
///
/// ```
/// use pulse_core::{Aggregator, AggregatorConfig, Event, parse_frame, Frame};
/// let mut agg = Aggregator::new(AggregatorConfig::default()).unwrap();
/// for (id, t) in [(1, 1_000), (2, 1_500), (3, 4_200)] {
///     let frame = format!(r#"{{"e":"aggTrade","E":{t},"a":{id},"s":"BTCUSDT","p":"100.0","q":"1","f":{id},"l":{id},"T":{t},"m":false}}"#);
///     let Frame::Trade(trade) = parse_frame(frame.as_bytes()).unwrap() else { unreachable!() };
///     agg.handle_trade(trade);
/// }
/// // Ids 1..3 are contiguous, so trade 3 (T = 4200) proves [1000, 2000) complete.
/// let Some(Event::Window(w)) = agg.poll() else { panic!() };
/// assert_eq!((w.start_ms, w.trade_count, w.total_volume), (1_000, 2, 2.0));
/// assert!(agg.poll().is_none());
/// agg.flush(); // end of input: [4000, 5000) closes too
/// assert!(matches!(agg.poll(), Some(Event::Window(w)) if w.start_ms == 4_000));
/// ```
#[derive(Debug)]
pub struct Aggregator {
    config: AggregatorConfig,
    symbols: BTreeMap<Symbol, SymbolState>,
    /// Symbols that have held trades ahead, or had until last looked at.
    holding: BTreeSet<Symbol>,
    /// Newest trade time taken, of all symbols.
    front_ms: i64,
    out: Outputs,
}

impl Aggregator {
    /// A new engine, after checking `config`.
    pub fn new(config: AggregatorConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Aggregator {
            config,
            symbols: BTreeMap::new(),
            holding: BTreeSet::new(),
            front_ms: i64::MIN,
            out: Outputs::default(),
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &AggregatorConfig {
        &self.config
    }

    /// Tells the engine that ids up to `last_id` for `symbol` were already
    /// processed (e.g. before a restart), so repeats of them are duplicates.
    pub fn resume_after(&mut self, symbol: Symbol, last_id: u64) {
        self.state(symbol).sequence.resume_after(last_id);
    }

    /// Start of the window holding `trade_time_ms`.
    pub fn window_start(&self, trade_time_ms: i64) -> i64 {
        window_start(trade_time_ms, self.config.window_ms)
    }

    /// The clock state of `symbol`, to store beside its emitted windows.
    pub fn checkpoint(&self, symbol: Symbol) -> Option<SymbolCheckpoint> {
        self.symbols.get(&symbol).map(SymbolState::checkpoint)
    }

    /// Restores a symbol's clock from a [`checkpoint`](Self::checkpoint), before
    /// re-feeding the trades of its open windows. Trades for windows that end
    /// at or before the restored watermark are then reported late, not
    /// emitted twice.
    pub fn restore(&mut self, symbol: Symbol, checkpoint: SymbolCheckpoint) {
        let state = self.state(symbol);
        state.watermark = state.watermark.max(checkpoint.watermark_ms);
        state.max_time = state.max_time.max(checkpoint.max_time_ms);
        self.front_ms = self.front_ms.max(checkpoint.max_time_ms);
    }

    /// Feeds one trade of a recording, whose clock is the data itself. Call
    /// for every trade; then drain [`poll`](Self::poll), since a trade can
    /// close earlier windows.
    pub fn handle_trade(&mut self, trade: Trade) -> TradeOutcome {
        self.handle(trade, None)
    }

    /// Feeds one live trade that arrived at `now_ms` on the caller's
    /// monotonic clock (any origin: only differences are used), so that
    /// [`advance`](Self::advance) can close the symbol's last window once it
    /// has been quiet long enough. Then drain [`poll`](Self::poll).
    pub fn handle_trade_at(&mut self, trade: Trade, now_ms: i64) -> TradeOutcome {
        self.handle(trade, Some(now_ms))
    }

    fn handle(&mut self, trade: Trade, now_ms: Option<i64>) -> TradeOutcome {
        let outcome = self.handle_one(trade, now_ms);
        if !self.out.decided_late.is_empty() {
            self.settle_late();
        }
        outcome
    }

    fn handle_one(&mut self, trade: Trade, now_ms: Option<i64>) -> TradeOutcome {
        // Taken before a trade moves the front.
        let behind_ms = self.behind_front_ms();
        let config = &self.config;
        let window_ms = config.window_ms;
        // One map lookup per trade: this is the hot path.
        let state = self
            .symbols
            .entry(trade.symbol)
            .or_insert_with(|| SymbolState::new(config.max_open_gaps));
        let previous_input = state.last_input_at;
        if now_ms.is_some() {
            state.last_input_at = now_ms;
        }

        if config.track_sequence {
            match state.sequence.observe(trade.id) {
                SequenceOutcome::Duplicate => {
                    self.out.stats.duplicates += 1;
                    return TradeOutcome::Duplicate;
                }
                SequenceOutcome::Gap(missing) => {
                    self.out.stats.gaps += 1;
                    state.gap_at = now_ms.or(state.gap_at);
                    self.out.stats.missing_ids += missing.len();
                    // Only a new gap can push out an old one.
                    let forgotten: u64 = state.sequence.forgotten();
                    self.out.stats.forgotten_ids += forgotten - state.forgotten_ids;
                    state.forgotten_ids = forgotten;
                    self.out.events.push_back(Event::Gap {
                        symbol: trade.symbol,
                        missing,
                    });
                }
                _ => {}
            }
        }

        // Decided first, as it may move the clock.
        resolve_ahead(config, state, trade, behind_ms, &mut self.out);
        let start = window_start(trade.trade_time_ms, window_ms);
        if window_end(start, window_ms) <= state.watermark {
            return self.late(trade, now_ms.is_some());
        }

        // Checked against its symbol's time and, when far ahead of that or
        // there is none, against the newest of all: every symbol trades on
        // one clock, and its own time may be old (a quiet spell) or wrong.
        let jump = config.outlier_jump_ms;
        let own = (state.max_time > i64::MIN).then_some(Reference {
            time_ms: state.max_time,
            input_at: previous_input,
        });
        let (state, reference, held) = if own.is_none_or(|r| r.too_far(&trade, jump, now_ms)) {
            let front = front(&self.symbols, trade.symbol);
            let state = self.symbols.get_mut(&trade.symbol);
            // The newer of the two decides.
            let reference = match (own, front) {
                (Some(own), Some(front)) if front.time_ms > own.time_ms => Some(front),
                (own, front) => own.or(front),
            };
            let held = reference.is_none_or(|r| r.too_far(&trade, jump, now_ms));
            (state.expect("entered above"), reference, held)
        } else {
            (state, own, false)
        };
        if held && state.ahead.len() < MAX_HELD_AHEAD {
            // A wrong timestamp, or a clock that did not see the quiet
            // spell: what follows tells.
            hold(state, &mut self.holding, trade, reference);
            // Whether it came behind the others is told now too: held
            // first trades are in no front yet.
            let lateness = config.allowed_lateness_ms;
            if consensus(&self.symbols, trade.symbol)
                .is_some_and(|c| trade.trade_time_ms < c.time_ms.saturating_sub(lateness))
                && let Some(state) = self.symbols.get_mut(&trade.symbol)
            {
                state.behind_front = true;
            }
            return TradeOutcome::Accepted;
        }
        if trade.trade_time_ms < behind_ms {
            state.behind_front = true;
        }
        accept(config, state, trade, &mut self.out);
        self.front_ms = self.front_ms.max(state.max_time);
        if !self.holding.is_empty() {
            self.vouch_for_held(&trade);
        }
        TradeOutcome::Accepted
    }

    /// `taken`, just taken, vouches for the trades other symbols hold ahead
    /// that are not after it: every symbol trades on one clock, so what
    /// lagged was the holding symbol's own time (quiet, or wrong behind).
    /// Not nearer than that: a symbol's own next trade tells better.
    #[cold]
    fn vouch_for_held(&mut self, taken: &Trade) {
        let reach = taken.trade_time_ms;
        for symbol in std::mem::take(&mut self.holding) {
            if symbol != taken.symbol {
                self.confirm_ahead(symbol, |a| a.trade.trade_time_ms <= reach);
            }
            if self
                .symbols
                .get(&symbol)
                .is_some_and(|s| !s.ahead.is_empty())
            {
                self.holding.insert(symbol);
            }
        }
    }

    /// Takes the trades of `symbol` held far ahead of its clock that
    /// `vouched` says are right: the caller's clock, a watermark or the end
    /// of input vouches for them.
    fn confirm_ahead(&mut self, symbol: Symbol, vouched: impl Fn(&Ahead) -> bool) {
        let behind_ms = self.behind_front_ms();
        if let Some(state) = self.symbols.get_mut(&symbol) {
            confirm_held(&self.config, state, vouched, behind_ms, &mut self.out);
            self.front_ms = self.front_ms.max(state.max_time);
            self.settle_late();
        }
    }

    /// A trade whose window the watermark has passed: counted and surfaced,
    /// and under [`LatePolicy::Reemit`] its window corrected.
    fn late(&mut self, trade: Trade, live: bool) -> TradeOutcome {
        let window_ms = self.config.window_ms;
        let start = window_start(trade.trade_time_ms, window_ms);
        let state = self.state(trade.symbol);
        state.late_trades += 1;
        let watermark_ms = state.watermark;
        // Older windows are no longer kept, so they cannot be corrected.
        let horizon = self.correction_horizon(trade.symbol).unwrap_or(i64::MIN);
        let corrected =
            self.config.late_policy == LatePolicy::Reemit && window_end(start, window_ms) > horizon;
        self.out.stats.late_trades += 1;
        let late_at = self.out.events.len();
        self.out.events.push_back(Event::Late(LateTrade {
            trade,
            window_start_ms: start,
            watermark_ms,
            corrected,
        }));
        // A window whose sums overflow has no row, so neither has the trade.
        if !(corrected && self.reemit(trade, start, live)) {
            self.out.stats.late_uncorrected += 1;
            if let Some(Event::Late(late)) = self.out.events.get_mut(late_at) {
                late.corrected = false;
            }
        }
        TradeOutcome::Late
    }

    /// Hands on the trades held ahead that were decided after their window
    /// closed, as late.
    #[cold]
    fn settle_late(&mut self) {
        for trade in std::mem::take(&mut self.out.decided_late) {
            self.late(trade, false);
        }
    }

    /// The trades of `symbol` held far ahead of its clock, in id order,
    /// waiting to be confirmed or refuted (see
    /// [`AggregatorConfig::outlier_jump_ms`]).
    pub fn held_ahead(&self, symbol: Symbol) -> impl Iterator<Item = &Trade> + '_ {
        self.symbols
            .get(&symbol)
            .into_iter()
            .flat_map(|s| s.ahead.values().map(|a| &a.trade))
    }

    /// Re-feeds a trade that was handled before a restart, after
    /// [`restore`](Self::restore): it goes back into its open window, or,
    /// under [`LatePolicy::Reemit`], into the kept copy of its emitted
    /// window, so that a later late trade re-emits the whole window. Emits
    /// nothing while the restored clock covers the trade, as it covers every
    /// trade read again from a stored resume offset.
    pub fn restore_trade(&mut self, trade: Trade) {
        let window_ms = self.config.window_ms;
        let start = window_start(trade.trade_time_ms, window_ms);
        let behind_ms = self.behind_front_ms();
        let Some(state) = self.symbols.get_mut(&trade.symbol) else {
            self.handle(trade, None);
            return;
        };
        // Newer than the restored clock, it was not taken before the
        // restart (taking it would have moved the clock to it): it was held
        // ahead then, and is held again for the trades after it to decide
        // as they did. Handled afresh, the restored clock, nearer to it
        // than the trades were when it came, could take a time they refuted.
        let open = window_end(start, window_ms) > state.watermark;
        let held = open
            && state.max_time > i64::MIN
            && trade.trade_time_ms > state.max_time
            && state.ahead.len() < MAX_HELD_AHEAD;
        if open && !held {
            self.handle(trade, None);
            return;
        }
        // It decided a trade held ahead before the restart too.
        resolve_ahead(&self.config, state, trade, behind_ms, &mut self.out);
        if held {
            let reference = Some(Reference {
                time_ms: state.max_time,
                input_at: None,
            });
            hold(state, &mut self.holding, trade, reference);
        } else if self.config.late_policy == LatePolicy::Reemit
            && window_end(start, window_ms) > state.correction_horizon(&self.config)
        {
            match state.emitted.get_mut(start) {
                Some((stats, _)) => stats.add(&trade),
                None => state.emitted.insert(start, WindowStats::new(&trade), 1),
            }
        }
        if !self.out.decided_late.is_empty() {
            self.settle_late();
        }
    }

    /// Closes every window of `symbol` ending at or before `watermark_ms`,
    /// because the caller knows that no more of its trades will come for
    /// them (e.g. from a producer's progress marker). Never lowers the
    /// watermark. Drain [`poll`](Self::poll) afterwards.
    pub fn close_through(&mut self, symbol: Symbol, watermark_ms: i64) {
        let jump = self.config.outlier_jump_ms;
        self.state(symbol);
        // The caller vouches for time up to near a trade held ahead.
        self.confirm_ahead(symbol, |a| {
            watermark_ms >= a.trade.trade_time_ms.saturating_sub(jump)
        });
        self.raise_watermark(symbol, watermark_ms);
    }

    /// Each symbol's watermark as far as the caller can vouch for it now,
    /// for progress markers: every trade of the symbol before it has been
    /// fed. Live (`now_ms` on the caller's clock of
    /// [`handle_trade_at`](Self::handle_trade_at)), a quiet symbol counts as
    /// being at its newest trade time plus the time since its last input,
    /// less `idle_margin_ms` (or the lateness, as in
    /// [`advance`](Self::advance)), also with no window open. In a recording
    /// (`None`), whose clock is the data, a quiet symbol follows the newest
    /// trade time of all symbols less `allowed_lateness_ms`, but no further
    /// than the end of its own last window: that closes the window, and a
    /// symbol that lags the others (a file not in time order across
    /// symbols, which can show only later) then finds its next trades at
    /// most a window behind, correctable. If one of its trades came further
    /// behind the others than the lateness, only its own trades vouch for
    /// it. Never below the symbol's own watermark; symbols that saw no
    /// trade are left out.
    pub fn watermarks_at(&self, now_ms: Option<i64>) -> impl Iterator<Item = (Symbol, i64)> + '_ {
        let config = &self.config;
        let front = self.symbols.values().map(|s| s.max_time).max();
        let recording = front
            .unwrap_or(i64::MIN)
            .saturating_sub(config.allowed_lateness_ms);
        self.symbols
            .iter()
            .filter(|(_, s)| s.max_time > i64::MIN)
            .map(move |(symbol, s)| {
                let quiet = match now_ms {
                    Some(now) => s.live_watermark(config, now).unwrap_or(i64::MIN),
                    None if s.behind_front => i64::MIN,
                    None => {
                        let last_end = window_end(
                            window_start(s.max_time, config.window_ms),
                            config.window_ms,
                        );
                        recording.min(last_end)
                    }
                };
                (*symbol, s.watermark.max(quiet))
            })
    }

    /// Every symbol's clock state, in symbol order.
    pub fn checkpoints(&self) -> impl Iterator<Item = (Symbol, SymbolCheckpoint)> + '_ {
        self.symbols
            .iter()
            .map(|(symbol, s)| (*symbol, s.checkpoint()))
    }

    /// Closes quiet symbols' last windows. `now_ms` is on the caller's clock
    /// given to [`handle_trade_at`](Self::handle_trade_at): a symbol whose
    /// newest trade was at `T` and whose last input came at `t` is taken to
    /// be at `T + (now_ms - t)` on the exchange's clock, and windows ending
    /// `idle_margin_ms` before that close (`allowed_lateness_ms` while its
    /// trades may come out of id order, see [`WatermarkPolicy`]). Call when
    /// [`poll_timeout`](Self::poll_timeout) is reached, then drain `poll`.
    pub fn advance(&mut self, now_ms: i64) {
        let config = self.config.clone();
        let holding: Vec<(Symbol, Option<i64>)> = self
            .symbols
            .iter()
            .filter(|(_, s)| !s.ahead.is_empty())
            .map(|(symbol, s)| (*symbol, s.last_input_at))
            .collect();
        let jump = config.outlier_jump_ms;
        for (symbol, last_input_at) in holding {
            // When its window would close, a held trade near what the other
            // symbols say is taken (its own symbol's time lagged, or it had
            // none); one far ahead of them waits on, for its symbol's next
            // trade. With nothing to ask, a first trade is taken.
            let window_due = |a: &Ahead| {
                a.window_due(&config, last_input_at)
                    .is_some_and(|at| at <= now_ms)
            };
            let asking = self
                .symbols
                .get(&symbol)
                .is_some_and(|s| s.ahead.values().any(window_due));
            let others = asking.then(|| consensus(&self.symbols, symbol)).flatten();
            let mut take = Vec::new();
            if let Some(state) = self.symbols.get_mut(&symbol).filter(|_| asking) {
                for ahead in state.ahead.values_mut() {
                    if !window_due(ahead) {
                        continue;
                    }
                    ahead.checked = true;
                    match others {
                        Some(o) if o.too_far(&ahead.trade, jump, Some(now_ms)) => {
                            ahead.reference = ahead.reference.or(Some(o));
                        }
                        None if ahead.reference.is_some() => {}
                        _ => take.push(ahead.trade.id),
                    }
                }
            }
            // And one whose jump the caller's clock has caught up with: a
            // quiet spell after all.
            self.confirm_ahead(symbol, |a| {
                take.contains(&a.trade.id) || a.clock_due(&config).is_some_and(|at| at <= now_ms)
            });
        }
        let due: Vec<(Symbol, i64)> = self
            .symbols
            .iter()
            .filter(|(_, s)| !s.open.is_empty())
            .filter_map(|(sym, s)| Some((*sym, s.live_watermark(&config, now_ms)?)))
            .collect();
        for (symbol, watermark) in due {
            self.raise_watermark(symbol, watermark);
        }
    }

    /// Says that input for `symbol` arrived at `now_ms` but is held upstream:
    /// a live source holding trades behind a gap until it is backfilled. Its
    /// windows then wait instead of closing as idle, as they would for input
    /// that reached the aggregator.
    pub fn input_held(&mut self, symbol: Symbol, now_ms: i64) {
        if let Some(state) = self.symbols.get_mut(&symbol) {
            state.last_input_at = Some(now_ms);
        }
    }

    /// When to call [`advance`](Self::advance) next, on the caller's clock,
    /// or `None` when no live symbol has an open window.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<i64> {
        let window_ms = self.config.window_ms;
        let closing = self.symbols.values().filter_map(|s| {
            let (&start, _) = s.open.first_key_value()?;
            s.live_closes_at(&self.config, window_end(start, window_ms))
        });
        let vouching = self
            .symbols
            .values()
            .flat_map(|s| s.ahead.values().map(|a| (a, s.last_input_at)))
            .filter_map(|(a, last_input_at)| a.due(&self.config, last_input_at));
        closing.chain(vouching).min()
    }

    /// Closes every open window, for end of input. Drain `poll` afterwards.
    ///
    /// This ends every symbol seen: its watermark moves to the end of time,
    /// so any later trade of it is [`TradeOutcome::Late`] and, under the
    /// default [`LatePolicy::Count`], in no row. To close quiet windows
    /// while input goes on, use [`advance`](Self::advance) or
    /// [`close_through`](Self::close_through).
    pub fn flush(&mut self) {
        self.close_all(true);
    }

    /// Closes every open window as [`flush`](Self::flush) does, but leaves a
    /// trade held ahead of its symbol's clock undecided, in no window: for
    /// a shutdown after which the same input is read again from a stored
    /// position, where what follows it still decides it.
    pub fn flush_windows(&mut self) {
        self.close_all(false);
    }

    /// Ends every symbol, taking the trades held ahead first if `confirm`.
    fn close_all(&mut self, confirm: bool) {
        let symbols: Vec<Symbol> = self.symbols.keys().copied().collect();
        for symbol in symbols {
            if confirm {
                self.confirm_ahead(symbol, |_| true);
            }
            self.raise_watermark(symbol, i64::MAX);
        }
    }

    /// Next event, oldest first. Call after every `handle_trade`, `advance`
    /// and `flush` until it returns `None`.
    #[must_use]
    pub fn poll(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }

    /// Running totals.
    pub fn stats(&self) -> AggregatorStats {
        self.out.stats
    }

    /// Late trades seen for one symbol.
    pub fn late_trades(&self, symbol: Symbol) -> u64 {
        self.symbols.get(&symbol).map_or(0, |s| s.late_trades)
    }

    /// Windows of `symbol` ending at or before this can no longer change:
    /// its watermark under [`LatePolicy::Count`]; under
    /// [`LatePolicy::Reemit`], `late_retention_ms` behind its newest trade
    /// time (or behind its watermark less a window, when a quiet symbol's
    /// watermark went on). `None` before its first trade.
    pub fn correction_horizon(&self, symbol: Symbol) -> Option<i64> {
        let state = self.symbols.get(&symbol)?;
        Some(match self.config.late_policy {
            LatePolicy::Count => state.watermark,
            LatePolicy::Reemit => state.correction_horizon(&self.config),
        })
    }

    /// A symbol's watermark, if it has seen a trade.
    pub fn watermark(&self, symbol: Symbol) -> Option<i64> {
        self.symbols.get(&symbol).map(|s| s.watermark)
    }

    /// The newest trade time `symbol` has seen, if any.
    pub fn newest_trade_ms(&self, symbol: Symbol) -> Option<i64> {
        let s = self.symbols.get(&symbol)?;
        (s.max_time > i64::MIN).then_some(s.max_time)
    }

    /// How far `symbol`'s watermark trails its newest trade time, in ms.
    pub fn watermark_lag_ms(&self, symbol: Symbol) -> Option<i64> {
        let s = self.symbols.get(&symbol)?;
        (s.watermark > i64::MIN).then(|| s.max_time.saturating_sub(s.watermark).max(0))
    }

    /// Missing id ranges for a symbol, oldest first.
    pub fn missing(&self, symbol: Symbol) -> Vec<IdRange> {
        self.symbols
            .get(&symbol)
            .map(|s| s.sequence.missing().collect())
            .unwrap_or_default()
    }

    /// Trades before this time came behind the front of all symbols by
    /// more than the lateness: their symbol is marked behind it.
    fn behind_front_ms(&self) -> i64 {
        self.front_ms
            .saturating_sub(self.config.allowed_lateness_ms)
    }

    /// Ids that gaps left missing and no trade has filled so far, over
    /// every symbol, counting those the open-gap limit gave up on.
    pub fn still_missing(&self) -> u64 {
        let open: u64 = self
            .symbols
            .values()
            .map(|s| s.sequence.missing_count())
            .sum();
        open + self.out.stats.forgotten_ids
    }

    fn state(&mut self, symbol: Symbol) -> &mut SymbolState {
        let max_open_gaps = self.config.max_open_gaps;
        self.symbols
            .entry(symbol)
            .or_insert_with(|| SymbolState::new(max_open_gaps))
    }

    /// Emits, in start order, every window whose end the new watermark reaches.
    fn raise_watermark(&mut self, symbol: Symbol, watermark: i64) {
        if let Some(state) = self.symbols.get_mut(&symbol) {
            close_windows(&self.config, symbol, state, watermark, &mut self.out);
        }
    }

    /// Adds a late trade to its kept window and emits it again; false when
    /// the window came out [`Event::Rejected`] (or was not kept).
    fn reemit(&mut self, trade: Trade, start: i64, live: bool) -> bool {
        let window_ms = self.config.window_ms;
        let Some(state) = self.symbols.get_mut(&trade.symbol) else {
            return false;
        };
        // Live, a correction of the window not polled yet is brought up to
        // date instead: a backfilled burst corrects a window with one row,
        // not one per trade. Never its first row: a late trade always comes
        // out in a higher version. Not in a recording either, whose rows
        // must not depend on when the caller polls.
        let unpolled = live
            .then(|| {
                self.out.events.iter().rposition(|e| {
                    matches!(e, Event::Window(w)
                        if w.symbol == trade.symbol && w.start_ms == start && w.version > 1)
                })
            })
            .flatten();
        let (stats, version) = match state.emitted.get_mut(start) {
            Some((stats, version)) => {
                stats.add(&trade);
                if unpolled.is_none() {
                    *version += 1;
                }
                (stats.clone(), *version)
            }
            None => {
                // The window was empty when it closed; this is its first row.
                let stats = WindowStats::new(&trade);
                state.emitted.insert(start, stats.clone(), 1);
                (stats, 1)
            }
        };
        let event = stats.close(trade.symbol, start, window_end(start, window_ms), version);
        if let Some(at) = unpolled
            && matches!(event, Event::Window(_))
        {
            self.out.events[at] = event;
            return true;
        }
        let stored = !matches!(event, Event::Rejected(_));
        if !stored {
            self.out.stats.rejected_windows += 1;
        } else if version == 1 {
            self.out.stats.windows += 1;
        } else {
            self.out.stats.reemitted += 1;
        }
        self.out.events.push_back(event);
        stored
    }
}
