//! `cargo fuzz run parse_csv_row`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulse_core::{Symbol, parse_csv_row};

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = std::str::from_utf8(data) {
        let _ = parse_csv_row(line, Symbol::new("BTCUSDT").unwrap());
    }
});
