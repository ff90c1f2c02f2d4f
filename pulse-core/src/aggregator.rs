//! The sans-IO windowing engine: per-symbol event-time tumbling windows with a
//! watermark, in the shape of quinn-proto (`handle_*`, `advance`, `poll`).

use std::collections::{BTreeMap, VecDeque};

use crate::sequence::{DEFAULT_MAX_OPEN_GAPS, IdRange, Sequence, SequenceOutcome};
use crate::{Symbol, Trade, Window, WindowStats};

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

/// Settings for an [`Aggregator`]. Plain data; checked by [`AggregatorConfig::validate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregatorConfig {
    /// Window length in ms. Default 1000.
    pub window_ms: i64,
    /// How far behind the newest trade time the watermark trails. Default 2000.
    pub allowed_lateness_ms: i64,
    /// After this long (caller's clock) without a trade, [`Aggregator::advance`]
    /// moves a symbol's watermark forward. Default 5000.
    pub idle_timeout_ms: i64,
    /// Late-trade handling. Default [`LatePolicy::Count`].
    pub late_policy: LatePolicy,
    /// With [`LatePolicy::Reemit`], how long (behind the watermark) emitted
    /// windows are kept for correction. Default 60000.
    pub late_retention_ms: i64,
    /// Drop duplicate ids and report gaps. Default true.
    pub track_sequence: bool,
    /// Missing id ranges kept per symbol. Default 1024.
    pub max_open_gaps: usize,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        AggregatorConfig {
            window_ms: 1000,
            allowed_lateness_ms: 2000,
            idle_timeout_ms: 5000,
            late_policy: LatePolicy::Count,
            late_retention_ms: 60_000,
            track_sequence: true,
            max_open_gaps: DEFAULT_MAX_OPEN_GAPS,
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
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("late_retention_ms", self.late_retention_ms),
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
}

/// What [`Aggregator::handle_trade`] did with a trade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TradeOutcome {
    /// Added to an open window.
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
    /// Gaps reported.
    pub gaps: u64,
    /// Ids reported missing, summed over gaps.
    pub missing_ids: u64,
    /// Windows emitted for the first time.
    pub windows: u64,
    /// Corrected windows re-emitted.
    pub reemitted: u64,
}

#[derive(Debug)]
struct SymbolState {
    max_time: i64,
    watermark: i64,
    open: BTreeMap<i64, WindowStats>,
    /// Emitted windows kept for [`LatePolicy::Reemit`], with their version.
    emitted: BTreeMap<i64, (WindowStats, u64)>,
    sequence: Sequence,
    late_trades: u64,
}

impl SymbolState {
    fn new(max_open_gaps: usize) -> Self {
        SymbolState {
            max_time: i64::MIN,
            watermark: i64::MIN,
            open: BTreeMap::new(),
            emitted: BTreeMap::new(),
            sequence: Sequence::new(max_open_gaps),
            late_trades: 0,
        }
    }
}

