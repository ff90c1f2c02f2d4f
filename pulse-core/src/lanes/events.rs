//! What [`Lanes`](super::Lanes) reports: events worth a metric or a log
//! line, and running totals.

#[cfg(doc)]
use super::Lanes;
use super::{BackfillFailure, ResumePoint};
use crate::Symbol;
use crate::sequence::IdRange;

/// Something worth a metric or a log line, drained with [`Lanes::poll_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LaneEvent {
    /// A trade already handed out (or given up on) came again: dropped.
    Duplicate(Symbol),
    /// Ids were skipped; a backfill will ask for them.
    Gap {
        /// The symbol.
        symbol: Symbol,
        /// The missing ids.
        missing: IdRange,
    },
    /// A backfill brought this many new trades.
    Backfilled {
        /// The symbol.
        symbol: Symbol,
        /// New trades.
        trades: u64,
    },
    /// A backfill stopped early.
    BackfillFailed {
        /// The symbol.
        symbol: Symbol,
        /// Where it started.
        from_id: u64,
        /// Why.
        failure: BackfillFailure,
        /// The holes stay open and another backfill follows.
        retrying: bool,
    },
    /// A resumed lane's live stream is behind its resume point: a live
    /// trade at or below the resume id, but later by trade time, so the
    /// point came from elsewhere (another kind of id, a replayed capture,
    /// another exchange). The lane starts over from the live stream instead
    /// of dropping it as duplicates.
    ResumeAhead {
        /// The symbol.
        symbol: Symbol,
        /// Where it was to resume.
        resumed: ResumePoint,
        /// The live trade that showed it: its id and trade time.
        live_id: u64,
        /// Its trade time, ms.
        live_time_ms: i64,
    },
    /// A symbol with no trade before a reconnect: REST could not say what
    /// it traded from `since_ms` until its first live trade, which goes on
    /// from there. Any trades between are lost, uncounted.
    Unchecked {
        /// The symbol.
        symbol: Symbol,
        /// The trade time the lookup started from.
        since_ms: i64,
        /// The first live trade after the reconnect.
        first_live: u64,
        /// Why REST could not tell.
        reason: String,
    },
    /// These trades are lost for good; what waited behind them goes on.
    Unfilled {
        /// The symbol.
        symbol: Symbol,
        /// The lost ids.
        missing: IdRange,
        /// Why they were given up.
        reason: String,
    },
}

/// Running totals over all symbols.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LaneStats {
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Gaps seen.
    pub gaps: u64,
    /// Trades a backfill brought.
    pub backfilled: u64,
    /// Trades given up on.
    pub unfilled: u64,
    /// Outages of symbols with no trade before them whose trades could not
    /// be looked up ([`LaneEvent::Unchecked`]).
    pub unchecked: u64,
}
