//! Paced replay in tokio's paused time: trades come out at real time × the
//! speed factor, by trade time, and never early.

use std::time::Duration;

use pulse_io::{Metrics, ReplayOptions, open_replay};
use pulse_testkit::data_dir;
use tokio::time::Instant;

/// 91 aggTrades over about a minute, four symbols.
const SMALL: &str = "binance-usdm_altcoins@aggTrade_2021-07-22_cryptofeed.jsonl.gz";
/// Times step back across symbols 32 times.
const INTERLEAVED: &str = "binance-usdm_altcoins@aggTrade_2021-04-05_cryptofeed.jsonl.gz";

async fn paced(file: &str, speed: f64) {
    let Some(dir) = data_dir() else { return };
    let options = ReplayOptions {
        speed: Some(speed),
        ..ReplayOptions::default()
    };
    let mut source = open_replay(dir.join(file), options, Metrics::new()).expect("open");
    let start = Instant::now();
    let mut first_time = None;
    let mut latest_time = i64::MIN;
    let mut count = 0;
    loop {
        let mut batch = Vec::new();
        if !source.next_trades(&mut batch).await.expect("replay") {
            break;
        }
        let elapsed = start.elapsed();
        for t in &batch {
            let t0 = *first_time.get_or_insert(t.trade_time_ms);
            latest_time = latest_time.max(t.trade_time_ms);
            let due =
                Duration::from_secs_f64((t.trade_time_ms - t0).max(0) as f64 / 1000.0 / speed);
            assert!(
                elapsed + Duration::from_millis(1) >= due,
                "{file}: trade {} early: {elapsed:?} < {due:?}",
                t.id
            );
        }
        count += batch.len();
    }
    // The last trade is due at the span of the data divided by the speed.
    let span = Duration::from_secs_f64((latest_time - first_time.unwrap()) as f64 / 1000.0 / speed);
    let elapsed = start.elapsed();
    assert!(
        elapsed >= span && elapsed <= span + Duration::from_millis(5),
        "{file}: {elapsed:?} vs {span:?}"
    );
    assert!(count > 0);
}

#[tokio::test(start_paused = true)]
async fn paced_at_ten_times_real_time() {
    paced(SMALL, 10.0).await;
}

#[tokio::test(start_paused = true)]
async fn paced_at_real_time_with_times_stepping_back() {
    paced(INTERLEAVED, 1.0).await;
}

#[tokio::test(start_paused = true)]
async fn paced_slower_than_real_time() {
    paced(SMALL, 0.5).await;
}
