//! Any WebSocket text frame through `parse_frame`: a trade it returns is sane.
//!
//! `cargo +nightly fuzz run parse_frame`; the properties are in `pulse_core::fuzz_check::frame`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pulse_core::fuzz_check::frame(data));
