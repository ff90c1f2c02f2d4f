//! A broker that keeps its connections open but answers nothing (SIGSTOP,
//! as a hung or overloaded broker does): every Kafka request pulse makes
//! fails within its deadline as a retryable error, instead of waiting for
//! ever, and the same requests work again once the broker answers.

mod consume_support;

use std::time::{Duration, Instant};

use consume_support::{ALTCOINS, assert_same_trades_once, capture, read_trades};
use pulse_io::kafka::{
    FetchConfig, KafkaConfig, KafkaError, KafkaTradeSink, PartitionReader, ProducerConfig,
};
use pulse_io::{SinkError, TradeSink};
use pulse_testkit::TansuProcess;

const DEADLINE: Duration = Duration::from_secs(1);
/// The deadline plus room for a loaded machine; far below "for ever".
const NOTICED_WITHIN: Duration = Duration::from_secs(10);

#[tokio::test]
async fn requests_to_a_hung_broker_time_out_and_work_again_once_it_answers() {
    let Some(mut broker) = TansuProcess::start_memory().await else {
        return;
    };
    let Some(trades) = capture(ALTCOINS) else {
        return;
    };
    let (first, second) = trades.split_at(trades.len() / 2);
    let kafka = KafkaConfig {
        request_deadline: DEADLINE,
        ..KafkaConfig::new(broker.brokers())
    };
    let topic = pulse_testkit::unique_name("hung");
    let producer = ProducerConfig {
        topic: topic.clone(),
        ..ProducerConfig::default()
    };
    let mut sink = KafkaTradeSink::connect(&kafka, producer).await.unwrap();
    sink.write_trades(first).await.unwrap();
    let client = kafka.connect().await.unwrap();
    let fetch = FetchConfig {
        max_wait: Duration::from_millis(50),
        ..FetchConfig::default()
    };
    let mut reader = PartitionReader::open(&client, &topic, 0, None, fetch)
        .await
        .unwrap();

    broker.hang();
    let started = Instant::now();
    let err = sink.write_trades(second).await.unwrap_err();
    assert!(
        started.elapsed() < NOTICED_WITHIN,
        "{:?}",
        started.elapsed()
    );
    assert!(err.is_retryable(), "{err}");
    assert!(
        matches!(&err, SinkError::Unavailable { reason, .. } if reason.contains("no answer within 1s")),
        "{err}"
    );

    let started = Instant::now();
    let err = reader.fetch().await.unwrap_err();
    assert!(
        started.elapsed() < NOTICED_WITHIN,
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            err,
            KafkaError::TimedOut {
                operation: "fetch",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_retryable());

    // The same batch again, as the pipeline retries it: nothing is lost.
    broker.resume();
    sink.write_trades(second).await.unwrap();
    let on_topic = read_trades(&mut reader, trades.len()).await;
    assert_same_trades_once(on_topic, &trades);
}
