//! Prometheus metrics shared by every part of the pipeline.
//!
//! One [`Metrics`] is made at start-up and cloned into each component (clones
//! share the same counters). [`Metrics::encode`] renders the text format for
//! a `/metrics` endpoint.
//!
//! Who records what, so nothing is counted twice:
//! - sources: `frames_rejected`, `queue_dropped`, `gaps` (found on the wire),
//!   `trades_backfilled`, `trades_unfilled`, `reconnects`, `connect_failures`,
//!   `silent_connections`, `connections`, `symbols_followed`, `trades_held`,
//!   `trades_missing`,
//!   `symbol_list_failures`, `resume_ahead`, `outages_unchecked`,
//!   `outages_unchecked_pending`;
//! - `pulse produce`'s start-up scan of the topic: `resume_not_found`;
//! - the [`Pipeline`](crate::Pipeline) driver: `trades_received`,
//!   `duplicates`, `late_trades`, `late_trades_uncorrected`,
//!   `trade_time_outliers`, `stream_gaps`,
//!   `windows_emitted`,
//!   `windows_reemitted`, `windows_rejected` (sums that overflow),
//!   `watermark_lag_seconds`, `clock_offset_seconds`, `sink_errors`,
//!   `sink_retries` and both latency histograms;
//! - the ClickHouse sink: `windows_rejected` (times out of its range);
//! - the consumer's fetch tasks and start-up: `topic_resets`,
//!   `partitions_read`, `source_retries`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

/// Label set with a symbol.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SymbolLabel {
    /// Trading pair, e.g. `BTCUSDT`.
    pub symbol: String,
}

/// Label set with a reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Short machine-friendly reason, e.g. `json`.
    pub reason: String,
}

/// Label set with a symbol and a reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SymbolReasonLabel {
    /// Trading pair, e.g. `BTCUSDT`.
    pub symbol: String,
    /// Short machine-friendly reason, e.g. `overflow`.
    pub reason: String,
}

/// Label set with a sink name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabel {
    /// Sink name, e.g. `clickhouse`.
    pub sink: String,
}

/// Label set with the operation a retry repeats.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabel {
    /// What failed, e.g. `kafka_fetch`.
    pub operation: String,
}

/// Label set with a topic.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    /// Kafka topic.
    pub topic: String,
}

/// Label set with a topic, a partition and a reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicResetLabel {
    /// Kafka topic.
    pub topic: String,
    /// Kafka partition.
    pub partition: i32,
    /// Short machine-friendly reason, e.g. `replaced`.
    pub reason: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms .. ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// The registry [`Metrics::new`] fills.
struct Registering(Registry);

impl Registering {
    /// Registers `metric` as `name` with `help` and returns it; the registry
    /// keeps a clone, which shares the metric's state.
    fn register<M: Metric + Clone>(&mut self, name: &str, help: &str, metric: M) -> M {
        self.0.register(name, help, metric.clone());
        metric
    }

    /// A new metric at its default (zero, no series), registered.
    fn add<M: Metric + Clone + Default>(&mut self, name: &str, help: &str) -> M {
        self.register(name, help, M::default())
    }
}

