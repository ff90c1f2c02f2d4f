//! Kafka (feature `kafka`): the trade producer, the message schema and the
//! partition reader, over [rskafka](https://docs.rs/rskafka).
//!
//! ## Layout
//! - [`encode_trade`], [`decode_trade`], [`MessageError`]: the JSON message
//!   (one per trade; see `docs/schema.md`).
//! - [`ProgressMarker`], [`encode_progress`], [`decode_progress`]: the
//!   producer's progress markers, which let consumers close quiet windows.
//! - [`UtcOffset`]: the offset of the message's readable `timestamp`.
//! - [`partition_for`]: key = symbol, partition = Kafka's murmur2 of it;
//!   [`Placement`]: except where a symbol's records already are.
//! - [`KafkaConfig`], [`KafkaClient`], [`Compression`]: connecting, shared
//!   settings; `deadline`: the bound on each request.
//! - [`ensure_topic`], [`topic_partitions`]: topic admin.
//! - [`KafkaTradeSink`], [`ProducerConfig`]: the [`TradeSink`](crate::TradeSink).
//! - [`PartitionReader`], [`FetchConfig`]: reading a partition from an offset.
//! - [`last_trades_on_topic`], [`ResumeScan`]: where a restarted producer
//!   left off, per symbol and kind, over every partition (the Binance source
//!   continues from there, see `BinanceConfig::resume_after`).
//! - `record_hash`: a record's identity, for positions and markers;
//!   `last_record`: each partition's last one, for a starting producer.
//! - [`KafkaError`]: retryable vs fatal failures.

mod client;
mod deadline;
mod error;
/// The fuzz target's properties, for `fuzz/` and the corpus replay test.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz_check;
mod last_record;
mod layout;
mod message;
mod partitioner;
mod producer;
mod progress;
mod reader;
mod record_hash;
mod resume;
mod topic;
mod utc_offset;

pub use client::{Compression, KafkaClient, KafkaConfig, UnknownCompression};
pub(crate) use deadline::SLOW_REQUESTS;
pub use error::KafkaError;
pub use message::{MessageError, decode_trade, encode_trade};
pub use partitioner::{Placement, murmur2, partition_for};
pub use producer::{KafkaTradeSink, ProducerConfig};
pub use progress::{
    PROGRESS_HEADER_VALUE, PROGRESS_KEY, ProgressMarker, RECORD_HEADER, decode_progress,
    encode_progress, is_progress_key,
};
pub use reader::{FetchConfig, FetchedRecord, MIN_FETCH_BYTES, PartitionReader};
pub(crate) use record_hash::record_hash;
pub use resume::{LastTrade, ResumeScan, last_trades_on_topic};
pub use topic::{EnsuredTopic, ensure_topic, topic_partitions};
pub use utc_offset::{UtcOffset, UtcOffsetError};
