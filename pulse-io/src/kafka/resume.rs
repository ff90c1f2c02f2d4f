//! Where a restarted producer left off: the last trade of each symbol, of
//! the kind it is about to publish, already on the topic, and the partition
//! each symbol's records are in.
//!
//! Every partition is read, not only the one [`partition_for`](super::partition_for)
//! names today: a topic that gained partitions still holds each symbol's
//! trades where they were written, and the producer keeps them there (see
//! [`Placement`](super::Placement)). Ids are compared only within one
//! [`TradeKind`]: trade ids (`@trade`, e.g. a replayed capture) run far
//! above aggTrade ids, so a resume taken from the other kind would drop
//! every live trade as old.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use pulse_core::{Symbol, TradeKind};
use rskafka::client::Client;
use rskafka::client::partition::OffsetAt;

use super::{FetchConfig, KafkaError, PartitionReader, decode_trade, is_progress_key};

/// The newest trade of a symbol found on the topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastTrade {
    /// Its sequence id (`agg_id`): a restarted source resumes after it.
    pub id: u64,
    /// Its trade time, ms since the epoch.
    pub trade_time_ms: i64,
    /// Partition it was found in.
    pub partition: i32,
    /// Offset it was found at.
    pub offset: i64,
}

/// What [`last_trades_on_topic`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResumeScan {
    /// Per symbol, its newest trade of the kind asked for, over every
    /// partition: where publishing resumes.
    pub last: BTreeMap<Symbol, LastTrade>,
    /// Per symbol, the partition of its newest record of any kind (the
    /// partition of `last` when that exists): where its trades stay.
    pub partitions: BTreeMap<Symbol, i32>,
    /// Per symbol without a trade of the kind asked for, the highest id of
    /// another kind seen (kept apart, only reported).
    pub other_kind: BTreeMap<Symbol, (TradeKind, u64)>,
    /// Symbols not found although the bound stopped the scan of some
    /// partition before its start: their last trade may lie further back.
    pub beyond_scan: Vec<Symbol>,
    /// Symbols not found on the whole topic: new to it.
    pub new: Vec<Symbol>,
    /// Records read, over all partitions.
    pub records_read: u64,
    /// Records read that were neither a trade nor a progress marker.
    pub unreadable: u64,
}

/// Finds the last trade of `kind` of each of `symbols` on `topic`.
///
/// Each partition is read backwards from its end in growing steps until
/// every symbol has a trade of `kind` in it, its start is reached, or
/// `scan_limit` records of it were read (the bound is per partition).
/// Progress markers and records that do not decode are skipped. A missing
/// topic finds nothing, and every symbol is new.
///
/// The end is found by reading until a fetch comes back empty rather than by
/// trusting the broker's reported end offset (tansu's in-memory storage
/// under-reports it after batched produces); records past the reported end
/// are always read, so the newest trade is never missed, and the bound
/// counts them too.
pub async fn last_trades_on_topic(
    client: &Client,
    topic: &str,
    symbols: &[Symbol],
    kind: TradeKind,
    scan_limit: u64,
) -> Result<ResumeScan, KafkaError> {
    let wanted: BTreeSet<Symbol> = symbols.iter().copied().collect();
    let mut scan = ResumeScan::default();
    let Some(partitions) = super::topic_partitions(client, topic).await? else {
        scan.new = wanted.into_iter().collect();
        return Ok(scan);
    };
    let mut newest_any: BTreeMap<Symbol, (i64, i32)> = BTreeMap::new();
    let mut cut_short = false;
    for partition in partitions {
        let mut seen = PartitionScan {
            partition,
            wanted: &wanted,
            kind,
            scan: &mut scan,
            newest_any: &mut newest_any,
            found_here: BTreeSet::new(),
        };
        cut_short |= seen.run(client, topic, scan_limit).await?;
    }
    for symbol in &wanted {
        let partition = match scan.last.get(symbol) {
            Some(last) => Some(last.partition),
            None => newest_any.get(symbol).map(|(_, p)| *p),
        };
        if let Some(partition) = partition {
            scan.partitions.insert(*symbol, partition);
        }
        if scan.last.contains_key(symbol) {
            scan.other_kind.remove(symbol);
        } else if cut_short {
            scan.beyond_scan.push(*symbol);
        } else {
            scan.new.push(*symbol);
        }
    }
    Ok(scan)
}

