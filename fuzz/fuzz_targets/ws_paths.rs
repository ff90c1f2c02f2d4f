//! WebSocket frames: fast path = general scanner = serde_json, the combined-stream
//! wrapper changes nothing, and a trade written in Binance's layout reads back.
//!
//! `cargo +nightly fuzz run ws_paths`; the properties are in `pulse_core::fuzz_check::frame_paths`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pulse_core::fuzz_check::frame_paths(data));
