//! `pulse run`: source → aggregator → terminal, CSV and the live dashboard
//! (and optionally ClickHouse and Kafka), all in one process.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use pulse_core::{Aggregator, AggregatorConfig, LatePolicy};
use pulse_io::clickhouse::ClickHouseWindowSink;
use pulse_io::kafka::{KafkaTradeSink, ProducerConfig};
use pulse_io::{
    CancellationToken, CsvSink, Metrics, Pipeline, PipelineError, SourceError, TerminalSink,
    WindowSink,
};

use crate::binance_args::BinanceArgs;
use crate::clickhouse_args::ClickHouseArgs;
use crate::dashboard::{Dashboard, ListenAddr, Status};
use crate::duration::parse_duration;
use crate::http;
use crate::produce::KafkaArgs;
use crate::run_summary::{log_by_symbol, summary_line};
use crate::source_args::{ReplayArgs, check_replay_found_trades, open_source};

/// How often `--brokers` gets progress markers (see `pulse produce --marker-interval`).
const MARKER_INTERVAL: Duration = Duration::from_millis(200);
/// How long browsers get to receive the last windows and status at exit.
const DASHBOARD_GRACE: Duration = Duration::from_secs(2);

/// Flags of `pulse run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    binance: BinanceArgs,

    #[command(flatten)]
    replay: ReplayArgs,

    /// Also write every window to this CSV file (header: the `pulse_metrics` column names); `-` writes it to standard output instead of the table.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,

    /// Serve the live dashboard and /metrics on this address, or `off`.
    #[arg(
        long,
        value_name = "ADDR|off",
        env = "PULSE_DASHBOARD",
        default_value = "127.0.0.1:8088"
    )]
    dashboard: ListenAddr,

    /// Windows kept per symbol for browsers that open the dashboard late.
    #[arg(long, value_name = "N", default_value_t = 3600, value_parser = clap::value_parser!(u32).range(1..))]
    history: u32,

    /// After a replay ends, keep serving the dashboard until Ctrl-C.
    #[arg(long)]
    keep_serving: bool,

    /// Do not print a line per window.
    #[arg(long, short)]
    quiet: bool,

    /// Also store every window in ClickHouse at this HTTP URL, e.g.
    /// http://127.0.0.1:8123 (tables are created if missing).
    #[arg(long, value_name = "URL")]
    clickhouse: Option<String>,

    #[command(flatten)]
    store: ClickHouseArgs,

    /// Least time between two inserts into ClickHouse, e.g. 200ms or 1s.
    /// Short, so a live window reaches the table within a few hundred ms;
    /// at most five inserts a second keeps ClickHouse comfortable.
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = parse_duration, requires = "clickhouse")]
    insert_interval: Duration,

    /// Also publish every trade to Kafka at these brokers (comma-separated
    /// host:port), in the `pulse produce` message format. Unlike `pulse
    /// produce`, a restart does not resume where the topic ends.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    brokers: Option<Vec<String>>,

    /// Topic for --brokers (created if missing).
    #[arg(long, default_value = "trades_btc", requires = "brokers")]
    topic: String,

    /// How long one Kafka request may take, retries included, before pulse
    /// logs and counts the failure and tries again (see `pulse produce`).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration, requires = "brokers")]
    kafka_timeout: Duration,
}

