//! The Kafka producer: a [`TradeSink`] writing one JSON message per trade.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::DateTime;
use pulse_core::{Symbol, Trade};
use rskafka::BackoffError;
use rskafka::client::error::{Error as ClientError, ProtocolError};
use rskafka::client::partition::PartitionClient;
use rskafka::record::Record;

use super::last_record::last_record_hashes;
use super::{
    Compression, EnsuredTopic, KafkaClient, KafkaConfig, KafkaError, PROGRESS_HEADER_VALUE,
    PROGRESS_KEY, Placement, ProgressMarker, RECORD_HEADER, UtcOffset, deadline, encode_progress,
    encode_trade, ensure_topic, record_hash,
};
use crate::sink::{SinkError, TradeSink};

/// Settings for [`KafkaTradeSink`]. Plain data with defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerConfig {
    /// Topic to write; created when missing. Default `trades_btc`, as in the
    /// original design.
    pub topic: String,
    /// Partitions for a topic that has to be created. Default 1.
    pub partitions: i32,
    /// Replication factor for a topic that has to be created. Default 1.
    pub replication_factor: i16,
    /// Compression of record batches. Default none.
    pub compression: Compression,
    /// Most records in one produce request. Default 500.
    pub max_batch_records: usize,
    /// Offset of each message's readable `timestamp`. Default IST (+05:30).
    pub timestamp_offset: UtcOffset,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            topic: "trades_btc".to_owned(),
            partitions: 1,
            replication_factor: 1,
            compression: Compression::None,
            max_batch_records: 500,
            timestamp_offset: UtcOffset::IST,
        }
    }
}

/// Publishes trades to a topic: key = symbol, partition = its
/// [`Placement`] (the partition its records are already in, see
/// [`pin`](Self::pin), else [`partition_for`](super::partition_for) the
/// symbol), value = the JSON message of [`encode_trade`], record timestamp
/// = trade time.
///
/// Each call to [`write_trades`](TradeSink::write_trades) sends its trades
/// at once, split per partition and into requests of at most
/// `max_batch_records`; the source's batches are the natural batching unit.
/// When a call fails part-way, retrying the same batch skips the requests
/// that already succeeded. A request whose reply was lost may still be stored
/// twice: the consumer drops such duplicates by trade id.
///
/// [`write_watermarks`](TradeSink::write_watermarks) writes one progress
/// marker ([`ProgressMarker`]) to each partition where a symbol's watermark
/// passed a whole second (or a symbol is new to it), after the trades it
/// vouches for: a symbol's watermark goes to the partition its trades go to.
pub struct KafkaTradeSink {
    topic: String,
    /// Indexed by partition number; Kafka numbers partitions `0..n`.
    partitions: Vec<PartitionClient>,
    client: KafkaClient,
    /// A request got no answer: open the partitions again, on a fresh
    /// connection, before the next one (see [`KafkaClient`]).
    reopen: bool,
    /// The broker did not know the topic or a partition: look the topic up
    /// again (create it if gone) before the next request.
    check_topic: bool,
    placement: Placement,
    config: ProducerConfig,
    retry: Option<BatchProgress>,
    /// The last marker stored on each partition.
    markers: Vec<ProgressMarker>,
    /// The hash of the last record stored on each partition: the next
    /// marker's `after`.
    last_records: Vec<Option<u64>>,
    produced: Arc<AtomicU64>,
    value: Vec<u8>,
}

impl std::fmt::Debug for KafkaTradeSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaTradeSink")
            .field("topic", &self.topic)
            .field("partitions", &self.partitions.len())
            .field("produced", &self.produced())
            .finish_non_exhaustive()
    }
}

/// Which requests of a failed batch already succeeded.
#[derive(Debug)]
struct BatchProgress {
    fingerprint: Fingerprint,
    /// (partition, request index within the partition)
    done: BTreeSet<(usize, usize)>,
}

/// Identifies a batch handed back for retry.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint {
    len: usize,
    first: (Symbol, u64),
    last: (Symbol, u64),
}

impl Fingerprint {
    fn of(trades: &[Trade]) -> Option<Self> {
        let (first, last) = (trades.first()?, trades.last()?);
        Some(Fingerprint {
            len: trades.len(),
            first: (first.symbol, first.id),
            last: (last.symbol, last.id),
        })
    }
}

