//! The Grafana dashboard (grafana/dashboards/pulse.json).
//!
//! - Its shape: the panels the README promises, the symbol variable, a
//!   selectable time zone, and queries that read through `FINAL` or `argMax`.
//! - Its SQL, for real: every query, with Grafana's macros expanded exactly as
//!   the ClickHouse plugin expands them, runs against the ClickHouse test
//!   server (`PULSE_TEST_CLICKHOUSE_URL`) over windows that pulse computed
//!   from real captures and stored with its ClickHouse sink, including
//!   re-emitted copies. Each query must succeed, return rows, and return the
//!   values pulse-core computes directly, with every window counted once.
//!
//! The test server is ClickHouse 18.16, so a function newer servers added
//! (e.g. `toStartOfInterval`, which `$__timeInterval` expands to) fails here.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;

use pulse_core::{Aggregator, AggregatorConfig, Event, Frame, Window, parse_frame};
use pulse_io::clickhouse::{ClickHouseConfig, ClickHouseWindowSink, WindowRow, WindowStore};
use pulse_io::replay::{ReplayOptions, open_replay};
use pulse_io::{CancellationToken, Metrics, Pipeline};
use pulse_testkit::TestClickHouse;
use serde_json::Value as Json;
use support::{DashboardQuery, dashboard, dashboard_queries, panels};

// ---------------------------------------------------------------- shape --

fn panel<'a>(dashboard: &'a Json, title: &str) -> &'a Json {
    panels(dashboard)
        .into_iter()
        .find(|p| p["title"] == title)
        .unwrap_or_else(|| panic!("the dashboard has no panel {title:?}"))
}

#[test]
fn has_the_promised_panels() {
    let d = dashboard();
    for (title, kind) in [
        ("Price and VWAP", "timeseries"),
        ("Net delta", "timeseries"),
        ("Buy pressure", "timeseries"),
        ("Volume and trades", "timeseries"),
        ("Latest signal", "stat"),
        ("Recent windows", "table"),
        ("Candlesticks", "candlestick"),
        ("All symbols", "table"),
    ] {
        assert_eq!(panel(&d, title)["type"], kind, "{title}");
    }
    let mut ids = BTreeSet::new();
    for p in panels(&d) {
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "duplicate panel id {}",
            p["id"]
        );
        let grid = &p["gridPos"];
        let (x, w) = (grid["x"].as_u64().unwrap(), grid["w"].as_u64().unwrap());
        assert!(
            x + w <= 24,
            "panel {} overflows the 24-column grid",
            p["title"]
        );
    }
}

/// The panel listing every symbol.
const OVERVIEW: &str = "panel \"All symbols\"";

#[test]
fn the_overview_links_each_symbol_to_its_view() {
    let d = dashboard();
    let overview = panel(&d, "All symbols");
    let links: Vec<&Json> = overview["fieldConfig"]["overrides"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["matcher"]["options"] == "symbol")
        .flat_map(|o| o["properties"].as_array().unwrap())
        .filter(|p| p["id"] == "links")
        .flat_map(|p| p["value"].as_array().unwrap())
        .collect();
    assert_eq!(links.len(), 1, "{overview}");
    let url = links[0]["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("/d/{}/", d["uid"].as_str().unwrap())),
        "{url}"
    );
    assert!(url.contains("var-symbol=${__data.fields.symbol}"), "{url}");
    assert!(url.contains("${__url_time_range}"), "keep the range: {url}");
    // The candlesticks read the columns the panel maps.
    let candles = panel(&d, "Candlesticks");
    assert_eq!(candles["options"]["mode"], "candles+volume");
    let sql = candles["targets"][0]["rawSql"].as_str().unwrap();
    for field in ["open", "high", "low", "close", "volume"] {
        assert_eq!(candles["options"]["fields"][field], field);
        assert!(sql.contains(&format!(" AS {field}")), "{sql}");
    }
}

