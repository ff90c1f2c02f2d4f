//! Driver tests with in-memory sources and sinks; no sockets, no sleeping
//! (retry backoff runs on tokio's paused clock).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pulse_core::{AggregatorConfig, Side, TradeKind, Window};

use std::time::Duration;

use super::*;
use crate::sink::CheckpointStore;
use crate::source::Source;

fn trade(symbol: &str, id: u64, time_ms: i64) -> Trade {
    Trade {
        symbol: Symbol::new(symbol).unwrap(),
        id,
        kind: TradeKind::AggTrade,
        price: "100.5".parse().unwrap(),
        quantity: "2".parse().unwrap(),
        side: if id % 2 == 0 { Side::Buy } else { Side::Sell },
        trade_time_ms: time_ms,
        event_time_ms: time_ms,
        first_trade_id: id,
        last_trade_id: id,
    }
}

/// Yields one batch per call, then ends (or fails, if `fail_at_end`). With
/// `live_pause` it is a live source, waiting that long before each call.
struct BatchSource {
    batches: VecDeque<Vec<Trade>>,
    fail_at_end: bool,
    live_pause: Option<Duration>,
}

#[async_trait]
impl TradeSource for BatchSource {
    async fn next_trades(&mut self, out: &mut Vec<Trade>) -> Result<bool, SourceError> {
        if let Some(pause) = self.live_pause {
            tokio::time::sleep(pause).await;
        }
        match self.batches.pop_front() {
            Some(batch) => {
                out.extend(batch);
                Ok(true)
            }
            None if self.fail_at_end => Err(SourceError::Other("connection lost".into())),
            None => Ok(false),
        }
    }

    fn is_live(&self) -> bool {
        self.live_pause.is_some()
    }
}

/// Records windows; fails the first `failures` writes with `error`.
struct RecordingSink {
    stored: Arc<Mutex<Vec<Window>>>,
    failures: u32,
    retryable: bool,
}

#[async_trait]
impl WindowSink for RecordingSink {
    fn name(&self) -> &'static str {
        "recording"
    }

    async fn write_windows(&mut self, windows: &[Window]) -> Result<(), SinkError> {
        if self.failures > 0 {
            self.failures -= 1;
            let reason = "down".to_string();
            return Err(if self.retryable {
                SinkError::Unavailable {
                    sink: "recording",
                    reason,
                }
            } else {
                SinkError::Rejected {
                    sink: "recording",
                    reason,
                }
            });
        }
        self.stored.lock().unwrap().extend_from_slice(windows);
        Ok(())
    }
}

fn pipeline(
    batches: Vec<Vec<Trade>>,
    fail_at_end: bool,
    failures: u32,
    retryable: bool,
) -> (Pipeline, Arc<Mutex<Vec<Window>>>, Metrics) {
    let metrics = Metrics::new();
    let stored = Arc::new(Mutex::new(Vec::new()));
    let source = BatchSource {
        batches: batches.into(),
        fail_at_end,
        live_pause: None,
    };
    let sink = RecordingSink {
        stored: stored.clone(),
        failures,
        retryable,
    };
    let p = Pipeline::new(Box::new(source), metrics.clone())
        .aggregator(Aggregator::new(AggregatorConfig::default()).unwrap())
        .window_sink(Box::new(sink));
    (p, stored, metrics)
}