impl KafkaTradeSink {
    /// Connects, creates the topic if it is missing, and opens a client per partition.
    pub async fn connect(kafka: &KafkaConfig, config: ProducerConfig) -> Result<Self, KafkaError> {
        if config.max_batch_records == 0 {
            return Err(KafkaError::Config(
                "max_batch_records must be > 0".to_owned(),
            ));
        }
        let client = kafka.connect().await?;
        let ensured = ensure_topic(
            &client,
            &config.topic,
            config.partitions,
            config.replication_factor,
        )
        .await?;
        let count = partition_count(&config.topic, &ensured.partitions)?;
        let partitions = open_partitions(&client, &config.topic, count).await?;
        let last_records = last_records(&client, &config.topic, &ensured, count).await;
        Ok(KafkaTradeSink {
            topic: config.topic.clone(),
            markers: vec![ProgressMarker::default(); partitions.len()],
            last_records,
            placement: Placement::new(partitions.len() as i32),
            partitions,
            client,
            reopen: false,
            check_topic: false,
            config,
            retry: None,
            produced: Arc::default(),
            value: Vec::with_capacity(512),
        })
    }

    /// The topic written to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Number of partitions of the topic.
    pub fn partition_count(&self) -> i32 {
        self.partitions.len() as i32
    }

    /// Keeps `symbol`'s trades (and its progress) on `partition`, where its
    /// records already are, e.g. as found by
    /// [`last_trades_on_topic`](super::last_trades_on_topic): after the topic
    /// gained partitions, the hash would move it. Returns false for a
    /// partition the topic does not have.
    pub fn pin(&mut self, symbol: Symbol, partition: i32) -> bool {
        self.placement.pin(symbol, partition)
    }

    /// Where each symbol's trades go.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// Records stored so far.
    pub fn produced(&self) -> u64 {
        self.produced.load(Ordering::Relaxed)
    }

    /// A live count of records stored, readable after the sink moved into a
    /// [`Pipeline`](crate::Pipeline) (for progress logs).
    pub fn produced_counter(&self) -> Arc<AtomicU64> {
        self.produced.clone()
    }

    fn record(&mut self, trade: &Trade) -> Record {
        self.value.clear();
        encode_trade(trade, self.config.timestamp_offset, &mut self.value);
        Record {
            key: Some(trade.symbol.as_str().as_bytes().to_vec()),
            value: Some(self.value.clone()),
            headers: Default::default(),
            timestamp: DateTime::from_timestamp_millis(trade.trade_time_ms).unwrap_or_default(),
        }
    }

    /// One marker per partition whose part of `watermarks` changed.
    async fn produce_markers(
        &mut self,
        watermarks: &BTreeMap<Symbol, i64>,
    ) -> Result<(), KafkaError> {
        self.recheck_topic().await?;
        let count = self.partitions.len();
        let mut markers = vec![ProgressMarker::default(); count];
        for (symbol, watermark) in watermarks {
            let partition = self.placement.partition(symbol) as usize;
            markers[partition].watermarks.insert(*symbol, *watermark);
        }
        for (partition, marker) in markers.into_iter().enumerate() {
            if !closes_more(&marker, &self.markers[partition]) {
                continue;
            }
            let newest = marker.watermarks.values().copied().max().unwrap_or(0);
            let marker = ProgressMarker {
                after: self.last_records[partition],
                ..marker
            };
            let mut value = Vec::with_capacity(96);
            encode_progress(&marker, &mut value);
            let record = Record {
                key: Some(PROGRESS_KEY.as_bytes().to_vec()),
                value: Some(value),
                headers: [(RECORD_HEADER.to_owned(), PROGRESS_HEADER_VALUE.into())].into(),
                timestamp: DateTime::from_timestamp_millis(newest).unwrap_or_default(),
            };
            self.produce_on(partition, vec![record], "produce progress marker")
                .await?;
            self.markers[partition] = marker;
        }
        Ok(())
    }