/// Every metric pulse exports. Cheap to clone; clones share state.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// Trades received from a source, by symbol.
    pub trades_received: Family<SymbolLabel, Counter>,
    /// Frames or messages rejected as malformed, by reason.
    pub frames_rejected: Family<ReasonLabel, Counter>,
    /// Trades evicted from a full drop-oldest queue.
    pub queue_dropped: Counter,
    /// Sequence gaps a source found (and tries to backfill), by symbol.
    pub gaps: Family<SymbolLabel, Counter>,
    /// Sequence gaps still present in the stream the aggregator saw, by
    /// symbol: gaps in a replay file, or ones backfill has not closed yet.
    pub stream_gaps: Family<SymbolLabel, Counter>,
    /// Trades recovered by REST backfill, by symbol.
    pub trades_backfilled: Family<SymbolLabel, Counter>,
    /// Missing trades that backfill could not recover, by symbol.
    pub trades_unfilled: Family<SymbolLabel, Counter>,
    /// Duplicate trades dropped, by symbol.
    pub duplicates: Family<SymbolLabel, Counter>,
    /// Trades that arrived after their window closed, by symbol.
    pub late_trades: Family<SymbolLabel, Counter>,
    /// Late trades whose window was not corrected, so they are in no row,
    /// by symbol.
    pub late_trades_uncorrected: Family<SymbolLabel, Counter>,
    /// Trades far ahead of their symbol's time that the next trades
    /// refuted (a wrong timestamp), in no row, by symbol.
    pub trade_time_outliers: Family<SymbolLabel, Counter>,
    /// Windows emitted, by symbol.
    pub windows_emitted: Family<SymbolLabel, Counter>,
    /// Corrected windows emitted again with a higher version, by symbol.
    pub windows_reemitted: Family<SymbolLabel, Counter>,
    /// Windows that have no row, by symbol and reason: sums that overflow
    /// (`overflow`, `no_volume`, from the aggregator) or
    /// times a store cannot hold (`time_range`, from the ClickHouse sink).
    pub windows_rejected: Family<SymbolReasonLabel, Counter>,
    /// Symbols whose last trade on the topic was not found within the
    /// producer's `--resume-scan` bound, by symbol: they start from the
    /// live stream, and what they missed while no producer ran is lost.
    pub resume_not_found: Family<SymbolLabel, Counter>,
    /// Resume points the live stream showed to be from elsewhere (another
    /// kind of id, a replayed capture), by symbol: the symbol was published
    /// from the live stream instead of being dropped as duplicates.
    pub resume_ahead: Family<SymbolLabel, Counter>,
    /// Outages of symbols with no trade before them that REST could not
    /// look up (it listed nothing in time, or failed), by symbol: their
    /// trades during the outage, if any, are in no window and no count.
    pub outages_unchecked: Family<SymbolLabel, Counter>,
    /// Symbols whose outage is not checked yet now: their connection is
    /// down, or back and neither a live trade nor a REST catch-up has
    /// checked it, or (no earlier trade) its lookup by time is under way.
    /// At the end of a run: never checked.
    pub outages_unchecked_pending: Gauge,
    /// WebSocket reconnects.
    pub reconnects: Counter,
    /// WebSocket connection attempts that failed, at start-up or reconnecting.
    pub connect_failures: Counter,
    /// WebSocket connections replaced because they answered pings but
    /// carried no data for the source's `data_timeout`.
    pub silent_connections: Counter,
    /// Open WebSocket connections.
    pub connections: Gauge,
    /// Symbols a live source follows now; with `--symbols ALL` it changes
    /// when Binance lists or delists a perpetual.
    pub symbols_followed: Gauge,
    /// Trades a live source holds behind id gaps until REST backfill fills
    /// them; handed on in id order then.
    pub trades_held: Gauge,
    /// Trade ids a live source knows are missing (the holes trades are held
    /// behind, or evicted unseen) until REST backfill fills or gives them up.
    pub trades_missing: Gauge,
    /// Failed re-reads of the symbol list of `--symbols ALL`; the symbols
    /// followed stay as they were until a retry succeeds.
    pub symbol_list_failures: Counter,
    /// Failed sink writes, by sink.
    pub sink_errors: Family<SinkLabel, Counter>,
    /// Sink write retries, by sink.
    pub sink_retries: Family<SinkLabel, Counter>,
    /// How far each symbol's watermark trails its newest trade, in seconds:
    /// 0 while windows close on ids, the lateness while a gap is open.
    pub watermark_lag: Family<SymbolLabel, Gauge<f64, AtomicU64>>,
    /// The local wall clock minus Binance's event time, in seconds, as the
    /// smallest difference seen over the last interval (network delay
    /// included). Only reported: pulse never compares the two clocks.
    pub clock_offset: Gauge<f64, AtomicU64>,
    /// Seconds from a window's end (its latest possible trade time) to its
    /// emission. Live sources only: a replay's trade times are history; nor
    /// a window that ended before the run began (a time far behind).
    pub window_emit_latency: Histogram,
    /// Seconds from a window's end (its latest possible trade time) to its
    /// successful store, by sink. Live sources only.
    pub window_store_latency: HistogramFamily<SinkLabel>,
    /// Stored consumer positions found not to belong to the topic read
    /// (`truncated`, `replaced`, `expired`: that partition was read again
    /// from its earliest record with fresh state), by topic and partition;
    /// under `retention`, times retention had deleted records before the
    /// consumer read them (it went on from the earliest retained record,
    /// its state kept; the log says how many); under `gone`, partitions
    /// the topic no longer has (their open windows were stored).
    pub topic_resets: Family<TopicResetLabel, Counter>,
    /// Partitions a consumer reads now, by topic; grows when the topic
    /// gains partitions.
    pub partitions_read: Family<TopicLabel, Gauge>,
    /// The consumer's reads retried after an error (the broker or
    /// ClickHouse unavailable), by operation: `kafka_fetch`,
    /// `partition_list`, or a start-up step.
    pub source_retries: Family<OperationLabel, Counter>,
    /// `frames_rejected` over every reason, for the closing summary; not
    /// exported (Prometheus sums the family itself).
    rejected_total: Counter,
    /// What sources repaired before the pipeline, over every symbol, for
    /// the closing summary; not exported either.
    source_gaps_total: Counter,
    source_duplicates_total: Counter,
    source_backfilled_total: Counter,
    source_unfilled_total: Counter,
    outages_unchecked_total: Counter,
}

