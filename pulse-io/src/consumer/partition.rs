//! One partition's aggregation, with the bookkeeping that makes a restart
//! reproduce exactly the windows a run without the restart would have
//! written. No I/O: offsets and bytes in, windows and positions out.
//!
//! # Why restarts are exact
//! A position saved after the windows it covers holds, per partition:
//! - `next_offset` k: every record before it was processed;
//! - `resume_offset` R: the smallest offset of a trade still in an open
//!   window at k (k when none is open);
//! - each symbol's clock (watermark, newest trade time) at k.
//!
//! On restart the clocks are restored and records from R are read again.
//! A record before k whose window had closed at k is now behind the
//! restored watermark: it is skipped as late, as it was already counted in a
//! stored window (or was late the first time too). A record whose window was
//! still open goes back into it. The restored clocks already cover every
//! replayed trade time, so no window closes during the replay. At k the open
//! windows therefore hold exactly the trades they held before the crash, and
//! from there on the run is the same run. Rows are exact functions of their
//! trades, so windows written again are identical, and the
//! ReplacingMergeTree keeps one.
//!
//! Duplicates are dropped by id within each open window (a duplicate of a
//! trade in a closed window is behind the watermark anyway). This state is
//! rebuilt by the replay too. pulse-core's sequence tracker is not used for
//! this: after a restart it would see backfilled ids, which arrive after
//! larger ids, as duplicates.
//!
//! Windows close on event time only (no wall-clock idle timeout), so the
//! result is a function of the topic alone. A quiet symbol's last window
//! closes with its next trade, or is flushed at shutdown.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use pulse_core::{
    Aggregator, AggregatorConfig, Event, RejectedWindow, Symbol, TradeOutcome, Window,
};

use crate::clickhouse::PartitionPosition;
use crate::kafka::{MessageError, decode_trade};

/// What happened to one record.
#[derive(Debug)]
pub(crate) enum RecordOutcome {
    /// A trade added to its window.
    Accepted(Symbol),
    /// A trade already in its open window: dropped.
    Duplicate(Symbol),
    /// A trade whose window was already closed: dropped.
    Late(Symbol),
    /// A record before the restored position, read again only to rebuild
    /// open windows; it was counted before the restart.
    Replayed,
    /// Not a valid trade message.
    Rejected(MessageError),
}

#[derive(Debug)]
struct OpenWindow {
    /// Offset of its first trade; offsets only grow, so also the smallest.
    first_offset: i64,
    ids: HashSet<u64>,
}

/// Aggregation state of one partition.
#[derive(Debug)]
pub(crate) struct PartitionState {
    partition: i32,
    aggregator: Aggregator,
    open: BTreeMap<(Symbol, i64), OpenWindow>,
    symbols: BTreeSet<Symbol>,
    /// Where reading starts (`None`: the earliest retained record).
    start: Option<i64>,
    /// Offset after the last record handled by this instance.
    handled: Option<i64>,
    /// Records below this offset were processed before the restart.
    replay_until: i64,
    version: u64,
    /// Windows closed without a row, for the pipeline to count.
    rejected: Vec<RejectedWindow>,
}

impl PartitionState {
    /// Fresh state, or the state saved in `position`. `config` must have
    /// `track_sequence` off (see the module docs).
    pub(crate) fn restore(
        partition: i32,
        config: AggregatorConfig,
        position: Option<&PartitionPosition>,
    ) -> Result<Self, pulse_core::ConfigError> {
        debug_assert!(!config.track_sequence);
        let mut aggregator = Aggregator::new(config)?;
        let mut symbols = BTreeSet::new();
        if let Some(p) = position {
            for (symbol, checkpoint) in &p.checkpoints {
                aggregator.restore(*symbol, *checkpoint);
                symbols.insert(*symbol);
            }
        }
        Ok(PartitionState {
            partition,
            aggregator,
            open: BTreeMap::new(),
            symbols,
            start: position.map(|p| p.resume_offset),
            handled: None,
            replay_until: position.map_or(i64::MIN, |p| p.next_offset),
            version: position.map_or(0, |p| p.version),
            rejected: Vec::new(),
        })
    }

    pub(crate) fn partition(&self) -> i32 {
        self.partition
    }

