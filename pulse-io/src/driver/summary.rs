//! What a pipeline run did, for the exit summary.

use std::collections::BTreeMap;

use pulse_core::Symbol;

/// Totals for the exit summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PipelineSummary {
    /// Trades received from the source (accepted, duplicate or late).
    pub trades: u64,
    /// Trades added to windows (or passed on, without an aggregator).
    pub accepted: u64,
    /// Windows emitted (including re-emissions).
    pub windows: u64,
    /// Windows emitted, by symbol.
    pub windows_by_symbol: BTreeMap<Symbol, u64>,
    /// Late trades.
    pub late_trades: u64,
    /// Duplicate trades dropped.
    pub duplicates: u64,
    /// Sequence gaps seen by the aggregator.
    pub gaps: u64,
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
}

impl PipelineSummary {
    pub(super) fn add(&mut self, c: &Counts) {
        self.trades += c.received();
        self.accepted += c.accepted;
        self.duplicates += c.duplicates;
        self.late_trades += c.late;
    }
}
