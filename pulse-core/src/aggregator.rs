//! The sans-IO windowing engine: per-symbol event-time tumbling windows with a
//! watermark, in the shape of quinn-proto (`handle_*`, `advance`, `poll`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::emitted::EmittedWindows;
use crate::sequence::{DEFAULT_MAX_OPEN_GAPS, IdRange, Sequence, SequenceOutcome};
use crate::{RejectedWindow, Symbol, Trade, Window, WindowStats};

/// What to do with a trade whose window was already emitted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LatePolicy {
    /// Count it and report [`Event::Late`]; the emitted window stays as it was.
    #[default]
    Count,
    /// Also re-emit the corrected window with a higher version, as long as it
    /// is within [`AggregatorConfig::late_retention_ms`] of the watermark.
    Reemit,
}

/// How a symbol's watermark follows its trades.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WatermarkPolicy {
    /// Trades come in id order (a live source's lanes release them so, and
    /// recordings keep it). Binance ids are contiguous and trade times
    /// never fall as ids rise, so a trade at `T` proves every window ending
    /// at or before `T` complete: it closes them at once. Only while the
    /// symbol has an open id gap (seen with
    /// [`track_sequence`](AggregatorConfig::track_sequence)) does the
    /// watermark trail the newest trade by `allowed_lateness_ms`; live, for
    /// at most `allowed_lateness_ms` on the caller's clock after the gap
    /// showed, since a gap no one fills must not slow the symbol for good.
    /// (Ids just below the very first trade show no gap, so live they are
    /// not waited for: input whose order is not known wants `Lateness`.)
    #[default]
    IdOrder,
    /// The newest trade time minus `allowed_lateness_ms`, whatever the ids:
    /// for inputs whose order is not known (`pulse consume` keeps this).
    /// Live, a quiet symbol's windows close `allowed_lateness_ms`, not
    /// `idle_margin_ms`, past their end.
    Lateness,
}

/// Settings for an [`Aggregator`]. Plain data; checked by [`AggregatorConfig::validate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregatorConfig {
    /// Window length in ms. Default 1000.
    pub window_ms: i64,
    /// How the watermark follows trades. Default [`WatermarkPolicy::IdOrder`].
    pub watermark: WatermarkPolicy,
    /// How far behind the newest trade time the watermark trails when it
    /// cannot follow ids (see [`WatermarkPolicy`]). Default 2000.
    pub allowed_lateness_ms: i64,
    /// A quiet symbol's last window closes once the caller's clock says
    /// this long has passed beyond the window's end, counted from the
    /// symbol's last input ([`Aggregator::handle_trade_at`]). Elapsed time
    /// only: the caller's clock is never compared with trade times, so any
    /// offset between the two is harmless. Small (default 150 ms) because
    /// it only has to cover the exchange's delivery jitter; a trade that
    /// still comes later re-emits its window under [`LatePolicy::Reemit`].
    /// While the watermark cannot follow ids (see [`WatermarkPolicy`]),
    /// `allowed_lateness_ms` is waited for instead, if larger.
    pub idle_margin_ms: i64,
    /// Late-trade handling. Default [`LatePolicy::Count`].
    pub late_policy: LatePolicy,
    /// With [`LatePolicy::Reemit`], how long (behind the watermark) emitted
    /// windows are kept for correction. Default 60000.
    pub late_retention_ms: i64,
    /// Drop duplicate ids and report gaps. Default true.
    pub track_sequence: bool,
    /// Missing id ranges kept per symbol. Default
    /// [`DEFAULT_MAX_OPEN_GAPS`]; past it the oldest are forgotten
    /// ([`AggregatorStats::forgotten_ids`]).
    pub max_open_gaps: usize,
    /// A trade more than this far ahead of its symbol's newest trade time
    /// and of the other symbols' newest, beyond what the caller's clock says
    /// has passed since (live, [`Aggregator::handle_trade_at`]), moves the
    /// symbol's clock only once confirmed: by the next trade with a larger
    /// id coming no more than this before it, by another symbol's trade
    /// reaching its time, by the caller's clock
    /// catching up with it ([`advance`](Aggregator::advance)), by a
    /// watermark near it ([`close_through`](Aggregator::close_through)), or
    /// at [`flush`](Aggregator::flush). One wrong timestamp would otherwise
    /// make every later trade of the symbol late; refuted, it is
    /// [`Event::TimeOutlier`]. The very first trade, with nothing to be
    /// ahead of, is held the same way until the next trade of its symbol.
    /// Live, when a held trade's window would close anyway, it is taken if
    /// near what the other symbols say the time is (a first trade also when
    /// there are none). Default 60000 (the correction horizon).
    pub outlier_jump_ms: i64,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        AggregatorConfig {
            window_ms: 1000,
            watermark: WatermarkPolicy::IdOrder,
            allowed_lateness_ms: 2000,
            idle_margin_ms: 150,
            late_policy: LatePolicy::Count,
            late_retention_ms: 60_000,
            track_sequence: true,
            max_open_gaps: DEFAULT_MAX_OPEN_GAPS,
            outlier_jump_ms: 60_000,
        }
    }
}

