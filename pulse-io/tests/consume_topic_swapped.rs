//! A topic deleted and made again on a running broker while `pulse consume`
//! reads it: the connection stays up, so no fetch fails, and with records
//! flowing no fetch comes back empty between the two topics.

mod consume_support;

use std::time::Duration;

use consume_support::{
    BUSY_BTC, RunningConsumer, assert_same_rows, capture, clickhouse_config, consumer_config, ends,
    expected_rows, producer,
};
use pulse_core::Trade;
use pulse_io::consumer::PartitionSelection;
use pulse_io::kafka::KafkaConfig;
use pulse_io::sink::TradeSink;
use pulse_testkit::{ClickHouseProcess, TansuProcess};

const WAIT: Duration = Duration::from_secs(90);
const HOUR_MS: i64 = 3_600_000;

/// Topic A flows in small batches while the consumer follows it; at once
/// A is deleted and made again holding B, longer and an hour later. The
/// consumer must notice (a reset counted) and read B from its first record,
/// so every window of B is stored whole. Without an identity check that
/// looks further back than the last record handed on, B's records from A's
/// offset on were taken as A's continuation and B's first ones never read.
#[tokio::test]
async fn a_topic_made_again_while_records_flow_is_noticed_and_read_whole() {
    let Some(a) = capture(BUSY_BTC) else {
        return;
    };
    let Some(broker) = TansuProcess::start_memory().await else {
        return;
    };
    let Some(clickhouse) = ClickHouseProcess::start().await else {
        return;
    };
    let topic = pulse_testkit::unique_name("pulse_test");
    let kafka = KafkaConfig::new(broker.brokers());
    let b: Vec<Trade> = a
        .iter()
        .map(|t| Trade {
            id: t.id + 1_000_000_000,
            trade_time_ms: t.trade_time_ms + HOUR_MS,
            event_time_ms: t.event_time_ms + HOUR_MS,
            ..*t
        })
        .collect();

    let mut sink = producer(&broker.brokers(), &topic, 1, 500).await;
    sink.write_trades(&a[..500]).await.unwrap();
    let config = consumer_config(&topic, PartitionSelection::All);
    let consumer =
        RunningConsumer::start(&broker.brokers(), clickhouse_config(&clickhouse), config);
    // A flows: 20 trades every 5 ms, until about 2,500 of them are in.
    for chunk in a[500..2_500].chunks(20) {
        sink.write_trades(chunk).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(sink);

    let client = kafka.connect().await.unwrap();
    let controller = client.rskafka().controller_client().unwrap();
    controller.delete_topic(topic.clone(), 5_000).await.unwrap();
    let mut sink = producer(&broker.brokers(), &topic, 1, 500).await;
    for chunk in b.chunks(500) {
        sink.write_trades(chunk).await.unwrap();
    }

    let reset = |reason: &str| {
        format!("pulse_topic_resets_total{{topic=\"{topic}\",partition=\"0\",reason=\"{reason}\"}}")
    };
    pulse_testkit::wait_until(WAIT, "the new topic is noticed", || async {
        assert!(!consumer.is_finished(), "the consumer stopped early");
        ["replaced", "truncated"]
            .iter()
            .any(|r| consumer.metric_at_least(&reset(r), 1))
    })
    .await;
    consumer.wait_processed(&ends(&b, 1), WAIT).await;
    let store = consumer.store.clone();
    // Stopping stores the last window of B, which no later trade closes.
    consumer.stop().await;

    // Rows start at whole seconds; B's come after every row of A.
    let b_start = b[0].trade_time_ms.div_euclid(1_000) as u32;
    let rows = store.select_final().await.unwrap();
    let of_b: Vec<_> = rows
        .into_iter()
        .filter(|r| r.window_start >= b_start)
        .collect();
    assert_same_rows(&of_b, &expected_rows(&b));
}
