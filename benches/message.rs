//! The Kafka message codec, `pulse produce`'s and `pulse consume`'s per-trade
//! work, on the trades of the real recorded USD-M BTCUSDT frames.
//!
//! Run: `cargo bench --bench message`. Needs `../shared/data` (or `PULSE_DATA_DIR`).
//!
//! Next to `encode` and `decode` the group runs four baselines over the same
//! messages: `serde_json_borrowed` (serde_json into a struct of `&str` and
//! integers, with no decimal, symbol or timestamp checks), `byte_scan`
//! (`memchr` counting every `"`), `byte_find` (`memchr` stopping at every
//! `"`) and `byte_loop` (one byte at a time, counting the separators
//! outside strings).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pulse_core::{Frame, Trade, parse_frame};
use pulse_io::kafka::{UtcOffset, decode_trade, encode_trade};
use serde::Deserialize;

mod support;
use support::{byte_find, byte_loop, byte_scan, frames};

fn trades() -> Vec<Trade> {
    frames()
        .iter()
        .filter_map(|f| match parse_frame(f) {
            Ok(Frame::Trade(t)) => Some(t),
            _ => None,
        })
        .collect()
}

/// The serde baseline: every field of the message, strings borrowed.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Borrowed<'a> {
    symbol: &'a str,
    price: &'a str,
    quantity: &'a str,
    timestamp: &'a str,
    side: &'a str,
    trade_time_ms: i64,
    event_time_ms: i64,
    agg_id: u64,
    first_trade_id: u64,
    last_trade_id: u64,
    kind: &'a str,
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

    group.bench_function("serde_json_borrowed", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for m in &messages {
                n = n.wrapping_add(serde_json::from_slice::<Borrowed<'_>>(m).unwrap().agg_id);
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
