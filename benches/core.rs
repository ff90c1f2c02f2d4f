//! pulse-core throughput on real recorded Binance USD-M BTCUSDT frames.
//!
//! Run: `cargo bench --bench core`. Needs `../shared/data` (or `PULSE_DATA_DIR`).
//!
//! The `usdm_btcusdt` group runs `parse` next to four baselines over the same
//! frames, so their ratios come from one run on one machine:
//! - `serde_json_borrowed`: serde_json into a struct of `&str`, `u64` and
//!   `bool`, with no decimal or symbol work, the least any serde parser does;
//! - `byte_scan`: `memchr` over every byte of every frame, counting the `"`:
//!   the SIMD bound, which nothing that reads every byte beats;
//! - `byte_find`: `memchr` stopping at every `"` and reading its position,
//!   the least a parser must learn: where each string starts and ends;
//! - `byte_loop`: one byte at a time, tracking strings and counting the
//!   separators outside them: the least a tokenizer does per byte.
//!
//! The `dump_csv` group does the same for Binance dump CSV rows (the same
//! trades, rendered as `data.binance.vision` aggTrades rows), with the `csv`
//! crate's serde reader as the baseline.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pulse_core::{
    Aggregator, AggregatorConfig, Event, Frame, Symbol, parse_csv_row, parse_frame, render,
};
use serde::Deserialize;

mod support;
use support::{byte_find, byte_loop, byte_scan, frames};

/// The serde baseline: a USD-M `@trade` frame with its strings borrowed.
#[derive(Deserialize)]
struct Combined<'a> {
    #[serde(borrow)]
    #[allow(dead_code)]
    stream: &'a str,
    #[serde(borrow)]
    data: RawTrade<'a>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct RawTrade<'a> {
    e: &'a str,
    #[serde(rename = "E")]
    event_time: u64,
    #[serde(rename = "T")]
    trade_time: u64,
    s: &'a str,
    t: u64,
    p: &'a str,
    q: &'a str,
    #[serde(rename = "X")]
    x: &'a str,
    m: bool,
}

fn bench(c: &mut Criterion) {
    let frames = frames();
    let mut group = c.benchmark_group("usdm_btcusdt");
    group.throughput(Throughput::Elements(frames.len() as u64));

    group.bench_function("parse", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for f in &frames {
                if let Ok(Frame::Trade(t)) = parse_frame(f) {
                    n = n.wrapping_add(t.id);
                }
            }
            n
        })
    });

    group.bench_function("serde_json_borrowed", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for f in &frames {
                if let Ok(c) = serde_json::from_slice::<Combined<'_>>(f) {
                    n = n.wrapping_add(c.data.t);
                }
            }
            n
        })
    });

    group.bench_function("byte_scan", |b| b.iter(|| byte_scan(&frames, b'"')));
    group.bench_function("byte_find", |b| b.iter(|| byte_find(&frames, b'"')));

    group.bench_function("byte_loop", |b| b.iter(|| byte_loop(&frames)));

    group.bench_function("parse_aggregate", |b| {
        b.iter(|| {
            let mut agg = Aggregator::new(AggregatorConfig::default()).unwrap();
            let mut windows = 0u64;
            for f in &frames {
                if let Ok(Frame::Trade(t)) = parse_frame(f) {
                    agg.handle_trade(t);
                    while let Some(e) = agg.poll() {
                        windows += matches!(e, Event::Window(_)) as u64;
                    }
                }
            }
            agg.flush();
            while let Some(e) = agg.poll() {
                windows += matches!(e, Event::Window(_)) as u64;
            }
            windows
        })
    });
    group.finish();
}

/// The CSV baseline: the `csv` crate's serde reader into borrowed fields,
/// with no decimal work.
#[derive(Deserialize)]
#[allow(dead_code)]
struct DumpRow<'a> {
    id: u64,
    price: &'a str,
    quantity: &'a str,
    first: u64,
    last: u64,
    time: i64,
    buyer_is_maker: bool,
}

/// The captures' trades as Binance dump CSV rows (futures layout).
fn csv_rows(frames: &[Vec<u8>]) -> Vec<String> {
    frames
        .iter()
        .filter_map(|f| match parse_frame(f) {
            Ok(Frame::Trade(t)) => Some(render::dump_csv_row(&t)),
            _ => None,
        })
        .collect()
}

fn bench_csv(c: &mut Criterion) {
    let rows = csv_rows(&frames());
    let symbol = Symbol::new("BTCUSDT").unwrap();
    let mut group = c.benchmark_group("dump_csv");
    group.throughput(Throughput::Elements(rows.len() as u64));
    group.bench_function("parse", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for r in &rows {
                if let Ok(Some(t)) = parse_csv_row(r, symbol) {
                    n = n.wrapping_add(t.id);
                }
            }
            n
        })
    });
    group.bench_function("csv_serde_borrowed", |b| {
        let text = rows.join("\n");
        b.iter(|| {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(text.as_bytes());
            let mut record = csv::StringRecord::new();
            let mut n = 0u64;
            while reader.read_record(&mut record).unwrap() {
                let row: DumpRow<'_> = record.deserialize(None).unwrap();
                n = n.wrapping_add(row.id);
            }
            n
        })
    });
    group.bench_function("byte_scan", |b| b.iter(|| byte_scan(&rows, b',')));
    group.bench_function("byte_find", |b| b.iter(|| byte_find(&rows, b',')));
    group.bench_function("byte_loop", |b| b.iter(|| byte_loop(&rows)));
    group.finish();
}

criterion_group!(benches, bench, bench_csv);
criterion_main!(benches);
