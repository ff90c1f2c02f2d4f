//! Per-symbol ordering of a live Binance stream: hands trades out in id
//! order, each once, holding trades back behind a gap until a REST backfill
//! fills it or gives up on it.
//!
//! Sans-IO: live trades, evictions, reconnects and backfill results go in;
//! ready trades, backfill requests and [`LaneEvent`]s are polled out. The
//! caller does the requests (pulse-io pages `/fapi/v1/aggTrades`) and turns
//! the events into metrics and logs.

use std::collections::{BTreeMap, VecDeque};

use crate::sequence::{DEFAULT_MAX_OPEN_GAPS, IdRange, Sequence, SequenceOutcome};
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

#[derive(Debug)]
struct Lane {
    seq: Sequence,
    /// The next id to hand out; `None` until the first trade.
    next: Option<u64>,
    /// Trades above a hole, waiting for it.
    held: BTreeMap<u64, Trade>,
    /// Evicted ids up to here must be backfilled.
    want_until: Option<u64>,
    /// Reconnected, and no live trade since: a quiet symbol may have missed
    /// trades that no later trade will reveal.
    quiet_since_reconnect: bool,
    /// Reconnected or resumed, and neither a live trade nor an answered
    /// catch-up since: trades of the outage may be missing, unseen.
    outage_unchecked: bool,
    /// Backfill from `next` until caught up.
    want_catch_up: bool,
    /// Resumed after trades published before a restart, and no live trade
    /// since: backfill at most this many trades before the first live one.
    resume_limit: Option<u64>,
    /// Resumed, and no live trade above the point yet: a live trade below
    /// it but later in time shows the point is not in this stream.
    resumed: Option<ResumePoint>,
    in_flight: bool,
    /// Rounds in a row that left the hole open and brought nothing.
    rounds: u32,
    /// No trade seen before a reconnect, so no id to backfill from: trades
    /// from this trade time on may have been missed. Live trades are held
    /// until a backfill by time has found where the lane starts.
    anchor: Option<i64>,
    /// The last lookup by time failed: the outage is unchecked until a
    /// live trade asks again.
    lookup_failed: bool,
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

/// How far before a waiting live trade a lookup by time reaches at most.
const ANCHOR_REACH_MS: i64 = 50 * 60 * 1000;

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

impl Lane {
    /// The backfill this lane wants now, if any; marks it in flight.
    fn request(&mut self, symbol: Symbol) -> Option<BackfillRequest> {
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

    fn new() -> Self {
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
    fn release(&mut self, ready: &mut Vec<Trade>) {
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
    fn missing(&self) -> u64 {
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
    fn missing_until(&self) -> Option<u64> {
        let next = self.next?;
        let below_head = self.held.keys().next().map(|&head| head - 1);
        let evicted = self.want_until.filter(|&w| w >= next);
        below_head.max(evicted).filter(|&last| last >= next)
    }

    /// The missing ids that hold delivery up: below the first held trade,
    /// or the evicted ones when nothing is held; in either case below
    /// `unreadable`, an id REST listed but could not be read.
    fn blocking_hole(&self, unreadable: Option<u64>) -> Option<IdRange> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decimal, Side, TradeKind};

    fn btc() -> Symbol {
        Symbol::new("BTCUSDT").unwrap()
    }

    fn t(id: u64) -> Trade {
        Trade {
            symbol: btc(),
            id,
            kind: TradeKind::AggTrade,
            price: Decimal::from_raw(100 + id as i64),
            quantity: Decimal::from_raw(1),
            side: Side::Buy,
            trade_time_ms: id as i64,
            event_time_ms: id as i64,
            first_trade_id: id,
            last_trade_id: id,
        }
    }

    /// The resume point of `t(id)`.
    fn point(id: u64) -> ResumePoint {
        ResumePoint {
            id,
            trade_time_ms: id as i64,
        }
    }

    fn ids(lanes: &mut Lanes) -> Vec<u64> {
        let mut out = Vec::new();
        lanes.drain_ready(&mut out);
        out.iter().map(|t| t.id).collect()
    }

    fn outcome(trades: &[u64], highest: Option<u64>, failure: Option<&str>) -> BackfillOutcome {
        BackfillOutcome {
            trades: trades.iter().map(|&id| t(id)).collect(),
            highest_listed: highest,
            unreadable: Vec::new(),
            failure: failure.map(|f| BackfillFailure::Final(f.to_string())),
        }
    }

    #[test]
    fn contiguous_and_duplicate_trades() {
        let mut lanes = Lanes::new(3);
        for id in [5, 6, 6, 7, 5] {
            lanes.live(t(id));
        }
        assert_eq!(ids(&mut lanes), vec![5, 6, 7]);
        assert_eq!(lanes.poll_backfill(), None);
        assert_eq!(lanes.stats().duplicates, 2);
    }

    #[test]
    fn ids_below_the_handed_out_ones_are_dropped() {
        let mut lanes = Lanes::new(3);
        for id in [10, 11, 9, 8, 12] {
            lanes.live(t(id));
        }
        assert_eq!(ids(&mut lanes), vec![10, 11, 12]);
        assert_eq!(lanes.poll_backfill(), None);
        assert_eq!(lanes.stats().duplicates, 2);
        assert_eq!(lanes.stats().gaps, 0);
    }

    #[test]
    fn a_gap_holds_trades_until_backfill_fills_it() {
        let mut lanes = Lanes::new(3);
        for id in [1, 2, 6, 7] {
            lanes.live(t(id));
        }
        assert_eq!(ids(&mut lanes), vec![1, 2]);
        assert_eq!((lanes.held(), lanes.missing()), (2, 3));
        assert_eq!(lanes.holding().collect::<Vec<_>>(), [t(1).symbol]);
        let req = lanes.poll_backfill().unwrap();
        assert_eq!((req.from_id, req.until, req.round), (3, Some(5), 0));
        assert_eq!(
            lanes.poll_backfill(),
            None,
            "one backfill per symbol at a time"
        );
        lanes.live(t(8));
        lanes.backfilled(req, outcome(&[3, 4, 5, 6], Some(6), None));
        assert_eq!(lanes.missing(), 0);
        assert_eq!(ids(&mut lanes), vec![3, 4, 5, 6, 7, 8]);
        assert_eq!(lanes.held(), 0);
        assert_eq!(lanes.holding().count(), 0, "the gap is closed");
        assert_eq!(lanes.stats().gaps, 1);
        assert_eq!(lanes.stats().backfilled, 3);
        // 6 came live: past the hole asked for, the reply's copy is no news.
        assert_eq!(lanes.stats().duplicates, 0);
        assert_eq!(lanes.poll_backfill(), None);
    }

    #[test]
    fn one_reply_fills_every_hole_it_covers() {
        let mut lanes = Lanes::new(3);
        for id in [1, 3, 4, 6, 8, 9] {
            lanes.live(t(id));
        }
        assert_eq!(ids(&mut lanes), vec![1]);
        assert_eq!((lanes.held(), lanes.missing()), (5, 3));
        let req = lanes.poll_backfill().unwrap();
        assert_eq!((req.from_id, req.until), (2, Some(2)));
        // REST pages on from 2 to what it has, past the stream's newest.
        lanes.backfilled(req, outcome(&(2..=11).collect::<Vec<_>>(), Some(11), None));
        assert_eq!(ids(&mut lanes), (1..=9).collect::<Vec<_>>()[1..]);
        assert_eq!(lanes.missing(), 0);
        assert_eq!(lanes.stats().backfilled, 3, "2, 5 and 7");
        assert_eq!(lanes.stats().duplicates, 0);
        assert_eq!(lanes.poll_backfill(), None, "no request per hole");
        // 10 and 11 are the stream's to bring, once.
        lanes.live(t(10));
        lanes.live(t(11));
        assert_eq!(ids(&mut lanes), vec![10, 11]);
        assert_eq!(lanes.stats().duplicates, 0);
    }

    #[test]
    fn holes_rest_does_not_have_are_left_unfilled() {
        // (backfill outcomes in turn, ids handed out, trades unfilled)
        let cases: Vec<(&str, Vec<BackfillOutcome>, Vec<u64>, u64)> = vec![
            (
                "listed past the hole",
                vec![outcome(&[4, 9], Some(9), None)],
                vec![1, 4, 9],
                6,
            ),
            (
                "failed",
                vec![outcome(&[2], Some(2), Some("HTTP 400"))],
                vec![1, 2, 9],
                6,
            ),
            (
                "never catches up",
                vec![
                    outcome(&[], None, None),
                    outcome(&[], None, None),
                    outcome(&[], None, None),
                ],
                vec![1, 9],
                7,
            ),
            (
                "progress resets the rounds",
                vec![
                    outcome(&[], None, None),
                    outcome(&[2, 3], Some(3), None),
                    outcome(&[], None, None),
                    outcome(&[4, 5, 6, 7, 8], Some(8), None),
                ],
                vec![1, 2, 3, 4, 5, 6, 7, 8, 9],
                0,
            ),
        ];
        for (name, outcomes, want, unfilled) in cases {
            let mut lanes = Lanes::new(3);
            lanes.live(t(1));
            lanes.live(t(9));
            for o in outcomes {
                let req = lanes
                    .poll_backfill()
                    .unwrap_or_else(|| panic!("{name}: no request"));
                lanes.backfilled(req, o);
            }
            assert_eq!(ids(&mut lanes), want, "{name}");
            assert_eq!(lanes.held(), 0, "{name}");
            assert_eq!(lanes.poll_backfill(), None, "{name}");
            assert_eq!(lanes.stats().unfilled, unfilled, "{name}");
        }
    }

    fn transient(trades: &[u64], highest: Option<u64>) -> BackfillOutcome {
        BackfillOutcome {
            failure: Some(BackfillFailure::Transient("HTTP 503".into())),
            ..outcome(trades, highest, None)
        }
    }

    fn unfilled_events(lanes: &mut Lanes) -> Vec<(u64, u64, String)> {
        std::iter::from_fn(|| lanes.poll_event())
            .filter_map(|e| match e {
                LaneEvent::Unfilled {
                    missing, reason, ..
                } => Some((missing.first, missing.last, reason)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_transient_failure_keeps_the_hole_open() {
        let mut lanes = Lanes::new(3);
        lanes.live(t(1));
        lanes.live(t(9));
        // Two failed rounds, one with part of the hole, then the rest.
        let req = lanes.poll_backfill().unwrap();
        lanes.backfilled(req, transient(&[], None));
        let req = lanes.poll_backfill().expect("asked again");
        assert_eq!((req.from_id, req.until, req.round), (2, Some(8), 1));
        lanes.backfilled(req, transient(&[2, 3], Some(3)));
        let req = lanes.poll_backfill().expect("progress: asked again");
        assert_eq!((req.from_id, req.round), (4, 0));
        lanes.backfilled(req, transient(&[], None));
        let req = lanes.poll_backfill().expect("one round left");
        lanes.backfilled(req, outcome(&[4, 5, 6, 7, 8], Some(8), None));
        assert_eq!(ids(&mut lanes), (1..=9).collect::<Vec<_>>());
        assert_eq!(lanes.stats().unfilled, 0);
        let failed: Vec<bool> = std::iter::from_fn(|| lanes.poll_event())
            .filter_map(|e| match e {
                LaneEvent::BackfillFailed { retrying, .. } => Some(retrying),
                _ => None,
            })
            .collect();
        assert_eq!(failed, vec![true, true, true]);
    }

    #[test]
    fn transient_failures_past_the_rounds_leave_the_hole_unfilled() {
        let mut lanes = Lanes::new(3);
        lanes.live(t(1));
        lanes.live(t(9));
        for _ in 0..3 {
            let req = lanes.poll_backfill().expect("a round");
            lanes.backfilled(req, transient(&[], None));
        }
        assert_eq!(lanes.poll_backfill(), None);
        assert_eq!(ids(&mut lanes), vec![1, 9]);
        assert_eq!(lanes.stats().unfilled, 7);
        assert_eq!(unfilled_events(&mut lanes), vec![(2, 8, "HTTP 503".into())]);
    }

    #[test]
    fn an_unreadable_trade_costs_only_its_id() {
        // (held live ids, backfilled ids, unreadable ids, unfilled ranges)
        type Case = (&'static str, Vec<u64>, Vec<u64>, Vec<u64>, Vec<(u64, u64)>);
        let cases: Vec<Case> = vec![
            (
                "inside the hole",
                vec![9],
                vec![2, 3, 5, 6, 7, 8],
                vec![4],
                vec![(4, 4)],
            ),
            (
                "at its start",
                vec![9],
                vec![4, 5, 6, 7, 8],
                vec![2, 3],
                vec![(2, 3)],
            ),
            (
                "at its end",
                vec![9],
                vec![2, 3, 4, 5, 6, 7],
                vec![8],
                vec![(8, 8)],
            ),
            (
                "several",
                vec![9],
                vec![3, 5, 6, 8],
                vec![2, 4, 7],
                vec![(2, 2), (4, 4), (7, 7)],
            ),
            (
                "also live",
                vec![5, 9],
                vec![2, 3, 4, 6, 7, 8],
                vec![5],
                vec![],
            ),
        ];
        for (name, live, fetched, unreadable, want) in cases {
            let mut lanes = Lanes::new(3);
            lanes.live(t(1));
            for &id in &live {
                lanes.live(t(id));
            }
            let req = lanes.poll_backfill().unwrap();
            let o = BackfillOutcome {
                unreadable: unreadable.clone(),
                ..outcome(&fetched, Some(8), None)
            };
            lanes.backfilled(req, o);
            let got = ids(&mut lanes);
            let mut expected: Vec<u64> = (1..=9)
                .filter(|id| !unreadable.contains(id) || live.contains(id))
                .collect();
            expected.dedup();
            assert_eq!(got, expected, "{name}");
            let lost: Vec<(u64, u64)> = unfilled_events(&mut lanes)
                .into_iter()
                .map(|(first, last, reason)| {
                    assert_eq!(reason, "unreadable in the REST reply", "{name}");
                    (first, last)
                })
                .collect();
            assert_eq!(lost, want, "{name}");
            assert_eq!(lanes.poll_backfill(), None, "{name}: nothing asked again");
        }
    }

    #[test]
    fn an_unreadable_last_trade_of_a_catch_up_is_given_up_at_once() {
        let mut lanes = Lanes::new(3);
        lanes.live(t(1));
        lanes.reconnected(&[btc()], None);
        lanes.catch_up_quiet(&[btc()]);
        let req = lanes.poll_backfill().unwrap();
        assert_eq!(req.until, None);
        let o = BackfillOutcome {
            unreadable: vec![4],
            ..outcome(&[2, 3], Some(4), None)
        };
        lanes.backfilled(req, o);
        lanes.live(t(5));
        assert_eq!(ids(&mut lanes), vec![1, 2, 3, 5]);
        assert_eq!(lanes.stats().unfilled, 1);
        assert_eq!(lanes.stats().gaps, 0, "id 4 is accounted for, not a gap");
        assert_eq!(lanes.poll_backfill(), None);
    }

    #[test]
    fn a_reconnected_quiet_symbol_is_held_until_its_catch_up_answers() {
        let mut lanes = Lanes::new(3);
        lanes.live(t(1));
        assert_eq!(lanes.holding().count(), 0);
        lanes.reconnected(&[btc()], None);
        assert_eq!(lanes.holding().collect::<Vec<_>>(), [btc()], "quiet");
        lanes.catch_up_quiet(&[btc()]);
        assert_eq!(lanes.holding().count(), 1, "catch-up wanted");
        let req = lanes.poll_backfill().unwrap();
        assert_eq!(lanes.holding().count(), 1, "catch-up in flight");
        lanes.backfilled(req, outcome(&[2, 3], Some(3), None));
        assert_eq!(lanes.holding().count(), 0, "caught up");
        assert_eq!(ids(&mut lanes), vec![1, 2, 3]);

        // A live trade after the reconnect shows any gap itself.
        lanes.reconnected(&[btc()], None);
        lanes.live(t(4));
        assert_eq!(lanes.holding().count(), 0);
    }

    #[test]
    fn a_catch_up_that_failed_for_now_is_asked_again() {
        let mut lanes = Lanes::new(2);
        lanes.live(t(1));
        lanes.reconnected(&[btc()], None);
        lanes.catch_up_quiet(&[btc()]);
        let req = lanes.poll_backfill().unwrap();
        lanes.backfilled(req, transient(&[], None));
        let req = lanes.poll_backfill().expect("asked again");
        assert_eq!((req.from_id, req.until, req.round), (2, None, 1));
        lanes.backfilled(req, transient(&[], None));
        assert_eq!(lanes.poll_backfill(), None, "bounded by the rounds");
        assert_eq!(lanes.stats().unfilled, 0, "nothing known missing");
    }

    #[test]
    fn a_resumed_lane_backfills_from_after_the_last_delivered_trade() {
        let mut lanes = Lanes::new(3);
        lanes.resume_after(btc(), point(4), 100);
        // The old copies of delivered trades are duplicates, the first live
        // trade reveals the gap, and backfill closes it.
        for id in [3, 4, 8, 9] {
            lanes.live(t(id));
        }
        assert_eq!(ids(&mut lanes), Vec::<u64>::new());
        let req = lanes.poll_backfill().unwrap();
        assert_eq!((req.from_id, req.until), (5, Some(7)));
        lanes.backfilled(req, outcome(&[5, 6, 7, 8], Some(8), None));
        assert_eq!(ids(&mut lanes), vec![5, 6, 7, 8, 9]);
        // 3 and 4; the reply's 8, past the hole, is the stream's.
        assert_eq!(lanes.stats().duplicates, 2);
        assert_eq!(lanes.stats().backfilled, 3);
        assert_eq!(lanes.stats().unfilled, 0);
    }

    #[test]
    fn a_resume_point_ahead_of_the_live_stream_starts_the_lane_over() {
        let mut lanes = Lanes::new(3);
        // The topic's last trade came from another id space (a replayed
        // `@trade` capture): a far higher id, at an earlier trade time.
        let resumed = ResumePoint {
            id: 5_000,
            trade_time_ms: 10,
        };
        lanes.resume_after(btc(), resumed, 100);
        lanes.catch_up_quiet(&[btc()]);
        let catch_up = lanes.poll_backfill().unwrap();
        assert_eq!(catch_up.from_id, 5_001);
        lanes.live(t(20));
        lanes.live(t(21));
        assert_eq!(
            lanes.poll_event(),
            Some(LaneEvent::ResumeAhead {
                symbol: btc(),
                resumed,
                live_id: 20,
                live_time_ms: 20,
            })
        );
        assert_eq!(lanes.poll_event(), None, "reported once");
        // REST shares the live ids: nothing lies above the point.
        lanes.backfilled(catch_up, outcome(&[], None, None));
        lanes.live(t(22));
        assert_eq!(ids(&mut lanes), vec![20, 21, 22]);
        assert_eq!(lanes.stats(), LaneStats::default(), "no duplicate, no gap");
        assert_eq!(lanes.poll_backfill(), None);
        // From then on, repeats are ordinary duplicates.
        lanes.live(t(21));
        assert_eq!(lanes.stats().duplicates, 1);
    }

    #[test]
    fn old_copies_of_the_resume_point_stay_duplicates() {
        let mut lanes = Lanes::new(3);
        lanes.resume_after(btc(), point(10), 100);
        // Lower ids at earlier (or the same) times: copies of what the
        // topic holds, not a sign of another stream.
        lanes.live(t(9));
        lanes.live(t(10));
        lanes.live(t(11));
        lanes.live(t(12));
        // A reconnect replays recent ids.
        lanes.reconnected(&[btc()], None);
        lanes.live(t(11));
        lanes.live(t(12));
        lanes.live(t(13));
        assert_eq!(ids(&mut lanes), vec![11, 12, 13]);
        assert_eq!(lanes.stats().duplicates, 4);
        let events: Vec<LaneEvent> = std::iter::from_fn(|| lanes.poll_event()).collect();
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, LaneEvent::ResumeAhead { .. })),
            "{events:?}"
        );
    }

    #[test]
    fn a_resume_backfills_at_most_its_bound() {
        let mut lanes = Lanes::new(3);
        lanes.resume_after(btc(), point(10), 3);
        lanes.live(t(30));
        // 11..=26 lie more than 3 before the first live trade: given up, counted.
        let req = lanes.poll_backfill().unwrap();
        assert_eq!((req.from_id, req.until), (27, Some(29)));
        lanes.backfilled(req, outcome(&[27, 28, 29], Some(29), None));
        assert_eq!(ids(&mut lanes), vec![27, 28, 29, 30]);
        assert_eq!(lanes.stats().unfilled, 16);
    }

    #[test]
    fn a_quiet_resumed_lane_catches_up_within_its_bound() {
        let mut lanes = Lanes::new(3);
        lanes.resume_after(btc(), point(10), 500);
        assert_eq!(lanes.poll_backfill(), None, "waits for a live trade first");
        lanes.catch_up_quiet(&[btc()]);
        let req = lanes.poll_backfill().unwrap();
        assert_eq!((req.from_id, req.until), (11, Some(510)));
        lanes.backfilled(req, outcome(&[11, 12], Some(12), None));
        assert_eq!(ids(&mut lanes), vec![11, 12]);
        assert_eq!(lanes.poll_backfill(), None);
    }

    #[test]
    fn a_quiet_resume_uses_up_its_bound_and_the_first_live_trade_counts_the_rest() {
        let mut lanes = Lanes::new(3);
        lanes.resume_after(btc(), point(10), 3);
        // An old id first: it neither reveals the gap nor spends the bound.
        lanes.live(t(9));
        lanes.catch_up_quiet(&[btc()]);
        let req = lanes.poll_backfill().unwrap();
        assert_eq!((req.from_id, req.until), (11, Some(13)));
        // REST lists past the bound; only what was kept counts as listed.
        lanes.backfilled(req, outcome(&[11, 12, 13], Some(13), None));
        assert_eq!(ids(&mut lanes), vec![11, 12, 13]);
        lanes.reconnected(&[btc()], None);
        lanes.catch_up_quiet(&[btc()]);
        assert_eq!(lanes.poll_backfill(), None, "the bound is used up");
        // The first live trade gives up everything before it.
        lanes.live(t(20));
        assert_eq!(ids(&mut lanes), vec![20]);
        assert_eq!(lanes.stats().unfilled, 6);
        assert_eq!(lanes.stats().backfilled, 3);
    }

    #[test]
    fn a_backfill_superseded_by_the_bound_does_not_cost_a_round() {
        let mut lanes = Lanes::new(1);
        lanes.resume_after(btc(), point(0), 5);
        lanes.catch_up_quiet(&[btc()]);
        let catch_up = lanes.poll_backfill().unwrap();
        assert_eq!((catch_up.from_id, catch_up.until), (1, Some(5)));
        // The first live trade arrives while the catch-up is in flight.
        lanes.live(t(100));
        lanes.backfilled(catch_up, outcome(&[1, 2, 3, 4, 5], Some(5), None));
        // 1..=94 are given up; 95..=99 are still wanted, with a round to spare.
        let req = lanes.poll_backfill().unwrap();
        assert_eq!((req.from_id, req.until), (95, Some(99)));
        lanes.backfilled(req, outcome(&[95, 96, 97, 98, 99], Some(99), None));
        assert_eq!(ids(&mut lanes), vec![95, 96, 97, 98, 99, 100]);
        assert_eq!(lanes.stats().unfilled, 94);
    }

    #[test]
    fn evicted_trades_are_backfilled_even_without_a_later_trade() {
        let mut lanes = Lanes::new(3);
        lanes.live(t(1));
        lanes.evicted(btc(), IdRange { first: 2, last: 4 });
        let req = lanes.poll_backfill().unwrap();
        assert_eq!((req.from_id, req.until), (2, Some(4)));
        lanes.backfilled(req, outcome(&[2, 3, 4], Some(4), None));
        lanes.live(t(5));
        assert_eq!(ids(&mut lanes), vec![1, 2, 3, 4, 5]);

        // Evicted before anything was handed out: start from the oldest lost id.
        let mut lanes = Lanes::new(3);
        lanes.evicted(
            btc(),
            IdRange {
                first: 10,
                last: 11,
            },
        );
        lanes.live(t(12));
        let req = lanes.poll_backfill().unwrap();
        assert_eq!((req.from_id, req.until), (10, Some(11)));
        lanes.backfilled(req, outcome(&[10, 11, 12], Some(12), None));
        assert_eq!(ids(&mut lanes), vec![10, 11, 12]);
    }

    #[test]
    fn reconnect_catches_up_quiet_symbols_only() {
        let eth = Symbol::new("ETHUSDT").unwrap();
        let mut lanes = Lanes::new(3);
        lanes.live(t(1));
        lanes.live(Trade {
            symbol: eth,
            ..t(50)
        });
        let unseen = Symbol::new("BNBUSDT").unwrap();
        let all = [btc(), eth, unseen];
        lanes.reconnected(&all, None);
        // ETH trades again after the reconnect: its sequence shows any gap.
        lanes.live(Trade {
            symbol: eth,
            ..t(51)
        });
        assert_eq!(
            lanes.poll_backfill(),
            None,
            "nothing before the catch-up is due"
        );
        lanes.catch_up_quiet(&all);
        let req = lanes.poll_backfill().unwrap();
        assert_eq!((req.symbol, req.from_id, req.until), (btc(), 2, None));
        assert_eq!(
            lanes.poll_backfill(),
            None,
            "busy and unseen symbols need none"
        );
        lanes.live(t(4));
        lanes.backfilled(req, outcome(&[2, 3, 4, 5], Some(5), None));
        lanes.live(t(5));
        lanes.live(t(6));
        let btc_ids: Vec<u64> = {
            let mut out = Vec::new();
            lanes.drain_ready(&mut out);
            out.iter()
                .filter(|t| t.symbol == btc())
                .map(|t| t.id)
                .collect()
        };
        assert_eq!(btc_ids, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn an_outage_is_unchecked_until_a_live_trade_or_a_catch_up_answers() {
        let eth = Symbol::new("ETHUSDT").unwrap();
        let sol = Symbol::new("SOLUSDT").unwrap();
        let mut lanes = Lanes::new(1);
        for symbol in [btc(), eth, sol] {
            lanes.live(Trade { symbol, ..t(1) });
        }
        assert_eq!(lanes.unchecked_outages().count(), 0);
        lanes.reconnected(&[btc(), eth, sol], None);
        let unchecked = |lanes: &Lanes| lanes.unchecked_outages().collect::<Vec<_>>();
        assert_eq!(unchecked(&lanes), [btc(), eth, sol]);

        // ETH trades: any gap shows in its ids.
        lanes.live(Trade {
            symbol: eth,
            ..t(2)
        });
        assert_eq!(unchecked(&lanes), [btc(), sol]);

        // BTC's catch-up answers; SOL's fails for good.
        lanes.catch_up_quiet(&[btc(), sol]);
        let first = lanes.poll_backfill().unwrap();
        let second = lanes.poll_backfill().unwrap();
        assert_eq!((first.symbol, second.symbol), (btc(), sol));
        assert_eq!(unchecked(&lanes), [btc(), sol], "under way");
        lanes.backfilled(first, outcome(&[], Some(1), None));
        lanes.backfilled(second, outcome(&[], None, Some("HTTP 400")));
        assert_eq!(unchecked(&lanes), [sol]);
        assert_eq!(lanes.poll_backfill(), None, "given up");

        // Only a live trade of SOL tells now.
        lanes.live(Trade {
            symbol: sol,
            ..t(2)
        });
        assert_eq!(lanes.unchecked_outages().count(), 0);

        // A resume's catch-up that reached its bound with more listed beyond
        // has not seen the whole outage.
        let bnb = Symbol::new("BNBUSDT").unwrap();
        lanes.resume_after(bnb, point(10), 2);
        lanes.catch_up_quiet(&[bnb]);
        let req = lanes.poll_backfill().unwrap();
        assert_eq!((req.from_id, req.until), (11, Some(12)));
        let mut page = outcome(&[], Some(15), None);
        page.trades = [11, 12]
            .map(|id| Trade {
                symbol: bnb,
                ..t(id)
            })
            .to_vec();
        lanes.backfilled(req, page);
        assert_eq!(unchecked(&lanes), [bnb]);
    }

    #[test]
    fn a_forgotten_symbol_starts_afresh() {
        let mut lanes = Lanes::new(3);
        for id in [1, 2, 5] {
            lanes.live(t(id));
        }
        assert_eq!(ids(&mut lanes), vec![1, 2]);
        assert_eq!(lanes.forget(btc()), 1, "5 waited behind the hole 3..=4");
        assert_eq!(
            lanes.poll_backfill(),
            None,
            "no backfill for a dropped symbol"
        );
        // Listed again later: its first trade starts the lane, no gap back to 2.
        lanes.live(t(40));
        lanes.live(t(41));
        assert_eq!(ids(&mut lanes), vec![40, 41]);
        assert_eq!(lanes.poll_backfill(), None);
        assert_eq!(lanes.stats().gaps, 1, "only the first hole");
    }

    /// A symbol that had not traded before a reconnect: its first live
    /// trade waits while the trades since the connection failed are
    /// fetched by time, then all go out in id order; what REST did not
    /// list between the two is a hole like any other.
    #[test]
    fn a_symbol_without_trades_before_a_reconnect_is_looked_up_by_time() {
        let mut lanes = Lanes::new(3);
        lanes.reconnected(&[btc()], Some(1_000));
        lanes.live(t(50));
        assert_eq!(ids(&mut lanes), Vec::<u64>::new(), "held until anchored");
        assert_eq!(lanes.holding().count(), 1);
        let req = lanes.poll_backfill().unwrap();
        assert_eq!(
            (req.from_time_ms, req.until, req.round),
            (Some(1_000), Some(49), 0)
        );
        lanes.live(t(51));
        lanes.backfilled(req, outcome(&[40, 41], Some(41), None));
        assert_eq!(ids(&mut lanes), vec![40, 41]);
        assert_eq!(lanes.missing(), 8);
        // 42..=49 are asked for by id, as for any gap.
        let req = lanes.poll_backfill().unwrap();
        assert_eq!(
            (req.from_id, req.until, req.from_time_ms),
            (42, Some(49), None)
        );
        let rest: Vec<u64> = (42..=49).collect();
        lanes.backfilled(req, outcome(&rest, Some(49), None));
        assert_eq!(ids(&mut lanes), (42..=51).collect::<Vec<_>>());
        assert_eq!(lanes.stats().backfilled, 10, "live trades are not counted");
        assert_eq!(lanes.holding().count(), 0);
    }

    /// Quiet after the reconnect too: the catch-up asks by time. An empty
    /// answer leaves the lane looking: its next live trade asks again, and
    /// REST that lists nothing before it has not caught up yet (asked again,
    /// a bounded number of rounds, then reported unchecked). A lane with no
    /// time to ask from starts at its next live trade.
    #[test]
    fn a_quiet_symbol_without_trades_is_caught_up_by_time() {
        let mut lanes = Lanes::new(3);
        let eth = Symbol::new("ETHUSDT").unwrap();
        lanes.reconnected(&[btc()], Some(1_000));
        lanes.reconnected(&[eth], None);
        assert_eq!(
            lanes.poll_backfill(),
            None,
            "not before the catch-up is due"
        );
        lanes.catch_up_quiet(&[btc(), eth]);
        let req = lanes.poll_backfill().unwrap();
        assert_eq!(
            (req.symbol, req.from_time_ms, req.until),
            (btc(), Some(1_000), None)
        );
        assert_eq!(lanes.poll_backfill(), None, "nothing to ask for ETH");
        lanes.backfilled(req, outcome(&[], None, None));
        lanes.live(Trade {
            symbol: eth,
            ..t(3)
        });
        assert_eq!(ids(&mut lanes), vec![3]);

        // BTC trades: REST lags and lists nothing twice, then 5 and 6.
        lanes.live(t(7));
        for round in 0..2 {
            let req = lanes.poll_backfill().unwrap();
            assert_eq!(
                (req.from_time_ms, req.until, req.round),
                (Some(1_000), Some(6), round)
            );
            lanes.backfilled(req, outcome(&[], None, None));
            assert_eq!(ids(&mut lanes), Vec::<u64>::new());
        }
        let req = lanes.poll_backfill().unwrap();
        lanes.backfilled(req, outcome(&[5, 6, 7, 8], Some(6), None));
        assert_eq!(ids(&mut lanes), vec![5, 6, 7]);
        assert_eq!(lanes.stats().backfilled, 2, "the live 7 is not counted");
        assert_eq!(lanes.stats().duplicates, 0);

        // REST never lists the outage: after the rounds the symbol goes on
        // from its first live trade, and the outage is reported unchecked.
        let bnb = Symbol::new("BNBUSDT").unwrap();
        std::iter::from_fn(|| lanes.poll_event()).for_each(drop);
        lanes.reconnected(&[bnb], Some(2_000));
        lanes.live(Trade {
            symbol: bnb,
            ..t(9)
        });
        lanes.live(Trade {
            symbol: bnb,
            ..t(11)
        });
        for round in 0..3 {
            let req = lanes.poll_backfill().unwrap();
            assert_eq!((req.symbol, req.round), (bnb, round));
            lanes.backfilled(req, outcome(&[], None, None));
        }
        assert_eq!(ids(&mut lanes), vec![9]);
        assert_eq!(lanes.stats().unchecked, 1);
        let events: Vec<LaneEvent> = std::iter::from_fn(|| lanes.poll_event()).collect();
        assert!(
            events.iter().any(|e| matches!(e, LaneEvent::Unchecked { symbol, first_live: 9, .. } if *symbol == bnb)),
            "{events:?}"
        );
        let gaps = events
            .iter()
            .filter(|e| matches!(e, LaneEvent::Gap { .. }))
            .count();
        assert_eq!(gaps, 1, "the gap between 9 and 11 is reported once");

        // BNB's hole is filled.
        let req = lanes.poll_backfill().unwrap();
        assert_eq!((req.symbol, req.from_id), (bnb, 10));
        let mut filled = outcome(&[], Some(10), None);
        filled.trades.push(Trade {
            symbol: bnb,
            ..t(10)
        });
        lanes.backfilled(req, filled);
        assert_eq!(ids(&mut lanes), vec![10, 11]);

        // A blind lookup that fails leaves the outage unchecked, and says
        // so, until a live trade asks again.
        let sol = Symbol::new("SOLUSDT").unwrap();
        lanes.reconnected(&[sol], Some(3_000));
        lanes.catch_up_quiet(&[sol]);
        let req = lanes.poll_backfill().unwrap();
        lanes.backfilled(req, outcome(&[], None, Some("HTTP 400")));
        assert_eq!(lanes.unchecked_outages().collect::<Vec<_>>(), [sol]);
        assert_eq!(lanes.poll_backfill(), None);
        lanes.live(Trade {
            symbol: sol,
            ..t(30)
        });
        let req = lanes.poll_backfill().unwrap();
        assert_eq!((req.symbol, req.from_time_ms), (sol, Some(3_000)));
        let mut found = outcome(&[], Some(29), None);
        found.trades = [28, 29]
            .map(|id| Trade {
                symbol: sol,
                ..t(id)
            })
            .to_vec();
        lanes.backfilled(req, found);
        assert_eq!(ids(&mut lanes), vec![28, 29, 30]);
        assert_eq!(lanes.unchecked_outages().count(), 0);
    }
}
