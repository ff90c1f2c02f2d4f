//! Aggregate a recorded Binance capture with pulse-core alone: no async
//! runtime, no network, no clock.
//!
//! ```sh
//! cargo run --example aggregate_file                   # a capture from ../shared/data
//! cargo run --example aggregate_file -- capture.jsonl  # or any JSONL file, plain or .gz
//! ```
//!
//! Prints one line per closed 1-second window, then a summary. Every value is
//! computed from exact fixed-point sums, so the output is the same on every
//! run and machine. The README shows the expected output, and
//! `tests/examples.rs` checks it (hence the `pub(crate)` items).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::Context;
use pulse_core::{
    Aggregator, AggregatorConfig, AggregatorStats, Event, Frame, Window, parse_frame,
};

/// The busiest recorded capture: USD-M futures BTCUSDT `@trade`, 2024-08-08.
pub(crate) const DEFAULT_CAPTURE: &str =
    "binance-usdm_btcusdt@trade_2024-08-08T235416Z_2024-08-08T235959Z.jsonl.gz";

fn main() -> anyhow::Result<()> {
    let path = match std::env::args_os().nth(1) {
        Some(path) => PathBuf::from(path),
        None => data_dir().join(DEFAULT_CAPTURE),
    };
    let report = aggregate(&path)?;
    println!("{HEADER}");
    for w in &report.windows {
        println!("{}", line(w));
    }
    println!("{}", report.summary());
    Ok(())
}

/// What one pass over a capture produced.
#[derive(Debug)]
pub(crate) struct Report {
    frames: u64,
    rejected: u64,
    pub(crate) windows: Vec<Window>,
    stats: AggregatorStats,
}

impl Report {
    pub(crate) fn summary(&self) -> String {
        format!(
            "{} frames ({} rejected), {} trades, {} windows, {} duplicates, {} late, {} gaps",
            self.frames,
            self.rejected,
            self.stats.trades,
            self.windows.len(),
            self.stats.duplicates,
            self.stats.late_trades,
            self.stats.gaps
        )
    }
}

/// Reads a JSONL capture (plain or .gz) and aggregates it into windows.
pub(crate) fn aggregate(path: &Path) -> anyhow::Result<Report> {
    let file = File::open(path).with_context(|| {
        format!(
            "opening {} (pass a capture path, or set PULSE_DATA_DIR)",
            path.display()
        )
    })?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };

    let mut agg = Aggregator::new(AggregatorConfig::default())?;
    let (mut frames, mut rejected) = (0u64, 0u64);
    let mut windows = Vec::new();
    for line in BufReader::new(reader).split(b'\n') {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.is_empty() {
            continue;
        }
        frames += 1;
        match parse_frame(&line) {
            Ok(Frame::Trade(trade)) => {
                agg.handle_trade(trade);
            }
            // Subscription acks and other non-trade frames.
            Ok(_) => {}
            Err(_) => rejected += 1,
        }
        // Drain after every call, as the engine's contract asks.
        drain(&mut agg, &mut windows);
    }
    // End of input: the data is the clock, so close every open window.
    agg.flush();
    drain(&mut agg, &mut windows);
    Ok(Report {
        frames,
        rejected,
        windows,
        stats: agg.stats(),
    })
}

fn drain(agg: &mut Aggregator, windows: &mut Vec<Window>) {
    while let Some(event) = agg.poll() {
        match event {
            Event::Window(w) => windows.push(w),
            Event::Late(late) if late.corrected => {
                eprintln!("late trade {}: its window is re-emitted", late.trade.id);
            }
            Event::Late(late) => eprintln!(
                "late trade {} for a closed window, in no row",
                late.trade.id
            ),
            Event::Gap { symbol, missing } => {
                eprintln!("{symbol}: ids {}..={} missing", missing.first, missing.last);
            }
            Event::Rejected(r) => eprintln!(
                "{}: window {} has no row: {}",
                r.symbol, r.start_ms, r.error
            ),
            Event::TimeOutlier(o) => eprintln!(
                "{}: trade {} dated {} is far ahead and the next trade is not: a wrong time, in no row",
                o.trade.symbol, o.trade.id, o.trade.trade_time_ms
            ),
        }
    }
}

pub(crate) const HEADER: &str =
    "utc      symbol             vwap      delta   buy%      volume trades  signal";

/// One window as a line under [`HEADER`].
pub(crate) fn line(w: &Window) -> String {
    format!(
        "{} {:<10} {:>12.*} {:>+10.3} {:>6.1} {:>11.3} {:>6}  {}",
        utc_hms(w.start_ms),
        w.symbol,
        vwap_decimals(w.vwap),
        w.vwap,
        w.net_delta,
        w.buy_pressure_pct,
        w.total_volume,
        w.trade_count,
        w.signal
    )
}

/// Decimals that show about seven significant digits of a price, so a coin
/// at 0.69 keeps its ticks as BTC at 61800 does.
fn vwap_decimals(price: f64) -> usize {
    let magnitude = price.abs().max(1e-8).log10().floor() as i32;
    (6 - magnitude).clamp(2, 8) as usize
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
