//! Shared by the Kafka, ClickHouse and consume integration tests: recorded
//! trades, the windows pulse-core computes from them directly, and small
//! helpers to publish and wait.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use pulse_core::{Aggregator, AggregatorConfig, Event, Frame, Trade, parse_frame};
use pulse_io::TradeSink;
use pulse_io::clickhouse::{WindowRow, WindowStore};
use pulse_io::kafka::{KafkaConfig, KafkaTradeSink, PartitionReader, ProducerConfig, decode_trade};

/// Busy single-symbol capture: 21,313 trades, 1,647 in one second.
pub const BUSY_BTC: &str =
    "binance-usdm_btcusdt@trade_2024-08-08T235416Z_2024-08-08T235959Z.jsonl.gz";
/// Five symbols interleaved (spread over three partitions), 574 trades.
pub const ALTCOINS: &str = "binance-usdm_altcoins@aggTrade_2021-04-05_cryptofeed.jsonl.gz";

/// Every trade of a capture in `../shared/data`, in file order; `None`
/// (the test skips) when the data directory is missing.
pub fn capture(name: &str) -> Option<Vec<Trade>> {
    let path = pulse_testkit::data_dir()?.join(name);
    Some(read_capture(&path))
}

pub fn read_capture(path: &Path) -> Vec<Trade> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let lines = BufReader::new(flate2::read::GzDecoder::new(file));
    lines
        .lines()
        .filter_map(
            |line| match parse_frame(line.expect("read line").as_bytes()) {
                Ok(Frame::Trade(trade)) => Some(trade),
                _ => None,
            },
        )
        .collect()
}

/// The rows pulse-core computes from `trades` in one pass, flushed at the
/// end, ordered like [`WindowStore::select_final`].
pub fn expected_rows(trades: &[Trade]) -> Vec<WindowRow> {
    let mut agg = Aggregator::new(AggregatorConfig::default()).unwrap();
    let mut rows = Vec::new();
    let drain = |agg: &mut Aggregator, rows: &mut Vec<WindowRow>| {
        while let Some(event) = agg.poll() {
            if let Event::Window(w) = event {
                rows.push(WindowRow::try_from(&w).unwrap());
            }
        }
    };
    for trade in trades {
        agg.handle_trade(*trade);
        drain(&mut agg, &mut rows);
    }
    agg.flush();
    drain(&mut agg, &mut rows);
    rows.sort_by(|a, b| (&a.symbol, a.window_start).cmp(&(&b.symbol, b.window_start)));
    rows
}

/// A producer to `topic` (made with `partitions` if missing) that writes
/// at most `batch` records a request.
pub async fn producer(
    brokers: &[String],
    topic: &str,
    partitions: i32,
    batch: usize,
) -> KafkaTradeSink {
    KafkaTradeSink::connect(
        &KafkaConfig::new(brokers.iter().cloned()),
        ProducerConfig {
            topic: topic.to_owned(),
            partitions,
            max_batch_records: batch,
            ..ProducerConfig::default()
        },
    )
    .await
    .expect("connect producer")
}

/// Publishes `trades` to `topic` in batches of `batch`, as `pulse produce` does.
pub async fn publish(
    brokers: &[String],
    topic: &str,
    partitions: i32,
    trades: &[Trade],
    batch: usize,
) {
    let mut sink = producer(brokers, topic, partitions, batch).await;
    for chunk in trades.chunks(batch) {
        sink.write_trades(chunk).await.expect("produce");
    }
}

