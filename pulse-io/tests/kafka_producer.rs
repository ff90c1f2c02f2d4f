//! The Kafka producer and reader against a real broker: exact round trips,
//! partitioning by symbol, every compression codec, retried batches, and
//! finding where a restarted producer left off.

mod consume_support;

use std::collections::BTreeMap;

use consume_support::{ALTCOINS, capture};
use pulse_core::{Symbol, Trade, TradeKind};
use pulse_io::TradeSink;
use pulse_io::kafka::{
    Compression, FetchConfig, KafkaConfig, KafkaTradeSink, PartitionReader, ProducerConfig,
    decode_trade, last_trades_on_topic, partition_for,
};

async fn read_all(
    client: &pulse_io::kafka::KafkaClient,
    topic: &str,
    partition: i32,
) -> Vec<(i64, Trade)> {
    read_from(client, topic, partition, None, 1 << 20).await
}

async fn read_from(
    client: &pulse_io::kafka::KafkaClient,
    topic: &str,
    partition: i32,
    start: Option<i64>,
    max_bytes: i32,
) -> Vec<(i64, Trade)> {
    let config = FetchConfig {
        max_bytes,
        max_wait: std::time::Duration::from_millis(20),
    };
    let mut reader = PartitionReader::open(client, topic, partition, start, config)
        .await
        .unwrap();
    let mut out = Vec::new();
    loop {
        let records = reader.fetch().await.unwrap();
        if records.is_empty() {
            return out;
        }
        for r in records {
            let trade = decode_trade(r.value.as_deref().unwrap()).unwrap();
            assert_eq!(
                r.key.as_deref(),
                Some(trade.symbol.as_str().as_bytes()),
                "key = symbol"
            );
            out.push((r.offset, trade));
        }
    }
}

