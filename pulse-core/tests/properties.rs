//! Properties of the engine over generated trades.

use std::collections::BTreeMap;

use proptest::prelude::*;
use pulse_core::{
    Aggregator, AggregatorConfig, Decimal, Event, LatePolicy, Side, Signal, Symbol, Trade,
    TradeKind, WatermarkPolicy, Window,
};

const LATENESS: i64 = 2_000;

fn symbol(i: u8) -> Symbol {
    Symbol::new(["BTCUSDT", "ETHUSDT", "NEOUSDT"][i as usize % 3]).unwrap()
}

/// Trades with per-symbol contiguous ids, times non-decreasing per symbol,
/// now and then after a quiet spell longer than the outlier check's jump.
fn trades() -> impl Strategy<Value = Vec<Trade>> {
    prop::collection::vec(
        (
            0u8..3,
            prop_oneof![20 => 0i64..700, 1 => 60_001i64..600_000],
            1i64..2_000_000,
            1i64..500_000_000,
            any::<bool>(),
        ),
        1..300,
    )
    .prop_map(|specs| {
        let mut next_id: BTreeMap<Symbol, u64> = BTreeMap::new();
        let mut clock: BTreeMap<Symbol, i64> = BTreeMap::new();
        specs
            .into_iter()
            .map(|(s, dt, price, qty, m)| {
                let sym = symbol(s);
                let id = next_id.entry(sym).or_insert(100);
                *id += 1;
                let t = clock.entry(sym).or_insert(1_700_000_000_000);
                *t += dt;
                Trade {
                    symbol: sym,
                    id: *id,
                    kind: TradeKind::AggTrade,
                    price: Decimal::from_raw(price * 1_000),
                    quantity: Decimal::from_raw(qty),
                    side: Side::from_buyer_is_maker(m),
                    trade_time_ms: *t,
                    event_time_ms: *t,
                    first_trade_id: *id,
                    last_trade_id: *id,
                }
            })
            .collect()
    })
}

fn run(trades: &[Trade]) -> (Vec<Window>, u64) {
    let (windows, late, outliers) = run_counting(trades);
    assert!(
        outliers.is_empty(),
        "no generated time is wrong: {outliers:?}"
    );
    (windows, late)
}

/// The windows, late trades and ids of time outliers of a replay.
fn run_counting(trades: &[Trade]) -> (Vec<Window>, u64, Vec<u64>) {
    let mut agg = Aggregator::new(AggregatorConfig::default()).unwrap();
    let mut windows = Vec::new();
    let mut late = 0;
    let mut outliers = Vec::new();
    for t in trades {
        agg.handle_trade(*t);
    }
    agg.flush();
    while let Some(e) = agg.poll() {
        match e {
            Event::Window(w) => windows.push(w),
            Event::Late(_) => late += 1,
            Event::Gap { .. } => {}
            Event::Rejected(r) => panic!("generated trades fit: {r:?}"),
            Event::TimeOutlier(o) => outliers.push(o.trade.id),
        }
    }
    windows.sort_by_key(|w| (w.symbol, w.start_ms));
    (windows, late, outliers)
}

/// Reorders so that no trade arrives after one more than `LATENESS` newer:
/// sort by trade time plus a jitter in [0, LATENESS].
fn shuffle_within_lateness(trades: &[Trade], jitter: &[i64]) -> Vec<Trade> {
    let mut keyed: Vec<(i64, usize, Trade)> = trades
        .iter()
        .enumerate()
        .map(|(i, t)| (t.trade_time_ms + jitter[i % jitter.len()], i, *t))
        .collect();
    keyed.sort_by_key(|(k, i, _)| (*k, *i));
    keyed.into_iter().map(|(_, _, t)| t).collect()
}

/// Live delivery in simulated time: each trade arrives `delay` ms after its
/// trade time on a caller clock `offset` ms away from the exchange's, in id
/// order per symbol (as the lanes release them), with `advance` called
/// whenever `poll_timeout` is due. Returns the newest version of each window.
fn run_live(trades: &[Trade], delays: &[i64], offset: i64) -> Vec<Window> {
    let config = AggregatorConfig {
        late_policy: LatePolicy::Reemit,
        ..AggregatorConfig::default()
    };
    let mut last_arrival: BTreeMap<Symbol, i64> = BTreeMap::new();
    let arrivals = trades.iter().enumerate().map(|(i, t)| {
        let at = t.trade_time_ms + offset + delays[i % delays.len()];
        let prev = last_arrival.entry(t.symbol).or_insert(at);
        *prev = (*prev).max(at);
        *prev
    });
    run_arrivals(config, trades, arrivals.collect()).0
}

