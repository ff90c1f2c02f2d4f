//! [`BinanceSource`]: the [`TradeSource`] over Binance's live aggTrade streams.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use async_trait::async_trait;
use pulse_core::{
    BackfillOutcome, BackfillRequest, IdRange, LaneEvent, Lanes, ParseError, Symbol, Trade,
    short_list,
};
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::arrivals::Arrivals;
use super::backfill;
use super::binance_clock::BinanceClock;
use super::config::BinanceConfig;
use super::connect::tls_config;
use super::inbox::Inbox;
use super::reader::{BINARY_FRAME, NOT_SUBSCRIBED, ShardEvent, connect_at_startup};
use super::readers::{ReaderParts, Readers};
use super::relist::{Change, Relisting, Switch};
use super::rest::{RestClient, RestError};
use super::universe::ListingError;
use crate::{Metrics, SourceError, TradeSource};

/// How far before a shard's last delivered trade time (or, when it
/// delivered none, the moment its connection was lost) a symbol that never
/// traded is looked up after a reconnect: streams share a connection but
/// their frames may cross, and a trade found this early was missed all the
/// same, as none of that symbol came.
const CROSSING_MARGIN_MS: i64 = 5_000;
/// Tries at reading Binance's server time before making do without it.
const CLOCK_READS: u32 = 3;

/// Live aggTrades from Binance USD-M futures; see the [module docs](super).
///
/// Dropping it stops every connection and backfill.
pub struct BinanceSource {
    config: Arc<BinanceConfig>,
    inbox: Arc<Inbox>,
    events: mpsc::UnboundedReceiver<ShardEvent>,
    rest: Arc<RestClient>,
    lanes: Lanes,
    metrics: Metrics,
    readers: Readers,
    /// The symbols followed now; `config.symbols` is the start-up list.
    symbols: Vec<Symbol>,
    /// Symbols dropped from `ALL`: stragglers of theirs are discarded.
    dropped: BTreeSet<Symbol>,
    /// Re-reading the symbol list of `ALL`, when followed.
    relisting: Option<Relisting>,
    backfills: JoinSet<(BackfillRequest, BackfillOutcome)>,
    /// Trades taken from the inbox, with their inbox positions, not yet
    /// fed to the lanes.
    incoming: VecDeque<(u64, Trade)>,
    evicted: Vec<(Symbol, IdRange)>,
    /// Reconnected symbols, and when to backfill those still quiet.
    catch_ups: VecDeque<(Instant, Vec<Symbol>)>,
    /// Running shards whose connection failed and is not back yet: their
    /// symbols' windows stay open, since trades are being missed.
    disconnected: BTreeSet<usize>,
    /// The latest reading of Binance's clock: the oldest trade of the last
    /// ones handed on, or the server time when a connection was lost before
    /// any trade.
    clock: Option<BinanceClock>,
    /// Reading the server time, when asked for and not back yet (at most
    /// one task).
    reading_clock: JoinSet<Result<BinanceClock, RestError>>,
    /// The server refused to tell it (a server without the endpoint, say):
    /// not asked again, trades tell the time instead.
    clock_unreadable: bool,
    /// The oldest event time of the trades fed live since the driver last
    /// asked, as they came: trades handed on later (backfilled, held) are
    /// no reading of Binance's clock against the local one.
    arrivals: Arrivals,
    /// Reconnected shards that delivered no trade, by index: their symbols
    /// and when their connection was first lost, waiting for a clock to be
    /// looked up by.
    unanchored: BTreeMap<usize, (Vec<Symbol>, Instant)>,
    _stop: DropGuard,
}

impl std::fmt::Debug for BinanceSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinanceSource")
            .field("symbols", &self.symbols.len())
            .field("connections", &self.readers.len())
            .field("backfills", &self.backfills.len())
            .finish_non_exhaustive()
    }
}

