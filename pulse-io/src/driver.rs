//! The driver loop: source → (trade sinks) → aggregator → window sinks.
//!
//! The loop waits for trades or for the aggregator's next timeout, feeds
//! pulse-core, drains its events and hands results to the sinks. A failing
//! sink keeps its batch and is retried with backoff, so nothing is dropped.
//!
//! The driver records the metrics it can see: trades received, duplicates,
//! late trades, gaps in the aggregated stream, windows emitted, sink errors
//! and retries, and both latency histograms. Sources record their own
//! (malformed frames, queue drops, reconnects, gaps found and backfilled).

mod sink_retry;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pulse_core::{Aggregator, Event, Symbol, Trade, TradeOutcome, Window};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::retry::RetryPolicy;
use crate::sink::{SinkError, TradeSink, WindowSink};
use crate::source::{SourceError, TradeSource};
use sink_retry::SinkRetry;

/// Why the pipeline stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The source failed for good. Windows already complete were still
    /// flushed to the sinks.
    #[error("source failed: {0}")]
    Source(#[from] SourceError),
    /// A sink failed with an error that retrying cannot fix, or was still
    /// failing at shutdown; `pending` items were not stored.
    #[error("sink {sink} failed with {pending} items not stored: {source}")]
    Sink {
        /// Which sink.
        sink: &'static str,
        /// Items that could not be stored.
        pending: usize,
        /// The last error.
        source: SinkError,
    },
}

/// Totals for the exit summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PipelineSummary {
    /// Trades received from the source.
    pub trades: u64,
    /// Windows emitted (including re-emissions).
    pub windows: u64,
    /// Windows emitted, by symbol.
    pub windows_by_symbol: BTreeMap<Symbol, u64>,
    /// Late trades.
    pub late_trades: u64,
    /// Duplicate trades dropped.
    pub duplicates: u64,
    /// Sequence gaps seen by the aggregator.
    pub gaps: u64,
    /// True when the source reached its end (a finished replay).
    pub source_ended: bool,
}

/// Assembles a pipeline; see [`Pipeline::run`].
pub struct Pipeline {
    source: Box<dyn TradeSource>,
    aggregator: Option<Aggregator>,
    trade_sinks: Vec<Box<dyn TradeSink>>,
    window_sinks: Vec<Box<dyn WindowSink>>,
    metrics: Metrics,
    retry: RetryPolicy,
    /// Retries per sink batch once shutdown was requested.
    shutdown_retries: u32,
    /// Symbols whose metric series exist already.
    seen_symbols: BTreeSet<Symbol>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let trade_sinks: Vec<_> = self.trade_sinks.iter().map(|s| s.name()).collect();
        let window_sinks: Vec<_> = self.window_sinks.iter().map(|s| s.name()).collect();
        f.debug_struct("Pipeline")
            .field("aggregator", &self.aggregator.is_some())
            .field("trade_sinks", &trade_sinks)
            .field("window_sinks", &window_sinks)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// A pipeline reading from `source`, with no aggregator and no sinks yet.
    pub fn new(source: Box<dyn TradeSource>, metrics: Metrics) -> Self {
        Pipeline {
            source,
            aggregator: None,
            trade_sinks: Vec::new(),
            window_sinks: Vec::new(),
            metrics,
            retry: RetryPolicy::default(),
            shutdown_retries: 5,
            seen_symbols: BTreeSet::new(),
        }
    }

    /// Aggregates trades into windows with `aggregator`.
    pub fn aggregator(mut self, aggregator: Aggregator) -> Self {
        self.aggregator = Some(aggregator);
        self
    }

    /// Adds a sink for raw trades (e.g. Kafka).
    pub fn trade_sink(mut self, sink: Box<dyn TradeSink>) -> Self {
        self.trade_sinks.push(sink);
        self
    }

    /// Adds a sink for closed windows.
    pub fn window_sink(mut self, sink: Box<dyn WindowSink>) -> Self {
        self.window_sinks.push(sink);
        self
    }

