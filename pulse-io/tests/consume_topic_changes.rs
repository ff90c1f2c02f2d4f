//! The consumer when the topic under it changes: a broker that loses its
//! data (sqlite storage deleted) between two runs and while running, a
//! topic that gains a partition while the consumer runs, and a positions
//! table from before positions carried a record hash.

mod consume_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use consume_support::{
    ALTCOINS, BUSY_BTC, RunningConsumer, capture, clickhouse_config, consumer_config, ends,
    expected_rows, metric_value, producer, publish,
};
use pulse_core::Trade;
use pulse_io::clickhouse::{WindowRow, WindowStore};
use pulse_io::consumer::PartitionSelection;
use pulse_io::sink::TradeSink;
use pulse_testkit::{ClickHouseProcess, TansuProcess};

const WAIT: Duration = Duration::from_secs(90);
const HOUR_MS: i64 = 3_600_000;

/// A durable broker (its sqlite file in `dir`) and a ClickHouse server.
struct Servers {
    _dir: tempfile::TempDir,
    db_file: PathBuf,
    broker: TansuProcess,
    clickhouse: ClickHouseProcess,
}

impl Servers {
    /// `None` (the test skips) without the servers, outside CI.
    async fn start() -> Option<Servers> {
        let dir = tempfile::tempdir().unwrap();
        let db_file = dir.path().join("tansu.db");
        let broker = TansuProcess::start_sqlite(&db_file).await?;
        let clickhouse = ClickHouseProcess::start().await?;
        Some(Servers {
            _dir: dir,
            db_file,
            broker,
            clickhouse,
        })
    }

    /// A capture's trades, the servers and a fresh topic; `None` (the
    /// test skips) without the capture, or without the servers outside CI.
    async fn start_with(capture_name: &str) -> Option<(Vec<Trade>, Servers, String)> {
        let trades = capture(capture_name)?;
        let servers = Servers::start().await?;
        Some((trades, servers, pulse_testkit::unique_name("pulse_test")))
    }

    /// The broker loses its volume: killed, its sqlite files deleted,
    /// started again empty on the same port.
    async fn lose_volume(&mut self) {
        self.broker.kill();
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = self.db_file.as_os_str().to_owned();
            name.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(name));
        }
        self.broker.restart().await;
    }
}

/// `trades` moved `by_ms` later: the same market, other records and windows.
fn shifted(trades: &[Trade], by_ms: i64) -> Vec<Trade> {
    trades
        .iter()
        .map(|t| Trade {
            trade_time_ms: t.trade_time_ms + by_ms,
            event_time_ms: t.event_time_ms + by_ms,
            ..*t
        })
        .collect()
}

/// Windows of several disjoint captures, ordered like `select_final`.
fn rows_of(captures: &[&[Trade]]) -> Vec<WindowRow> {
    let mut rows: Vec<WindowRow> = captures.iter().flat_map(|c| expected_rows(c)).collect();
    rows.sort_by(|a, b| (&a.symbol, a.window_start).cmp(&(&b.symbol, b.window_start)));
    rows
}

/// Waits until the table holds as many rows as `expected` (or the deadline
/// passes), then compares them, naming the first difference.
async fn wait_for_exact_rows(store: &WindowStore, expected: &[WindowRow]) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let rows = loop {
        let rows = store.select_final().await.unwrap_or_default();
        if rows.len() >= expected.len() || tokio::time::Instant::now() >= deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    consume_support::assert_same_rows(&rows, expected);
}

fn resets(consumer: &RunningConsumer, reason: &str) -> u64 {
    let series = format!(
        "pulse_topic_resets_total{{topic=\"{}\",partition=\"0\",reason=\"{reason}\"}}",
        consumer.topic
    );
    metric_value(&consumer.metrics, &series).unwrap_or(0)
}

