//! Reading one partition from a chosen offset.
//!
//! rskafka has no consumer groups and no offset commits: the caller decides
//! where to start (the consumer keeps its positions in ClickHouse) and the
//! reader only moves forward from there.

use std::time::Duration;

use rskafka::client::error::{Error as ClientError, ProtocolError};
use rskafka::client::partition::{OffsetAt, PartitionClient};

use super::error::request_error;
use super::{KafkaClient, KafkaError, deadline};

/// The smallest `max_bytes` a fetch asks for.
pub const MIN_FETCH_BYTES: i32 = 1024;

/// Fetch settings. Plain data with defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchConfig {
    /// Upper bound on the bytes one fetch returns (the broker still returns
    /// at least one whole record batch). Default 1 MiB; at least
    /// [`MIN_FETCH_BYTES`] is asked for (tansu answers a 1-byte fetch with nothing).
    pub max_bytes: i32,
    /// How long the broker may wait for new records before answering an
    /// empty fetch. Default 100 ms: tansu waits this out even when records
    /// come in meanwhile, so it bounds how soon a consumer sees them (a
    /// window's freshness in `pulse consume`); idle, it is ten small
    /// requests a second per partition. A reader behind the end the last
    /// fetch reported asks for no wait.
    pub max_wait: Duration,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            max_bytes: 1 << 20,
            max_wait: Duration::from_millis(100),
        }
    }
}

impl FetchConfig {
    /// For reading up to a partition's end and stopping there, as the
    /// start-up scans do: at the end an empty answer should come quickly.
    pub(crate) const TO_THE_END: FetchConfig = FetchConfig {
        max_bytes: 1 << 20,
        max_wait: Duration::from_millis(10),
    };
}

/// One record read from a partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedRecord {
    /// Its offset in the partition.
    pub offset: i64,
    /// The record key (the symbol, for pulse's messages).
    pub key: Option<Vec<u8>>,
    /// The record value (the JSON message); `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

/// Reads one partition forward from a given offset.
pub struct PartitionReader {
    client: PartitionClient,
    /// How long one request may take ([`KafkaConfig::request_deadline`](super::KafkaConfig::request_deadline)).
    request_deadline: Duration,
    topic: String,
    partition: i32,
    next_offset: i64,
    /// `next_offset` is known to start a batch (see [`Self::fetch_covering`]).
    aligned: bool,
    /// The end offset the last fetch reported, when it was before
    /// `next_offset` (see [`Self::end_before_position`]).
    end_before: Option<i64>,
    /// Records skipped because retention deleted them before they were read.
    expired: u64,
    /// The partition's end as the last fetch reported it: while the reader
    /// is behind it, a fetch asks the broker not to wait for more.
    known_end: i64,
    config: FetchConfig,
}

impl std::fmt::Debug for PartitionReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionReader")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("next_offset", &self.next_offset)
            .finish_non_exhaustive()
    }
}

impl PartitionReader {
    /// `topic/partition`, for errors.
    fn name(&self) -> String {
        format!("{}/{}", self.topic, self.partition)
    }

    /// A reader of `topic`/`partition` starting at `start`, or at the
    /// earliest retained record when `start` is `None`.
    pub async fn open(
        client: &KafkaClient,
        topic: &str,
        partition: i32,
        start: Option<i64>,
        config: FetchConfig,
    ) -> Result<Self, KafkaError> {
        let partition_client = client.partition(topic, partition).await?;
        let mut reader = PartitionReader {
            client: partition_client,
            request_deadline: client.request_deadline(),
            topic: topic.to_owned(),
            partition,
            next_offset: 0,
            aligned: start.is_none(),
            end_before: None,
            expired: 0,
            known_end: 0,
            config,
        };
        reader.next_offset = match start {
            Some(offset) => offset,
            None => reader.offset_at(OffsetAt::Earliest).await?,
        };
        Ok(reader)
    }

    /// The partition read.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Moves the reader to `offset`, which may lie inside a batch.
    pub fn seek(&mut self, offset: i64) {
        self.next_offset = offset;
        self.aligned = false;
    }

    /// Offset of the next record [`fetch`](Self::fetch) will return.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// The partition's end offset when the last [`fetch`](Self::fetch)
    /// came back empty with the end before the reader's position. Some
    /// brokers (tansu) answer such a fetch with no records rather than
    /// `OFFSET_OUT_OF_RANGE`: the partition was truncated or recreated, or
    /// the broker reports a stale end. The caller decides which.
    pub fn end_before_position(&self) -> Option<i64> {
        self.end_before
    }

    /// How many records retention deleted before this reader got to them
    /// (it moved on to the earliest retained record), since the last call.
    pub fn take_expired(&mut self) -> u64 {
        std::mem::take(&mut self.expired)
    }

