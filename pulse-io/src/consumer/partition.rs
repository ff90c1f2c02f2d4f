//! One partition's aggregation, with the bookkeeping that makes a restart
//! reproduce exactly the windows a run without the restart would have
//! written. No I/O: offsets and bytes in, windows and positions out.
//!
//! # Why restarts are exact
//! A position saved after the windows it covers holds, per partition:
//! - `next_offset` k: every record before it was processed;
//! - `resume_offset` R: the smallest offset of a trade still in a held
//!   window at k (open, or closed but still correctable; k when none is);
//! - each symbol's clock (watermark, newest trade time) at k.
//!
//! On restart the clocks are restored and records from R are read again.
//! A record before k goes back into its window: an open one, or the kept
//! copy of a closed one that can still be corrected; nothing is emitted for
//! it, as it was counted in a stored window before (or was too late the
//! first time too). The restored clocks already cover every replayed trade
//! time and marker, so no window closes during the replay. At k the held
//! windows therefore hold exactly the trades they held before the crash,
//! and from there on the run is the same run. Rows are exact functions of
//! their trades, so windows written again are identical, and the
//! ReplacingMergeTree keeps one.
//!
//! Duplicates are dropped by id within each held window (open, or closed
//! but still correctable). This state is rebuilt by the replay too. Past
//! the retention, the ids of windows let go are kept as ranges
//! (`stored_ids`), so an older copy is still told from a late trade.
//! pulse-core's sequence tracker is not used for this: after a restart it
//! would see backfilled ids, which arrive after larger ids, as duplicates.
//!
//! # Closing and correcting windows
//! Windows close on event time only (no wall-clock idle timeout), so the
//! result is a function of the topic alone: by the lateness behind the
//! newest trade, and by the producer's progress markers
//! ([`ProgressMarker`](crate::kafka::ProgressMarker)), which close a quiet
//! symbol's last window as soon as the producer vouches for it. A trade
//! that still comes after its window closed re-emits the corrected window
//! (the aggregator's `LatePolicy::Reemit`). To keep that exact across
//! restarts, a closed window stays *held* for the aggregator's
//! `late_retention_ms`: the resume offset covers its first trade too, and
//! the replay rebuilds it with `Aggregator::restore_trade`, so a correction
//! after a restart holds every trade. Rows are versioned by trade count, so
//! the fuller row wins.

use std::collections::{BTreeMap, BTreeSet};

use foldhash::HashSet;

use pulse_core::{
    Aggregator, AggregatorConfig, Event, Symbol, Trade, TradeKind, TradeOutcome, Window,
};

use super::stored_ids::StoredIds;
use crate::clickhouse::PartitionPosition;
use crate::kafka::record_hash;
use crate::kafka::{MessageError, decode_progress, decode_trade, is_progress_key};

/// What happened to one record.
#[derive(Debug)]
pub(crate) enum RecordOutcome {
    /// A trade added to its window.
    Accepted(Symbol),
    /// A trade already in its open window: dropped.
    Duplicate(Symbol),
    /// A trade whose window was already closed: it corrects the window
    /// within the retention, and is only counted beyond it.
    Late(Symbol),
    /// A producer's progress marker; it may have closed windows.
    Marker,
    /// A record before the restored position, read again only to rebuild
    /// open windows; it was counted before the restart.
    Replayed,
    /// Not a valid trade message.
    Rejected(MessageError),
}

/// A window whose trades may still change it: open, or closed within the
/// retention.
#[derive(Debug)]
struct HeldWindow {
    /// Offset of its first trade; offsets only grow, so also the smallest.
    first_offset: i64,
    /// Per id space ([`kind_index`]): a topic can hold both of a symbol.
    ids: [HashSet<u64>; 2],
}

impl HeldWindow {
    fn ids(&self, kind: TradeKind) -> &HashSet<u64> {
        &self.ids[kind_index(kind)]
    }

    fn ids_mut(&mut self, kind: TradeKind) -> &mut HashSet<u64> {
        &mut self.ids[kind_index(kind)]
    }

    fn is_empty(&self) -> bool {
        self.ids.iter().all(HashSet::is_empty)
    }
}

fn kind_index(kind: TradeKind) -> usize {
    match kind {
        TradeKind::AggTrade => 0,
        TradeKind::Trade => 1,
    }
}

/// A record's key and value, copied into buffers that are reused.
#[derive(Debug, Default)]
struct RecordBytes {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

impl RecordBytes {
    fn keep(&mut self, key: Option<&[u8]>, value: Option<&[u8]>) {
        copy_into(&mut self.key, key);
        copy_into(&mut self.value, value);
    }

