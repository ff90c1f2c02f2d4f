//! The pipeline driver: source → (trade sinks) → stage → window sinks
//! (→ checkpoint store). `pulse run`, `pulse produce` and `pulse consume`
//! all run this one loop.
//!
//! The loop waits on the source, on the stage's next timeout and on the
//! sinks' next writes in one `select!`, feeds the [`Stage`], drains its
//! events and hands windows to the sinks. Each window sink has its own
//! pending windows and [`Batching`](crate::Batching); a failed write keeps
//! them and is retried with one backoff policy, so nothing is dropped, and
//! counted once. With a [`CheckpointStore`], the stage's checkpoint is saved
//! at each interval right after every window emitted so far is stored: the
//! windows-then-positions order `pulse consume` restarts from.
//!
//! The driver records what it sees: trades received, duplicates, late
//! trades, rejected inputs, gaps in the aggregated stream, windows emitted,
//! sink errors and retries, and both latency histograms. Sources record
//! their own (malformed frames, queue drops, reconnects, gaps backfilled).
//!
//! ## Layout
//! - `stage`: the [`Stage`] trait, its [`Outcome`]s and [`TradeStage`].
//! - `slot`: one window sink with its pending windows.
//! - `sink_retry`: the backoff and counting every write shares.
//! - `failures`: the sinks that gave up while the pipeline stops.
//! - `summary`: [`PipelineSummary`].

mod clock_offset;
mod event_clock;
mod failures;
mod sink_retry;
mod slot;
mod stage;
mod summary;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use pulse_core::{Aggregator, Event, Symbol, Trade};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::retry::RetryPolicy;
use crate::sink::{CheckpointStore, SinkError, TradeSink, WindowSink};
use crate::source::{Source, SourceError, TradeSource};
use crate::time::now_ms;
use clock_offset::ClockOffset;
use event_clock::{EventClock, seconds_between};
use failures::Failures;
use sink_retry::SinkRetry;
use slot::{Slot, Written};

pub use stage::{Outcome, Stage, TradeStage};
pub use summary::PipelineSummary;

/// Rejected inputs logged one by one before only counting them.
const LOGGED_REJECTS: u64 = 100;

/// Why the pipeline stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The source failed for good. Windows already complete were still
    /// flushed to the sinks.
    #[error("source failed: {0}")]
    Source(#[from] SourceError),
    /// A sink failed with an error that retrying cannot fix, or was still
    /// failing at shutdown; `pending` items were not confirmed as stored
    /// (a write that got no answer may have been stored all the same).
    #[error("sink {sink} failed{}: {source}", not_stored(*.pending))]
    Sink {
        /// Which sink.
        sink: &'static str,
        /// Items that could not be stored.
        pending: usize,
        /// The last error.
        source: SinkError,
    },
}

/// How many items a failed sink left unstored, for its error message; a
/// failed marker, flush or checkpoint leaves none.
fn not_stored(pending: usize) -> String {
    match pending {
        0 => String::new(),
        // A write that got no answer may still have been stored.
        n => format!(" with {n} items not confirmed as stored"),
    }
}

/// Where checkpoints go and how often.
struct Checkpoints<C> {
    store: Box<dyn CheckpointStore<C>>,
    interval: Duration,
    next: Instant,
    retry: SinkRetry,
}

/// When the trade sinks get the stage's watermarks.
struct Markers {
    interval: Duration,
    next: Instant,
}

/// Assembles a pipeline; see [`Pipeline::run`].
pub struct Pipeline<S: Stage = TradeStage> {
    source: Box<dyn Source<S::Input>>,
    stage: S,
    trade_sinks: Vec<Box<dyn TradeSink>>,
    slots: Vec<Slot>,
    checkpoints: Option<Checkpoints<S::Checkpoint>>,
    markers: Option<Markers>,
    metrics: Metrics,
    retry: RetryPolicy,
    /// Retries per write once shutdown was requested.
    shutdown_retries: u32,
    progress_interval: Option<Duration>,
    /// Symbols whose metric series exist already.
    seen_symbols: BTreeSet<Symbol>,
    summary: PipelineSummary,
    /// Origin of the monotonic clock the stage sees: ms since this.
    started: Instant,
    clock_offset: ClockOffset,
    /// Window ends on the monotonic clock, for the latency histograms.
    event_clock: EventClock,
}

