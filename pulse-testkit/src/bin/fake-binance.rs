//! `fake-binance CAPTURE [SPEED]`: serves a recorded capture on loopback as
//! Binance's live streams would, for measuring pulse end to end
//! (`scripts/freshness.sh`). The tape is moved to start a few seconds from
//! now and played at SPEED × real time (default 1), each trade sent when
//! the wall clock reaches its (moved) trade time, once a client subscribed.
//! Prints `ws=URL rest=URL` once listening, then `done N` when the tape is
//! out.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pulse_testkit::fake_binance::{FakeBinance, FakeConfig, Pace, Start, load_trades};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (capture, speed) = match args.as_slice() {
        [flag] if flag == "-h" || flag == "--help" => {
            println!("{USAGE}");
            return;
        }
        [capture] => (capture.clone(), 1.0),
        [capture, speed] => match speed.parse::<f64>() {
            Ok(speed) if speed.is_finite() && speed > 0.0 => (capture.clone(), speed),
            _ => fail(&format!("SPEED must be a positive number, got {speed:?}")),
        },
        _ => fail("expected CAPTURE [SPEED]"),
    };
    let mut trades =
        load_trades(&capture).unwrap_or_else(|e| fail(&format!("reading {capture}: {e}")));
    // Trade times as a live stream has them, with time for a client to
    // subscribe before the first.
    let lead = Duration::from_secs(5);
    let start = wall_ms() + lead.as_millis() as i64;
    // By whole seconds, so the live windows are the recording's windows
    // moved, and a replay of the capture can be compared with them.
    let shift = (start - trades.first().map_or(start, |t| t.trade_time_ms)).div_euclid(1000) * 1000;
    let start = trades.first().map_or(start, |t| t.trade_time_ms + shift);
    for t in &mut trades {
        t.trade_time_ms += shift;
        t.event_time_ms += shift;
    }
    let total = trades.len();
    let config = FakeConfig {
        pace: Pace::RealTime { speed },
        start: Start::Manual,
    };
    let fake = FakeBinance::start_with(trades, config).await;
    println!("ws={} rest={}", fake.ws_base(), fake.rest_base());
    let wait = Duration::from_millis(u64::try_from(start - wall_ms()).unwrap_or(0));
    tokio::time::sleep(wait).await;
    if fake.stats().open_connections == 0 {
        eprintln!("no client subscribed within {lead:?}; playing anyway");
    }
    fake.play();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        if fake.published() >= total {
            println!("done {total}");
            // Keep serving REST backfills until stopped.
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    }
}

const USAGE: &str = "usage: fake-binance CAPTURE [SPEED]

Serves CAPTURE (a .jsonl or .jsonl.gz of Binance frames) on loopback as
Binance's live streams, moved by whole seconds to start about 5 s from now and played at SPEED x
real time (default 1). Prints `ws=URL rest=URL` once listening and
`done N` when the tape is out; Ctrl-C stops it.";

/// Says what is wrong, with the usage, and exits 2.
fn fail(message: &str) -> ! {
    eprintln!("fake-binance: {message}\n\n{USAGE}");
    std::process::exit(2);
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_millis() as i64
}
