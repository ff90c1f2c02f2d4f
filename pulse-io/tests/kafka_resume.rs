//! Where a restarted producer resumes, against a real broker: the last
//! trade of the kind it publishes, over every partition, past progress
//! markers and unreadable records; symbols beyond the scan bound are told
//! apart from symbols new to the topic; and a symbol pinned to the partition
//! its records are in keeps its trades and its progress markers there.

mod consume_support;

use std::collections::BTreeMap;

use consume_support::{ALTCOINS, capture};
use pulse_core::{Symbol, Trade, TradeKind};
use pulse_io::TradeSink;
use pulse_io::kafka::{
    FetchConfig, KafkaConfig, KafkaTradeSink, PartitionReader, ProducerConfig, decode_progress,
    decode_trade, is_progress_key, last_trades_on_topic, partition_for,
};

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

async fn sink(kafka: &pulse_testkit::TestKafka, partitions: i32) -> KafkaTradeSink {
    KafkaTradeSink::connect(
        &KafkaConfig::new(kafka.brokers().iter().cloned()),
        ProducerConfig {
            topic: kafka.topic().to_owned(),
            partitions,
            max_batch_records: 50,
            ..ProducerConfig::default()
        },
    )
    .await
    .unwrap()
}

/// `trades` as a recorded `@trade` capture would carry them: trade ids,
/// far above the aggTrade ids of the same trades.
fn as_trade_kind(trades: &[Trade]) -> Vec<Trade> {
    trades
        .iter()
        .map(|t| Trade {
            kind: TradeKind::Trade,
            id: t.id + 5_000_000_000,
            first_trade_id: t.id + 5_000_000_000,
            last_trade_id: t.id + 5_000_000_000,
            ..*t
        })
        .collect()
}

/// A scan with a bound beyond any test topic, and each found symbol's id.
async fn scan_all(
    client: &pulse_io::kafka::KafkaClient,
    topic: &str,
    symbols: &[Symbol],
    kind: TradeKind,
) -> (pulse_io::kafka::ResumeScan, BTreeMap<Symbol, u64>) {
    let scan = last_trades_on_topic(client, topic, symbols, kind, 1_000_000)
        .await
        .unwrap();
    let ids = scan.last.iter().map(|(s, t)| (*s, t.id)).collect();
    (scan, ids)
}

/// Each symbol's highest id in `trades`.
fn highest(trades: &[Trade]) -> BTreeMap<Symbol, u64> {
    let mut last = BTreeMap::new();
    for t in trades {
        let id = last.entry(t.symbol).or_insert(0);
        *id = t.id.max(*id);
    }
    last
}

#[tokio::test]
async fn the_scan_keeps_kinds_apart_and_reads_every_partition() {
    let Some(kafka) = pulse_testkit::kafka() else {
        return;
    };
    let Some(trades) = capture(ALTCOINS) else {
        return;
    };
    let mut sink = sink(&kafka, 3).await;
    // NEOUSDT hashes to partition 1 of 3; its records are in partition 0, as
    // if written while the topic had one partition.
    let neo = sym("NEOUSDT");
    assert_eq!(partition_for(&neo, 3), 1);
    assert!(sink.pin(neo, 0));
    // A replayed `@trade` capture first, then the aggTrades, with progress
    // markers and a record that is no trade in between.
    let replayed = as_trade_kind(&trades);
    sink.write_trades(&replayed).await.unwrap();
    let (first, rest) = trades.split_at(trades.len() / 2);
    sink.write_trades(first).await.unwrap();
    let watermarks: BTreeMap<Symbol, i64> = highest(&trades)
        .keys()
        .map(|s| (*s, first.last().unwrap().trade_time_ms))
        .collect();
    sink.write_watermarks(&watermarks).await.unwrap();
    sink.write_trades(rest).await.unwrap();
    let client = kafka.client().await;
    client
        .rskafka()
        .partition_client(
            kafka.topic(),
            0,
            rskafka::client::partition::UnknownTopicHandling::Error,
        )
        .await
        .unwrap()
        .produce(
            vec![rskafka::record::Record {
                key: Some(b"NEOUSDT".to_vec()),
                value: Some(b"not a trade".to_vec()),
                headers: Default::default(),
                timestamp: chrono::DateTime::from_timestamp_millis(0).unwrap(),
            }],
            rskafka::client::partition::Compression::NoCompression,
        )
        .await
        .unwrap();
    sink.write_watermarks(&watermarks).await.unwrap();

    let mut symbols: Vec<Symbol> = highest(&trades).into_keys().collect();
    symbols.push(sym("BTCUSDT")); // never published
    let (scan, got) = scan_all(&client, kafka.topic(), &symbols, TradeKind::AggTrade).await;
    assert_eq!(
        got,
        highest(&trades),
        "aggTrade ids, not the trade ids above"
    );
    assert_eq!(
        scan.last[&neo].partition, 0,
        "found outside its hash partition"
    );
    for (symbol, partition) in &scan.partitions {
        let want = if *symbol == neo {
            0
        } else {
            partition_for(symbol, 3)
        };
        assert_eq!(*partition, want, "{symbol}");
    }
    assert_eq!(scan.new, [sym("BTCUSDT")], "the whole topic was read");
    assert!(scan.beyond_scan.is_empty());
    assert!(scan.other_kind.is_empty(), "every symbol has aggTrades");
    assert_eq!(scan.unreadable, 1);

    // Looking for `@trade` ids finds the replayed ones.
    let (_, got) = scan_all(&client, kafka.topic(), &symbols, TradeKind::Trade).await;
    assert_eq!(got, highest(&replayed));

    // The pinned symbol's progress went where its trades are.
    let mut reader = PartitionReader::open(&client, kafka.topic(), 0, None, FetchConfig::default())
        .await
        .unwrap();
    let mut markers = Vec::new();
    let mut neo_in_0 = 0;
    loop {
        let records = reader.fetch().await.unwrap();
        if records.is_empty() {
            break;
        }
        for r in records {
            let value = r.value.unwrap();
            if is_progress_key(r.key.as_deref()) {
                markers.push(decode_progress(&value).unwrap());
            } else if let Ok(t) = decode_trade(&value) {
                neo_in_0 += usize::from(t.symbol == neo);
            }
        }
    }
    assert_eq!(
        neo_in_0,
        2 * trades.iter().filter(|t| t.symbol == neo).count()
    );
    assert!(!markers.is_empty());
    assert!(markers.iter().all(|m| m.watermarks.contains_key(&neo)));
}