    /// One produce request on `partition`, bounded by the request deadline.
    /// After one got no answer, the partitions are opened again on a fresh
    /// connection first; a failure leaves them to be opened next time.
    async fn produce_on(
        &mut self,
        partition: usize,
        records: Vec<Record>,
        operation: &'static str,
    ) -> Result<(), KafkaError> {
        if self.reopen {
            self.client.mark_stale();
            let opened = open_partitions(&self.client, &self.topic, self.partitions.len()).await;
            self.partitions = opened.inspect_err(|e| self.check_topic = topic_may_be_gone(e))?;
            self.reopen = false;
        }
        let last = records
            .last()
            .map(|r| record_hash(r.key.as_deref(), r.value.as_deref()));
        let compression = self.config.compression.to_rskafka();
        let produce = self.partitions[partition].produce(records, compression);
        let name = format!("{}/{partition}", self.topic);
        let limit = self.client.request_deadline();
        let produced = deadline::request(limit, operation, &name, produce).await;
        match &produced {
            Err(KafkaError::TimedOut { .. }) => self.reopen = true,
            Err(e) if topic_may_be_gone(e) => self.check_topic = true,
            Err(_) => {}
            Ok(_) => self.last_records[partition] = last,
        }
        produced.map(drop)
    }

    /// After the broker did not know the topic or one of its partitions:
    /// the topic may be gone (a broker that lost its data) or made again
    /// with another partition count. Creates it again if it is missing, as
    /// at start, and follows its partition count; a batch part-written to
    /// what is gone is written again whole (the consumer drops duplicates).
    async fn recheck_topic(&mut self) -> Result<(), KafkaError> {
        if !self.check_topic {
            return Ok(());
        }
        let topic = self.topic.clone();
        let config = &self.config;
        let ensured = ensure_topic(
            &self.client,
            &topic,
            config.partitions,
            config.replication_factor,
        )
        .await?;
        let count = partition_count(&topic, &ensured.partitions)?;
        if ensured.created {
            tracing::warn!(
                topic,
                partitions = count,
                "the topic was gone (did the broker lose its data?): created it again"
            );
        }
        if count != self.partitions.len() {
            tracing::warn!(
                topic,
                was = self.partitions.len(),
                now = count,
                "the topic's partition count changed: symbols are placed over the partitions it has now"
            );
            self.placement = Placement::new(count as i32);
        }
        if ensured.created || count != self.partitions.len() {
            self.markers = vec![ProgressMarker::default(); count];
            self.last_records = last_records(&self.client, &topic, &ensured, count).await;
            self.retry = None;
        }
        // Until this succeeds, the next request looks again.
        self.client.mark_stale();
        self.partitions = open_partitions(&self.client, &topic, count).await?;
        self.reopen = false;
        self.check_topic = false;
        Ok(())
    }

