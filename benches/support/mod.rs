//! What the benches share: the real recorded frames, and the byte-level
//! baselines every group runs next to pulse's own code.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;

/// The three USD-M BTCUSDT `@trade` captures in `../shared/data`.
pub const FILES: [&str; 3] = [
    "binance-usdm_btcusdt@trade_2023-04-04T235820Z_2023-04-05T000654Z.jsonl.gz",
    "binance-usdm_btcusdt@trade_2024-07-18T235702Z_2024-07-19T000502Z.jsonl.gz",
    "binance-usdm_btcusdt@trade_2024-08-08T235416Z_2024-08-08T235959Z.jsonl.gz",
];

/// Every non-empty line of [`FILES`], in order.
pub fn frames() -> Vec<Vec<u8>> {
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

/// The byte-scan baseline: `memchr` through every byte, counting the `"`
/// (for CSV rows, the `,`) sixteen or thirty-two bytes at a time without
/// stopping at any. Nothing that reads every byte can be faster.
pub fn byte_scan<T: AsRef<[u8]>>(items: &[T], needle: u8) -> usize {
    items
        .iter()
        .map(|i| memchr::memchr_iter(needle, i.as_ref()).count())
        .sum()
}

/// The byte-find baseline: `memchr` finds every `"` (for CSV rows, every
/// `,`) and hands back its position, the least a parser must learn of a
/// frame: where each string or field starts and ends. Unlike
/// [`byte_scan`], whose `count()` memchr answers with vector compares and
/// never stops at a match, this stops at each one, like any real reader.
pub fn byte_find<T: AsRef<[u8]>>(items: &[T], needle: u8) -> usize {
    items
        .iter()
        .map(|i| memchr::memchr_iter(needle, i.as_ref()).fold(0, usize::wrapping_add))
        .fold(0, usize::wrapping_add)
}

/// The byte-loop baseline: one byte at a time, the least a tokenizer does
/// per byte: keep track of being inside a string and count the `,` and `:`
/// outside strings. No SIMD; `byte_scan` is the SIMD bound.
pub fn byte_loop<T: AsRef<[u8]>>(items: &[T]) -> usize {
    let mut separators = 0;
    for item in items {
        let mut in_string = false;
        for &b in item.as_ref() {
            match b {
                b'"' => in_string = !in_string,
                b',' | b':' if !in_string => separators += 1,
                _ => {}
            }
        }
    }
    separators
}
