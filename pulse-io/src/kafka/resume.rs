//! Where a restarted producer left off: the last trade of each symbol
//! already on the topic.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use pulse_core::Symbol;
use rskafka::client::Client;
use rskafka::client::partition::OffsetAt;

use super::{
    FetchConfig, KafkaError, PartitionReader, decode_trade, partition_for, topic_partitions,
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

/// Finds the highest trade id of each of `symbols` on `topic`.
///
/// Each symbol's partition (by [`partition_for`]) is read backwards from its
/// end in growing steps until every symbol of that partition is found, the
/// start is reached, or `scan_limit` records were read. A symbol not found
/// is absent from the result: it starts fresh. A missing topic gives an
/// empty map.
///
/// The end is found by reading until a fetch comes back empty rather than by
/// trusting the broker's reported end offset (tansu's in-memory storage
/// under-reports it after batched produces).
pub async fn last_trades_on_topic(
    client: &Client,
    topic: &str,
    symbols: &[Symbol],
    scan_limit: u64,
) -> Result<BTreeMap<Symbol, LastTrade>, KafkaError> {
    let Some(partitions) = topic_partitions(client, topic).await? else {
        return Ok(BTreeMap::new());
    };
    let count = partitions.len() as i32;
    let mut wanted: BTreeMap<i32, BTreeSet<Symbol>> = BTreeMap::new();
    for symbol in symbols {
        wanted
            .entry(partition_for(symbol, count))
            .or_default()
            .insert(*symbol);
    }
    let mut found = BTreeMap::new();
    for (partition, symbols) in wanted {
        scan_partition(client, topic, partition, &symbols, scan_limit, &mut found).await?;
    }
    Ok(found)
}

async fn scan_partition(
    client: &Client,
    topic: &str,
    partition: i32,
    symbols: &BTreeSet<Symbol>,
    scan_limit: u64,
    found: &mut BTreeMap<Symbol, LastTrade>,
) -> Result<(), KafkaError> {
    let config = FetchConfig {
        max_bytes: 1 << 20,
        // At the end of the partition an empty answer should come quickly.
        max_wait: Duration::from_millis(10),
    };
    let mut reader = PartitionReader::open(client, topic, partition, None, config).await?;
    let earliest = reader.next_offset();
    let reported_end = reader.offset_at(OffsetAt::Latest).await?.max(earliest);
    let mut step: i64 = 1_000;
    let mut start = (reported_end - step).max(earliest);
    let mut stop: Option<i64> = None; // None: read to the real end
    let mut scanned: u64 = 0;
    loop {
        reader = PartitionReader::open(client, topic, partition, Some(start), config).await?;
        loop {
            let records = reader.fetch().await?;
            if records.is_empty() {
                break;
            }
            for record in records {
                if stop.is_some_and(|s| record.offset >= s) {
                    break;
                }
                scanned += 1;
                let Some(value) = record.value.as_deref() else {
                    continue;
                };
                let Ok(trade) = decode_trade(value) else {
                    continue;
                };
                if !symbols.contains(&trade.symbol) {
                    continue;
                }
                let newer = found.get(&trade.symbol).is_none_or(|t| trade.id > t.id);
                if newer {
                    found.insert(
                        trade.symbol,
                        LastTrade {
                            id: trade.id,
                            trade_time_ms: trade.trade_time_ms,
                            partition,
                            offset: record.offset,
                        },
                    );
                }
            }
            if stop.is_some_and(|s| reader.next_offset() >= s) {
                break;
            }
        }
        let all_found = symbols.iter().all(|s| found.contains_key(s));
        if all_found || start <= earliest || scanned >= scan_limit {
            return Ok(());
        }
        stop = Some(start);
        step = step.saturating_mul(2);
        start = (start - step).max(earliest);
    }
}
