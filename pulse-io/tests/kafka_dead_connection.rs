//! A broker connection that goes silently dead (the broker's host gone:
//! no reset, no close, no answer): the request on it times out, and the
//! next one is made on a fresh connection, so producing and consuming go on
//! and nothing is lost. The broker sits behind a proxy that stops carrying
//! the connections open at one moment and carries new ones as before.

mod consume_support;

use std::time::Duration;

use consume_support::{
    ALTCOINS, BUSY_BTC, RunningConsumer, assert_same_trades_once, capture, consumer_config, ends,
    expected_rows, publish, read_trades,
};
use pulse_io::consumer::PartitionSelection;
use pulse_io::kafka::{FetchConfig, KafkaConfig, KafkaTradeSink, PartitionReader, ProducerConfig};
use pulse_io::{SinkError, TradeSink};
use pulse_testkit::TansuProcess;

const DEADLINE: Duration = Duration::from_secs(1);
const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn the_producer_reconnects_after_its_connection_goes_silently_dead() {
    let Some((_broker, proxy)) = TansuProcess::start_memory_behind_proxy().await else {
        return;
    };
    let Some(trades) = capture(ALTCOINS) else {
        return;
    };
    let (first, second) = trades.split_at(trades.len() / 2);
    let kafka = KafkaConfig {
        request_deadline: DEADLINE,
        ..KafkaConfig::new([proxy.addr().to_string()])
    };
    let topic = pulse_testkit::unique_name("silent");
    let producer = ProducerConfig {
        topic: topic.clone(),
        ..ProducerConfig::default()
    };
    let mut sink = KafkaTradeSink::connect(&kafka, producer).await.unwrap();
    sink.write_trades(first).await.unwrap();

    proxy.go_silent();
    let err = sink.write_trades(second).await.unwrap_err();
    assert!(
        matches!(&err, SinkError::Unavailable { reason, .. } if reason.contains("no answer within 1s")),
        "{err}"
    );
    // The same batch again, as the pipeline retries it: on the old
    // connection it would time out for ever.
    sink.write_trades(second).await.unwrap();

    let client = kafka.connect().await.unwrap();
    let mut reader = PartitionReader::open(&client, &topic, 0, None, FetchConfig::default())
        .await
        .unwrap();
    let on_topic = read_trades(&mut reader, trades.len()).await;
    assert_same_trades_once(on_topic, &trades);
}

#[tokio::test]
async fn the_consumer_reconnects_after_its_connection_goes_silently_dead() {
    let Some((_broker, proxy)) = TansuProcess::start_memory_behind_proxy().await else {
        return;
    };
    let Some(db) = pulse_testkit::clickhouse().await else {
        return;
    };
    let Some(trades) = capture(BUSY_BTC) else {
        return;
    };
    let trades = &trades[..6_000];
    let (first, second) = trades.split_at(3_000);
    let brokers = [proxy.addr().to_string()];
    let topic = pulse_testkit::unique_name("silent");
    publish(&brokers, &topic, 1, first, 500).await;
    let clickhouse = db.config();
    let consumer = RunningConsumer::start(
        &brokers,
        clickhouse,
        consumer_config(&topic, PartitionSelection::All),
    );
    consumer.wait_processed(&ends(first, 1), WAIT).await;

    proxy.go_silent();
    // A new producer connects afresh, and is carried.
    publish(&brokers, &topic, 1, second, 500).await;
    consumer.wait_processed(&ends(trades, 1), WAIT).await;
    assert!(
        consumer.metric_at_least("pulse_source_retries_total{operation=\"kafka_fetch\"}", 1),
        "the dead connection's fetch was noticed and retried"
    );
    let store = consumer.store.clone();
    let summary = consumer.stop().await;
    assert_eq!(summary.trades, trades.len() as u64);
    consume_support::assert_same_rows(&store.select_final().await.unwrap(), &expected_rows(trades));
}