    /// Sets the sink retry backoff.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets how often a failing sink batch is retried once shutdown was
    /// requested, before the pipeline gives up on it. Default 5.
    pub fn shutdown_retries(mut self, retries: u32) -> Self {
        self.shutdown_retries = retries;
        self
    }

    /// Runs until the source ends, fails or `shutdown` is cancelled, then
    /// flushes open windows and every sink. A source error is returned after
    /// the flush, so complete windows are never lost to it.
    pub async fn run(
        mut self,
        shutdown: CancellationToken,
    ) -> Result<PipelineSummary, PipelineError> {
        let mut summary = PipelineSummary::default();
        let mut windows: Vec<Window> = Vec::new();
        let sinks = self.trade_sinks.iter().map(|s| s.name());
        for name in sinks.chain(self.window_sinks.iter().map(|s| s.name())) {
            self.metrics.init_sink(name);
        }
        let source_result = self
            .consume_source(&mut windows, &mut summary, &shutdown)
            .await;
        if let Some(agg) = self.aggregator.as_mut() {
            agg.flush();
        }
        self.drain_events(&mut windows, &mut summary);
        // Shutdown may already be requested: retry a bounded number of times.
        let done = CancellationToken::new();
        done.cancel();
        self.store_windows(&mut windows, &done).await?;
        for sink in &mut self.trade_sinks {
            sink.flush().await.map_err(|source| PipelineError::Sink {
                sink: sink.name(),
                pending: 0,
                source,
            })?;
        }
        for sink in &mut self.window_sinks {
            sink.flush().await.map_err(|source| PipelineError::Sink {
                sink: sink.name(),
                pending: 0,
                source,
            })?;
        }
        source_result?;
        Ok(summary)
    }