#[tokio::test]
async fn trades_round_trip_exactly_and_stay_in_their_symbols_partition() {
    let Some(kafka) = pulse_testkit::kafka() else {
        return;
    };
    let Some(trades) = capture(ALTCOINS) else {
        return;
    };
    let mut sink = KafkaTradeSink::connect(
        &KafkaConfig::new(kafka.brokers().iter().cloned()),
        ProducerConfig {
            topic: kafka.topic().to_owned(),
            partitions: 3,
            max_batch_records: 50,
            ..ProducerConfig::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(sink.partition_count(), 3);
    for chunk in trades.chunks(100) {
        sink.write_trades(chunk).await.unwrap();
    }
    assert_eq!(sink.produced(), trades.len() as u64);

    let client = kafka.client().await;
    let mut per_partition: BTreeMap<i32, Vec<Trade>> = BTreeMap::new();
    for t in &trades {
        per_partition
            .entry(partition_for(&t.symbol, 3))
            .or_default()
            .push(*t);
    }
    assert_eq!(
        per_partition.len(),
        3,
        "the five symbols use all three partitions"
    );
    for (partition, sent) in per_partition {
        let got: Vec<Trade> = read_all(&client, kafka.topic(), partition)
            .await
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert_eq!(got, sent, "partition {partition}: same trades, same order");
    }
}

#[tokio::test]
async fn every_compression_codec_round_trips() {
    let Some(kafka) = pulse_testkit::kafka() else {
        return;
    };
    let Some(trades) = capture(ALTCOINS) else {
        return;
    };
    let trades: Vec<Trade> = trades
        .into_iter()
        .filter(|t| t.symbol.as_str() == "NEOUSDT")
        .collect();
    for compression in [
        Compression::None,
        Compression::Gzip,
        Compression::Lz4,
        Compression::Snappy,
        Compression::Zstd,
    ] {
        let topic = pulse_testkit::unique_name("pulse_test");
        let mut sink = KafkaTradeSink::connect(
            &KafkaConfig::new(kafka.brokers().iter().cloned()),
            ProducerConfig {
                topic: topic.clone(),
                compression,
                ..ProducerConfig::default()
            },
        )
        .await
        .unwrap();
        sink.write_trades(&trades).await.unwrap();
        let client = kafka.client().await;
        let got: Vec<Trade> = read_all(&client, &topic, 0)
            .await
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert_eq!(got, trades, "{compression}");
    }
}

#[tokio::test]
async fn last_trades_on_topic_finds_each_symbols_highest_id() {
    let Some(kafka) = pulse_testkit::kafka() else {
        return;
    };
    let Some(trades) = capture(ALTCOINS) else {
        return;
    };
    // One partition and small batches: the quiet symbols' last trades sit far
    // from the end, so the backwards scan has to widen.
    let mut sink = KafkaTradeSink::connect(
        &KafkaConfig::new(kafka.brokers().iter().cloned()),
        ProducerConfig {
            topic: kafka.topic().to_owned(),
            max_batch_records: 7,
            ..ProducerConfig::default()
        },
    )
    .await
    .unwrap();
    let symbols: Vec<Symbol> = [
        "NEOUSDT", "SANDUSDT", "CTKUSDT", "BATUSDT", "CHRUSDT", "BTCUSDT",
    ]
    .iter()
    .map(|s| Symbol::new(s).unwrap())
    .collect();
    let client = kafka.client().await;
    let scan = last_trades_on_topic(
        &client,
        kafka.topic(),
        &symbols,
        TradeKind::AggTrade,
        1_000_000,
    )
    .await
    .unwrap();
    assert!(scan.last.is_empty(), "missing topic: nothing to resume");
    let mut sorted = symbols.clone();
    sorted.sort();
    assert_eq!(scan.new, sorted);
    for chunk in trades.chunks(7) {
        sink.write_trades(chunk).await.unwrap();
    }
    let found = last_trades_on_topic(
        &client,
        kafka.topic(),
        &symbols,
        TradeKind::AggTrade,
        1_000_000,
    )
    .await
    .unwrap();
    assert_eq!(found.new, [Symbol::new("BTCUSDT").unwrap()]);
    assert!(found.beyond_scan.is_empty());
    let found = found.last;
    let mut expected: BTreeMap<Symbol, u64> = BTreeMap::new();
    for t in &trades {
        let e = expected.entry(t.symbol).or_default();
        *e = (*e).max(t.id);
    }
    let got: BTreeMap<Symbol, u64> = found.iter().map(|(s, t)| (*s, t.id)).collect();
    assert_eq!(
        got, expected,
        "BTCUSDT was never published, so it is absent"
    );
}

/// tansu's in-memory storage answers a fetch with the batches that *start*
/// at or after the offset asked for; a resume inside a batch must still get
/// the rest of that batch. The durable broker is checked too.
#[tokio::test]
async fn reader_resumes_inside_a_record_batch() {
    let Some(trades) = capture(ALTCOINS) else {
        return;
    };
    let trades: Vec<Trade> = trades
        .into_iter()
        .filter(|t| t.symbol.as_str() == "NEOUSDT")
        .take(40)
        .collect();
    for kafka in [pulse_testkit::kafka(), pulse_testkit::durable_kafka()]
        .into_iter()
        .flatten()
    {
        consume_support::publish(kafka.brokers(), kafka.topic(), 1, &trades, 10).await;
        let client = kafka.client().await;
        // Batch starts, middles and ends, and the last record.
        for start in [0, 1, 5, 9, 10, 11, 19, 25, 30, 38, 39] {
            for max_bytes in [pulse_io::kafka::MIN_FETCH_BYTES, 1 << 20] {
                let got: Vec<i64> = read_from(&client, kafka.topic(), 0, Some(start), max_bytes)
                    .await
                    .into_iter()
                    .map(|(offset, _)| offset)
                    .collect();
                let want: Vec<i64> = (start..trades.len() as i64).collect();
                assert_eq!(
                    got,
                    want,
                    "{:?} from {start}, max_bytes {max_bytes}",
                    kafka.brokers()
                );
            }
        }
    }
}
