//! `pulse produce` from the live Binance source, pointed at the fake Binance
//! by `--binance-ws-url` / `--binance-rest-url`: through dropped and closed
//! connections, a broken frame, and the producer itself SIGKILLed and
//! restarted while the market goes on, the topic ends up holding every
//! recorded trade exactly once, in id order per symbol. `pulse consume` then
//! stores exactly the windows pulse-core computes from the recording.

mod produce_consume_support;

use std::collections::{BTreeMap, BTreeSet};

use produce_consume_support::{
    ALTCOINS, Pulse, WAIT, assert_same_rows, capture, consume_args, ends, expected_rows,
    read_topic, scrape_metrics, store, trade_ends, trades, wait_processed,
};
use pulse_core::{Symbol, Trade, TradeKind};
use pulse_io::kafka::last_trades_on_topic;
use pulse_testkit::TestKafka;
use pulse_testkit::fake_binance::{FakeBinance, FakeConfig, Fault, Pace, assert_same_trades};

const AGG: TradeKind = TradeKind::AggTrade;

/// `pulse produce` live from `fake` into `kafka`'s topic, every symbol of
/// the fake followed.
fn produce_args(kafka: &TestKafka, fake: &FakeBinance) -> Vec<String> {
    let symbols: Vec<String> = fake.symbols().iter().map(|s| s.to_string()).collect();
    [
        "produce",
        "--brokers",
        &kafka.brokers().join(","),
        "--topic",
        kafka.topic(),
        "--symbols",
        &symbols.join(","),
        "--binance-ws-url",
        &fake.ws_base(),
        "--binance-rest-url",
        &fake.rest_base(),
    ]
    .map(String::from)
    .to_vec()
}

/// A producer killed in mid-market and a second one started after the
/// market moved on, with `restart_args` added to its flags.
struct CrashedProducer {
    fake: FakeBinance,
    recorded: Vec<Trade>,
    /// The second producer, still running.
    second: Pulse,
    /// Each symbol's last trade id on the topic when the first was killed.
    last_before_kill: BTreeMap<Symbol, u64>,
    /// Trades published when the second started.
    restarted_at: usize,
}

async fn crash_and_restart(kafka: &TestKafka, restart_args: &[&str]) -> Option<CrashedProducer> {
    let path = capture(ALTCOINS)?;
    // About 6 s of market, so the producer can be killed in the middle.
    let config = FakeConfig {
        pace: Pace::TradesPerSecond(100),
        ..FakeConfig::default()
    };
    let fake = FakeBinance::start_with(trades(&path), config).await;
    let recorded = fake.trades().to_vec();
    let symbols = fake.symbols();
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

    let mut owned = produce_args(kafka, &fake);
    owned.extend(["--partitions", "3"].map(String::from));
    let mut args: Vec<&str> = owned.iter().map(String::as_str).collect();

    let mut first = Pulse::spawn("produce #1", &args);
    pulse_testkit::wait_until(WAIT, "the market passes the kill point", || async {
        fake.published() >= kill_at
    })
    .await;
    let client = kafka.client().await;
    pulse_testkit::wait_until(WAIT, "every symbol is on the topic", || async {
        last_trades_on_topic(&client, kafka.topic(), &symbols, AGG, 10_000)
            .await
            .is_ok_and(|scan| scan.last.len() == symbols.len())
    })
    .await;
    first.assert_running();
    first.kill().await;

    // Trades go on while no producer runs; the restarted one must fetch
    // them over REST.
    let down_until = (fake.published() + 100).min(recorded.len());
    pulse_testkit::wait_until(WAIT, "the market moves on", || async {
        fake.published() >= down_until
    })
    .await;
    let last_before_kill = last_trades_on_topic(&client, kafka.topic(), &symbols, AGG, 10_000)
        .await
        .unwrap()
        .last
        .into_iter()
        .map(|(symbol, t)| (symbol, t.id))
        .collect();
    let restarted_at = fake.published();
    args.extend(["--metrics", "127.0.0.1:0"]);
    args.extend(restart_args);
    let second = Pulse::spawn("produce #2", &args);
    Some(CrashedProducer {
        fake,
        recorded,
        second,
        last_before_kill,
        restarted_at,
    })
}

