//! The ClickHouse store and window sink against a real server (18.16 in
//! tests): the DDL, exact round trips, FINAL keeping the fullest row,
//! positions, and through the pipeline: one insert per interval, nothing
//! lost while the server is down, each failed insert counted once.

mod consume_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use consume_support::{ALTCOINS, capture, expected_rows};
use pulse_core::{Aggregator, AggregatorConfig, Event, Symbol, SymbolCheckpoint, Trade, Window};
use pulse_io::clickhouse::{
    ClickHouseConfig, ClickHouseWindowSink, PartitionPosition, WindowRow, WindowStore, row_version,
};
use pulse_io::{
    CancellationToken, Metrics, Pipeline, RetryPolicy, SinkError, SourceError, TradeSource,
    WindowSink,
};

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
    let store = WindowStore::new(db.config()).unwrap();
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
    let store = WindowStore::new(db.config()).unwrap();
    store.create_schema().await.unwrap();
    let rows: Vec<WindowRow> = windows
        .iter()
        .map(|w| WindowRow::try_from(w).unwrap())
        .collect();
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
    assert_eq!(row_version(&windows[big]), windows[big].trade_count);
}

#[tokio::test]
async fn positions_round_trip_and_the_latest_version_wins() {
    let Some(db) = pulse_testkit::clickhouse().await else {
        return;
    };
    let store = WindowStore::new(db.config()).unwrap();
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
        last_record_hash: 0x9e37_79b9_7f4a_7c15 ^ version,
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
    let other = WindowStore::new(ClickHouseConfig {
        table: "other_metrics".into(),
        ..db.config()
    })
    .unwrap();
    other.create_schema().await.unwrap();
    assert!(other.load_positions("trades_btc").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_version_tie_loads_one_whole_row_the_furthest() {
    let Some(db) = pulse_testkit::clickhouse().await else {
        return;
    };
    let store = WindowStore::new(db.config()).unwrap();
    store.create_schema().await.unwrap();
    let checkpoint = |symbol: &str, watermark_ms| {
        (
            Symbol::new(symbol).unwrap(),
            SymbolCheckpoint {
                watermark_ms,
                max_time_ms: watermark_ms + 1,
            },
        )
    };
    // Two consumers started as the same instance both saved version 7.
    // Column by column the maxima would mix them: resume 90 with next 200.
    let behind = PartitionPosition {
        partition: 0,
        resume_offset: 90,
        next_offset: 100,
        checkpoints: [checkpoint("BTCUSDT", 5_000)].into(),
        version: 7,
        last_record_hash: 11,
    };
    let ahead = PartitionPosition {
        resume_offset: 40,
        next_offset: 200,
        checkpoints: [checkpoint("ETHUSDT", 9_000)].into(),
        last_record_hash: 22,
        ..behind.clone()
    };
    for (topic, order) in [
        ("first_behind", [&behind, &ahead]),
        ("first_ahead", [&ahead, &behind]),
    ] {
        for p in order {
            store
                .save_positions(topic, std::slice::from_ref(p))
                .await
                .unwrap();
        }
        let loaded = store.load_positions(topic).await.unwrap();
        assert_eq!(loaded.len(), 1, "{topic}");
        assert_eq!(loaded[&0], ahead, "{topic}: one whole row, the furthest");
    }
}

#[tokio::test]
async fn inserts_pin_synchronous_settings_where_the_server_knows_them() {
    let Some(db) = pulse_testkit::clickhouse().await else {
        return;
    };
    let store = WindowStore::new(db.config()).unwrap();
    store.create_schema().await.unwrap();
    let known: u64 = db
        .client()
        .query("SELECT count() FROM system.settings WHERE name = 'async_insert'")
        .fetch_one()
        .await
        .unwrap();
    let pinned = store.insert_settings().await.unwrap();
    if known > 0 {
        assert_eq!(pinned, &[("async_insert", "0")]);
    } else {
        // 18.16: the setting would be refused as unknown; inserts are
        // synchronous there anyway.
        assert!(pinned.is_empty(), "{pinned:?}");
    }
    // Either way both inserts the crash argument orders go through.
    let Some(windows) = windows() else { return };
    let rows: Vec<WindowRow> = windows[..3]
        .iter()
        .map(|w| WindowRow::try_from(w).unwrap())
        .collect();
    store.insert_windows(&rows).await.unwrap();
    let position = PartitionPosition {
        partition: 1,
        next_offset: 3,
        resume_offset: 3,
        version: 1,
        ..PartitionPosition::default()
    };
    store
        .save_positions("t", std::slice::from_ref(&position))
        .await
        .unwrap();
    assert_eq!(store.select_final().await.unwrap().len(), 3);
    assert_eq!(store.load_positions("t").await.unwrap()[&1], position);
}

#[tokio::test]
async fn windows_outside_datetime_are_rejected_and_counted_not_clamped() {
    let Some(db) = pulse_testkit::clickhouse().await else {
        return;
    };
    let Some(windows) = windows() else { return };
    let store = WindowStore::new(db.config()).unwrap();
    store.create_schema().await.unwrap();
    let metrics = Metrics::new();
    let mut sink = ClickHouseWindowSink::new(store.clone()).metrics(metrics.clone());
    // Before 1970 and after 2106 used to clamp onto the first and last second.
    let at = |start_ms: i64| Window {
        start_ms,
        end_ms: start_ms + 1000,
        ..windows[0].clone()
    };
    let mut batch = windows.clone();
    batch.extend([
        at(-5_000),
        at(-2_000),
        at(i64::from(u32::MAX) * 1000),
        at(1 << 45),
    ]);
    sink.write_windows(&batch).await.unwrap();
    let mut expected: Vec<WindowRow> = windows
        .iter()
        .map(|w| WindowRow::try_from(w).unwrap())
        .collect();
    expected.sort_by(|a, b| (&a.symbol, a.window_start).cmp(&(&b.symbol, b.window_start)));
    consume_support::assert_same_rows(&store.select_final().await.unwrap(), &expected);
    let text = metrics.encode();
    let line = format!(
        "pulse_windows_rejected_total{{symbol=\"{}\",reason=\"time_range\"}} 4",
        windows[0].symbol
    );
    assert!(text.contains(&line), "{line} in\n{text}");
}

/// Replays the altcoins capture (574 trades) in batches of 10; before batch
/// `i` it runs `before(i)`.
struct CaptureSource<F> {
    batches: std::vec::IntoIter<Vec<Trade>>,
    next: usize,
    before: F,
}

impl<F> CaptureSource<F> {
    fn new(before: F) -> Option<Self> {
        let trades = capture(ALTCOINS)?;
        let batches: Vec<Vec<Trade>> = trades.chunks(10).map(<[Trade]>::to_vec).collect();
        Some(CaptureSource {
            batches: batches.into_iter(),
            next: 0,
            before,
        })
    }
}

#[async_trait]
impl<F, Fut> TradeSource for CaptureSource<F>
where
    F: FnMut(usize) -> Fut + Send,
    Fut: std::future::Future<Output = ()> + Send,
{
    async fn next_trades(&mut self, out: &mut Vec<Trade>) -> Result<bool, SourceError> {
        (self.before)(self.next).await;
        self.next += 1;
        match self.batches.next() {
            Some(batch) => {
                out.extend(batch);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// Counts what it is given; never fails.
struct Counting(Arc<Mutex<usize>>);

#[async_trait]
impl WindowSink for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }

    async fn write_windows(&mut self, windows: &[Window]) -> Result<(), SinkError> {
        *self.0.lock().unwrap() += windows.len();
        Ok(())
    }
}

fn metric(metrics: &Metrics, line: &str) -> u64 {
    let text = metrics.encode();
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line} in\n{text}"))
}

#[tokio::test]
async fn pipeline_inserts_at_most_once_per_interval() {
    let Some(db) = pulse_testkit::clickhouse().await else {
        return;
    };
    let Some(expected) = windows() else { return };
    let Some(source) = CaptureSource::new(|_| async {}) else {
        return;
    };
    let sink = ClickHouseWindowSink::connect(db.config())
        .await
        .unwrap()
        .insert_interval(Some(Duration::from_secs(3600)));
    let summary = Pipeline::new(Box::new(source), Metrics::new())
        .aggregator(Aggregator::new(AggregatorConfig::default()).unwrap())
        .window_sink(Box::new(sink))
        .run(CancellationToken::new())
        .await
        .unwrap();
    // The first windows go out at once; the rest waits for the interval,
    // which only the end of the replay cuts short.
    assert_eq!(summary.writes.get("clickhouse"), Some(&2));
    let store = WindowStore::new(db.config()).unwrap();
    assert_eq!(store.select_final().await.unwrap().len(), expected.len());
}

#[tokio::test]
async fn clickhouse_outage_loses_nothing_and_counts_each_failure_once() {
    let Some(server) = pulse_testkit::ClickHouseProcess::start().await else {
        return;
    };
    let Some(expected) = windows() else { return };
    let cfg = ClickHouseConfig {
        url: server.url(),
        database: "pulse".to_owned(),
        request_timeout: Duration::from_secs(5),
        ..ClickHouseConfig::default()
    };
    let server = Arc::new(tokio::sync::Mutex::new(server));
    // Down from batch 10 to batch 40: windows close meanwhile.
    let control = server.clone();
    let Some(source) = CaptureSource::new(move |batch| {
        let server = control.clone();
        async move {
            match batch {
                10 => server.lock().await.kill(),
                40 => server.lock().await.restart().await,
                _ => {}
            }
        }
    }) else {
        return;
    };
    let metrics = Metrics::new();
    let counted = Arc::new(Mutex::new(0));
    let sink = ClickHouseWindowSink::connect(cfg.clone())
        .await
        .unwrap()
        .insert_interval(Some(Duration::ZERO));
    let summary = Pipeline::new(Box::new(source), metrics.clone())
        .aggregator(Aggregator::new(AggregatorConfig::default()).unwrap())
        .retry(RetryPolicy {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(500),
        })
        .shutdown_retries(100)
        .window_sink(Box::new(sink))
        .window_sink(Box::new(Counting(counted.clone())))
        .run(CancellationToken::new())
        .await
        .unwrap();

    let stored = WindowStore::new(cfg).unwrap().select_final().await.unwrap();
    assert_eq!(stored.len(), expected.len(), "nothing lost");
    assert_eq!(summary.windows, expected.len() as u64);
    assert_eq!(
        *counted.lock().unwrap(),
        expected.len(),
        "the other sink went on"
    );
    // Each failed insert is one error and one retry, never two errors.
    let errors = metric(&metrics, "pulse_sink_errors_total{sink=\"clickhouse\"}");
    let retries = metric(&metrics, "pulse_sink_retries_total{sink=\"clickhouse\"}");
    assert!(errors >= 1, "the outage was seen");
    assert_eq!(errors, retries);
    assert_eq!(
        metric(&metrics, "pulse_sink_errors_total{sink=\"counting\"}"),
        0
    );
}

/// A batch over more months than a server takes partitions in one insert
/// (`max_partitions_per_insert_block`, 100 by default where the server has
/// it; code 252 every time) is split by month, and every row is stored.
#[tokio::test]
async fn a_batch_over_eleven_years_is_stored_whole() {
    let Some(db) = pulse_testkit::clickhouse().await else {
        return;
    };
    let Some(windows) = windows() else { return };
    let store = WindowStore::new(db.config()).unwrap();
    store.create_schema().await.unwrap();
    // The recorded windows, each moved 31 days later than the one before:
    // one window per month, from 2021 into the 2030s.
    let month = 31 * 86_400;
    let rows: Vec<WindowRow> = windows
        .iter()
        .take(135)
        .enumerate()
        .map(|(i, w)| {
            let mut row = WindowRow::try_from(w).unwrap();
            row.window_start += i as u32 * month;
            row.window_end += i as u32 * month;
            row
        })
        .collect();
    assert_eq!(rows.len(), 135, "the capture has enough windows");
    store.insert_windows(&rows).await.unwrap();
    let mut expected = rows.clone();
    expected.sort_by(|a, b| (&a.symbol, a.window_start).cmp(&(&b.symbol, b.window_start)));
    let partitions: u64 = db
        .client()
        .query("SELECT uniqExact(toYYYYMM(window_start)) FROM pulse_metrics")
        .fetch_one()
        .await
        .unwrap();
    assert!(partitions > 100, "{partitions} months");
    consume_support::assert_same_rows(&store.select_final().await.unwrap(), &expected);
}
