//! Where a restarted live `pulse produce` resumes, against real tansu and
//! the fake Binance:
//! - the README's offline workflow (a recorded `@trade` capture replayed into
//!   the topic) followed by the live producer: the live aggTrades are all
//!   published, none dropped as duplicates of the replayed trade ids;
//! - resume points the live stream shows to be from elsewhere, and symbols
//!   beyond `--resume-scan`, are counted and logged, and the live trades
//!   still all flow.

mod produce_consume_support;

use std::collections::BTreeMap;

use produce_consume_support::{
    BUSY_BTC, Pulse, capture, publish_replay, read_topic, scrape_metrics, series, trades,
};
use pulse_core::{Symbol, Trade, TradeKind};
use pulse_io::TradeSink;
use pulse_io::kafka::{KafkaConfig, KafkaTradeSink, ProducerConfig};
use pulse_testkit::TestKafka;
use pulse_testkit::fake_binance::{FakeBinance, FakeConfig, Pace, assert_same_trades};

/// A BTCUSDT capture a few weeks older than [`BUSY_BTC`], so its ids are
/// lower: 10,701 trades, which the fake serves as aggTrades.
const OLDER_BTC: &str = "binance-usdm_btcusdt@trade_2024-07-18T235702Z_2024-07-19T000502Z.jsonl.gz";
/// Five symbols, 574 aggTrades.
const ALTCOINS: &str = "binance-usdm_altcoins@aggTrade_2021-07-22_cryptofeed.jsonl.gz";