impl<S: Stage> std::fmt::Debug for Pipeline<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let trade_sinks: Vec<_> = self.trade_sinks.iter().map(|s| s.name()).collect();
        let window_sinks: Vec<_> = self.slots.iter().map(|s| s.sink.name()).collect();
        f.debug_struct("Pipeline")
            .field("trade_sinks", &trade_sinks)
            .field("window_sinks", &window_sinks)
            .field(
                "checkpoints",
                &self.checkpoints.as_ref().map(|c| c.store.name()),
            )
            .finish_non_exhaustive()
    }
}

impl Pipeline<TradeStage> {
    /// A pipeline reading trades from `source`, with no aggregator and no
    /// sinks yet.
    pub fn new(source: Box<dyn TradeSource>, metrics: Metrics) -> Self {
        Pipeline::with_stage(Box::new(source), TradeStage::default(), metrics)
    }

    /// Aggregates trades into windows with `aggregator`.
    pub fn aggregator(mut self, aggregator: Aggregator) -> Self {
        self.stage = TradeStage::new(aggregator);
        self
    }

    /// Follows each symbol's watermark with `aggregator` without emitting
    /// windows, for [`progress_markers`](Self::progress_markers).
    pub fn watermarks(mut self, aggregator: Aggregator) -> Self {
        self.stage = TradeStage::watermarks_only(aggregator);
        self
    }
}

impl<S: Stage> Pipeline<S> {
    /// A pipeline feeding `source`'s inputs to `stage`.
    pub fn with_stage(source: Box<dyn Source<S::Input>>, stage: S, metrics: Metrics) -> Self {
        metrics.init_rejected(stage.rejection_reasons());
        Pipeline {
            source,
            stage,
            trade_sinks: Vec::new(),
            slots: Vec::new(),
            checkpoints: None,
            markers: None,
            metrics,
            retry: RetryPolicy::default(),
            shutdown_retries: 5,
            progress_interval: None,
            seen_symbols: BTreeSet::new(),
            summary: PipelineSummary::default(),
            started: Instant::now(),
            clock_offset: ClockOffset::new(Duration::from_secs(10)),
            event_clock: EventClock::default(),
        }
    }

    /// Adds a sink for raw trades (e.g. Kafka); it sees each batch before
    /// the stage does, and holds the pipeline back while it fails.
    pub fn trade_sink(mut self, sink: Box<dyn TradeSink>) -> Self {
        self.trade_sinks.push(sink);
        self
    }

    /// Adds a sink for closed windows.
    pub fn window_sink(mut self, sink: Box<dyn WindowSink>) -> Self {
        self.slots.push(Slot::new(sink));
        self
    }

    /// Saves the stage's checkpoint in `store` every `interval`, each time
    /// right after storing every window emitted so far, and once more at the
    /// end with the state from before the final flush.
    pub fn checkpoints(
        mut self,
        store: Box<dyn CheckpointStore<S::Checkpoint>>,
        interval: Duration,
    ) -> Self {
        self.checkpoints = Some(Checkpoints {
            retry: SinkRetry::new(store.name(), self.retry, 0),
            store,
            interval,
            next: Instant::now() + interval,
        });
        self
    }

    /// Passes the stage's [`watermarks`](Stage::watermarks) to every trade
    /// sink at this interval, and once more at the end, so readers
    /// downstream can close windows (the Kafka producer's progress markers,
    /// written where they moved). Always after the trades they cover.
    pub fn progress_markers(mut self, interval: Duration) -> Self {
        self.markers = Some(Markers {
            interval,
            next: Instant::now() + interval,
        });
        self
    }