    /// The main loop; returns when the source ends or fails, or on shutdown.
    async fn consume_source(
        &mut self,
        windows: &mut Vec<Window>,
        summary: &mut PipelineSummary,
        shutdown: &CancellationToken,
    ) -> Result<(), PipelineError> {
        let live = self.source.is_live();
        let mut trades: Vec<Trade> = Vec::with_capacity(1024);
        loop {
            trades.clear();
            // Only live data may close windows by the wall clock; a replay's
            // clock is the data itself.
            let timeout = self
                .aggregator
                .as_ref()
                .filter(|_| live)
                .and_then(Aggregator::poll_timeout);
            let sleep = tokio::time::sleep(timeout.map_or(Duration::from_secs(3600), |t| {
                Duration::from_millis(t.saturating_sub(now_ms()).max(0) as u64)
            }));
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ok(()),
                more = self.source.next_trades(&mut trades) => {
                    // Trades delivered together with an error still count.
                    self.handle_trades(&trades, windows, summary, shutdown).await?;
                    if !more? {
                        summary.source_ended = true;
                        return Ok(());
                    }
                }
                _ = sleep, if timeout.is_some() => {
                    if let Some(agg) = self.aggregator.as_mut() {
                        agg.advance(now_ms());
                    }
                    self.drain_events(windows, summary);
                    self.store_windows(windows, shutdown).await?;
                }
            }
        }
    }

    async fn handle_trades(
        &mut self,
        trades: &[Trade],
        windows: &mut Vec<Window>,
        summary: &mut PipelineSummary,
        shutdown: &CancellationToken,
    ) -> Result<(), PipelineError> {
        if trades.is_empty() {
            return Ok(());
        }
        summary.trades += trades.len() as u64;
        for t in trades {
            if self.seen_symbols.insert(t.symbol) {
                self.metrics.init_symbol(t.symbol.as_str());
            }
        }
        count_by_symbol(trades.iter().map(|t| t.symbol), |symbol, n| {
            self.metrics
                .trades_received
                .get_or_create(&Metrics::symbol(symbol.as_str()))
                .inc_by(n);
        });
        for sink in &mut self.trade_sinks {
            let mut retry = SinkRetry::new(
                sink.name(),
                &self.metrics,
                self.retry,
                self.shutdown_retries,
                trades.len(),
            );
            while let Err(e) = sink.write_trades(trades).await {
                retry.wait(e, shutdown).await?;
            }
        }
        if let Some(agg) = self.aggregator.as_mut() {
            let duplicates = trades
                .iter()
                .filter(|t| agg.handle_trade(**t) == TradeOutcome::Duplicate)
                .map(|t| t.symbol);
            count_by_symbol(duplicates, |symbol, n| {
                summary.duplicates += n;
                self.metrics
                    .duplicates
                    .get_or_create(&Metrics::symbol(symbol.as_str()))
                    .inc_by(n);
            });
        }
        self.drain_events(windows, summary);
        self.store_windows(windows, shutdown).await
    }

    /// Moves the aggregator's events into `windows`, metrics and logs.
    fn drain_events(&mut self, windows: &mut Vec<Window>, summary: &mut PipelineSummary) {
        let live = self.source.is_live();
        let Some(agg) = self.aggregator.as_mut() else {
            return;
        };
        while let Some(event) = agg.poll() {
            match event {
                Event::Window(w) => {
                    self.metrics
                        .windows_emitted
                        .get_or_create(&Metrics::symbol(w.symbol.as_str()))
                        .inc();
                    if live {
                        self.metrics
                            .window_emit_latency
                            .observe(seconds_since(w.end_ms));
                    }
                    summary.windows += 1;
                    *summary.windows_by_symbol.entry(w.symbol).or_default() += 1;
                    windows.push(w);
                }
                Event::Late(late) => {
                    summary.late_trades += 1;
                    self.metrics
                        .late_trades
                        .get_or_create(&Metrics::symbol(late.trade.symbol.as_str()))
                        .inc();
                    tracing::debug!(
                        symbol = %late.trade.symbol,
                        id = late.trade.id,
                        window_start_ms = late.window_start_ms,
                        "late trade after its window closed"
                    );
                }
                Event::Gap { symbol, missing } => {
                    summary.gaps += 1;
                    self.metrics
                        .stream_gaps
                        .get_or_create(&Metrics::symbol(symbol.as_str()))
                        .inc();
                    tracing::warn!(%symbol, first = missing.first, last = missing.last, "trade id gap");
                }
            }
        }
    }

    /// Hands `windows` to every window sink, retrying failures, then clears it.
    async fn store_windows(
        &mut self,
        windows: &mut Vec<Window>,
        shutdown: &CancellationToken,
    ) -> Result<(), PipelineError> {
        if windows.is_empty() {
            return Ok(());
        }
        let live = self.source.is_live();
        for sink in &mut self.window_sinks {
            let name = sink.name();
            let mut retry = SinkRetry::new(
                name,
                &self.metrics,
                self.retry,
                self.shutdown_retries,
                windows.len(),
            );
            while let Err(e) = sink.write_windows(windows).await {
                retry.wait(e, shutdown).await?;
            }
            if live {
                let h = self
                    .metrics
                    .window_store_latency
                    .get_or_create(&Metrics::sink(name));
                for w in windows.iter() {
                    h.observe(seconds_since(w.end_ms));
                }
            }
        }
        windows.clear();
        Ok(())
    }
}

/// Calls `f` once per symbol with how many items had it. Batches are
/// usually one symbol, so this keeps label lookups off the per-trade path.
fn count_by_symbol(symbols: impl Iterator<Item = Symbol>, mut f: impl FnMut(Symbol, u64)) {
    let mut counts: BTreeMap<Symbol, u64> = BTreeMap::new();
    for symbol in symbols {
        *counts.entry(symbol).or_default() += 1;
    }
    for (symbol, n) in counts {
        f(symbol, n);
    }
}

/// Wall-clock ms since the epoch. Only the io layer reads the clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn seconds_since(ms: i64) -> f64 {
    (now_ms() - ms).max(0) as f64 / 1000.0
}

#[cfg(test)]
mod tests;
