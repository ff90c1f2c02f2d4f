//! `pulse run` against a live source: the local fake Binance
//! (`pulse_testkit::fake_binance`) playing a real capture with a dropped
//! connection, and against nothing at all.

mod run_support;

use std::collections::BTreeMap;
use std::time::Duration;

use pulse_core::{Aggregator, AggregatorConfig, Event, Trade, Window};
use pulse_testkit::fake_binance::{FakeBinance, FakeConfig, Fault, Pace, load_trades};
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

/// The CSV's rows, the newest version of each window only, sorted like
/// [`windows_of`]. A window that trades completed after it closed (a
/// backfill after a drop) was appended again with a higher version.
fn newest_rows(csv: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let (header, rows) = read_csv(csv);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let version = |r: &Vec<String>| r[col("version")].parse::<u64>().unwrap();
    let mut newest: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for row in rows {
        let key = (row[col("symbol")].clone(), row[col("window_start")].clone());
        if newest
            .get(&key)
            .is_none_or(|old| version(old) < version(&row))
        {
            newest.insert(key, row);
        }
    }
    let rows = newest.into_values().collect();
    (header, rows)
}

/// `pulse run` on every symbol of `fake`, writing `csv`, started with `env`.
async fn run_against(
    fake: &FakeBinance,
    csv: &std::path::Path,
    env: &[(&str, &str)],
) -> RunningPulse {
    let symbols: Vec<String> = fake.symbols().iter().map(|s| s.to_string()).collect();
    let (ws, rest) = (fake.ws_base(), fake.rest_base());
    RunningPulse::start_with_env(
        env,
        &[
            "--symbols",
            &symbols.join(","),
            "--binance-ws-url",
            &ws,
            "--binance-rest-url",
            &rest,
            "--csv",
            csv.to_str().unwrap(),
            "-q",
        ],
    )
    .await
}

/// Plays `trades` from the fake Binance with `config` and `faults` (at
/// counts of published trades) to `pulse run` started with `env`,
/// and waits until the CSV, newest versions only, holds exactly pulse-core's
/// replay of the trades, while pulse still runs: the quiet tail closed on
/// elapsed time, not at Ctrl-C. Returns pulse's metrics from then.
async fn live_run_equals_the_replay(
    trades: Vec<Trade>,
    config: FakeConfig,
    faults: &[(usize, Fault)],
    env: &[(&str, &str)],
) -> String {
    let fake = FakeBinance::start_with(trades.clone(), config).await;
    for (at, fault) in faults {
        fake.schedule(*at, *fault);
    }
    let dir = temp_dir();
    let csv = dir.path().join("windows.csv");
    let mut pulse = run_against(&fake, &csv, env).await;
    let expected = windows_of(&trades);
    let path = csv.clone();
    let want = expected.len();
    wait_until(
        Duration::from_secs(90),
        "every window is in the CSV while pulse runs",
        || {
            let path = path.clone();
            async move { newest_rows(&path).1.len() >= want }
        },
    )
    .await;
    let (header, rows) = newest_rows(&csv);
    assert_rows_match(&header, &rows, &expected);
    let (_, _, metrics) = http_get(pulse.addr, "/metrics").await;
    let status = pulse.interrupt().await;
    assert!(status.success(), "{status:?}\n{}", pulse.stderr());
    metrics
}

/// Debian's libfaketime, preloaded so that pulse's wall clock is off by
/// `offset` while its monotonic clock is not; `None` (the test skips)
/// outside CI when it is missing. The library rather than the `faketime`
/// wrapper, so that Ctrl-C reaches pulse itself.
fn faketime(offset: &'static str) -> Option<[(&'static str, &'static str); 3]> {
    const LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
    if !std::path::Path::new(LIB).exists() {
        assert!(
            !pulse_testkit::is_ci(),
            "libfaketime is missing (apt-get install faketime)"
        );
        pulse_testkit::skip("libfaketime is not installed (apt-get install faketime)");
        return None;
    }
    Some([
        ("LD_PRELOAD", LIB),
        ("FAKETIME", offset),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ])
}

/// 91 trades of four altcoins over 29 s: quiet symbols, so most windows
/// close on elapsed time, not on a later trade.
const QUIET_TAPE: &str = "binance-usdm_altcoins@aggTrade_2021-07-22_cryptofeed.jsonl.gz";

