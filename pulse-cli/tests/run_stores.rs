//! `pulse run --clickhouse URL --brokers LIST`: besides the terminal, the
//! replay's windows land in the real ClickHouse exactly as pulse-core computes
//! them, and every trade lands on the real broker, once and in order.

mod produce_consume_support;

use produce_consume_support::{
    ALTCOINS, Pulse, assert_same_rows, capture, ends, expected_rows, read_topic, store, trades,
};
use pulse_io::kafka::topic_partitions;

#[tokio::test]
async fn run_also_stores_windows_in_clickhouse_and_trades_in_kafka() {
    let Some(kafka) = pulse_testkit::kafka() else {
        return;
    };
    let Some(db) = pulse_testkit::clickhouse().await else {
        return;
    };
    let Some(path) = capture(ALTCOINS) else {
        return;
    };
    let brokers = kafka.brokers().join(",");
    let topic = kafka.topic();
    let trades = trades(&path);

    let mut run = Pulse::spawn(
        "run",
        &[
            "run",
            "--quiet",
            "--dashboard",
            "off",
            "--replay",
            path.to_str().unwrap(),
            "--clickhouse",
            db.url(),
            "--database",
            db.database(),
            "--table",
            "run_windows",
            "--brokers",
            &brokers,
            "--topic",
            topic,
        ],
    );
    run.wait_success().await;

    let store = store(db.url(), db.database(), "run_windows");
    assert_same_rows(
        &store.select_final().await.unwrap(),
        &expected_rows(&trades),
    );

    // One partition (the default), holding every trade in capture order.
    let client = kafka.client().await;
    assert_eq!(
        topic_partitions(&client, topic).await.unwrap(),
        Some(vec![0])
    );
    assert_eq!(read_topic(&kafka, &ends(&trades, 1)).await, trades);
}