    /// Sets the backoff for failed writes.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets how often a failing write is retried once shutdown was
    /// requested, before the pipeline gives up on it. Default 5.
    pub fn shutdown_retries(mut self, retries: u32) -> Self {
        self.shutdown_retries = retries;
        self
    }

    /// Logs progress at this interval. Default: never.
    pub fn progress_interval(mut self, interval: Duration) -> Self {
        self.progress_interval = Some(interval);
        self
    }

    /// Runs until the source ends, fails or `shutdown` is cancelled, then
    /// flushes the stage and every sink and saves the last checkpoint. A
    /// source error is returned after the flush, so complete windows are
    /// never lost to it.
    pub async fn run(self, shutdown: CancellationToken) -> Result<PipelineSummary, PipelineError> {
        let (summary, result) = self.run_and_summarise(shutdown).await;
        result.map(|()| summary)
    }

    /// [`run`](Self::run), returning the totals even when it fails, so a
    /// caller can say how far it got before the error.
    pub async fn run_and_summarise(
        mut self,
        shutdown: CancellationToken,
    ) -> (PipelineSummary, Result<(), PipelineError>) {
        let result = self.run_to_end(shutdown).await;
        (self.summary, result)
    }

    async fn run_to_end(&mut self, shutdown: CancellationToken) -> Result<(), PipelineError> {
        if !self.slots.is_empty() && !self.stage.emits_windows() {
            let sinks: Vec<&str> = self.slots.iter().map(|s| s.sink.name()).collect();
            tracing::warn!(
                ?sinks,
                "window sinks without an aggregator get no windows; add one with Pipeline::aggregator"
            );
        }
        let names = self.trade_sinks.iter().map(|s| s.name());
        let names = names.chain(self.slots.iter().map(|s| s.sink.name()));
        for name in names.chain(self.checkpoints.iter().map(|c| c.store.name())) {
            self.metrics.init_sink(name);
        }
        for slot in &mut self.slots {
            slot.set_retry(self.retry, self.shutdown_retries);
        }
        if let Some(c) = self.checkpoints.as_mut() {
            c.retry = SinkRetry::new(c.store.name(), self.retry, self.shutdown_retries);
        }
        let source_result = self.pump(&shutdown).await;
        // A sink that gave up has spent its retries: the last writes skip
        // it, nothing is committed past what it lacks, and its error, with
        // the count it could not store, is the one reported.
        let mut failures = Failures::default();
        let source_result = match source_result {
            Err(e @ PipelineError::Sink { .. }) => {
                failures.note(Err(e));
                Ok(())
            }
            other => other,
        };
        // A recording that fails part-way (cut short, trailing garbage)
        // still ended: what it held is all there is, as `flush` takes it.
        // A live source that fails may be restarted and continue.
        let end_of_input = self.summary.source_ended
            || (matches!(source_result, Err(PipelineError::Source(_))) && !self.source.is_live());
        self.finish(end_of_input, &mut failures).await;
        if !failures.none()
            && let Err(e) = &source_result
        {
            tracing::error!(error = %e, "the source had failed too");
        }
        failures.into_result()?;
        source_result?;
        self.log_progress();
        Ok(())
    }