/// The sum of a counter over its label sets.
fn counter_sum(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Starts live `pulse produce` on `kafka`'s topic against `fake`.
fn produce_live(kafka: &TestKafka, fake: &FakeBinance, extra: &[&str]) -> Pulse {
    let brokers = kafka.brokers().join(",");
    let symbols: Vec<String> = fake.symbols().iter().map(|s| s.to_string()).collect();
    let symbols = symbols.join(",");
    let (ws, rest) = (fake.ws_base(), fake.rest_base());
    let mut args = vec![
        "produce",
        "--brokers",
        &brokers,
        "--topic",
        kafka.topic(),
        "--symbols",
        &symbols,
        "--binance-ws-url",
        &ws,
        "--binance-rest-url",
        &rest,
        "--metrics",
        "127.0.0.1:0",
    ];
    args.extend(extra);
    Pulse::spawn("produce live", &args)
}

/// Waits until the fake played its whole tape and `count` trades of `kind`
/// are on the topic's partition 0 besides `others`; returns them.
async fn aggtrades_on_topic(kafka: &TestKafka, others: usize, count: usize) -> Vec<Trade> {
    let ends = [(0, (others + count) as i64)].into();
    read_topic(kafka, &ends)
        .await
        .into_iter()
        .filter(|t| t.kind == TradeKind::AggTrade)
        .collect()
}

#[tokio::test]
async fn live_produce_after_a_replayed_trade_capture_publishes_every_live_trade() {
    let Some(kafka) = pulse_testkit::kafka() else {
        return;
    };
    let (Some(replay), Some(older)) = (capture(BUSY_BTC), capture(OLDER_BTC)) else {
        return;
    };
    // README, "To fill the stack offline": the capture goes into the topic.
    let brokers = kafka.brokers().join(",");
    publish_replay(&brokers, kafka.topic(), 1, &replay).await;
    let replayed = trades(&replay);

    // Then the live producer, on a market whose aggTrade ids lie far below
    // the capture's trade ids.
    let config = FakeConfig {
        pace: Pace::TradesPerSecond(5_000),
        ..FakeConfig::default()
    };
    let fake = FakeBinance::start_with(trades(&older), config).await;
    let live = fake.trades().to_vec();
    assert!(live.iter().all(|t| t.id < replayed[0].id));
    let mut produce = produce_live(&kafka, &fake, &[]);
    let published = aggtrades_on_topic(&kafka, replayed.len(), live.len()).await;
    assert_same_trades(&live, &published);
    let metrics = scrape_metrics(&produce).await;
    produce.terminate().await;
    assert_eq!(
        counter_sum(&metrics, "pulse_duplicate_trades_total"),
        0,
        "{metrics}"
    );
    assert_eq!(counter_sum(&metrics, "pulse_resume_ahead_total"), 0);
    assert_eq!(counter_sum(&metrics, "pulse_resume_not_found_total"), 0);
    let output = produce.output();
    assert!(
        output.contains("the topic holds only trades of another kind for this symbol"),
        "the replayed trades are seen and kept apart:\n{output}"
    );
    assert!(output.contains("records_read="), "{output}");
}

/// Publishes `trades` to the test topic (one partition) directly.
async fn seed(kafka: &TestKafka, trades: &[Trade]) {
    let mut sink = KafkaTradeSink::connect(
        &KafkaConfig::new(kafka.brokers().iter().cloned()),
        ProducerConfig {
            topic: kafka.topic().to_owned(),
            ..ProducerConfig::default()
        },
    )
    .await
    .unwrap();
    sink.write_trades(trades).await.unwrap();
}

#[tokio::test]
async fn untrustworthy_resume_points_are_counted_and_the_live_trades_still_flow() {
    // sqlite storage: its end offsets are exact, so the scan bound is too
    // (the memory storage under-reports them and the scan reads on to the
    // real end).
    let Some(kafka) = pulse_testkit::durable_kafka() else {
        return;
    };
    let Some(path) = capture(ALTCOINS) else {
        return;
    };
    let config = FakeConfig {
        pace: Pace::TradesPerSecond(500),
        ..FakeConfig::default()
    };
    let fake = FakeBinance::start_with(trades(&path), config).await;
    let live = fake.trades().to_vec();
    let symbols = fake.symbols();
    let (buried, ahead) = symbols.split_first().unwrap();
    // The topic already holds one aggTrade of `buried`, then 40 of each other
    // symbol with ids far above the live stream's, an hour before it (as
    // from another exchange, or an id space that ran ahead).
    let first_time = live.iter().map(|t| t.trade_time_ms).min().unwrap();
    let template = live[0];
    let old = |symbol: Symbol, id: u64| Trade {
        symbol,
        id,
        first_trade_id: id,
        last_trade_id: id,
        trade_time_ms: first_time - 3_600_000 + id as i64 % 1_000,
        event_time_ms: first_time - 3_600_000 + id as i64 % 1_000,
        ..template
    };
    let mut seeded = vec![old(*buried, 1)];
    for i in 0..40 {
        seeded.extend(ahead.iter().map(|s| old(*s, 9_000_000_000 + i)));
    }
    seed(&kafka, &seeded).await;

    // 100 records per partition reach every `ahead` symbol, not `buried`.
    let mut produce = produce_live(&kafka, &fake, &["--resume-scan", "100"]);
    let on_topic = aggtrades_on_topic(&kafka, seeded.len(), live.len()).await;
    let published: Vec<Trade> = on_topic.into_iter().skip(seeded.len()).collect();
    assert_same_trades(&live, &published);
    let metrics = scrape_metrics(&produce).await;
    produce.terminate().await;
    let label = |name: &str, symbol: &Symbol| format!("{name}{{symbol=\"{symbol}\"}}");
    let output = produce.output();
    assert_eq!(
        series(&metrics, &label("pulse_resume_not_found_total", buried)),
        1,
        "{output}"
    );
    let mut ahead_counts = BTreeMap::new();
    for symbol in ahead {
        ahead_counts.insert(
            *symbol,
            series(&metrics, &label("pulse_resume_ahead_total", symbol)),
        );
    }
    assert!(ahead_counts.values().all(|n| *n == 1), "{ahead_counts:?}");
    assert_eq!(counter_sum(&metrics, "pulse_resume_not_found_total"), 1);
    assert_eq!(counter_sum(&metrics, "pulse_duplicate_trades_total"), 0);
    assert!(
        output.contains(&format!("symbols={buried}")) && output.contains("--resume-scan"),
        "{output}"
    );
    assert!(
        output.contains("the resume point is ahead of the live stream")
            && output.contains("resume_id=9000000039"),
        "{output}"
    );
}
