//! REST aggTrades and exchangeInfo replies: nothing dropped, read trades round-trip.
//!
//! `cargo +nightly fuzz run rest_reply`; the properties are in `pulse_core::fuzz_check::rest_reply`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pulse_core::fuzz_check::rest_reply(data));