/// The trades `reader` reads from where it stands, until there are at
/// least `count` of them (within a minute).
pub async fn read_trades(reader: &mut PartitionReader, count: usize) -> Vec<Trade> {
    let mut trades = Vec::new();
    let read = async {
        while trades.len() < count {
            let records = reader.fetch().await.expect("fetch");
            trades.extend(
                records
                    .iter()
                    .map(|r| decode_trade(r.value.as_deref().expect("a value")).expect("a trade")),
            );
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .unwrap_or_else(|_| panic!("{count} trades on the topic within a minute"));
    trades
}

/// Asserts `on_topic` holds `expected` once copies are dropped: a produce
/// that got no answer may have been stored after all, and consumers drop
/// the copies by trade id.
pub fn assert_same_trades_once(mut on_topic: Vec<Trade>, expected: &[Trade]) {
    on_topic.sort_by_key(|t| (t.symbol, t.id));
    on_topic.dedup_by_key(|t| (t.symbol, t.id));
    let mut expected = expected.to_vec();
    expected.sort_by_key(|t| (t.symbol, t.id));
    assert_eq!(on_topic, expected);
}

/// Asserts `actual` equals `expected` row by row, naming the first difference.
pub fn assert_same_rows(actual: &[WindowRow], expected: &[WindowRow]) {
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert_eq!(a, e, "row {i} differs");
    }
    assert_eq!(actual.len(), expected.len(), "row count");
}

/// Waits until the table holds `expected` exactly (checked with `FINAL`).
pub async fn wait_for_rows(store: &WindowStore, expected: &[WindowRow], within: Duration) {
    pulse_testkit::wait_until(within, "ClickHouse holds every expected window", || {
        let store = store.clone();
        async move {
            store
                .select_final()
                .await
                .is_ok_and(|rows| rows.len() >= expected.len())
        }
    })
    .await;
}

/// Test settings for a ClickHouse `server`: database `pulse`, short timeouts.
pub fn clickhouse_config(
    server: &pulse_testkit::ClickHouseProcess,
) -> pulse_io::clickhouse::ClickHouseConfig {
    pulse_io::clickhouse::ClickHouseConfig {
        url: server.url(),
        database: "pulse".to_owned(),
        request_timeout: Duration::from_secs(5),
        ..pulse_io::clickhouse::ClickHouseConfig::default()
    }
}

/// A consumer running in-process on a task.
pub struct RunningConsumer {
    pub store: WindowStore,
    pub metrics: pulse_io::Metrics,
    pub topic: String,
    stop: pulse_io::CancellationToken,
    task: tokio::task::JoinHandle<
        Result<pulse_io::consumer::ConsumeSummary, pulse_io::consumer::ConsumeError>,
    >,
}

/// Test settings: short intervals, quick retries.
pub fn consumer_config(
    topic: &str,
    partitions: pulse_io::consumer::PartitionSelection,
) -> pulse_io::consumer::ConsumerConfig {
    pulse_io::consumer::ConsumerConfig {
        topic: topic.to_owned(),
        partitions,
        fetch: pulse_io::kafka::FetchConfig {
            max_bytes: 64 * 1024,
            max_wait: Duration::from_millis(100),
        },
        insert_interval: Duration::from_millis(100),
        retry: pulse_io::RetryPolicy {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(500),
        },
        ..pulse_io::consumer::ConsumerConfig::default()
    }
}

impl RunningConsumer {
    pub fn start(
        brokers: &[String],
        clickhouse: pulse_io::clickhouse::ClickHouseConfig,
        config: pulse_io::consumer::ConsumerConfig,
    ) -> Self {
        let metrics = pulse_io::Metrics::new();
        let store = WindowStore::new(clickhouse.clone()).unwrap();
        let topic = config.topic.clone();
        let kafka = KafkaConfig {
            request_deadline: Duration::from_secs(2),
            ..KafkaConfig::new(brokers.iter().cloned())
        };
        let consumer =
            pulse_io::consumer::Consumer::new(kafka, clickhouse, config, metrics.clone()).unwrap();
        let stop = pulse_io::CancellationToken::new();
        let task = tokio::spawn(consumer.run(stop.clone()));
        RunningConsumer {
            store,
            metrics,
            topic,
            stop,
            task,
        }
    }

    /// Waits until every partition in `ends` is processed up to its end offset.
    pub async fn wait_processed(
        &self,
        ends: &std::collections::BTreeMap<i32, i64>,
        within: Duration,
    ) {
        let what = format!("positions reach {ends:?}");
        pulse_testkit::wait_until(within, &what, || async {
            assert!(!self.task.is_finished(), "the consumer stopped early");
            let Ok(positions) = self.store.load_positions(&self.topic).await else {
                return false;
            };
            ends.iter()
                .all(|(p, end)| positions.get(p).is_some_and(|pos| pos.next_offset >= *end))
        })
        .await;
    }

    /// Whether the consumer's run has returned (it should not before `stop`).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Requests shutdown (as SIGTERM does) and returns the summary.
    pub async fn stop(self) -> pulse_io::consumer::ConsumeSummary {
        self.stop.cancel();
        self.task
            .await
            .expect("consumer task")
            .expect("consumer run")
    }

    /// How often `counter{label}` appears with a value >= `at_least` in the metrics text.
    pub fn metric_at_least(&self, series: &str, at_least: u64) -> bool {
        metric_value(&self.metrics, series).is_some_and(|v| v >= at_least)
    }
}

/// The value of one series (`name{labels}`) in the Prometheus text.
pub fn metric_value(metrics: &pulse_io::Metrics, series: &str) -> Option<u64> {
    metrics.encode().lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        rest.trim().parse::<f64>().ok().map(|v| v as u64)
    })
}

/// End offset of each partition after publishing `trades` once into a
/// fresh topic with `partitions` partitions.
pub fn ends(trades: &[Trade], partitions: i32) -> std::collections::BTreeMap<i32, i64> {
    let mut ends = std::collections::BTreeMap::new();
    for t in trades {
        *ends
            .entry(pulse_io::kafka::partition_for(&t.symbol, partitions))
            .or_insert(0) += 1;
    }
    ends
}