/// One partition's part of a scan.
struct PartitionScan<'a> {
    partition: i32,
    wanted: &'a BTreeSet<Symbol>,
    kind: TradeKind,
    scan: &'a mut ResumeScan,
    /// Per symbol, the trade time and partition of its newest record of any kind.
    newest_any: &'a mut BTreeMap<Symbol, (i64, i32)>,
    /// Symbols with a trade of `kind` in this partition.
    found_here: BTreeSet<Symbol>,
}

impl PartitionScan<'_> {
    /// Returns true when the bound stopped it before the partition's start.
    async fn run(
        &mut self,
        client: &Client,
        topic: &str,
        scan_limit: u64,
    ) -> Result<bool, KafkaError> {
        let config = FetchConfig {
            max_bytes: 1 << 20,
            // At the end of the partition an empty answer should come quickly.
            max_wait: Duration::from_millis(10),
        };
        let partition = self.partition;
        let mut reader = PartitionReader::open(client, topic, partition, None, config).await?;
        let earliest = reader.next_offset();
        let reported_end = reader.offset_at(OffsetAt::Latest).await?.max(earliest);
        let mut step = i64::try_from(scan_limit.min(1_000)).unwrap_or(1_000);
        let mut start = (reported_end - step).max(earliest);
        let mut stop: Option<i64> = None; // None: read to the real end
        let mut scanned: u64 = 0;
        loop {
            reader = PartitionReader::open(client, topic, partition, Some(start), config).await?;
            'fetch: loop {
                let records = reader.fetch().await?;
                if records.is_empty() {
                    break;
                }
                for record in records {
                    if stop.is_some_and(|s| record.offset >= s) {
                        break 'fetch;
                    }
                    scanned += 1;
                    self.scan.records_read += 1;
                    if is_progress_key(record.key.as_deref()) {
                        continue;
                    }
                    self.observe(record.offset, record.value.as_deref());
                }
                if stop.is_some_and(|s| reader.next_offset() >= s) {
                    break;
                }
            }
            if start <= earliest || self.found_here.len() == self.wanted.len() {
                return Ok(false);
            }
            if scanned >= scan_limit {
                return Ok(true);
            }
            stop = Some(start);
            step = step.saturating_mul(2);
            // Never read more than the bound allows.
            let left = i64::try_from(scan_limit - scanned).unwrap_or(i64::MAX);
            start = (start - step.min(left)).max(earliest);
        }
    }

    fn observe(&mut self, offset: i64, value: Option<&[u8]>) {
        let Some(Ok(trade)) = value.map(decode_trade) else {
            self.scan.unreadable += 1;
            return;
        };
        if !self.wanted.contains(&trade.symbol) {
            return;
        }
        let symbol = trade.symbol;
        let newest = self.newest_any.entry(symbol).or_insert((i64::MIN, -1));
        if trade.trade_time_ms > newest.0 {
            *newest = (trade.trade_time_ms, self.partition);
        }
        if trade.kind != self.kind {
            let other = self
                .scan
                .other_kind
                .entry(symbol)
                .or_insert((trade.kind, 0));
            other.1 = other.1.max(trade.id);
            return;
        }
        self.found_here.insert(symbol);
        if self.scan.last.get(&symbol).is_none_or(|t| trade.id > t.id) {
            self.scan.last.insert(
                symbol,
                LastTrade {
                    id: trade.id,
                    trade_time_ms: trade.trade_time_ms,
                    partition: self.partition,
                    offset,
                },
            );
        }
    }
}
