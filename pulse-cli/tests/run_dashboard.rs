//! `pulse run` with its HTTP server: the server-sent event feed, /metrics,
//! the embedded page, and Ctrl-C. Real binary, real captures, loopback.

mod run_support;

use std::collections::BTreeMap;
use std::time::Duration;

use pulse_testkit::wait_until;
use run_support::{
    ALTCOINS_CAPTURE, BTC_CAPTURE, EventStream, RunningPulse, capture, expected_windows, http_get,
    read_csv, temp_dir,
};
use serde_json::Value;

/// Windows from SSE `snapshot`/`window` events, keyed by (symbol, start).
fn absorb(rows: &mut BTreeMap<(String, i64), Value>, name: &str, data: &str) {
    let value: Value = serde_json::from_str(data).unwrap();
    let windows = match name {
        "snapshot" => value["windows"].as_array().unwrap().clone(),
        "window" => vec![value],
        _ => return,
    };
    for w in windows {
        let key = (
            w["symbol"].as_str().unwrap().to_string(),
            w["start_ms"].as_i64().unwrap(),
        );
        rows.insert(key, w);
    }
}

#[tokio::test]
async fn events_stream_a_snapshot_then_each_window_as_it_closes() {
    let Some(capture) = capture(BTC_CAPTURE) else {
        return;
    };
    let dir = temp_dir();
    let csv = dir.path().join("windows.csv");
    let capture_arg = capture.to_str().unwrap();
    let csv_arg = csv.to_str().unwrap();
    let mut pulse = RunningPulse::start(&[
        "--replay",
        capture_arg,
        "--speed",
        "50",
        "--csv",
        csv_arg,
        "--keep-serving",
        "-q",
    ])
    .await;

    // An early browser: a snapshot first, then windows live, then the end.
    let mut events = EventStream::open(pulse.addr).await;
    let (name, data) = events.next().await;
    assert_eq!(name, "snapshot");
    let mut rows = BTreeMap::new();
    absorb(&mut rows, &name, &data);
    let in_snapshot = rows.len();
    let mut live = 0;
    loop {
        let (name, data) = events.next().await;
        if name == "status" {
            let status: Value = serde_json::from_str(&data).unwrap();
            assert_eq!(status["state"], "ended", "{status}");
            assert_eq!(status["windows"], 344);
            break;
        }
        assert_eq!(name, "window");
        live += 1;
        absorb(&mut rows, &name, &data);
    }
    assert!(
        live > 100,
        "most windows arrive pushed, not in the snapshot ({in_snapshot} were)"
    );

    // A late browser gets the whole history in its snapshot.
    let mut late = EventStream::open(pulse.addr).await;
    let (name, data) = late.next().await;
    assert_eq!(name, "snapshot");
    let mut late_rows = BTreeMap::new();
    absorb(&mut late_rows, &name, &data);
    let snapshot: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(snapshot["status"]["state"], "ended");
    assert_eq!(
        late_rows, rows,
        "late and early browsers see the same windows"
    );
    assert_eq!(snapshot["symbols"], serde_json::json!(["BTCUSDT"]));
    // The page asks for its symbol's history only (or, having no choice yet,
    // for the default one's): here the same windows.
    for path in ["/events?symbol=BTCUSDT", "/events?symbol="] {
        let mut page = EventStream::open_path(pulse.addr, path).await;
        let (name, data) = page.next().await;
        assert_eq!(name, "snapshot");
        let mut page_rows = BTreeMap::new();
        absorb(&mut page_rows, &name, &data);
        assert_eq!(page_rows, rows, "{path}");
        let snapshot: Value = serde_json::from_str(&data).unwrap();
        assert_eq!(snapshot["selected"], "BTCUSDT", "{path}");
    }

    // Both equal what pulse-core computes, and the CSV.
    let expected = expected_windows(&capture);
    let (header, csv_rows) = read_csv(&csv);
    assert_eq!(rows.len(), expected.len());
    assert_eq!(csv_rows.len(), expected.len());
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    for (w, csv_row) in expected.iter().zip(&csv_rows) {
        let row = &rows[&(w.symbol.to_string(), w.start_ms)];
        assert_eq!(row["vwap"].as_f64(), Some(w.vwap));
        assert_eq!(row["net_delta"].as_f64(), Some(w.net_delta));
        assert_eq!(row["buy_pressure_pct"].as_f64(), Some(w.buy_pressure_pct));
        assert_eq!(row["total_volume"].as_f64(), Some(w.total_volume));
        assert_eq!(row["trade_count"].as_u64(), Some(w.trade_count));
        assert_eq!(row["signal"], w.signal.as_str());
        assert_eq!(
            row["window_start"].as_str(),
            Some(&*csv_row[col("window_start")])
        );
    }

    let status = pulse.interrupt().await;
    assert!(
        status.success(),
        "Ctrl-C exits cleanly: {status:?}\n{}",
        pulse.stderr()
    );
}

