//! One symbol's lane: where its stream is, the trades held behind a hole,
//! and the backfill it wants next.

use std::collections::BTreeMap;

use super::{BackfillRequest, ResumePoint};
use crate::sequence::{DEFAULT_MAX_OPEN_GAPS, IdRange, Sequence};
use crate::{Symbol, Trade};

/// How far before a waiting live trade a lookup by time reaches at most.
const ANCHOR_REACH_MS: i64 = 50 * 60 * 1000;

#[derive(Debug)]
pub(super) struct Lane {
    pub(super) seq: Sequence,
    /// The next id to hand out; `None` until the first trade.
    pub(super) next: Option<u64>,
    /// Trades above a hole, waiting for it.
    pub(super) held: BTreeMap<u64, Trade>,
    /// Evicted ids up to here must be backfilled.
    pub(super) want_until: Option<u64>,
    /// Reconnected, and no live trade since: a quiet symbol may have missed
    /// trades that no later trade will reveal.
    pub(super) quiet_since_reconnect: bool,
    /// Reconnected or resumed, and neither a live trade nor an answered
    /// catch-up since: trades of the outage may be missing, unseen.
    pub(super) outage_unchecked: bool,
    /// Backfill from `next` until caught up.
    pub(super) want_catch_up: bool,
    /// Resumed after trades published before a restart, and no live trade
    /// since: backfill at most this many trades before the first live one.
    pub(super) resume_limit: Option<u64>,
    /// Resumed, and no live trade above the point yet: a live trade below
    /// it but later in time shows the point is not in this stream.
    pub(super) resumed: Option<ResumePoint>,
    pub(super) in_flight: bool,
    /// Rounds in a row that left the hole open and brought nothing.
    pub(super) rounds: u32,
    /// No trade seen before a reconnect, so no id to backfill from: trades
    /// from this trade time on may have been missed. Live trades are held
    /// until a backfill by time has found where the lane starts.
    pub(super) anchor: Option<i64>,
    /// The last lookup by time failed: the outage is unchecked until a
    /// live trade asks again.
    pub(super) lookup_failed: bool,
}

impl Lane {
    /// The backfill this lane wants now, if any; marks it in flight.
    pub(super) fn request(&mut self, symbol: Symbol) -> Option<BackfillRequest> {
        if let Some(since) = self.anchor {
            // Asked once a live trade waits, or blindly when the catch-up
            // after the reconnect is due.
            let head = self
                .held
                .first_key_value()
                .map(|(&id, t)| (id, t.trade_time_ms));
            if head.is_none() && !self.want_catch_up {
                return None;
            }
            self.want_catch_up = false;
            self.in_flight = true;
            // An outage is shorter than an hour: Binance may not look
            // further than that from `startTime` alone.
            let since = head.map_or(since, |(_, time)| since.max(time - ANCHOR_REACH_MS));
            return Some(BackfillRequest {
                symbol,
                from_id: 0,
                until: head.and_then(|(id, _)| id.checked_sub(1)),
                round: self.rounds,
                from_time_ms: Some(since),
            });
        }
        let next = self.next?;
        if self.want_until.is_some_and(|w| w < next) {
            self.want_until = None;
        }
        let until = self.missing_until();
        if !self.want_catch_up && until.is_none() {
            return None;
        }
        let until = if self.want_catch_up {
            // A blind catch-up after a resume stays within what is left
            // of its bound; once that is used up only holes are filled.
            match self.resume_limit {
                Some(0) => {
                    self.want_catch_up = false;
                    Some(until?)
                }
                Some(limit) => Some(next.saturating_add(limit - 1)),
                None => None,
            }
        } else {
            until
        };
        self.want_catch_up = false;
        self.in_flight = true;
        Some(BackfillRequest {
            symbol,
            from_id: next,
            until,
            round: self.rounds,
            from_time_ms: None,
        })
    }

    pub(super) fn new() -> Self {
        Lane {
            seq: Sequence::new(DEFAULT_MAX_OPEN_GAPS),
            next: None,
            held: BTreeMap::new(),
            want_until: None,
            quiet_since_reconnect: false,
            outage_unchecked: false,
            want_catch_up: false,
            resume_limit: None,
            resumed: None,
            in_flight: false,
            rounds: 0,
            anchor: None,
            lookup_failed: false,
        }
    }

    /// Hands out held trades while they continue the sequence.
    pub(super) fn release(&mut self, ready: &mut Vec<Trade>) {
        let Some(mut next) = self.next else { return };
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() != next {
                break;
            }
            ready.push(entry.remove());
            next += 1;
        }
        self.next = Some(next);
    }

    /// How many ids from `next` up to the highest held or evicted one are
    /// not held (a lane still looking for its start may hold trades below
    /// an evicted `next`).
    pub(super) fn missing(&self) -> u64 {
        let (Some(next), Some(top)) = (
            self.next,
            self.held.keys().next_back().copied().max(self.want_until),
        ) else {
            return 0;
        };
        let held = self.held.range(next..).count() as u64;
        (top + 1).saturating_sub(next).saturating_sub(held)
    }

    /// The highest id known to be missing.
    pub(super) fn missing_until(&self) -> Option<u64> {
        let next = self.next?;
        let below_head = self.held.keys().next().map(|&head| head - 1);
        let evicted = self.want_until.filter(|&w| w >= next);
        below_head.max(evicted).filter(|&last| last >= next)
    }

    /// The missing ids that hold delivery up: below the first held trade,
    /// or the evicted ones when nothing is held; in either case below
    /// `unreadable`, an id REST listed but could not be read.
    pub(super) fn blocking_hole(&self, unreadable: Option<u64>) -> Option<IdRange> {
        let first = self.next?;
        let held = match self.held.keys().next() {
            Some(&head) => head.checked_sub(1),
            None => self.want_until,
        };
        let before_unreadable = unreadable.and_then(|u| u.checked_sub(1));
        let last = match (held, before_unreadable) {
            (Some(h), Some(u)) => h.min(u),
            (h, u) => h.or(u)?,
        };
        (last >= first).then_some(IdRange { first, last })
    }
}
