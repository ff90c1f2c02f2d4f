//! Wall-clock time: the one place pulse-io reads the system clock, and
//! the RFC 3339 form the CSV, the terminal and the dashboard show.

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock ms since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Formats ms since the epoch as RFC 3339 UTC with milliseconds,
/// e.g. `2024-08-08T23:58:22.000Z`.
pub fn utc_rfc3339_ms(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        // Outside chrono's range (±262 000 years): not a real trade time.
        None => ms.to_string(),
    }
}