/// Feeds `trades[i]` at caller time `arrivals[i]`, in arrival order, calling
/// `advance` whenever `poll_timeout` is due; returns the newest version of
/// each window and the trades found late.
fn run_arrivals(
    config: AggregatorConfig,
    trades: &[Trade],
    arrivals: Vec<i64>,
) -> (Vec<Window>, u64) {
    let mut agg = Aggregator::new(config).unwrap();
    let mut arrivals: Vec<(i64, usize, Trade)> = arrivals
        .into_iter()
        .zip(trades)
        .enumerate()
        .map(|(i, (at, t))| (at, i, *t))
        .collect();
    arrivals.sort_by_key(|(at, i, _)| (*at, *i));
    let mut newest: BTreeMap<(Symbol, i64), Window> = BTreeMap::new();
    let mut late = 0;
    let mut keep = |agg: &mut Aggregator| {
        while let Some(e) = agg.poll() {
            match e {
                Event::Window(w) => {
                    let slot = newest
                        .entry((w.symbol, w.start_ms))
                        .or_insert_with(|| w.clone());
                    assert!(w.version >= slot.version, "versions only grow");
                    *slot = w;
                }
                Event::Late(_) => late += 1,
                _ => {}
            }
        }
    };
    for (at, _, trade) in arrivals {
        let mut last_due = None;
        while let Some(due) = agg.poll_timeout().filter(|due| *due <= at) {
            // A caller sleeping until `due` would otherwise spin.
            assert_ne!(
                Some(due),
                last_due,
                "advance({due}) left poll_timeout where it was"
            );
            last_due = Some(due);
            agg.advance(due);
            keep(&mut agg);
        }
        agg.handle_trade_at(trade, at);
        keep(&mut agg);
    }
    agg.flush();
    keep(&mut agg);
    (newest.into_values().collect(), late)
}

