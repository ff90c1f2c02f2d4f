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

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use futures_util::future::try_join_all;

use super::KafkaClient;
use pulse_core::{Symbol, TradeKind};
use rskafka::client::partition::OffsetAt;

use super::{
    FetchConfig, KafkaError, PartitionReader, decode_progress, decode_trade, is_progress_key,
};

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
    /// Per symbol, the latest time a progress marker read vouched for:
    /// every trade of it before this time was published (so one without a
    /// trade on the topic was followed, quiet, up to then).
    pub vouched: BTreeMap<Symbol, i64>,
    /// Records read, over all partitions.
    pub records_read: u64,
    /// Records read that were neither a trade nor a progress marker.
    pub unreadable: u64,
}

/// Finds the last trade of `kind` of each of `symbols` on `topic`.
///
/// Every partition is read backwards from its end in growing steps, in
/// turn, until every symbol has a trade of `kind` in some partition, or
/// each partition's start is reached or `scan_limit` records of it were
/// read (the bound is per partition).
/// Progress markers tell what they vouch for ([`ResumeScan::vouched`]);
/// records that do not decode are skipped. A missing topic finds nothing,
/// and every symbol is new.
///
/// The end is found by reading until a fetch comes back empty rather than by
/// trusting the broker's reported end offset (tansu's in-memory storage
/// under-reports it after batched produces); records past the reported end
/// are always read, so the newest trade is never missed, and the bound
/// counts them too.
pub async fn last_trades_on_topic(
    client: &KafkaClient,
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
    let found = RefCell::new(Found {
        wanted: &wanted,
        kind,
        scan: &mut scan,
        newest_any: BTreeMap::new(),
    });
    // Every partition at once, a step at a time, so the scan stops as soon
    // as every symbol is found, wherever it is. What the steps find does
    // not depend on the order their records come in (ties go to the lower
    // partition); one after another, 32 partitions took 1.4 s.
    let opens = partitions
        .into_iter()
        .map(|partition| PartitionCursor::open(client, topic, partition, scan_limit));
    let mut cursors = try_join_all(opens).await?;
    loop {
        let steps: Vec<_> = cursors
            .iter_mut()
            .filter(|c| c.state == CursorState::More)
            .map(|c| c.step(scan_limit, &found))
            .collect();
        if steps.is_empty() {
            break;
        }
        try_join_all(steps).await?;
        if found.borrow().all_found() {
            break;
        }
    }
    let found = found.into_inner();
    let cut_short = cursors.iter().any(|c| c.state == CursorState::Bounded);
    let newest_any = found.newest_any;
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

/// What the scan found so far, over every partition.
struct Found<'a> {
    wanted: &'a BTreeSet<Symbol>,
    kind: TradeKind,
    scan: &'a mut ResumeScan,
    /// Per symbol, the trade time and partition of its newest record of any kind.
    newest_any: BTreeMap<Symbol, (i64, i32)>,
}

/// Where one partition's backward read stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CursorState {
    /// More of it can be read.
    More,
    /// Read back to its start.
    Start,
    /// The bound stopped it before its start.
    Bounded,
}

/// One partition read backwards from its end in growing steps.
struct PartitionCursor {
    partition: i32,
    reader: PartitionReader,
    earliest: i64,
    /// Where the next step starts reading.
    start: i64,
    /// Where the last step started: the next one reads up to it. `None`
    /// at first: the first step reads to the real end.
    stop: Option<i64>,
    step: i64,
    scanned: u64,
    state: CursorState,
}

impl PartitionCursor {
    async fn open(
        client: &KafkaClient,
        topic: &str,
        partition: i32,
        scan_limit: u64,
    ) -> Result<Self, KafkaError> {
        let config = FetchConfig::TO_THE_END;
        let reader = PartitionReader::open(client, topic, partition, None, config).await?;
        let earliest = reader.next_offset();
        let reported_end = reader.offset_at(OffsetAt::Latest).await?.max(earliest);
        let step = i64::try_from(scan_limit.min(1_000)).unwrap_or(1_000);
        let start = (reported_end - step).max(earliest);
        Ok(PartitionCursor {
            partition,
            reader,
            earliest,
            start,
            stop: None,
            step,
            scanned: 0,
            state: CursorState::More,
        })
    }

