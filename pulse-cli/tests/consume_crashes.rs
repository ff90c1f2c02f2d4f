//! `pulse consume` killed with SIGKILL at random moments, several times in
//! one run, and restarted each time: `SELECT … FINAL` must equal what a clean
//! run writes, with no window missing or doubled and every value identical.

mod produce_consume_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use produce_consume_support::{
    ALTCOINS, BUSY_BTC, Pulse, WAIT, assert_batched_inserts, assert_same_rows, capture,
    consume_args, ends, expected_rows, processed, publish_replay, store, trade_ends, trades,
    wait_processed,
};

/// Kills before the run may finish.
const KILLS: usize = 5;

/// A small xorshift generator; the seed is printed so a failure can be rerun
/// with `PULSE_TEST_SEED`.
struct Rng(u64);

impl Rng {
    fn from_env_or_clock() -> Rng {
        let seed = std::env::var("PULSE_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            })
            | 1;
        println!("PULSE_TEST_SEED={seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[tokio::test]
async fn sigkill_at_random_moments_then_restart_gives_the_clean_run_table() {
    let Some(kafka) = pulse_testkit::kafka() else {
        return;
    };
    let Some(db) = pulse_testkit::clickhouse().await else {
        return;
    };
    let (Some(busy), Some(altcoins)) = (capture(BUSY_BTC), capture(ALTCOINS)) else {
        return;
    };
    let brokers = kafka.brokers().join(",");
    let topic = kafka.topic();
    // One busy symbol and five quiet ones, over three partitions.
    let mut all = trades(&busy);
    all.extend(trades(&altcoins));
    for path in [&busy, &altcoins] {
        publish_replay(&brokers, topic, 3, path).await;
    }
    let ends = trade_ends(&kafka, &ends(&all, 3)).await;
    let total: i64 = ends.values().sum();

    // Small fetches (and inserts every 100 ms): many positions to be killed between.
    let mut args = consume_args(&brokers, topic, db.url(), db.database(), "crashed");
    args.extend(["--fetch-max-bytes", "4096"]);
    let crashed = store(db.url(), db.database(), "crashed");
    let mut rng = Rng::from_env_or_clock();
    let mut mid_run_kills = 0;
    for round in 0..KILLS {
        let mut consumer = Pulse::spawn(&format!("consume #{round}"), &args);
        // Spread the kills over the run: past a share of the records each
        // time, then a random moment later.
        let share = total * (round as i64 + 1) / (KILLS as i64 + 2);
        pulse_testkit::wait_until(WAIT, "the consumer gets past its share", || async {
            processed(&crashed, topic).await > share
        })
        .await;
        consumer.assert_running();
        tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
        consumer.kill().await;
        let at = processed(&crashed, topic).await;
        println!("round {round}: killed at about {at} of {total} records");
        mid_run_kills += usize::from(at < total);
    }
    assert!(
        mid_run_kills >= 2,
        "only {mid_run_kills} kills landed before the end; the test lost its point"
    );
    let mut last = Pulse::spawn("consume, last", &args);
    wait_processed(&crashed, topic, &ends).await;
    // Every window is stored while it still runs: the markers closed the
    // quiet symbols' last windows, restarts or not.
    let expected = expected_rows(&all);
    pulse_testkit::wait_until(WAIT, "FINAL holds every window before shutdown", || async {
        crashed.select_final().await.unwrap_or_default() == expected
    })
    .await;
    last.terminate().await;
    // Hundreds of small fetches, yet about one insert per 100 ms.
    assert_batched_inserts(&last.output(), 0.1);

    let mut clean = Pulse::spawn(
        "consume, clean",
        &consume_args(&brokers, topic, db.url(), db.database(), "clean"),
    );
    let clean_store = store(db.url(), db.database(), "clean");
    wait_processed(&clean_store, topic, &ends).await;
    clean.terminate().await;

    let clean_rows = clean_store.select_final().await.unwrap();
    // pulse-core's own answer, per symbol, matches the clean run ...
    assert_same_rows(&clean_rows, &expected);
    // ... and the crashed run matches both, value for value.
    assert_same_rows(&crashed.select_final().await.unwrap(), &clean_rows);
}