/// Capture A is consumed; the broker loses its data; capture B, twice as
/// long and an hour later, goes into the new topic. The restarted consumer
/// must notice its stored position belongs to the old topic (another record
/// stands at its offset) and aggregate every record of B once. Then, while
/// it runs, the broker loses its data again and a shorter capture C comes:
/// the partition now ends before the position, and C is read from its start.
#[tokio::test]
async fn a_broker_that_lost_its_data_is_read_again_from_the_start() {
    let Some((trades, mut servers, topic)) = Servers::start_with(BUSY_BTC).await else {
        return;
    };
    let brokers = servers.broker.brokers();
    let config = || consumer_config(&topic, PartitionSelection::All);

    let a = &trades[..4_000];
    let b = shifted(&trades[..8_000], HOUR_MS);
    let c = shifted(&trades[8_500..9_500], 2 * HOUR_MS);

    publish(&brokers, &topic, 1, a, 500).await;
    let consumer =
        RunningConsumer::start(&brokers, clickhouse_config(&servers.clickhouse), config());
    consumer.wait_processed(&ends(a, 1), WAIT).await;
    let summary = consumer.stop().await;
    assert_eq!(summary.trades, a.len() as u64);

    servers.lose_volume().await;
    publish(&brokers, &topic, 1, &b, 500).await;
    let consumer =
        RunningConsumer::start(&brokers, clickhouse_config(&servers.clickhouse), config());
    consumer.wait_processed(&ends(&b, 1), WAIT).await;
    // B's last windows are still open; the rest is stored, none missing.
    let stored = consumer.store.select_final().await.unwrap();
    let expected_b = expected_rows(&b);
    let b_start = expected_b[0].window_start;
    let stored_b: Vec<&WindowRow> = stored
        .iter()
        .filter(|r| r.window_start >= b_start)
        .collect();
    assert!(
        stored_b.len() + 5 >= expected_b.len(),
        "{} of {} windows of B stored",
        stored_b.len(),
        expected_b.len()
    );
    for (row, want) in stored_b.iter().zip(&expected_b) {
        assert_eq!(*row, want);
    }
    assert_eq!(resets(&consumer, "replaced"), 1);
    assert_eq!(resets(&consumer, "truncated"), 0);

    // A restart now trusts the new position: B goes on where it was, nothing
    // is reset or counted again.
    let summary = consumer.stop().await;
    assert_eq!(summary.trades, b.len() as u64);
    let b_more = shifted(&trades[8_000..8_500], HOUR_MS);
    publish(&brokers, &topic, 1, &b_more, 500).await;
    let consumer =
        RunningConsumer::start(&brokers, clickhouse_config(&servers.clickhouse), config());
    consumer
        .wait_processed(&ends(&trades[..8_500], 1), WAIT)
        .await;
    assert_eq!(
        resets(&consumer, "replaced") + resets(&consumer, "truncated"),
        0
    );
    let b: Vec<Trade> = b.into_iter().chain(b_more).collect();

    // The broker loses its data again, under the running consumer.
    servers.lose_volume().await;
    publish(&brokers, &topic, 1, &c, 500).await;
    pulse_testkit::wait_until(
        WAIT,
        "the consumer sees the partition end before its position",
        || async {
            assert!(!consumer.is_finished(), "the consumer stopped early");
            resets(&consumer, "truncated") == 1
        },
    )
    .await;
    let new_end = c.len() as i64;
    pulse_testkit::wait_until(
        WAIT,
        "the position moves to the new topic's end",
        || async {
            consumer
                .store
                .load_positions(&topic)
                .await
                .is_ok_and(|p| p.get(&0).is_some_and(|p| p.next_offset == new_end))
        },
    )
    .await;
    let store = consumer.store.clone();
    let summary = consumer.stop().await;
    assert_eq!(
        summary.trades,
        (b.len() - 8_000 + c.len()) as u64,
        "B is not read again, C once"
    );
    assert_eq!(summary.rejected, 0);
    wait_for_exact_rows(&store, &rows_of(&[a, &b, &c])).await;
}

/// A position that ends on a progress marker: the broker loses its data
/// and other trades at the same times come, as many, so the same
/// watermarks land at the same offset. Their marker must still differ
/// (it names the record before it), so the restarted consumer finds its
/// position replaced and reads the new trades, not only what follows.
#[tokio::test]
async fn a_position_ending_on_a_marker_is_not_taken_for_another_topics() {
    position_ending_on_a_marker(false).await;
}

/// The same, with the producer restarted between the trades and the
/// marker: its first marker names the record before it too, read back
/// from the partition.
#[tokio::test]
async fn a_restarted_producers_first_marker_names_the_record_before_it() {
    position_ending_on_a_marker(true).await;
}

