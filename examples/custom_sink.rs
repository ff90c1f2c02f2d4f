//! Your own destination for windows: implement [`pulse_io::WindowSink`] and
//! hand it to a [`pulse_io::Pipeline`].
//!
//! ```sh
//! cargo run --example custom_sink                   # replays a capture from ../shared/data
//! cargo run --example custom_sink -- capture.jsonl.gz
//! ```
//!
//! The sink below prints a line only when a symbol's signal changes, and
//! keeps a per-symbol tally it prints at the end. A real sink would write to
//! a database, a message bus or a socket; the contract is the same:
//! - `write_windows` gets batches of closed windows, in order per symbol;
//! - return a retryable [`SinkError::Unavailable`] when the store is down:
//!   the pipeline keeps the batch and calls again with backoff;
//! - `flush` runs once at shutdown, after the last windows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pulse_core::{Aggregator, AggregatorConfig, Signal, Symbol, Window};
use pulse_io::replay::{ReplayOptions, open_replay};
use pulse_io::{
    CancellationToken, Metrics, Pipeline, PipelineSummary, SinkError, WindowSink, async_trait,
};

/// Prints signal changes and counts windows per signal, per symbol.
#[derive(Debug, Default)]
struct SignalChanges {
    last: BTreeMap<Symbol, Signal>,
    tally: BTreeMap<Symbol, BTreeMap<&'static str, u64>>,
}

#[async_trait]
impl WindowSink for SignalChanges {
    fn name(&self) -> &'static str {
        "signal_changes"
    }

    async fn write_windows(&mut self, windows: &[Window]) -> Result<(), SinkError> {
        for w in windows {
            *self
                .tally
                .entry(w.symbol)
                .or_default()
                .entry(w.signal.as_str())
                .or_default() += 1;
            if self.last.insert(w.symbol, w.signal) != Some(w.signal) {
                println!(
                    "{} {:<10} {:<13} vwap {:.4}",
                    utc_hms(w.start_ms),
                    w.symbol,
                    w.signal,
                    w.vwap
                );
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        for (symbol, counts) in &self.tally {
            let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
            println!("{symbol}: {}", counts.join(", "));
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir().join(DEFAULT_CAPTURE));
    let summary = run(&path).await?;
    println!(
        "{} trades, {} windows from {}",
        summary.trades,
        summary.windows,
        path.display()
    );
    Ok(())
}

/// Five altcoins interleaved, so the tally has several symbols.
pub(crate) const DEFAULT_CAPTURE: &str =
    "binance-usdm_altcoins@aggTrade_2021-04-05_cryptofeed.jsonl.gz";

/// Replays `path` through the pipeline into [`SignalChanges`].
pub(crate) async fn run(path: &Path) -> anyhow::Result<PipelineSummary> {
    let metrics = Metrics::new();
    // A replay is not live: its clock is the data, and it ends at end of file.
    let source = open_replay(path, ReplayOptions::default(), metrics.clone())?;
    let summary = Pipeline::new(source, metrics)
        .aggregator(Aggregator::new(AggregatorConfig::default())?)
        .window_sink(Box::new(SignalChanges::default()))
        .run(CancellationToken::new())
        .await?;
    Ok(summary)
}

/// `HH:MM:SS` (UTC) of a time in ms since the epoch.
fn utc_hms(ms: i64) -> String {
    let s = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `$PULSE_DATA_DIR`, or `../shared/data` next to the workspace.
fn data_dir() -> PathBuf {
    std::env::var_os("PULSE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"))
}
