//! `pulse produce` from the live Binance source, pointed at the fake Binance
//! by `--binance-ws-url` / `--binance-rest-url`: through dropped and closed
//! connections, a broken frame, and the producer itself SIGKILLed and
//! restarted while the market goes on, the topic ends up holding every
//! recorded trade exactly once, in id order per symbol. `pulse consume` then
//! stores exactly the windows pulse-core computes from the recording.

mod produce_consume_support;

use std::collections::BTreeSet;

use produce_consume_support::{
    ALTCOINS, Pulse, WAIT, assert_same_rows, capture, consume_args, ends, expected_rows,
    read_topic, scrape_metrics, store, trades, wait_processed,
};
use pulse_io::fake_binance::{FakeBinance, FakeConfig, Fault, Pace, assert_same_trades};
use pulse_io::kafka::last_trades_on_topic;
use pulse_io::testsupport;

#[tokio::test]
async fn live_produce_survives_faults_and_a_crash_and_loses_nothing() {
    let Some(kafka) = testsupport::kafka() else {
        return;
    };
    let Some(db) = testsupport::clickhouse().await else {
        return;
    };
    let Some(path) = capture(ALTCOINS) else {
        return;
    };
    // About 6 s of market, so the producer can be killed in the middle.
    let config = FakeConfig {
        pace: Pace::TradesPerSecond(100),
        ..FakeConfig::default()
    };
    let fake = FakeBinance::start_with(trades(&path), config).await;
    let recorded = fake.trades().to_vec();
    let symbols: Vec<String> = fake.symbols().iter().map(|s| s.to_string()).collect();
    // Kill once every symbol has traded (a symbol new to the topic starts
    // from the live stream), and well before the end.
    let mut seen = BTreeSet::new();
    let all_traded = recorded
        .iter()
        .position(|t| {
            seen.insert(t.symbol);
            seen.len() == symbols.len()
        })
        .unwrap();
    let kill_at = (all_traded + 40).max(200);
    assert!(kill_at + 150 < recorded.len(), "the capture is long enough");
    fake.schedule(60, Fault::Disconnect);
    fake.schedule(120, Fault::Malformed);
    fake.schedule(170, Fault::Close);

    let brokers = kafka.brokers().join(",");
    let topic = kafka.topic();
    let (ws, rest) = (fake.ws_base(), fake.rest_base());
    let symbol_list = symbols.join(",");
    let produce_args = [
        "produce",
        "--brokers",
        &brokers,
        "--topic",
        topic,
        "--partitions",
        "3",
        "--symbols",
        &symbol_list,
        "--binance-ws-url",
        &ws,
        "--binance-rest-url",
        &rest,
    ];

    let mut first = Pulse::spawn("produce #1", &produce_args);
    testsupport::wait_until(WAIT, "the market passes the kill point", || async {
        fake.published() >= kill_at
    })
    .await;
    let client = kafka.client().await;
    let parsed_symbols = fake.symbols();
    testsupport::wait_until(WAIT, "every symbol is on the topic", || async {
        last_trades_on_topic(&client, topic, &parsed_symbols, 10_000)
            .await
            .is_ok_and(|last| last.len() == parsed_symbols.len())
    })
    .await;
    first.assert_running();
    first.kill().await;

    // Trades go on while no producer runs; the restarted one must fetch
    // them over REST.
    let down_until = fake.published() + 100;
    testsupport::wait_until(WAIT, "the market moves on", || async {
        fake.published() >= down_until
    })
    .await;
    let mut second_args = produce_args.to_vec();
    second_args.extend(["--metrics", "127.0.0.1:0"]);
    let mut second = Pulse::spawn("produce #2", &second_args);
    let ends = ends(&recorded, 3);
    let on_topic = read_topic(&kafka, &ends).await;
    assert_same_trades(&recorded, &on_topic);
    second.assert_running();
    // What it fetched over REST shows on its /metrics.
    let metrics = scrape_metrics(&second).await;
    let backfilled: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("pulse_trades_backfilled_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(backfilled > 0, "nothing backfilled:\n{metrics}");
    second.terminate().await;
    assert!(
        second
            .output()
            .contains("resuming after the last trade already delivered"),
        "{}",
        second.output()
    );
    assert!(fake.stats().rest_requests > 0, "the gap was backfilled");

    let mut consume = Pulse::spawn(
        "consume",
        &consume_args(&brokers, topic, db.url(), db.database(), "live"),
    );
    let store = store(db.url(), db.database(), "live");
    wait_processed(&store, topic, &ends).await;
    consume.terminate().await;
    assert_same_rows(
        &store.select_final().await.unwrap(),
        &expected_rows(&recorded),
    );
}
