//! Which partition a symbol's trades go to.
//!
//! The same rule as Kafka's default partitioner for keyed records:
//! `(murmur2(key) & 0x7fffffff) % partitions`, with the key being the symbol's
//! UTF-8 bytes. So a Java, librdkafka (`murmur2_random`) or Redpanda client
//! producing with key = symbol picks the same partition as pulse, and all of
//! one symbol's trades stay in one partition, in order.
//!
//! That rule alone moves a symbol when the topic gains partitions, and a
//! consumer would then see its trades as two streams. So the producer keeps
//! a symbol where its records already are ([`Placement`], filled from the
//! resume scan): the hash decides only for symbols new to the topic.

use std::collections::BTreeMap;

use pulse_core::Symbol;

/// The partition for `symbol` among `partitions` (which must be positive).
///
/// ```
/// use pulse_core::Symbol;
/// use pulse_io::kafka::partition_for;
/// let btc = Symbol::new("BTCUSDT").unwrap();
/// assert_eq!(partition_for(&btc, 1), 0);
/// assert!((0..3).contains(&partition_for(&btc, 3)));
/// ```
pub fn partition_for(symbol: &Symbol, partitions: i32) -> i32 {
    debug_assert!(partitions > 0);
    let positive = murmur2(symbol.as_str().as_bytes()) & 0x7fff_ffff;
    positive % partitions.max(1)
}

/// Which partition each symbol's trades go to: where its records already
/// are (pinned), else [`partition_for`] over the topic's partitions now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    partitions: i32,
    pinned: BTreeMap<Symbol, i32>,
}

impl Placement {
    /// The plain murmur2 rule over `partitions` (at least 1).
    pub fn new(partitions: i32) -> Self {
        Placement {
            partitions: partitions.max(1),
            pinned: BTreeMap::new(),
        }
    }

    /// Keeps `symbol` on `partition`, where its records already are.
    /// Returns false, and changes nothing, for a partition the topic does
    /// not have.
    pub fn pin(&mut self, symbol: Symbol, partition: i32) -> bool {
        if !(0..self.partitions).contains(&partition) {
            return false;
        }
        self.pinned.insert(symbol, partition);
        true
    }

    /// The partition for `symbol`.
    ///
    /// ```
    /// use pulse_core::Symbol;
    /// use pulse_io::kafka::{Placement, partition_for};
    /// let btc = Symbol::new("BTCUSDT").unwrap();
    /// let mut placement = Placement::new(3);
    /// assert_eq!(placement.partition(&btc), partition_for(&btc, 3));
    /// // Written to partition 0 while the topic had one partition:
    /// placement.pin(btc, 0);
    /// assert_eq!(placement.partition(&btc), 0);
    /// ```
    pub fn partition(&self, symbol: &Symbol) -> i32 {
        match self.pinned.get(symbol) {
            Some(&partition) => partition,
            None => partition_for(symbol, self.partitions),
        }
    }

    /// Symbols kept on a partition other than the hash names today.
    pub fn moved(&self) -> impl Iterator<Item = (Symbol, i32)> + '_ {
        self.pinned
            .iter()
            .filter(|(s, p)| partition_for(s, self.partitions) != **p)
            .map(|(s, p)| (*s, *p))
    }
}

/// Kafka's 32-bit murmur2 (seed `0x9747b28c`), as in
/// `org.apache.kafka.common.utils.Utils.murmur2`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_kafka_test_vectors() {
        // From Apache Kafka's UtilsTest.testMurmur2.
        let cases: [(&str, i32); 6] = [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
        ];
        for (input, hash) in cases {
            assert_eq!(murmur2(input.as_bytes()), hash, "{input}");
        }
    }

    #[test]
    fn pinned_symbols_stay_where_their_records_are() {
        let btc = Symbol::new("BTCUSDT").unwrap();
        let sand = Symbol::new("SANDUSDT").unwrap();
        // The topic grew from 1 to 3 partitions: BTCUSDT's records are in 0.
        let mut placement = Placement::new(3);
        assert_eq!(placement.partition(&btc), 2);
        assert!(placement.pin(btc, 0));
        assert!(!placement.pin(sand, 3), "no such partition");
        assert_eq!(placement.partition(&btc), 0);
        assert_eq!(placement.partition(&sand), 0, "new symbols hash");
        assert_eq!(placement.moved().collect::<Vec<_>>(), [(btc, 0)]);
        assert!(placement.pin(btc, 2));
        assert_eq!(placement.moved().count(), 0);
    }

    #[test]
    fn symbols_spread_and_stay_put() {
        // Pinned: changing the rule would move symbols between partitions
        // of existing topics.
        let cases = [
            ("BTCUSDT", 2),
            ("ETHUSDT", 2),
            ("NEOUSDT", 1),
            ("SANDUSDT", 0),
            ("CTKUSDT", 2),
            ("BATUSDT", 1),
            ("CHRUSDT", 0),
        ];
        for (symbol, partition) in cases {
            assert_eq!(
                partition_for(&Symbol::new(symbol).unwrap(), 3),
                partition,
                "{symbol}"
            );
            assert_eq!(partition_for(&Symbol::new(symbol).unwrap(), 1), 0);
        }
    }
}
