//! What a pipeline run did, for the exit summary.

use std::collections::BTreeMap;

use pulse_core::Symbol;

/// Totals for the exit summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PipelineSummary {
    /// Trades received from the source (accepted, duplicate or late).
    pub trades: u64,
    /// Trades added to windows (or passed on, without an aggregator). A
    /// trade held ahead counts from when it comes until its time is refuted.
    pub accepted: u64,
    /// Windows emitted (including re-emissions).
    pub windows: u64,
    /// Windows emitted for the first time, by symbol.
    pub windows_by_symbol: BTreeMap<Symbol, u64>,
    /// Windows emitted again, corrected with late trades.
    pub reemitted: u64,
    /// Late trades.
    pub late_trades: u64,
    /// Late trades whose window was not corrected: in no row.
    pub late_uncorrected: u64,
    /// Trades whose time the next trades refuted: in no row.
    pub time_outliers: u64,
    /// Windows closed without a row because their sums cannot be represented.
    pub rejected_windows: u64,
    /// Duplicate trades dropped.
    pub duplicates: u64,
    /// Sequence gaps seen by the aggregator.
    pub gaps: u64,
    /// Ids those gaps left missing that never came, at the end.
    pub still_missing: u64,
    /// Inputs that were not valid, counted and skipped.
    pub rejected: u64,
    /// Inputs read again after a restart only to rebuild state.
    pub replayed: u64,
    /// Progress markers read (they carry no trade).
    pub markers: u64,
    /// Successful writes, by sink.
    pub writes: BTreeMap<&'static str, u64>,
    /// Checkpoints saved.
    pub checkpoints: u64,
    /// True when the source reached its end (a finished replay).
    pub source_ended: bool,
}

/// One symbol's outcomes in one input batch.
#[derive(Debug, Default)]
pub(super) struct Counts {
    pub(super) accepted: u64,
    pub(super) duplicates: u64,
    pub(super) late: u64,
}

impl Counts {
    pub(super) fn received(&self) -> u64 {
        self.accepted + self.duplicates + self.late
    }

    fn merge(&mut self, other: &Counts) {
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
        self.late += other.late;
    }
}

/// [`Counts`] per symbol over one batch. Inputs mostly come in runs of one
/// symbol, so the run's counts are kept apart and the map is touched once
/// per run rather than once per input.
#[derive(Debug, Default)]
pub(super) struct BatchCounts {
    run: Option<(Symbol, Counts)>,
    done: BTreeMap<Symbol, Counts>,
}

impl BatchCounts {
    /// The counts of `symbol`, to add one input to.
    pub(super) fn of(&mut self, symbol: Symbol) -> &mut Counts {
        if self.run.as_ref().is_some_and(|(s, _)| *s != symbol) {
            self.end_run();
        }
        &mut self
            .run
            .get_or_insert_with(|| (symbol, Counts::default()))
            .1
    }

    fn end_run(&mut self) {
        if let Some((symbol, c)) = self.run.take() {
            self.done.entry(symbol).or_default().merge(&c);
        }
    }

    /// Each symbol's counts, in symbol order.
    pub(super) fn into_map(mut self) -> BTreeMap<Symbol, Counts> {
        self.end_run();
        self.done
    }
}

impl PipelineSummary {
    pub(super) fn add(&mut self, c: &Counts) {
        self.trades += c.received();
        self.accepted += c.accepted;
        self.duplicates += c.duplicates;
        self.late_trades += c.late;
    }
}

#[cfg(test)]
mod batch_counts_tests {
    use super::*;

    #[test]
    fn runs_of_a_symbol_add_up_with_its_other_runs() {
        let (btc, eth) = (
            Symbol::new("BTCUSDT").unwrap(),
            Symbol::new("ETHUSDT").unwrap(),
        );
        let mut counts = BatchCounts::default();
        counts.of(btc).accepted += 1;
        counts.of(btc).duplicates += 1;
        counts.of(eth).accepted += 1;
        counts.of(btc).late += 1;
        counts.of(btc).accepted += 1;
        let got: Vec<(Symbol, [u64; 3])> = counts
            .into_map()
            .into_iter()
            .map(|(s, c)| (s, [c.accepted, c.duplicates, c.late]))
            .collect();
        assert_eq!(got, [(btc, [2, 1, 1]), (eth, [1, 0, 0])]);
    }
}
