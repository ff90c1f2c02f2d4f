//! Smoke test: rskafka reaches the Kafka-compatible broker at
//! `$PULSE_TEST_KAFKA_BROKERS` and round-trips records through a fresh topic.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record;

/// The first three trades of
/// `binance-spot_btcusdt@trade_2023-04-04T235959Z_2023-04-05T000654Z.jsonl.gz`.
const TRADES: [(&str, i64); 3] = [
    (
        r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1680652800000,"s":"BTCUSDT","t":3071245454,"p":"28165.47000000","q":"0.00056000","b":20720542158,"a":20720542592,"T":1680652799999,"m":true,"M":true}}"#,
        1_680_652_799_999,
    ),
    (
        r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1680652800002,"s":"BTCUSDT","t":3071245455,"p":"28165.47000000","q":"0.00128000","b":20720542158,"a":20720542593,"T":1680652800001,"m":true,"M":true}}"#,
        1_680_652_800_001,
    ),
    (
        r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1680652800004,"s":"BTCUSDT","t":3071245456,"p":"28165.47000000","q":"0.00814000","b":20720542158,"a":20720542597,"T":1680652800004,"m":true,"M":true}}"#,
        1_680_652_800_004,
    ),
];

#[tokio::test]
async fn produce_then_fetch_returns_the_same_records() {
    let Some(kafka) = pulse_testkit::kafka() else {
        return;
    };
    let client = kafka.create_topic(1).await;
    let partition = client
        .rskafka()
        .partition_client(kafka.topic(), 0, UnknownTopicHandling::Retry)
        .await
        .expect("partition client");

    let records: Vec<Record> = TRADES
        .iter()
        .map(|(payload, trade_time_ms)| Record {
            key: Some(b"BTCUSDT".to_vec()),
            value: Some(payload.as_bytes().to_vec()),
            headers: BTreeMap::from([("source".to_owned(), b"binance-spot".to_vec())]),
            timestamp: Utc.timestamp_millis_opt(*trade_time_ms).unwrap(),
        })
        .collect();
    let offsets = partition
        .produce(records.clone(), Compression::NoCompression)
        .await
        .expect("produce");
    assert_eq!(offsets, vec![0, 1, 2]);

    let (fetched, high_watermark) = partition
        .fetch_records(0, 1..1_000_000, 1_000)
        .await
        .expect("fetch");
    assert_eq!(high_watermark, 3);
    let fetched_offsets: Vec<i64> = fetched.iter().map(|r| r.offset).collect();
    assert_eq!(fetched_offsets, vec![0, 1, 2]);
    for (got, sent) in fetched.iter().zip(&records) {
        assert_eq!(got.record.key, sent.key);
        assert_eq!(got.record.value, sent.value);
        assert_eq!(got.record.headers, sent.headers);
        assert_eq!(got.record.timestamp, sent.timestamp);
    }
}

#[tokio::test]
async fn sqlite_broker_keeps_records_across_kill_and_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(mut broker) =
        pulse_testkit::TansuProcess::start_sqlite(dir.path().join("tansu.db")).await
    else {
        return;
    };
    let topic = &pulse_testkit::unique_name("pulse_test");
    let client = pulse_testkit::kafka_client(broker.brokers())
        .await
        .expect("connect");
    client
        .rskafka()
        .controller_client()
        .expect("controller client")
        .create_topic(topic, 1, 1, 5_000)
        .await
        .expect("create topic");
    let partition = client
        .rskafka()
        .partition_client(topic, 0, UnknownTopicHandling::Retry)
        .await
        .expect("partition client");
    let record = Record {
        key: Some(b"BTCUSDT".to_vec()),
        value: Some(TRADES[0].0.as_bytes().to_vec()),
        headers: BTreeMap::new(),
        timestamp: Utc.timestamp_millis_opt(TRADES[0].1).unwrap(),
    };
    partition
        .produce(vec![record.clone()], Compression::NoCompression)
        .await
        .expect("produce");

    let addr = broker.addr();
    broker.kill();
    assert!(!broker.is_running());
    broker.restart().await;
    assert_eq!(broker.addr(), addr, "restart keeps the port");

    // A new client: the old one's connection died with the broker.
    let partition = pulse_testkit::kafka_client(broker.brokers())
        .await
        .expect("reconnect")
        .rskafka()
        .partition_client(topic, 0, UnknownTopicHandling::Retry)
        .await
        .expect("partition client after restart");
    let (fetched, high_watermark) = partition
        .fetch_records(0, 1..1_000_000, 1_000)
        .await
        .expect("fetch after restart");
    assert_eq!(high_watermark, 1);
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].offset, 0);
    assert_eq!(fetched[0].record.value, record.value);
}
