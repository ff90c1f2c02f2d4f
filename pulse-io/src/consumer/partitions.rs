//! The consumer's pipeline [`Stage`]: each partition's sans-IO state
//! (`partition.rs`), with positions as the checkpoint. A partition's state
//! is made when its fetch task says where reading starts
//! ([`TopicInput::Start`]), so partitions added while running, and ones
//! started over after a topic reset, go through the same path.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use pulse_core::{AggregatorConfig, Event, Symbol, Window};

use super::partition::{PartitionState, RecordOutcome};
use super::topic::TopicInput;
use crate::clickhouse::PartitionPosition;
use crate::driver::{Outcome, Stage};
use crate::kafka::MessageError;

/// Every partition this consumer reads.
#[derive(Debug)]
pub(crate) struct Partitions {
    /// Checked by `ConsumerConfig::validate`.
    config: AggregatorConfig,
    states: BTreeMap<i32, PartitionState>,
    ready: VecDeque<Window>,
    /// Windows without a row and late trades, handed on before windows.
    notices: VecDeque<Event>,
    /// Which partition each symbol was seen in, to warn about a topic that
    /// spreads one symbol over several partitions.
    owners: BTreeMap<Symbol, i32>,
    warned: BTreeSet<Symbol>,
    /// Records were handled since the last checkpoint.
    dirty: bool,
}

impl Partitions {
    /// No partition yet; each comes with its [`TopicInput::Start`].
    pub(crate) fn new(config: AggregatorConfig) -> Self {
        Partitions {
            config,
            states: BTreeMap::new(),
            ready: VecDeque::new(),
            notices: VecDeque::new(),
            owners: BTreeMap::new(),
            warned: BTreeSet::new(),
            dirty: false,
        }
    }

    /// (Re)starts `partition` from `position`, its versions above
    /// `versions_from`. A state already there belonged to a topic that is
    /// gone: its held windows are emitted as they are (their trades cannot
    /// be read again), and its versions continue, so the next stored
    /// position supersedes the old one.
    fn start(&mut self, partition: i32, position: Option<&PartitionPosition>, versions_from: u64) {
        let mut state = PartitionState::restore(partition, self.config.clone(), position)
            .expect("ConsumerConfig::validate checked the aggregator settings");
        state.continue_versions(versions_from);
        if let Some(mut old) = self.states.remove(&partition) {
            old.flush(&mut self.ready);
            // A checkpoint stores the flushed windows and supersedes the
            // old position, even if the new topic stays empty.
            self.dirty = true;
            self.notices.extend(old.take_notices());
            state.continue_versions(old.version());
            // The topic was made again (or lost records): where symbols
            // were says nothing about the new one, whose other partitions
            // may not be found reset or gone yet.
            self.owners.clear();
        }
        self.states.insert(partition, state);
    }

    /// The topic no longer has `partition`: its symbols may turn up in the
    /// partitions left without a warning. Its state stays as it is: if the
    /// partition returns with the same records (metadata that lagged), it
    /// goes on; if it returns recreated, its start resets it as any reset
    /// does; if it never returns, its open windows are stored at shutdown
    /// like every partition's. (Flushing now would end its symbols' clocks
    /// for good, and store that end with its position.)
    fn gone(&mut self, partition: i32) {
        self.owners.retain(|_, p| *p != partition);
    }

    fn check_owner(&mut self, symbol: Symbol, partition: i32) {
        let owner = *self.owners.entry(symbol).or_insert(partition);
        if owner != partition && self.warned.insert(symbol) {
            tracing::error!(%symbol, owner, partition, "symbol found in two partitions: its windows will be wrong; produce with key = symbol");
        }
    }
}

impl Stage for Partitions {
    type Input = TopicInput;
    type Checkpoint = Vec<PartitionPosition>;