pub async fn run(args: RunArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let started = Instant::now();
    let metrics = Metrics::new();
    let live = args.replay.replay.is_none();
    let mut status = initial_status(&args);

    // A replay file is checked at once, before anything is printed about
    // the run; a live source connects after the sinks, so a bad --csv path
    // or a busy port fails before connecting.
    let mut replay = None;
    if !live {
        // Ctrl-C while a pipe's writer has sent nothing yet stops at once.
        let source = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            source = open_source(&args.binance, &args.replay, metrics.clone()) => source,
        };
        replay = Some(source.map_err(|e| with_hint(e, live))?);
    }
    let mut sinks: Vec<Box<dyn WindowSink>> = Vec::new();
    let csv_to_stdout = args.csv.as_deref() == Some(Path::new("-"));
    // The table would mix into CSV written to standard output.
    if !args.quiet && !csv_to_stdout {
        sinks.push(Box::new(TerminalSink::stdout()));
    }
    match &args.csv {
        Some(_) if csv_to_stdout => sinks.push(Box::new(
            CsvSink::stdout().context("writing CSV to standard output")?,
        )),
        Some(path) => sinks.push(Box::new(
            CsvSink::create(path).context("opening the --csv file")?,
        )),
        None => {}
    }
    if args.keep_serving && args.dashboard.0.is_none() {
        tracing::warn!(
            "--keep-serving does nothing with --dashboard off: there is nothing to serve"
        );
    }
    let dashboard = match args.dashboard.0 {
        Some(addr) => {
            let dashboard = Dashboard::new(args.history as usize, &status);
            let routes = http::metrics_routes(metrics.clone()).merge(dashboard.routes());
            // Its own token: after Ctrl-C it still sends the windows flushed
            // at shutdown and the final status, then stops.
            let server = http::serve(addr, routes, CancellationToken::new())
                .await
                .context(
                    "starting the dashboard (pick another with --dashboard ADDR, or --dashboard off)",
                )?;
            eprintln!("dashboard: http://{}/", server.addr);
            sinks.push(Box::new(dashboard.sink()));
            Some((dashboard, server))
        }
        None => None,
    };

    if let Some(url) = &args.clickhouse {
        metrics.init_sink("clickhouse");
        let config = args.store.config(url)?;
        let table = config.metrics_table();
        // Opening waits for the server (up to its timeout): say on what.
        tracing::info!(%url, %table, "connecting to ClickHouse");
        let sink = ClickHouseWindowSink::connect(config)
            .await
            .with_context(|| format!("opening {table} on ClickHouse at {url}"))?
            .insert_interval(Some(args.insert_interval))
            .metrics(metrics.clone());
        tracing::info!(%url, %table, "storing windows in ClickHouse");
        sinks.push(Box::new(sink));
    }
    let kafka = match &args.brokers {
        Some(brokers) => Some(connect_kafka(&args, brokers, &metrics).await?),
        None => None,
    };

    // Ctrl-C while connecting (retries can take a while) stops at once.
    let source = match replay {
        Some(source) => source,
        None => tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            source = open_source(&args.binance, &args.replay, metrics.clone()) => {
                source.map_err(|e| with_hint(e, live))?
            }
        },
    };
    // One sequence tracker per trade path: the live source's lanes already
    // hand out each symbol's trades in id order, once; a replay's are
    // checked here. A window closes as soon as a later trade proves it
    // complete, or once the symbol has been quiet for the idle margin; a
    // trade that still falls in it (backfilled live, or out of order in a
    // file) re-emits it with a higher version, as `pulse consume` does, so
    // `run --replay` and `produce --replay` + `consume` store the same.
    let aggregator = Aggregator::new(AggregatorConfig {
        track_sequence: !live,
        late_policy: LatePolicy::Reemit,
        ..AggregatorConfig::default()
    })?;
    let mut pipeline = Pipeline::new(source, metrics.clone()).aggregator(aggregator);
    for sink in sinks {
        pipeline = pipeline.window_sink(sink);
    }
    if let Some(kafka) = kafka {
        // Progress markers, as `pulse produce` writes them.
        pipeline = pipeline
            .trade_sink(Box::new(kafka))
            .progress_markers(MARKER_INTERVAL);
    }

    let (summary, result) = pipeline.run_and_summarise(shutdown.clone()).await;
    if let Some((dashboard, _)) = &dashboard {
        status.state = if summary.source_ended && result.is_ok() {
            "ended"
        } else {
            "stopped"
        };
        status.trades = summary.trades;
        // Each window once, as on the summary line.
        status.windows = summary.windows - summary.reemitted;
        dashboard.set_status(&status);
        if !args.keep_serving {
            dashboard.close();
        }
    }
    log_by_symbol(&summary);
    // Also after an error: what was read before it was aggregated and written.
    eprintln!(
        "{}{}",
        summary_line(
            &summary,
            metrics.source_totals(),
            started.elapsed().as_secs_f64()
        ),
        if result.is_err() {
            "; stopped by the error below"
        } else {
            ""
        }
    );
    if let Some(path) = args.csv.as_deref().filter(|_| !csv_to_stdout) {
        eprintln!("csv: {} rows in {}", summary.windows, path.display());
    }
    if let Err(e) = result {
        stop_dashboard(dashboard).await;
        return Err(with_hint(e, live));
    }

    let found = check_replay_found_trades(&args.replay, &summary, &metrics);

    if found.is_ok() && args.keep_serving && dashboard.is_some() && !shutdown.is_cancelled() {
        eprintln!("still serving the dashboard; press Ctrl-C to exit");
        shutdown.cancelled().await;
    }
    stop_dashboard(dashboard).await;
    found
}