#[test]
fn time_zone_is_the_viewers_and_can_be_changed() {
    let d = dashboard();
    // "browser" shows the viewer's zone; Dashboard settings → Time options
    // (or the time picker's "Change time settings") picks another.
    assert_eq!(d["timezone"], "browser");
    assert_ne!(
        d["editable"], false,
        "users must be able to change the time zone"
    );
}

#[test]
fn symbol_is_a_template_variable_fed_by_the_table() {
    let d = dashboard();
    let var = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "symbol")
        .expect("a `symbol` variable");
    assert_eq!(var["type"], "query");
    assert!(
        var["query"]
            .as_str()
            .unwrap()
            .starts_with("SELECT DISTINCT symbol FROM pulse_metrics"),
        "{}",
        var["query"]
    );
    assert_eq!(var["datasource"]["uid"], support::DATASOURCE_UID);
}

#[test]
fn every_panel_query_reads_each_window_once_for_the_chosen_symbol_and_range() {
    let queries = dashboard_queries(&dashboard());
    assert!(queries.len() >= 7, "{queries:#?}");
    for q in queries.iter().filter(|q| q.kind != "variable") {
        let sql = &q.sql;
        // Re-emitted windows (higher `version`) must never count twice.
        assert!(
            sql.contains("FINAL") || sql.contains("argMax("),
            "{}: read through FINAL or argMax:\n{sql}",
            q.origin
        );
        // The overview shows every symbol; the rest show the chosen one.
        if q.origin != OVERVIEW {
            assert!(sql.contains("${symbol}"), "{}: filter by $symbol", q.origin);
        }
        assert!(
            sql.contains("$__timeFilter(window_start)"),
            "{}: filter by the dashboard's time range",
            q.origin
        );
        // FINAL applies after WHERE's index use, so filter only on the
        // sorting key (symbol, window_start), which all versions share.
        assert!(!sql.contains("PREWHERE"), "{}", q.origin);
        // The plugin turns string columns of a time-series result into
        // series labels, so a query returning the signal must be a table.
        let format = q
            .format
            .unwrap_or_else(|| panic!("{}: no format", q.origin));
        if sql.contains("signal") {
            assert_eq!(format, 1, "{}: use the table format", q.origin);
        } else {
            assert!(format <= 1, "{}: format {format}", q.origin);
        }
    }
}

// --------------------------------------------- Grafana's macro expansion --

/// The dashboard's time range and interval, as Grafana passes them.
#[derive(Clone, Copy, Debug)]
struct TimeRange {
    from_ms: i64,
    to_ms: i64,
    interval_ms: i64,
}

