//! Environment variables and the skip-or-panic rule.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// `http://host:port` of a ClickHouse server for tests.
pub const CLICKHOUSE_URL_VAR: &str = "PULSE_TEST_CLICKHOUSE_URL";
/// Comma-separated `host:port` list of a Kafka-compatible broker (fast, may lose data).
pub const KAFKA_BROKERS_VAR: &str = "PULSE_TEST_KAFKA_BROKERS";
/// Comma-separated `host:port` list of a broker with durable storage.
pub const KAFKA_DURABLE_BROKERS_VAR: &str = "PULSE_TEST_KAFKA_DURABLE_BROKERS";
/// Path of the `tansu` binary, for tests that run a private broker.
pub const TANSU_BIN_VAR: &str = "PULSE_TEST_TANSU_BIN";
/// Path of the `clickhouse-server` binary, for tests that run a private server.
pub const CLICKHOUSE_SERVER_BIN_VAR: &str = "PULSE_TEST_CLICKHOUSE_SERVER_BIN";
/// Directory of recorded Binance data; defaults to `<workspace>/../shared/data`.
pub const DATA_DIR_VAR: &str = "PULSE_DATA_DIR";

const SERVICES_HINT: &str = "start the services with \
     `scripts/services.sh up && eval \"$(scripts/services.sh env)\"`, \
     or run everything with `scripts/test.sh` (see docs/testing.md)";
const DATA_HINT: &str = "point it at the recorded Binance captures (`*.jsonl.gz`); \
     scripts/test.sh looks for them next to the repository a clone came from";

/// Whether this run is CI, where a missing server is a failure rather than a skip.
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Says on the terminal why the calling test does nothing. Written to the
/// process's stderr itself: libtest captures `eprintln!` and shows it only
/// for failing tests, so a skipped test would look just like a passed one.
pub fn skip(reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "skipping test: {reason}");
}

/// Reads `var`, or says why the calling test is skipped.
///
/// Returns `None` (after printing the reason to stderr) when `var` is unset
/// or empty.
///
/// # Panics
/// When `var` is unset and [`is_ci`] is true.
#[track_caller]
pub fn require_env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Some(value.trim().to_owned()),
        _ => missing(&format!("{var} is not set"), var, SERVICES_HINT),
    }
}

/// The directory of recorded Binance data (`*.jsonl.gz`).
///
/// `$PULSE_DATA_DIR` when set, else `../shared/data` next to the workspace.
/// Returns `None` (after printing why) when the directory does not exist.
///
/// # Panics
/// When the directory does not exist and [`is_ci`] is true.
#[track_caller]
pub fn data_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os(DATA_DIR_VAR) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        // pulse-io sits one level below the workspace root.
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        missing(
            &format!("recorded data directory {} does not exist", dir.display()),
            DATA_DIR_VAR,
            DATA_HINT,
        )
    }
}

#[track_caller]
fn missing<T>(reason: &str, var: &str, hint: &str) -> Option<T> {
    if is_ci() {
        panic!("{reason}, and CI=true makes that a failure: set {var}; {hint}");
    }
    skip(&format!("{reason}; {hint}"));
    None
}

/// A name no other test run will pick: `<prefix>_<16 hex digits>`.
///
/// Valid as a Kafka topic, a ClickHouse database and a ClickHouse table name
/// as long as `prefix` is (letters, digits, `_`).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // RandomState is seeded per process; pid, time and a counter keep names
    // apart across processes and within one.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = (
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed),
    );
    format!("{prefix}_{:016x}", RandomState::new().hash_one(seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_are_identifiers() {
        let a = unique_name("pulse_test");
        let b = unique_name("pulse_test");
        assert_ne!(a, b);
        assert_eq!(a.len(), "pulse_test_".len() + 16);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    }
}
