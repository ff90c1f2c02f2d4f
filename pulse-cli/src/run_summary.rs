//! The closing `pulse run:` line: totals and the busiest few symbols, short
//! enough to read with every perpetual followed. Per-symbol counts go to the
//! debug log (and to `--csv` and `/metrics`).

use pulse_io::{PipelineSummary, SourceTotals};

/// Symbols named on the line; the rest are counted.
const TOP: usize = 5;

/// One line for stderr at exit. Trades, duplicates and gaps are the
/// source's and the pipeline's together; windows are counted once however
/// often late trades corrected them; what a source backfilled, could not
/// recover or skipped as malformed is named only when there was some.
pub fn summary_line(summary: &PipelineSummary, source: SourceTotals, seconds: f64) -> String {
    let some = |n: u64, what: &str| {
        if n > 0 {
            format!(", {n} {what}")
        } else {
            String::new()
        }
    };
    format!(
        "pulse run: {} trades → {} windows ({}) in {seconds:.1} s; {} late{}, {} duplicates, {} gaps{}{}{}{}{}{}{}{}{}{}",
        summary.trades + source.duplicates,
        summary.windows - summary.reemitted,
        busiest(summary),
        summary.late_trades,
        late_detail(summary),
        summary.duplicates + source.duplicates,
        summary.gaps + source.gaps,
        gap_detail(summary),
        some(source.backfilled, "backfilled over REST"),
        some(source.unfilled, "lost (backfill could not recover them)"),
        some(
            source.held,
            "held behind gaps at the stop (backfill had not filled them), in no window"
        ),
        some(
            source.missing,
            "missing ids not backfilled by the stop, in no window"
        ),
        some(
            source.unchecked,
            "symbol outage(s) not looked up over REST (trades missed then, if any, are in no window)"
        ),
        some(source.rejected, "malformed skipped"),
        some(
            summary.time_outliers,
            "with a time far ahead that the next trades refuted, in no row"
        ),
        some(
            summary.rejected_windows,
            "windows without a row (sums out of range)"
        ),
        if summary.source_ended {
            "; replay finished"
        } else {
            ""
        },
    )
}

/// ` (3 in re-emitted windows, 2 too late to correct, in no row)`: what
/// became of the late trades, when there were some. Each late trade is one
/// or the other; a window corrected twice counts twice.
fn late_detail(summary: &PipelineSummary) -> String {
    let too_late = summary.late_uncorrected;
    let corrected = summary.late_trades.saturating_sub(too_late);
    match (corrected, too_late) {
        (0, 0) => String::new(),
        (c, 0) => format!(" ({c} in re-emitted windows)"),
        (0, t) => format!(" ({t} too late to correct, in no row)"),
        (c, t) => format!(" ({c} in re-emitted windows, {t} too late to correct, in no row)"),
    }
}

/// ` (4 ids never came)`: what became of the ids the pipeline's own gaps
/// left missing (a file out of order fills most of them later). The
/// source's gaps are told by what it backfilled or lost.
fn gap_detail(summary: &PipelineSummary) -> String {
    match (summary.gaps, summary.still_missing) {
        (0, _) => String::new(),
        (_, 0) => " (each filled later)".to_owned(),
        (_, n) => format!(" ({n} ids never came)"),
    }
}

/// `BTCUSDT 344, ETHUSDT 120, …, +295 more`, most windows first.
fn busiest(summary: &PipelineSummary) -> String {
    let mut by_windows: Vec<_> = summary.windows_by_symbol.iter().collect();
    if by_windows.is_empty() {
        return "none".to_owned();
    }
    // Ties in symbol order (the map's), so the line is deterministic.
    by_windows.sort_by(|a, b| b.1.cmp(a.1));
    let mut named: Vec<String> = by_windows
        .iter()
        .take(TOP)
        .map(|(symbol, n)| format!("{symbol} {n}"))
        .collect();
    let rest = by_windows.len().saturating_sub(TOP);
    if rest > 0 {
        named.push(format!("+{rest} more"));
    }
    named.join(", ")
}