/// Expands the ClickHouse plugin's macros like its backend does
/// (grafana/clickhouse-datasource, `pkg/macros/macros.go`), after Grafana's
/// front end has replaced template variables.
fn expand(sql: &str, range: TimeRange, vars: &[(&str, &str)]) -> String {
    let sql = expand_variables(sql, vars);
    let (from_s, to_s) = (range.from_ms.div_euclid(1000), range.to_ms.div_euclid(1000));
    let interval_s = (range.interval_ms / 1000).max(1);
    let date = |ms: i64| {
        let days = ms.div_euclid(86_400_000);
        format!("toDate({days})")
    };
    let mut out = String::new();
    let mut rest = sql.as_str();
    while let Some(i) = rest.find("$__") {
        out.push_str(&rest[..i]);
        rest = &rest[i + 3..];
        let name_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..name_len];
        rest = &rest[name_len..];
        let mut args: Vec<String> = Vec::new();
        if let Some(r) = rest.strip_prefix('(') {
            let close = r.find(')').unwrap_or_else(|| panic!("unclosed $__{name}("));
            args = r[..close]
                .split(',')
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect();
            rest = &r[close + 1..];
        }
        let arg = |n: usize| -> &str {
            args.get(n)
                .unwrap_or_else(|| panic!("$__{name} needs {} argument(s)", n + 1))
        };
        let expanded = match name {
            "fromTime" => format!("toDateTime({from_s})"),
            "toTime" => format!("toDateTime({to_s})"),
            "fromTime_ms" => format!("fromUnixTimestamp64Milli({})", range.from_ms),
            "toTime_ms" => format!("fromUnixTimestamp64Milli({})", range.to_ms),
            "timeFilter" => format!(
                "{c} >= toDateTime({from_s}) AND {c} <= toDateTime({to_s})",
                c = arg(0)
            ),
            "timeFilter_ms" => format!(
                "{c} >= fromUnixTimestamp64Milli({}) AND {c} <= fromUnixTimestamp64Milli({})",
                range.from_ms,
                range.to_ms,
                c = arg(0)
            ),
            "dateFilter" => format!(
                "{c} >= {} AND {c} <= {}",
                date(range.from_ms),
                date(range.to_ms),
                c = arg(0)
            ),
            "dateTimeFilter" | "dt" => format!(
                "({d} >= {} AND {d} <= {}) AND ({t} >= toDateTime({from_s}) AND {t} <= toDateTime({to_s}))",
                date(range.from_ms),
                date(range.to_ms),
                d = arg(0),
                t = arg(1)
            ),
            "timeInterval" => format!(
                "toStartOfInterval(toDateTime({}), INTERVAL {interval_s} second)",
                arg(0)
            ),
            "timeInterval_ms" => format!(
                "toStartOfInterval(toDateTime64({}, 3), INTERVAL {} millisecond)",
                arg(0),
                range.interval_ms.max(1)
            ),
            "interval_s" => interval_s.to_string(),
            other => panic!("unknown macro $__{other}"),
        };
        out.push_str(&expanded);
    }
    out.push_str(rest);
    out
}

/// Grafana's template variables: `${name}`, `${name:format}` and `$name`.
fn expand_variables(sql: &str, vars: &[(&str, &str)]) -> String {
    let mut sql = sql.to_owned();
    for (name, value) in vars {
        for format in ["singlequote", "sqlstring"] {
            sql = sql.replace(&format!("${{{name}:{format}}}"), &format!("'{value}'"));
        }
        sql = sql.replace(&format!("${{{name}:raw}}"), value);
        sql = sql.replace(&format!("${{{name}}}"), value);
        sql = sql.replace(&format!("[[{name}]]"), value);
        // `$name` not followed by more identifier characters.
        let pattern = format!("${name}");
        let mut out = String::new();
        let mut rest = sql.as_str();
        while let Some(i) = rest.find(&pattern) {
            let after = &rest[i + pattern.len()..];
            out.push_str(&rest[..i]);
            if after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                out.push_str(&pattern);
            } else {
                out.push_str(value);
            }
            rest = after;
        }
        out.push_str(rest);
        sql = out;
    }
    sql
}

#[test]
fn macros_expand_like_the_plugin() {
    let range = TimeRange {
        from_ms: 1_723_161_256_789,
        to_ms: 1_723_161_316_000,
        interval_ms: 500,
    };
    let sql = "SELECT $__fromTime, $__toTime_ms, $__interval_s FROM t \
               WHERE $__timeFilter(window_start) AND symbol = '${symbol}' AND s = $symbol";
    assert_eq!(
        expand(sql, range, &[("symbol", "BTCUSDT")]),
        "SELECT toDateTime(1723161256), fromUnixTimestamp64Milli(1723161316000), 1 FROM t \
         WHERE window_start >= toDateTime(1723161256) AND window_start <= toDateTime(1723161316) \
         AND symbol = 'BTCUSDT' AND s = BTCUSDT"
    );
    assert_eq!(
        expand(
            "$__timeInterval(t)",
            TimeRange {
                interval_ms: 10_000,
                ..range
            },
            &[]
        ),
        "toStartOfInterval(toDateTime(t), INTERVAL 10 second)"
    );
}

// ------------------------------------------------------ against ClickHouse --

/// Real captures: one busy BTCUSDT tape, and five altcoins interleaved.
const CAPTURES: [&str; 2] = [
    "binance-usdm_btcusdt@trade_2024-08-08T235416Z_2024-08-08T235959Z.jsonl.gz",
    "binance-usdm_altcoins@aggTrade_2021-04-05_cryptofeed.jsonl.gz",
];