fn metric(metrics: &Metrics, line_start: &str) -> String {
    let text = metrics.encode();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn replay_emits_every_window_and_records_metrics() {
    let batches = vec![
        vec![trade("BTCUSDT", 1, 1_000), trade("BTCUSDT", 2, 1_500)],
        // id 3 missing (gap), id 2 again (duplicate).
        vec![trade("BTCUSDT", 4, 2_100), trade("BTCUSDT", 2, 2_200)],
        vec![trade("ETHUSDT", 10, 5_000), trade("BTCUSDT", 5, 6_000)],
    ];
    let (p, stored, metrics) = pipeline(batches, false, 0, true);
    let summary = p.run(CancellationToken::new()).await.unwrap();

    let starts: Vec<(String, i64)> = stored
        .lock()
        .unwrap()
        .iter()
        .map(|w| (w.symbol.to_string(), w.start_ms))
        .collect();
    assert_eq!(
        starts,
        [
            ("BTCUSDT".into(), 1_000),
            ("BTCUSDT".into(), 2_000),
            ("BTCUSDT".into(), 6_000),
            ("ETHUSDT".into(), 5_000),
        ]
    );
    assert!(summary.source_ended);
    assert_eq!(
        (
            summary.trades,
            summary.windows,
            summary.duplicates,
            summary.gaps
        ),
        (6, 4, 1, 1)
    );
    assert_eq!(
        metric(&metrics, "pulse_trades_received_total{symbol=\"BTCUSDT\"}"),
        "5"
    );
    assert_eq!(
        metric(&metrics, "pulse_windows_emitted_total{symbol=\"BTCUSDT\"}"),
        "3"
    );
    assert_eq!(
        metric(&metrics, "pulse_duplicate_trades_total{symbol=\"BTCUSDT\"}"),
        "1"
    );
    assert_eq!(
        metric(&metrics, "pulse_stream_gaps_total{symbol=\"BTCUSDT\"}"),
        "1"
    );
    // Id 3 never came: BTC's watermark trails by the lateness.
    assert_eq!(
        metric(&metrics, "pulse_watermark_lag_seconds{symbol=\"BTCUSDT\"}"),
        "2.0"
    );
}

#[tokio::test]
async fn a_refuted_time_outlier_is_counted_once_and_not_as_accepted() {
    let day = 86_400_000;
    let batches = vec![
        vec![trade("BTCUSDT", 1, 1_000), trade("BTCUSDT", 2, 1_200)],
        // Id 3 dated a day ahead; id 4 says it was wrong.
        vec![trade("BTCUSDT", 3, 1_300 + day), trade("BTCUSDT", 4, 1_400)],
        vec![trade("BTCUSDT", 5, 2_500)],
    ];
    let (p, stored, metrics) = pipeline(batches, false, 0, true);
    let summary = p.run(CancellationToken::new()).await.unwrap();

    let counts: Vec<(i64, u64)> = stored
        .lock()
        .unwrap()
        .iter()
        .map(|w| (w.start_ms, w.trade_count))
        .collect();
    assert_eq!(counts, [(1_000, 3), (2_000, 1)], "id 3 in no window");
    assert_eq!(
        (summary.trades, summary.accepted, summary.time_outliers),
        (5, 4, 1)
    );
    assert_eq!(
        metric(
            &metrics,
            "pulse_trade_time_outliers_total{symbol=\"BTCUSDT\"}"
        ),
        "1"
    );
}

#[tokio::test(start_paused = true)]
async fn retryable_sink_errors_are_retried_and_counted() {
    let batches = vec![vec![trade("BTCUSDT", 1, 1_000), trade("BTCUSDT", 2, 9_000)]];
    let (p, stored, metrics) = pipeline(batches, false, 2, true);
    let summary = p.run(CancellationToken::new()).await.unwrap();
    assert_eq!(summary.windows, 2);
    assert_eq!(stored.lock().unwrap().len(), 2, "nothing dropped");
    assert_eq!(
        metric(&metrics, "pulse_sink_errors_total{sink=\"recording\"}"),
        "2"
    );
    assert_eq!(
        metric(&metrics, "pulse_sink_retries_total{sink=\"recording\"}"),
        "2"
    );
}

#[tokio::test]
async fn rejected_write_stops_the_pipeline_with_the_batch_size() {
    let batches = vec![vec![trade("BTCUSDT", 1, 1_000), trade("BTCUSDT", 2, 9_000)]];
    let (p, stored, metrics) = pipeline(batches, false, 1, false);
    let err = p.run(CancellationToken::new()).await.unwrap_err();
    // The first window was refused; the last one, closed by the final
    // flush, is not offered to a sink that gave up: both count as lost.
    assert!(
        matches!(
            err,
            PipelineError::Sink {
                sink: "recording",
                pending: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(stored.lock().unwrap().is_empty());
    assert_eq!(
        metric(&metrics, "pulse_sink_errors_total{sink=\"recording\"}"),
        "1"
    );
}

#[tokio::test]
async fn source_failure_still_flushes_open_windows() {
    let batches = vec![vec![trade("BTCUSDT", 1, 1_000), trade("BTCUSDT", 2, 1_200)]];
    let (p, stored, _) = pipeline(batches, true, 0, true);
    let err = p.run(CancellationToken::new()).await.unwrap_err();
    assert!(matches!(err, PipelineError::Source(_)), "{err}");
    assert_eq!(
        stored.lock().unwrap().len(),
        1,
        "the open window was flushed"
    );
}

#[tokio::test]
async fn a_failed_run_still_reports_how_far_it_got() {
    let batches = vec![vec![trade("BTCUSDT", 1, 1_000), trade("BTCUSDT", 2, 2_200)]];
    let (p, stored, _) = pipeline(batches, true, 0, true);
    let (summary, result) = p.run_and_summarise(CancellationToken::new()).await;
    assert!(
        matches!(result, Err(PipelineError::Source(_))),
        "{result:?}"
    );
    assert_eq!((summary.trades, summary.windows), (2, 2));
    assert!(!summary.source_ended);
    assert_eq!(stored.lock().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn shutdown_gives_up_on_a_sink_that_stays_down() {
    let batches = vec![vec![trade("BTCUSDT", 1, 1_000)]];
    let (p, _, metrics) = pipeline(batches, false, u32::MAX, true);
    // The window only closes at end of input, in the final flush, which
    // always runs in shutdown mode.
    let p = p.shutdown_retries(3);
    let err = p.run(CancellationToken::new()).await.unwrap_err();
    assert!(
        matches!(err, PipelineError::Sink { pending: 1, .. }),
        "{err}"
    );
    // One first try plus three retries after shutdown.
    assert_eq!(
        metric(&metrics, "pulse_sink_errors_total{sink=\"recording\"}"),
        "4"
    );
}

/// Trades through an aggregator; the checkpoint is how many inputs were
/// handled, and `end` is the flush.
struct CountingStage {
    inner: TradeStage,
    handled: usize,
    saved: usize,
}

impl Stage for CountingStage {
    type Input = Trade;
    type Checkpoint = usize;

    fn handle(&mut self, input: &Trade, now_ms: Option<i64>) -> Outcome {
        self.handled += 1;
        self.inner.handle(input, now_ms)
    }
    fn poll(&mut self) -> Option<pulse_core::Event> {
        self.inner.poll()
    }
    fn flush(&mut self) {
        self.inner.flush();
    }
    fn checkpoint(&self) -> Option<usize> {
        (self.handled > self.saved).then_some(self.handled)
    }
    fn committed(&mut self, checkpoint: &usize) {
        self.saved = *checkpoint;
    }
}

/// Records each checkpoint with how many windows were stored before it.
struct Commits {
    stored: Arc<Mutex<Vec<Window>>>,
    saved: Arc<Mutex<Vec<(usize, usize)>>>,
}

#[async_trait]
impl CheckpointStore<usize> for Commits {
    fn name(&self) -> &'static str {
        "commits"
    }
    async fn save(&mut self, checkpoint: &usize) -> Result<(), SinkError> {
        let stored = self.stored.lock().unwrap().len();
        self.saved.lock().unwrap().push((*checkpoint, stored));
        Ok(())
    }
}

/// A live source: one batch each second of tokio time. Cancel-safe: the
/// next batch's time survives a cancelled call.
struct Paced {
    batches: VecDeque<Vec<Trade>>,
    next_at: Option<tokio::time::Instant>,
}

#[async_trait]
impl Source<Trade> for Paced {
    async fn next_batch(&mut self, out: &mut Vec<Trade>) -> Result<bool, SourceError> {
        let second = Duration::from_secs(1);
        let at = *self
            .next_at
            .get_or_insert_with(|| tokio::time::Instant::now() + second);
        tokio::time::sleep_until(at).await;
        self.next_at = Some(at + second);
        match self.batches.pop_front() {
            Some(batch) => {
                out.extend(batch);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn checkpoints_follow_the_windows_they_cover() {
    // Batch i comes at i s, ids in order; the first window waits for the
    // lateness, so batch 4 closes three windows, 5 and 6 one each, and the
    // final flush the last.
    let batches: Vec<Vec<Trade>> = (0..6)
        .map(|i| vec![trade("BTCUSDT", i + 1, 1_000 + 1_000 * i as i64)])
        .collect();
    let stored = Arc::new(Mutex::new(Vec::new()));
    let saved = Arc::new(Mutex::new(Vec::new()));
    let stage = CountingStage {
        inner: TradeStage::new(Aggregator::new(AggregatorConfig::default()).unwrap()),
        handled: 0,
        saved: 0,
    };
    let sink = RecordingSink {
        stored: stored.clone(),
        failures: 0,
        retryable: true,
    };
    let commits = Commits {
        stored: stored.clone(),
        saved: saved.clone(),
    };
    let summary = Pipeline::with_stage(
        Box::new(Paced {
            batches: batches.into(),
            next_at: None,
        }),
        stage,
        Metrics::new(),
    )
    .window_sink(Box::new(sink))
    .checkpoints(Box::new(commits), Duration::from_millis(2_400))
    .run(CancellationToken::new())
    .await
    .unwrap();
    assert_eq!(summary.windows, 6);
    let saved = saved.lock().unwrap().clone();
    // At 2.4 s after input 2 (nothing closed yet), at 4.8 s after input 4
    // (its three windows stored first); at the end, the count from before
    // the flush, saved after all six windows.
    assert_eq!(saved, [(2, 0), (4, 3), (6, 6)]);
    assert_eq!(summary.checkpoints, 3);
}

#[tokio::test(start_paused = true)]
async fn a_failing_sink_keeps_its_windows_while_the_others_go_on() {
    let batches: Vec<Vec<Trade>> = (0..8)
        .map(|i| vec![trade("BTCUSDT", i + 1, 1_000 + 1_000 * i as i64)])
        .collect();
    let healthy = Arc::new(Mutex::new(Vec::new()));
    let failing = Arc::new(Mutex::new(Vec::new()));
    let metrics = Metrics::new();
    let summary = Pipeline::new(
        Box::new(BatchSource {
            batches: batches.into(),
            fail_at_end: false,
            live_pause: None,
        }),
        metrics.clone(),
    )
    .aggregator(Aggregator::new(AggregatorConfig::default()).unwrap())
    .window_sink(Box::new(RecordingSink {
        stored: failing.clone(),
        failures: 3,
        retryable: true,
    }))
    .window_sink(Box::new(RecordingSink {
        stored: healthy.clone(),
        failures: 0,
        retryable: true,
    }))
    .run(CancellationToken::new())
    .await
    .unwrap();
    assert_eq!(summary.windows, 8);
    assert_eq!(healthy.lock().unwrap().len(), 8);
    let failing = failing.lock().unwrap();
    let starts: Vec<i64> = failing.iter().map(|w| w.start_ms).collect();
    assert_eq!(
        starts,
        (1..=8).map(|i| i * 1_000).collect::<Vec<_>>(),
        "in order, once each"
    );
}

/// Runs `batches` as a live source pausing `pause` before each; the
/// windows' starts, in the order stored, and the metrics.
async fn run_live(batches: Vec<Vec<Trade>>, pause: Duration) -> (Vec<i64>, Metrics) {
    let source = BatchSource {
        batches: batches.into(),
        fail_at_end: false,
        live_pause: Some(pause),
    };
    let metrics = Metrics::new();
    let stored = Arc::new(Mutex::new(Vec::new()));
    let sink = RecordingSink {
        stored: stored.clone(),
        failures: 0,
        retryable: true,
    };
    let p = Pipeline::new(Box::new(source), metrics.clone())
        .aggregator(Aggregator::new(AggregatorConfig::default()).unwrap())
        .window_sink(Box::new(sink));
    p.run(CancellationToken::new()).await.unwrap();
    let windows = stored.lock().unwrap().iter().map(|w| w.start_ms).collect();
    (windows, metrics)
}

/// Trade times from 2019, as from a replay server: the latencies come
/// from the monotonic clock and Binance's times, never from comparing the
/// two, so they are the pipeline's own delays and not seven years.
#[tokio::test(start_paused = true)]
async fn latencies_ignore_how_far_the_wall_clock_is_from_trade_times() {
    let t0 = 1_546_300_800_000; // 2019-01-01
    let batches = vec![
        vec![trade("BTCUSDT", 1, t0 + 100)],
        vec![trade("BTCUSDT", 2, t0 + 1_100)],
    ];
    // Each trade is followed by 2 s of silence.
    let (windows, metrics) = run_live(batches, Duration::from_secs(2)).await;
    assert_eq!(windows, [t0, t0 + 1_000]);
    // Both windows close as idle, the idle margin (150 ms) after their end
    // as their trade's arrival places it; the sink stores them at once.
    let emit = "pulse_window_emit_latency_seconds";
    assert_eq!(metric(&metrics, &format!("{emit}_count")), "2");
    assert_eq!(metric(&metrics, &format!("{emit}_sum")), "0.3");
    assert_eq!(
        metric(&metrics, &format!("{emit}_bucket{{le=\"0.128\"}}")),
        "0"
    );
    assert_eq!(
        metric(&metrics, &format!("{emit}_bucket{{le=\"0.256\"}}")),
        "2"
    );
    let store = "pulse_window_store_latency_seconds";
    let sink = "sink=\"recording\"";
    assert_eq!(metric(&metrics, &format!("{store}_sum{{{sink}}}")), "0.3");
    assert_eq!(metric(&metrics, &format!("{store}_count{{{sink}}}")), "2");
}

/// A first trade dated years behind gets its row, but its window, placed
/// before the run began, adds nothing to the emit latencies.
#[tokio::test(start_paused = true)]
async fn a_window_years_behind_is_no_latency() {
    let t0 = 1_764_000_000_000;
    let years = 94_608_000_000;
    let batches = vec![
        vec![trade("BTCUSDT", 1, t0 - years)],
        vec![trade("BTCUSDT", 2, t0 + 100)],
        vec![trade("BTCUSDT", 3, t0 + 1_100)],
    ];
    let (windows, metrics) = run_live(batches, Duration::from_millis(300)).await;
    assert_eq!(windows, [t0 - years, t0, t0 + 1_000]);
    let emit = "pulse_window_emit_latency_seconds";
    assert_eq!(metric(&metrics, &format!("{emit}_count")), "2");
    let sum: f64 = metric(&metrics, &format!("{emit}_sum")).parse().unwrap();
    assert!(sum < 1.0, "{sum}");
}

/// A trade sink that takes `working` batches, then is down for good;
/// counts what it was asked to write.
#[derive(Default)]
struct DownTradeSink {
    working: u32,
    trade_writes: Arc<Mutex<u32>>,
    marker_writes: Arc<Mutex<u32>>,
}

#[async_trait]
impl TradeSink for DownTradeSink {
    fn name(&self) -> &'static str {
        "down"
    }

    async fn write_trades(&mut self, _: &[Trade]) -> Result<(), SinkError> {
        if self.working > 0 {
            self.working -= 1;
            return Ok(());
        }
        *self.trade_writes.lock().unwrap() += 1;
        Err(SinkError::Unavailable {
            sink: "down",
            reason: "no answer".into(),
        })
    }

    async fn write_watermarks(&mut self, _: &BTreeMap<Symbol, i64>) -> Result<(), SinkError> {
        *self.marker_writes.lock().unwrap() += 1;
        Err(SinkError::Unavailable {
            sink: "down",
            reason: "no answer".into(),
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_sink_that_gave_up_at_shutdown_is_not_retried_again_and_its_count_is_reported() {
    let batches = vec![
        vec![trade("BTCUSDT", 1, 1_000)],
        vec![trade("BTCUSDT", 2, 1_500), trade("BTCUSDT", 3, 2_500)],
    ];
    let (p, _, metrics) = pipeline(batches, false, 0, true);
    let sink = DownTradeSink {
        working: 1,
        ..DownTradeSink::default()
    };
    let (trade_writes, marker_writes) = (sink.trade_writes.clone(), sink.marker_writes.clone());
    let p = p
        .trade_sink(Box::new(sink))
        .progress_markers(Duration::from_millis(200))
        .shutdown_retries(2);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(120)).await;
        stop.cancel();
    });
    let err = p.run(shutdown).await.unwrap_err();
    // The second batch never got through: its two trades are the ones lost.
    assert!(
        matches!(
            err,
            PipelineError::Sink {
                sink: "down",
                pending: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("sink down failed with 2 items not confirmed as stored"),
        "{err}"
    );
    // Two retries after shutdown, then no second round for the markers,
    // which the first batch would have called for.
    let errors = metric(&metrics, "pulse_sink_errors_total{sink=\"down\"}");
    assert_eq!(
        errors.parse::<u32>().unwrap(),
        *trade_writes.lock().unwrap()
    );
    assert_eq!(*marker_writes.lock().unwrap(), 0);
}

/// A replay's last trade, held because it came long after the one before,
/// is vouched for by the end marker, which the end confirms.
#[test]
fn the_end_marker_covers_a_last_trade_held_ahead() {
    let aggregator = Aggregator::new(AggregatorConfig::default()).unwrap();
    let mut stage = TradeStage::watermarks_only(aggregator);
    let t0 = 1_723_161_000_000;
    stage.handle(&trade("BTCUSDT", 1, t0 + 100), None);
    stage.handle(&trade("BTCUSDT", 2, t0 + 100_100), None);
    let end = stage.watermarks(None, true);
    let btc = Symbol::new("BTCUSDT").unwrap();
    assert_eq!(end.get(&btc), Some(&(t0 + 101_000)));
    // Not at the end: only what the clock vouches for.
    assert!(stage.watermarks(None, false)[&btc] < t0 + 100_000);
}

#[test]
fn markers_vouch_for_followed_symbols_that_have_not_traded_unless_held() {
    let sym = |s: &str| Symbol::new(s).unwrap();
    let mut watermarks: BTreeMap<Symbol, i64> =
        [(sym("BTCUSDT"), 5_000), (sym("ETHUSDT"), 4_000)].into();
    let followed = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]
        .map(sym)
        .to_vec();
    vouch_for_silent(&mut watermarks, followed.clone(), &[sym("XRPUSDT")]);
    let expected: BTreeMap<Symbol, i64> = [
        (sym("BTCUSDT"), 5_000),
        (sym("ETHUSDT"), 4_000),
        (sym("SOLUSDT"), 4_000),
    ]
    .into();
    assert_eq!(
        watermarks, expected,
        "the oldest, and none for a held symbol"
    );
    // Before any trade there is no time to vouch for.
    let mut none = BTreeMap::new();
    vouch_for_silent(&mut none, followed, &[]);
    assert!(none.is_empty());
}

/// A trade sink that keeps every marker it is given.
#[derive(Default)]
struct MarkerSink {
    markers: Arc<Mutex<Vec<BTreeMap<Symbol, i64>>>>,
}

#[async_trait]
impl TradeSink for MarkerSink {
    fn name(&self) -> &'static str {
        "markers"
    }

    async fn write_trades(&mut self, _: &[Trade]) -> Result<(), SinkError> {
        Ok(())
    }

    async fn write_watermarks(&mut self, marks: &BTreeMap<Symbol, i64>) -> Result<(), SinkError> {
        self.markers.lock().unwrap().push(marks.clone());
        Ok(())
    }
}

/// The last marker of a producer whose source failed: a recording cut
/// short has still ended (its last windows are vouched for, as `pulse run`
/// flushes them), a live source may go on after a restart.
#[tokio::test(start_paused = true)]
async fn a_recording_that_fails_part_way_still_ends_its_windows_in_the_last_marker() {
    let btc = Symbol::new("BTCUSDT").unwrap();
    for live in [false, true] {
        let source = BatchSource {
            batches: vec![vec![trade("BTCUSDT", 1, 1_000), trade("BTCUSDT", 2, 1_200)]].into(),
            fail_at_end: true,
            live_pause: live.then_some(Duration::from_millis(1)),
        };
        let sink = MarkerSink::default();
        let markers = sink.markers.clone();
        let aggregator = Aggregator::new(AggregatorConfig::default()).unwrap();
        let err = Pipeline::new(Box::new(source), Metrics::new())
            .watermarks(aggregator)
            .trade_sink(Box::new(sink))
            .progress_markers(Duration::from_millis(200))
            .run(CancellationToken::new())
            .await
            .unwrap_err();
        assert!(matches!(err, PipelineError::Source(_)), "{err}");
        let last = markers.lock().unwrap().last().cloned().unwrap_or_default();
        let vouched = last.get(&btc).copied().unwrap_or(i64::MIN);
        assert_eq!(vouched >= 2_000, !live, "live {live}: {last:?}");
    }
}