impl BinanceSource {
    /// Validates `config`, opens every connection and starts reading.
    ///
    /// # Errors
    /// [`SourceError::Config`] for bad settings, and
    /// [`SourceError::Unreachable`] when a connection cannot be opened in
    /// `config.startup_attempts` tries. Once connected, the source retries
    /// for ever.
    pub async fn connect(mut config: BinanceConfig, metrics: Metrics) -> Result<Self, SourceError> {
        config.validate()?;
        metrics.init_rejected(ParseError::REASONS);
        metrics.init_rejected(&[BINARY_FRAME, NOT_SUBSCRIBED]);
        if config.symbols.is_empty() {
            config.symbols = super::resolve_all_perpetuals(&config).await?;
        }
        let config = Arc::new(config);
        let tls = tls_config();
        let inbox = Arc::new(Inbox::new(config.queue_capacity, metrics.clone()));
        let rest = Arc::new(RestClient::new(&config.rest_base, &config.backfill)?);
        let (events_tx, events) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        // On error, dropping `readers` stops the shards already started.
        let mut readers = Readers::new(ReaderParts {
            config: config.clone(),
            tls: tls.clone(),
            inbox: inbox.clone(),
            events: events_tx,
            metrics: metrics.clone(),
            cancel: cancel.clone(),
        });
        let plan = pulse_core::plan_shards(
            &config.ws_base,
            &config.symbols,
            config.streams_per_connection,
        );
        for shard in plan {
            let shard = readers.number(shard);
            let ws = connect_at_startup(&shard, &config, &tls, &metrics).await?;
            readers.start_connected(shard, ws);
        }
        tracing::info!(
            symbols = config.symbols.len(),
            connections = readers.len(),
            "streaming Binance aggTrades"
        );
        metrics
            .symbols_followed
            .set(gauge_value(config.symbols.len()));
        let mut lanes = Lanes::new(config.backfill.rounds);
        let mut catch_ups = VecDeque::new();
        if !config.resume_after.is_empty() {
            for (&symbol, &point) in &config.resume_after {
                tracing::info!(%symbol, last_id = point.id, trade_time_ms = point.trade_time_ms, "resuming after the last trade already delivered");
                lanes.resume_after(symbol, point, config.backfill.max_resume_backfill);
            }
            // Like a reconnect: a busy symbol's first trade shows its gap;
            // the quiet ones are backfilled blindly a little later.
            let symbols = config.resume_after.keys().copied().collect();
            catch_ups.push_back((Instant::now() + config.backfill.catch_up_delay, symbols));
        }
        if !config.quiet_until.is_empty() {
            // Like a reconnect of symbols with no trade before it: looked
            // up by time, their first live trades waiting for the answer.
            for (&symbol, &until_ms) in &config.quiet_until {
                tracing::info!(%symbol, quiet_until_ms = until_ms, "no trade of it on the topic, but followed until then: looking up what it traded since");
                // The time was vouched by other symbols' trades, whose
                // frames may cross this one's.
                let since = until_ms.saturating_sub(CROSSING_MARGIN_MS);
                lanes.reconnected(&[symbol], Some(since));
            }
            let symbols = config.quiet_until.keys().copied().collect();
            catch_ups.push_back((Instant::now() + config.backfill.catch_up_delay, symbols));
        }
        let relisting = config
            .all_perpetuals
            .clone()
            .map(|all| Relisting::new(all, &config, Instant::now()));
        Ok(BinanceSource {
            lanes,
            metrics,
            symbols: config.symbols.clone(),
            dropped: BTreeSet::new(),
            relisting,
            config,
            inbox,
            events,
            rest,
            readers,
            backfills: JoinSet::new(),
            incoming: VecDeque::new(),
            evicted: Vec::new(),
            catch_ups,
            disconnected: BTreeSet::new(),
            clock: None,
            reading_clock: JoinSet::new(),
            clock_unreadable: false,
            arrivals: Arrivals::default(),
            unanchored: BTreeMap::new(),
            _stop: cancel.drop_guard(),
        })
    }