proptest! {
    #[test]
    fn live_timing_and_clock_offsets_do_not_change_the_final_rows(
        trades in trades(),
        delays in prop::collection::vec(0i64..1_500, 1..50),
        offset in -400_000_000_000i64..400_000_000_000,
    ) {
        let (replayed, _) = run(&trades);
        let live = run_live(&trades, &delays, offset);
        prop_assert_eq!(replayed.len(), live.len());
        for (a, b) in replayed.iter().zip(&live) {
            let b = Window { version: a.version, ..b.clone() };
            prop_assert_eq!(a.vwap.to_bits(), b.vwap.to_bits());
            prop_assert_eq!(a, &b);
        }
    }

    /// Input in any order, each trade delayed less than the lateness: under
    /// the lateness policy nothing is late live either.
    #[test]
    fn live_delivery_out_of_order_within_the_lateness_changes_no_row(
        trades in trades(),
        delays in prop::collection::vec(0i64..LATENESS, 1..50),
        offset in -400_000_000_000i64..400_000_000_000,
    ) {
        let (replayed, _) = run(&trades);
        let config = AggregatorConfig {
            watermark: WatermarkPolicy::Lateness,
            ..AggregatorConfig::default()
        };
        let arrivals = trades
            .iter()
            .enumerate()
            .map(|(i, t)| t.trade_time_ms + offset + delays[i % delays.len()])
            .collect();
        let (live, late) = run_arrivals(config, &trades, arrivals);
        prop_assert_eq!(late, 0);
        prop_assert_eq!(replayed, live);
    }

    /// In id order or not, `advance` at `poll_timeout` always gets on (no
    /// caller spins), and every trade is in a window or counted late.
    #[test]
    fn live_delivery_in_any_order_loses_no_trade_uncounted(
        trades in trades(),
        delays in prop::collection::vec(0i64..3 * LATENESS, 1..50),
        offset in -400_000_000_000i64..400_000_000_000,
    ) {
        let arrivals = trades
            .iter()
            .enumerate()
            .map(|(i, t)| t.trade_time_ms + offset + delays[i % delays.len()])
            .collect();
        let (live, late) = run_arrivals(AggregatorConfig::default(), &trades, arrivals);
        let counted: u64 = live.iter().map(|w| w.trade_count).sum();
        prop_assert_eq!(counted + late, trades.len() as u64);
    }

    #[test]
    fn each_trade_lands_in_exactly_one_window(trades in trades()) {
        let (windows, late) = run(&trades);
        prop_assert_eq!(late, 0);
        for t in &trades {
            let holding = windows
                .iter()
                .filter(|w| w.symbol == t.symbol && w.start_ms <= t.trade_time_ms && t.trade_time_ms < w.end_ms)
                .count();
            prop_assert_eq!(holding, 1);
        }
        let counted: u64 = windows.iter().map(|w| w.trade_count).sum();
        prop_assert_eq!(counted, trades.len() as u64);
    }

    #[test]
    fn window_volumes_sum_to_input_volume(trades in trades()) {
        let (windows, _) = run(&trades);
        let input: i128 = trades.iter().map(|t| t.quantity.raw() as i128).sum();
        let output: i128 = windows.iter().map(|w| w.volume.raw()).sum();
        prop_assert_eq!(input, output);
    }

    #[test]
    fn reordering_within_lateness_gives_identical_rows(
        trades in trades(),
        jitter in prop::collection::vec(0i64..=LATENESS, 1..50),
    ) {
        let (ordered, _) = run(&trades);
        let (shuffled, late) = run(&shuffle_within_lateness(&trades, &jitter));
        prop_assert_eq!(late, 0);
        prop_assert_eq!(ordered.len(), shuffled.len());
        for (a, b) in ordered.iter().zip(&shuffled) {
            // Bit-identical, not merely close.
            prop_assert_eq!(a.vwap.to_bits(), b.vwap.to_bits());
            prop_assert_eq!(a.avg_price_1_sec.to_bits(), b.avg_price_1_sec.to_bits());
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn vwap_and_average_lie_between_low_and_high(trades in trades()) {
        for w in run(&trades).0 {
            prop_assert!(w.low.to_f64() <= w.vwap && w.vwap <= w.high.to_f64(), "{:?}", w);
            prop_assert!(w.low.to_f64() <= w.avg_price_1_sec && w.avg_price_1_sec <= w.high.to_f64(), "{:?}", w);
        }
    }

    #[test]
    fn buy_plus_sell_volume_is_total_volume(trades in trades()) {
        for w in run(&trades).0 {
            prop_assert_eq!(w.buy_volume.raw() + w.sell_volume.raw(), w.volume.raw());
            prop_assert_eq!(w.total_volume, w.volume.to_f64());
            prop_assert_eq!(w.net_delta, w.exact_net_delta().to_f64());
        }
    }

    #[test]
    fn signal_follows_the_rules(trades in trades()) {
        let (windows, _) = run(&trades);
        for w in windows {
            let inside: Vec<&Trade> = trades
                .iter()
                .filter(|t| t.symbol == w.symbol && w.start_ms <= t.trade_time_ms && t.trade_time_ms < w.end_ms)
                .collect();
            // Exact comparison of avg = Σp/n with vwap = Σpq/Σq, in rationals.
            let n = inside.len() as i128;
            let sum_p: i128 = inside.iter().map(|t| t.price.raw() as i128).sum();
            let sum_q: i128 = inside.iter().map(|t| t.quantity.raw() as i128).sum();
            let sum_pq: i128 = inside.iter().map(|t| t.price.raw() as i128 * t.quantity.raw() as i128).sum();
            let delta: i128 = inside
                .iter()
                .map(|t| if t.side == Side::Buy { 1 } else { -1 } * t.quantity.raw() as i128)
                .sum();
            prop_assert_eq!(w.exact_net_delta().raw(), delta);
            let delta: i128 = inside
                .iter()
                .map(|t| if t.side == Side::Buy { t.quantity.raw() as i128 } else { -(t.quantity.raw() as i128) })
                .sum();
            let avg = sum_p * sum_q;
            let vwap = sum_pq * n;
            let expected = if avg > vwap && delta > 0 {
                Signal::StrongBuy
            } else if avg < vwap && delta < 0 {
                Signal::StrongSell
            } else if avg < vwap && delta > 0 {
                Signal::Accumulating
            } else if avg > vwap && delta < 0 {
                Signal::Distributing
            } else {
                Signal::Neutral
            };
            prop_assert_eq!(w.signal, expected);
        }
    }

    #[test]
    fn one_wrong_time_far_ahead_costs_only_its_own_trade(
        trades in trades(),
        pick in any::<prop::sample::Index>(),
        ahead in 60_001i64..400_000_000_000,
    ) {
        // A trade with a later trade of its symbol: its symbol's first, or
        // the very first of all, too.
        let followed: Vec<usize> = (0..trades.len())
            .filter(|&i| trades[i + 1..].iter().any(|t| t.symbol == trades[i].symbol))
            .collect();
        prop_assume!(!followed.is_empty());
        let k = followed[pick.index(followed.len())];
        let s = trades[k].symbol;
        let newest = trades[..k].iter().map(|t| t.trade_time_ms).max().unwrap_or(i64::MIN);
        let next = trades[k + 1..].iter().find(|t| t.symbol == s).unwrap();
        // Far ahead of every clock and of the next trade: refutable.
        let wrong = newest.max(next.trade_time_ms) + ahead;
        let mut corrupted = trades.clone();
        corrupted[k].trade_time_ms = wrong;
        corrupted[k].event_time_ms = wrong;
        let without: Vec<Trade> = trades.iter().enumerate().filter(|(i, _)| *i != k).map(|(_, t)| *t).collect();
        let (got, late, outliers) = run_counting(&corrupted);
        prop_assert_eq!(late, 0);
        prop_assert_eq!(outliers, vec![trades[k].id]);
        prop_assert_eq!(got, run(&without).0);
    }

    #[test]
    fn duplicates_are_never_double_counted(trades in trades(), dup_every in 1usize..10) {
        let mut with_dups = Vec::new();
        for (i, t) in trades.iter().enumerate() {
            with_dups.push(*t);
            if i % dup_every == 0 {
                with_dups.push(*t);
            }
        }
        prop_assert_eq!(run(&with_dups).0, run(&trades).0);
    }
}
