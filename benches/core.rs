//! pulse-core throughput on real recorded Binance USD-M BTCUSDT frames.
//!
//! Run: `cargo bench --bench core`. Needs `../shared/data` (or `PULSE_DATA_DIR`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pulse_core::{Aggregator, AggregatorConfig, Event, Frame, parse_frame};

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