    fn hash(&self) -> u64 {
        record_hash(self.key.as_deref(), self.value.as_deref())
    }
}

fn copy_into(slot: &mut Option<Vec<u8>>, bytes: Option<&[u8]>) {
    match bytes {
        Some(bytes) => {
            let kept = slot.get_or_insert_with(Vec::new);
            kept.clear();
            kept.extend_from_slice(bytes);
        }
        None => *slot = None,
    }
}

/// Aggregation state of one partition.
#[derive(Debug)]
pub(crate) struct PartitionState {
    partition: i32,
    aggregator: Aggregator,
    held: BTreeMap<(Symbol, i64), HeldWindow>,
    /// Ids of the windows let go from `held`.
    stored: StoredIds,
    symbols: BTreeSet<Symbol>,
    /// Offset after the last record handled by this instance.
    handled: Option<i64>,
    /// The record at `handled - 1`, hashed only when a position is made:
    /// a copy costs less than a hash per record.
    last_record: Option<RecordBytes>,
    /// The hash of the record at `replay_until - 1`, from the position.
    restored_hash: u64,
    /// Records below this offset were processed before the restart.
    replay_until: i64,
    version: u64,
    /// What the pipeline counts besides windows: windows closed without
    /// a row, and late trades.
    notices: Vec<Event>,
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
            held: BTreeMap::new(),
            stored: StoredIds::default(),
            symbols,
            handled: None,
            last_record: None,
            restored_hash: position.map_or(0, |p| p.last_record_hash),
            replay_until: position.map_or(i64::MIN, |p| p.next_offset),
            version: position.map_or(0, |p| p.version),
            notices: Vec::new(),
        })
    }

    pub(crate) fn partition(&self) -> i32 {
        self.partition
    }

    /// The newest trade time of `symbol` in this partition.
    pub(crate) fn newest_trade_ms(&self, symbol: Symbol) -> Option<i64> {
        self.aggregator.newest_trade_ms(symbol)
    }

    /// Where to start reading for a state restored from `position`: `None`
    /// means the earliest retained record.
    pub(crate) fn start_offset(position: Option<&PartitionPosition>) -> Option<i64> {
        position.map(|p| p.resume_offset)
    }

    /// Every record before this offset has been processed, by this
    /// instance or before the restart.
    pub(crate) fn next_offset(&self) -> Option<i64> {
        match (self.handled, self.replay_until) {
            (None, i64::MIN) => None,
            (handled, until) => Some(handled.unwrap_or(until).max(until)),
        }
    }

    /// Handles the record at `offset`; closed and corrected windows go to
    /// `windows`.
    pub(crate) fn handle(
        &mut self,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        windows: &mut impl Extend<Window>,
    ) -> RecordOutcome {
        let replayed = offset < self.replay_until;
        if self.handled.is_none_or(|n| offset >= n) {
            self.last_record
                .get_or_insert_with(RecordBytes::default)
                .keep(key, value);
        }
        self.handled = Some(self.handled.map_or(offset + 1, |n| n.max(offset + 1)));
        let value = value.ok_or(MessageError::Empty);
        let outcome = if is_progress_key(key) {
            value.and_then(decode_progress).map(|marker| {
                for (symbol, watermark) in marker.watermarks {
                    self.symbols.insert(symbol);
                    self.aggregator.close_through(symbol, watermark);
                }
                RecordOutcome::Marker
            })
        } else {
            value
                .and_then(decode_trade)
                .map(|trade| self.handle_trade(offset, trade, replayed))
        };
        self.drain(windows, replayed);
        match outcome {
            _ if replayed => RecordOutcome::Replayed,
            Ok(outcome) => outcome,
            Err(e) => RecordOutcome::Rejected(e),
        }
    }

    fn handle_trade(&mut self, offset: i64, trade: Trade, replayed: bool) -> RecordOutcome {
        let symbol = trade.symbol;
        self.symbols.insert(symbol);
        let start = self.aggregator.window_start(trade.trade_time_ms);
        let key = (symbol, start);
        if self
            .held
            .get(&key)
            .is_some_and(|w| w.ids(trade.kind).contains(&trade.id))
        {
            return RecordOutcome::Duplicate(symbol);
        }
        let window_ms = self.aggregator.config().window_ms;
        let horizon = self.horizon(symbol);
        if start.saturating_add(window_ms) <= horizon {
            // Too old to correct: the aggregator only counts it, or, read
            // again or a copy of a stored trade, only lets it decide a
            // trade held ahead as it did.
            if !replayed && self.stored.contains(symbol, trade.kind, trade.id) {
                self.aggregator.restore_trade(trade);
                return RecordOutcome::Duplicate(symbol);
            }
            if replayed {
                self.aggregator.restore_trade(trade);
            } else {
                self.aggregator.handle_trade(trade);
            }
            return RecordOutcome::Late(symbol);
        }
        let outcome = if replayed {
            self.aggregator.restore_trade(trade);
            RecordOutcome::Replayed
        } else {
            match self.aggregator.handle_trade(trade) {
                TradeOutcome::Accepted => RecordOutcome::Accepted(symbol),
                TradeOutcome::Late => RecordOutcome::Late(symbol),
                // Unreachable with sequence tracking off; treat as a duplicate.
                TradeOutcome::Duplicate => return RecordOutcome::Duplicate(symbol),
            }
        };
        self.held
            .entry(key)
            .or_insert_with(|| HeldWindow {
                first_offset: offset,
                ids: Default::default(),
            })
            .ids_mut(trade.kind)
            .insert(trade.id);
        outcome
    }

    /// Windows of `symbol` ending at or before this can no longer change.
    fn horizon(&self, symbol: Symbol) -> i64 {
        self.aggregator
            .correction_horizon(symbol)
            .unwrap_or(i64::MIN)
    }

    /// Closes every open window (end of input or shutdown).
    ///
    /// Take [`position`](Self::position) *before* flushing and store that:
    /// after a restart the flushed windows are rebuilt and completed by later
    /// trades, and the fuller row replaces the flushed one.
    pub(crate) fn flush(&mut self, windows: &mut impl Extend<Window>) {
        // A trade held ahead is read again after the restart and decided
        // then, as in a run without the restart.
        self.aggregator.flush_windows();
        self.drain(windows, false);
    }

    /// The position to store once every window emitted so far is stored.
    ///
    /// `None` when there is nothing new to store: before the first record,
    /// and while replaying up to the restored position (the open windows
    /// are only partly rebuilt then, so the stored position still holds).
    pub(crate) fn position(&self) -> Option<PartitionPosition> {
        let next_offset = self.handled.filter(|h| *h >= self.replay_until)?;
        let window_ms = self.aggregator.config().window_ms;
        let resume_offset = self
            .held
            .iter()
            .filter(|((symbol, start), _)| start.saturating_add(window_ms) > self.horizon(*symbol))
            .map(|(_, w)| w.first_offset)
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
            last_record_hash: self
                .last_record
                .as_ref()
                .map_or(self.restored_hash, RecordBytes::hash),
        })
    }

    /// The version of the last position stored or restored.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// Continues versions from an earlier state of this partition, so a
    /// fresh start after a topic reset supersedes the stored position.
    pub(crate) fn continue_versions(&mut self, version: u64) {
        self.version = self.version.max(version);
    }

    /// Records that `position` was stored.
    pub(crate) fn saved(&mut self, position: &PartitionPosition) {
        self.version = self.version.max(position.version);
    }

    /// Windows closed without a row and late trades since the last call.
    pub(crate) fn take_notices(&mut self) -> std::vec::Drain<'_, Event> {
        self.notices.drain(..)
    }

    /// Takes the aggregator's events; a `replayed` record's notices were
    /// handed on before the restart.
    fn drain(&mut self, windows: &mut impl Extend<Window>, replayed: bool) {
        let mut closed = BTreeSet::new();
        while let Some(event) = self.aggregator.poll() {
            match event {
                Event::Window(w) => {
                    closed.insert(w.symbol);
                    windows.extend([w]);
                }
                // Closed too, held like any closed window.
                Event::Rejected(r) => {
                    closed.insert(r.symbol);
                    self.notices.push(Event::Rejected(r));
                }
                // Only for records read for the first time: replayed ones
                // never reach the aggregator as late.
                Event::Late(late) => self.notices.push(Event::Late(late)),
                // Sequence tracking is off: duplicates are found by `held`.
                Event::Gap { .. } => {}
                // In no window after all: it must not hold the resume
                // offset back until the clock reaches its time.
                Event::TimeOutlier(outlier) => {
                    let trade = outlier.trade;
                    let start = self.aggregator.window_start(trade.trade_time_ms);
                    let key = (trade.symbol, start);
                    if let Some(window) = self.held.get_mut(&key) {
                        window.ids_mut(trade.kind).remove(&trade.id);
                        if window.is_empty() {
                            self.held.remove(&key);
                        }
                    }
                    if !replayed {
                        self.notices.push(Event::TimeOutlier(outlier));
                    }
                }
            }
        }
        // Forget what the aggregator forgot too.
        let window_ms = self.aggregator.config().window_ms;
        for symbol in closed {
            let horizon = self.horizon(symbol);
            let stale: Vec<_> = self
                .held
                .range((symbol, i64::MIN)..=(symbol, i64::MAX))
                .map(|(key, _)| *key)
                .take_while(|(_, start)| start.saturating_add(window_ms) <= horizon)
                .collect();
            for key in stale {
                if let Some(window) = self.held.remove(&key) {
                    for kind in [TradeKind::AggTrade, TradeKind::Trade] {
                        self.stored.extend(symbol, kind, window.ids(kind));
                    }
                }
            }
        }
    }
}
