//! The committed `kafka_record` fuzz corpus replayed on stable Rust: every
//! file through the check the fuzz target runs (see
//! `pulse-core/tests/fuzz_corpus.rs` for the parsers' corpora).

use std::path::PathBuf;

use pulse_core::fuzz_check::replay_corpus;
use pulse_io::kafka::fuzz_check::record_value;

#[test]
fn kafka_record_corpus() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/kafka_record");
    assert!(replay_corpus(&dir, record_value) >= 30);
}
