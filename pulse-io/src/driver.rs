//! The driver loop: source → (trade sinks) → aggregator → window sinks.
//!
//! The loop waits for trades or for the aggregator's next timeout, feeds
//! pulse-core, drains its events and hands results to the sinks. A failing
//! sink keeps its batch and is retried with backoff, so nothing is dropped.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pulse_core::{Aggregator, Event, Symbol, Trade, Window};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::retry::RetryPolicy;
use crate::sink::{SinkError, TradeSink, WindowSink};
use crate::source::{SourceError, TradeSource};

/// Why the pipeline stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The source failed for good.
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
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("aggregator", &self.aggregator.is_some())
            .field(
                "trade_sinks",
                &self
                    .trade_sinks
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>(),
            )
            .field(
                "window_sinks",
                &self
                    .window_sinks
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>(),
            )
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

    /// Runs until the source ends or `shutdown` is cancelled, then flushes
    /// open windows and every sink.
    pub async fn run(
        mut self,
        shutdown: CancellationToken,
    ) -> Result<PipelineSummary, PipelineError> {
        let live = self.source.is_live();
        let mut summary = PipelineSummary::default();
        let mut trades: Vec<Trade> = Vec::with_capacity(1024);
        let mut windows: Vec<Window> = Vec::new();
        loop {
            trades.clear();
            let timeout = match (&self.aggregator, live) {
                (Some(agg), true) => agg.poll_timeout(),
                _ => None,
            };
            let sleep = tokio::time::sleep(timeout.map_or(Duration::from_secs(3600), |t| {
                Duration::from_millis(t.saturating_sub(now_ms()).max(0) as u64)
            }));
            tokio::select! {
                _ = shutdown.cancelled() => break,
                more = self.source.next_trades(&mut trades) => {
                    let more = more?;
                    self.handle_trades(&trades, &mut windows, &mut summary, &shutdown).await?;
                    if !more {
                        summary.source_ended = true;
                        break;
                    }
                }
                _ = sleep, if timeout.is_some() => {
                    if let Some(agg) = self.aggregator.as_mut() {
                        agg.advance(now_ms());
                    }
                    self.drain_events(&mut windows, &mut summary, live);
                    self.store_windows(&mut windows, &shutdown).await?;
                }
            }
        }
        if let Some(agg) = self.aggregator.as_mut() {
            agg.flush();
        }
        self.drain_events(&mut windows, &mut summary, live);
        // Shutdown may already be requested: store_windows then retries a bounded number of times.
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
        Ok(summary)
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
        let mut per_symbol: BTreeMap<Symbol, u64> = BTreeMap::new();
        for t in trades {
            *per_symbol.entry(t.symbol).or_default() += 1;
        }
        for (symbol, n) in per_symbol {
            self.metrics
                .trades_received
                .get_or_create(&Metrics::symbol(symbol.as_str()))
                .inc_by(n);
        }
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
            for t in trades {
                agg.handle_trade(*t);
            }
        }
        let live = self.source.is_live();
        self.drain_events(windows, summary, live);
        self.store_windows(windows, shutdown).await
    }

    fn drain_events(
        &mut self,
        windows: &mut Vec<Window>,
        summary: &mut PipelineSummary,
        live: bool,
    ) {
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
                    tracing::warn!(%symbol, first = missing.first, last = missing.last, "trade id gap");
                }
            }
        }
        let stats = agg.stats();
        summary.duplicates = stats.duplicates;
    }

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

/// Backoff state for one sink batch. Retryable errors back off and retry,
/// for ever while running and `shutdown_retries` times once shutdown is
/// requested; anything else stops the pipeline with the batch size reported.
struct SinkRetry<'a> {
    sink: &'static str,
    metrics: &'a Metrics,
    delays: crate::retry::Backoff,
    shutdown_retries: u32,
    retries_after_shutdown: u32,
    pending: usize,
}

impl<'a> SinkRetry<'a> {
    fn new(
        sink: &'static str,
        metrics: &'a Metrics,
        policy: RetryPolicy,
        shutdown_retries: u32,
        pending: usize,
    ) -> Self {
        SinkRetry {
            sink,
            metrics,
            delays: policy.delays(),
            shutdown_retries,
            retries_after_shutdown: 0,
            pending,
        }
    }

    async fn wait(
        &mut self,
        err: SinkError,
        shutdown: &CancellationToken,
    ) -> Result<(), PipelineError> {
        let sink = self.sink;
        self.metrics
            .sink_errors
            .get_or_create(&Metrics::sink(sink))
            .inc();
        if shutdown.is_cancelled() {
            self.retries_after_shutdown += 1;
        }
        if !err.is_retryable() || self.retries_after_shutdown > self.shutdown_retries {
            return Err(PipelineError::Sink {
                sink,
                pending: self.pending,
                source: err,
            });
        }
        let delay = self.delays.next_delay();
        tracing::warn!(sink, error = %err, retry_in = ?delay, pending = self.pending, "sink write failed; keeping the batch and retrying");
        self.metrics
            .sink_retries
            .get_or_create(&Metrics::sink(sink))
            .inc();
        tokio::time::sleep(delay).await;
        Ok(())
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