#[tokio::test]
async fn symbols_beyond_the_bound_are_told_apart_from_new_ones() {
    let Some(kafka) = pulse_testkit::kafka() else {
        return;
    };
    let Some(trades) = capture(ALTCOINS) else {
        return;
    };
    let mut sink = sink(&kafka, 1).await;
    // One quiet trade of CHRUSDT, then 300 trades of the others.
    let chr = sym("CHRUSDT");
    let quiet = *trades.iter().find(|t| t.symbol == chr).unwrap();
    let busy: Vec<Trade> = trades
        .iter()
        .filter(|t| t.symbol != chr)
        .take(300)
        .copied()
        .collect();
    sink.write_trades(&[quiet]).await.unwrap();
    sink.write_trades(&busy).await.unwrap();
    let client = kafka.client().await;
    let symbols = [chr, sym("BTCUSDT")];
    let agg = TradeKind::AggTrade;

    let scan = last_trades_on_topic(&client, kafka.topic(), &symbols, agg, 100)
        .await
        .unwrap();
    assert!(scan.last.is_empty());
    assert_eq!(
        scan.beyond_scan,
        [sym("BTCUSDT"), chr],
        "the bound cut the scan short"
    );
    assert!(scan.new.is_empty());
    assert!(scan.records_read < 301, "{} read", scan.records_read);

    let scan = last_trades_on_topic(&client, kafka.topic(), &symbols, agg, 1_000)
        .await
        .unwrap();
    assert_eq!(scan.last[&chr].id, quiet.id);
    assert_eq!(scan.last[&chr].offset, 0);
    assert_eq!(scan.new, [sym("BTCUSDT")]);
    assert!(scan.beyond_scan.is_empty());
}

#[tokio::test]
async fn the_scan_stops_once_every_symbol_is_found_in_some_partition() {
    let Some(kafka) = pulse_testkit::kafka() else {
        return;
    };
    let Some(trades) = capture(ALTCOINS) else {
        return;
    };
    let mut sink = sink(&kafka, 3).await;
    // The capture 20 times over, ids moving on each round: thousands of
    // records per partition, each symbol in one of them.
    let rounds: Vec<Trade> = (0..20u64)
        .flat_map(|round| {
            trades.iter().map(move |t| Trade {
                id: t.id + round * 10_000_000,
                first_trade_id: t.first_trade_id + round * 10_000_000,
                last_trade_id: t.last_trade_id + round * 10_000_000,
                ..*t
            })
        })
        .collect();
    sink.write_trades(&rounds).await.unwrap();
    let client = kafka.client().await;
    let symbols: Vec<Symbol> = highest(&rounds).into_keys().collect();
    let (scan, got) = scan_all(&client, kafka.topic(), &symbols, TradeKind::AggTrade).await;
    assert_eq!(got, highest(&rounds));
    assert!(scan.new.is_empty() && scan.beyond_scan.is_empty());
    assert!(
        scan.records_read < rounds.len() as u64 / 2,
        "{} of {} records read: the scan went on after every symbol was found",
        scan.records_read,
        rounds.len()
    );
}