/// A setting outside its allowed range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `window_ms` must be positive.
    #[error("window_ms must be > 0, got {0}")]
    WindowSize(i64),
    /// A duration was negative.
    #[error("{name} must be >= 0, got {value}")]
    Negative {
        /// Setting name.
        name: &'static str,
        /// The value given.
        value: i64,
    },
}

impl AggregatorConfig {
    /// Checks every setting once, up front.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.window_ms <= 0 {
            return Err(ConfigError::WindowSize(self.window_ms));
        }
        for (name, value) in [
            ("allowed_lateness_ms", self.allowed_lateness_ms),
            ("idle_margin_ms", self.idle_margin_ms),
            ("late_retention_ms", self.late_retention_ms),
            ("outlier_jump_ms", self.outlier_jump_ms),
        ] {
            if value < 0 {
                return Err(ConfigError::Negative { name, value });
            }
        }
        Ok(())
    }
}

/// Something the caller should act on, drained with [`Aggregator::poll`].
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A window closed (or, with [`LatePolicy::Reemit`], was corrected).
    /// Live, late trades handled before the caller polls update the
    /// correction still queued instead of adding one each.
    Window(Window),
    /// A trade arrived after its window was closed.
    Late(LateTrade),
    /// Ids were skipped: these trades are missing and should be backfilled.
    Gap {
        /// Symbol with the gap.
        symbol: Symbol,
        /// The missing ids.
        missing: IdRange,
    },
    /// A window closed but cannot be represented (its sums overflow): it
    /// has no row, and is reported instead of being stored wrong.
    Rejected(RejectedWindow),
    /// A trade far ahead of its symbol's clock that the next trade did not
    /// follow: a wrong timestamp. It is in no window and moved no clock.
    TimeOutlier(TimeOutlier),
}

/// A trade whose time the trades after it refuted; see
/// [`AggregatorConfig::outlier_jump_ms`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeOutlier {
    /// The trade itself.
    pub trade: Trade,
    /// Its symbol's newest trade time; none if it was the symbol's first.
    pub newest_ms: Option<i64>,
    /// The trade that refuted it: a larger id, much earlier in time.
    pub next: Trade,
}

/// A trade that arrived after its window closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LateTrade {
    /// The trade itself.
    pub trade: Trade,
    /// Start of the window it belongs to.
    pub window_start_ms: i64,
    /// The symbol's watermark when it arrived.
    pub watermark_ms: i64,
    /// Whether its window is re-emitted with it ([`LatePolicy::Reemit`],
    /// within [`AggregatorConfig::late_retention_ms`], and the window's sums
    /// still fit). When false the trade is in no window row: only the late
    /// counts show it.
    pub corrected: bool,
}

/// What [`Aggregator::handle_trade`] did with a trade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TradeOutcome {
    /// Added to an open window (or, far ahead of its symbol's clock, held
    /// until decided: see [`AggregatorConfig::outlier_jump_ms`]).
    Accepted,
    /// Its id was already seen; dropped.
    Duplicate,
    /// Its window had closed; see [`Event::Late`].
    Late,
}

/// A symbol's clock state, saved beside stored windows so that a restarted
/// consumer continues exactly where the stored windows end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SymbolCheckpoint {
    /// Windows ending at or before this were already emitted.
    pub watermark_ms: i64,
    /// Largest trade time seen.
    pub max_time_ms: i64,
}

