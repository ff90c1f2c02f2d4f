//! The consumer's pipeline [`Stage`]: each partition's sans-IO state
//! (`partition.rs`), with positions as the checkpoint.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use pulse_core::{Event, RejectedWindow, Symbol, Window};

use super::partition::{PartitionState, RecordOutcome};
use super::topic::TopicRecord;
use crate::clickhouse::PartitionPosition;
use crate::driver::{Outcome, Stage};

/// Every partition this consumer reads.
#[derive(Debug)]
pub(crate) struct Partitions {
    states: BTreeMap<i32, PartitionState>,
    ready: VecDeque<Window>,
    rejected: VecDeque<RejectedWindow>,
    /// Which partition each symbol was seen in, to warn about a topic that
    /// spreads one symbol over several partitions.
    owners: BTreeMap<Symbol, i32>,
    warned: BTreeSet<Symbol>,
    /// Records were handled since the last checkpoint.
    dirty: bool,
}

impl Partitions {
    pub(crate) fn new(states: BTreeMap<i32, PartitionState>) -> Self {
        Partitions {
            states,
            ready: VecDeque::new(),
            rejected: VecDeque::new(),
            owners: BTreeMap::new(),
            warned: BTreeSet::new(),
            dirty: false,
        }
    }

    fn check_owner(&mut self, symbol: Symbol, partition: i32) {
        let owner = *self.owners.entry(symbol).or_insert(partition);
        if owner != partition && self.warned.insert(symbol) {
            tracing::error!(%symbol, owner, partition, "symbol found in two partitions: its windows will be wrong; produce with key = symbol");
        }
    }
}

impl Stage for Partitions {
    type Input = TopicRecord;
    type Checkpoint = Vec<PartitionPosition>;

    fn handle(&mut self, input: &TopicRecord, _now_ms: Option<i64>) -> Outcome {
        let Some(state) = self.states.get_mut(&input.partition) else {
            return Outcome::Replayed;
        };
        self.dirty = true;
        let record = &input.record;
        let outcome = state.handle(
            record.offset,
            record.key.as_deref(),
            record.value.as_deref(),
            &mut self.ready,
        );
        self.rejected.extend(state.take_rejected());
        match outcome {
            RecordOutcome::Accepted(s) | RecordOutcome::Duplicate(s) | RecordOutcome::Late(s) => {
                self.check_owner(s, input.partition);
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
                error: format!(
                    "partition {} offset {}: {e}",
                    input.partition, record.offset
                ),
            },
        }
    }

    fn poll(&mut self) -> Option<Event> {
        match self.rejected.pop_front() {
            Some(r) => Some(Event::Rejected(r)),
            None => self.ready.pop_front().map(Event::Window),
        }
    }

    fn flush(&mut self) {
        for state in self.states.values_mut() {
            state.flush(&mut self.ready);
            self.rejected.extend(state.take_rejected());
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