    /// The writes after the main loop: markers, the windows still open, the
    /// sinks' buffers and the last checkpoint, each with the bounded retries
    /// of shutdown. A sink that fails is skipped from then on.
    async fn finish(&mut self, end_of_input: bool, failures: &mut Failures) {
        let done = CancellationToken::new();
        done.cancel();
        // Before the flush, which would close every window "for ever": a
        // live source only vouches for what its watermark says.
        if !self.trade_sinks.iter().any(|s| failures.failed(s.name())) {
            failures.note(self.write_markers(end_of_input, &done).await);
        }
        // Taken before the flush: after a restart the flushed windows are
        // rebuilt and completed by later inputs, and the fuller row wins.
        let checkpoint = self.stage.checkpoint();
        self.stage.flush();
        self.drain_events();
        self.summary.still_missing = self.stage.still_missing();
        for slot in &mut self.slots {
            let name = slot.sink.name();
            if failures.failed(name) {
                failures.set_pending(name, slot.pending());
                continue;
            }
            let stored = |w: Written<'_>| record_stored(&self.metrics, &mut self.summary, w);
            failures.note(slot.write_all(&self.metrics, &done, stored).await);
        }
        for sink in &mut self.trade_sinks {
            if !failures.failed(sink.name()) {
                let flushed = sink.flush().await;
                failures.note(flushed.map_err(|source| PipelineError::Sink {
                    sink: sink.name(),
                    pending: 0,
                    source,
                }));
            }
        }
        for slot in &mut self.slots {
            if !failures.failed(slot.sink.name()) {
                let flushed = slot.sink.flush().await;
                failures.note(flushed.map_err(|source| PipelineError::Sink {
                    sink: slot.sink.name(),
                    pending: 0,
                    source,
                }));
            }
        }
        if let Some(checkpoint) = checkpoint
            && failures.none()
        {
            failures.note(self.commit(checkpoint, &done).await);
        }
    }

