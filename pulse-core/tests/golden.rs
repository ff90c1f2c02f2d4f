//! Every real capture in ../shared/data through the engine, checked against a
//! straightforward independent computation: per-window trade counts and exact
//! volumes, with the late trades recomputed from the watermark rule.

mod common;

use std::collections::BTreeMap;

use pulse_core::{Aggregator, AggregatorConfig, Event, Frame, parse_frame};

/// Frame counts from ../shared/data/README.md.
const EXPECTED_FRAMES: &[(&str, usize)] = &[
    ("binance-usdm_btcusdt@trade_2023-04-04T235820Z", 12_935),
    ("binance-usdm_btcusdt@trade_2024-07-18T235702Z", 10_701),
    ("binance-usdm_btcusdt@trade_2024-08-08T235416Z", 21_313),
    ("binance-spot_btcusdt@trade_2024-08-08T235415Z", 19_904),
    ("binance-spot_btcusdt@trade_2023-04-04T235959Z", 3_144),
    ("binance-usdm_altcoins@aggTrade_2021-04-05", 574),
    ("binance-usdm_altcoins@aggTrade_2021-07-22", 91),
    ("binance-spot_mixed@aggTrade_2021-04-05", 1_240),
];

#[derive(Debug, Default, PartialEq, Eq)]
struct Expected {
    count: u64,
    volume: i128,
    buy_volume: i128,
}

#[test]
fn every_capture_matches_an_independent_computation() {
    let Some(dir) = common::data_dir() else {
        return;
    };
    let files = common::captures(&dir);
    assert_eq!(
        files.len(),
        EXPECTED_FRAMES.len(),
        "captures in {}",
        dir.display()
    );
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let frames = common::lines(&path);
        let expected_frames = EXPECTED_FRAMES
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix))
            .unwrap_or_else(|| panic!("unexpected capture {name}"))
            .1;
        let trades: Vec<_> = frames
            .iter()
            .filter_map(|f| match parse_frame(f) {
                Ok(Frame::Trade(t)) => Some(t),
                Ok(Frame::Ack { .. }) => None,
                Err(e) => panic!("{name}: {e}: {}", String::from_utf8_lossy(f)),
            })
            .collect();
        assert_eq!(trades.len(), expected_frames, "{name}");

        // Independent: watermark per symbol = max T so far − 2000; a trade is
        // late when its window [s, s+1000) ends at or before that.
        let mut max_t: BTreeMap<String, i64> = BTreeMap::new();
        let mut expected: BTreeMap<(String, i64), Expected> = BTreeMap::new();
        let mut expected_late = 0u64;
        for t in &trades {
            let sym = t.symbol.as_str().to_string();
            let start = t.trade_time_ms - t.trade_time_ms.rem_euclid(1000);
            let mt = max_t.entry(sym.clone()).or_insert(i64::MIN);
            if *mt != i64::MIN && start + 1000 <= *mt - 2000 {
                expected_late += 1;
                continue;
            }
            *mt = (*mt).max(t.trade_time_ms);
            let e = expected.entry((sym, start)).or_default();
            e.count += 1;
            e.volume += t.quantity.raw() as i128;
            if t.side == pulse_core::Side::Buy {
                e.buy_volume += t.quantity.raw() as i128;
            }
        }

        let mut agg = Aggregator::new(AggregatorConfig::default()).unwrap();
        let mut got: BTreeMap<(String, i64), Expected> = BTreeMap::new();
        let mut late = 0u64;
        let mut drain = |agg: &mut Aggregator| {
            while let Some(ev) = agg.poll() {
                match ev {
                    Event::Window(w) => {
                        assert_eq!(w.end_ms - w.start_ms, 1000);
                        assert_eq!(w.buy_volume.raw() + w.sell_volume.raw(), w.volume.raw());
                        let prev = got.insert(
                            (w.symbol.as_str().to_string(), w.start_ms),
                            Expected {
                                count: w.trade_count,
                                volume: w.volume.raw(),
                                buy_volume: w.buy_volume.raw(),
                            },
                        );
                        assert!(prev.is_none(), "{name}: window emitted twice: {w:?}");
                    }
                    Event::Late(_) => late += 1,
                    Event::Gap { symbol, missing } => {
                        panic!("{name}: unexpected gap {symbol} {missing:?}")
                    }
                    Event::Rejected(r) => panic!("{name}: real trades fit: {r:?}"),
                    Event::TimeOutlier(o) => panic!("{name}: real trade times agree: {o:?}"),
                }
            }
        };
        for t in &trades {
            agg.handle_trade(*t);
            drain(&mut agg);
        }
        agg.flush();
        drain(&mut agg);

        assert_eq!(late, expected_late, "{name}: late trades");
        assert_eq!(got.len(), expected.len(), "{name}: window count");
        assert_eq!(got, expected, "{name}: per-window counts and volumes");
        let total: u64 = got.values().map(|e| e.count).sum();
        assert_eq!(
            total + late,
            trades.len() as u64,
            "{name}: every trade accounted for"
        );
        assert_eq!(agg.stats().duplicates, 0, "{name}");
    }
}

