//! Per-symbol ordering of a live Binance stream: hands trades out in id
//! order, each once, holding trades back behind a gap until a REST backfill
//! fills it or gives up on it.
//!
//! Sans-IO: live trades, evictions, reconnects and backfill results go in;
//! ready trades, backfill requests and [`LaneEvent`]s are polled out. The
//! caller does the requests (pulse-io pages `/fapi/v1/aggTrades`) and turns
//! the events into metrics and logs.

mod backfill;
mod events;
mod lane;

use std::collections::{BTreeMap, VecDeque};

pub use backfill::{BackfillFailure, BackfillOutcome, BackfillRequest};
pub use events::{LaneEvent, LaneStats};
use lane::Lane;

use crate::sequence::{DEFAULT_MAX_OPEN_GAPS, IdRange, Sequence, SequenceOutcome};
use crate::{Symbol, Trade};

/// The last trade delivered before a restart, where a lane resumes: see
/// [`Lanes::resume_after`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResumePoint {
    /// Its id; the lane continues after it.
    pub id: u64,
    /// Its trade time (Binance's clock, ms), to tell an old copy of it from
    /// a stream whose ids are simply lower.
    pub trade_time_ms: i64,
}

/// Per-symbol lanes of a live stream; see the module docs.
#[derive(Debug)]
pub struct Lanes {
    lanes: BTreeMap<Symbol, Lane>,
    ready: Vec<Trade>,
    /// Backfill rounds that bring nothing before a hole is left unfilled.
    max_rounds: u32,
    events: VecDeque<LaneEvent>,
    stats: LaneStats,
}

impl Lanes {
    /// Lanes that give a hole up after `max_rounds` backfills in a row
    /// brought nothing.
    pub fn new(max_rounds: u32) -> Self {
        Lanes {
            lanes: BTreeMap::new(),
            ready: Vec::new(),
            max_rounds: max_rounds.max(1),
            events: VecDeque::new(),
            stats: LaneStats::default(),
        }
    }