    /// The main loop; returns when the source ends or fails, or on shutdown.
    async fn pump(&mut self, shutdown: &CancellationToken) -> Result<(), PipelineError> {
        let live = self.source.is_live();
        let mut inputs: Vec<S::Input> = Vec::with_capacity(1024);
        let mut next_progress = self.progress_interval.map(|i| Instant::now() + i);
        loop {
            inputs.clear();
            // Only live data closes windows by elapsed time; a replay's
            // clock is the data itself.
            let timeout = if live {
                self.stage.poll_timeout()
            } else {
                None
            };
            let stage_due = timeout.map(|t| self.started + Duration::from_millis(t.max(0) as u64));
            let write_due = self.slots.iter().filter_map(Slot::due).min();
            let commit_due = self.checkpoints.as_ref().map(|c| c.next);
            let markers_due = self.markers.as_ref().map(|m| m.next);
            let wake = [stage_due, write_due, commit_due, markers_due, next_progress]
                .into_iter()
                .flatten()
                .min();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ok(()),
                more = self.source.next_batch(&mut inputs) => {
                    // Inputs delivered together with an error still count.
                    self.handle(&inputs, shutdown).await?;
                    if !more? {
                        self.summary.source_ended = true;
                        return Ok(());
                    }
                }
                _ = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {}
            }
            if live {
                // Before idle closing and markers: a gap still being filled
                // keeps its symbol's windows open.
                let holding = self.source.holding();
                if !holding.is_empty() {
                    self.stage.input_held(&holding, self.clock_ms());
                }
            }
            if stage_due.is_some_and(|due| Instant::now() >= due) {
                self.stage.advance(self.clock_ms());
                self.drain_events();
                for symbol in self.seen_symbols.clone() {
                    self.record_watermark_lag(symbol);
                }
            }
            self.write_due(shutdown).await?;
            if markers_due.is_some_and(|due| Instant::now() >= due) {
                self.write_markers(false, shutdown).await?;
            }
            if commit_due.is_some_and(|due| Instant::now() >= due) {
                if let Some(c) = self.checkpoints.as_mut() {
                    c.next = Instant::now() + c.interval;
                }
                if let Some(checkpoint) = self.stage.checkpoint() {
                    self.write_all(shutdown).await?;
                    self.commit(checkpoint, shutdown).await?;
                }
            }
            if let Some(next) = next_progress.as_mut().filter(|n| Instant::now() >= **n) {
                *next = Instant::now() + self.progress_interval.unwrap_or_default();
                self.log_progress();
            }
        }
    }

    /// Passes one batch to the trade sinks, then through the stage.
    async fn handle(
        &mut self,
        inputs: &[S::Input],
        shutdown: &CancellationToken,
    ) -> Result<(), PipelineError> {
        if inputs.is_empty() {
            return Ok(());
        }
        // Before the trade sinks, which may retry: latencies start here.
        let arrived = Instant::now();
        let trades = S::trades(inputs);
        if !trades.is_empty() {
            if self.source.is_live()
                && let Some(oldest) = self.source.arrived_event_ms(trades)
            {
                self.clock_offset.observe(now_ms(), oldest, &self.metrics);
            }
            self.write_trades(trades, shutdown).await?;
        }
        let now = self.source.is_live().then(|| self.clock_ms());
        let mut counts = summary::BatchCounts::default();
        for input in inputs {
            match self.stage.handle(input, now) {
                Outcome::Accepted(s) => counts.of(s).accepted += 1,
                Outcome::Duplicate(s) => counts.of(s).duplicates += 1,
                Outcome::Late(s) => counts.of(s).late += 1,
                Outcome::Replayed => self.summary.replayed += 1,
                Outcome::Marker => self.summary.markers += 1,
                Outcome::Control => {}
                Outcome::Rejected { reason, error } => self.rejected(reason, &error),
            }
        }
        // Per symbol, not per trade: keeps label lookups off the hot path.
        for (symbol, c) in counts.into_map() {
            if now.is_some()
                && let Some(newest) = self.stage.newest_trade_ms(symbol)
            {
                self.event_clock.handled(symbol, newest, arrived);
            }
            if self.seen_symbols.insert(symbol) {
                self.metrics.init_symbol(symbol.as_str());
                if self.stage.emits_windows() {
                    self.metrics.init_symbol_windows(symbol.as_str());
                }
            }
            let label = Metrics::symbol(symbol.as_str());
            self.summary.add(&c);
            self.metrics
                .trades_received
                .get_or_create(&label)
                .inc_by(c.received());
            if c.duplicates > 0 {
                self.metrics
                    .duplicates
                    .get_or_create(&label)
                    .inc_by(c.duplicates);
            }
            if c.late > 0 {
                self.metrics
                    .late_trades
                    .get_or_create(&label)
                    .inc_by(c.late);
            }
            self.record_watermark_lag(symbol);
        }
        self.drain_events();
        Ok(())
    }

    /// The stage's clock: monotonic ms since the pipeline was built. Never
    /// compared with trade times, so the machine's wall clock cannot skew it.
    fn clock_ms(&self) -> i64 {
        self.started.elapsed().as_millis() as i64
    }

    fn record_watermark_lag(&self, symbol: Symbol) {
        if let Some(lag) = self.stage.watermark_lag_ms(symbol) {
            self.metrics
                .watermark_lag
                .get_or_create(&Metrics::symbol(symbol.as_str()))
                .set(lag as f64 / 1000.0);
        }
    }

    fn rejected(&mut self, reason: &'static str, error: &str) {
        self.metrics.reject(reason);
        self.summary.rejected += 1;
        if self.summary.rejected <= LOGGED_REJECTS {
            tracing::warn!(reason, error, "skipping a bad input");
        }
        if self.summary.rejected == LOGGED_REJECTS {
            tracing::warn!(
                "further bad inputs are counted (pulse_frames_rejected_total) but not logged"
            );
        }
    }

    /// Every trade sink takes the batch, in order, before anything else.
    async fn write_trades(
        &mut self,
        trades: &[Trade],
        shutdown: &CancellationToken,
    ) -> Result<(), PipelineError> {
        for sink in &mut self.trade_sinks {
            let mut retry = SinkRetry::new(sink.name(), self.retry, self.shutdown_retries);
            while let Err(e) = sink.write_trades(trades).await {
                retry.wait(e, trades.len(), &self.metrics, shutdown).await?;
            }
        }
        Ok(())
    }

    /// Hands the stage's watermarks to every trade sink.
    async fn write_markers(
        &mut self,
        end_of_input: bool,
        shutdown: &CancellationToken,
    ) -> Result<(), PipelineError> {
        let now = self.source.is_live().then(|| self.clock_ms());
        let Some(markers) = self.markers.as_mut() else {
            return Ok(());
        };
        markers.next = Instant::now() + markers.interval;
        let mut watermarks = self.stage.watermarks(now, end_of_input);
        if now.is_some() {
            vouch_for_silent(
                &mut watermarks,
                self.source.followed(),
                &self.source.holding(),
            );
        }
        if watermarks.is_empty() {
            return Ok(());
        }
        for sink in &mut self.trade_sinks {
            let mut retry = SinkRetry::new(sink.name(), self.retry, self.shutdown_retries);
            while let Err(e) = sink.write_watermarks(&watermarks).await {
                retry.wait(e, 0, &self.metrics, shutdown).await?;
            }
        }
        Ok(())
    }

    /// Moves the stage's events into the slots, metrics and logs.
    fn drain_events(&mut self) {
        let live = self.source.is_live();
        let emitted_at = Instant::now();
        while let Some(event) = self.stage.poll() {
            match event {
                Event::Window(w) => {
                    let label = Metrics::symbol(w.symbol.as_str());
                    self.metrics.windows_emitted.get_or_create(&label).inc();
                    if w.version > 1 {
                        self.metrics.windows_reemitted.get_or_create(&label).inc();
                    }
                    // A window placed before the run began (a time far
                    // behind) says nothing of the pipeline's delay.
                    let end = live
                        .then(|| self.event_clock.instant_of(w.symbol, w.end_ms))
                        .flatten()
                        .filter(|end| *end >= self.started);
                    if let Some(end) = end {
                        self.metrics
                            .window_emit_latency
                            .observe(seconds_between(end, emitted_at));
                    }
                    self.summary.windows += 1;
                    if w.version > 1 {
                        self.summary.reemitted += 1;
                    } else {
                        *self.summary.windows_by_symbol.entry(w.symbol).or_default() += 1;
                    }
                    for slot in &mut self.slots {
                        slot.push(w.clone(), end);
                    }
                }
                Event::Late(late) if late.corrected => {
                    tracing::debug!(
                        symbol = %late.trade.symbol,
                        id = late.trade.id,
                        window_start_ms = late.window_start_ms,
                        "late trade after its window closed; window corrected"
                    );
                }
                Event::Late(late) => {
                    self.metrics
                        .late_trades_uncorrected
                        .get_or_create(&Metrics::symbol(late.trade.symbol.as_str()))
                        .inc();
                    self.summary.late_uncorrected += 1;
                    // Powers of ten: visible without flooding the log.
                    let total = self.summary.late_uncorrected;
                    if is_power_of_ten(total) {
                        tracing::warn!(
                            symbol = %late.trade.symbol,
                            id = late.trade.id,
                            trade_time_ms = late.trade.trade_time_ms,
                            // Far behind means one trade far ahead moved the
                            // clock: a bad timestamp, or files out of order.
                            behind_watermark_ms =
                                late.watermark_ms.saturating_sub(late.trade.trade_time_ms),
                            total,
                            "late trade too late to correct its window: counted, in no row"
                        );
                    }
                }
                Event::Rejected(r) => {
                    self.summary.rejected_windows += 1;
                    self.metrics
                        .reject_window(r.symbol.as_str(), r.error.reason());
                    tracing::warn!(symbol = %r.symbol, window_start_ms = r.start_ms, trades = r.trade_count, error = %r.error, "window cannot be represented; no row written");
                }
                Event::TimeOutlier(outlier) => {
                    let trade = outlier.trade;
                    self.metrics
                        .trade_time_outliers
                        .get_or_create(&Metrics::symbol(trade.symbol.as_str()))
                        .inc();
                    self.summary.time_outliers += 1;
                    // It counted as accepted when it came, held ahead.
                    self.summary.accepted = self.summary.accepted.saturating_sub(1);
                    let total = self.summary.time_outliers;
                    if is_power_of_ten(total) {
                        tracing::warn!(
                            symbol = %trade.symbol,
                            id = trade.id,
                            trade_time_ms = trade.trade_time_ms,
                            symbol_time_ms = outlier.newest_ms,
                            next_id = outlier.next.id,
                            next_trade_time_ms = outlier.next.trade_time_ms,
                            total,
                            "trade time far ahead of its symbol's, and the next trade is back in time: a wrong timestamp; counted, in no window, and it moved no clock (the trades after it are windowed as usual)"
                        );
                    }
                }
                Event::Gap { symbol, missing } => {
                    self.summary.gaps += 1;
                    self.metrics
                        .stream_gaps
                        .get_or_create(&Metrics::symbol(symbol.as_str()))
                        .inc();
                    // A file slightly out of order has thousands, filled at once.
                    let total = self.summary.gaps;
                    if is_power_of_ten(total) {
                        tracing::warn!(
                            %symbol,
                            first = missing.first,
                            last = missing.last,
                            total,
                            "trade id gap (logged at the 1st, 10th, 100th…; all are counted in pulse_stream_gaps_total)"
                        );
                    }
                }
            }
        }
    }

    /// Writes each slot that is due; waits for any that is full.
    async fn write_due(&mut self, shutdown: &CancellationToken) -> Result<(), PipelineError> {
        for slot in &mut self.slots {
            let stored = |w: Written<'_>| record_stored(&self.metrics, &mut self.summary, w);
            if slot.full() {
                slot.write_all(&self.metrics, shutdown, stored).await?;
            } else {
                slot.write_if_due(&self.metrics, shutdown, stored).await?;
            }
        }
        Ok(())
    }

    /// Writes every pending window of every slot.
    async fn write_all(&mut self, shutdown: &CancellationToken) -> Result<(), PipelineError> {
        for slot in &mut self.slots {
            let stored = |w: Written<'_>| record_stored(&self.metrics, &mut self.summary, w);
            slot.write_all(&self.metrics, shutdown, stored).await?;
        }
        Ok(())
    }

    /// Saves `checkpoint`, retrying like any write.
    async fn commit(
        &mut self,
        checkpoint: S::Checkpoint,
        shutdown: &CancellationToken,
    ) -> Result<(), PipelineError> {
        let Some(c) = self.checkpoints.as_mut() else {
            return Ok(());
        };
        while let Err(e) = c.store.save(&checkpoint).await {
            c.retry.wait(e, 0, &self.metrics, shutdown).await?;
        }
        c.retry.succeeded();
        self.stage.committed(&checkpoint);
        self.summary.checkpoints += 1;
        Ok(())
    }

    fn log_progress(&self) {
        if self.progress_interval.is_none() {
            return;
        }
        let s = &self.summary;
        tracing::info!(
            trades = s.trades,
            windows = s.windows,
            duplicates = s.duplicates,
            late = s.late_trades,
            too_late = s.late_uncorrected,
            rejected = s.rejected,
            replayed = s.replayed,
            position = %self.stage.progress(),
            "progress"
        );
    }
}

