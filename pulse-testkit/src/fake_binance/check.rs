//! Assertions for tests that feed a client from the fake.

use std::collections::BTreeMap;
use std::time::Duration;

use pulse_core::{Symbol, Trade};
use pulse_io::TradeSource;

/// Reads from `source` until it has handed out at least `want` trades.
///
/// # Panics
/// When `within` passes first (naming how many arrived), or the source
/// fails or ends.
pub async fn collect_trades(
    source: &mut dyn TradeSource,
    want: usize,
    within: Duration,
) -> Vec<Trade> {
    let deadline = tokio::time::Instant::now() + within;
    let mut got = Vec::with_capacity(want);
    while got.len() < want {
        let mut batch = Vec::new();
        match tokio::time::timeout_at(deadline, source.next_trades(&mut batch)).await {
            Err(_) => panic!(
                "timed out after {within:?} with {} of {want} trades",
                got.len()
            ),
            Ok(Err(e)) => panic!("source failed after {} trades: {e}", got.len()),
            Ok(Ok(more)) => {
                got.extend(batch);
                assert!(
                    more || got.len() >= want,
                    "source ended after {} of {want} trades",
                    got.len()
                );
            }
        }
    }
    got
}

/// What must survive the trip: everything but the event time, which REST
/// backfill cannot know (backfilled trades carry `E = T`).
type Key = (u64, i64, i64, pulse_core::Side, i64, u64, u64);

fn by_symbol(trades: &[Trade]) -> BTreeMap<Symbol, Vec<Key>> {
    let mut map: BTreeMap<Symbol, Vec<Key>> = BTreeMap::new();
    for t in trades {
        map.entry(t.symbol).or_default().push((
            t.id,
            t.price.raw(),
            t.quantity.raw(),
            t.side,
            t.trade_time_ms,
            t.first_trade_id,
            t.last_trade_id,
        ));
    }
    map
}

/// Panics unless `got` holds exactly the trades of `recorded`: none missing,
/// none duplicated, in id order per symbol, every field equal except the
/// event time. The order across symbols is free.
pub fn assert_same_trades(recorded: &[Trade], got: &[Trade]) {
    let want = by_symbol(recorded);
    let got = by_symbol(got);
    let symbols = |m: &BTreeMap<Symbol, Vec<Key>>| m.keys().copied().collect::<Vec<_>>();
    assert_eq!(symbols(&got), symbols(&want), "symbols differ");
    for (symbol, want) in &want {
        let got = &got[symbol];
        if got == want {
            continue;
        }
        let first_diff = want
            .iter()
            .zip(got)
            .position(|(w, g)| w != g)
            .unwrap_or(want.len().min(got.len()));
        panic!(
            "{symbol}: expected {} trades, got {}; first difference at #{first_diff}: expected {:?}, got {:?}",
            want.len(),
            got.len(),
            want.get(first_diff),
            got.get(first_diff)
        );
    }
}