    /// Where to start reading: `None` means the earliest retained record.
    pub(crate) fn start_offset(&self) -> Option<i64> {
        self.start
    }

    /// Every record before this offset has been processed, by this
    /// instance or before the restart.
    pub(crate) fn next_offset(&self) -> Option<i64> {
        match (self.handled, self.replay_until) {
            (None, i64::MIN) => None,
            (handled, until) => Some(handled.unwrap_or(until).max(until)),
        }
    }

    /// Handles the record at `offset`; closed windows go to `windows`.
    pub(crate) fn handle(
        &mut self,
        offset: i64,
        value: Option<&[u8]>,
        windows: &mut impl Extend<Window>,
    ) -> RecordOutcome {
        let replayed = offset < self.replay_until;
        self.handled = Some(self.handled.map_or(offset + 1, |n| n.max(offset + 1)));
        let trade = match value.ok_or(MessageError::Empty).and_then(decode_trade) {
            Ok(trade) => trade,
            Err(_) if replayed => return RecordOutcome::Replayed,
            Err(e) => return RecordOutcome::Rejected(e),
        };
        let symbol = trade.symbol;
        self.symbols.insert(symbol);
        let key = (symbol, self.aggregator.window_start(trade.trade_time_ms));
        let outcome = if self
            .open
            .get(&key)
            .is_some_and(|w| w.ids.contains(&trade.id))
        {
            RecordOutcome::Duplicate(symbol)
        } else {
            match self.aggregator.handle_trade(trade) {
                TradeOutcome::Accepted => {
                    self.open
                        .entry(key)
                        .or_insert_with(|| OpenWindow {
                            first_offset: offset,
                            ids: HashSet::new(),
                        })
                        .ids
                        .insert(trade.id);
                    RecordOutcome::Accepted(symbol)
                }
                TradeOutcome::Late => RecordOutcome::Late(symbol),
                // Unreachable with sequence tracking off; treat as a duplicate.
                TradeOutcome::Duplicate => RecordOutcome::Duplicate(symbol),
            }
        };
        self.drain(windows);
        if replayed {
            RecordOutcome::Replayed
        } else {
            outcome
        }
    }

    /// Closes every open window (end of input or shutdown).
    ///
    /// Take [`position`](Self::position) *before* flushing and store that:
    /// after a restart the flushed windows are rebuilt and completed by later
    /// trades, and the fuller row replaces the flushed one.
    pub(crate) fn flush(&mut self, windows: &mut impl Extend<Window>) {
        self.aggregator.flush();
        self.drain(windows);
    }

    /// The position to store once every window emitted so far is stored.
    ///
    /// `None` when there is nothing new to store: before the first record,
    /// and while replaying up to the restored position (the open windows
    /// are only partly rebuilt then, so the stored position still holds).
    pub(crate) fn position(&self) -> Option<PartitionPosition> {
        let next_offset = self.handled.filter(|h| *h >= self.replay_until)?;
        let resume_offset = self
            .open
            .values()
            .map(|w| w.first_offset)
            .min()
            .unwrap_or(next_offset);
        let checkpoints = self
            .symbols
            .iter()
            .filter_map(|s| Some((*s, self.aggregator.checkpoint(*s)?)))
            .collect();
        Some(PartitionPosition {
            partition: self.partition,
            resume_offset,
            next_offset,
            checkpoints,
            version: self.version + 1,
        })
    }

    /// Records that `position` was stored.
    pub(crate) fn saved(&mut self, position: &PartitionPosition) {
        self.version = self.version.max(position.version);
    }

    /// Windows closed without a row since the last call.
    pub(crate) fn take_rejected(&mut self) -> std::vec::Drain<'_, RejectedWindow> {
        self.rejected.drain(..)
    }

    fn drain(&mut self, windows: &mut impl Extend<Window>) {
        while let Some(event) = self.aggregator.poll() {
            match event {
                Event::Window(w) => {
                    self.open.remove(&(w.symbol, w.start_ms));
                    windows.extend([w]);
                }
                // Closed too: left open, it would pin the resume offset.
                Event::Rejected(r) => {
                    self.open.remove(&(r.symbol, r.start_ms));
                    self.rejected.push(r);
                }
                _ => {}
            }
        }
    }
}