/// Running totals, for metrics and summaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AggregatorStats {
    /// Trades added to windows.
    pub trades: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Late trades (all symbols).
    pub late_trades: u64,
    /// Late trades whose window was not corrected, so they are in no row.
    pub late_uncorrected: u64,
    /// Gaps reported.
    pub gaps: u64,
    /// Ids reported missing, summed over gaps.
    pub missing_ids: u64,
    /// Missing ids forgotten because a symbol had more than
    /// [`AggregatorConfig::max_open_gaps`] gaps open: a trade with one of
    /// them, if it still comes, is dropped as a duplicate.
    pub forgotten_ids: u64,
    /// Windows emitted for the first time.
    pub windows: u64,
    /// Corrected windows re-emitted.
    pub reemitted: u64,
    /// Windows closed without a row, see [`Event::Rejected`].
    pub rejected_windows: u64,
    /// Trades with a time the next trades refuted, see [`Event::TimeOutlier`].
    pub time_outliers: u64,
}

#[derive(Debug)]
struct SymbolState {
    max_time: i64,
    watermark: i64,
    /// Caller's clock at the last input, for closing the tail.
    last_input_at: Option<i64>,
    /// Caller's clock when the newest id gap showed, live: its missing
    /// trades may still come, out of order, for `allowed_lateness_ms`.
    gap_at: Option<i64>,
    /// End of the window of the first trade seen. Ids below the first may
    /// still come (a reorder at the very start shows no gap), so windows up
    /// to here close by the lateness only.
    first_end: Option<i64>,
    open: BTreeMap<i64, WindowStats>,
    /// Emitted windows kept for [`LatePolicy::Reemit`], with their version.
    emitted: EmittedWindows,
    sequence: Sequence,
    /// Trades far ahead of `max_time` by id, in no window until decided.
    ahead: BTreeMap<u64, Ahead>,
    /// `sequence.forgotten()` already in the stats.
    forgotten_ids: u64,
    late_trades: u64,
    /// A trade of it came more than `allowed_lateness_ms` behind the
    /// newest of all symbols: the input is not in time order across
    /// symbols (a file sorted by symbol), so in a recording the others'
    /// time vouches for nothing of its own.
    behind_front: bool,
}

impl SymbolState {
    fn new(max_open_gaps: usize) -> Self {
        SymbolState {
            max_time: i64::MIN,
            watermark: i64::MIN,
            last_input_at: None,
            gap_at: None,
            first_end: None,
            open: BTreeMap::new(),
            emitted: EmittedWindows::default(),
            sequence: Sequence::new(max_open_gaps),
            ahead: BTreeMap::new(),
            forgotten_ids: 0,
            late_trades: 0,
            behind_front: false,
        }
    }

    fn checkpoint(&self) -> SymbolCheckpoint {
        SymbolCheckpoint {
            watermark_ms: self.watermark,
            max_time_ms: self.max_time,
        }
    }

    /// Until when, on the caller's clock, trades of the symbol may still
    /// come out of id order: always under [`WatermarkPolicy::Lateness`],
    /// and for `allowed_lateness_ms` after a gap showed under `IdOrder`.
    fn unordered_until(&self, config: &AggregatorConfig) -> Option<i64> {
        if config.watermark == WatermarkPolicy::Lateness {
            return Some(i64::MAX);
        }
        let at = self
            .gap_at
            .filter(|_| config.track_sequence && self.sequence.has_gaps())?;
        Some(at.saturating_add(config.allowed_lateness_ms))
    }

    /// How far behind its live clock (newest trade time plus the caller's
    /// time since its last input) the symbol's windows close at `now_ms`.
    fn live_lag(&self, config: &AggregatorConfig, now_ms: i64) -> i64 {
        let margin = config.idle_margin_ms;
        match self.unordered_until(config) {
            Some(until) if now_ms < until => margin.max(config.allowed_lateness_ms),
            _ => margin,
        }
    }

