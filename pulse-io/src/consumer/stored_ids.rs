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

use foldhash::HashMap;
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

    /// Adds one window's ids, in any order.
    pub(crate) fn extend(
        &mut self,
        symbol: Symbol,
        ids: impl IntoIterator<Item = (TradeKind, u64)>,
    ) {
        let mut ids: Vec<(TradeKind, u64)> = ids.into_iter().collect();
        ids.sort_unstable_by_key(|&(kind, id)| (kind as u8, id));
        let mut runs = ids.into_iter().peekable();
        while let Some((kind, first)) = runs.next() {
            let mut last = first;
            while let Some(&(k, id)) = runs.peek() {
                if k != kind || id > last.saturating_add(1) {
                    break;
                }
                last = id;
                runs.next();
            }
            let ranges = self.ranges.entry((symbol, kind)).or_default();
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

    #[test]
    fn windows_merge_into_ranges_by_id_space() {
        let mut stored = StoredIds::default();
        stored.extend(btc(), [(AggTrade, 12), (AggTrade, 10), (AggTrade, 11)]);
        stored.extend(btc(), [(AggTrade, 14), (AggTrade, 13)]);
        stored.extend(btc(), [(AggTrade, 20), (Trade, 5)]);
        let ranges: Vec<_> = stored.ranges[&(btc(), AggTrade)].iter().collect();
        assert_eq!(ranges, [(&10, &14), (&20, &20)]);
        for (id, known) in [(9, false), (10, true), (14, true), (15, false), (20, true)] {
            assert_eq!(stored.contains(btc(), AggTrade, id), known, "{id}");
        }
        assert!(stored.contains(btc(), Trade, 5));
        assert!(!stored.contains(btc(), Trade, 12), "another id space");
        let eth = Symbol::new("ETHUSDT").unwrap();
        assert!(!stored.contains(eth, AggTrade, 12));
        // A window filling the hole joins the two ranges.
        stored.extend(btc(), (15..20).map(|id| (AggTrade, id)));
        let ranges: Vec<_> = stored.ranges[&(btc(), AggTrade)].iter().collect();
        assert_eq!(ranges, [(&10, &20)]);
    }

    #[test]
    fn the_oldest_ranges_are_forgotten_beyond_the_bound() {
        let mut stored = StoredIds::default();
        for i in 0..(MAX_RANGES as u64 + 3) {
            stored.extend(btc(), [(AggTrade, 10 * i), (AggTrade, 10 * i + 1)]);
        }
        assert_eq!(stored.ranges[&(btc(), AggTrade)].len(), MAX_RANGES);
        assert!(!stored.contains(btc(), AggTrade, 21));
        assert!(stored.contains(btc(), AggTrade, 31));
        assert!(stored.contains(btc(), AggTrade, 10 * (MAX_RANGES as u64 + 2) + 1));
    }

    #[test]
    fn ids_at_the_top_of_the_range_do_not_overflow() {
        let mut stored = StoredIds::default();
        stored.extend(btc(), [(AggTrade, u64::MAX), (AggTrade, u64::MAX - 1)]);
        stored.extend(btc(), [(AggTrade, 0)]);
        assert!(stored.contains(btc(), AggTrade, u64::MAX));
        assert!(stored.contains(btc(), AggTrade, 0));
        assert!(!stored.contains(btc(), AggTrade, 1));
    }
}
