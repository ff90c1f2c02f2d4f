//! Driver tests with in-memory sources and sinks; no sockets, no sleeping
//! (retry backoff runs on tokio's paused clock).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pulse_core::{AggregatorConfig, Side, TradeKind};

use super::*;

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

/// Yields one batch per call, then ends (or fails, if `fail_at_end`).
struct BatchSource {
    batches: VecDeque<Vec<Trade>>,
    fail_at_end: bool,
}

#[async_trait]
impl TradeSource for BatchSource {
    async fn next_trades(&mut self, out: &mut Vec<Trade>) -> Result<bool, SourceError> {
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
        false
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
    let (p, _, metrics) = pipeline(batches, false, 1, false);
    let err = p.run(CancellationToken::new()).await.unwrap_err();
    assert!(
        matches!(
            err,
            PipelineError::Sink {
                sink: "recording",
                pending: 1,
                ..
            }
        ),
        "{err}"
    );
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