/// Ends the browsers' event streams after their last updates, then stops
/// the dashboard's server.
async fn stop_dashboard(dashboard: Option<(Dashboard, http::Server)>) {
    if let Some((dashboard, server)) = dashboard {
        dashboard.close();
        server.stop(DASHBOARD_GRACE).await;
    }
}

/// The producer for `--brokers`, with the topic created if missing.
async fn connect_kafka(
    args: &RunArgs,
    brokers: &[String],
    metrics: &Metrics,
) -> anyhow::Result<KafkaTradeSink> {
    metrics.init_sink("kafka");
    let topic = &args.topic;
    let kafka = KafkaArgs {
        brokers: brokers.to_vec(),
        topic: topic.clone(),
        kafka_timeout: args.kafka_timeout,
    }
    .config();
    let producer = ProducerConfig {
        topic: topic.to_owned(),
        ..ProducerConfig::default()
    };
    let sink = KafkaTradeSink::connect(&kafka, producer)
        .await
        .with_context(|| format!("opening topic {topic} on {}", brokers.join(",")))?;
    tracing::info!(%topic, partitions = sink.partition_count(), "publishing trades to Kafka");
    Ok(sink)
}

/// The status the dashboard shows while running.
fn initial_status(args: &RunArgs) -> Status {
    let (source, symbols) = match &args.replay.replay {
        Some(file) => (
            format!(
                "replay of {}",
                file.file_name()
                    .unwrap_or(file.as_os_str())
                    .to_string_lossy()
            ),
            // A replay shows whatever symbols its file holds.
            Vec::new(),
        ),
        None => (
            "Binance USD-M futures, live".to_string(),
            args.binance
                .listed()
                .iter()
                .map(|s| s.to_string())
                .collect(),
        ),
    };
    Status {
        state: "running",
        source,
        symbols,
        trades: 0,
        windows: 0,
    }
}

/// `err`, plus what to do about it when a live source could not get through.
fn with_hint(err: impl Into<anyhow::Error>, live: bool) -> anyhow::Error {
    let err = err.into();
    if live && is_unreachable(&err) {
        anyhow::anyhow!(
            "{}\nhint: Binance cannot be reached from here. Check the network (or \
             --binance-ws-url), or run offline from a recording: pulse run --replay FILE --speed 10",
            crate::report::describe(&err)
        )
    } else {
        err
    }
}

fn is_unreachable(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<SourceError>(),
            Some(SourceError::Unreachable { .. })
        ) || matches!(
            cause.downcast_ref::<PipelineError>(),
            Some(PipelineError::Source(SourceError::Unreachable { .. }))
        )
    })
}