    /// The symbol's live clock at `now_ms` (its newest trade time plus the
    /// caller's time since its last input) less the lag: how far its
    /// windows may close. `None` before any live input.
    fn live_watermark(&self, config: &AggregatorConfig, now_ms: i64) -> Option<i64> {
        let quiet = now_ms.saturating_sub(self.last_input_at?);
        Some(
            self.max_time
                .saturating_add(quiet)
                .saturating_sub(self.live_lag(config, now_ms)),
        )
    }

    /// When, on the caller's clock, [`live_lag`](Self::live_lag) lets the
    /// window ending at `end` close: the first time the live clock less the
    /// lag reaches it.
    fn live_closes_at(&self, config: &AggregatorConfig, end: i64) -> Option<i64> {
        let input_at = self.last_input_at?;
        let quiet_for = |lag: i64| {
            let quiet = end.saturating_add(lag).saturating_sub(self.max_time).max(0);
            input_at.saturating_add(quiet)
        };
        let margin = config.idle_margin_ms;
        let by_margin = quiet_for(margin);
        Some(match self.unordered_until(config) {
            // Whichever comes first: the lateness passed, or the margin once
            // the trades may no longer come out of order.
            Some(until) => {
                quiet_for(margin.max(config.allowed_lateness_ms)).min(by_margin.max(until))
            }
            None => by_margin,
        })
    }
}

/// A time a trade is checked against ([`front`], [`consensus`] or its own
/// symbol's newest), with the caller's clock when it was seen.
#[derive(Clone, Copy, Debug)]
struct Reference {
    time_ms: i64,
    /// The caller's clock at the input that time is from, if live.
    input_at: Option<i64>,
}

impl Reference {
    /// Whether `trade` is too far ahead of this to be taken at once: more
    /// than `allowance` beyond it, and, live, beyond what the caller's
    /// clock at `now_ms` says has passed since.
    fn too_far(&self, trade: &Trade, allowance: i64, now_ms: Option<i64>) -> bool {
        trade.trade_time_ms > self.time_ms.saturating_add(allowance)
            && self
                .plausible_at(trade, allowance)
                .is_none_or(|at| now_ms.is_none_or(|now| now < at))
    }