    fn handle(&mut self, input: &TopicInput, _now_ms: Option<i64>) -> Outcome {
        let (partition, record) = match input {
            TopicInput::Start {
                partition,
                position,
                versions_from,
            } => {
                self.start(*partition, position.as_ref(), *versions_from);
                return Outcome::Control;
            }
            TopicInput::Gone { partition } => {
                self.gone(*partition);
                return Outcome::Control;
            }
            TopicInput::Record { partition, record } => (*partition, record),
        };
        let Some(state) = self.states.get_mut(&partition) else {
            // Fetch tasks send Start first, so this cannot happen.
            tracing::error!(
                partition,
                offset = record.offset,
                "record of a partition not started; skipped"
            );
            return Outcome::Control;
        };
        self.dirty = true;
        let outcome = state.handle(
            record.offset,
            record.key.as_deref(),
            record.value.as_deref(),
            &mut self.ready,
        );
        self.notices.extend(state.take_notices());
        match outcome {
            RecordOutcome::Accepted(s) | RecordOutcome::Duplicate(s) | RecordOutcome::Late(s) => {
                self.check_owner(s, partition);
            }
            _ => {}
        }
        match outcome {
            RecordOutcome::Accepted(s) => Outcome::Accepted(s),
            RecordOutcome::Duplicate(s) => Outcome::Duplicate(s),
            RecordOutcome::Late(s) => Outcome::Late(s),
            RecordOutcome::Replayed => Outcome::Replayed,
            RecordOutcome::Marker => Outcome::Marker,
            RecordOutcome::Rejected(e) => Outcome::Rejected {
                reason: e.reason(),
                error: format!("partition {} offset {}: {e}", partition, record.offset),
            },
        }
    }

    fn newest_trade_ms(&self, symbol: Symbol) -> Option<i64> {
        let partition = self.owners.get(&symbol)?;
        self.states.get(partition)?.newest_trade_ms(symbol)
    }

    fn poll(&mut self) -> Option<Event> {
        self.notices
            .pop_front()
            .or_else(|| self.ready.pop_front().map(Event::Window))
    }

    fn flush(&mut self) {
        for state in self.states.values_mut() {
            state.flush(&mut self.ready);
            self.notices.extend(state.take_notices());
        }
    }

    fn checkpoint(&self) -> Option<Vec<PartitionPosition>> {
        self.dirty.then(|| {
            self.states
                .values()
                .filter_map(PartitionState::position)
                .collect()
        })
    }

    fn committed(&mut self, positions: &Vec<PartitionPosition>) {
        for p in positions {
            if let Some(state) = self.states.get_mut(&p.partition) {
                state.saved(p);
            }
        }
        self.dirty = false;
    }

