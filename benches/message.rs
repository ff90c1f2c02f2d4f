//! The Kafka message codec, `pulse produce`'s and `pulse consume`'s per-trade
//! work, on the real recorded USD-M BTCUSDT frames.
//!
//! Run: `cargo bench --bench message`. Needs `../shared/data` (or `PULSE_DATA_DIR`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pulse_core::{Frame, Trade, parse_frame};
use pulse_io::kafka::{UtcOffset, decode_trade, encode_trade};

const FILE: &str = "binance-usdm_btcusdt@trade_2024-08-08T235416Z_2024-08-08T235959Z.jsonl.gz";

fn trades() -> Vec<Trade> {
    let dir = std::env::var_os("PULSE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    let path = dir.join(FILE);
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set PULSE_DATA_DIR)", path.display()));
    BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .filter_map(|line| match parse_frame(line.unwrap().as_bytes()) {
            Ok(Frame::Trade(t)) => Some(t),
            _ => None,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let trades = trades();
    let messages: Vec<Vec<u8>> = trades
        .iter()
        .map(|t| {
            let mut out = Vec::new();
            encode_trade(t, UtcOffset::IST, &mut out);
            out
        })
        .collect();
    let mut group = c.benchmark_group("kafka_message");
    group.throughput(Throughput::Elements(trades.len() as u64));

    group.bench_function("encode", |b| {
        let mut out = Vec::with_capacity(512);
        b.iter(|| {
            let mut bytes = 0usize;
            for t in &trades {
                out.clear();
                encode_trade(t, UtcOffset::IST, &mut out);
                bytes += out.len();
            }
            bytes
        })
    });

    group.bench_function("decode", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for m in &messages {
                n = n.wrapping_add(decode_trade(m).unwrap().id);
            }
            n
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
