//! What [`Lanes`](super::Lanes) asks of REST and what REST brought back.

#[cfg(doc)]
use super::Lanes;
use crate::{Symbol, Trade};

/// Trades of one symbol to fetch over REST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackfillRequest {
    /// The symbol.
    pub symbol: Symbol,
    /// First id wanted.
    pub from_id: u64,
    /// Stop once this id is reached; `None` pages until a short page, i.e.
    /// until caught up with what REST has.
    pub until: Option<u64>,
    /// Earlier rounds for the same hole that brought nothing; each should
    /// wait a little longer first.
    pub round: u32,
    /// Set when the lane knows no id yet (see [`Lanes::reconnected`]): the
    /// first page asks for trades from this trade time on (Binance's clock,
    /// ms) instead of from `from_id`.
    pub from_time_ms: Option<i64>,
}

/// What a backfill brought back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackfillOutcome {
    /// Trades fetched, oldest first.
    pub trades: Vec<Trade>,
    /// The highest id REST listed. Ids below it that it did not list do not
    /// exist (or are older than REST's one-year reach).
    pub highest_listed: Option<u64>,
    /// Ids REST listed in entries that could not be read. Asking again
    /// would bring the same bytes, so they are given up (and counted) at once.
    pub unreadable: Vec<u64>,
    /// Why it stopped early, if it did.
    pub failure: Option<BackfillFailure>,
}

/// Why a backfill stopped early.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackfillFailure {
    /// REST may answer later (5xx, timeouts, network, rate limits within
    /// bounds): the holes stay open and count a round, like a REST that
    /// has not caught up yet.
    Transient(String),
    /// Asking again will not help (a 4xx, a long ban): the holes that
    /// wait on this backfill are given up.
    Final(String),
}

impl BackfillFailure {
    /// What went wrong, for logs.
    pub fn reason(&self) -> &str {
        match self {
            BackfillFailure::Transient(r) | BackfillFailure::Final(r) => r,
        }
    }
}
