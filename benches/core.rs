//! pulse-core throughput on real recorded Binance USD-M BTCUSDT frames.
//!
//! Run: `cargo bench --bench core`. Needs `../shared/data` (or `PULSE_DATA_DIR`).
//!
//! The `usdm_btcusdt` group runs `parse` next to two baselines over the same
//! frames, so their ratios come from one run on one machine:
//! - `serde_json_borrowed`: serde_json into a struct of `&str`, `u64` and
//!   `bool`, with no decimal or symbol work, the least any serde parser does;
//! - `byte_scan`: `memchr` over every byte of every frame, counting the `"`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pulse_core::{Aggregator, AggregatorConfig, Event, Frame, parse_frame};
use serde::Deserialize;

const FILES: [&str; 3] = [
    "binance-usdm_btcusdt@trade_2023-04-04T235820Z_2023-04-05T000654Z.jsonl.gz",
    "binance-usdm_btcusdt@trade_2024-07-18T235702Z_2024-07-19T000502Z.jsonl.gz",
    "binance-usdm_btcusdt@trade_2024-08-08T235416Z_2024-08-08T235959Z.jsonl.gz",
];

fn frames() -> Vec<Vec<u8>> {
    let dir = std::env::var_os("PULSE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    let mut out = Vec::new();
    for name in FILES {
        let file = std::fs::File::open(dir.join(name))
            .unwrap_or_else(|e| panic!("{}: {e} (set PULSE_DATA_DIR)", dir.join(name).display()));
        let reader = BufReader::new(flate2::read::GzDecoder::new(file));
        out.extend(
            reader
                .split(b'\n')
                .map(|l| l.unwrap())
                .filter(|l| !l.is_empty()),
        );
    }
    out
}

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

    group.bench_function("byte_scan", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for f in &frames {
                n += memchr::memchr_iter(b'"', f).count();
            }
            n
        })
    });

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

criterion_group!(benches, bench);
criterion_main!(benches);
