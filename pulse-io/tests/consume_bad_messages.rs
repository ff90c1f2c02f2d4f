//! Bad messages on the topic are counted, logged and skipped; they never
//! stop the consumer or change a window.

mod consume_support;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use consume_support::{
    ALTCOINS, RunningConsumer, capture, consumer_config, expected_rows, metric_value,
};
use pulse_io::consumer::PartitionSelection;
use pulse_io::kafka::{MessageError, UtcOffset, encode_trade};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record;

fn record(value: Option<Vec<u8>>) -> Record {
    Record {
        key: Some(b"NEOUSDT".to_vec()),
        value,
        headers: BTreeMap::new(),
        timestamp: Utc.timestamp_millis_opt(1_617_647_797_485).unwrap(),
    }
}

#[tokio::test]
async fn bad_messages_are_counted_and_skipped() {
    let Some(kafka) = pulse_testkit::kafka() else {
        return;
    };
    let Some(db) = pulse_testkit::clickhouse().await else {
        return;
    };
    let Some(trades) = capture(ALTCOINS) else {
        return;
    };

    let good = |i: usize| {
        let mut v = Vec::new();
        encode_trade(&trades[i], UtcOffset::IST, &mut v);
        String::from_utf8(v).unwrap()
    };
    let tweak = |i: usize, from: &str, to: &str| {
        let g = good(i);
        assert!(g.contains(from), "{g} has {from}");
        Some(g.replacen(from, to, 1).into_bytes())
    };
    let q = format!("\"quantity\":\"{}\"", trades[3].quantity);
    let bad: Vec<(Option<Vec<u8>>, &str)> = vec![
        (Some(b"not json at all".to_vec()), "kafka_not_json"),
        (
            Some(br#"{"symbol":"NEOUSDT","price":"#.to_vec()),
            "kafka_not_json",
        ),
        (tweak(1, "\"price\":", "\"cost\":"), "kafka_missing_field"),
        (tweak(2, ",\"agg_id\":", ",\"id\":"), "kafka_missing_field"),
        (tweak(3, &q, "\"quantity\":\"-0.5\""), "kafka_not_positive"),
        (tweak(4, "\"side\":\"", "\"side\":\"X"), "kafka_side"),
        (None, "kafka_empty"),
    ];

    // Good trades in file order, a bad message after every 50th.
    let client = kafka.create_topic(1).await;
    let partition = client
        .rskafka()
        .partition_client(kafka.topic(), 0, UnknownTopicHandling::Retry)
        .await
        .unwrap();
    let mut records = Vec::new();
    let mut bad_iter = bad.iter().cycle();
    let mut rejected_by_reason: BTreeMap<&str, u64> = BTreeMap::new();
    for i in 0..trades.len() {
        records.push(record(Some(good(i).into_bytes())));
        if i % 50 == 49 {
            let (value, reason) = bad_iter.next().unwrap();
            records.push(record(value.clone()));
            *rejected_by_reason.entry(reason).or_default() += 1;
        }
    }
    let total = records.len() as i64;
    for chunk in records.chunks(100) {
        partition
            .produce(chunk.to_vec(), Compression::NoCompression)
            .await
            .unwrap();
    }

    let consumer = RunningConsumer::start(
        kafka.brokers(),
        db.config(),
        consumer_config(kafka.topic(), PartitionSelection::All),
    );
    consumer
        .wait_processed(&[(0, total)].into(), Duration::from_secs(60))
        .await;
    let metrics = consumer.metrics.clone();
    let store = consumer.store.clone();
    let summary = consumer.stop().await;

    let rejected: u64 = rejected_by_reason.values().sum();
    assert_eq!(summary.rejected, rejected);
    assert_eq!(summary.trades, trades.len() as u64);
    // Every reason a consumer can give has a series, at 0 when unseen.
    for reason in MessageError::REASONS {
        let count = rejected_by_reason.get(reason).copied().unwrap_or(0);
        let series = format!("pulse_frames_rejected_total{{reason=\"{reason}\"}}");
        assert_eq!(metric_value(&metrics, &series), Some(count), "{series}");
    }
    let json = "pulse_frames_rejected_total{reason=\"json\"}";
    assert_eq!(
        metric_value(&metrics, json),
        None,
        "a frame reason in consume"
    );
    consume_support::assert_same_rows(
        &store.select_final().await.unwrap(),
        &expected_rows(&trades),
    );
}
