//! Whether a stored position still belongs to the partition being read.
//!
//! Offsets only mean something within one life of a partition. A topic
//! deleted and recreated, or a broker that lost its volume, starts again at
//! offset 0: an old position then points past the end, or at other records.
//! rskafka 0.6 exposes no topic ids, so a position carries the hash of the
//! last record it covers, and before reading from a position the consumer
//! checks the partition still holds that record at that offset.

use std::fmt;

use rskafka::client::partition::OffsetAt;

use crate::kafka::{FetchedRecord, KafkaError, PartitionReader, record_hash};

/// The last record a position covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LastRecord {
    pub(crate) offset: i64,
    /// [`record_hash`] of it; 0 when not known.
    pub(crate) hash: u64,
}

impl LastRecord {
    /// `record`'s offset and hash.
    pub(crate) fn of(record: &FetchedRecord) -> LastRecord {
        LastRecord {
            offset: record.offset,
            hash: record_hash(record.key.as_deref(), record.value.as_deref()),
        }
    }
}

/// Why a position does not belong to the partition read. Each starts the
/// partition over from its earliest record, with fresh state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mismatch {
    /// The partition ends before the position: recreated or truncated.
    Truncated {
        /// The partition's end offset.
        end: i64,
    },
    /// Another record stands where the position's last record was: the
    /// topic was recreated and refilled.
    Replaced,
    /// The last record covered is no longer retained and neither are the
    /// records after it, up to `earliest`: lost to retention, or a new topic.
    Expired {
        /// The earliest retained offset.
        earliest: i64,
    },
}

impl Mismatch {
    /// The `reason` label of `pulse_topic_resets_total`.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Mismatch::Truncated { .. } => "truncated",
            Mismatch::Replaced => "replaced",
            Mismatch::Expired { .. } => "expired",
        }
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Truncated { end } => write!(
                f,
                "the partition ends at offset {end}, before the position (truncated or recreated)"
            ),
            Mismatch::Replaced => f.write_str(
                "another record stands where the position had one (the topic was recreated)",
            ),
            Mismatch::Expired { earliest } => write!(
                f,
                "the earliest retained offset is {earliest}, past the position (records lost to retention, or a new topic)"
            ),
        }
    }
}

/// Checks that the partition `reader` reads still holds `last`.
///
/// The record itself is asked for first: a broker may report a stale end
/// offset (tansu's memory storage does), and a record that is there with
/// the same hash settles it. Only when it is missing do the partition's
/// offsets say why.
pub(crate) async fn check(
    reader: &PartitionReader,
    last: LastRecord,
) -> Result<Option<Mismatch>, KafkaError> {
    if let Some(r) = reader.record_at(last.offset).await? {
        // Hash 0: stored before hashes were, so only the offset is checked.
        let same = last.hash == 0 || record_hash(r.key.as_deref(), r.value.as_deref()) == last.hash;
        return Ok((!same).then_some(Mismatch::Replaced));
    }
    let end = reader.offset_at(OffsetAt::Latest).await?;
    if last.offset >= end {
        return Ok(Some(Mismatch::Truncated { end }));
    }
    let earliest = reader.offset_at(OffsetAt::Earliest).await?;
    // Retention that stopped right after the last record read lost nothing.
    if last.offset + 1 < earliest {
        return Ok(Some(Mismatch::Expired { earliest }));
    }
    // In range but no record there (compacted away), or retention stopped
    // right after it: nothing to compare.
    Ok(None)
}