/// What sources counted before their trades reached a pipeline, over every
/// symbol: for a closing summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceTotals {
    /// Frames, lines or messages rejected as malformed.
    pub rejected: u64,
    /// Id gaps found (and backfilled).
    pub gaps: u64,
    /// Duplicate trades dropped.
    pub duplicates: u64,
    /// Trades recovered over REST.
    pub backfilled: u64,
    /// Missing trades backfill could not recover.
    pub unfilled: u64,
    /// Trades held behind id gaps now (at the end of a run: never handed on).
    pub held: u64,
    /// Trade ids known missing now, not backfilled (at the end of a run:
    /// in no window).
    pub missing: u64,
    /// Symbol outages not looked up: REST could not tell, or the run
    /// stopped first (a connection down, or back and not checked yet).
    /// Trades in them are unknown.
    pub unchecked: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Creates and registers every metric under the `pulse_` prefix.
    pub fn new() -> Self {
        let mut r = Registering(Registry::with_prefix("pulse"));
        // Registered in field order, which is the order `encode` lists them.
        let m = Metrics {
            trades_received: r.add("trades_received", "Trades received from a source"),
            frames_rejected: r.add(
                "frames_rejected",
                "Frames or messages rejected as malformed",
            ),
            queue_dropped: r.add(
                "queue_dropped",
                "Trades dropped by a full drop-oldest queue",
            ),
            gaps: r.add("gaps", "Trade id gaps found by a source"),
            stream_gaps: r.add(
                "stream_gaps",
                "Trade id gaps in the stream the aggregator saw",
            ),
            trades_backfilled: r.add("trades_backfilled", "Trades recovered over REST backfill"),
            trades_unfilled: r.add(
                "trades_unfilled",
                "Missing trades backfill could not recover",
            ),
            duplicates: r.add("duplicate_trades", "Duplicate trades dropped"),
            late_trades: r.add(
                "late_trades",
                "Trades that arrived after their window closed",
            ),
            late_trades_uncorrected: r.add(
                "late_trades_uncorrected",
                "Late trades too late to correct their window: counted only, in no row",
            ),
            trade_time_outliers: r.add(
                "trade_time_outliers",
                "Trades far ahead of their symbol's time that the next trades refuted (a wrong timestamp): counted only, in no row",
            ),
            windows_emitted: r.add("windows_emitted", "Windows emitted"),
            windows_reemitted: r.add(
                "windows_reemitted",
                "Corrected windows emitted again with a higher version",
            ),
            windows_rejected: r.add(
                "windows_rejected",
                "Windows that have no row: sums that overflow, or times the store cannot hold",
            ),
            resume_not_found: r.add(
                "resume_not_found",
                "Symbols whose last trade on the topic was not found within --resume-scan",
            ),
            resume_ahead: r.add(
                "resume_ahead",
                "Resume points ahead of the live stream; the symbol restarted from the live stream",
            ),
            outages_unchecked: r.add(
                "outages_unchecked",
                "Outages of symbols with no earlier trade that REST could not look up; their trades during it are unknown",
            ),
            outages_unchecked_pending: r.add(
                "outages_unchecked_pending",
                "Symbols whose outage is not checked yet: connection down, or back and not looked up over REST yet",
            ),
            reconnects: r.add("reconnects", "WebSocket reconnects"),
            connect_failures: r.add(
                "connect_failures",
                "WebSocket connection attempts that failed, at start-up or reconnecting",
            ),
            silent_connections: r.add(
                "silent_connections",
                "WebSocket connections replaced after answering pings but carrying no data",
            ),
            connections: r.add("connections", "Open WebSocket connections"),
            symbols_followed: r.add("symbols_followed", "Symbols a live source follows now"),
            trades_held: r.add(
                "trades_held",
                "Trades held behind id gaps until REST backfill fills them",
            ),
            trades_missing: r.add(
                "trades_missing",
                "Trade ids known missing behind id gaps until REST backfill fills or gives them up",
            ),
            symbol_list_failures: r.add(
                "symbol_list_failures",
                "Failed re-reads of the symbol list of --symbols ALL",
            ),
            sink_errors: r.add("sink_errors", "Failed sink writes"),
            sink_retries: r.add("sink_retries", "Sink write retries"),
            watermark_lag: r.add(
                "watermark_lag_seconds",
                "How far the watermark trails the newest trade",
            ),
            clock_offset: r.add(
                "clock_offset_seconds",
                "Local wall clock minus Binance event time, smallest over the last interval",
            ),
            window_emit_latency: r.register(
                "window_emit_latency_seconds",
                "Seconds from a window's end to its emission, on the monotonic clock from when the symbol's newest trade was handled",
                latency_histogram(),
            ),
            window_store_latency: r.register(
                "window_store_latency_seconds",
                "Seconds from a window's end to its successful store, on the monotonic clock from when the symbol's newest trade was handled",
                Family::new_with_constructor(latency_histogram),
            ),
            topic_resets: r.add(
                "topic_resets",
                "Stored consumer positions that did not belong to the topic read",
            ),
            partitions_read: r.add("consumer_partitions", "Partitions a consumer reads now"),
            source_retries: r.add(
                "source_retries",
                "Source reads retried after an error, by operation",
            ),
            rejected_total: Counter::default(),
            source_gaps_total: Counter::default(),
            source_duplicates_total: Counter::default(),
            source_backfilled_total: Counter::default(),
            source_unfilled_total: Counter::default(),
            outages_unchecked_total: Counter::default(),
            registry: Arc::default(),
        };
        #[cfg(feature = "kafka")]
        r.register(
            "kafka_slow_requests",
            "Kafka requests answered late (retried inside: a broker restarting or slow), by operation",
            crate::kafka::SLOW_REQUESTS.clone(),
        );
        Metrics {
            registry: Arc::new(r.0),
            ..m
        }
    }

    /// Renders every metric in the Prometheus text format, each metric's
    /// series in label order, so the same counts always give the same text.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        in_label_order(&text)
    }

    /// Shorthand for a symbol label.
    pub fn symbol(symbol: &str) -> SymbolLabel {
        SymbolLabel {
            symbol: symbol.to_string(),
        }
    }

    /// Shorthand for a sink label.
    pub fn sink(sink: &str) -> SinkLabel {
        SinkLabel {
            sink: sink.to_string(),
        }
    }

    /// Creates every per-symbol series at zero, so dashboards and alerts see
    /// `0` rather than no data before the first event. Idempotent.
    pub fn init_symbol(&self, symbol: &str) {
        let label = Metrics::symbol(symbol);
        for family in [
            &self.trades_received,
            &self.gaps,
            &self.stream_gaps,
            &self.trades_backfilled,
            &self.trades_unfilled,
            &self.duplicates,
            &self.late_trades,
            &self.resume_not_found,
            &self.resume_ahead,
            &self.outages_unchecked,
        ] {
            drop(family.get_or_create(&label));
        }
    }

    /// Creates the per-symbol window series at zero, for pipelines that
    /// aggregate (`pulse produce` does not). Idempotent.
    pub fn init_symbol_windows(&self, symbol: &str) {
        let label = Metrics::symbol(symbol);
        for family in [
            &self.windows_emitted,
            &self.windows_reemitted,
            &self.late_trades_uncorrected,
            &self.trade_time_outliers,
        ] {
            drop(family.get_or_create(&label));
        }
        for reason in window_rejections() {
            drop(self.windows_rejected.get_or_create(&SymbolReasonLabel {
                symbol: symbol.to_string(),
                reason: reason.to_string(),
            }));
        }
    }

    /// Creates the `frames_rejected` series of `reasons` at zero, so alerts
    /// on a rate of bad input see 0, not no data, before the first. Each
    /// source and stage names the reasons it can give. Idempotent.
    pub fn init_rejected(&self, reasons: &[&str]) {
        for reason in reasons {
            drop(self.frames_rejected.get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            }));
        }
    }

    /// Creates every per-sink series at zero. Idempotent.
    pub fn init_sink(&self, sink: &str) {
        let label = Metrics::sink(sink);
        drop(self.sink_errors.get_or_create(&label));
        drop(self.sink_retries.get_or_create(&label));
        drop(self.window_store_latency.get_or_create(&label));
    }

    /// Counts one retry of a source's `operation` (the consumer's reads, a
    /// REST backfill).
    pub fn source_retry(&self, operation: &str) {
        self.source_retries
            .get_or_create(&OperationLabel {
                operation: operation.to_string(),
            })
            .inc();
    }

    /// Counts one window that has no row.
    pub fn reject_window(&self, symbol: &str, reason: &str) {
        self.windows_rejected
            .get_or_create(&SymbolReasonLabel {
                symbol: symbol.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Counts one rejected frame.
    pub fn reject(&self, reason: &str) {
        self.frames_rejected
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
        self.rejected_total.inc();
    }

    /// Frames, lines or messages [rejected](Self::reject) so far, for any
    /// reason.
    pub fn rejected_total(&self) -> u64 {
        self.rejected_total.get()
    }

    /// Counts an id gap a source found in `symbol`'s stream (and repairs
    /// before the trades reach the pipeline).
    pub fn source_gap(&self, symbol: &str) {
        count(&self.gaps, &self.source_gaps_total, symbol, 1);
    }

    /// Counts a duplicate trade a source dropped before the pipeline.
    pub fn source_duplicate(&self, symbol: &str) {
        count(&self.duplicates, &self.source_duplicates_total, symbol, 1);
    }

    /// Counts trades a source recovered over REST.
    pub fn source_backfilled(&self, symbol: &str, trades: u64) {
        let total = &self.source_backfilled_total;
        count(&self.trades_backfilled, total, symbol, trades);
    }

    /// Counts missing trades a source could not recover.
    pub fn source_unfilled(&self, symbol: &str, trades: u64) {
        count(
            &self.trades_unfilled,
            &self.source_unfilled_total,
            symbol,
            trades,
        );
    }

    /// Counts an outage of `symbol` that could not be looked up.
    pub fn outage_unchecked(&self, symbol: &str) {
        let total = &self.outages_unchecked_total;
        count(&self.outages_unchecked, total, symbol, 1);
    }

    /// What sources counted so far, over every symbol.
    pub fn source_totals(&self) -> SourceTotals {
        SourceTotals {
            rejected: self.rejected_total.get(),
            gaps: self.source_gaps_total.get(),
            duplicates: self.source_duplicates_total.get(),
            backfilled: self.source_backfilled_total.get(),
            unfilled: self.source_unfilled_total.get(),
            held: u64::try_from(self.trades_held.get()).unwrap_or(0),
            missing: u64::try_from(self.trades_missing.get()).unwrap_or(0),
            unchecked: self.outages_unchecked_total.get()
                + u64::try_from(self.outages_unchecked_pending.get()).unwrap_or(0),
        }
    }
}

/// Every `reason` of `windows_rejected`: the aggregator's, and the
/// ClickHouse sink's when it is built in.
fn window_rejections() -> impl Iterator<Item = &'static str> {
    #[cfg(feature = "clickhouse")]
    let sink = crate::clickhouse::RowError::REASONS;
    #[cfg(not(feature = "clickhouse"))]
    let sink: &[&str] = &[];
    pulse_core::WindowError::REASONS.iter().chain(sink).copied()
}

/// Adds `n` to `symbol`'s series of `family` and to its `total`.
fn count(family: &Family<SymbolLabel, Counter>, total: &Counter, symbol: &str, n: u64) {
    family.get_or_create(&Metrics::symbol(symbol)).inc_by(n);
    total.inc_by(n);
}

/// `text` with each run of sample lines sorted by label set: a family keeps
/// its series in a `HashMap`, so the encoder lists them in any order. The
/// sort is stable and ignores `le`, so a histogram's lines stay in order.
fn in_label_order(text: &str) -> String {
    fn flush(out: &mut String, run: &mut Vec<&str>) {
        run.sort_by_cached_key(|line| series_labels(line));
        for line in run.drain(..) {
            out.push_str(line);
            out.push('\n');
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut run = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            flush(&mut out, &mut run);
            out.push_str(line);
            out.push('\n');
        } else {
            run.push(line);
        }
    }
    flush(&mut out, &mut run);
    out
}

/// A sample line's labels without `le`: `{symbol="BTCUSDT",le="0.5"} 3`
/// gives `symbol="BTCUSDT"`.
fn series_labels(line: &str) -> Vec<&str> {
    let labels = match (line.find('{'), line.rfind('}')) {
        (Some(open), Some(close)) if open < close => &line[open + 1..close],
        _ => "",
    };
    // Label values here are symbols, topics and reasons: no `,` inside.
    labels
        .split(',')
        .filter(|pair| !pair.starts_with("le="))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_with_prometheus_names() {
        let m = Metrics::new();
        m.trades_received
            .get_or_create(&Metrics::symbol("BTCUSDT"))
            .inc_by(3);
        m.reject("json");
        m.reject("json");
        m.reject("decimal");
        assert_eq!(m.rejected_total(), 3);
        m.window_emit_latency.observe(0.004);
        let text = m.encode();
        assert!(
            text.contains("pulse_trades_received_total{symbol=\"BTCUSDT\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("pulse_frames_rejected_total{reason=\"json\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("pulse_window_emit_latency_seconds_count 1"),
            "{text}"
        );
        assert!(text.contains("# TYPE pulse_reconnects counter"), "{text}");
    }

    #[test]
    fn init_shows_zero_series_before_the_first_event() {
        let m = Metrics::new();
        m.init_symbol("ETHUSDT");
        m.init_sink("csv");
        let text = m.encode();
        assert!(!text.contains("pulse_windows_emitted_total{"), "{text}");
        assert!(!text.contains("pulse_frames_rejected_total{"), "{text}");
        m.init_symbol_windows("ETHUSDT");
        m.init_rejected(pulse_core::ParseError::REASONS);
        let text = m.encode();
        for line in [
            "pulse_frames_rejected_total{reason=\"json\"} 0",
            "pulse_frames_rejected_total{reason=\"time_range\"} 0",
            "pulse_windows_emitted_total{symbol=\"ETHUSDT\"} 0",
            "pulse_late_trades_total{symbol=\"ETHUSDT\"} 0",
            "pulse_stream_gaps_total{symbol=\"ETHUSDT\"} 0",
            "pulse_trades_backfilled_total{symbol=\"ETHUSDT\"} 0",
            "pulse_outages_unchecked_total{symbol=\"ETHUSDT\"} 0",
            "pulse_resume_ahead_total{symbol=\"ETHUSDT\"} 0",
            "pulse_resume_not_found_total{symbol=\"ETHUSDT\"} 0",
            "pulse_windows_rejected_total{symbol=\"ETHUSDT\",reason=\"no_volume\"} 0",
            "pulse_windows_rejected_total{symbol=\"ETHUSDT\",reason=\"overflow\"} 0",
            "pulse_sink_errors_total{sink=\"csv\"} 0",
            "pulse_window_store_latency_seconds_count{sink=\"csv\"} 0",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }

    #[test]
    fn lists_series_in_label_order_whatever_order_they_were_made_in() {
        let symbols = ["SOLUSDT", "BTCUSDT", "XRPUSDT", "ETHUSDT", "ADAUSDT"];
        let texts: Vec<String> = [symbols.to_vec(), symbols.iter().rev().copied().collect()]
            .iter()
            .map(|order| {
                let m = Metrics::new();
                for s in order {
                    m.init_symbol(s);
                    m.init_sink(s);
                }
                m.window_store_latency
                    .get_or_create(&Metrics::sink("ETHUSDT"))
                    .observe(0.003);
                m.encode()
            })
            .collect();
        assert_eq!(texts[0], texts[1]);
        let received: Vec<&str> = texts[0]
            .lines()
            .filter(|l| l.starts_with("pulse_trades_received_total{"))
            .collect();
        assert_eq!(
            received,
            ["ADAUSDT", "BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]
                .map(|s| format!("pulse_trades_received_total{{symbol=\"{s}\"}} 0"))
        );
        // A histogram's buckets keep their order, then its sum and count.
        let eth: Vec<&str> = texts[0]
            .lines()
            .filter(|l| {
                l.starts_with("pulse_window_store_latency_seconds") && l.contains("ETHUSDT")
            })
            .collect();
        assert_eq!(eth.len(), 20, "{eth:#?}");
        assert!(eth.iter().any(|l| l.contains("le=\"0.001\"")));
        let le = |l: &str| {
            l.split("le=\"")
                .nth(1)
                .map(|v| v.split('"').next().unwrap().to_string())
        };
        let bounds: Vec<f64> = eth
            .iter()
            .filter_map(|l| le(l))
            .map(|v| {
                if v == "+Inf" {
                    f64::INFINITY
                } else {
                    v.parse().unwrap()
                }
            })
            .collect();
        assert!(bounds.windows(2).all(|w| w[0] < w[1]), "{bounds:?}");
    }
}