    /// Reads from `start` up to `stop` (the real end, the first time), then
    /// moves `start` further back.
    async fn step(
        &mut self,
        scan_limit: u64,
        found: &RefCell<Found<'_>>,
    ) -> Result<(), KafkaError> {
        self.reader.seek(self.start);
        'fetch: loop {
            let records = self.reader.fetch().await?;
            if records.is_empty() {
                break;
            }
            for record in records {
                if self.stop.is_some_and(|s| record.offset >= s) {
                    break 'fetch;
                }
                self.scanned += 1;
                // Not held across an await: the other partitions' steps share it.
                let mut found = found.borrow_mut();
                found.scan.records_read += 1;
                if is_progress_key(record.key.as_deref()) {
                    found.vouch(record.value.as_deref());
                    continue;
                }
                found.observe(self.partition, record.offset, record.value.as_deref());
            }
            if self.stop.is_some_and(|s| self.reader.next_offset() >= s) {
                break;
            }
        }
        if self.start <= self.earliest {
            self.state = CursorState::Start;
        } else if self.scanned >= scan_limit {
            self.state = CursorState::Bounded;
        } else {
            self.stop = Some(self.start);
            self.step = self.step.saturating_mul(2);
            // Never read more than the bound allows.
            let left = i64::try_from(scan_limit - self.scanned).unwrap_or(i64::MAX);
            self.start = (self.start - self.step.min(left)).max(self.earliest);
        }
        Ok(())
    }
}

impl Found<'_> {
    fn all_found(&self) -> bool {
        self.wanted.iter().all(|s| self.scan.last.contains_key(s))
    }

    /// A progress marker: the times it vouches for, per wanted symbol.
    fn vouch(&mut self, value: Option<&[u8]>) {
        let Some(Ok(marker)) = value.map(decode_progress) else {
            return;
        };
        for (symbol, time) in marker.watermarks {
            if self.wanted.contains(&symbol) {
                let vouched = self.scan.vouched.entry(symbol).or_insert(time);
                *vouched = (*vouched).max(time);
            }
        }
    }

    fn observe(&mut self, partition: i32, offset: i64, value: Option<&[u8]>) {
        let Some(Ok(trade)) = value.map(decode_trade) else {
            self.scan.unreadable += 1;
            return;
        };
        if !self.wanted.contains(&trade.symbol) {
            return;
        }
        let symbol = trade.symbol;
        let newest = self.newest_any.entry(symbol).or_insert((i64::MIN, -1));
        let time = trade.trade_time_ms;
        if time > newest.0 || (time == newest.0 && partition < newest.1) {
            *newest = (time, partition);
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
        let newer =
            |t: &LastTrade| trade.id > t.id || (trade.id == t.id && partition < t.partition);
        if self.scan.last.get(&symbol).is_none_or(newer) {
            self.scan.last.insert(
                symbol,
                LastTrade {
                    id: trade.id,
                    trade_time_ms: trade.trade_time_ms,
                    partition,
                    offset,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use pulse_core::{Side, Trade};

    use super::super::{UtcOffset, encode_trade};
    use super::*;

    /// The partitions' steps run at once, so their records come in any
    /// order: what is found must not depend on it, ties included.
    #[test]
    fn what_is_found_does_not_depend_on_the_order_records_come_in() {
        let btc = Symbol::new("BTCUSDT").unwrap();
        let record = |id: u64, time: i64| {
            let trade = Trade {
                symbol: btc,
                id,
                kind: TradeKind::AggTrade,
                price: "61180.1".parse().unwrap(),
                quantity: "0.5".parse().unwrap(),
                side: Side::Sell,
                trade_time_ms: time,
                event_time_ms: time,
                first_trade_id: id,
                last_trade_id: id,
            };
            let mut value = Vec::new();
            encode_trade(&trade, UtcOffset::UTC, &mut value);
            value
        };
        // (partition, offset, value): the same newest trade in partitions
        // 2 and 1 (a copy), an older one in 0.
        let records = [
            (2, 40, record(9, 2_000)),
            (1, 7, record(9, 2_000)),
            (0, 3, record(8, 1_000)),
        ];
        let wanted = BTreeSet::from([btc]);
        let mut results = Vec::new();
        for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2], [2, 0, 1]] {
            let mut scan = ResumeScan::default();
            let mut found = Found {
                wanted: &wanted,
                kind: TradeKind::AggTrade,
                scan: &mut scan,
                newest_any: BTreeMap::new(),
            };
            for i in order {
                let (partition, offset, value) = &records[i];
                found.observe(*partition, *offset, Some(value));
            }
            let newest_any = found.newest_any.clone();
            results.push((scan, newest_any));
        }
        let (scan, newest_any) = &results[0];
        let last = scan.last[&btc];
        assert_eq!((last.id, last.partition, last.offset), (9, 1, 7));
        assert_eq!(newest_any[&btc], (2_000, 1));
        for other in &results[1..] {
            assert_eq!(other, &results[0]);
        }
    }
}