async fn position_ending_on_a_marker(restart_before_marker: bool) {
    let Some((trades, mut servers, topic)) = Servers::start_with(BUSY_BTC).await else {
        return;
    };
    let brokers = servers.broker.brokers();
    let config = || consumer_config(&topic, PartitionSelection::All);
    let a = &trades[..3_000];
    let other_ids = |t: &Trade| Trade {
        id: t.id + 1_000_000_000,
        ..*t
    };
    let b1: Vec<Trade> = a.iter().map(other_ids).collect();
    let b2 = shifted(&b1, HOUR_MS);
    let end = |trades: &[Trade]| {
        let last = trades.last().unwrap();
        let watermark = last.trade_time_ms - last.trade_time_ms.rem_euclid(1_000) + 1_000;
        BTreeMap::from([(last.symbol, watermark)])
    };
    let publish_ended = |trades: Vec<Trade>| {
        let brokers = brokers.clone();
        let topic = topic.clone();
        async move {
            let mut sink = producer(&brokers, &topic, 1, 500).await;
            sink.write_trades(&trades).await.unwrap();
            if restart_before_marker {
                sink = producer(&brokers, &topic, 1, 500).await;
            }
            sink.write_watermarks(&end(&trades)).await.unwrap();
        }
    };

    publish_ended(a.to_vec()).await;
    let consumer =
        RunningConsumer::start(&brokers, clickhouse_config(&servers.clickhouse), config());
    let with_marker = |n: usize| BTreeMap::from([(0, n as i64 + 1)]);
    consumer.wait_processed(&with_marker(a.len()), WAIT).await;
    assert_eq!(consumer.stop().await.trades, a.len() as u64);

    servers.lose_volume().await;
    publish_ended(b1.clone()).await;
    publish_ended(b2.clone()).await;
    let consumer =
        RunningConsumer::start(&brokers, clickhouse_config(&servers.clickhouse), config());
    consumer
        .wait_processed(&with_marker(b1.len() + 1 + b2.len()), WAIT)
        .await;
    assert_eq!(resets(&consumer, "replaced"), 1);
    let summary = consumer.stop().await;
    assert_eq!(summary.trades, (b1.len() + b2.len()) as u64, "{summary:?}");
}

/// tansu 0.6 has no CreatePartitions, so the topic grows as an operator
/// would grow it there: the broker is stopped, its sqlite catalogue given a
/// second partition, and it starts again. The consumer runs through it,
/// finds the new partition at its next look and reads it from the start.
#[tokio::test]
async fn a_partition_the_topic_gains_is_read_without_a_restart() {
    let Some(sqlite) = sqlite3() else {
        return;
    };
    let Some((trades, mut servers, topic)) = Servers::start_with(ALTCOINS).await else {
        return;
    };
    let brokers = servers.broker.brokers();
    // Symbols that stay on partition 0 once there are two, and the others.
    let (old, new): (Vec<Trade>, Vec<Trade>) = trades
        .iter()
        .partition(|t| pulse_io::kafka::partition_for(&t.symbol, 2) == 0);
    assert!(
        !old.is_empty() && !new.is_empty(),
        "the capture's symbols fill both partitions"
    );

    publish(&brokers, &topic, 1, &old, 100).await;
    let config = pulse_io::consumer::ConsumerConfig {
        partition_refresh: Duration::from_millis(200),
        ..consumer_config(&topic, PartitionSelection::All)
    };
    let consumer = RunningConsumer::start(&brokers, clickhouse_config(&servers.clickhouse), config);
    consumer.wait_processed(&ends(&old, 1), WAIT).await;
    let gauge = format!("pulse_consumer_partitions{{topic=\"{topic}\"}}");
    assert_eq!(metric_value(&consumer.metrics, &gauge), Some(1));

    servers.broker.stop().await;
    add_partition(&sqlite, &servers.db_file, &topic, 1);
    servers.broker.restart().await;
    publish(&brokers, &topic, 2, &new, 100).await;

    let mut grown = BTreeMap::from([(0, old.len() as i64)]);
    grown.insert(1, new.len() as i64);
    consumer.wait_processed(&grown, WAIT).await;
    assert_eq!(metric_value(&consumer.metrics, &gauge), Some(2));
    let store = consumer.store.clone();
    let summary = consumer.stop().await;
    assert_eq!(summary.partitions, vec![0, 1]);
    assert_eq!(summary.trades, trades.len() as u64);
    wait_for_exact_rows(&store, &expected_rows(&trades)).await;
}

/// The topic is recreated with fewer partitions under a running consumer.
/// The partition left behind is named and counted once (it used to be
/// retried with rskafka's warnings only), its open windows are stored at
/// the stop, and the new topic's single partition is read from its start
/// (its first records used to be skipped: the broker's restart raised no
/// error).
#[tokio::test]
async fn a_partition_the_topic_loses_is_counted_and_the_new_one_read_whole() {
    let Some((trades, mut servers, topic)) = Servers::start_with(ALTCOINS).await else {
        return;
    };
    let brokers = servers.broker.brokers();
    let old_ends = ends(&trades, 2);
    assert_eq!(
        old_ends.len(),
        2,
        "the capture's symbols fill both partitions"
    );

    publish(&brokers, &topic, 2, &trades, 100).await;
    let config = pulse_io::consumer::ConsumerConfig {
        partition_refresh: Duration::from_millis(200),
        ..consumer_config(&topic, PartitionSelection::All)
    };
    let consumer = RunningConsumer::start(&brokers, clickhouse_config(&servers.clickhouse), config);
    consumer.wait_processed(&old_ends, WAIT).await;

    servers.lose_volume().await;
    let new = shifted(&trades, HOUR_MS);
    publish(&brokers, &topic, 1, &new, 100).await;
    let gone =
        format!("pulse_topic_resets_total{{topic=\"{topic}\",partition=\"1\",reason=\"gone\"}}");
    pulse_testkit::wait_until(WAIT, "partition 1 is found gone", || async {
        assert!(!consumer.is_finished(), "the consumer stopped early");
        metric_value(&consumer.metrics, &gone) == Some(1)
    })
    .await;
    let gauge = format!("pulse_consumer_partitions{{topic=\"{topic}\"}}");
    pulse_testkit::wait_until(WAIT, "one partition is read now", || async {
        metric_value(&consumer.metrics, &gauge) == Some(1)
    })
    .await;
    // The broker's restart may raise no fetch error: the check before the
    // new records finds partition 0 replaced (or, mid-publish, truncated).
    let partition_0_reset = |c: &RunningConsumer| resets(c, "replaced") + resets(c, "truncated");
    pulse_testkit::wait_until(WAIT, "partition 0 is found reset", || async {
        partition_0_reset(&consumer) > 0
    })
    .await;

    consumer.wait_processed(&ends(&new, 1), WAIT).await;
    assert_eq!(partition_0_reset(&consumer), 1);
    let store = consumer.store.clone();
    let summary = consumer.stop().await;
    assert_eq!(
        summary.trades,
        (trades.len() + new.len()) as u64,
        "{summary:?}"
    );
    assert_eq!(summary.rejected, 0);
    wait_for_exact_rows(&store, &rows_of(&[&trades, &new])).await;
}

