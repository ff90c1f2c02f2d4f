//! `pulse run` against a live source: the local fake Binance
//! (`pulse_testkit::fake_binance`) playing a real capture with a dropped
//! connection, and against nothing at all.

mod run_support;

use std::collections::BTreeMap;
use std::time::Duration;

use pulse_core::{Aggregator, AggregatorConfig, Event, Trade, Window};
use pulse_testkit::fake_binance::{FakeBinance, Fault, load_trades};
use pulse_testkit::wait_until;
use run_support::{RunningPulse, assert_rows_match, capture, http_get, pulse, read_csv, temp_dir};

/// 10 701 BTCUSDT trades over eight minutes, ids contiguous (a tape with
/// holes would leave the source waiting for backfill of ids that never were).
const LIVE_TAPE: &str = "binance-usdm_btcusdt@trade_2024-07-18T235702Z_2024-07-19T000502Z.jsonl.gz";

/// Moves the tape so that it starts now. Its trades then lie minutes in the
/// future, so windows close by trade time alone, exactly as in
/// pulse-core's direct computation, and never by the idle clock.
fn starting_now(mut trades: Vec<Trade>) -> Vec<Trade> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let shift = now - trades[0].trade_time_ms;
    for t in &mut trades {
        t.trade_time_ms += shift;
        t.event_time_ms += shift;
    }
    trades
}

fn windows_of(trades: &[Trade]) -> Vec<Window> {
    let mut agg = Aggregator::new(AggregatorConfig::default()).unwrap();
    for t in trades {
        agg.handle_trade(*t);
    }
    agg.flush();
    let mut windows: Vec<Window> = std::iter::from_fn(|| agg.poll())
        .filter_map(|e| match e {
            Event::Window(w) => Some(w),
            _ => None,
        })
        .collect();
    windows.sort_by_key(|w| (w.symbol.to_string(), w.start_ms));
    windows
}

/// The value of the sample line starting with `name`, or 0.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

#[tokio::test]
async fn live_run_survives_a_dropped_connection_and_records_metrics() {
    let Some(tape) = capture(LIVE_TAPE) else {
        return;
    };
    let trades = starting_now(load_trades(&tape).unwrap());
    let fake = FakeBinance::start(trades.clone()).await;
    fake.schedule(4_000, Fault::Disconnect);
    let symbols: Vec<String> = fake.symbols().iter().map(|s| s.to_string()).collect();

    let dir = temp_dir();
    let csv = dir.path().join("windows.csv");
    let (ws, rest) = (fake.ws_base(), fake.rest_base());
    let mut pulse = RunningPulse::start(&[
        "--symbols",
        &symbols.join(","),
        "--binance-ws-url",
        &ws,
        "--binance-rest-url",
        &rest,
        "--csv",
        csv.to_str().unwrap(),
        "-q",
    ])
    .await;

    let addr = pulse.addr;
    let total = trades.len() as f64;
    wait_until(
        Duration::from_secs(60),
        "every trade was received",
        || async move {
            let (_, _, text) = http_get(addr, "/metrics").await;
            let received: f64 = text
                .lines()
                .filter(|l| l.starts_with("pulse_trades_received_total{"))
                .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
                .sum();
            received >= total
        },
    )
    .await;
    let (_, _, text) = http_get(addr, "/metrics").await;
    assert!(sample(&text, "pulse_reconnects_total") >= 1.0, "{text}");
    assert_eq!(sample(&text, "pulse_connections"), 1.0, "{text}");
    assert!(
        sample(&text, "pulse_window_emit_latency_seconds_count") > 0.0,
        "live windows are timed: {text}"
    );
    assert!(
        sample(
            &text,
            "pulse_window_store_latency_seconds_count{sink=\"csv\"}"
        ) > 0.0,
        "{text}"
    );

    // Ctrl-C flushes the windows still open; then the CSV holds exactly
    // what pulse-core computes from the tape: nothing lost, nothing twice.
    let status = pulse.interrupt().await;
    assert!(status.success(), "{status:?}\n{}", pulse.stderr());
    let (header, mut rows) = read_csv(&csv);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    rows.sort_by_key(|r| (r[col("symbol")].clone(), r[col("window_start")].clone()));
    let expected = windows_of(&trades);
    assert_rows_match(&header, &rows, &expected);
    let mut per_symbol: BTreeMap<&str, usize> = BTreeMap::new();
    for w in &expected {
        *per_symbol.entry(w.symbol.as_str()).or_default() += 1;
    }
    assert_eq!(per_symbol.len(), symbols.len());
    assert!(expected.len() > 400, "{} windows", expected.len());
}

#[tokio::test]
async fn unreachable_binance_is_reported_with_a_replay_hint() {
    // Nothing listens on a port we just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = pulse()
        .args(["run", "--dashboard", "off"])
        .args(["--binance-ws-url", &format!("ws://127.0.0.1:{port}")])
        .args(["--binance-rest-url", &format!("http://127.0.0.1:{port}")])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert!(stderr.contains("cannot be reached"), "{stderr}");
    assert!(stderr.contains("pulse run --replay FILE"), "{stderr}");
}