    /// The settings in use. Its `symbols` are those of start-up; with
    /// `all_perpetuals` the list can change since, see
    /// [`symbols`](Self::symbols).
    pub fn config(&self) -> &BinanceConfig {
        &self.config
    }

    /// The symbols followed now, in shard order. With `all_perpetuals`,
    /// Binance's list is read again every `max_connection_age`, and this
    /// changes once the connections for a changed list run.
    pub fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }

    /// Feeds everything waiting into the lanes and starts the backfills they ask for.
    fn pump(&mut self) -> Result<(), SourceError> {
        // Trades first, then events: a reconnect's event is sent before its
        // connection's first trade, so every trade taken after its mark
        // has its event here too, and `on_event` feeds up to the mark.
        self.drain_inbox();
        while let Ok(event) = self.events.try_recv() {
            self.on_event(event);
        }
        if let Some(read) = self.reading_clock.try_join_next() {
            self.on_clock_read(read);
        }
        self.feed(None);
        let now = Instant::now();
        while self.catch_ups.front().is_some_and(|(due, _)| *due <= now) {
            if let Some((_, symbols)) = self.catch_ups.pop_front() {
                self.lanes.catch_up_quiet(&symbols);
            }
        }
        if let Some(relisting) = &mut self.relisting
            && relisting.deadline().is_some_and(|at| at <= now)
            && let Some(switch) = relisting.poll(now, &self.rest)
        {
            self.finish_switch(switch);
        }
        while let Some(done) = self.backfills.try_join_next() {
            self.on_backfill(done)?;
        }
        while let Some(request) = self.lanes.poll_backfill() {
            let rest = self.rest.clone();
            let config = self.config.clone();
            let metrics = self.metrics.clone();
            self.backfills.spawn(async move {
                let outcome =
                    backfill::run(&rest, request, &config.backfill, config.retry, &metrics).await;
                (request, outcome)
            });
        }
        Ok(())
    }

    /// Trades held behind id gaps, ids missing under them and outages
    /// not checked yet, for the gauges (and the exit summary); returns what
    /// it set.
    fn set_backlog_gauges(&self) -> Backlog {
        let backlog = Backlog {
            held: self.lanes.held(),
            missing: self.lanes.missing(),
            unchecked: self.unchecked_outages().len(),
        };
        self.metrics.trades_held.set(gauge_value(backlog.held));
        let missing = i64::try_from(backlog.missing).unwrap_or(i64::MAX);
        self.metrics.trades_missing.set(missing);
        self.metrics
            .outages_unchecked_pending
            .set(gauge_value(backlog.unchecked));
        backlog
    }

    /// Symbols that may have missed trades no one has looked for yet: their
    /// connection is down, or it came back and neither a live trade nor a
    /// catch-up over REST has checked the outage.
    fn unchecked_outages(&self) -> BTreeSet<Symbol> {
        let mut symbols: BTreeSet<Symbol> = self.lanes.unchecked_outages().collect();
        for &index in &self.disconnected {
            symbols.extend(self.readers.symbols(index));
        }
        for (unanchored, _) in self.unanchored.values() {
            symbols.extend(unanchored);
        }
        symbols
    }

    /// What the lanes saw, as metrics and logs.
    fn record_lane_events(&mut self) {
        let metrics = &self.metrics;
        while let Some(event) = self.lanes.poll_event() {
            match event {
                LaneEvent::Duplicate(symbol) => metrics.source_duplicate(symbol.as_str()),
                LaneEvent::Gap { symbol, missing } => {
                    metrics.source_gap(symbol.as_str());
                    tracing::info!(%symbol, first = missing.first, last = missing.last, missing = missing.len(), "trade id gap; backfilling");
                }
                LaneEvent::Backfilled { symbol, trades } => {
                    metrics.source_backfilled(symbol.as_str(), trades);
                }
                LaneEvent::BackfillFailed {
                    symbol,
                    from_id,
                    failure,
                    retrying,
                } => {
                    let failure = failure.reason();
                    if retrying {
                        tracing::warn!(%symbol, from = from_id, failure, "backfill failed; the gap stays open and is asked for again");
                    } else {
                        tracing::warn!(%symbol, from = from_id, failure, "backfill gave up");
                    }
                }
                LaneEvent::ResumeAhead {
                    symbol,
                    resumed,
                    live_id,
                    live_time_ms,
                } => {
                    metrics
                        .resume_ahead
                        .get_or_create(&Metrics::symbol(symbol.as_str()))
                        .inc();
                    tracing::warn!(
                        %symbol,
                        resume_id = resumed.id,
                        resume_trade_time_ms = resumed.trade_time_ms,
                        live_id,
                        live_trade_time_ms = live_time_ms,
                        "the resume point is ahead of the live stream (a live trade at or below its id, later in time): it came from elsewhere, e.g. another kind of id or a replayed capture; publishing from the live stream instead"
                    );
                }
                LaneEvent::Unchecked {
                    symbol,
                    since_ms,
                    first_live,
                    reason,
                } => {
                    metrics.outage_unchecked(symbol.as_str());
                    tracing::warn!(%symbol, since_trade_time_ms = since_ms, first_live, reason, "could not look up what a symbol with no earlier trade traded while disconnected: any such trades are lost, uncounted; it goes on from its first live trade");
                }
                LaneEvent::Unfilled {
                    symbol,
                    missing,
                    reason,
                } => {
                    metrics.source_unfilled(symbol.as_str(), missing.len());
                    tracing::warn!(%symbol, first = missing.first, last = missing.last, lost = missing.len(), reason, "gap left unfilled");
                }
            }
        }
    }

    /// Takes what the readers queued: evictions go to the lanes at once,
    /// trades wait in `incoming` for [`feed`](Self::feed).
    fn drain_inbox(&mut self) {
        self.inbox.drain(&mut self.incoming, &mut self.evicted);
        if !self.dropped.is_empty() {
            // A stopped reader may have queued a last frame or two.
            let dropped = &self.dropped;
            self.incoming.retain(|(_, t)| !dropped.contains(&t.symbol));
            self.evicted.retain(|(s, _)| !dropped.contains(s));
        }
        for (symbol, range) in self.evicted.drain(..) {
            self.lanes.evicted(symbol, range);
        }
    }

    /// Feeds the lanes the trades taken, up to inbox position `until`
    /// (all without it).
    fn feed(&mut self, until: Option<u64>) {
        let mut oldest: Option<i64> = None;
        let now = Instant::now();
        while let Some(&(position, trade)) = self.incoming.front() {
            if until.is_some_and(|u| position >= u) {
                break;
            }
            self.incoming.pop_front();
            if !self.unanchored.is_empty() {
                // The first trade since: its time is the clock to go by.
                let clock = BinanceClock::new(trade.trade_time_ms, Instant::now());
                let clock = *self.clock.get_or_insert(clock);
                self.anchor_unanchored(clock);
            }
            let ms = trade.trade_time_ms;
            oldest = Some(oldest.map_or(ms, |o| o.min(ms)));
            self.arrivals.fed(trade.event_time_ms, now);
            self.lanes.live(trade);
        }
        // The oldest errs early, and one wrong time ahead cannot move it.
        if let Some(ms) = oldest {
            self.clock = Some(BinanceClock::new(ms, Instant::now()));
        }
    }

    /// Looks the outages of shards that delivered no trade up by `clock`,
    /// from a little before each connection was lost.
    fn anchor_unanchored(&mut self, clock: BinanceClock) {
        let due = Instant::now() + self.config.backfill.catch_up_delay;
        for (mut symbols, lost_at) in std::mem::take(&mut self.unanchored).into_values() {
            // Delisted meanwhile (`ALL`): they start over if listed again.
            symbols.retain(|s| !self.dropped.contains(s));
            let since = clock.at(lost_at).saturating_sub(CROSSING_MARGIN_MS);
            self.lanes.reconnected(&symbols, Some(since));
            // Their reconnect's blind catch-up may have passed meanwhile.
            self.catch_ups.push_back((due, symbols));
        }
    }

    /// Starts reading Binance's server time, unless already reading it.
    fn read_clock(&mut self) {
        if self.clock_unreadable || !self.reading_clock.is_empty() {
            return;
        }
        let rest = self.rest.clone();
        let mut delays = self.config.retry.delays();
        self.reading_clock.spawn(async move {
            let mut attempt = 1;
            loop {
                match rest.server_time().await {
                    Err(e) if e.is_retryable() && attempt < CLOCK_READS => {
                        tracing::debug!(error = %e, "cannot read Binance's server time; retrying");
                        tokio::time::sleep(delays.next_delay()).await;
                        attempt += 1;
                    }
                    read => return read,
                }
            }
        });
    }

    fn on_clock_read(&mut self, read: Result<Result<BinanceClock, RestError>, JoinError>) {
        match read {
            Ok(Ok(clock)) => {
                tracing::debug!(
                    server_time_ms = clock.at(Instant::now()),
                    "read Binance's server time"
                );
                // A trade handed on meanwhile is as good a reading.
                let clock = *self.clock.get_or_insert(clock);
                self.anchor_unanchored(clock);
            }
            Ok(Err(e)) => {
                // A network outage may pass; a refusal will not.
                self.clock_unreadable = !e.is_retryable();
                tracing::warn!(
                    error = %e,
                    "cannot read Binance's server time (GET /fapi/v1/time): symbols of connections lost before any trade came are looked up from their first live trade's time instead"
                );
            }
            Err(e) => {
                self.clock_unreadable = true;
                tracing::warn!(error = %e, "reading Binance's server time failed");
            }
        }
    }

    fn on_event(&mut self, event: ShardEvent) {
        match event {
            // A shard stopped meanwhile (relisting) reconnects no more.
            ShardEvent::Disconnected(index) if self.readers.is_running(index) => {
                self.disconnected.insert(index);
                // No trade taken yet to tell Binance's time by, should
                // this shard have delivered none: ask while it is down.
                if self.clock.is_none() && self.incoming.is_empty() {
                    self.read_clock();
                }
            }
            ShardEvent::Disconnected(..) => {}
            ShardEvent::Reconnected {
                index,
                symbols,
                delivered_until_ms,
                lost_at,
                inbox_mark,
            } => {
                self.disconnected.remove(&index);
                // Trades queued before the new connection's first came
                // first; they must not count as live trades after the
                // reconnect, and the new ones must not count before it.
                self.drain_inbox();
                self.feed(Some(inbox_mark));
                // Symbols that never traded are looked up by time, from a
                // little before the last trade the shard delivered (frames of
                // different streams may cross), or, when it delivered none,
                // before Binance's time when the connection was lost.
                let since = match delivered_until_ms {
                    Some(t) => Some(t),
                    None => self.clock.map(|c| c.at(lost_at)),
                };
                match since {
                    Some(t) => {
                        let since = t.saturating_sub(CROSSING_MARGIN_MS);
                        self.lanes.reconnected(&symbols, Some(since));
                    }
                    None => {
                        // Lost again before anchored: from the first loss.
                        self.unanchored
                            .entry(index)
                            .or_insert_with(|| (symbols.clone(), lost_at));
                        self.read_clock();
                    }
                }
                let due = Instant::now() + self.config.backfill.catch_up_delay;
                self.catch_ups.push_back((due, symbols));
            }
            ShardEvent::Connected(index) => {
                if let Some(relisting) = &mut self.relisting {
                    relisting.connected(index, Instant::now());
                }
            }
        }
    }

    /// A re-read of the symbol list of `ALL` finished.
    fn on_listed(&mut self, listed: Result<Vec<Symbol>, ListingError>) {
        let Some(relisting) = &mut self.relisting else {
            return;
        };
        let now = Instant::now();
        let symbols = match listed {
            Ok(symbols) => symbols,
            Err(e) => {
                self.metrics.symbol_list_failures.inc();
                let retry_in = relisting.failed(now);
                tracing::warn!(error = %e, ?retry_in, "cannot re-read the trading perpetuals; keeping the symbols followed");
                return;
            }
        };
        let change = Change::between(&self.symbols, &symbols);
        if change.is_empty() {
            tracing::debug!(
                symbols = symbols.len(),
                "the trading perpetuals are unchanged"
            );
            relisting.unchanged(now);
            return;
        }
        tracing::info!(
            added = change.added.len(),
            removed = change.removed.len(),
            added_symbols = %short_list(&change.added),
            removed_symbols = %short_list(&change.removed),
            "the trading perpetuals changed; switching connections"
        );
        // Their trades count from now on, even before the switch is done.
        for symbol in &change.added {
            self.dropped.remove(symbol);
        }
        let plan = pulse_core::plan_shards(
            &self.config.ws_base,
            &symbols,
            self.config.streams_per_connection,
        );
        let mut kept = BTreeSet::new();
        let mut waiting = BTreeSet::new();
        for shard in plan {
            match self.readers.find(&shard.url) {
                Some(index) => {
                    kept.insert(index);
                }
                None => {
                    waiting.insert(self.readers.start(shard));
                }
            }
        }
        let retiring = self
            .readers
            .indices()
            .into_iter()
            .filter(|i| !kept.contains(i) && !waiting.contains(i))
            .collect();
        relisting.begin(symbols, waiting, retiring, now);
    }

    /// The new connections run: stop the old ones and follow the new list.
    fn finish_switch(&mut self, switch: Switch) {
        // What the old connections queued still belongs to the old list.
        self.drain_inbox();
        self.feed(None);
        let listed: BTreeSet<Symbol> = switch.symbols.iter().copied().collect();
        let mut moved = Vec::new();
        for index in switch.retiring {
            // Its symbols' new connections run.
            self.disconnected.remove(&index);
            moved.extend(
                self.readers
                    .symbols(index)
                    .iter()
                    .filter(|s| listed.contains(s)),
            );
            self.readers.stop(index);
        }
        let change = Change::between(&self.symbols, &switch.symbols);
        for symbol in change.removed {
            let held = self.lanes.forget(symbol);
            if held > 0 {
                tracing::debug!(%symbol, held, "dropping trades held behind a gap of a symbol no longer followed");
            }
            self.dropped.insert(symbol);
        }
        self.symbols = switch.symbols;
        self.metrics
            .symbols_followed
            .set(gauge_value(self.symbols.len()));
        // The overlap should have carried every trade; a quiet symbol is
        // checked anyway, as after any reconnect.
        self.lanes.reconnected(&moved, None);
        let due = Instant::now() + self.config.backfill.catch_up_delay;
        self.catch_ups.push_back((due, moved));
        tracing::info!(
            symbols = self.symbols.len(),
            connections = self.readers.len(),
            "following the new list of trading perpetuals"
        );
    }

    fn on_backfill(
        &mut self,
        done: Result<(BackfillRequest, BackfillOutcome), JoinError>,
    ) -> Result<(), SourceError> {
        let (request, outcome) =
            done.map_err(|e| SourceError::Other(format!("backfill task failed: {e}")))?;
        if self.dropped.contains(&request.symbol) {
            return Ok(());
        }
        tracing::debug!(symbol = %request.symbol, from = request.from_id, fetched = outcome.trades.len(), "backfill finished");
        self.lanes.backfilled(request, outcome);
        Ok(())
    }
}

