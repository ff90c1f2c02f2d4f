//! The sans-IO step a [`Pipeline`](super::Pipeline) pumps between its source
//! and its sinks, and the stage for plain trades.

use std::collections::BTreeMap;

use pulse_core::{Aggregator, Event, Symbol, Trade, TradeOutcome};

/// What a [`Stage`] did with one input. The pipeline turns these into
/// metrics and the summary, so every stage is counted the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// A trade added to its window (or passed on, without an aggregator).
    Accepted(Symbol),
    /// A trade seen before: dropped.
    Duplicate(Symbol),
    /// A trade whose window had closed.
    Late(Symbol),
    /// A progress marker from upstream: no trade, but it may have closed
    /// windows.
    Marker,
    /// An input read again after a restart only to rebuild state; it was
    /// counted before.
    Replayed,
    /// An input that steers the stage and carries no data (the consumer's
    /// "partition starts here"); not counted.
    Control,
    /// Not a valid input: counted under `reason` and skipped.
    Rejected {
        /// A short label for `pulse_frames_rejected_total`.
        reason: &'static str,
        /// What was wrong, for the log.
        error: String,
    },
}

/// A state machine in the quinn-proto shape: inputs in, [`Event`]s out,
/// time passed in. pulse-core's [`Aggregator`] behind [`TradeStage`] is one;
/// `pulse consume` adds partition bookkeeping around it.
pub trait Stage: Send {
    /// What the source delivers.
    type Input: Send + Sync + 'static;
    /// What a [`CheckpointStore`](crate::CheckpointStore) saves once every
    /// window emitted so far is stored.
    type Checkpoint: Send + Sync + 'static;

    /// Feeds one input. `now_ms` is when it arrived on the pipeline's
    /// monotonic clock, for live sources; `None` for recordings, whose clock
    /// is the data. Drain [`poll`](Self::poll) afterwards.
    fn handle(&mut self, input: &Self::Input, now_ms: Option<i64>) -> Outcome;

    /// The next event, oldest first.
    #[must_use]
    fn poll(&mut self) -> Option<Event>;

    /// When to call [`advance`](Self::advance), on the pipeline's monotonic
    /// clock in ms; only asked of live sources.
    #[must_use]
    fn poll_timeout(&self) -> Option<i64> {
        None
    }

    /// Lets time pass: closes what waited for `now_ms`.
    fn advance(&mut self, now_ms: i64) {
        let _ = now_ms;
    }

    /// Input for `symbols` is held by the source at `now_ms` (see
    /// [`TradeSource::holding`](crate::TradeSource::holding)): their windows
    /// are not idle.
    fn input_held(&mut self, symbols: &[Symbol], now_ms: i64) {
        let _ = (symbols, now_ms);
    }

    /// Closes everything still open, at the end of the input.
    fn flush(&mut self);

    /// The state to save once every window emitted so far is stored, or
    /// `None` when nothing changed since the last one.
    fn checkpoint(&self) -> Option<Self::Checkpoint> {
        None
    }

    /// `checkpoint` was saved.
    fn committed(&mut self, checkpoint: &Self::Checkpoint) {
        let _ = checkpoint;
    }

    /// The trades among `inputs`, for [`TradeSink`](crate::TradeSink)s.
    fn trades(inputs: &[Self::Input]) -> &[Trade] {
        let _ = inputs;
        &[]
    }

    /// How far `symbol`'s watermark trails its newest trade, in ms.
    fn watermark_lag_ms(&self, symbol: Symbol) -> Option<i64> {
        let _ = symbol;
        None
    }

    /// The newest trade time of `symbol` handled so far, for the latency
    /// histograms; a stage that keeps the default `None` records none.
    fn newest_trade_ms(&self, symbol: Symbol) -> Option<i64> {
        let _ = symbol;
        None
    }

    /// Each symbol's watermark as far as the stage can vouch for it:
    /// every trade of it before this time was handled, and a later one
    /// would be late. Passed to the trade sinks as progress markers.
    /// `now_ms` is the pipeline's monotonic clock for live sources, `None`
    /// for recordings. With `end_of_input`, the recording is over: each
    /// symbol's last window counts as complete.
    fn watermarks(&self, now_ms: Option<i64>, end_of_input: bool) -> BTreeMap<Symbol, i64> {
        let _ = (now_ms, end_of_input);
        BTreeMap::new()
    }

    /// Ids its sequence gaps left missing that never came, for the exit
    /// summary.
    fn still_missing(&self) -> u64 {
        0
    }

    /// A few words on where the stage is, for progress logs.
    fn progress(&self) -> String {
        String::new()
    }

    /// Whether [`poll`](Self::poll) can give windows; the window series are
    /// exported only then.
    fn emits_windows(&self) -> bool {
        true
    }

