//! Consumer positions, stored next to the windows they describe.
//!
//! rskafka has no consumer groups or offset commits, so `pulse consume`
//! records per partition where to resume, and each symbol's clock, in
//! `pulse_consumer_positions` (see `pulse-io/sql/002_pulse_consumer_positions.sql`).
//! A position is written only after the windows it covers, so a crash
//! between the two at worst re-emits identical windows. Both inserts are
//! synchronous (see `durability.rs`), so "after" holds on the server too.

use std::collections::BTreeMap;

use pulse_core::{Symbol, SymbolCheckpoint};
use serde::{Deserialize, Serialize};

use super::{ClickHouseError, WindowStore};

/// Where one partition resumes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionPosition {
    /// Kafka partition.
    pub partition: i32,
    /// Re-read from here after a restart: the oldest record still in an open
    /// window, or `next_offset` when no window is open.
    pub resume_offset: i64,
    /// Every record before this offset has been processed.
    pub next_offset: i64,
    /// Each symbol's clock at `next_offset`.
    pub checkpoints: BTreeMap<Symbol, SymbolCheckpoint>,
    /// Grows with every save; the largest is current.
    pub version: u64,
    /// Hash of the record at `next_offset - 1` (key and value), so a restart
    /// can tell whether the topic still holds that record or was recreated.
    /// 0 when not known (positions stored before the column existed).
    pub last_record_hash: u64,
}

#[derive(Debug, Serialize, Deserialize, ::clickhouse::Row)]
#[clickhouse(crate = "::clickhouse")]
struct PositionRow {
    metrics_table: String,
    topic: String,
    kafka_partition: i32,
    resume_offset: i64,
    next_offset: i64,
    checkpoints: String,
    version: u64,
    last_record_hash: u64,
}

#[derive(Debug, Serialize, Deserialize, ::clickhouse::Row)]
#[clickhouse(crate = "::clickhouse")]
struct LatestRow {
    kafka_partition: i32,
    resume_offset: i64,
    next_offset: i64,
    checkpoints: String,
    version: u64,
    last_record_hash: u64,
}

impl WindowStore {
    /// The latest position of every partition of `topic` stored for this
    /// store's table: each read whole from one row, the one with the
    /// largest `version` (on a tie, the largest `next_offset`).
    pub async fn load_positions(
        &self,
        topic: &str,
    ) -> Result<BTreeMap<i32, PartitionPosition>, ClickHouseError> {
        // One whole row per partition: per-column argMax could mix two rows
        // of the same version (two consumers started as one instance). On a
        // tie the furthest position wins, deterministically; either is safe,
        // as each was written after its own windows.
        let sql = format!(
            "SELECT kafka_partition, resume_offset, next_offset, checkpoints, version, last_record_hash FROM {} \
             WHERE metrics_table = ? AND topic = ? \
             ORDER BY kafka_partition, version DESC, next_offset DESC, resume_offset DESC, checkpoints DESC, last_record_hash DESC \
             LIMIT 1 BY kafka_partition",
            self.config.positions_table()
        );
        let query = self
            .client
            .query(&sql)
            .bind(self.config.table.as_str())
            .bind(topic);
        let rows = self
            .timed("load positions", query.fetch_all::<LatestRow>())
            .await?;
        rows.into_iter()
            .map(|row| {
                let checkpoints = serde_json::from_str(&row.checkpoints).map_err(|e| {
                    ClickHouseError::CorruptPosition {
                        topic: topic.to_owned(),
                        partition: row.kafka_partition,
                        reason: e.to_string(),
                    }
                })?;
                Ok((
                    row.kafka_partition,
                    PartitionPosition {
                        partition: row.kafka_partition,
                        resume_offset: row.resume_offset,
                        next_offset: row.next_offset,
                        checkpoints,
                        version: row.version,
                        last_record_hash: row.last_record_hash,
                    },
                ))
            })
            .collect()
    }

    /// Stores `positions` for `topic` in one `INSERT`.
    pub async fn save_positions(
        &self,
        topic: &str,
        positions: &[PartitionPosition],
    ) -> Result<(), ClickHouseError> {
        if positions.is_empty() {
            return Ok(());
        }
        let rows: Vec<PositionRow> = positions
            .iter()
            .map(|p| PositionRow {
                metrics_table: self.config.table.clone(),
                topic: topic.to_owned(),
                kafka_partition: p.partition,
                resume_offset: p.resume_offset,
                next_offset: p.next_offset,
                // A map of plain numbers always serializes.
                checkpoints: serde_json::to_string(&p.checkpoints).unwrap_or_default(),
                version: p.version,
                last_record_hash: p.last_record_hash,
            })
            .collect();
        let table = self.config.positions_table();
        let settings = self.insert_settings().await?;
        self.timed("save positions", async {
            let mut insert = self.client.insert_unescaped::<PositionRow>(&table).await?;
            for &(name, value) in settings {
                insert = insert.with_setting(name, value);
            }
            for row in &rows {
                insert.write(row).await?;
            }
            insert.end().await
        })
        .await
    }
}
