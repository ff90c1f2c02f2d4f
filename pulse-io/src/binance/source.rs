//! [`BinanceSource`]: the [`TradeSource`] over Binance's live aggTrade streams.

use std::collections::VecDeque;
use std::sync::Arc;

use async_trait::async_trait;
use pulse_core::{BackfillOutcome, BackfillRequest, IdRange, LaneEvent, Lanes, Symbol, Trade};
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::backfill;
use super::config::BinanceConfig;
use super::connect::tls_config;
use super::inbox::Inbox;
use super::reader::{ShardEvent, ShardReader, connect_at_startup};
use super::rest::RestClient;
use crate::{Metrics, SourceError, TradeSource};

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
    readers: JoinSet<()>,
    backfills: JoinSet<(BackfillRequest, BackfillOutcome)>,
    incoming: Vec<Trade>,
    evicted: Vec<(Symbol, IdRange)>,
    /// Reconnected symbols, and when to backfill those still quiet.
    catch_ups: VecDeque<(Instant, Vec<Symbol>)>,
    _stop: DropGuard,
}

impl std::fmt::Debug for BinanceSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinanceSource")
            .field("symbols", &self.config.symbols.len())
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
        if config.symbols.is_empty() {
            config.symbols = super::resolve_all_perpetuals(&config).await?;
        }
        let config = Arc::new(config);
        let tls = tls_config();
        let inbox = Arc::new(Inbox::new(config.queue_capacity, metrics.clone()));
        let rest = Arc::new(RestClient::new(&config.rest_base, &config.backfill)?);
        let (events_tx, events) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let mut readers = JoinSet::new();
        let plan = pulse_core::plan_shards(
            &config.ws_base,
            &config.symbols,
            config.streams_per_connection,
        );
        let connections = plan.len();
        for shard in plan {
            // On error, dropping `readers` stops the shards already started.
            let ws = connect_at_startup(&shard, &config, &tls).await?;
            let reader = ShardReader {
                shard,
                config: config.clone(),
                tls: tls.clone(),
                inbox: inbox.clone(),
                events: events_tx.clone(),
                metrics: metrics.clone(),
                cancel: cancel.clone(),
                rejected: 0,
            };
            readers.spawn(reader.run(ws));
        }
        tracing::info!(
            symbols = config.symbols.len(),
            connections,
            "streaming Binance aggTrades"
        );
        let mut lanes = Lanes::new(config.backfill.rounds);
        let mut catch_ups = VecDeque::new();
        if !config.resume_after.is_empty() {
            for (&symbol, &last_id) in &config.resume_after {
                tracing::info!(%symbol, last_id, "resuming after the last trade already delivered");
                lanes.resume_after(symbol, last_id, config.backfill.max_resume_backfill);
            }
            // Like a reconnect: a busy symbol's first trade shows its gap;
            // the quiet ones are backfilled blindly a little later.
            let symbols = config.resume_after.keys().copied().collect();
            catch_ups.push_back((Instant::now() + config.backfill.catch_up_delay, symbols));
        }
        Ok(BinanceSource {
            lanes,
            metrics,
            config,
            inbox,
            events,
            rest,
            readers,
            backfills: JoinSet::new(),
            incoming: Vec::new(),
            evicted: Vec::new(),
            catch_ups,
            _stop: cancel.drop_guard(),
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &BinanceConfig {
        &self.config
    }

    /// Feeds everything waiting into the lanes and starts the backfills they ask for.
    fn pump(&mut self) -> Result<(), SourceError> {
        self.drain_inbox();
        while let Ok(event) = self.events.try_recv() {
            self.on_event(event);
        }
        let now = Instant::now();
        while self.catch_ups.front().is_some_and(|(due, _)| *due <= now) {
            if let Some((_, symbols)) = self.catch_ups.pop_front() {
                self.lanes.catch_up_quiet(&symbols);
            }
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

    /// What the lanes saw, as metrics and logs.
    fn record_lane_events(&mut self) {
        let metrics = &self.metrics;
        while let Some(event) = self.lanes.poll_event() {
            match event {
                LaneEvent::Duplicate(symbol) => {
                    metrics
                        .duplicates
                        .get_or_create(&Metrics::symbol(symbol.as_str()))
                        .inc();
                }
                LaneEvent::Gap { symbol, missing } => {
                    metrics
                        .gaps
                        .get_or_create(&Metrics::symbol(symbol.as_str()))
                        .inc();
                    tracing::info!(%symbol, first = missing.first, last = missing.last, missing = missing.len(), "trade id gap; backfilling");
                }
                LaneEvent::Backfilled { symbol, trades } => {
                    metrics
                        .trades_backfilled
                        .get_or_create(&Metrics::symbol(symbol.as_str()))
                        .inc_by(trades);
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
                LaneEvent::Unfilled {
                    symbol,
                    missing,
                    reason,
                } => {
                    metrics
                        .trades_unfilled
                        .get_or_create(&Metrics::symbol(symbol.as_str()))
                        .inc_by(missing.len());
                    tracing::warn!(%symbol, first = missing.first, last = missing.last, lost = missing.len(), reason, "gap left unfilled");
                }
            }
        }
    }

    fn drain_inbox(&mut self) {
        self.inbox.drain(&mut self.incoming, &mut self.evicted);
        for (symbol, range) in self.evicted.drain(..) {
            self.lanes.evicted(symbol, range);
        }
        for trade in self.incoming.drain(..) {
            self.lanes.live(trade);
        }
    }

    fn on_event(&mut self, event: ShardEvent) {
        match event {
            ShardEvent::Reconnected(symbols) => {
                // Trades the old connection queued came first; they must not
                // count as live trades after the reconnect.
                self.drain_inbox();
                self.lanes.reconnected(&symbols);
                let due = Instant::now() + self.config.backfill.catch_up_delay;
                self.catch_ups.push_back((due, symbols));
            }
        }
    }

    fn on_backfill(
        &mut self,
        done: Result<(BackfillRequest, BackfillOutcome), JoinError>,
    ) -> Result<(), SourceError> {
        let (request, outcome) =
            done.map_err(|e| SourceError::Other(format!("backfill task failed: {e}")))?;
        tracing::debug!(symbol = %request.symbol, from = request.from_id, fetched = outcome.trades.len(), "backfill finished");
        self.lanes.backfilled(request, outcome);
        Ok(())
    }
}

#[async_trait]
impl TradeSource for BinanceSource {
    // Cancel-safe: every await below only waits; whatever it yields is
    // handled before the next await, and all state lives in `self`.
    async fn next_trades(&mut self, out: &mut Vec<Trade>) -> Result<bool, SourceError> {
        loop {
            self.pump()?;
            self.record_lane_events();
            self.lanes.drain_ready(out);
            if !out.is_empty() {
                return Ok(true);
            }
            let catch_up_due = self.catch_ups.front().map(|(due, _)| *due);
            tokio::select! {
                _ = self.inbox.wait() => {}
                _ = sleep_until_some(catch_up_due), if catch_up_due.is_some() => {}
                Some(event) = self.events.recv() => self.on_event(event),
                Some(done) = self.backfills.join_next(), if !self.backfills.is_empty() => {
                    self.on_backfill(done)?;
                }
                Some(ended) = self.readers.join_next(), if !self.readers.is_empty() => {
                    return Err(SourceError::Other(format!("a Binance reader task stopped: {ended:?}")));
                }
            }
        }
    }

    fn is_live(&self) -> bool {
        true
    }
}

async fn sleep_until_some(due: Option<Instant>) {
    if let Some(due) = due {
        tokio::time::sleep_until(due).await;
    }
}