    /// Every `reason` an [`Outcome::Rejected`] of this stage can carry, so
    /// `pulse_frames_rejected_total` shows each at zero from the start.
    fn rejection_reasons(&self) -> &'static [&'static str] {
        &[]
    }
}

/// Trades through an optional [`Aggregator`]: `pulse run` aggregates,
/// `pulse produce` only follows the watermarks, for its progress markers.
#[derive(Debug, Default)]
pub struct TradeStage {
    aggregator: Option<Aggregator>,
    /// Drop the aggregator's windows: only its watermarks are wanted.
    watermarks_only: bool,
}

impl TradeStage {
    /// Aggregates with `aggregator`.
    pub fn new(aggregator: Aggregator) -> Self {
        TradeStage {
            aggregator: Some(aggregator),
            watermarks_only: false,
        }
    }

    /// Follows each symbol's watermark with `aggregator`, emitting no windows.
    pub fn watermarks_only(aggregator: Aggregator) -> Self {
        TradeStage {
            aggregator: Some(aggregator),
            watermarks_only: true,
        }
    }
}

impl Stage for TradeStage {
    type Input = Trade;
    type Checkpoint = ();

    fn handle(&mut self, trade: &Trade, now_ms: Option<i64>) -> Outcome {
        let Some(agg) = self.aggregator.as_mut() else {
            return Outcome::Accepted(trade.symbol);
        };
        let outcome = match now_ms {
            Some(now) => agg.handle_trade_at(*trade, now),
            None => agg.handle_trade(*trade),
        };
        match outcome {
            TradeOutcome::Accepted => Outcome::Accepted(trade.symbol),
            TradeOutcome::Duplicate => Outcome::Duplicate(trade.symbol),
            TradeOutcome::Late => Outcome::Late(trade.symbol),
        }
    }

    fn poll(&mut self) -> Option<Event> {
        let agg = self.aggregator.as_mut()?;
        loop {
            match agg.poll()? {
                // Only the windows' ends matter here: no row is written,
                // and a late trade is handed on (published) all the same.
                Event::Window(_) | Event::Late(_) | Event::Rejected(_) if self.watermarks_only => {}
                event => return Some(event),
            }
        }
    }

    fn poll_timeout(&self) -> Option<i64> {
        self.aggregator.as_ref()?.poll_timeout()
    }

    fn advance(&mut self, now_ms: i64) {
        if let Some(agg) = self.aggregator.as_mut() {
            agg.advance(now_ms);
        }
    }

    fn input_held(&mut self, symbols: &[Symbol], now_ms: i64) {
        if let Some(agg) = self.aggregator.as_mut() {
            for symbol in symbols {
                agg.input_held(*symbol, now_ms);
            }
        }
    }

    fn flush(&mut self) {
        if let Some(agg) = self.aggregator.as_mut() {
            agg.flush();
        }
    }

    fn trades(inputs: &[Trade]) -> &[Trade] {
        inputs
    }

    fn watermark_lag_ms(&self, symbol: Symbol) -> Option<i64> {
        self.aggregator.as_ref()?.watermark_lag_ms(symbol)
    }

    fn still_missing(&self) -> u64 {
        self.aggregator
            .as_ref()
            .map_or(0, Aggregator::still_missing)
    }

    fn emits_windows(&self) -> bool {
        self.aggregator.is_some() && !self.watermarks_only
    }

    fn newest_trade_ms(&self, symbol: Symbol) -> Option<i64> {
        let agg = self.aggregator.as_ref()?;
        // A symbol's first trade may wait for the next to vouch for it; its
        // window's latency still counts from when it came.
        agg.newest_trade_ms(symbol)
            .or_else(|| agg.held_ahead(symbol).map(|t| t.trade_time_ms).max())
    }

    fn watermarks(&self, now_ms: Option<i64>, end_of_input: bool) -> BTreeMap<Symbol, i64> {
        let Some(agg) = self.aggregator.as_ref() else {
            return BTreeMap::new();
        };
        let window_ms = agg.config().window_ms;
        let mut watermarks: BTreeMap<Symbol, i64> = agg.watermarks_at(now_ms).collect();
        if end_of_input {
            // The end of the newest trade's window, not "for ever": a later
            // producer may still continue the symbol. A trade held ahead of
            // the clock counts: the end of input confirms it.
            for (symbol, c) in agg.checkpoints() {
                if let Some(w) = watermarks.get_mut(&symbol) {
                    let held = agg.held_ahead(symbol).map(|t| t.trade_time_ms);
                    let newest = held.fold(c.max_time_ms, i64::max);
                    let end = agg.window_start(newest).saturating_add(window_ms);
                    *w = (*w).max(end);
                }
            }
        }
        watermarks.retain(|_, w| *w > i64::MIN);
        watermarks
    }
}
