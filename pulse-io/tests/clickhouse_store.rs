//! The ClickHouse store and window sink against a real server (18.16 in
//! tests): the DDL, exact round trips, FINAL keeping the fullest row,
//! positions, one insert per interval, and rows kept while the server is down.

mod consume_support;

use std::time::Duration;

use consume_support::{ALTCOINS, capture, expected_rows};
use pulse_core::{Aggregator, AggregatorConfig, Event, Symbol, SymbolCheckpoint, Window};
use pulse_io::clickhouse::{
    ClickHouseConfig, ClickHouseWindowSink, MetricsStore, PartitionPosition, WindowRow, row_version,
};
use pulse_io::{Metrics, RetryPolicy, WindowSink};

fn config(url: &str, database: &str) -> ClickHouseConfig {
    ClickHouseConfig {
        url: url.to_owned(),
        database: database.to_owned(),
        ..ClickHouseConfig::default()
    }
}

/// Windows of the altcoins capture, as pulse-core emits them.
fn windows() -> Option<Vec<Window>> {
    let trades = capture(ALTCOINS)?;
    let mut agg = Aggregator::new(AggregatorConfig::default()).unwrap();
    let mut out = Vec::new();
    for t in trades {
        agg.handle_trade(t);
    }
    agg.flush();
    while let Some(event) = agg.poll() {
        if let Event::Window(w) = event {
            out.push(w);
        }
    }
    Some(out)
}

#[tokio::test]
async fn schema_is_idempotent_and_rows_round_trip_exactly() {
    let Some(db) = pulse_testkit::clickhouse().await else {
        return;
    };
    let Some(trades) = capture(ALTCOINS) else {
        return;
    };
    let store = MetricsStore::new(config(db.url(), db.database())).unwrap();
    store.create_schema().await.unwrap();
    store.create_schema().await.unwrap();
    let expected = expected_rows(&trades);
    store.insert_windows(&expected).await.unwrap();
    let stored = store.select_final().await.unwrap();
    consume_support::assert_same_rows(&stored, &expected);

    // The original design's columns, with their original types.
    let columns: Vec<(String, String)> = db
        .client()
        .query("SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'pulse_metrics'")
        .fetch_all()
        .await
        .unwrap();
    for (name, ty) in [
        ("window_start", "DateTime"),
        ("window_end", "DateTime"),
        ("vwap", "Float64"),
        ("net_delta", "Float64"),
        ("buy_pressure_pct", "Float64"),
        ("total_volume", "Float64"),
        ("trade_count", "Int64"),
        ("avg_price_1_sec", "Float64"),
        ("signal", "String"),
        ("symbol", "String"),
        ("version", "UInt64"),
    ] {
        assert!(
            columns.contains(&(name.to_owned(), ty.to_owned())),
            "{name} {ty} in {columns:?}"
        );
    }
}

#[tokio::test]
async fn final_keeps_one_row_per_window_and_the_fullest_one() {
    let Some(db) = pulse_testkit::clickhouse().await else {
        return;
    };
    let Some(windows) = windows() else { return };
    let store = MetricsStore::new(config(db.url(), db.database())).unwrap();
    store.create_schema().await.unwrap();
    let rows: Vec<WindowRow> = windows.iter().map(WindowRow::from).collect();
    let big = windows
        .iter()
        .position(|w| w.trade_count >= 3)
        .expect("a window with 3 trades");

    // A partial row (as flushed at shutdown) written after the complete one
    // must not replace it; a re-emitted identical batch changes nothing.
    let mut partial = rows[big].clone();
    partial.trade_count -= 1;
    partial.version = row_version(&Window {
        trade_count: windows[big].trade_count - 1,
        ..windows[big].clone()
    });
    store.insert_windows(&rows).await.unwrap();
    store.insert_windows(&[partial]).await.unwrap();
    store.insert_windows(&rows).await.unwrap();

    let mut expected = rows.clone();
    expected.sort_by(|a, b| (&a.symbol, a.window_start).cmp(&(&b.symbol, b.window_start)));
    consume_support::assert_same_rows(&store.select_final().await.unwrap(), &expected);
    assert_eq!(
        row_version(&windows[big]),
        (1 << 32) | windows[big].trade_count
    );
}

