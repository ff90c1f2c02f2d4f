//! The consumer's CPU work per record, without a broker or ClickHouse:
//! decode, aggregate with the restart bookkeeping, window rows, positions.
//! For `benches/consumer.rs`; not a stable API.

use pulse_core::Event;

use super::ConsumerConfig;
use super::partitions::Partitions;
use super::topic::TopicInput;
use crate::clickhouse::WindowRow;
use crate::driver::Stage;
use crate::kafka::FetchedRecord;

/// Records as a fetch would hand them over, ready to be run again and again.
#[doc(hidden)]
#[derive(Debug)]
pub struct RecordPath {
    config: ConsumerConfig,
    inputs: Vec<TopicInput>,
}

/// What one [`RecordPath::run`] produced.
#[doc(hidden)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecordPathTotals {
    /// Window rows made for ClickHouse.
    pub rows: u64,
    /// Positions made (one per `checkpoint_every` records).
    pub positions: u64,
}

impl RecordPath {
    /// Partition 0 of a topic holding `values` (Kafka message bytes, keyed
    /// by nothing), read with `config`'s aggregator settings.
    pub fn new(config: ConsumerConfig, values: impl IntoIterator<Item = Vec<u8>>) -> Self {
        let inputs = values
            .into_iter()
            .enumerate()
            .map(|(offset, value)| TopicInput::Record {
                partition: 0,
                record: FetchedRecord {
                    offset: offset as i64,
                    key: None,
                    value: Some(value),
                },
            })
            .collect();
        RecordPath { config, inputs }
    }

    /// Runs every record through a fresh consumer stage, making a position
    /// every `checkpoint_every` records as the insert interval would.
    pub fn run(&self, checkpoint_every: usize) -> RecordPathTotals {
        let mut stage = Partitions::new(self.config.aggregator.clone());
        let start = TopicInput::Start {
            partition: 0,
            position: None,
            versions_from: 0,
        };
        let _ = stage.handle(&start, None);
        let mut totals = RecordPathTotals::default();
        for (n, input) in self.inputs.iter().enumerate() {
            let _ = stage.handle(input, None);
            drain(&mut stage, &mut totals);
            if (n + 1) % checkpoint_every.max(1) == 0
                && let Some(positions) = stage.checkpoint()
            {
                stage.committed(&positions);
                totals.positions += 1;
            }
        }
        stage.flush();
        drain(&mut stage, &mut totals);
        totals
    }
}

fn drain(stage: &mut Partitions, totals: &mut RecordPathTotals) {
    while let Some(event) = stage.poll() {
        if let Event::Window(window) = event {
            totals.rows += u64::from(WindowRow::try_from(&window).is_ok());
        }
    }
}
