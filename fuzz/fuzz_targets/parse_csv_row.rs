//! Any data-dump CSV line: a trade is sane and reads back from its own row.
//!
//! `cargo +nightly fuzz run parse_csv_row`; the properties are in `pulse_core::fuzz_check::csv_row`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pulse_core::fuzz_check::csv_row(data));