/// A symbol that had not traded when the producer was killed has no trade
/// on the topic to resume after; the progress markers name it as followed,
/// so the restarted producer looks up by time what it traded meanwhile.
#[tokio::test]
async fn a_symbol_first_trading_while_no_producer_runs_loses_nothing() {
    let Some(kafka) = pulse_testkit::kafka() else {
        return;
    };
    let Some(path) = capture(ALTCOINS) else {
        return;
    };
    let mut tape = trades(&path);
    // Times kept with the fake's pace (50 a second), as on a live market.
    let start = tape[0].trade_time_ms;
    for (i, t) in (0..).zip(tape.iter_mut()) {
        t.trade_time_ms = start + 20 * i;
        t.event_time_ms = t.trade_time_ms;
    }
    // The symbol that trades first last trades only from position 350 on,
    // some 5 s after the kill.
    let mut seen = Vec::new();
    for t in &tape {
        if !seen.contains(&t.symbol) {
            seen.push(t.symbol);
        }
    }
    let late = *seen.last().unwrap();
    let recorded: Vec<Trade> = tape
        .into_iter()
        .enumerate()
        .filter(|(i, t)| t.symbol != late || *i >= 350)
        .map(|(_, t)| t)
        .collect();
    let first_late = recorded.iter().position(|t| t.symbol == late).unwrap();
    let kill_at = 60;
    assert!(kill_at + 200 < first_late && first_late + 50 < recorded.len());
    let config = FakeConfig {
        pace: Pace::TradesPerSecond(50),
        ..FakeConfig::default()
    };
    let fake = FakeBinance::start_with(recorded.clone(), config).await;
    let symbols = fake.symbols();
    let owned = produce_args(&kafka, &fake);
    let args: Vec<&str> = owned.iter().map(String::as_str).collect();
    let mut first = Pulse::spawn("produce #1", &args);
    let client = kafka.client().await;
    pulse_testkit::wait_until(WAIT, "a marker vouches for the quiet symbol", || async {
        fake.published() >= kill_at
            && last_trades_on_topic(&client, kafka.topic(), &symbols, AGG, 10_000)
                .await
                .is_ok_and(|scan| {
                    scan.vouched.contains_key(&late) && !scan.last.contains_key(&late)
                })
    })
    .await;
    first.assert_running();
    first.kill().await;
    // It first trades while no producer runs.
    pulse_testkit::wait_until(WAIT, "the quiet symbol trades", || async {
        fake.published() >= first_late + 20
    })
    .await;
    let mut second = Pulse::spawn("produce #2", &args);
    let on_topic = read_topic(&kafka, &ends(&recorded, 1)).await;
    assert_same_trades(&recorded, &on_topic);
    second.terminate().await;
    assert!(
        second
            .output()
            .contains("no trade of it on the topic, but followed until then"),
        "{}",
        second.output()
    );
}

