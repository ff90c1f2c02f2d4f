//! `pulse run --clickhouse URL --brokers LIST`: besides the terminal, the
//! replay's windows land in the real ClickHouse exactly as pulse-core computes
//! them, and every trade lands on the real broker, once and in order. Live,
//! a window corrected after a backfill replaces its first row in `FINAL`.

mod produce_consume_support;

use produce_consume_support::{
    ALTCOINS, Pulse, assert_same_rows, capture, ends, expected_rows, read_topic, store, trades,
};
use std::time::Duration;

use pulse_io::kafka::topic_partitions;
use pulse_testkit::fake_binance::{FakeBinance, FakeConfig, Fault, Pace, RestFault, load_trades};
use pulse_testkit::wait_until;

/// 10 701 BTCUSDT trades over eight minutes, ids contiguous.
const LIVE_TAPE: &str = "binance-usdm_btcusdt@trade_2024-07-18T235702Z_2024-07-19T000502Z.jsonl.gz";

#[tokio::test]
async fn live_windows_corrected_after_a_backfill_replace_their_first_row_in_final() {
    let Some(db) = pulse_testkit::clickhouse().await else {
        return;
    };
    let Some(path) = capture(LIVE_TAPE) else {
        return;
    };
    let config = FakeConfig {
        pace: Pace::RealTime { speed: 25.0 },
        ..FakeConfig::default()
    };
    let fake = FakeBinance::start_with(load_trades(&path).unwrap(), config).await;
    // A stalled connection loses trades before pulse can know it: until the
    // watchdog gives up on it, the window in progress closes on the idle
    // margin (a dropped connection, noticed at once, would hold it instead).
    // It is corrected once REST, delayed 2 s by a rate limit, fills the
    // hole; windows after it wait for the hole.
    fake.schedule(2_000, Fault::Stall);
    fake.fail_rest(
        RestFault::TooManyRequests {
            retry_after: Duration::from_secs(2),
        },
        1,
    );
    let (ws, rest) = (fake.ws_base(), fake.rest_base());
    let csv = tempfile::NamedTempFile::new().unwrap();
    let csv_path = csv.path().to_str().unwrap().to_owned();
    let mut run = Pulse::spawn(
        "run live",
        &[
            "run",
            "--quiet",
            "--dashboard",
            "off",
            "--symbols",
            "BTCUSDT",
            "--binance-ws-url",
            &ws,
            "--binance-rest-url",
            &rest,
            "--clickhouse",
            db.url(),
            "--database",
            db.database(),
            "--table",
            "live_windows",
            "--csv",
            &csv_path,
        ],
    );
    wait_until(Duration::from_secs(30), "pulse connects", || async {
        fake.stats().connections_accepted >= 1
    })
    .await;
    let expected = expected_rows(fake.trades());
    let table = store(db.url(), db.database(), "live_windows");
    wait_until(
        Duration::from_secs(120),
        "FINAL holds every window of the tape",
        || async { table.select_final().await.unwrap_or_default() == expected },
    )
    .await;
    assert_same_rows(&table.select_final().await.unwrap(), &expected);
    run.terminate().await;
    // The CSV has each window's first row and then its corrections: rows
    // of the same symbol and window_start (the 10th and 1st columns).
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let mut seen = std::collections::HashSet::new();
    let corrected = csv
        .lines()
        .skip(1)
        .map(|line| {
            let cols: Vec<&str> = line.split(',').collect();
            (cols[9].to_string(), cols[0].to_string())
        })
        .filter(|key| !seen.insert(key.clone()))
        .count();
    assert!(corrected > 0, "no window was corrected after the drops");
}

#[tokio::test]
async fn run_also_stores_windows_in_clickhouse_and_trades_in_kafka() {
    let Some(kafka) = pulse_testkit::kafka() else {
        return;
    };
    let Some(db) = pulse_testkit::clickhouse().await else {
        return;
    };
    let Some(path) = capture(ALTCOINS) else {
        return;
    };
    let brokers = kafka.brokers().join(",");
    let topic = kafka.topic();
    let trades = trades(&path);

    let mut run = Pulse::spawn(
        "run",
        &[
            "run",
            "--quiet",
            "--dashboard",
            "off",
            "--replay",
            path.to_str().unwrap(),
            "--clickhouse",
            db.url(),
            "--database",
            db.database(),
            "--table",
            "run_windows",
            "--brokers",
            &brokers,
            "--topic",
            topic,
        ],
    );
    run.wait_success().await;

    let store = store(db.url(), db.database(), "run_windows");
    assert_same_rows(
        &store.select_final().await.unwrap(),
        &expected_rows(&trades),
    );

    // One partition (the default), holding every trade in capture order.
    let client = kafka.client().await;
    assert_eq!(
        topic_partitions(&client, topic).await.unwrap(),
        Some(vec![0])
    );
    assert_eq!(read_topic(&kafka, &ends(&trades, 1)).await, trades);
}
