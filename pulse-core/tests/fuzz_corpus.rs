//! The committed fuzz corpora (`fuzz/corpus/<target>/`) replayed on stable
//! Rust: every file through the same check its fuzz target runs, so
//! `cargo test` keeps what the fuzzer found, and the seeds, passing.

use std::path::PathBuf;

use pulse_core::fuzz_check::{csv_row, frame, frame_paths, replay_corpus, rest_reply};

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

#[test]
fn parse_frame_corpus() {
    assert!(replay_corpus(&corpus("parse_frame"), frame) >= 50);
}

#[test]
fn ws_paths_corpus() {
    assert!(replay_corpus(&corpus("ws_paths"), frame_paths) >= 50);
}

#[test]
fn parse_csv_row_corpus() {
    assert!(replay_corpus(&corpus("parse_csv_row"), csv_row) >= 20);
}

#[test]
fn rest_reply_corpus() {
    assert!(replay_corpus(&corpus("rest_reply"), rest_reply) >= 20);
}

#[test]
#[should_panic(expected = "is missing")]
fn a_missing_corpus_fails() {
    replay_corpus(&corpus("no_such_target"), frame);
}

#[test]
#[should_panic(expected = "is empty")]
fn an_empty_corpus_fails() {
    let dir = std::env::temp_dir().join(format!("pulse-empty-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    replay_corpus(&dir, frame);
}

#[test]
#[should_panic(expected = "fails: boom")]
fn a_failing_file_is_named() {
    replay_corpus(&corpus("parse_frame"), |_| panic!("boom"));
}