    /// The next event, oldest first. Drain after every call that feeds the
    /// lanes.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<LaneEvent> {
        self.events.pop_front()
    }

    /// Running totals.
    pub fn stats(&self) -> LaneStats {
        self.stats
    }

    fn lane(&mut self, symbol: Symbol) -> &mut Lane {
        self.lanes.entry(symbol).or_insert_with(Lane::new)
    }

    /// Trades of `symbol` up to `last_id` were delivered before a restart
    /// (e.g. they are on the producer's topic): continue right after it.
    /// What was missed meanwhile is backfilled, at most `max_backfill`
    /// trades before the first live one; older ones are counted as
    /// unfilled. Call before any trade of `symbol`, then
    /// [`Lanes::catch_up_quiet`] a little later, as after a reconnect.
    ///
    /// Live trades at or below the point are old copies and dropped as
    /// duplicates, unless one is later by trade time than the point: then
    /// the point is not in this stream, and the lane starts over from the
    /// live stream ([`LaneEvent::ResumeAhead`]).
    pub fn resume_after(&mut self, symbol: Symbol, point: ResumePoint, max_backfill: u64) {
        let lane = self.lane(symbol);
        lane.next = Some(point.id + 1);
        lane.seq.resume_after(point.id);
        lane.quiet_since_reconnect = true;
        lane.outage_unchecked = true;
        lane.resume_limit = Some(max_backfill);
        lane.resumed = Some(point);
    }

    /// Starts `trade`'s lane over when it shows the resume point is not in
    /// the live stream. Ids within one stream rise with trade time, so a
    /// lower id at a later time cannot be an old copy.
    fn check_resume_point(&mut self, trade: &Trade) {
        let lane = self.lane(trade.symbol);
        let Some(resumed) = lane.resumed else {
            return;
        };
        if trade.id > resumed.id {
            lane.resumed = None;
            return;
        }
        if trade.trade_time_ms <= resumed.trade_time_ms {
            return;
        }
        // Nothing above the point was handed out: REST, which shares the
        // live stream's ids, has nothing there. A backfill in flight comes
        // back superseded or empty.
        let in_flight = lane.in_flight;
        *lane = Lane::new();
        lane.in_flight = in_flight;
        self.events.push_back(LaneEvent::ResumeAhead {
            symbol: trade.symbol,
            resumed,
            live_id: trade.id,
            live_time_ms: trade.trade_time_ms,
        });
    }

    /// A trade from a socket.
    pub fn live(&mut self, trade: Trade) {
        self.check_resume_point(&trade);
        let lane = self.lane(trade.symbol);
        // An id already handed out says nothing about what is missing.
        if lane.next.is_none_or(|next| trade.id >= next) {
            // Any gap since the reconnect now shows in the sequence.
            lane.quiet_since_reconnect = false;
            lane.outage_unchecked = false;
            if let Some(limit) = lane.resume_limit.take() {
                self.bound_resume_gap(trade.symbol, trade.id, limit);
            }
        }
        self.accept(trade);
    }

    /// Gives up on the part of the gap before `first_live` that lies more
    /// than `limit` trades back.
    fn bound_resume_gap(&mut self, symbol: Symbol, first_live: u64, limit: u64) {
        let Some(next) = self.lane(symbol).next else {
            return;
        };
        if first_live.saturating_sub(next) > limit {
            let hole = IdRange {
                first: next,
                last: first_live - limit - 1,
            };
            self.abandon(symbol, hole, "beyond the resume backfill bound");
        }
    }

    /// Trades of `symbol` in `range` were evicted from the queue unseen.
    pub fn evicted(&mut self, symbol: Symbol, range: IdRange) {
        let lane = self.lane(symbol);
        // Evicted trades came live from the socket: they bound a resume too.
        if lane.next.is_some_and(|next| range.first >= next)
            && let Some(limit) = lane.resume_limit.take()
        {
            self.bound_resume_gap(symbol, range.first, limit);
        }
        let lane = self.lane(symbol);
        if lane.next.is_none() {
            // Nothing handed out yet: the sequence starts at the oldest lost id.
            lane.next = Some(range.first);
            if let Some(before) = range.first.checked_sub(1) {
                lane.seq.resume_after(before);
            }
        }
        lane.want_until = lane.want_until.max(Some(range.last));
    }

    /// The connection carrying `symbols` was replaced after a failure. A
    /// busy symbol's next trade shows any gap; call
    /// [`Lanes::catch_up_quiet`] a little later for the others.
    ///
    /// A symbol with no trade yet has no id to show a gap from. Given
    /// `missed_since_ms`, a trade time (Binance's clock) up to which the old
    /// connection delivered everything, its trades from then on are fetched
    /// by time, and its live trades held until that answer; without it they
    /// cannot be looked for.
    pub fn reconnected(&mut self, symbols: &[Symbol], missed_since_ms: Option<i64>) {
        for &symbol in symbols {
            match self.lanes.get_mut(&symbol) {
                Some(lane) if lane.next.is_some() => {
                    lane.quiet_since_reconnect = true;
                    lane.outage_unchecked = true;
                }
                _ => {
                    if let Some(since) = missed_since_ms {
                        let lane = self.lane(symbol);
                        lane.anchor = Some(lane.anchor.map_or(since, |a| a.min(since)));
                        lane.quiet_since_reconnect = true;
                    }
                }
            }
        }
    }

    /// `symbol` is no longer followed (it stopped trading): its lane goes,
    /// with any trades held behind a hole, which are returned as a count.
    /// Trades of it fed in later start a fresh lane, as for a new symbol,
    /// so a caller that dropped the stream should drop its stragglers too.
    pub fn forget(&mut self, symbol: Symbol) -> usize {
        self.lanes.remove(&symbol).map_or(0, |lane| lane.held.len())
    }

    /// Symbols still quiet since their reconnect are backfilled until caught
    /// up: trades they missed would otherwise go unnoticed. Waiting first
    /// spares REST a request per busy symbol.
    pub fn catch_up_quiet(&mut self, symbols: &[Symbol]) {
        for symbol in symbols {
            if let Some(lane) = self.lanes.get_mut(symbol)
                && std::mem::take(&mut lane.quiet_since_reconnect)
            {
                lane.want_catch_up = true;
            }
        }
    }

    /// The next backfill to start, if any; at most one per symbol at a time.
    pub fn poll_backfill(&mut self) -> Option<BackfillRequest> {
        // Trades waiting behind a hole first: blind catch-ups after a
        // reconnect (hundreds, with every perpetual followed) can wait.
        for waiting in [true, false] {
            let found = self.lanes.iter_mut().find_map(|(&symbol, lane)| {
                if lane.in_flight || lane.held.is_empty() == waiting {
                    return None;
                }
                lane.request(symbol)
            });
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// A backfill finished.
    pub fn backfilled(&mut self, request: BackfillRequest, mut outcome: BackfillOutcome) {
        let symbol = request.symbol;
        let lane = self.lane(symbol);
        lane.in_flight = false;
        // REST answered up to where it is (a catch-up, or a page that
        // stopped short of its bound): nothing missed is unseen now.
        let caught_up = request
            .until
            .is_none_or(|until| outcome.highest_listed.is_none_or(|highest| highest < until));
        if outcome.failure.is_none() && request.from_time_ms.is_none() && caught_up {
            lane.outage_unchecked = false;
        }
        let mut live = Vec::new();
        if request.from_time_ms.is_some() {
            let settled = self.anchored(symbol, &mut outcome);
            let Anchoring::Found { head } = settled else {
                if let Some(failure) = outcome.failure {
                    self.events.push_back(LaneEvent::BackfillFailed {
                        symbol,
                        from_id: 0,
                        failure,
                        retrying: matches!(settled, Anchoring::Again),
                    });
                }
                return;
            };
            if head.is_some() {
                live = std::mem::take(&mut self.lane(symbol).held)
                    .into_values()
                    .collect();
            }
        }
        // The lane moved past the request's start meanwhile (a hole was given
        // up): what it brings is old news, and no reason to count a round.
        let superseded = self
            .lane(symbol)
            .next
            .is_some_and(|next| next > request.from_id);
        let mut trades = outcome.trades;
        trades.sort_unstable_by_key(|t| t.id);
        let mut progress = superseded;
        let mut accepted = 0;
        // A page runs on past the hole asked for: the later holes it covers
        // are filled too, one reply for many. What the stream delivered, or
        // has yet to deliver, is left to it.
        let asked = |id: u64| request.until.is_none_or(|until| id <= until);
        for trade in trades.into_iter().filter(|t| t.symbol == symbol) {
            if !asked(trade.id) && !self.lane(symbol).seq.is_missing(trade.id) {
                continue;
            }
            if self.accept(trade) {
                accepted += 1;
            }
        }
        // Live trades held while the lane looked for its start: after the
        // older ones found, and not counted as backfilled.
        for trade in live {
            self.accept(trade);
        }
        progress |= accepted > 0;
        if accepted > 0 {
            self.stats.backfilled += accepted;
            self.events.push_back(LaneEvent::Backfilled {
                symbol,
                trades: accepted,
            });
        }
        // A resume's bound counts every trade backfilled before the first live one.
        let lane = self.lane(symbol);
        if let Some(limit) = &mut lane.resume_limit {
            *limit = limit.saturating_sub(accepted);
        }
        let mut unreadable = outcome.unreadable;
        unreadable.sort_unstable();
        unreadable.dedup();
        let final_failure = match &outcome.failure {
            Some(BackfillFailure::Final(reason)) => Some(reason.as_str()),
            _ => None,
        };
        // Unreadable ids, holes REST listed past, and holes it could not be
        // asked about are final.
        let hole = loop {
            let Some(next) = self.lane(symbol).next else {
                break None;
            };
            let pending = unreadable.partition_point(|&id| id < next);
            unreadable.drain(..pending);
            if unreadable.first() == Some(&next) {
                let run = unreadable
                    .iter()
                    .zip(next..)
                    .take_while(|(id, want)| *id == want)
                    .count() as u64;
                let lost = IdRange {
                    first: next,
                    last: next + run - 1,
                };
                self.abandon(symbol, lost, "unreadable in the REST reply");
                progress = true;
                continue;
            }
            let Some(hole) = self.lane(symbol).blocking_hole(unreadable.first().copied()) else {
                break None;
            };
            if let Some(reason) = final_failure {
                self.abandon(symbol, hole, reason);
            } else if outcome.highest_listed.is_some_and(|h| h >= hole.last) {
                self.abandon(symbol, hole, "REST has no such trades");
            } else {
                break Some(hole);
            }
        };
        let transient = outcome.failure.as_ref().filter(|_| final_failure.is_none());
        let max_rounds = self.max_rounds;
        let lane = self.lane(symbol);
        let retrying = match hole {
            // REST has not got that far yet (it can lag the stream), or it
            // failed for now: try again, a bounded number of times without
            // progress.
            Some(hole) => {
                if progress {
                    lane.rounds = 0;
                } else {
                    lane.rounds += 1;
                }
                if lane.rounds >= max_rounds {
                    let reason = transient.map_or("REST did not catch up", |f| f.reason());
                    let reason = reason.to_owned();
                    self.abandon(symbol, hole, &reason);
                    false
                } else {
                    true
                }
            }
            // A blind catch-up that failed for now: nothing is known to be
            // missing yet, so ask again, within the same bound.
            None if transient.is_some() && !progress => {
                lane.rounds += 1;
                let again = lane.rounds < max_rounds;
                lane.want_catch_up = again;
                if !again {
                    lane.rounds = 0;
                }
                again
            }
            None => {
                lane.rounds = 0;
                false
            }
        };
        if let Some(failure) = outcome.failure {
            self.events.push_back(LaneEvent::BackfillFailed {
                symbol,
                from_id: request.from_id,
                failure,
                retrying,
            });
        }
    }

    /// The symbols whose windows are not complete yet: a gap is open
    /// (trades held behind a hole, or evicted ids still to backfill), or
    /// they may have missed trades while disconnected that no live trade
    /// has shown yet (reconnected and quiet since, until the catch-up
    /// backfill has answered).
    pub fn holding(&self) -> impl Iterator<Item = Symbol> + '_ {
        self.lanes
            .iter()
            .filter(|(_, l)| {
                !l.held.is_empty()
                    || l.want_until.is_some()
                    || l.quiet_since_reconnect
                    || l.want_catch_up
                    || l.in_flight
            })
            .map(|(s, _)| *s)
    }

    /// Moves the trades ready to hand out into `out`.
    pub fn drain_ready(&mut self, out: &mut Vec<Trade>) {
        out.append(&mut self.ready);
    }

    /// Trades not handed out yet, all symbols: held behind holes until
    /// backfill fills them or gives up on them, or ready for
    /// [`drain_ready`](Self::drain_ready).
    pub fn held(&self) -> usize {
        self.ready.len() + self.lanes.values().map(|l| l.held.len()).sum::<usize>()
    }

    /// Symbols whose outage (a reconnect, or a resume) is not checked yet,
    /// so trades of it may be missing unseen: no live trade has shown the
    /// gap and no catch-up has answered. A symbol with no trade before the
    /// reconnect counts while its lookup is due, under way, failed, or live
    /// trades wait for one (one whose lookup found nothing waits for the
    /// next trade and is not counted).
    pub fn unchecked_outages(&self) -> impl Iterator<Item = Symbol> + '_ {
        self.lanes
            .iter()
            .filter(|(_, l)| match l.anchor {
                Some(_) => {
                    l.in_flight
                        || l.want_catch_up
                        || l.quiet_since_reconnect
                        || l.lookup_failed
                        || !l.held.is_empty()
                }
                None => l.outage_unchecked,
            })
            .map(|(s, _)| *s)
    }

    /// Trade ids known to be missing and not backfilled yet, all symbols:
    /// below held trades, or evicted from the queue unseen.
    pub fn missing(&self) -> u64 {
        self.lanes.values().map(Lane::missing).sum()
    }

    /// Returns true when the trade was new.
    fn accept(&mut self, trade: Trade) -> bool {
        let symbol = trade.symbol;
        let lane = self.lane(symbol);
        if lane.anchor.is_some() {
            // Where the lane starts is not known yet: the trade waits, and
            // goes through the sequence once the start is found.
            if lane.held.insert(trade.id, trade).is_some() {
                return self.duplicate(symbol);
            }
            return true;
        }
        // Below `next` everything was handed out or given up on; handing it
        // out now would break id order.
        let behind = lane.next.is_some_and(|next| trade.id < next);
        let outcome = if behind {
            SequenceOutcome::Duplicate
        } else {
            lane.seq.observe(trade.id)
        };
        match outcome {
            SequenceOutcome::Duplicate => return self.duplicate(symbol),
            SequenceOutcome::Gap(missing) => {
                self.stats.gaps += 1;
                self.events.push_back(LaneEvent::Gap { symbol, missing });
            }
            SequenceOutcome::First | SequenceOutcome::Next | SequenceOutcome::Filled => {}
        }
        let lane = self.lanes.get_mut(&symbol).expect("lane exists");
        lane.next.get_or_insert(trade.id);
        lane.held.insert(trade.id, trade);
        lane.release(&mut self.ready);
        true
    }

    /// Counts a trade of `symbol` seen before; false, as `accept` returns.
    fn duplicate(&mut self, symbol: Symbol) -> bool {
        self.stats.duplicates += 1;
        self.events.push_back(LaneEvent::Duplicate(symbol));
        false
    }

    /// The answer to a backfill by time: where the anchored lane starts.
    ///
    /// Its first waiting live trade is at or after the time asked from, so
    /// an answer that lists nothing means REST has not caught up (or
    /// failed): asked again, a bounded number of rounds. Then, or on a
    /// final failure, the lane starts at that trade, and the outage is
    /// reported unchecked. Without a waiting trade (a blind catch-up) an
    /// empty answer leaves the lane anchored: its first live trade asks
    /// again. Otherwise the lane starts at the first trade found (or the
    /// waiting one); what lies between is a hole like any other.
    fn anchored(&mut self, symbol: Symbol, outcome: &mut BackfillOutcome) -> Anchoring {
        let max_rounds = self.max_rounds;
        let lane = self.lane(symbol);
        let Some(since) = lane.anchor else {
            // Started meanwhile (the lane was reset): nothing to anchor.
            return Anchoring::Found { head: None };
        };
        let head = lane.held.keys().next().copied();
        if outcome.highest_listed.is_none() {
            let final_failure = matches!(outcome.failure, Some(BackfillFailure::Final(_)));
            let Some(head) = head else {
                // Blind: an empty answer says nothing was missed (as far as
                // REST knows); a failure leaves the outage unchecked until
                // the next live trade asks again.
                let failed = outcome.failure.is_some();
                if failed && !final_failure && lane.rounds + 1 < max_rounds {
                    lane.rounds += 1;
                    lane.want_catch_up = true;
                    return Anchoring::Again;
                }
                lane.rounds = 0;
                lane.lookup_failed = failed;
                return Anchoring::Waiting;
            };
            if !final_failure && lane.rounds + 1 < max_rounds {
                lane.rounds += 1;
                return Anchoring::Again;
            }
            let reason = outcome.failure.as_ref().map_or(
                "REST listed no trade of the outage in time",
                BackfillFailure::reason,
            );
            self.stats.unchecked += 1;
            self.events.push_back(LaneEvent::Unchecked {
                symbol,
                since_ms: since,
                first_live: head,
                reason: reason.to_owned(),
            });
        }
        let lane = self.lane(symbol);
        lane.anchor = None;
        lane.rounds = 0;
        lane.lookup_failed = false;
        // Trades at or above the first live one waiting came live.
        outcome
            .trades
            .retain(|t| t.symbol == symbol && head.is_none_or(|h| t.id < h));
        let found = outcome.trades.iter().map(|t| t.id).min();
        // `next` is set only by trades evicted unseen meanwhile.
        let start = [found, head, lane.next].into_iter().flatten().min();
        lane.next = start;
        lane.seq = Sequence::new(DEFAULT_MAX_OPEN_GAPS);
        if let Some(before) = start.and_then(|s| s.checked_sub(1)) {
            lane.seq.resume_after(before);
        }
        Anchoring::Found { head }
    }

    /// Gives up on `hole`: counts it and hands out what waited behind it.
    fn abandon(&mut self, symbol: Symbol, hole: IdRange, reason: &str) {
        let lane = self.lane(symbol);
        lane.seq.abandon(hole);
        // Ids never seen (evicted ones) must count as old from now on.
        lane.seq.resume_after(hole.last);
        lane.next = Some(hole.last + 1);
        lane.rounds = 0;
        if lane.want_until.is_some_and(|w| w <= hole.last) {
            lane.want_until = None;
        }
        let mut ready = std::mem::take(&mut self.ready);
        self.lane(symbol).release(&mut ready);
        self.ready = ready;
        self.stats.unfilled += hole.len();
        self.events.push_back(LaneEvent::Unfilled {
            symbol,
            missing: hole,
            reason: reason.to_owned(),
        });
    }
}

/// What a backfill by time settled.
enum Anchoring {
    /// The lane has a start (or none is to be had): go on as for any
    /// backfill (the outcome now holds only the trades found below `head`,
    /// the first live trade waiting), then put the waiting ones through the
    /// sequence.
    Found { head: Option<u64> },
    /// REST has not caught up (or failed for now): ask again.
    Again,
    /// A blind catch-up found nothing: the next live trade asks again.
    Waiting,
}

#[cfg(test)]
mod tests;