/// Windows pulse-core computes from `path` directly, without pulse-io.
fn core_windows(path: &Path) -> Vec<Window> {
    let file = std::fs::File::open(path).unwrap();
    let reader = BufReader::new(flate2::read::GzDecoder::new(file));
    let mut agg = Aggregator::new(AggregatorConfig::default()).unwrap();
    let mut windows = Vec::new();
    let mut drain = |agg: &mut Aggregator| {
        while let Some(event) = agg.poll() {
            if let Event::Window(w) = event {
                windows.push(w);
            }
        }
    };
    for line in reader.split(b'\n') {
        let line = line.unwrap();
        if let Ok(Frame::Trade(t)) = parse_frame(&line) {
            agg.handle_trade(t);
            drain(&mut agg);
        }
    }
    agg.flush();
    drain(&mut agg);
    windows
}

/// Runs `sql` in the test database and returns its rows.
async fn rows(db: &TestClickHouse, sql: &str) -> Result<Vec<Json>, String> {
    let mut cursor = db
        .client()
        .query(sql)
        .fetch_bytes("JSONEachRow")
        .map_err(|e| e.to_string())?;
    let bytes = cursor.collect().await.map_err(|e| e.to_string())?;
    let text = String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string())?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{e}: {l}")))
        .collect()
}

