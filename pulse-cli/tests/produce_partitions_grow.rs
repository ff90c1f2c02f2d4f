//! A topic that gains partitions while no producer runs: the restarted live
//! `pulse produce` keeps each symbol in the partition its records are in
//! (the hash over the new count would move most of them), backfills the
//! trades missed meanwhile, and `pulse consume` then stores exactly one row
//! per window, equal to what pulse-core computes from the recording.
//!
//! tansu 0.6 has no CreatePartitions request (nor has rskafka a client for
//! it), so the test grows the topic as that request would: with the broker
//! stopped, it adds the partitions to tansu's sqlite catalogue (the topic's
//! partition count, plus a `topition` and a `watermark` row per new
//! partition, as tansu's own create-topic writes them), then restarts it.

mod produce_consume_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use produce_consume_support::{
    ALTCOINS, Pulse, WAIT, assert_same_rows, capture, consume_args, expected_rows, scrape_metrics,
    store, trades, wait_processed,
};
use pulse_core::{Symbol, Trade, TradeKind};
use pulse_io::kafka::{
    FetchConfig, KafkaClient, PartitionReader, decode_trade, is_progress_key, last_trades_on_topic,
    partition_for, topic_partitions,
};
use pulse_testkit::TansuProcess;
use pulse_testkit::fake_binance::{FakeBinance, FakeConfig, Pace, assert_same_trades};

/// Adds partitions to `topic` in the stopped broker's sqlite file, up to
/// `partitions` in all.
fn grow_partitions(db: &Path, topic: &str, partitions: i32) {
    const SCRIPT: &str = r#"
import sqlite3, sys
db, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = sqlite3.connect(db)
(tid, old), = c.execute("select id, partitions from topic where name = ?", (topic,)).fetchall()
for p in range(old, n):
    c.execute("insert into topition (topic, partition) values (?, ?)", (tid, p))
    c.execute("insert into watermark (topition) select id from topition where topic = ? and partition = ?", (tid, p))
c.execute("update topic set partitions = ? where id = ?", (n, tid))
c.commit()
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(db)
        .args([topic, &partitions.to_string()])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "growing {topic}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Each partition's trades, and the offset after its last trade; read until
/// a fetch brings no trade.
async fn read_partitions(
    client: &KafkaClient,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, (Vec<Trade>, i64)> {
    let mut all = BTreeMap::new();
    for partition in 0..partitions {
        let mut reader =
            PartitionReader::open(client, topic, partition, None, FetchConfig::default())
                .await
                .unwrap();
        let (mut trades, mut end) = (Vec::new(), 0);
        loop {
            let records = reader.fetch().await.unwrap();
            if records.iter().all(|r| is_progress_key(r.key.as_deref())) {
                break;
            }
            for r in records {
                if !is_progress_key(r.key.as_deref()) {
                    trades.push(decode_trade(r.value.as_deref().unwrap()).unwrap());
                    end = r.offset + 1;
                }
            }
        }
        all.insert(partition, (trades, end));
    }
    all
}

#[tokio::test]
async fn a_topic_that_gains_partitions_keeps_each_symbol_in_one_stream() {
    let dir = tempfile::tempdir().unwrap();
    let db_file = dir.path().join("tansu.db");
    let Some(mut broker) = TansuProcess::start_sqlite(&db_file).await else {
        return;
    };
    let Some(db) = pulse_testkit::clickhouse().await else {
        return;
    };
    let Some(path) = capture(ALTCOINS) else {
        return;
    };
    // About 11 s of market, so the producer can be killed in the middle.
    let config = FakeConfig {
        pace: Pace::TradesPerSecond(50),
        ..FakeConfig::default()
    };
    let fake = FakeBinance::start_with(trades(&path), config).await;
    let recorded = fake.trades().to_vec();
    let symbols = fake.symbols();
    let moved: Vec<Symbol> = symbols
        .iter()
        .copied()
        .filter(|s| partition_for(s, 3) != 0)
        .collect();
    assert!(!moved.is_empty(), "the hash over 3 would move some symbols");

    let topic = pulse_testkit::unique_name("pulse_test");
    let brokers = broker.addr();
    let symbol_list: Vec<String> = symbols.iter().map(|s| s.to_string()).collect();
    let symbol_list = symbol_list.join(",");
    let (ws, rest) = (fake.ws_base(), fake.rest_base());
    let args = [
        "produce",
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--partitions",
        "1",
        "--symbols",
        &symbol_list,
        "--binance-ws-url",
        &ws,
        "--binance-rest-url",
        &rest,
        "--metrics",
        "127.0.0.1:0",
    ];
    let mut first = Pulse::spawn("produce #1", &args);
    let client = pulse_testkit::kafka_client(broker.brokers()).await.unwrap();
    // Every symbol on the topic first: a symbol new to it starts from the
    // live stream, and this test is about symbols that have a partition.
    pulse_testkit::wait_until(WAIT, "every symbol is on the topic", || async {
        last_trades_on_topic(&client, &topic, &symbols, TradeKind::AggTrade, 10_000)
            .await
            .is_ok_and(|scan| scan.last.len() == symbols.len())
    })
    .await;
    assert!(
        fake.published() + 100 < recorded.len(),
        "killed mid-market: {} of {}",
        fake.published(),
        recorded.len()
    );
    first.assert_running();
    first.kill().await;

    broker.stop().await;
    grow_partitions(&db_file, &topic, 3);
    broker.restart().await;
    let client = pulse_testkit::kafka_client(broker.brokers()).await.unwrap();
    assert_eq!(
        topic_partitions(&client, &topic).await.unwrap(),
        Some(vec![0, 1, 2])
    );
    // The market went on while no producer ran; the restart must fetch that
    // over REST.
    let down_until = (fake.published() + 50).min(recorded.len());
    pulse_testkit::wait_until(WAIT, "the market moves on", || async {
        fake.published() >= down_until
    })
    .await;

    let mut second = Pulse::spawn("produce #2", &args);
    pulse_testkit::wait_until(WAIT, "the market ends", || async {
        fake.stats().playback_done
    })
    .await;
    pulse_testkit::wait_until(WAIT, "every trade is on the topic", || async {
        let on_topic = read_partitions(&client, &topic, 3).await;
        on_topic.values().map(|(t, _)| t.len()).sum::<usize>() >= recorded.len()
    })
    .await;
    let metrics = scrape_metrics(&second).await;
    second.terminate().await;
    let output = second.output();
    assert!(
        output.contains("keeping the symbol in the partition its records are in"),
        "{output}"
    );

    let on_topic = read_partitions(&client, &topic, 3).await;
    let (in_first, end) = &on_topic[&0];
    assert_same_trades(&recorded, in_first);
    for partition in [1, 2] {
        assert!(
            on_topic[&partition].0.is_empty(),
            "no trade moved to partition {partition}"
        );
    }
    let backfilled: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("pulse_trades_backfilled_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(backfilled > 0, "the downtime was backfilled:\n{metrics}");
    let traded: BTreeSet<Symbol> = in_first.iter().map(|t| t.symbol).collect();
    assert_eq!(traded.len(), symbols.len());

    let mut consume = Pulse::spawn(
        "consume",
        &consume_args(&brokers, &topic, db.url(), db.database(), "grown"),
    );
    let store = store(db.url(), db.database(), "grown");
    wait_processed(&store, &topic, &[(0, *end)].into()).await;
    consume.terminate().await;
    // One row per (symbol, window), each exactly pulse-core's.
    assert_same_rows(
        &store.select_final().await.unwrap(),
        &expected_rows(&recorded),
    );
}
