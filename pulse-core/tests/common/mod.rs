//! Shared helpers for pulse-core's integration tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;

/// The recorded Binance data: `$PULSE_DATA_DIR` or `../shared/data`.
/// Skips (returns None, with a printed reason) when absent; fails under CI=true.
pub fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("PULSE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    if dir.is_dir() {
        return Some(dir);
    }
    // As pulse_testkit::is_ci, which pulse-core cannot depend on.
    if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1") {
        panic!(
            "recorded data not found at {} and CI=true; set PULSE_DATA_DIR",
            dir.display()
        );
    }
    // To stderr itself: libtest captures eprintln! of passing tests.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "skipping test: recorded data not found at {} (set PULSE_DATA_DIR)",
        dir.display()
    );
    None
}

/// Every `.jsonl.gz` capture in the data directory, sorted by name.
pub fn captures(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".jsonl.gz"))
        .collect();
    files.sort();
    files
}

/// The lines of a gzipped JSONL capture.
pub fn lines(path: &std::path::Path) -> Vec<Vec<u8>> {
    let file = std::fs::File::open(path).unwrap();
    BufReader::new(flate2::read::GzDecoder::new(file))
        .split(b'\n')
        .map(|l| l.unwrap())
        .filter(|l| !l.is_empty())
        .collect()
}