/// A number from JSONEachRow, where 64-bit integers may come quoted.
fn num(v: &Json) -> f64 {
    match v {
        Json::Number(n) => n.as_f64().unwrap(),
        Json::String(s) => s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}")),
        other => panic!("not a number: {other}"),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_runs_on_clickhouse_and_returns_rows() {
    let Some(db) = pulse_testkit::clickhouse().await else {
        return;
    };
    let Some(data) = pulse_testkit::data_dir() else {
        return;
    };
    let config = ClickHouseConfig {
        url: db.url().to_owned(),
        database: db.database().to_owned(),
        ..ClickHouseConfig::default()
    };
    pulse_io::clickhouse::create_schema(&config).await.unwrap();
    // Keep every inserted row as its own row until queried, so the test sees
    // whether the queries themselves collapse re-emitted windows.
    db.client()
        .query(&format!("SYSTEM STOP MERGES {}", config.metrics_table()))
        .execute()
        .await
        .unwrap();

    // Windows pulse computes and stores: replay → aggregator → ClickHouse sink.
    let mut expected: Vec<Window> = Vec::new();
    for capture in CAPTURES {
        let path = data.join(capture);
        let metrics = Metrics::new();
        let source = open_replay(&path, ReplayOptions::default(), metrics.clone()).unwrap();
        let sink = ClickHouseWindowSink::connect(config.clone()).await.unwrap();
        let summary = Pipeline::new(source, metrics)
            .aggregator(Aggregator::new(AggregatorConfig::default()).unwrap())
            .window_sink(Box::new(sink))
            .run(CancellationToken::new())
            .await
            .unwrap();
        let direct = core_windows(&path);
        assert_eq!(summary.windows, direct.len() as u64, "{capture}");
        expected.extend(direct);
    }

    // The newest 20 BTCUSDT windows again, twice: once as a restarted
    // consumer re-writes them (same version), once corrected (version 2).
    let btc: Vec<&Window> = expected
        .iter()
        .filter(|w| w.symbol.as_str() == "BTCUSDT")
        .collect();
    let reemitted: Vec<Window> = btc[btc.len() - 20..].iter().map(|w| (*w).clone()).collect();
    let store = WindowStore::new(config.clone()).unwrap();
    let same: Vec<WindowRow> = reemitted
        .iter()
        .map(|w| WindowRow::try_from(w).unwrap())
        .collect();
    let corrected: Vec<WindowRow> = reemitted
        .iter()
        .map(|w| {
            // As a correction's higher version; the values stay the same.
            let mut row = WindowRow::try_from(w).unwrap();
            row.version += 1;
            row
        })
        .collect();
    store.insert_windows(&same).await.unwrap();
    store.insert_windows(&corrected).await.unwrap();
    let stored = rows(&db, "SELECT count() AS n FROM pulse_metrics")
        .await
        .unwrap();
    assert_eq!(
        num(&stored[0]["n"]) as usize,
        expected.len() + 40,
        "duplicates must be physically present for this test to mean anything"
    );

    let queries = dashboard_queries(&dashboard());
    let symbols: BTreeSet<String> = expected.iter().map(|w| w.symbol.to_string()).collect();
    let mut checked = 0;
    for symbol in ["BTCUSDT", "NEOUSDT"] {
        let windows: Vec<&Window> = expected
            .iter()
            .filter(|w| w.symbol.as_str() == symbol)
            .collect();
        assert!(windows.len() > 10, "{symbol}: {} windows", windows.len());
        for interval_ms in [1_000, 10_000] {
            let range = TimeRange {
                from_ms: windows[0].start_ms,
                to_ms: windows[windows.len() - 1].end_ms,
                interval_ms,
            };
            for q in &queries {
                let sql = expand(&q.sql, range, &[("symbol", symbol)]);
                assert!(
                    !sql.contains('$'),
                    "{}: unexpanded macro or variable in\n{sql}",
                    q.origin
                );
                let result = rows(&db, &sql)
                    .await
                    .unwrap_or_else(|e| panic!("{} failed on ClickHouse: {e}\n{sql}", q.origin));
                assert!(
                    !result.is_empty(),
                    "{} returned no rows for {symbol}:\n{sql}",
                    q.origin
                );
                check_values(q, &result, &windows, &symbols, interval_ms);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, queries.len() * 4);

    // The checks have teeth: without FINAL the re-emitted windows count again.
    let volume = queries
        .iter()
        .find(|q| q.origin == "panel \"Volume and trades\"")
        .unwrap();
    let range = TimeRange {
        from_ms: btc[0].start_ms,
        to_ms: btc[btc.len() - 1].end_ms,
        interval_ms: 1000,
    };
    let naive = expand(
        &volume.sql.replace(" FINAL", ""),
        range,
        &[("symbol", "BTCUSDT")],
    );
    let naive_trades: f64 = rows(&db, &naive)
        .await
        .unwrap()
        .iter()
        .map(|r| num(&r["Trades"]))
        .sum();
    let true_trades: u64 = btc.iter().map(|w| w.trade_count).sum();
    let doubled: u64 = reemitted.iter().map(|w| 2 * w.trade_count).sum();
    assert_eq!(naive_trades as u64, true_trades + doubled);
}

/// Checks the values of the queries whose meaning the README documents.
fn check_values(
    q: &DashboardQuery,
    rows: &[Json],
    windows: &[&Window],
    symbols: &BTreeSet<String>,
    interval_ms: i64,
) {
    let last = windows[windows.len() - 1];
    match q.origin.as_str() {
        "variable \"symbol\"" => {
            let got: BTreeSet<String> = rows
                .iter()
                .map(|r| r["symbol"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(&got, symbols);
        }
        "panel \"Latest signal\"" => {
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0]["Signal"], last.signal.as_str());
        }
        "panel \"Latest window\"" => {
            assert_eq!(rows.len(), 1);
            assert!(close(num(&rows[0]["VWAP"]), last.vwap));
            assert_eq!(num(&rows[0]["Trades"]) as u64, last.trade_count);
        }
        "panel \"Volume and trades\"" => {
            let trades: f64 = rows.iter().map(|r| num(&r["Trades"])).sum();
            let volume: f64 = rows.iter().map(|r| num(&r["Volume"])).sum();
            let want_volume: f64 = windows.iter().map(|w| w.total_volume).sum();
            assert_eq!(
                trades as u64,
                windows.iter().map(|w| w.trade_count).sum::<u64>()
            );
            assert!(close(volume, want_volume), "{volume} vs {want_volume}");
            if interval_ms == 1000 {
                assert_eq!(rows.len(), windows.len(), "one point per window");
            }
        }
        "panel \"Net delta\"" => {
            let delta: f64 = rows.iter().map(|r| num(&r["Net delta"])).sum();
            let want: f64 = windows.iter().map(|w| w.net_delta).sum();
            assert!((delta - want).abs() < 1e-6, "{delta} vs {want}");
        }
        "panel \"Price and VWAP\"" if interval_ms == 1000 => {
            assert_eq!(rows.len(), windows.len());
            for (row, w) in rows.iter().zip(windows) {
                assert!(close(num(&row["VWAP"]), w.vwap), "{row} vs {}", w.vwap);
                assert!(close(num(&row["Price"]), w.close.to_f64()), "{row}");
            }
        }
        "panel \"Candlesticks\"" => {
            let high = windows
                .iter()
                .map(|w| w.high.to_f64())
                .fold(f64::MIN, f64::max);
            let low = windows
                .iter()
                .map(|w| w.low.to_f64())
                .fold(f64::MAX, f64::min);
            let got_high = rows
                .iter()
                .map(|r| num(&r["high"]))
                .fold(f64::MIN, f64::max);
            let got_low = rows.iter().map(|r| num(&r["low"])).fold(f64::MAX, f64::min);
            assert!(
                close(got_high, high) && close(got_low, low),
                "{got_high} {got_low}"
            );
            assert!(close(num(&rows[0]["open"]), windows[0].open.to_f64()));
            assert!(close(
                num(&rows[rows.len() - 1]["close"]),
                last.close.to_f64()
            ));
            let volume: f64 = rows.iter().map(|r| num(&r["volume"])).sum();
            let want: f64 = windows.iter().map(|w| w.total_volume).sum();
            assert!(close(volume, want), "{volume} vs {want}");
            if interval_ms == 1000 {
                assert_eq!(rows.len(), windows.len(), "one candle per window");
                for (row, w) in rows.iter().zip(windows) {
                    for (field, want) in [
                        ("open", w.open),
                        ("high", w.high),
                        ("low", w.low),
                        ("close", w.close),
                    ] {
                        assert!(close(num(&row[field]), want.to_f64()), "{field}: {row}");
                    }
                }
            }
        }
        OVERVIEW => {
            // The range is this symbol's: its row holds all of its windows once.
            let row = rows
                .iter()
                .find(|r| r["symbol"] == last.symbol.as_str())
                .unwrap_or_else(|| panic!("{} missing: {rows:?}", last.symbol));
            assert_eq!(row["latest_signal"], last.signal.as_str());
            let (open, close_) = (windows[0].open.to_f64(), last.close.to_f64());
            assert!(
                close(num(&row["change_pct"]), (close_ - open) / open * 100.0),
                "{row}"
            );
            let want: f64 = windows.iter().map(|w| w.total_volume).sum();
            assert!(close(num(&row["volume"]), want), "{row} vs {want}");
            assert_eq!(
                num(&row["trades"]) as u64,
                windows.iter().map(|w| w.trade_count).sum::<u64>()
            );
            let listed: BTreeSet<&str> =
                rows.iter().map(|r| r["symbol"].as_str().unwrap()).collect();
            assert_eq!(listed.len(), rows.len(), "a symbol listed twice");
            assert!(listed.iter().all(|s| symbols.contains(*s)));
        }
        "panel \"Buy pressure\"" => {
            for row in rows {
                let pct = num(&row["Buy pressure"]);
                assert!((0.0..=100.0).contains(&pct), "{row}");
            }
        }
        "panel \"Recent windows\"" => {
            assert_eq!(rows.len(), windows.len().min(200));
            let starts: BTreeSet<String> =
                rows.iter().map(|r| r["window_start"].to_string()).collect();
            assert_eq!(starts.len(), rows.len(), "a window shown twice");
            assert_eq!(rows[0]["signal"], last.signal.as_str());
        }
        _ => {}
    }
}