/// Adds the followed symbols that have not traded, and are not held, at the
/// oldest time vouched for any symbol: nothing of theirs has come before
/// it. Their markers tell a restarted producer they were followed, so it
/// looks up what they traded while it was down.
fn vouch_for_silent(
    watermarks: &mut BTreeMap<Symbol, i64>,
    followed: Vec<Symbol>,
    holding: &[Symbol],
) {
    let Some(oldest) = watermarks.values().copied().min() else {
        return;
    };
    for symbol in followed {
        if !holding.contains(&symbol) {
            watermarks.entry(symbol).or_insert(oldest);
        }
    }
}

/// 1, 10, 100, ...: when a repeated warning is logged again.
fn is_power_of_ten(n: u64) -> bool {
    n > 0 && 10u64.pow(n.ilog10()) == n
}

/// Metrics and totals for windows a sink has stored.
fn record_stored(metrics: &Metrics, summary: &mut PipelineSummary, written: Written<'_>) {
    *summary.writes.entry(written.sink).or_default() += 1;
    let stored_at = Instant::now();
    let h = metrics
        .window_store_latency
        .get_or_create(&Metrics::sink(written.sink));
    for end in written.window_ends.iter().flatten() {
        h.observe(seconds_between(*end, stored_at));
    }
}

#[cfg(test)]
mod tests;