    /// When the caller's clock makes `trade`'s jump from here plausible.
    fn plausible_at(&self, trade: &Trade, allowance: i64) -> Option<i64> {
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
fn front(symbols: &BTreeMap<Symbol, SymbolState>, except: Symbol) -> Option<Reference> {
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
fn consensus(symbols: &BTreeMap<Symbol, SymbolState>, except: Symbol) -> Option<Reference> {
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
struct Ahead {
    trade: Trade,
    /// What it was too far ahead of; none for the very first trade.
    reference: Option<Reference>,
    /// Checked against the other symbols when its window would have closed.
    checked: bool,
}

impl Ahead {
    /// When the caller's clock has covered its jump from its reference.
    fn clock_due(&self, config: &AggregatorConfig) -> Option<i64> {
        self.reference?
            .plausible_at(&self.trade, config.outlier_jump_ms)
    }

    /// When its window would close were it taken, `last_input_at` being its
    /// symbol's: then the other symbols' time is asked, so that holding it
    /// delays no row they vouch for. Once only.
    fn window_due(&self, config: &AggregatorConfig, last_input_at: Option<i64>) -> Option<i64> {
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
    fn due(&self, config: &AggregatorConfig, last_input_at: Option<i64>) -> Option<i64> {
        let window = self.window_due(config, last_input_at);
        match (self.clock_due(config), window) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Trades held ahead at once per symbol; past it, one is taken as it is.
const MAX_HELD_AHEAD: usize = 64;

/// `next`, a later trade of the symbol, decides the trades held ahead with
/// ids below it, in id order: time never falls as ids rise, so one much
/// earlier refutes them ([`Event::TimeOutlier`]), and one near or after
/// them confirms them. (Two wrong frames in a row thus confirm each other.)
fn resolve_ahead(
    config: &AggregatorConfig,
    state: &mut SymbolState,
    next: Trade,
    behind_ms: i64,
    events: &mut VecDeque<Event>,
    stats: &mut AggregatorStats,
    late: &mut Vec<Trade>,
) {
    while let Some(held) = state.ahead.first_entry() {
        if *held.key() >= next.id {
            break;
        }
        let ahead = held.remove().trade;
        let floor = ahead.trade_time_ms.saturating_sub(config.outlier_jump_ms);
        if next.trade_time_ms >= floor {
            take(config, state, ahead, behind_ms, events, stats, late);
        } else {
            stats.time_outliers += 1;
            events.push_back(Event::TimeOutlier(TimeOutlier {
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
fn confirm_held(
    config: &AggregatorConfig,
    state: &mut SymbolState,
    vouched: impl Fn(&Ahead) -> bool,
    behind_ms: i64,
    events: &mut VecDeque<Event>,
    stats: &mut AggregatorStats,
    late: &mut Vec<Trade>,
) {
    let last_vouched = state
        .ahead
        .values()
        .filter(|a| vouched(a))
        .map(|a| a.trade)
        .last();
    let before =
        |t: &Trade| last_vouched.is_some_and(|v| t.id < v.id && t.trade_time_ms <= v.trade_time_ms);
    for (id, ahead) in std::mem::take(&mut state.ahead) {
        if before(&ahead.trade) || vouched(&ahead) {
            take(config, state, ahead.trade, behind_ms, events, stats, late);
        } else {
            state.ahead.insert(id, ahead);
        }
    }
}

/// Accepts a trade held ahead, now decided, unless its window closed
/// meanwhile (the trades after it were windowed as usual): then it is late
/// like any other, put in `late` for [`Aggregator::settle_late`]. Taken
/// before `behind_ms` (the front less the lateness) it marks its symbol
/// behind the front, as a trade taken at once would: at the start of a
/// file every first trade is held, so the front came after it, and a
/// symbol lagging from the first line shows only so.
fn take(
    config: &AggregatorConfig,
    state: &mut SymbolState,
    trade: Trade,
    behind_ms: i64,
    events: &mut VecDeque<Event>,
    stats: &mut AggregatorStats,
    late: &mut Vec<Trade>,
) {
    if trade.trade_time_ms < behind_ms {
        state.behind_front = true;
    }
    let start = window_start(trade.trade_time_ms, config.window_ms);
    if window_end(start, config.window_ms) <= state.watermark {
        late.push(trade);
    } else {
        accept(config, state, trade, events, stats);
    }
}

/// Start of the window holding `time_ms`; negative times round down too.
fn window_start(time_ms: i64, window_ms: i64) -> i64 {
    time_ms.div_euclid(window_ms).saturating_mul(window_ms)
}

/// End (exclusive) of the window starting at `start`; saturates, so a
/// window at the end of `i64` time never wraps.
fn window_end(start: i64, window_ms: i64) -> i64 {
    start.saturating_add(window_ms)
}

/// Moves `state`'s watermark up to `watermark` and emits, in start order,
/// every window whose end it reaches. A free function so the hot path can
/// call it while holding `state`.
fn close_windows(
    config: &AggregatorConfig,
    symbol: Symbol,
    state: &mut SymbolState,
    watermark: i64,
    events: &mut VecDeque<Event>,
    stats: &mut AggregatorStats,
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
            Event::Rejected(_) => stats.rejected_windows += 1,
            _ => stats.windows += 1,
        }
        events.push_back(event);
        if keep {
            state.emitted.insert(start, window, 1);
        }
    }
    if keep {
        let horizon = watermark.saturating_sub(config.late_retention_ms);
        // Starts ascend, so what is past the horizon is a prefix: no full
        // scan on every trade that moves the clock.
        state
            .emitted
            .expire(|start| window_end(start, window_ms) <= horizon);
    }
}

/// Adds a trade that is not late to its open window and moves the symbol's
/// clock. A free function so the hot path can call it while holding `state`.
fn accept(
    config: &AggregatorConfig,
    state: &mut SymbolState,
    trade: Trade,
    events: &mut VecDeque<Event>,
    stats: &mut AggregatorStats,
) {
    let window_ms = config.window_ms;
    let start = window_start(trade.trade_time_ms, window_ms);
    match state.open.get_mut(&start) {
        Some(window) => window.add(&trade),
        None => {
            state.open.insert(start, WindowStats::new(&trade));
        }
    }
    stats.trades += 1;
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
        close_windows(config, trade.symbol, state, watermark, events, stats);
    }
}

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
    /// Trades held ahead and decided after their window closed.
    decided_late: Vec<Trade>,
    events: VecDeque<Event>,
    stats: AggregatorStats,
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
            decided_late: Vec::new(),
            events: VecDeque::new(),
            stats: AggregatorStats::default(),
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
        if !self.decided_late.is_empty() {
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
                    self.stats.duplicates += 1;
                    return TradeOutcome::Duplicate;
                }
                SequenceOutcome::Gap(missing) => {
                    self.stats.gaps += 1;
                    state.gap_at = now_ms.or(state.gap_at);
                    self.stats.missing_ids += missing.len();
                    // Only a new gap can push out an old one.
                    let forgotten: u64 = state.sequence.forgotten();
                    self.stats.forgotten_ids += forgotten - state.forgotten_ids;
                    state.forgotten_ids = forgotten;
                    self.events.push_back(Event::Gap {
                        symbol: trade.symbol,
                        missing,
                    });
                }
                _ => {}
            }
        }

        // Decided first, as it may move the clock.
        resolve_ahead(
            config,
            state,
            trade,
            behind_ms,
            &mut self.events,
            &mut self.stats,
            &mut self.decided_late,
        );
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
            let ahead = Ahead {
                trade,
                reference,
                checked: false,
            };
            state.ahead.insert(trade.id, ahead);
            self.holding.insert(trade.symbol);
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
        accept(config, state, trade, &mut self.events, &mut self.stats);
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
            confirm_held(
                &self.config,
                state,
                vouched,
                behind_ms,
                &mut self.events,
                &mut self.stats,
                &mut self.decided_late,
            );
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
        let config = &self.config;
        let corrected = config.late_policy == LatePolicy::Reemit
            && window_end(start, window_ms) > watermark_ms.saturating_sub(config.late_retention_ms);
        self.stats.late_trades += 1;
        let late_at = self.events.len();
        self.events.push_back(Event::Late(LateTrade {
            trade,
            window_start_ms: start,
            watermark_ms,
            corrected,
        }));
        // A window whose sums overflow has no row, so neither has the trade.
        if !(corrected && self.reemit(trade, start, live)) {
            self.stats.late_uncorrected += 1;
            if let Some(Event::Late(late)) = self.events.get_mut(late_at) {
                late.corrected = false;
            }
        }
        TradeOutcome::Late
    }

    /// Hands on the trades held ahead that were decided after their window
    /// closed, as late.
    #[cold]
    fn settle_late(&mut self) {
        for trade in std::mem::take(&mut self.decided_late) {
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
        if window_end(start, window_ms) > state.watermark {
            self.handle(trade, None);
            return;
        }
        // It decided a trade held ahead before the restart too.
        resolve_ahead(
            &self.config,
            state,
            trade,
            behind_ms,
            &mut self.events,
            &mut self.stats,
            &mut self.decided_late,
        );
        let horizon = state
            .watermark
            .saturating_sub(self.config.late_retention_ms);
        if self.config.late_policy == LatePolicy::Reemit && window_end(start, window_ms) > horizon {
            match state.emitted.get_mut(start) {
                Some((stats, _)) => stats.add(&trade),
                None => state.emitted.insert(start, WindowStats::new(&trade), 1),
            }
        }
        if !self.decided_late.is_empty() {
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
        self.events.pop_front()
    }

    /// Running totals.
    pub fn stats(&self) -> AggregatorStats {
        self.stats
    }

    /// Late trades seen for one symbol.
    pub fn late_trades(&self, symbol: Symbol) -> u64 {
        self.symbols.get(&symbol).map_or(0, |s| s.late_trades)
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
        open + self.stats.forgotten_ids
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
            close_windows(
                &self.config,
                symbol,
                state,
                watermark,
                &mut self.events,
                &mut self.stats,
            );
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
                self.events.iter().rposition(|e| {
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
            self.events[at] = event;
            return true;
        }
        let stored = !matches!(event, Event::Rejected(_));
        if !stored {
            self.stats.rejected_windows += 1;
        } else if version == 1 {
            self.stats.windows += 1;
        } else {
            self.stats.reemitted += 1;
        }
        self.events.push_back(event);
        stored
    }
}
