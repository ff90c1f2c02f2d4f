//! The consumer against real servers that stop under it: ClickHouse killed
//! and restarted mid-run, the broker (sqlite storage) killed and restarted
//! mid-run, and the consumer itself stopped and restarted several times.
//! Every run must leave exactly the windows pulse-core computes directly.

mod consume_support;

use std::time::Duration;

use consume_support::{
    ALTCOINS, BUSY_BTC, RunningConsumer, capture, clickhouse_config, consumer_config, ends,
    expected_rows, publish,
};
use pulse_io::TradeSink;
use pulse_io::consumer::PartitionSelection;
use pulse_io::kafka::{KafkaConfig, KafkaTradeSink, ProducerConfig};

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn clickhouse_restart_mid_run_loses_nothing() {
    let Some(kafka) = pulse_testkit::kafka() else {
        return;
    };
    let Some(mut server) = pulse_testkit::ClickHouseProcess::start().await else {
        return;
    };
    let Some(trades) = capture(BUSY_BTC) else {
        return;
    };
    let clickhouse = clickhouse_config(&server);
    let (first, second) = trades.split_at(trades.len() / 2);
    publish(kafka.brokers(), kafka.topic(), 1, first, 500).await;
    let consumer = RunningConsumer::start(
        kafka.brokers(),
        clickhouse,
        consumer_config(kafka.topic(), PartitionSelection::All),
    );
    consumer.wait_processed(&ends(first, 1), WAIT).await;

    server.kill();
    publish(kafka.brokers(), kafka.topic(), 1, second, 500).await;
    pulse_testkit::wait_until(WAIT, "the consumer notices ClickHouse is down", || async {
        consumer.metric_at_least("pulse_sink_errors_total{sink=\"clickhouse\"}", 2)
    })
    .await;
    server.restart().await;

    consumer.wait_processed(&ends(&trades, 1), WAIT).await;
    let store = consumer.store.clone();
    let summary = consumer.stop().await;
    assert_eq!(summary.trades, trades.len() as u64);
    consume_support::assert_same_rows(
        &store.select_final().await.unwrap(),
        &expected_rows(&trades),
    );
}

#[tokio::test]
async fn broker_restart_mid_run_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut broker) =
        pulse_testkit::TansuProcess::start_sqlite(dir.path().join("tansu.db")).await
    else {
        return;
    };
    let Some(db) = pulse_testkit::clickhouse().await else {
        return;
    };
    let Some(trades) = capture(BUSY_BTC) else {
        return;
    };
    let trades = &trades[..6_000];
    let topic = pulse_testkit::unique_name("pulse_test");
    let brokers = broker.brokers();
    let kafka = KafkaConfig {
        request_deadline: Duration::from_secs(2),
        ..KafkaConfig::new(brokers.iter().cloned())
    };
    let mut producer = KafkaTradeSink::connect(
        &kafka,
        ProducerConfig {
            topic: topic.clone(),
            ..ProducerConfig::default()
        },
    )
    .await
    .unwrap();
    let (first, second) = trades.split_at(3_000);
    for chunk in first.chunks(500) {
        producer.write_trades(chunk).await.unwrap();
    }
    let clickhouse = db.config();
    let consumer = RunningConsumer::start(
        &brokers,
        clickhouse,
        consumer_config(&topic, PartitionSelection::All),
    );
    consumer.wait_processed(&ends(first, 1), WAIT).await;

    broker.kill();
    // The producer reports a retryable error and keeps the batch ...
    let err = producer.write_trades(&second[..500]).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    broker.restart().await;
    // ... and the same batch goes through once the broker is back.
    for chunk in second.chunks(500) {
        let mut attempts = 0;
        while let Err(e) = producer.write_trades(chunk).await {
            attempts += 1;
            assert!(e.is_retryable() && attempts < 20, "{e}");
        }
    }

    consumer.wait_processed(&ends(trades, 1), WAIT).await;
    let store = consumer.store.clone();
    let summary = consumer.stop().await;
    assert_eq!(summary.trades, trades.len() as u64);
    consume_support::assert_same_rows(&store.select_final().await.unwrap(), &expected_rows(trades));
}

#[tokio::test]
async fn stopping_and_restarting_the_consumer_repeatedly_gives_the_same_windows() {
    let Some(kafka) = pulse_testkit::kafka() else {
        return;
    };
    let Some(db) = pulse_testkit::clickhouse().await else {
        return;
    };
    let Some(trades) = capture(ALTCOINS) else {
        return;
    };
    // Duplicates on the topic too: a producer retry may store a batch twice.
    let mut published = trades.clone();
    published.extend_from_slice(&trades[100..160]);
    publish(kafka.brokers(), kafka.topic(), 3, &trades, 40).await;
    publish(kafka.brokers(), kafka.topic(), 3, &trades[100..160], 40).await;
    let clickhouse = db.config();
    let all = ends(&published, 3);
    let mut config = consumer_config(kafka.topic(), PartitionSelection::All);
    // One record batch (40 trades) per fetch, so each run stops somewhere
    // in the middle.
    config.fetch.max_bytes = pulse_io::kafka::MIN_FETCH_BYTES;
    let total: i64 = all.values().sum();
    for quarter in [1, 2, 3] {
        let consumer = RunningConsumer::start(kafka.brokers(), clickhouse.clone(), config.clone());
        pulse_testkit::wait_until(
            WAIT,
            "the next quarter of the topic is processed",
            || async {
                let positions = consumer
                    .store
                    .load_positions(kafka.topic())
                    .await
                    .unwrap_or_default();
                positions.values().map(|p| p.next_offset).sum::<i64>() >= total * quarter / 4
            },
        )
        .await;
        // Graceful stop: flushes open windows (partial rows); the next run
        // completes them and the fuller rows replace them.
        consumer.stop().await;
    }
    let consumer = RunningConsumer::start(kafka.brokers(), clickhouse, config);
    consumer.wait_processed(&all, WAIT).await;
    let store = consumer.store.clone();
    consumer.stop().await;
    consume_support::assert_same_rows(
        &store.select_final().await.unwrap(),
        &expected_rows(&trades),
    );
}
