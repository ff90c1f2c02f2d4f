//! One symbol's state inside the aggregator, and its live clock: the newest
//! trade time carried forward by the caller's clock while the symbol is quiet.

use std::collections::BTreeMap;

#[cfg(doc)]
use super::LatePolicy;
use super::held::Ahead;
use super::{AggregatorConfig, SymbolCheckpoint, WatermarkPolicy};
use crate::WindowStats;
use crate::emitted::EmittedWindows;
use crate::sequence::Sequence;

#[derive(Debug)]
pub(super) struct SymbolState {
    pub(super) max_time: i64,
    pub(super) watermark: i64,
    /// Caller's clock at the last input, for closing the tail.
    pub(super) last_input_at: Option<i64>,
    /// Caller's clock when the newest id gap showed, live: its missing
    /// trades may still come, out of order, for `allowed_lateness_ms`.
    pub(super) gap_at: Option<i64>,
    /// End of the window of the first trade seen. Ids below the first may
    /// still come (a reorder at the very start shows no gap), so windows up
    /// to here close by the lateness only.
    pub(super) first_end: Option<i64>,
    pub(super) open: BTreeMap<i64, WindowStats>,
    /// Emitted windows kept for [`LatePolicy::Reemit`], with their version.
    pub(super) emitted: EmittedWindows,
    pub(super) sequence: Sequence,
    /// Trades far ahead of `max_time` by id, in no window until decided.
    pub(super) ahead: BTreeMap<u64, Ahead>,
    /// `sequence.forgotten()` already in the stats.
    pub(super) forgotten_ids: u64,
    pub(super) late_trades: u64,
    /// A trade of it came more than `allowed_lateness_ms` behind the
    /// newest of all symbols: the input is not in time order across
    /// symbols (a file sorted by symbol), so in a recording the others'
    /// time vouches for nothing of its own.
    pub(super) behind_front: bool,
}

impl SymbolState {
    pub(super) fn new(max_open_gaps: usize) -> Self {
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

    pub(super) fn checkpoint(&self) -> SymbolCheckpoint {
        SymbolCheckpoint {
            watermark_ms: self.watermark,
            max_time_ms: self.max_time,
        }
    }

    /// Windows ending at or before this can no longer be corrected under
    /// [`LatePolicy::Reemit`]: `late_retention_ms` behind the newest trade
    /// time, or behind the watermark less a window when that is later (a
    /// quiet symbol vouched for by the caller's clock or a producer's
    /// markers). Not the watermark alone: it trails the newest trade by the
    /// lateness under [`WatermarkPolicy::Lateness`] or while a gap is open,
    /// so `pulse consume` would correct trades `pulse run` cannot; and a
    /// marker closing the last window vouches up to a window past the
    /// newest trade.
    pub(super) fn correction_horizon(&self, config: &AggregatorConfig) -> i64 {
        let vouched = self.watermark.saturating_sub(config.window_ms);
        self.max_time
            .max(vouched)
            .saturating_sub(config.late_retention_ms)
    }

    /// Until when, on the caller's clock, trades of the symbol may still
    /// come out of id order: always under [`WatermarkPolicy::Lateness`],
    /// and for `allowed_lateness_ms` after a gap showed under `IdOrder`.
    pub(super) fn unordered_until(&self, config: &AggregatorConfig) -> Option<i64> {
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
    pub(super) fn live_lag(&self, config: &AggregatorConfig, now_ms: i64) -> i64 {
        let margin = config.idle_margin_ms;
        match self.unordered_until(config) {
            Some(until) if now_ms < until => margin.max(config.allowed_lateness_ms),
            _ => margin,
        }
    }

    /// The symbol's live clock at `now_ms` (its newest trade time plus the
    /// caller's time since its last input) less the lag: how far its
    /// windows may close. `None` before any live input.
    pub(super) fn live_watermark(&self, config: &AggregatorConfig, now_ms: i64) -> Option<i64> {
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
    pub(super) fn live_closes_at(&self, config: &AggregatorConfig, end: i64) -> Option<i64> {
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