    async fn produce(&mut self, trades: &[Trade]) -> Result<(), KafkaError> {
        let Some(fingerprint) = Fingerprint::of(trades) else {
            return Ok(());
        };
        self.recheck_topic().await?;
        let mut progress = match self.retry.take() {
            Some(p) if p.fingerprint == fingerprint => p,
            _ => BatchProgress {
                fingerprint,
                done: BTreeSet::new(),
            },
        };
        let count = self.partitions.len();
        let mut groups: Vec<Vec<&Trade>> = vec![Vec::new(); count];
        for trade in trades {
            groups[self.placement.partition(&trade.symbol) as usize].push(trade);
        }
        for (partition, group) in groups.iter().enumerate() {
            for (request, chunk) in group.chunks(self.config.max_batch_records).enumerate() {
                if progress.done.contains(&(partition, request)) {
                    continue;
                }
                let records: Vec<Record> = chunk.iter().map(|t| self.record(t)).collect();
                if let Err(e) = self.produce_on(partition, records, "produce").await {
                    self.retry = Some(progress);
                    return Err(e);
                }
                progress.done.insert((partition, request));
                self.produced
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

/// The broker does not know the topic or a partition of it (rskafka says
/// so of a partition missing from the metadata with an invalid response,
/// and wraps what its own retries ended on).
fn topic_may_be_gone(error: &KafkaError) -> bool {
    fn unknown(error: &ClientError) -> bool {
        match error {
            ClientError::ServerError {
                protocol_error: ProtocolError::UnknownTopicOrPartition,
                ..
            }
            | ClientError::InvalidResponse(_) => true,
            ClientError::RetryFailed(BackoffError::DeadlineExceded { source, .. }) => {
                source.downcast_ref::<ClientError>().is_some_and(unknown)
            }
            _ => false,
        }
    }
    match error {
        KafkaError::Request { source, .. } => unknown(source),
        _ => false,
    }
}

/// How many partitions `topic` has, when its ids are `0..count`, as the
/// placement of symbols assumes.
fn partition_count(topic: &str, ids: &[i32]) -> Result<usize, KafkaError> {
    let contiguous = ids
        .iter()
        .enumerate()
        .all(|(index, &id)| id == index as i32);
    match contiguous {
        true => Ok(ids.len()),
        false => Err(KafkaError::Config(format!(
            "topic {topic} has non-contiguous partition ids"
        ))),
    }
}

/// The hash of each partition's last record, the next markers' `after`:
/// none on a topic just made, read back from one that has records.
async fn last_records(
    client: &KafkaClient,
    topic: &str,
    ensured: &EnsuredTopic,
    count: usize,
) -> Vec<Option<u64>> {
    match ensured.created {
        true => vec![None; count],
        false => last_record_hashes(client, topic, count).await,
    }
}

/// A client for each of `topic`'s partitions `0..count`.
async fn open_partitions(
    client: &KafkaClient,
    topic: &str,
    count: usize,
) -> Result<Vec<PartitionClient>, KafkaError> {
    let mut partitions = Vec::with_capacity(count);
    for id in 0..count as i32 {
        partitions.push(client.partition(topic, id).await?);
    }
    Ok(partitions)
}

#[async_trait]
impl TradeSink for KafkaTradeSink {
    fn name(&self) -> &'static str {
        "kafka"
    }

    async fn write_trades(&mut self, trades: &[Trade]) -> Result<(), SinkError> {
        self.produce(trades).await.map_err(SinkError::from)
    }

    async fn write_watermarks(
        &mut self,
        watermarks: &BTreeMap<Symbol, i64>,
    ) -> Result<(), SinkError> {
        self.produce_markers(watermarks)
            .await
            .map_err(SinkError::from)
    }
}

/// Windows end on whole seconds.
const WINDOW_END_STEP_MS: i64 = 1_000;

/// True when `new` lets a reader close a window `old` did not: a watermark
/// passed a whole second, or a symbol is new. Markers in between would close
/// nothing, yet be written five times a second per partition even while
/// nothing trades (the watermarks move on the elapsed clock).
fn closes_more(new: &ProgressMarker, old: &ProgressMarker) -> bool {
    let step = |ms: i64| ms.div_euclid(WINDOW_END_STEP_MS);
    new.watermarks.iter().any(|(symbol, ms)| {
        old.watermarks
            .get(symbol)
            .is_none_or(|old| step(*ms) > step(*old))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(watermarks: &[(&str, i64)]) -> ProgressMarker {
        ProgressMarker {
            watermarks: watermarks
                .iter()
                .map(|(s, ms)| (Symbol::new(s).unwrap(), *ms))
                .collect(),
            after: None,
        }
    }

    #[test]
    fn a_marker_is_written_when_it_closes_a_window_the_last_did_not() {
        let last = marker(&[("BTCUSDT", 1_000), ("ETHUSDT", 2_999)]);
        for (new, written) in [
            (marker(&[("BTCUSDT", 1_999), ("ETHUSDT", 2_999)]), false),
            (marker(&[("BTCUSDT", 2_000), ("ETHUSDT", 2_999)]), true),
            (marker(&[("BTCUSDT", 1_200), ("ETHUSDT", 3_000)]), true),
            (marker(&[("BTCUSDT", 1_200), ("SOLUSDT", 5)]), true),
            (marker(&[("BTCUSDT", 1_200)]), false),
            (marker(&[]), false),
        ] {
            assert_eq!(closes_more(&new, &last), written, "{new:?}");
        }
        assert!(closes_more(&last, &ProgressMarker::default()));
        let before_1970 = marker(&[("BTCUSDT", -1)]);
        assert!(closes_more(&marker(&[("BTCUSDT", 0)]), &before_1970));
    }
}