    fn rejection_reasons(&self) -> &'static [&'static str] {
        MessageError::REASONS
    }

    fn progress(&self) -> String {
        let offsets: Vec<String> = self
            .states
            .values()
            .map(|st| match st.next_offset() {
                Some(o) => format!("{}@{o}", st.partition()),
                None => format!("{}@-", st.partition()),
            })
            .collect();
        offsets.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use pulse_core::{Decimal, Side, Trade, TradeKind};

    use super::*;
    use crate::kafka::{FetchedRecord, UtcOffset, encode_trade};

    fn record(offset: i64, time_ms: i64) -> TopicInput {
        record_of(0, "BTCUSDT", offset, time_ms)
    }

    fn record_of(partition: i32, symbol: &str, offset: i64, time_ms: i64) -> TopicInput {
        let trade = Trade {
            symbol: Symbol::new(symbol).unwrap(),
            id: 1_000 + offset as u64,
            kind: TradeKind::AggTrade,
            price: Decimal::from_raw(6_000_000_000_000),
            quantity: Decimal::from_raw(100_000_000),
            side: Side::Buy,
            trade_time_ms: time_ms,
            event_time_ms: time_ms,
            first_trade_id: 0,
            last_trade_id: 0,
        };
        let mut value = Vec::new();
        encode_trade(&trade, UtcOffset::IST, &mut value);
        TopicInput::Record {
            partition,
            record: FetchedRecord {
                offset,
                key: Some(symbol.as_bytes().to_vec()),
                value: Some(value),
            },
        }
    }

    fn start(position: Option<PartitionPosition>, versions_from: u64) -> TopicInput {
        TopicInput::Start {
            partition: 0,
            position,
            versions_from,
        }
    }

    fn windows(stage: &mut Partitions) -> Vec<Window> {
        std::iter::from_fn(|| stage.poll())
            .filter_map(|e| match e {
                Event::Window(w) => Some(w),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_reset_emits_the_old_topics_open_windows_and_supersedes_its_position() {
        let config = crate::consumer::ConsumerConfig::default().aggregator;
        let mut stage = Partitions::new(config);
        let t0 = 1_723_161_000_000;
        let stored = PartitionPosition {
            partition: 0,
            resume_offset: 10,
            next_offset: 10,
            version: 40,
            ..PartitionPosition::default()
        };
        // The stored position did not belong to the topic: a fresh start
        // whose positions still outrank it.
        assert_eq!(
            stage.handle(&start(None, stored.version), None),
            Outcome::Control
        );
        for offset in 0..3 {
            assert!(matches!(
                stage.handle(&record(offset, t0 + offset * 100), None),
                Outcome::Accepted(_)
            ));
        }
        let position = stage.checkpoint().unwrap();
        assert_eq!(position[0].next_offset, 3);
        assert_eq!(position[0].version, 41);
        assert_ne!(position[0].last_record_hash, 0);
        stage.committed(&position);
        assert!(windows(&mut stage).is_empty(), "the window is still open");

        // The topic is replaced while running: the open window is emitted
        // with the trades it had, and the new topic starts afresh.
        stage.handle(&start(None, 0), None);
        let flushed = windows(&mut stage);
        assert_eq!(flushed.len(), 1);
        assert_eq!(flushed[0].trade_count, 3);
        // A checkpoint follows, so the sink stores the flushed window even
        // if the new topic stays empty.
        let reset = stage.checkpoint().expect("a reset makes a checkpoint due");
        stage.committed(&reset);
        assert!(stage.checkpoint().is_none());
        stage.handle(&record(0, t0 + 3_600_000), None);
        let position = stage.checkpoint().unwrap();
        assert_eq!((position[0].next_offset, position[0].version), (1, 42));
    }

    /// Late trades reach the pipeline as events too, so the ones too old
    /// to correct are counted and named, as in `pulse run`.
    #[test]
    fn late_trades_are_handed_on_saying_whether_their_window_was_corrected() {
        let config = crate::consumer::ConsumerConfig::default().aggregator;
        let mut stage = Partitions::new(config);
        let t0 = 1_723_161_000_000;
        stage.handle(&start(None, 0), None);
        stage.handle(&record(0, t0), None);
        // A jump of over a minute, confirmed by the next trade.
        stage.handle(&record(1, t0 + 100_000), None);
        stage.handle(&record(2, t0 + 100_001), None);
        std::iter::from_fn(|| stage.poll()).for_each(drop);
        // 50 s behind the newest trade: within the 60 s kept for correction.
        assert!(matches!(
            stage.handle(&record(3, t0 + 50_000), None),
            Outcome::Late(_)
        ));
        // 100 s behind: only counted.
        assert!(matches!(
            stage.handle(&record(4, t0 + 10), None),
            Outcome::Late(_)
        ));
        let events: Vec<Event> = std::iter::from_fn(|| stage.poll()).collect();
        let late: Vec<(u64, bool)> = events
            .iter()
            .filter_map(|e| match e {
                Event::Late(l) => Some((l.trade.id, l.corrected)),
                _ => None,
            })
            .collect();
        assert_eq!(late, [(1_003, true), (1_004, false)]);
        let corrected: Vec<i64> = events
            .iter()
            .filter_map(|e| match e {
                Event::Window(w) => Some(w.start_ms - t0),
                _ => None,
            })
            .collect();
        assert_eq!(corrected, [50_000]);
    }

    /// A trade dated a day ahead, refuted by the next: handed on as an
    /// outlier, in no window, and it holds no resume offset back.
    #[test]
    fn a_wrong_timestamp_is_handed_on_and_holds_nothing_back() {
        let config = crate::consumer::ConsumerConfig::default().aggregator;
        let mut stage = Partitions::new(config);
        let t0 = 1_723_161_000_000;
        stage.handle(&start(None, 0), None);
        stage.handle(&record(0, t0), None);
        stage.handle(&record(1, t0 + 86_400_000), None);
        for (offset, at) in [(2, 500), (3, 5_000), (4, 9_000)] {
            stage.handle(&record(offset, t0 + at), None);
        }
        let events: Vec<Event> = std::iter::from_fn(|| stage.poll()).collect();
        let outliers: Vec<u64> = events
            .iter()
            .filter_map(|e| match e {
                Event::TimeOutlier(o) => Some(o.trade.id),
                _ => None,
            })
            .collect();
        assert_eq!(outliers, [1_001]);
        assert!(!events.iter().any(|e| matches!(e, Event::Late(_))));
        let position = stage.checkpoint().unwrap();
        // Windows [t0, t0 + 1 s) and on are closed but kept for correction:
        // the resume offset is their first record's, not the outlier's.
        assert_eq!((position[0].resume_offset, position[0].next_offset), (0, 5));
        stage.committed(&position);
        // Once the clock has passed the retention, nothing pins the offset.
        stage.handle(&record(5, t0 + 200_000), None);
        stage.handle(&record(6, t0 + 200_100), None);
        std::iter::from_fn(|| stage.poll()).for_each(drop);
        let position = stage.checkpoint().unwrap();
        assert_eq!(position[0].resume_offset, 5);
    }

    /// A topic made again with fewer partitions: once partition 0 is found
    /// reset, a symbol of the old partition 1 read from it is no producer's
    /// mistake, though partition 1 is not found gone yet.
    #[test]
    fn a_reset_forgets_where_every_symbol_was() {
        let config = crate::consumer::ConsumerConfig::default().aggregator;
        let mut stage = Partitions::new(config);
        let t0 = 1_723_161_000_000;
        let eth = Symbol::new("ETHUSDT").unwrap();
        for partition in [0, 1] {
            stage.handle(
                &TopicInput::Start {
                    partition,
                    position: None,
                    versions_from: 0,
                },
                None,
            );
        }
        stage.handle(&record(0, t0), None);
        stage.handle(&record_of(1, "ETHUSDT", 0, t0), None);
        assert_eq!(stage.owners.get(&eth), Some(&1));

        stage.handle(&start(None, 0), None);
        stage.handle(&record_of(0, "ETHUSDT", 0, t0 + 3_600_000), None);
        assert_eq!(stage.owners.get(&eth), Some(&0));
        assert!(stage.warned.is_empty(), "{:?}", stage.warned);
        // A producer that does place one symbol in two partitions is still told.
        stage.handle(&record_of(1, "ETHUSDT", 1, t0 + 100), None);
        assert!(stage.warned.contains(&eth));
    }

    /// A partition the topic no longer has: its symbol may turn up in
    /// another partition without being taken for a producer's mistake, and
    /// its open window stays open, so records that still come continue it.
    #[test]
    fn a_gone_partition_frees_its_symbols_and_keeps_its_windows() {
        let config = crate::consumer::ConsumerConfig::default().aggregator;
        let mut stage = Partitions::new(config);
        let t0 = 1_723_161_000_000;
        stage.handle(&start(None, 0), None);
        for offset in 0..3 {
            stage.handle(&record(offset, t0 + offset * 100), None);
        }
        let position = stage.checkpoint().unwrap();
        stage.committed(&position);
        let btc = Symbol::new("BTCUSDT").unwrap();
        assert_eq!(stage.owners.get(&btc), Some(&0));

        stage.handle(&TopicInput::Gone { partition: 0 }, None);
        assert_eq!(stage.owners.get(&btc), None);
        assert!(windows(&mut stage).is_empty(), "the window is still open");
        assert!(stage.checkpoint().is_none(), "nothing new to store");
        // The partition was there after all: its records go on.
        assert!(matches!(
            stage.handle(&record(3, t0 + 300), None),
            Outcome::Accepted(_)
        ));
        stage.flush();
        let flushed = windows(&mut stage);
        assert_eq!(flushed.len(), 1);
        assert_eq!(flushed[0].trade_count, 4);
    }
}
