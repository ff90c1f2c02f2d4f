//! The consume loop: topic → per-partition aggregation → ClickHouse, with
//! positions stored after the windows they cover.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use pulse_core::{Symbol, Window};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::fetcher::{self, FetchTarget, FetchedBatch};
use super::partition::{PartitionState, RecordOutcome};
use super::{ConsumeError, ConsumeSummary, ConsumerConfig};
use crate::clickhouse::{
    ClickHouseConfig, ClickHouseError, MetricsStore, PartitionPosition, WindowRow,
};
use crate::driver::now_ms;
use crate::kafka::{KafkaConfig, KafkaError, topic_partitions};
use crate::metrics::Metrics;

/// Bad messages logged one by one before only counting them.
const LOGGED_REJECTS: u64 = 100;

/// Reads a topic, aggregates each partition with pulse-core and stores the
/// windows and positions in ClickHouse. See [`crate::consumer`].
pub struct Consumer {
    kafka: KafkaConfig,
    store: MetricsStore,
    config: ConsumerConfig,
    metrics: Metrics,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("topic", &self.config.topic)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// A consumer, after checking every setting.
    pub fn new(
        kafka: KafkaConfig,
        clickhouse: ClickHouseConfig,
        config: ConsumerConfig,
        metrics: Metrics,
    ) -> Result<Self, ConsumeError> {
        config.validate()?;
        kafka.validate()?;
        let store = MetricsStore::new(clickhouse)?;
        Ok(Consumer {
            kafka,
            store,
            config,
            metrics,
        })
    }

    /// Runs until `shutdown` is cancelled, then stores open windows and
    /// pending batches and returns the totals. Waits (with backoff) for the
    /// broker, the topic and ClickHouse while they are unavailable.
    pub async fn run(self, shutdown: CancellationToken) -> Result<ConsumeSummary, ConsumeError> {
        let mut summary = ConsumeSummary::default();
        let retry = Retrier {
            config: &self.config,
            metrics: &self.metrics,
            shutdown: &shutdown,
        };
        if retry
            .clickhouse("create schema", || self.store.create_schema())
            .await?
            .is_none()
        {
            return Ok(summary);
        }
        let Some(client) = retry.kafka("connect", || self.kafka.connect()).await? else {
            return Ok(summary);
        };
        let client = Arc::new(client);
        let topic = &self.config.topic;
        let Some(available) = retry
            .kafka("find topic", || existing_partitions(&client, topic))
            .await?
        else {
            return Ok(summary);
        };
        let selected = self.config.partitions.select(&available)?;
        let Some(positions) = retry
            .clickhouse("load positions", || self.store.load_positions(topic))
            .await?
        else {
            return Ok(summary);
        };
        let mut states = BTreeMap::new();
        for &partition in &selected {
            let position = positions.get(&partition);
            let state =
                PartitionState::restore(partition, self.config.aggregator.clone(), position)
                    .map_err(|e| ConsumeError::Config(e.to_string()))?;
            match position {
                Some(p) => tracing::info!(
                    topic = %topic,
                    partition,
                    resume_offset = p.resume_offset,
                    processed_to = p.next_offset,
                    "resuming from the stored position"
                ),
                None => {
                    tracing::info!(topic = %topic, partition, "no stored position; reading from the earliest record")
                }
            }
            states.insert(partition, state);
        }
        summary.partitions = selected.clone();

        let stop_fetching = shutdown.child_token();
        let (tx, mut rx) = mpsc::channel(4 * selected.len().max(1));
        let fetchers: Vec<_> = states
            .values()
            .map(|s: &PartitionState| {
                let target = FetchTarget {
                    topic: topic.clone(),
                    partition: s.partition(),
                    start: s.start_offset(),
                };
                fetcher::spawn(
                    client.clone(),
                    target,
                    self.config.fetch,
                    self.config.retry,
                    tx.clone(),
                    stop_fetching.clone(),
                )
            })
            .collect();
        drop(tx);

        let mut run = Run {
            consumer: &self,
            retry,
            states,
            pending: Vec::new(),
            summary,
            owners: BTreeMap::new(),
            dirty: false,
        };
        let result = run.consume(&mut rx).await;
        stop_fetching.cancel();
        drop(rx);
        for f in fetchers {
            let _ = f.await;
        }
        result?;
        run.finish().await?;
        Ok(run.summary)
    }
}

/// The partition ids of the topic, waiting while it does not exist yet.
async fn existing_partitions(
    client: &rskafka::client::Client,
    topic: &str,
) -> Result<Vec<i32>, KafkaError> {
    match topic_partitions(client, topic).await? {
        Some(ids) if !ids.is_empty() => Ok(ids),
        // Retryable: the producer may create it any moment.
        _ => Err(KafkaError::Request {
            operation: "find topic",
            topic: topic.to_owned(),
            source: Box::new(rskafka::client::error::Error::ServerError {
                protocol_error: rskafka::client::error::ProtocolError::UnknownTopicOrPartition,
                error_message: Some("topic does not exist yet".to_owned()),
                request: rskafka::client::error::RequestContext::Topic(topic.to_owned()),
                response: None,
                is_virtual: true,
            }),
        }),
    }
}

