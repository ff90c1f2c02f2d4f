//! Ids of trades in windows that can no longer change, per symbol and id
//! space, kept as ranges. A copy of such a trade read again (a capture
//! produced twice, say) is then known as a duplicate, not counted as a late
//! trade too late to correct, which would read as a trade lost.
//!
//! Binance ids are contiguous per symbol, so a symbol's ids collapse into a
//! range or a few. The oldest ranges are forgotten beyond a bound. Only this
//! run's windows are known: a copy read after a restart, of a trade stored
//! before it, is still counted late. Either way no row changes.

use std::collections::BTreeMap;

use foldhash::{HashMap, HashSet};
use pulse_core::{Symbol, TradeKind};

/// Ranges kept per symbol and id space; the lowest ids go first.
const MAX_RANGES: usize = 64;

/// Inclusive id ranges, by first id.
type Ranges = BTreeMap<u64, u64>;

#[derive(Debug, Default)]
pub(crate) struct StoredIds {
    ranges: HashMap<(Symbol, TradeKind), Ranges>,
}

impl StoredIds {
    /// True when a trade with this id is in a window that can no longer change.
    pub(crate) fn contains(&self, symbol: Symbol, kind: TradeKind, id: u64) -> bool {
        self.ranges
            .get(&(symbol, kind))
            .and_then(|ranges| ranges.range(..=id).next_back())
            .is_some_and(|(_, last)| id <= *last)
    }

    /// Adds one window's ids of one id space.
    pub(crate) fn extend(&mut self, symbol: Symbol, kind: TradeKind, ids: &HashSet<u64>) {
        let (Some(&min), Some(&max)) = (ids.iter().min(), ids.iter().max()) else {
            return;
        };
        let ranges = self.ranges.entry((symbol, kind)).or_default();
        // A window's ids are one run as a rule: no sorting then.
        if max - min == ids.len() as u64 - 1 {
            insert(ranges, min, max);
            return;
        }
        let mut sorted: Vec<u64> = ids.iter().copied().collect();
        sorted.sort_unstable();
        let mut runs = sorted.into_iter().peekable();
        while let Some(first) = runs.next() {
            let mut last = first;
            while let Some(id) = runs.next_if(|&id| id == last + 1) {
                last = id;
            }
            insert(ranges, first, last);
        }
    }
}

/// Adds `first..=last`, merged with the ranges it touches or overlaps.
fn insert(ranges: &mut Ranges, mut first: u64, mut last: u64) {
    while let Some((&start, &end)) = ranges.range(..=last.saturating_add(1)).next_back() {
        if end.saturating_add(1) < first {
            break;
        }
        ranges.remove(&start);
        first = first.min(start);
        last = last.max(end);
    }
    ranges.insert(first, last);
    if ranges.len() > MAX_RANGES {
        ranges.pop_first();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use TradeKind::{AggTrade, Trade};

    fn btc() -> Symbol {
        Symbol::new("BTCUSDT").unwrap()
    }

    fn ids(ids: impl IntoIterator<Item = u64>) -> HashSet<u64> {
        ids.into_iter().collect()
    }

    fn ranges(stored: &StoredIds, kind: TradeKind) -> Vec<(u64, u64)> {
        let ranges = &stored.ranges[&(btc(), kind)];
        ranges.iter().map(|(a, b)| (*a, *b)).collect()
    }

    #[test]
    fn windows_merge_into_ranges_by_id_space() {
        let mut stored = StoredIds::default();
        stored.extend(btc(), AggTrade, &ids([12, 10, 11]));
        stored.extend(btc(), AggTrade, &ids([14, 13]));
        stored.extend(btc(), AggTrade, &ids([20, 22, 23]));
        stored.extend(btc(), Trade, &ids([5]));
        stored.extend(btc(), Trade, &ids([]));
        assert_eq!(ranges(&stored, AggTrade), [(10, 14), (20, 20), (22, 23)]);
        for (id, known) in [(9, false), (10, true), (14, true), (15, false), (21, false)] {
            assert_eq!(stored.contains(btc(), AggTrade, id), known, "{id}");
        }
        assert!(stored.contains(btc(), Trade, 5));
        assert!(!stored.contains(btc(), Trade, 12), "another id space");
        let eth = Symbol::new("ETHUSDT").unwrap();
        assert!(!stored.contains(eth, AggTrade, 12));
        // A window filling the holes joins the ranges.
        stored.extend(btc(), AggTrade, &ids([15, 16, 17, 18, 19, 21]));
        assert_eq!(ranges(&stored, AggTrade), [(10, 23)]);
    }

    #[test]
    fn the_oldest_ranges_are_forgotten_beyond_the_bound() {
        let mut stored = StoredIds::default();
        for i in 0..(MAX_RANGES as u64 + 3) {
            stored.extend(btc(), AggTrade, &ids([10 * i, 10 * i + 1]));
        }
        assert_eq!(ranges(&stored, AggTrade).len(), MAX_RANGES);
        assert!(!stored.contains(btc(), AggTrade, 21));
        assert!(stored.contains(btc(), AggTrade, 31));
        assert!(stored.contains(btc(), AggTrade, 10 * (MAX_RANGES as u64 + 2) + 1));
    }

    #[test]
    fn ids_at_the_top_of_the_range_do_not_overflow() {
        let mut stored = StoredIds::default();
        stored.extend(btc(), AggTrade, &ids([u64::MAX, u64::MAX - 1]));
        stored.extend(btc(), AggTrade, &ids([0, u64::MAX - 3]));
        assert_eq!(
            ranges(&stored, AggTrade),
            [
                (0, 0),
                (u64::MAX - 3, u64::MAX - 3),
                (u64::MAX - 1, u64::MAX)
            ]
        );
    }
}
