//! `pulse produce`: Binance (or a replay file) → a Kafka topic.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use pulse_core::{Aggregator, AggregatorConfig, ResumePoint, Symbol, TradeKind, short_list};
use pulse_io::binance::resolve_all_perpetuals;
use pulse_io::kafka::{
    Compression, KafkaConfig, KafkaTradeSink, ProducerConfig, UtcOffset, last_trades_on_topic,
};
use pulse_io::{CancellationToken, Metrics, Pipeline};

use crate::binance_args::BinanceArgs;
use crate::duration::parse_duration;
use crate::http;
use crate::source_args::{ReplayArgs, check_replay_found_trades, connect_live, open_source};

/// Flags naming the broker and topic, shared by `produce` and `consume`.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap brokers, comma-separated host:port.
    #[arg(
        long,
        env = "PULSE_KAFKA_BROKERS",
        value_delimiter = ',',
        default_value = "127.0.0.1:9092"
    )]
    pub brokers: Vec<String>,

    /// Topic of trade messages (one JSON object per trade, key = symbol).
    #[arg(long, env = "PULSE_TOPIC", default_value = "trades_btc")]
    pub topic: String,

    /// How long one Kafka request may take, retries included, before pulse
    /// logs and counts the failure, backs off and tries again (a broker
    /// that is down or hung).
    #[arg(
        long,
        env = "PULSE_KAFKA_TIMEOUT",
        value_name = "DURATION",
        default_value = "10s",
        value_parser = parse_duration
    )]
    pub kafka_timeout: Duration,
}

impl KafkaArgs {
    pub fn config(&self) -> KafkaConfig {
        KafkaConfig {
            request_deadline: self.kafka_timeout,
            ..KafkaConfig::new(self.brokers.iter().map(|b| b.trim().to_owned()))
        }
    }
}

/// Flags of `pulse produce`.
#[derive(Debug, Args)]
#[command(after_help = "\
Each trade becomes one JSON message, key = symbol, in partition \
murmur2(symbol) % partitions (Kafka's default partitioner), except that a \
symbol already on the topic stays in the partition its records are in (so \
a topic that gained partitions keeps each symbol in one ordered stream):
  {\"symbol\":\"BTCUSDT\",\"price\":\"61180.1\",\"quantity\":\"0.5\",
   \"timestamp\":\"2024-08-09T05:28:22.123+05:30\",\"side\":\"BUY\",
   \"trade_time_ms\":1723161502123,\"event_time_ms\":1723161502125,
   \"agg_id\":2304458843,\"first_trade_id\":5126334100,\"last_trade_id\":5126334102,
   \"kind\":\"agg_trade\"}
Each partition also gets progress markers (key __pulse_progress, header \
pulse-record: progress) that let consumers close a quiet symbol's windows; \
readers that only want trades skip that key. See docs/schema.md.

Examples:
  pulse produce --brokers 127.0.0.1:19092 --symbols BTCUSDT,ETHUSDT
  pulse produce --replay capture.jsonl.gz --topic trades_test")]
pub struct ProduceArgs {
    #[command(flatten)]
    binance: BinanceArgs,

    #[command(flatten)]
    replay: ReplayArgs,

    #[command(flatten)]
    kafka: KafkaArgs,

    /// Partitions of the topic when pulse has to create it (an existing
    /// topic keeps its own count).
    #[arg(
        long,
        value_name = "N",
        env = "PULSE_KAFKA_PARTITIONS",
        default_value_t = 1,
        value_parser = clap::value_parser!(i32).range(1..)
    )]
    partitions: i32,

    /// Replication factor of the topic when pulse has to create it.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(i16).range(1..))]
    replication_factor: i16,

    /// Compression of record batches: none, gzip, lz4, snappy or zstd.
    #[arg(long, env = "PULSE_KAFKA_COMPRESSION", default_value = "none")]
    compression: Compression,

    /// Most records per produce request; the source's batches are split to fit.
    #[arg(long, value_name = "N", default_value_t = 500,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    batch_size: usize,

    /// UTC offset of each message's readable `timestamp` field: +HH:MM,
    /// -HH:MM, UTC or IST.
    // A value may start with '-': `--timezone -04:00`.
    #[arg(
        long,
        env = "PULSE_TIMEZONE",
        default_value = "IST",
        allow_hyphen_values = true
    )]
    pub(crate) timezone: UtcOffset,

    /// On start (live mode only), read every partition of the topic
    /// backwards from its end, at most N records per partition, looking for
    /// each symbol's last aggTrade (records of another kind, such as a
    /// replayed @trade capture, and progress markers are skipped). Publishing
    /// continues right after it: trades missed while no producer ran are
    /// backfilled over REST, and none is sent twice. A symbol not found
    /// although the bound cut the scan short is logged and counted
    /// (pulse_resume_not_found_total) and starts from the live stream; a
    /// resume point the live stream shows to be from elsewhere is logged and
    /// counted (pulse_resume_ahead_total) and the symbol is published from
    /// the live stream.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    resume_scan: u64,

    /// Most trades per symbol backfilled over REST on start (the ones just
    /// before the first live trade); older missed trades are counted as
    /// unfilled (pulse_trades_unfilled_total) and logged.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    resume_backfill_max: u64,

    /// How often to write a progress marker to each partition where a
    /// symbol's watermark passed a whole second (and once at the end):
    /// consumers close a quiet symbol's windows from them. See docs/schema.md.
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = parse_duration)]
    marker_interval: Duration,

    /// Serve Prometheus /metrics on this address, e.g. 0.0.0.0:9464.
    #[arg(long, value_name = "ADDR", env = "PULSE_METRICS_ADDR")]
    metrics: Option<SocketAddr>,
}