    /// The next records, oldest first; empty when none arrived within
    /// `max_wait`.
    ///
    /// A position older than the earliest retained record (retention deleted
    /// it) moves to the earliest record, with a warning. A position beyond
    /// the end of the partition is an error
    /// ([`KafkaError::PositionBeyondEnd`]): the partition was truncated or
    /// recreated, and only the caller knows whether to start over (the
    /// consumer checks the topic's identity and does).
    pub async fn fetch(&mut self) -> Result<Vec<FetchedRecord>, KafkaError> {
        let wanted = self.next_offset;
        self.end_before = None;
        // Records known to be there are asked for without the wait, which
        // tansu sits out even when it has them.
        let wait = match self.known_end > wanted {
            true => Duration::ZERO,
            false => self.config.max_wait,
        };
        let Some((mut records, end)) = self.fetch_at(wanted, wait).await? else {
            self.known_end = 0;
            self.recover_out_of_range().await?;
            return Ok(Vec::new());
        };
        // An empty answer waits next time, whatever the end says.
        self.known_end = if records.is_empty() { 0 } else { end };
        // Unaligned, an empty answer may be tansu skipping the rest of the
        // batch holding `wanted` (its end can lag too): step back first.
        if records.is_empty() && end < wanted && self.aligned {
            self.end_before = Some(end);
            return Ok(records);
        }
        // Only a start chosen by the caller can fall inside a batch; an empty
        // answer there may be the same skip, in the partition's last batch.
        if records.first().is_some_and(|r| r.offset > wanted)
            || (records.is_empty() && !self.aligned)
        {
            records = self.fetch_covering(wanted, records).await?;
            self.aligned = true;
        }
        if let Some(last) = records.last() {
            self.next_offset = last.offset + 1;
            self.aligned = true;
        }
        Ok(records)
    }

    /// The record at `offset`, read without moving the reader; `None` when
    /// the partition holds none there (out of range, or compacted away).
    /// The consumer compares it with what it processed before, to notice a
    /// recreated topic.
    pub async fn record_at(&self, offset: i64) -> Result<Option<FetchedRecord>, KafkaError> {
        // The record is there or not: waiting for more changes nothing.
        let Some((mut records, _)) = self.fetch_at(offset, Duration::ZERO).await? else {
            return Ok(None);
        };
        if records.first().is_none_or(|r| r.offset > offset) {
            records = self.fetch_covering(offset, records).await?;
        }
        Ok(records.into_iter().find(|r| r.offset == offset))
    }

    /// Records from the batch holding `offset` on (rskafka drops the ones
    /// before `offset`) and the partition's end (high watermark); `None`
    /// when `offset` is out of range.
    async fn fetch_at(
        &self,
        offset: i64,
        wait: Duration,
    ) -> Result<Option<(Vec<FetchedRecord>, i64)>, KafkaError> {
        let max_wait_ms = wait.as_millis().min(i32::MAX as u128) as i32;
        let max_bytes = self.config.max_bytes.max(MIN_FETCH_BYTES);
        // The broker may hold a fetch for `wait` before it answers.
        let limit = self.request_deadline + wait;
        let fetch = self.client.fetch_records(offset, 1..max_bytes, max_wait_ms);
        match deadline::within_after(limit, wait, "fetch", &self.name(), fetch).await? {
            Ok((records, high_watermark)) => Ok(Some((
                records
                    .into_iter()
                    .map(|r| FetchedRecord {
                        offset: r.offset,
                        key: r.record.key,
                        value: r.record.value,
                    })
                    .collect(),
                high_watermark,
            ))),
            Err(ClientError::ServerError {
                protocol_error: ProtocolError::OffsetOutOfRange,
                ..
            }) => Ok(None),
            Err(source) => Err(request_error("fetch", self.name(), source)),
        }
    }

    /// A fetch at `wanted` skipped ahead: either records really are missing
    /// there (compaction, transaction markers), or the broker returned only
    /// batches *starting* at or after `wanted` and so skipped the rest of
    /// the batch holding it. tansu's in-memory storage does the latter, which
    /// would lose records on every resume in the middle of a batch. Steps
    /// back until a fetch starts at or before `wanted`, then keeps only the
    /// records from `wanted` on; `ahead` is the answer when nothing is found.
    async fn fetch_covering(
        &self,
        wanted: i64,
        ahead: Vec<FetchedRecord>,
    ) -> Result<Vec<FetchedRecord>, KafkaError> {
        let earliest = self.offset_at(OffsetAt::Earliest).await?;
        let mut step: i64 = 1;
        loop {
            let mut from = wanted.saturating_sub(step).max(earliest);
            if from >= wanted {
                return Ok(ahead);
            }
            // Offsets before `wanted`: there, or never coming.
            let mut got = self
                .fetch_at(from, Duration::ZERO)
                .await?
                .unwrap_or_default()
                .0;
            if got.first().is_some_and(|r| r.offset <= wanted) {
                // Covered: read forward (small fetches may stop short of `wanted`).
                loop {
                    let last = got.last().map(|r| r.offset);
                    got.retain(|r| r.offset >= wanted);
                    if !got.is_empty() {
                        return Ok(got);
                    }
                    match last {
                        Some(last) if last >= from => from = last + 1,
                        _ => return Ok(ahead),
                    }
                    got = self
                        .fetch_at(from, Duration::ZERO)
                        .await?
                        .unwrap_or_default()
                        .0;
                }
            }
            if from == earliest {
                return Ok(ahead);
            }
            step = step.saturating_mul(2);
        }
    }

    /// The earliest retained offset, or the end of the partition.
    pub async fn offset_at(&self, at: OffsetAt) -> Result<i64, KafkaError> {
        let list = self.client.get_offset(at);
        deadline::request(self.request_deadline, "list offsets", &self.name(), list).await
    }

    async fn recover_out_of_range(&mut self) -> Result<(), KafkaError> {
        let earliest = self.offset_at(OffsetAt::Earliest).await?;
        if self.next_offset < earliest {
            tracing::warn!(
                topic = %self.topic,
                partition = self.partition,
                position = self.next_offset,
                earliest,
                lost = earliest - self.next_offset,
                "records before the earliest retained offset are gone (retention); continuing from there"
            );
            self.expired += (earliest - self.next_offset) as u64;
            self.next_offset = earliest;
            return Ok(());
        }
        let end = self.offset_at(OffsetAt::Latest).await?;
        Err(KafkaError::PositionBeyondEnd {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.next_offset,
            end,
        })
    }
}