/// The `sqlite3` shell, to edit tansu's catalogue; `None` (skip) without it
/// outside CI.
fn sqlite3() -> Option<PathBuf> {
    let found = std::process::Command::new("sqlite3")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    match found {
        true => Some(PathBuf::from("sqlite3")),
        false if pulse_testkit::is_ci() => panic!("sqlite3 is needed (Debian package sqlite3)"),
        false => {
            pulse_testkit::skip("no sqlite3 shell (Debian package sqlite3)");
            None
        }
    }
}

/// Gives `topic` partition `partition` in tansu's sqlite catalogue, as its
/// CreateTopics does for each partition (broker stopped).
fn add_partition(sqlite: &Path, db_file: &Path, topic: &str, partition: i32) {
    let sql = format!(
        "BEGIN;
         UPDATE topic SET partitions = {count} WHERE name = '{topic}';
         INSERT INTO topition (topic, partition) SELECT id, {partition} FROM topic WHERE name = '{topic}';
         INSERT INTO watermark (topition) SELECT tp.id FROM topition tp JOIN topic t ON tp.topic = t.id
           WHERE t.name = '{topic}' AND tp.partition = {partition};
         COMMIT;",
        count = partition + 1
    );
    let out = std::process::Command::new(sqlite)
        .arg(db_file)
        .arg(&sql)
        .output()
        .expect("run sqlite3");
    assert!(
        out.status.success(),
        "sqlite3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A positions table from before `last_record_hash`: start-up adds the
/// column, and the old rows load whole, with the hash unknown (0).
#[tokio::test]
async fn an_older_positions_table_gains_the_hash_column() {
    let Some(server) = ClickHouseProcess::start().await else {
        return;
    };
    let config = clickhouse_config(&server);
    let client = pulse_testkit::clickhouse_client(&config.url);
    client
        .query("CREATE DATABASE pulse")
        .execute()
        .await
        .unwrap();
    let client = client.with_database("pulse");
    let old_ddl = "CREATE TABLE pulse_consumer_positions (metrics_table String, topic String, \
        kafka_partition Int32, resume_offset Int64, next_offset Int64, checkpoints String, \
        version UInt64, updated_at DateTime DEFAULT now()) \
        ENGINE = ReplacingMergeTree(version) ORDER BY (metrics_table, topic, kafka_partition)";
    client.query(old_ddl).execute().await.unwrap();
    client
        .query(
            "INSERT INTO pulse_consumer_positions (metrics_table, topic, kafka_partition, \
             resume_offset, next_offset, checkpoints, version) \
             VALUES ('pulse_metrics', 'trades_btc', 3, 90, 100, '{}', 7)",
        )
        .execute()
        .await
        .unwrap();
    let store = WindowStore::new(config).unwrap();
    store.create_schema().await.unwrap();
    // Twice: the second start-up finds the column and leaves it.
    store.create_schema().await.unwrap();
    let loaded = store.load_positions("trades_btc").await.unwrap();
    assert_eq!(loaded[&3].next_offset, 100);
    assert_eq!(loaded[&3].resume_offset, 90);
    assert_eq!(loaded[&3].last_record_hash, 0);
    let mut newer = loaded[&3].clone();
    newer.version = 8;
    newer.last_record_hash = 42;
    store
        .save_positions("trades_btc", &[newer.clone()])
        .await
        .unwrap();
    assert_eq!(store.load_positions("trades_btc").await.unwrap()[&3], newer);
}