pub async fn run(args: ProduceArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let started = Instant::now();
    let metrics = Metrics::new();
    metrics.init_sink("kafka");
    http::serve_metrics(args.metrics, &metrics, &shutdown).await?;
    let kafka = args.kafka.config();
    let producer = ProducerConfig {
        topic: args.kafka.topic.clone(),
        partitions: args.partitions,
        replication_factor: args.replication_factor,
        compression: args.compression,
        max_batch_records: args.batch_size,
        timestamp_offset: args.timezone,
    };
    let mut sink = tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        sink = KafkaTradeSink::connect(&kafka, producer) => sink,
    }
    .with_context(|| {
        format!(
            "opening topic {} on {}",
            args.kafka.topic,
            args.kafka.brokers.join(",")
        )
    })?;
    tracing::info!(
        topic = %args.kafka.topic,
        partitions = sink.partition_count(),
        compression = %args.compression,
        timezone = %args.timezone,
        "publishing trades"
    );
    let produced = sink.produced_counter();

    let live = args.replay.replay.is_none();
    let open = async {
        if !live {
            return open_source(&args.binance, &args.replay, metrics.clone()).await;
        }
        let mut config = args.binance.config()?;
        if config.all_perpetuals.is_some() {
            // Resuming needs the symbols before connecting.
            config.symbols = resolve_all_perpetuals(&config).await?;
        }
        (config.resume_after, config.quiet_until) =
            resume_points(&kafka, &args, &config.symbols, &mut sink, &metrics).await?;
        config.backfill.max_resume_backfill = args.resume_backfill_max;
        connect_live(config, metrics.clone()).await
    };
    // Ctrl-C during the resume scan or while connecting stops at once.
    let source = tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        source = open => source?,
    };

    let progress = tokio::spawn(log_progress(produced.clone(), started, shutdown.clone()));
    // The markers vouch for what `pulse run` would close: the same watermark
    // rules, on the same trades (the live lanes release them in id order;
    // a replay's ids are checked here).
    let watermarks = Aggregator::new(AggregatorConfig {
        track_sequence: !live,
        ..AggregatorConfig::default()
    })?;
    let result = Pipeline::new(source, metrics.clone())
        .watermarks(watermarks)
        .progress_markers(args.marker_interval)
        .trade_sink(Box::new(sink))
        .run(shutdown.clone())
        .await;
    progress.abort();
    if result.is_err() && live {
        // The trades received but not on the topic are not lost: the next
        // start resumes where the topic ends.
        tracing::warn!(
            published = produced.load(Ordering::Relaxed),
            "stopped before every trade received was on the topic; the next pulse produce resumes where the topic ends and backfills the rest over REST"
        );
    }
    let summary = result.context("publishing trades")?;
    check_replay_found_trades(&args.replay, &summary, &metrics)?;
    let published = produced.load(Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        published,
        received = summary.trades,
        // Held behind id gaps at the stop (see the warning above).
        held = metrics.source_totals().held,
        missing = metrics.source_totals().missing,
        unchecked_outages = metrics.source_totals().unchecked,
        topic = %args.kafka.topic,
        seconds = format_args!("{seconds:.1}"),
        per_second = format_args!("{:.0}", published as f64 / seconds.max(1e-3)),
        finished = summary.source_ended,
        "done"
    );
    Ok(())
}