#[tokio::test]
async fn metrics_count_what_the_replay_did() {
    let Some(capture) = capture(ALTCOINS_CAPTURE) else {
        return;
    };
    let capture_arg = capture.to_str().unwrap();
    let mut pulse = RunningPulse::start(&["--replay", capture_arg, "--keep-serving", "-q"]).await;
    pulse.wait_for_replay_end().await;

    let (status, head, text) = http_get(pulse.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );

    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    let expected = expected_windows(&capture);
    let mut windows: BTreeMap<String, u64> = BTreeMap::new();
    let mut trades: BTreeMap<String, u64> = BTreeMap::new();
    for w in &expected {
        *windows.entry(w.symbol.to_string()).or_default() += 1;
        *trades.entry(w.symbol.to_string()).or_default() += w.trade_count;
    }
    for (symbol, n) in &trades {
        let line = format!("pulse_trades_received_total{{symbol=\"{symbol}\"}} {n}\n");
        assert!(text.contains(&line), "{line} in\n{text}");
    }
    for (symbol, n) in &windows {
        let line = format!("pulse_windows_emitted_total{{symbol=\"{symbol}\"}} {n}\n");
        assert!(text.contains(&line), "{line} in\n{text}");
    }
    // Every metric the issue asks for is exported, with Prometheus types, and
    // at zero before anything happened. (Malformed frames are labelled by
    // reason, so that family appears with its first rejection.)
    for (family, kind) in [
        ("pulse_trades_received", "counter"),
        ("pulse_queue_dropped", "counter"),
        ("pulse_gaps", "counter"),
        ("pulse_stream_gaps", "counter"),
        ("pulse_trades_backfilled", "counter"),
        ("pulse_late_trades", "counter"),
        ("pulse_late_trades_uncorrected", "counter"),
        ("pulse_duplicate_trades", "counter"),
        ("pulse_windows_emitted", "counter"),
        ("pulse_reconnects", "counter"),
        ("pulse_sink_errors", "counter"),
        ("pulse_sink_retries", "counter"),
        ("pulse_window_emit_latency_seconds", "histogram"),
        ("pulse_window_store_latency_seconds", "histogram"),
    ] {
        let line = format!("# TYPE {family} {kind}\n");
        assert!(text.contains(&line), "{line} in\n{text}");
    }
    for zero in [
        "pulse_late_trades_total{symbol=\"NEOUSDT\"} 0\n",
        "pulse_stream_gaps_total{symbol=\"NEOUSDT\"} 0\n",
        "pulse_sink_errors_total{sink=\"dashboard\"} 0\n",
        "pulse_sink_retries_total{sink=\"dashboard\"} 0\n",
    ] {
        assert!(text.contains(zero), "{zero} in\n{text}");
    }

    assert!(pulse.interrupt().await.success());
}

#[tokio::test]
async fn page_and_assets_are_served_from_the_binary() {
    let Some(capture) = capture(ALTCOINS_CAPTURE) else {
        return;
    };
    let capture_arg = capture.to_str().unwrap();
    let mut pulse = RunningPulse::start(&["--replay", capture_arg, "--keep-serving", "-q"]).await;

    let (status, head, page) = http_get(pulse.addr, "/").await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(page.contains(r#"<script src="vendor/uPlot.iife.min.js"></script>"#));
    assert!(page.contains(r#"<script src="dashboard.js"></script>"#));
    for (path, kind, start) in [
        (
            "/vendor/uPlot.iife.min.js",
            "text/javascript",
            "/*! https://github.com/leeoniya/uPlot",
        ),
        ("/vendor/uPlot.min.css", "text/css", ".uplot"),
        ("/dashboard.js", "text/javascript", "// pulse dashboard"),
        ("/dashboard.css", "text/css", ":root"),
    ] {
        let (status, head, body) = http_get(pulse.addr, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            head.contains(&format!("content-type: {kind}")),
            "{path}: {head}"
        );
        assert!(
            body.starts_with(start),
            "{path}: {}",
            &body[..80.min(body.len())]
        );
    }
    assert_eq!(http_get(pulse.addr, "/nope").await.0, 404);
    assert!(pulse.interrupt().await.success());
}

#[tokio::test]
async fn ctrl_c_mid_replay_flushes_open_windows_and_exits_zero() {
    let Some(capture) = capture(BTC_CAPTURE) else {
        return;
    };
    let dir = temp_dir();
    let csv = dir.path().join("windows.csv");
    let (capture_arg, csv_arg) = (capture.to_str().unwrap(), csv.to_str().unwrap());
    // Paced at 5x, the 344 s capture would take over a minute.
    let mut pulse = RunningPulse::start(&[
        "--replay",
        capture_arg,
        "--speed",
        "5",
        "--csv",
        csv_arg,
        "-q",
    ])
    .await;
    let path = csv.clone();
    wait_until(Duration::from_secs(60), "the CSV has 3 windows", || {
        let path = path.clone();
        async move { std::fs::read_to_string(&path).is_ok_and(|t| t.lines().count() > 3) }
    })
    .await;
    let mut events = EventStream::open(pulse.addr).await;

    let status = pulse.interrupt().await;
    assert!(status.success(), "{status:?}\n{}", pulse.stderr());
    let stderr = pulse.stderr();
    assert!(stderr.contains("pulse run: "), "a summary: {stderr}");
    assert!(!stderr.contains("replay finished"), "{stderr}");

    // Complete windows match pulse-core exactly; the last few were still
    // open and were flushed with the trades seen so far.
    let (header, rows) = read_csv(&csv);
    let expected = expected_windows(&capture);
    assert!(
        rows.len() >= 3 && rows.len() < expected.len(),
        "{} rows",
        rows.len()
    );
    let complete = rows.len().saturating_sub(3);
    run_support::assert_rows_match(&header, &rows[..complete], &expected[..complete]);
    assert!(
        stderr.contains(&format!("→ {} windows", rows.len())),
        "summary counts every flushed row: {stderr}"
    );

    // A browser gets the windows flushed at Ctrl-C and the final status
    // before the server ends its stream.
    let events = events.rest().await;
    let mut seen = BTreeMap::new();
    for (name, data) in &events {
        absorb(&mut seen, name, data);
    }
    assert_eq!(seen.len(), rows.len(), "every CSV row reached the browser");
    let (name, data) = events.last().unwrap();
    assert_eq!(name, "status");
    let last: Value = serde_json::from_str(data).unwrap();
    assert_eq!(last["state"], "stopped", "{data}");
}
