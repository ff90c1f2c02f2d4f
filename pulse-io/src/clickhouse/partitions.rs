//! Inserts small enough in partitions. ClickHouse refuses an insert whose
//! rows fall in more partitions than `max_partitions_per_insert_block`
//! (100 by default), with code 252, every time. `pulse_metrics` is
//! partitioned by month, so a batch spanning years (a sparse replay) is
//! split into inserts of at most [`MONTHS_PER_INSERT`] months.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike};

use super::WindowRow;

/// Months per insert: under 100 even in the server's time zone (what
/// `toYYYYMM` uses), where one UTC month can touch two.
pub(super) const MONTHS_PER_INSERT: usize = 48;

/// The UTC month of `seconds` since the epoch, counted from year 0.
fn month(seconds: u32) -> i64 {
    DateTime::from_timestamp(i64::from(seconds), 0)
        .map_or(0, |t| i64::from(t.year()) * 12 + i64::from(t.month0()))
}

/// `rows` as inserts of at most `max_months` months each: all of them, in
/// their order, when they span no more; otherwise grouped by month, oldest
/// first, in their order within a month.
pub(super) fn inserts(rows: &[WindowRow], max_months: usize) -> Vec<Vec<&WindowRow>> {
    let months: BTreeSet<i64> = rows.iter().map(|r| month(r.window_start)).collect();
    if months.len() <= max_months {
        return vec![rows.iter().collect()];
    }
    // Only a batch over years (rare) pays for grouping.
    let mut by_month: BTreeMap<i64, Vec<&WindowRow>> = BTreeMap::new();
    for row in rows {
        by_month
            .entry(month(row.window_start))
            .or_default()
            .push(row);
    }
    let groups: Vec<Vec<&WindowRow>> = by_month.into_values().collect();
    groups
        .chunks(max_months.max(1))
        .map(|chunk| chunk.concat())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(window_start: u32) -> WindowRow {
        WindowRow {
            window_start,
            window_end: window_start + 1,
            ..WindowRow::default()
        }
    }

    #[test]
    fn months_are_utc_calendar_months() {
        // 2024-01-31T23:59:59Z and 2024-02-01T00:00:00Z.
        assert_eq!(month(1_706_745_599) + 1, month(1_706_745_600));
        assert_eq!(month(0), 1970 * 12);
        assert_eq!(month(u32::MAX), 2106 * 12 + 1);
    }

    #[test]
    fn a_batch_within_the_limit_is_one_insert_in_its_order() {
        let rows = [row(1_706_745_600), row(1_706_745_599), row(1_706_745_601)];
        let got = inserts(&rows, 2);
        assert_eq!(got.len(), 1);
        let starts: Vec<u32> = got[0].iter().map(|r| r.window_start).collect();
        assert_eq!(starts, [1_706_745_600, 1_706_745_599, 1_706_745_601]);
    }

    #[test]
    fn a_batch_over_years_is_split_by_month() {
        // One row a month for ten years, newest first, and a second row in
        // the first month.
        const MONTH: u32 = 31 * 86_400;
        let first = 1_262_304_000; // 2010-01-01
        let mut rows: Vec<WindowRow> = (0..120).rev().map(|m| row(first + m * MONTH)).collect();
        rows.push(row(first + 60));
        let got = inserts(&rows, MONTHS_PER_INSERT);
        let sizes: Vec<usize> = got.iter().map(Vec::len).collect();
        let months = |i: &Vec<&WindowRow>| {
            let mut m: Vec<i64> = i.iter().map(|r| month(r.window_start)).collect();
            m.dedup();
            m.len()
        };
        let distinct: Vec<usize> = got.iter().map(months).collect();
        assert_eq!(distinct, [48, 48, 24]);
        assert_eq!(sizes.iter().sum::<usize>(), rows.len(), "every row once");
        assert_eq!(got[0][0].window_start, first);
        assert_eq!(
            got[0][1].window_start,
            first + 60,
            "in order within a month"
        );
    }
}
