//! The `version` column of a stored window, shared by the ClickHouse table
//! and the CSV export so that a CSV file loads into `pulse_metrics` as is.

use pulse_core::Window;

/// The `version` column: the window's trade count. Every later row of a
/// window holds a superset of an earlier row's trades (a correction adds a
/// late trade, a complete window follows one flushed at shutdown), so
/// ReplacingMergeTree keeping the largest keeps the fullest. A count, not
/// the core's re-emission counter, because a restarted `pulse consume`
/// rebuilds a window's trades but not how often it was emitted.
pub fn row_version(window: &Window) -> u64 {
    window.trade_count
}