/// What the lanes still owe: see [`BinanceSource::set_backlog_gauges`].
struct Backlog {
    held: usize,
    missing: u64,
    unchecked: usize,
}

/// Trades still held at the stop are never handed on, and the missing ones
/// never fetched: say so, and leave the final counts in `trades_held` and
/// `trades_missing` for the exit summary.
impl Drop for BinanceSource {
    fn drop(&mut self) {
        let Backlog {
            held,
            missing,
            unchecked,
        } = self.set_backlog_gauges();
        if held > 0 || missing > 0 {
            tracing::warn!(
                held,
                missing,
                "stopped with id gaps that REST backfill had not filled yet: the missing trades \
                 were not fetched and those held behind them not handed on \
                 (pulse produce backfills them on its next start)"
            );
        }
        if unchecked > 0 {
            let symbols: Vec<Symbol> = self.unchecked_outages().into_iter().collect();
            tracing::warn!(
                unchecked_outages = unchecked,
                symbols = %short_list(&symbols),
                disconnected = self.disconnected.len(),
                "stopped while connections were down or just back: trades these symbols \
                 missed meanwhile were not looked up over REST, and their last windows may lack \
                 them (pulse produce backfills them on its next start)"
            );
        }
    }
}

#[async_trait]
impl TradeSource for BinanceSource {
    // Cancel-safe: every await below only waits; whatever it yields is
    // handled before the next await, and all state lives in `self`.
    async fn next_trades(&mut self, out: &mut Vec<Trade>) -> Result<bool, SourceError> {
        // What `out` held before is the caller's: wait for trades of our own.
        let before = out.len();
        loop {
            self.pump()?;
            self.record_lane_events();
            self.lanes.drain_ready(out);
            self.set_backlog_gauges();
            if out.len() > before {
                return Ok(true);
            }
            let catch_up_due = self.catch_ups.front().map(|(due, _)| *due);
            let relist_due = self.relisting.as_ref().and_then(Relisting::deadline);
            let listing = self.relisting.as_ref().is_some_and(Relisting::is_listing);
            tokio::select! {
                _ = self.inbox.wait() => {}
                _ = sleep_until_some(catch_up_due), if catch_up_due.is_some() => {}
                _ = sleep_until_some(relist_due), if relist_due.is_some() => {}
                Some(event) = self.events.recv() => self.on_event(event),
                Some(done) = self.backfills.join_next(), if !self.backfills.is_empty() => {
                    self.on_backfill(done)?;
                }
                listed = listed(&mut self.relisting), if listing => self.on_listed(listed),
                Some(read) = self.reading_clock.join_next(), if !self.reading_clock.is_empty() => {
                    self.on_clock_read(read);
                }
                failure = self.readers.failed() => return Err(failure),
            }
        }
    }

    fn is_live(&self) -> bool {
        true
    }

    fn followed(&self) -> Vec<Symbol> {
        self.symbols.clone()
    }

    fn arrived_event_ms(&mut self, _batch: &[Trade]) -> Option<i64> {
        self.arrivals.take(Instant::now())
    }

    fn holding(&self) -> Vec<Symbol> {
        let mut holding: BTreeSet<Symbol> = self.lanes.holding().collect();
        for &index in &self.disconnected {
            holding.extend(self.readers.symbols(index));
        }
        holding.into_iter().collect()
    }
}

async fn listed(relisting: &mut Option<Relisting>) -> Result<Vec<Symbol>, ListingError> {
    match relisting {
        Some(relisting) => relisting.listed().await,
        None => std::future::pending().await,
    }
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

async fn sleep_until_some(due: Option<Instant>) {
    if let Some(due) = due {
        tokio::time::sleep_until(due).await;
    }
}
