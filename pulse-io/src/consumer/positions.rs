//! Partition positions saved next to the windows, as the pipeline's
//! [`CheckpointStore`].

use async_trait::async_trait;

use crate::clickhouse::{PartitionPosition, WindowStore};
use crate::sink::{CheckpointStore, SinkError};

/// Saves positions of one topic in `pulse_consumer_positions`.
#[derive(Debug)]
pub(crate) struct PositionStore {
    pub(crate) store: WindowStore,
    pub(crate) topic: String,
}

#[async_trait]
impl CheckpointStore<Vec<PartitionPosition>> for PositionStore {
    fn name(&self) -> &'static str {
        "clickhouse"
    }

    async fn save(&mut self, positions: &Vec<PartitionPosition>) -> Result<(), SinkError> {
        Ok(self.store.save_positions(&self.topic, positions).await?)
    }
}