/// Each symbol's last aggTrade already on the topic, where publishing
/// resumes, and, for symbols with none that an earlier producer followed,
/// the time its progress markers vouched for them up to; pins each symbol
/// found to the partition its records are in.
async fn resume_points(
    kafka: &KafkaConfig,
    args: &ProduceArgs,
    symbols: &[Symbol],
    sink: &mut KafkaTradeSink,
    metrics: &Metrics,
) -> anyhow::Result<(BTreeMap<Symbol, ResumePoint>, BTreeMap<Symbol, i64>)> {
    let client = kafka.connect().await?;
    let topic = &args.kafka.topic;
    // The live source publishes aggTrades only.
    let scan = last_trades_on_topic(
        &client,
        topic,
        symbols,
        TradeKind::AggTrade,
        args.resume_scan,
    )
    .await
    .context("looking for the last trades on the topic")?;
    for (symbol, trade) in &scan.last {
        tracing::info!(%symbol, last_id = trade.id, trade_time_ms = trade.trade_time_ms, partition = trade.partition, offset = trade.offset, "found the topic's last aggTrade");
    }
    for (symbol, (kind, id)) in &scan.other_kind {
        tracing::info!(%symbol, ?kind, highest_id = id, "the topic holds only trades of another kind for this symbol (ids not comparable): it starts from the live stream");
    }
    for symbol in &scan.beyond_scan {
        metrics
            .resume_not_found
            .get_or_create(&Metrics::symbol(symbol.as_str()))
            .inc();
    }
    if !scan.beyond_scan.is_empty() {
        tracing::warn!(
            symbols = %short_list(&scan.beyond_scan),
            resume_scan = args.resume_scan,
            "no aggTrade of these symbols within --resume-scan records per partition: they start from the live stream, and what they missed while no producer ran is not backfilled (pulse_resume_not_found_total)"
        );
    }
    // A symbol with no trade on the topic that an earlier producer's
    // markers name was followed, quiet: what it traded since is looked up.
    let (quiet, new): (Vec<Symbol>, Vec<Symbol>) =
        scan.new.iter().partition(|s| scan.vouched.contains_key(s));
    if !new.is_empty() {
        tracing::info!(count = new.len(), symbols = %short_list(&new), "new to the topic: starting from the live stream");
    }
    let quiet_until = quiet.iter().map(|s| (*s, scan.vouched[s])).collect();
    for (symbol, partition) in &scan.partitions {
        if !sink.pin(*symbol, *partition) {
            tracing::warn!(%symbol, partition, "its records are in a partition the topic no longer lists; using the hash");
        }
    }
    for (symbol, partition) in sink.placement().moved() {
        tracing::info!(%symbol, partition, hash_partition = pulse_io::kafka::partition_for(&symbol, sink.partition_count()), "keeping the symbol in the partition its records are in (the topic gained partitions)");
    }
    tracing::info!(
        records_read = scan.records_read,
        unreadable = scan.unreadable,
        found = scan.last.len(),
        "resume scan done"
    );
    let points = scan
        .last
        .into_iter()
        .map(|(symbol, t)| {
            let point = ResumePoint {
                id: t.id,
                trade_time_ms: t.trade_time_ms,
            };
            (symbol, point)
        })
        .collect();
    Ok((points, quiet_until))
}

async fn log_progress(produced: Arc<AtomicU64>, started: Instant, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let published = produced.load(Ordering::Relaxed);
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            published,
            per_second = format_args!("{:.0}", published as f64 / seconds.max(1e-3)),
            "produce progress"
        );
    }
}
