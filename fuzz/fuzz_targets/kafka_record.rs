//! Kafka record values as the consumer decodes them (trade or progress marker),
//! with exact round trips, and Binance frames as the producer would publish them.
//!
//! `cargo +nightly fuzz run kafka_record`; the properties are in `pulse_io::kafka::fuzz_check::record_value`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pulse_io::kafka::fuzz_check::record_value(data));
