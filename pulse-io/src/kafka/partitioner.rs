//! Which partition a symbol's trades go to.
//!
//! The same rule as Kafka's default partitioner for keyed records:
//! `(murmur2(key) & 0x7fffffff) % partitions`, with the key being the symbol's
//! UTF-8 bytes. So a Java, librdkafka (`murmur2_random`) or Redpanda client
//! producing with key = symbol picks the same partition as pulse, and all of
//! one symbol's trades stay in one partition, in order.

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