#[tokio::test]
async fn positions_round_trip_and_the_latest_version_wins() {
    let Some(db) = pulse_testkit::clickhouse().await else {
        return;
    };
    let store = MetricsStore::new(config(db.url(), db.database())).unwrap();
    store.create_schema().await.unwrap();
    let btc = Symbol::new("BTCUSDT").unwrap();
    let position = |version: u64, next: i64| PartitionPosition {
        partition: 2,
        resume_offset: next - 10,
        next_offset: next,
        checkpoints: [(
            btc,
            SymbolCheckpoint {
                watermark_ms: 1_723_161_500_000,
                max_time_ms: 1_723_161_502_123,
            },
        )]
        .into(),
        version,
    };
    assert!(store.load_positions("trades_btc").await.unwrap().is_empty());
    store
        .save_positions("trades_btc", &[position(1, 100)])
        .await
        .unwrap();
    store
        .save_positions("trades_btc", &[position(2, 250)])
        .await
        .unwrap();
    store
        .save_positions("other_topic", &[position(9, 999)])
        .await
        .unwrap();
    let loaded = store.load_positions("trades_btc").await.unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[&2], position(2, 250));

    // Another table in the same database keeps its own positions.
    let other = MetricsStore::new(ClickHouseConfig {
        table: "other_metrics".into(),
        ..config(db.url(), db.database())
    })
    .unwrap();
    other.create_schema().await.unwrap();
    assert!(other.load_positions("trades_btc").await.unwrap().is_empty());
}

#[tokio::test]
async fn sink_inserts_at_most_once_per_interval() {
    let Some(db) = pulse_testkit::clickhouse().await else {
        return;
    };
    let Some(windows) = windows() else { return };
    let mut sink = ClickHouseWindowSink::connect(config(db.url(), db.database()), Metrics::new())
        .await
        .unwrap()
        .insert_interval(Duration::from_secs(3600));
    let store = MetricsStore::new(config(db.url(), db.database())).unwrap();
    let (first, rest) = windows.split_at(10);
    sink.write_windows(first).await.unwrap();
    for chunk in rest.chunks(7) {
        sink.write_windows(chunk).await.unwrap();
    }
    // The first batch went out at once; the rest waits for the interval.
    assert_eq!(store.select_final().await.unwrap().len(), 10);
    assert_eq!(sink.pending(), rest.len());
    sink.flush().await.unwrap();
    assert_eq!(sink.pending(), 0);
    assert_eq!(store.select_final().await.unwrap().len(), windows.len());
}

#[tokio::test]
async fn sink_keeps_its_rows_while_the_server_is_down() {
    let Some(mut server) = pulse_testkit::ClickHouseProcess::start().await else {
        return;
    };
    let Some(windows) = windows() else { return };
    let metrics = Metrics::new();
    let cfg = ClickHouseConfig {
        request_timeout: Duration::from_secs(5),
        ..config(&server.url(), "pulse")
    };
    let mut sink = ClickHouseWindowSink::connect(cfg.clone(), metrics.clone())
        .await
        .unwrap()
        .insert_interval(Duration::ZERO)
        .retry(
            RetryPolicy {
                initial: Duration::from_millis(50),
                max: Duration::from_millis(500),
            },
            100,
        );
    let (before, during) = windows.split_at(20);
    sink.write_windows(before).await.unwrap();
    assert_eq!(sink.pending(), 0);

    server.kill();
    // Accepted and kept: the caller need not hold them.
    sink.write_windows(during).await.unwrap();
    assert_eq!(sink.pending(), during.len());
    assert!(
        metrics
            .encode()
            .contains("pulse_sink_errors_total{sink=\"clickhouse\"} 1")
    );

    server.restart().await;
    sink.flush().await.unwrap();
    let stored = MetricsStore::new(cfg)
        .unwrap()
        .select_final()
        .await
        .unwrap();
    assert_eq!(stored.len(), windows.len(), "nothing lost");
}