/// Every symbol's count, at debug level.
pub fn log_by_symbol(summary: &PipelineSummary) {
    for (symbol, windows) in &summary.windows_by_symbol {
        tracing::debug!(%symbol, windows, "windows by symbol");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: SourceTotals = SourceTotals {
        rejected: 0,
        gaps: 0,
        duplicates: 0,
        backfilled: 0,
        unfilled: 0,
        held: 0,
        missing: 0,
        unchecked: 0,
    };

    fn summary(counts: &[(&str, u64)]) -> PipelineSummary {
        PipelineSummary {
            trades: 1000,
            windows: counts.iter().map(|(_, n)| n).sum(),
            windows_by_symbol: counts
                .iter()
                .map(|(s, n)| (s.parse().unwrap(), *n))
                .collect(),
            ..PipelineSummary::default()
        }
    }

    #[test]
    fn few_symbols_are_all_named() {
        let line = summary_line(&summary(&[("BTCUSDT", 344), ("ETHUSDT", 12)]), NONE, 1.5);
        assert_eq!(
            line,
            "pulse run: 1000 trades → 356 windows (BTCUSDT 344, ETHUSDT 12) in 1.5 s; \
             0 late, 0 duplicates, 0 gaps"
        );
        assert!(summary_line(&summary(&[]), NONE, 0.0).contains("0 windows (none)"));
        let malformed = SourceTotals {
            rejected: 7,
            ..NONE
        };
        let ended = PipelineSummary {
            source_ended: true,
            ..summary(&[("BTCUSDT", 2)])
        };
        assert_says(
            &ended,
            malformed,
            "0 gaps, 7 malformed skipped; replay finished",
        );
        let corrected = PipelineSummary {
            windows: 522,
            reemitted: 178,
            late_trades: 178,
            ..summary(&[("BTCUSDT", 344)])
        };
        assert_says(
            &corrected,
            NONE,
            "→ 344 windows (BTCUSDT 344) in 0.0 s; 178 late (178 in re-emitted windows), 0 dup",
        );
        // Late trades beyond the correction horizon are in no row: say so.
        let too_late = PipelineSummary {
            late_trades: 218,
            late_uncorrected: 40,
            rejected_windows: 2,
            ..corrected
        };
        // A file out of order opens gaps that its later lines fill.
        let reordered = PipelineSummary {
            gaps: 3,
            ..summary(&[("BTCUSDT", 2)])
        };
        assert_says(&reordered, NONE, "0 duplicates, 3 gaps (each filled later)");
        let holed = PipelineSummary {
            still_missing: 40,
            ..reordered
        };
        assert_says(&holed, NONE, "0 duplicates, 3 gaps (40 ids never came)");
        assert_says(
            &too_late,
            NONE,
            "218 late (178 in re-emitted windows, 40 too late to correct, in no row), 0 duplicates, \
             0 gaps, 2 windows without a row (sums out of range)",
        );
        // Live, the source drops duplicates and repairs gaps before the
        // pipeline: they count on the line too.
        let live = SourceTotals {
            gaps: 5,
            duplicates: 32,
            backfilled: 173,
            unfilled: 2,
            held: 9,
            missing: 15,
            unchecked: 1,
            ..NONE
        };
        let mut repaired = summary(&[("BTCUSDT", 2)]);
        repaired.duplicates = 1;
        assert_says(
            &repaired,
            live,
            "1032 trades → 2 windows (BTCUSDT 2) in 0.0 s; 0 late, 33 duplicates, 5 gaps, \
             173 backfilled over REST, 2 lost (backfill could not recover them), 9 held behind \
             gaps at the stop (backfill had not filled them), in no window, 15 missing ids not \
             backfilled by the stop, in no window, 1 symbol outage(s) not looked up over REST \
             (trades missed then, if any, are in no window)",
        );
    }

    /// The line for `summary` and `source` (0.0 s) contains `part`.
    fn assert_says(summary: &PipelineSummary, source: SourceTotals, part: &str) {
        let line = summary_line(summary, source, 0.0);
        assert!(line.contains(part), "{line}");
    }

    #[test]
    fn three_hundred_symbols_stay_one_short_line_naming_the_busiest_five() {
        let names: Vec<String> = (0..300).map(|i| format!("S{i:03}USDT")).collect();
        // S000USDT has 1 window, …, S299USDT has 300: the busiest are the last.
        let counts: Vec<(&str, u64)> = names
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i as u64 + 1))
            .collect();
        let line = summary_line(&summary(&counts), NONE, 61.0);
        assert!(line.chars().count() < 200, "{} chars: {line}", line.len());
        assert!(
            line.contains(
                "(S299USDT 300, S298USDT 299, S297USDT 298, S296USDT 297, S295USDT 296, \
                 +295 more)"
            ),
            "{line}"
        );
        assert!(line.starts_with("pulse run: 1000 trades → 45150 windows ("));
    }

    #[test]
    fn ties_are_broken_by_symbol() {
        let counts: Vec<(&str, u64)> = ["FUSDT", "EUSDT", "DUSDT", "CUSDT", "BUSDT", "AUSDT"]
            .into_iter()
            .map(|s| (s, 7))
            .collect();
        let line = summary_line(&summary(&counts), NONE, 0.0);
        assert!(
            line.contains("(AUSDT 7, BUSDT 7, CUSDT 7, DUSDT 7, EUSDT 7, +1 more)"),
            "{line}"
        );
    }
}
