//! `pulse consume`: a Kafka topic → 1-second windows → ClickHouse.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use pulse_core::AggregatorConfig;
use pulse_io::consumer::{Consumer, ConsumerConfig, PartitionSelection};
use pulse_io::kafka::FetchConfig;
use pulse_io::{CancellationToken, Metrics};

use crate::clickhouse_args::ClickHouseArgs;
use crate::duration::parse_duration;
use crate::http;
use crate::produce::KafkaArgs;

/// Flags of `pulse consume`.
#[derive(Debug, Args)]
#[command(after_help = "\
Windows go to <database>.<table> (created if missing, ReplacingMergeTree keyed \
by (symbol, window_start)); read them with SELECT ... FINAL. Each partition's \
position is kept in <database>.pulse_consumer_positions, written after the \
windows it covers, so a restart (even after kill -9) resumes exactly: no \
window is lost or counted twice. SIGINT/SIGTERM store open windows and \
pending batches, then exit 0.

Examples:
  pulse consume --brokers 127.0.0.1:19092 --clickhouse http://127.0.0.1:8123
  pulse consume --instance 0/3   # and 1/3, 2/3 on other machines")]
pub struct ConsumeArgs {
    #[command(flatten)]
    kafka: KafkaArgs,

    /// ClickHouse HTTP endpoint.
    #[arg(
        long,
        value_name = "URL",
        env = "PULSE_CLICKHOUSE_URL",
        default_value = "http://127.0.0.1:8123"
    )]
    clickhouse: String,

    #[command(flatten)]
    store: ClickHouseArgs,

    /// Read only these partitions, e.g. 0,2 (default: all). Consumers given
    /// disjoint partitions together write the same table as one consumer.
    #[arg(long, value_name = "LIST", conflicts_with = "instance")]
    partitions: Option<PartitionSelection>,

    /// Be instance I of N consumers: read partitions p with p % N == I.
    #[arg(long, value_name = "I/N", env = "PULSE_CONSUMER_INSTANCE")]
    instance: Option<PartitionSelection>,

    /// Least time between two inserts of windows (and of positions), e.g.
    /// 1s or 250ms: the default makes two inserts per second per table.
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = parse_duration)]
    insert_interval: Duration,

    /// How long the watermark trails the newest trade time, in ms, for
    /// symbols the producer's progress markers do not close sooner. A trade
    /// that comes after its window closed re-emits the corrected window
    /// (within 60 s of the watermark; older ones are counted as late).
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    allowed_lateness_ms: i64,

    /// How often to look for partitions the topic gained, e.g. 5s; new
    /// partitions the selection takes are read without a restart. 0 turns
    /// it off.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    partition_refresh: Duration,

    /// Most bytes per fetch request.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20,
        value_parser = clap::value_parser!(i32).range(1..))]
    fetch_max_bytes: i32,

    /// Serve Prometheus /metrics on this address, e.g. 0.0.0.0:9465.
    #[arg(long, value_name = "ADDR", env = "PULSE_METRICS_ADDR")]
    metrics: Option<SocketAddr>,
}

pub async fn run(args: ConsumeArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let started = Instant::now();
    let metrics = Metrics::new();
    metrics.init_sink("clickhouse");
    http::serve_metrics(args.metrics, &metrics, &shutdown).await?;
    let selection = match (&args.partitions, &args.instance) {
        (Some(PartitionSelection::Instance { .. }), _) => {
            anyhow::bail!("--partitions takes a list like 0,2; use --instance I/N for an instance")
        }
        (Some(list), _) => list.clone(),
        (None, Some(instance @ PartitionSelection::Instance { .. })) => instance.clone(),
        (None, Some(_)) => anyhow::bail!("--instance takes I/N, e.g. 0/3"),
        (None, None) => PartitionSelection::All,
    };
    let clickhouse = args.store.config(&args.clickhouse)?;
    let config = ConsumerConfig {
        topic: args.kafka.topic.clone(),
        partitions: selection.clone(),
        fetch: FetchConfig {
            max_bytes: args.fetch_max_bytes,
            ..FetchConfig::default()
        },
        aggregator: AggregatorConfig {
            allowed_lateness_ms: args.allowed_lateness_ms,
            ..ConsumerConfig::default().aggregator
        },
        insert_interval: args.insert_interval,
        partition_refresh: args.partition_refresh,
        ..ConsumerConfig::default()
    };
    tracing::info!(
        topic = %args.kafka.topic,
        partitions = %selection,
        table = %clickhouse.metrics_table(),
        clickhouse = %args.clickhouse,
        "consuming"
    );
    let consumer = Consumer::new(args.kafka.config(), clickhouse, config, metrics)?;
    let summary = consumer
        .run(shutdown)
        .await
        .context("consuming trades into ClickHouse")?;
    tracing::info!(
        partitions = ?summary.partitions,
        records = summary.records,
        // As on the progress lines: every trade read, then what became of it.
        trades = summary.trades + summary.duplicates + summary.late_trades,
        accepted = summary.trades,
        duplicates = summary.duplicates,
        late = summary.late_trades,
        too_late = summary.late_uncorrected,
        rejected = summary.rejected,
        replayed = summary.replayed,
        windows = summary.windows,
        inserts = summary.inserts,
        seconds = format_args!("{:.1}", started.elapsed().as_secs_f64()),
        "done"
    );
    Ok(())
}
