//! `cargo +nightly fuzz run parse_frame` (or `cargo fuzz run parse_frame`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulse_core::{Frame, parse_frame};

fuzz_target!(|data: &[u8]| {
    // Must never panic; a parsed trade must have positive price and quantity.
    if let Ok(Frame::Trade(t)) = parse_frame(data) {
        assert!(t.price.raw() > 0 && t.quantity.raw() > 0);
    }
});
