//! `pulse consume`'s CPU work per Kafka record, without a broker or
//! ClickHouse: decode the message, aggregate with the restart bookkeeping
//! (held windows, duplicate ids), make the window rows, and a position every
//! 1,000 records. On the trades of the real recorded USD-M BTCUSDT frames,
//! next to the message decoder alone and the byte baselines of the same
//! messages.
//!
//! Run: `cargo bench --bench consumer`. Needs `../shared/data` (or `PULSE_DATA_DIR`).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pulse_core::{Frame, parse_frame};
use pulse_io::consumer::{ConsumerConfig, RecordPath};
use pulse_io::kafka::{UtcOffset, decode_trade, encode_trade};

mod support;
use support::{byte_find, byte_loop, byte_scan, frames};

fn messages() -> Vec<Vec<u8>> {
    frames()
        .iter()
        .filter_map(|f| match parse_frame(f) {
            Ok(Frame::Trade(t)) => {
                let mut out = Vec::new();
                encode_trade(&t, UtcOffset::IST, &mut out);
                Some(out)
            }
            _ => None,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let messages = messages();
    let path = RecordPath::new(ConsumerConfig::default(), messages.clone());
    let mut group = c.benchmark_group("consumer");
    group.throughput(Throughput::Elements(messages.len() as u64));
    group.bench_function("record_path", |b| b.iter(|| path.run(1_000)));
    group.bench_function("decode_only", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for m in &messages {
                n = n.wrapping_add(decode_trade(m).unwrap().id);
            }
            n
        })
    });
    group.bench_function("byte_scan", |b| b.iter(|| byte_scan(&messages, b'"')));
    group.bench_function("byte_find", |b| b.iter(|| byte_find(&messages, b'"')));
    group.bench_function("byte_loop", |b| b.iter(|| byte_loop(&messages)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
