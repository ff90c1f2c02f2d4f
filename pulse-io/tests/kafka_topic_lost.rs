//! A broker that loses its data (tansu with in-memory storage, restarted)
//! takes the topic with it: the producer writes to it again, making it
//! anew, instead of retrying a topic that is gone for ever. One made again
//! by someone else with fewer partitions is followed.

mod consume_support;

use std::time::{Duration, Instant};

use consume_support::{ALTCOINS, assert_same_trades_once, capture, read_trades};
use pulse_core::Trade;
use pulse_io::TradeSink;
use pulse_io::kafka::{
    FetchConfig, KafkaConfig, KafkaTradeSink, PartitionReader, ProducerConfig, ensure_topic,
    topic_partitions,
};
use pulse_testkit::TansuProcess;

/// Far more than the few tries a topic made again needs.
const WRITTEN_WITHIN: Duration = Duration::from_secs(60);

/// Writes `trades` as the pipeline does: the same batch again after each
/// retryable failure, until it is stored.
async fn write_until_stored(sink: &mut KafkaTradeSink, trades: &[Trade]) -> u32 {
    let started = Instant::now();
    let mut failures = 0;
    while let Err(e) = sink.write_trades(trades).await {
        assert!(e.is_retryable(), "{e}");
        assert!(started.elapsed() < WRITTEN_WITHIN, "still failing: {e}");
        failures += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    failures
}

async fn reader(kafka: &KafkaConfig, topic: &str, partition: i32) -> PartitionReader {
    let client = kafka.connect().await.unwrap();
    let fetch = FetchConfig {
        max_wait: Duration::from_millis(50),
        ..FetchConfig::default()
    };
    PartitionReader::open(&client, topic, partition, None, fetch)
        .await
        .unwrap()
}

/// A broker of its own, a capture split in two, and a producer of a new
/// topic with `partitions` that wrote the first half; `None` to skip.
async fn producing(
    name: &str,
    partitions: i32,
) -> Option<(
    TansuProcess,
    KafkaConfig,
    String,
    KafkaTradeSink,
    Vec<Trade>,
)> {
    let broker = TansuProcess::start_memory().await?;
    let trades = capture(ALTCOINS)?;
    let (first, second) = trades.split_at(trades.len() / 2);
    let kafka = KafkaConfig::new(broker.brokers());
    let topic = pulse_testkit::unique_name(name);
    let producer = ProducerConfig {
        topic: topic.clone(),
        partitions,
        ..ProducerConfig::default()
    };
    let mut sink = KafkaTradeSink::connect(&kafka, producer).await.unwrap();
    assert_eq!(sink.partition_count(), partitions);
    sink.write_trades(first).await.unwrap();
    Some((broker, kafka, topic, sink, second.to_vec()))
}

#[tokio::test]
async fn a_topic_the_broker_lost_is_made_again_and_written() {
    let Some((mut broker, kafka, topic, mut sink, second)) = producing("lost", 1).await else {
        return;
    };
    broker.restart().await;
    let client = kafka.connect().await.unwrap();
    assert_eq!(topic_partitions(&client, &topic).await.unwrap(), None);
    let failures = write_until_stored(&mut sink, &second).await;
    assert!(failures >= 1, "the first write after the loss fails");

    // The trades of before the loss went with it; the rest are on the
    // topic made again.
    let mut reader = reader(&kafka, &topic, 0).await;
    let on_topic = read_trades(&mut reader, second.len()).await;
    assert_same_trades_once(on_topic, &second);
}

#[tokio::test]
async fn a_topic_made_again_with_fewer_partitions_is_followed() {
    let Some((mut broker, kafka, topic, mut sink, second)) = producing("fewer", 3).await else {
        return;
    };
    broker.restart().await;
    let client = kafka.connect().await.unwrap();
    let remade = ensure_topic(&client, &topic, 1, 1).await.unwrap();
    assert_eq!(remade.partitions, [0]);
    assert!(remade.created);
    write_until_stored(&mut sink, &second).await;
    assert_eq!(sink.partition_count(), 1);

    let mut reader = reader(&kafka, &topic, 0).await;
    let on_topic = read_trades(&mut reader, second.len()).await;
    assert_same_trades_once(on_topic, &second);
}