/// Retries transient failures with backoff until they succeed or shutdown
/// is requested (then `Ok(None)`, or an error for stores, see below).
struct Retrier<'a> {
    config: &'a ConsumerConfig,
    metrics: &'a Metrics,
    shutdown: &'a CancellationToken,
}

impl Retrier<'_> {
    /// For start-up steps against Kafka: gives up quietly (`None`) on shutdown.
    async fn kafka<T, F, Fut>(&self, what: &str, op: F) -> Result<Option<T>, ConsumeError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, KafkaError>>,
    {
        self.until_ok("Kafka", what, op, KafkaError::is_retryable)
            .await
    }

    /// For start-up steps against ClickHouse: gives up quietly (`None`) on shutdown.
    async fn clickhouse<T, F, Fut>(&self, what: &str, op: F) -> Result<Option<T>, ConsumeError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ClickHouseError>>,
    {
        self.until_ok("ClickHouse", what, op, ClickHouseError::is_retryable)
            .await
    }

    /// Runs `op` until it succeeds, retrying errors `retryable` accepts
    /// with backoff; `None` once shutdown is requested.
    async fn until_ok<T, E, F, Fut>(
        &self,
        service: &str,
        what: &str,
        mut op: F,
        retryable: fn(&E) -> bool,
    ) -> Result<Option<T>, ConsumeError>
    where
        E: std::fmt::Display + Into<ConsumeError>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut delays = self.config.retry.delays();
        loop {
            let attempt = tokio::select! {
                _ = self.shutdown.cancelled() => return Ok(None),
                result = op() => result,
            };
            match attempt {
                Ok(v) => return Ok(Some(v)),
                Err(e) if retryable(&e) => {
                    let delay = delays.next_delay();
                    tracing::warn!(error = %e, retry_in = ?delay, "{service} {what} failed; retrying");
                    tokio::select! {
                        _ = self.shutdown.cancelled() => return Ok(None),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// For stores: keeps retrying while running, and `shutdown_attempts`
    /// more times once shutdown is requested; `windows` is reported if it
    /// gives up.
    async fn store<F, Fut>(
        &self,
        what: &'static str,
        windows: usize,
        mut op: F,
    ) -> Result<(), ConsumeError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(), ClickHouseError>>,
    {
        let label = Metrics::sink("clickhouse");
        let mut delays = self.config.retry.delays();
        let mut after_shutdown = 0;
        loop {
            let e = match op().await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            self.metrics.sink_errors.get_or_create(&label).inc();
            if !e.is_retryable() {
                return Err(e.into());
            }
            if self.shutdown.is_cancelled() {
                after_shutdown += 1;
                if after_shutdown > self.config.shutdown_attempts {
                    return Err(ConsumeError::Unsaved { windows, source: e });
                }
            }
            let delay = delays.next_delay();
            tracing::warn!(error = %e, windows, retry_in = ?delay, "ClickHouse {what} failed; keeping the batch and retrying");
            self.metrics.sink_retries.get_or_create(&label).inc();
            tokio::select! {
                // Shutdown cuts the wait short; the attempts are then counted.
                _ = self.shutdown.cancelled(), if !self.shutdown.is_cancelled() => {}
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }
}

/// Per-symbol counts of one fetched batch, applied to metrics at once.
#[derive(Default)]
struct Counts {
    trades: u64,
    duplicates: u64,
    late: u64,
}

/// The state of one run of the loop.
struct Run<'a> {
    consumer: &'a Consumer,
    retry: Retrier<'a>,
    states: BTreeMap<i32, PartitionState>,
    /// Windows emitted and not yet stored.
    pending: Vec<Window>,
    summary: ConsumeSummary,
    /// Which partition each symbol was seen in, to warn about a topic that
    /// spreads one symbol over several partitions.
    owners: BTreeMap<Symbol, i32>,
    /// Records were processed since the last store.
    dirty: bool,
}

impl Run<'_> {
    async fn consume(
        &mut self,
        rx: &mut mpsc::Receiver<fetcher::FetchResult>,
    ) -> Result<(), ConsumeError> {
        let config = &self.consumer.config;
        let mut store_tick = tokio::time::interval(config.insert_interval);
        store_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut next_progress = Instant::now() + config.progress_interval;
        loop {
            tokio::select! {
                biased;
                _ = self.retry.shutdown.cancelled() => return Ok(()),
                _ = store_tick.tick() => {
                    if self.dirty {
                        let positions = self.positions();
                        self.store(positions).await?;
                    }
                }
                fetched = rx.recv() => match fetched {
                    Some(Ok(batch)) => self.handle(batch),
                    Some(Err(e)) => return Err(e.into()),
                    None => return Ok(()),
                },
            }
            if self.pending.len() >= config.max_pending_windows {
                let positions = self.positions();
                self.store(positions).await?;
                store_tick.reset();
            }
            if Instant::now() >= next_progress {
                next_progress = Instant::now() + config.progress_interval;
                self.log_progress();
            }
        }
    }

    /// Stores what is pending, then flushes open windows and stores them
    /// with the positions taken *before* the flush (see
    /// [`PartitionState::flush`]).
    async fn finish(&mut self) -> Result<(), ConsumeError> {
        let positions = self.positions();
        let before = self.pending.len();
        for state in self.states.values_mut() {
            state.flush(&mut self.pending);
        }
        let flushed = self.pending.len() - before;
        self.count_windows(before);
        tracing::info!(
            flushed,
            "shutting down: storing open windows and pending batches"
        );
        self.store(positions).await?;
        self.log_progress();
        Ok(())
    }

    fn positions(&self) -> Vec<PartitionPosition> {
        self.states
            .values()
            .filter_map(PartitionState::position)
            .collect()
    }

    fn handle(&mut self, batch: FetchedBatch) {
        let Some(state) = self.states.get_mut(&batch.partition) else {
            return;
        };
        let metrics = &self.consumer.metrics;
        let first_new_window = self.pending.len();
        let mut counts: BTreeMap<Symbol, Counts> = BTreeMap::new();
        for record in &batch.records {
            match state.handle(record.offset, record.value.as_deref(), &mut self.pending) {
                RecordOutcome::Accepted(s) => counts.entry(s).or_default().trades += 1,
                RecordOutcome::Duplicate(s) => counts.entry(s).or_default().duplicates += 1,
                RecordOutcome::Late(s) => counts.entry(s).or_default().late += 1,
                RecordOutcome::Replayed => {
                    self.summary.replayed += 1;
                    continue;
                }
                RecordOutcome::Rejected(e) => {
                    metrics.reject(e.reason());
                    self.summary.rejected += 1;
                    if self.summary.rejected <= LOGGED_REJECTS {
                        tracing::warn!(partition = batch.partition, offset = record.offset, error = %e, "skipping bad message");
                    }
                    if self.summary.rejected == LOGGED_REJECTS {
                        tracing::warn!(
                            "further bad messages are counted (pulse_frames_rejected_total) but not logged"
                        );
                    }
                }
            }
            self.summary.records += 1;
        }
        self.dirty = true;
        for (symbol, c) in counts {
            let label = Metrics::symbol(symbol.as_str());
            self.summary.trades += c.trades;
            self.summary.duplicates += c.duplicates;
            self.summary.late_trades += c.late;
            metrics
                .trades_received
                .get_or_create(&label)
                .inc_by(c.trades + c.duplicates + c.late);
            if c.duplicates > 0 {
                metrics
                    .duplicates
                    .get_or_create(&label)
                    .inc_by(c.duplicates);
            }
            if c.late > 0 {
                metrics.late_trades.get_or_create(&label).inc_by(c.late);
            }
            let owner = *self.owners.entry(symbol).or_insert(batch.partition);
            if owner != batch.partition {
                tracing::error!(%symbol, owner, partition = batch.partition, "symbol found in two partitions: its windows will be wrong; produce with key = symbol");
            }
        }
        self.count_windows(first_new_window);
    }

    fn count_windows(&self, from: usize) {
        for w in &self.pending[from..] {
            self.consumer
                .metrics
                .windows_emitted
                .get_or_create(&Metrics::symbol(w.symbol.as_str()))
                .inc();
        }
    }

    /// Inserts pending windows, then `positions`; both retried until stored.
    async fn store(&mut self, positions: Vec<PartitionPosition>) -> Result<(), ConsumeError> {
        let store = &self.consumer.store;
        if !self.pending.is_empty() {
            let rows: Vec<WindowRow> = self.pending.iter().map(WindowRow::from).collect();
            self.retry
                .store("insert windows", rows.len(), || store.insert_windows(&rows))
                .await?;
            let stored_at = now_ms();
            let latency = self
                .consumer
                .metrics
                .window_store_latency
                .get_or_create(&Metrics::sink("clickhouse"));
            for w in &self.pending {
                latency.observe((stored_at - w.end_ms).max(0) as f64 / 1000.0);
            }
            self.summary.windows += rows.len() as u64;
            self.summary.inserts += 1;
            self.pending.clear();
        }
        let topic = &self.consumer.config.topic;
        self.retry
            .store("save positions", 0, || {
                store.save_positions(topic, &positions)
            })
            .await?;
        for p in &positions {
            if let Some(state) = self.states.get_mut(&p.partition) {
                state.saved(p);
            }
        }
        self.dirty = false;
        Ok(())
    }

    fn log_progress(&self) {
        let s = &self.summary;
        let offsets: Vec<String> = self
            .states
            .values()
            .map(|st| match st.next_offset() {
                Some(o) => format!("{}@{o}", st.partition()),
                None => format!("{}@-", st.partition()),
            })
            .collect();
        tracing::info!(
            records = s.records,
            trades = s.trades,
            windows_stored = s.windows,
            duplicates = s.duplicates,
            late = s.late_trades,
            rejected = s.rejected,
            replayed = s.replayed,
            positions = %offsets.join(" "),
            "consume progress"
        );
    }
}
