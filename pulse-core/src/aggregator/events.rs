//! What an [`Aggregator`](super::Aggregator) reports: its events, the
//! outcome of each trade, its running totals and the clock state saved
//! beside stored windows.

use std::collections::VecDeque;

#[cfg(doc)]
use super::{Aggregator, AggregatorConfig, LatePolicy};
use crate::sequence::IdRange;
use crate::{RejectedWindow, Symbol, Trade, Window};

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

/// What the aggregator hands out, kept together so the functions that
/// decide a trade fill it through one borrow.
#[derive(Debug, Default)]
pub(super) struct Outputs {
    pub(super) events: VecDeque<Event>,
    pub(super) stats: AggregatorStats,
    /// Trades held ahead and decided after their window closed.
    pub(super) decided_late: Vec<Trade>,
}