async fn skewed_clock(offset: &'static str) {
    let Some(tape) = capture(QUIET_TAPE) else {
        return;
    };
    let Some(env) = faketime(offset) else {
        return;
    };
    let config = FakeConfig {
        pace: Pace::RealTime { speed: 1.0 },
        ..FakeConfig::default()
    };
    let trades = starting_now(load_trades(&tape).unwrap());
    let windows = windows_of(&trades).len() as f64;
    let text = live_run_equals_the_replay(trades, config, &[], &env).await;
    // Windows close on the next trade or 150 ms (the idle margin) after
    // their end; a latency taken from the skewed wall clock would be 5 s
    // off (or clamped to 0).
    let count = sample(&text, "pulse_window_emit_latency_seconds_count");
    let mean = sample(&text, "pulse_window_emit_latency_seconds_sum") / count;
    assert!(count >= windows, "{text}");
    assert!(
        (0.05..2.5).contains(&mean),
        "mean emit latency {mean} s:\n{text}"
    );
}

#[tokio::test]
async fn live_run_is_exact_with_the_local_clock_5s_ahead() {
    skewed_clock("+5s").await;
}

#[tokio::test]
async fn live_run_is_exact_with_the_local_clock_5s_behind() {
    skewed_clock("-5s").await;
}

#[tokio::test]
async fn live_run_from_a_replay_server_at_25x_with_drops_is_exact() {
    let Some(tape) = capture(LIVE_TAPE) else {
        return;
    };
    // Recorded times, years behind the local clock, as a replay server sends.
    let trades = load_trades(&tape).unwrap();
    let config = FakeConfig {
        pace: Pace::RealTime { speed: 25.0 },
        ..FakeConfig::default()
    };
    let faults = [(2_000, Fault::Disconnect), (7_000, Fault::Disconnect)];
    live_run_equals_the_replay(trades, config, &faults, &[]).await;
}

/// The value of the sample line starting with `name`, or 0.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

/// The sum of a family's samples over every label set.
fn family_sum(text: &str, family: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[tokio::test]
async fn live_run_survives_a_dropped_connection_and_records_metrics() {
    let Some(tape) = capture(LIVE_TAPE) else {
        return;
    };
    let trades = starting_now(load_trades(&tape).unwrap());
    let fake = FakeBinance::start(trades.clone()).await;
    fake.schedule(4_000, Fault::Disconnect);
    let symbols = fake.symbols();
    let dir = temp_dir();
    let csv = dir.path().join("windows.csv");
    let mut pulse = run_against(&fake, &csv, &[]).await;
    wait_until(Duration::from_secs(30), "pulse connects", || async {
        fake.stats().connections_accepted >= 1
    })
    .await;
    // The reconnect after the drop fails twice before it gets through.
    fake.reject_handshakes(2);

    let addr = pulse.addr;
    let total = trades.len() as f64;
    wait_until(
        Duration::from_secs(60),
        "every trade was received",
        || async move {
            let (_, _, text) = http_get(addr, "/metrics").await;
            family_sum(&text, "pulse_trades_received_total") >= total
        },
    )
    .await;
    // Live windows are timed, when emitted and once the CSV sink stored
    // them (a moment later: a scrape can fall in between).
    wait_until(
        Duration::from_secs(30),
        "windows timed as emitted and as stored",
        || async move {
            let (_, _, text) = http_get(addr, "/metrics").await;
            sample(&text, "pulse_window_emit_latency_seconds_count") > 0.0
                && sample(
                    &text,
                    "pulse_window_store_latency_seconds_count{sink=\"csv\"}",
                ) > 0.0
        },
    )
    .await;
    let (_, _, text) = http_get(addr, "/metrics").await;
    assert!(sample(&text, "pulse_reconnects_total") >= 1.0, "{text}");
    assert_eq!(sample(&text, "pulse_connect_failures_total"), 2.0, "{text}");
    assert_eq!(sample(&text, "pulse_connections"), 1.0, "{text}");

    // Ctrl-C flushes the windows still open; then the CSV holds exactly
    // what pulse-core computes from the tape: nothing lost, nothing twice.
    let status = pulse.interrupt().await;
    assert!(status.success(), "{status:?}\n{}", pulse.stderr());
    // The windows of the drop stayed open while pulse was cut off, and
    // closed once REST had filled them in: none had to be corrected.
    assert!(
        pulse.stderr().contains(" s; 0 late, "),
        "{}",
        pulse.stderr()
    );
    // The summary counts what the source repaired as well as the pipeline.
    let gaps = family_sum(&text, "pulse_gaps_total") + family_sum(&text, "pulse_stream_gaps_total");
    let duplicates = family_sum(&text, "pulse_duplicate_trades_total");
    let backfilled = family_sum(&text, "pulse_trades_backfilled_total");
    assert!(backfilled > 0.0, "the drop missed trades: {text}");
    assert!(
        pulse.stderr().contains(&format!(
            "{duplicates} duplicates, {gaps} gaps, {backfilled} backfilled over REST"
        )),
        "{}",
        pulse.stderr()
    );
    let expected = windows_of(&trades);
    let (header, rows) = newest_rows(&csv);
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