#[test]
fn the_2023_funding_gap_file_has_its_documented_shape() {
    let Some(dir) = common::data_dir() else {
        return;
    };
    let path =
        dir.join("binance-usdm_btcusdt@trade_2023-04-04T235820Z_2023-04-05T000654Z.jsonl.gz");
    let mut agg = Aggregator::new(AggregatorConfig::default()).unwrap();
    let mut ids = Vec::new();
    for f in common::lines(&path) {
        if let Ok(Frame::Trade(t)) = parse_frame(&f) {
            ids.push(t.id);
            agg.handle_trade(t);
        }
    }
    // Trade ids are contiguous, so the engine reports no gap.
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1));
    agg.flush();
    let mut windows = Vec::new();
    while let Some(e) = agg.poll() {
        assert!(!matches!(e, Event::Gap { .. }));
        if let Event::Window(w) = e {
            windows.push(w);
        }
    }
    // No trades for about 5 s at 00:00 UTC (1680652800000): no windows there.
    let midnight = 1_680_652_800_000;
    assert!(
        !windows
            .iter()
            .any(|w| w.start_ms >= midnight && w.start_ms < midnight + 3_000)
    );
    let total: u64 = windows.iter().map(|w| w.trade_count).sum();
    assert_eq!(total + agg.stats().late_trades, 12_935);
}

/// The busiest capture in file order and again with every trade delayed by
/// a pseudo-random 0–50 s (the correction horizon is 60 s): under
/// `LatePolicy::Reemit` the final rows (each window's last version) are the
/// same. Shuffling this much opens tens of thousands of id gaps at once; a
/// limit of 1024 used to forget real trades' ids and drop them as repeats.
#[test]
fn a_busy_capture_shuffled_within_the_correction_horizon_gives_the_same_rows() {
    let Some(dir) = common::data_dir() else {
        return;
    };
    let path =
        dir.join("binance-usdm_btcusdt@trade_2024-08-08T235416Z_2024-08-08T235959Z.jsonl.gz");
    let trades: Vec<pulse_core::Trade> = common::lines(&path)
        .iter()
        .filter_map(|f| match parse_frame(f) {
            Ok(Frame::Trade(t)) => Some(t),
            _ => None,
        })
        .collect();
    // xorshift64: the same order on every run.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut delayed: Vec<(i64, usize)> = trades
        .iter()
        .enumerate()
        .map(|(i, t)| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (t.trade_time_ms + (state % 50_000) as i64, i)
        })
        .collect();
    delayed.sort();
    let shuffled: Vec<pulse_core::Trade> = delayed.iter().map(|&(_, i)| trades[i]).collect();

    let final_rows = |input: &[pulse_core::Trade], max_open_gaps: usize| {
        let config = AggregatorConfig {
            late_policy: pulse_core::LatePolicy::Reemit,
            max_open_gaps,
            ..AggregatorConfig::default()
        };
        let mut agg = Aggregator::new(config).unwrap();
        let mut rows = BTreeMap::new();
        let mut keep = |agg: &mut Aggregator| {
            while let Some(ev) = agg.poll() {
                if let Event::Window(w) = ev {
                    let exact = (w.volume, w.buy_volume, w.open, w.high, w.low, w.close);
                    let derived = (w.vwap.to_bits(), w.avg_price_1_sec.to_bits(), w.signal);
                    let ids = (w.trade_count, w.first_trade_id, w.last_trade_id);
                    rows.insert(w.start_ms, (exact, derived, ids));
                }
            }
        };
        for t in input {
            agg.handle_trade(*t);
            keep(&mut agg);
        }
        agg.flush();
        keep(&mut agg);
        (rows, agg.stats())
    };
    let default = AggregatorConfig::default().max_open_gaps;
    let (ordered, ordered_stats) = final_rows(&trades, default);
    let (rows, stats) = final_rows(&shuffled, default);
    assert_eq!(ordered_stats.duplicates, 0);
    assert_eq!(stats.duplicates, 0, "no real trade is taken for a repeat");
    assert_eq!(stats.forgotten_ids, 0);
    assert_eq!(stats.late_uncorrected, 0);
    // The old limit: forgotten ids, and their trades dropped as repeats.
    let (_, limited) = final_rows(&shuffled, 1024);
    assert!(
        limited.forgotten_ids > 0 && limited.duplicates > 0,
        "{limited:?}"
    );
    assert_eq!(rows.len(), ordered.len());
    for (start, row) in &ordered {
        assert_eq!(rows.get(start), Some(row), "window {start}");
    }
}