/// The sum of a per-symbol counter on a /metrics page.
fn counter_sum(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn live_produce_survives_faults_and_a_crash_and_loses_nothing() {
    let Some(kafka) = pulse_testkit::kafka() else {
        return;
    };
    let Some(db) = pulse_testkit::clickhouse().await else {
        return;
    };
    let Some(mut run) = crash_and_restart(&kafka, &[]).await else {
        return;
    };
    let ends = ends(&run.recorded, 3);
    let on_topic = read_topic(&kafka, &ends).await;
    assert_same_trades(&run.recorded, &on_topic);
    run.second.assert_running();
    // What it fetched over REST shows on its /metrics.
    let metrics = scrape_metrics(&run.second).await;
    assert!(
        counter_sum(&metrics, "pulse_trades_backfilled_total") > 0,
        "nothing backfilled:\n{metrics}"
    );
    assert_eq!(counter_sum(&metrics, "pulse_trades_unfilled_total"), 0);
    run.second.terminate().await;
    assert!(
        run.second
            .output()
            .contains("resuming after the last trade already delivered"),
        "{}",
        run.second.output()
    );

    let brokers = kafka.brokers().join(",");
    let topic = kafka.topic();
    let mut consume = Pulse::spawn(
        "consume",
        &consume_args(&brokers, topic, db.url(), db.database(), "live"),
    );
    let store = store(db.url(), db.database(), "live");
    wait_processed(&store, topic, &trade_ends(&kafka, &ends).await).await;
    consume.terminate().await;
    assert_same_rows(
        &store.select_final().await.unwrap(),
        &expected_rows(&run.recorded),
    );
}

#[tokio::test]
async fn a_restart_backfills_at_most_its_bound_and_counts_the_rest() {
    let Some(kafka) = pulse_testkit::kafka() else {
        return;
    };
    const BOUND: u64 = 3;
    let Some(mut run) = crash_and_restart(&kafka, &["--resume-backfill-max", "3"]).await else {
        return;
    };
    // Every symbol trades again after the restart, so each gap is shown by
    // a live trade (not by the catch-up of a quiet symbol, which would take
    // the oldest trades instead).
    let traded_after: BTreeSet<Symbol> = run.recorded[run.restarted_at..]
        .iter()
        .map(|t| t.symbol)
        .collect();
    assert_eq!(traded_after.len(), run.last_before_kill.len());
    // Wait for the market to end and the producer to publish its last trades.
    pulse_testkit::wait_until(WAIT, "the market ends", || async {
        run.fake.stats().playback_done
    })
    .await;
    let last_ids: BTreeMap<Symbol, u64> = {
        let mut last = BTreeMap::new();
        for t in &run.recorded {
            last.insert(t.symbol, t.id);
        }
        last
    };
    let client = kafka.client().await;
    let symbols: Vec<Symbol> = last_ids.keys().copied().collect();
    pulse_testkit::wait_until(
        WAIT,
        "every symbol's last trade is on the topic",
        || async {
            last_trades_on_topic(&client, kafka.topic(), &symbols, AGG, 100_000)
                .await
                .is_ok_and(|on_topic| {
                    last_ids
                        .iter()
                        .all(|(s, id)| on_topic.last.get(s).is_some_and(|t| t.id == *id))
                })
        },
    )
    .await;
    let metrics = scrape_metrics(&run.second).await;
    run.second.terminate().await;

    // Per symbol, what is missing is one run right after the trade the
    // first producer left last, and at most BOUND trades before the first
    // live trade of the second one were fetched over REST.
    let mut got: BTreeMap<Symbol, Vec<u64>> = BTreeMap::new();
    let end = ends(&run.recorded, 3);
    // Fewer records than recorded are expected: read whatever is there.
    let partitions = end.keys().map(|p| (*p, 0)).collect();
    let on_topic = read_topic(&kafka, &partitions).await;
    for t in &on_topic {
        got.entry(t.symbol).or_default().push(t.id);
    }
    let mut missing_total = 0;
    for (symbol, ids) in &got {
        let want: Vec<u64> = run
            .recorded
            .iter()
            .filter(|t| t.symbol == *symbol)
            .map(|t| t.id)
            .collect();
        let missing: Vec<u64> = want
            .iter()
            .copied()
            .filter(|id| !ids.contains(id))
            .collect();
        let mut sorted = ids.clone();
        sorted.dedup();
        assert_eq!(&sorted, ids, "{symbol}: no duplicates, id order");
        if let (Some(first), Some(last)) = (missing.first(), missing.last()) {
            assert_eq!(*first, run.last_before_kill[symbol] + 1, "{symbol}");
            assert_eq!(missing.len() as u64, last - first + 1, "{symbol}: one run");
        }
        missing_total += missing.len() as u64;
    }
    assert!(missing_total > 0, "the bound of {BOUND} gave nothing up");
    assert_eq!(
        counter_sum(&metrics, "pulse_trades_unfilled_total"),
        missing_total,
        "every trade given up is counted"
    );
    assert!(counter_sum(&metrics, "pulse_trades_backfilled_total") <= BOUND * got.len() as u64);
}