/// Start of the window holding `time_ms`; negative times round down too.
fn window_start(time_ms: i64, window_ms: i64) -> i64 {
    time_ms.div_euclid(window_ms) * window_ms
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
        if start.saturating_add(window_ms) > watermark {
            break;
        }
        let window = entry.remove();
        events.push_back(Event::Window(window.finish(
            symbol,
            start,
            start + window_ms,
            1,
        )));
        stats.windows += 1;
        if keep {
            state.emitted.insert(start, (window, 1));
        }
    }
    if keep {
        let horizon = watermark.saturating_sub(config.late_retention_ms);
        state
            .emitted
            .retain(|start, _| start.saturating_add(window_ms) > horizon);
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
/// // Watermark = 4200 − 2000 = 2200 ≥ 2000, so [1000, 2000) is closed.
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
        self.symbols.get(&symbol).map(|s| SymbolCheckpoint {
            watermark_ms: s.watermark,
            max_time_ms: s.max_time,
        })
    }

    /// Restores a symbol's clock from a [`checkpoint`](Self::checkpoint), before
    /// re-feeding the trades of its open windows. Trades for windows that end
    /// at or before the restored watermark are then reported late, not
    /// emitted twice.
    pub fn restore(&mut self, symbol: Symbol, checkpoint: SymbolCheckpoint) {
        let state = self.state(symbol);
        state.watermark = state.watermark.max(checkpoint.watermark_ms);
        state.max_time = state.max_time.max(checkpoint.max_time_ms);
    }

    /// Feeds one trade. Call for every trade, in any order; then drain
    /// [`poll`](Self::poll), since a trade can close earlier windows.
    pub fn handle_trade(&mut self, trade: Trade) -> TradeOutcome {
        let config = &self.config;
        let window_ms = config.window_ms;
        // One map lookup per trade: this is the hot path.
        let state = self
            .symbols
            .entry(trade.symbol)
            .or_insert_with(|| SymbolState::new(config.max_open_gaps));

        if config.track_sequence {
            match state.sequence.observe(trade.id) {
                SequenceOutcome::Duplicate => {
                    self.stats.duplicates += 1;
                    return TradeOutcome::Duplicate;
                }
                SequenceOutcome::Gap(missing) => {
                    self.stats.gaps += 1;
                    self.stats.missing_ids += missing.len();
                    self.events.push_back(Event::Gap {
                        symbol: trade.symbol,
                        missing,
                    });
                }
                _ => {}
            }
        }

        let start = window_start(trade.trade_time_ms, window_ms);
        if start + window_ms <= state.watermark {
            state.late_trades += 1;
            let watermark_ms = state.watermark;
            self.stats.late_trades += 1;
            self.events.push_back(Event::Late(LateTrade {
                trade,
                window_start_ms: start,
                watermark_ms,
            }));
            if config.late_policy == LatePolicy::Reemit {
                self.reemit(trade, start);
            }
            return TradeOutcome::Late;
        }

        match state.open.get_mut(&start) {
            Some(stats) => stats.add(&trade),
            None => {
                state.open.insert(start, WindowStats::new(&trade));
            }
        }
        self.stats.trades += 1;
        if trade.trade_time_ms > state.max_time {
            state.max_time = trade.trade_time_ms;
            let watermark = trade
                .trade_time_ms
                .saturating_sub(config.allowed_lateness_ms);
            close_windows(
                config,
                trade.symbol,
                state,
                watermark,
                &mut self.events,
                &mut self.stats,
            );
        }
        TradeOutcome::Accepted
    }

    /// Moves idle symbols' watermarks forward. `now_ms` is on the same clock
    /// as trade times (wall time for live data). Call when
    /// [`poll_timeout`](Self::poll_timeout) is reached, then drain `poll`.
    pub fn advance(&mut self, now_ms: i64) {
        let idle = self.config.idle_timeout_ms;
        let lateness = self.config.allowed_lateness_ms;
        let due: Vec<Symbol> = self
            .symbols
            .iter()
            .filter(|(_, s)| !s.open.is_empty() && now_ms.saturating_sub(s.max_time) >= idle)
            .map(|(sym, _)| *sym)
            .collect();
        for symbol in due {
            self.raise_watermark(symbol, now_ms.saturating_sub(lateness));
        }
    }

    /// When to call [`advance`](Self::advance) next (same clock as trade
    /// times), or `None` when no window is open.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<i64> {
        self.symbols
            .values()
            .filter(|s| !s.open.is_empty())
            .map(|s| s.max_time.saturating_add(self.config.idle_timeout_ms))
            .min()
    }

    /// Closes every open window, for end of input. Drain `poll` afterwards.
    pub fn flush(&mut self) {
        let symbols: Vec<Symbol> = self.symbols.keys().copied().collect();
        for symbol in symbols {
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

    /// Missing id ranges for a symbol, oldest first.
    pub fn missing(&self, symbol: Symbol) -> Vec<IdRange> {
        self.symbols
            .get(&symbol)
            .map(|s| s.sequence.missing().collect())
            .unwrap_or_default()
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

    fn reemit(&mut self, trade: Trade, start: i64) {
        let window_ms = self.config.window_ms;
        let retention = self.config.late_retention_ms;
        let Some(state) = self.symbols.get_mut(&trade.symbol) else {
            return;
        };
        if start + window_ms <= state.watermark.saturating_sub(retention) {
            return; // Too old to correct; counted as late only.
        }
        let (stats, version) = match state.emitted.get_mut(&start) {
            Some((stats, version)) => {
                stats.add(&trade);
                *version += 1;
                (stats.clone(), *version)
            }
            None => {
                // The window was empty when it closed; this is its first row.
                let stats = WindowStats::new(&trade);
                state.emitted.insert(start, (stats.clone(), 1));
                (stats, 1)
            }
        };
        let window = stats.finish(trade.symbol, start, start + window_ms, version);
        self.events.push_back(Event::Window(window));
        if version == 1 {
            self.stats.windows += 1;
        } else {
            self.stats.reemitted += 1;
        }
    }
}
