//! The engine's timing rules, driven with exact simulated time.

use pulse_core::{
    Aggregator, AggregatorConfig, ConfigError, Event, IdRange, LatePolicy, LateTrade, Side, Symbol,
    SymbolCheckpoint, Trade, TradeKind, TradeOutcome, WatermarkPolicy, Window,
};

fn btc() -> Symbol {
    Symbol::new("BTCUSDT").unwrap()
}

fn trade(symbol: Symbol, id: u64, t: i64, price: &str, qty: &str) -> Trade {
    Trade {
        symbol,
        id,
        kind: TradeKind::AggTrade,
        price: price.parse().unwrap(),
        quantity: qty.parse().unwrap(),
        side: Side::Buy,
        trade_time_ms: t,
        event_time_ms: t,
        first_trade_id: id,
        last_trade_id: id,
    }
}

fn drain(agg: &mut Aggregator) -> Vec<Event> {
    std::iter::from_fn(|| agg.poll()).collect()
}

fn windows(events: &[Event]) -> Vec<(i64, u64, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Window(w) => Some((w.start_ms, w.trade_count, w.version)),
            _ => None,
        })
        .collect()
}

/// The windows among the events drained from `agg`.
fn drained_windows(agg: &mut Aggregator) -> Vec<Window> {
    drain(agg)
        .into_iter()
        .filter_map(|e| match e {
            Event::Window(w) => Some(w),
            _ => None,
        })
        .collect()
}

fn agg(config: AggregatorConfig) -> Aggregator {
    Aggregator::new(config).unwrap()
}

fn lateness() -> AggregatorConfig {
    AggregatorConfig {
        watermark: WatermarkPolicy::Lateness,
        ..AggregatorConfig::default()
    }
}

#[test]
fn windows_close_when_the_watermark_passes_their_end() {
    // (trade time, windows expected to close right after it)
    let steps: &[(i64, &[i64])] = &[
        (10_100, &[]),
        (10_900, &[]),
        (11_500, &[]),
        (12_999, &[]),       // watermark 10_999 < 11_000
        (13_000, &[10_000]), // watermark 11_000 reaches [10_000, 11_000)
        (14_999, &[11_000]), // watermark 12_999 passes 12_000
        (20_000, &[12_000, 13_000, 14_000]),
    ];
    let mut a = agg(lateness());
    for (id, (t, expected)) in steps.iter().enumerate() {
        assert_eq!(
            a.handle_trade(trade(btc(), id as u64, *t, "1", "1")),
            TradeOutcome::Accepted
        );
        let got: Vec<i64> = windows(&drain(&mut a)).iter().map(|w| w.0).collect();
        assert_eq!(&got, expected, "after trade at {t}");
    }
    assert_eq!(a.watermark(btc()), Some(18_000));
    a.flush();
    assert_eq!(windows(&drain(&mut a)), vec![(20_000, 1, 1)]);
    a.flush();
    assert!(
        drain(&mut a).is_empty(),
        "each window is emitted exactly once"
    );
}

#[test]
fn empty_windows_are_not_emitted_and_sizes_are_configurable() {
    let mut a = agg(AggregatorConfig {
        window_ms: 5_000,
        allowed_lateness_ms: 0,
        ..AggregatorConfig::default()
    });
    for (id, t) in [(1, 1_000), (2, 4_999), (3, 31_000)] {
        a.handle_trade(trade(btc(), id, t, "1", "1"));
    }
    assert_eq!(windows(&drain(&mut a)), vec![(0, 2, 1)]);
    a.flush();
    assert_eq!(windows(&drain(&mut a)), vec![(30_000, 1, 1)]);
}

#[test]
fn late_trades_are_counted_and_surfaced() {
    let mut a = agg(lateness());
    a.handle_trade(trade(btc(), 1, 1_000, "1", "1"));
    a.handle_trade(trade(btc(), 2, 5_000, "1", "1"));
    assert_eq!(windows(&drain(&mut a)), vec![(1_000, 1, 1)]);
    assert_eq!(
        a.handle_trade(trade(btc(), 3, 1_500, "1", "1")),
        TradeOutcome::Late
    );
    let events = drain(&mut a);
    match &events[..] {
        [Event::Late(late)] => {
            assert_eq!(
                (
                    late.trade.id,
                    late.window_start_ms,
                    late.watermark_ms,
                    late.corrected
                ),
                (3, 1_000, 3_000, false)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(a.late_trades(btc()), 1);
    assert_eq!(a.stats().late_trades, 1);
    // Counted only: its window keeps no trace of it.
    assert_eq!(a.stats().late_uncorrected, 1);
}

#[test]
fn reemit_policy_corrects_the_window_with_a_higher_version() {
    let mut a = agg(AggregatorConfig {
        late_policy: LatePolicy::Reemit,
        ..AggregatorConfig::default()
    });
    a.handle_trade(trade(btc(), 1, 1_000, "10", "1"));
    a.handle_trade(trade(btc(), 2, 5_000, "10", "1"));
    drain(&mut a);
    a.handle_trade(trade(btc(), 3, 1_500, "20", "1"));
    let events = drain(&mut a);
    assert!(matches!(
        events[0],
        Event::Late(LateTrade {
            corrected: true,
            ..
        })
    ));
    let Event::Window(w) = &events[1] else {
        panic!("{events:?}")
    };
    assert_eq!(
        (w.start_ms, w.version, w.trade_count, w.vwap),
        (1_000, 2, 2, 15.0)
    );
    // A late trade for a window that was empty when it closed gets version 1.
    a.handle_trade(trade(btc(), 4, 2_500, "30", "1"));
    assert_eq!(windows(&drain(&mut a)), vec![(2_000, 1, 1)]);
    // Beyond the retention horizon, the trade is only counted. (Trade 6
    // confirms trade 5's jump of over a minute.)
    a.handle_trade(trade(btc(), 5, 200_000, "1", "1"));
    a.handle_trade(trade(btc(), 6, 200_100, "1", "1"));
    drain(&mut a);
    a.handle_trade(trade(btc(), 7, 1_700, "1", "1"));
    let events = drain(&mut a);
    match &events[..] {
        [Event::Late(late)] => assert_eq!((late.trade.id, late.corrected), (7, false)),
        other => panic!("{other:?}"),
    }
    assert_eq!(a.stats().late_trades, 3);
    assert_eq!(a.stats().late_uncorrected, 1);
    assert_eq!(a.stats().reemitted, 1);
}

/// Live, late trades handled before the caller polls (a backfilled burst)
/// correct their window with one row, in a higher version than the row
/// they came after; a recording gives a row per late trade, so its rows
/// never depend on when the caller polls.
#[test]
fn live_late_trades_between_polls_correct_their_window_with_one_row() {
    // (start, trades, version) of the rows drained after each step.
    let run = |live: bool| {
        let mut a = agg(AggregatorConfig {
            late_policy: LatePolicy::Reemit,
            ..AggregatorConfig::default()
        });
        let feed = |a: &mut Aggregator, id: u64, t: i64| match live {
            true => a.handle_trade_at(trade(btc(), id, t, "10", "1"), 0),
            false => a.handle_trade(trade(btc(), id, t, "10", "1")),
        };
        feed(&mut a, 1, 1_000);
        feed(&mut a, 2, 4_500);
        // [1000, 2000) has closed, its row not polled yet.
        feed(&mut a, 3, 1_500);
        feed(&mut a, 4, 1_600);
        let first = windows(&drain(&mut a));
        feed(&mut a, 5, 1_700);
        feed(&mut a, 6, 1_800);
        (first, windows(&drain(&mut a)))
    };
    assert_eq!(
        run(true),
        (vec![(1_000, 1, 1), (1_000, 3, 2)], vec![(1_000, 5, 3)]),
        "live: the first row, then one correction per poll"
    );
    assert_eq!(
        run(false),
        (
            vec![(1_000, 1, 1), (1_000, 2, 2), (1_000, 3, 3)],
            vec![(1_000, 4, 4), (1_000, 5, 5)]
        ),
        "recorded: one row per late trade"
    );
}

#[test]
fn in_id_order_the_next_trade_past_a_window_closes_it_at_once() {
    // (id, trade time, windows expected to close right after it)
    let steps: &[(u64, i64, &[i64])] = &[
        // The first trade's window waits for the lateness: ids below the
        // first could still come without showing a gap.
        (1, 10_100, &[]),
        (2, 12_100, &[]),
        (3, 13_000, &[10_000, 12_000]),
        (4, 13_999, &[]),
        (5, 14_000, &[13_000]), // every id before 5 is in: [13 s, 14 s) is complete
        (7, 14_500, &[]),       // id 6 missing: trail by the lateness
        (8, 16_600, &[]),
        (6, 14_200, &[14_000]), // gap filled: back to the newest time
        (9, 17_000, &[16_000]),
    ];
    let mut a = agg(AggregatorConfig::default());
    for (id, t, expected) in steps {
        assert_eq!(
            a.handle_trade(trade(btc(), *id, *t, "1", "1")),
            TradeOutcome::Accepted,
            "id {id}"
        );
        let got: Vec<i64> = windows(&drain(&mut a)).iter().map(|w| w.0).collect();
        assert_eq!(&got, expected, "after id {id} at {t}");
    }
    assert_eq!(a.watermark(btc()), Some(17_000));
}

#[test]
fn advance_closes_a_quiet_symbols_last_window_by_elapsed_time_only() {
    let eth = Symbol::new("ETHUSDT").unwrap();
    let mut a = agg(AggregatorConfig {
        idle_margin_ms: 300,
        ..AggregatorConfig::default()
    });
    assert_eq!(a.poll_timeout(), None);
    // The caller's clock is years away from trade times: only the time
    // elapsed since each symbol's last input counts.
    let t0 = 7_000_000;
    a.handle_trade_at(trade(btc(), 1, 10_200, "1", "1"), t0);
    a.handle_trade_at(trade(eth, 1, 10_700, "1", "1"), t0 + 100);
    // ETH's window ends 300 ms after its trade: quiet 300 ms + the 300 ms
    // margin. BTC's ends 800 ms after: quiet 1100 ms.
    assert_eq!(a.poll_timeout(), Some(t0 + 700));
    a.advance(t0 + 699);
    assert!(drain(&mut a).is_empty());
    a.advance(t0 + 700);
    let events = drain(&mut a);
    assert!(
        matches!(&events[..], [Event::Window(Window { symbol, start_ms: 10_000, .. })] if *symbol == eth),
        "{events:?}"
    );
    assert_eq!(a.poll_timeout(), Some(t0 + 1_100));
    a.advance(t0 + 1_100);
    assert_eq!(windows(&drain(&mut a)), vec![(10_000, 1, 1)]);
    assert_eq!(a.poll_timeout(), None);
}

/// Input held upstream (trades behind a gap) keeps a symbol from idling:
/// its window waits until the held input stops, then closes as idle.
#[test]
fn held_input_keeps_windows_open() {
    let mut a = agg(AggregatorConfig {
        idle_margin_ms: 300,
        ..AggregatorConfig::default()
    });
    let t0 = 7_000_000;
    a.handle_trade_at(trade(btc(), 1, 10_700, "1", "1"), t0);
    assert_eq!(a.poll_timeout(), Some(t0 + 600));
    a.input_held(btc(), t0 + 500);
    assert_eq!(a.poll_timeout(), Some(t0 + 1_100));
    a.advance(t0 + 600);
    assert!(drain(&mut a).is_empty(), "held: not idle");
    a.advance(t0 + 1_100);
    assert_eq!(windows(&drain(&mut a)), vec![(10_000, 1, 1)]);
    // A symbol the aggregator never saw is left alone.
    a.input_held(Symbol::new("ETHUSDT").unwrap(), t0);
    assert_eq!(a.poll_timeout(), None);
}

/// Live, an id gap holds its symbol's windows for the allowed lateness on
/// the caller's clock, as the watermark trails by it in a recording: the
/// missing trade, merely delivered out of order, still lands in its window.
#[test]
fn live_a_gap_holds_windows_for_the_lateness_then_no_longer() {
    let mut a = agg(AggregatorConfig::default());
    // The caller's clock is 5 s ahead of trade times; only differences count.
    let at = |t: i64| t + 5_000;
    a.handle_trade_at(trade(btc(), 1, 100, "1", "1"), at(100));
    a.handle_trade_at(trade(btc(), 3, 900, "1", "1"), at(900));
    a.handle_trade_at(trade(btc(), 4, 1_150, "1", "1"), at(1_150));
    assert!(matches!(
        &drain(&mut a)[..],
        [Event::Gap {
            missing: IdRange { first: 2, last: 2 },
            ..
        }]
    ));
    // Without the gap, [0, 1000) would close 150 ms after its end; with it,
    // 2 s after the gap showed at 900.
    assert_eq!(a.poll_timeout(), Some(at(2_900)));
    a.advance(at(1_200));
    assert!(drain(&mut a).is_empty(), "the gap holds [0, 1000) open");
    assert_eq!(
        a.handle_trade_at(trade(btc(), 2, 950, "1", "1"), at(1_250)),
        TradeOutcome::Accepted
    );
    // Filled: the margin again, which [0, 1000) is long past.
    assert_eq!(a.poll_timeout(), Some(at(1_250)));
    a.advance(at(1_250));
    assert_eq!(windows(&drain(&mut a)), vec![(0, 3, 1)]);

    // A gap no one fills holds only for the lateness: then the symbol's
    // windows close by the idle margin again, and the missing trade is late.
    a.handle_trade_at(trade(btc(), 6, 1_500, "1", "1"), at(1_500));
    drain(&mut a);
    assert_eq!(a.poll_timeout(), Some(at(3_500)));
    a.advance(at(3_499));
    assert!(drain(&mut a).is_empty());
    a.advance(at(3_500));
    assert_eq!(windows(&drain(&mut a)), vec![(1_000, 2, 1)]);
    a.handle_trade_at(trade(btc(), 7, 3_700, "1", "1"), at(3_700));
    assert_eq!(a.poll_timeout(), Some(at(4_150)), "the margin again");
    assert_eq!(
        a.handle_trade_at(trade(btc(), 5, 1_400, "1", "1"), at(3_800)),
        TradeOutcome::Late
    );
}

/// Live under the lateness policy, whose input may come in any order, a
/// quiet window closes the lateness past its end, not the margin.
#[test]
fn live_under_the_lateness_policy_quiet_windows_wait_for_the_lateness() {
    let mut a = agg(lateness());
    a.handle_trade_at(trade(btc(), 2, 10_700, "1", "1"), 0);
    // A first trade waits to be vouched for until its window would close
    // by the margin; taken then, its window waits on for the lateness.
    assert_eq!(a.poll_timeout(), Some(300 + 150));
    a.advance(450);
    assert!(drain(&mut a).is_empty());
    assert_eq!(a.poll_timeout(), Some(300 + 2_000));
    a.advance(2_299);
    assert!(drain(&mut a).is_empty());
    assert_eq!(
        a.handle_trade_at(trade(btc(), 1, 10_100, "1", "1"), 2_000),
        TradeOutcome::Accepted
    );
    // Its input restarts the quiet time.
    assert_eq!(a.poll_timeout(), Some(2_000 + 2_300));
    a.advance(4_300);
    assert_eq!(windows(&drain(&mut a)), vec![(10_000, 2, 1)]);
    assert_eq!(
        a.watermarks_at(Some(4_300)).collect::<Vec<_>>(),
        vec![(btc(), 11_000)],
        "markers vouch as far as the windows closed"
    );
}

/// A symbol's first trades, come out of id order, wait together: the one
/// its window's closing vouches for takes the older one with it. One that
/// is decided only after its window closed is late like any other: it
/// never reopens the window, which would then never close (and a caller
/// sleeping until `poll_timeout` would spin).
#[test]
fn held_trades_out_of_id_order_go_together_or_late_never_reopening_a_window() {
    let neo = Symbol::new("NEOUSDT").unwrap();
    let mut a = agg(AggregatorConfig::default());
    a.handle_trade_at(trade(neo, 102, 474, "1", "1"), 474);
    a.handle_trade_at(trade(neo, 101, 0, "1", "1"), 843);
    assert_eq!(a.poll_timeout(), Some(843 + 1_000 + 150 - 474));
    a.advance(1_519);
    assert_eq!(windows(&drain(&mut a)), vec![(0, 2, 1)]);
    assert_eq!(a.poll_timeout(), None);

    // Time falls as ids rise, so one of the two is wrong: the older id,
    // due first, is taken alone and its window closes; the newer one,
    // decided after that, is late.
    let mut a = agg(AggregatorConfig::default());
    a.handle_trade_at(trade(neo, 102, 474, "1", "1"), 474);
    a.handle_trade_at(trade(neo, 101, 600, "1", "1"), 843);
    let mut events = Vec::new();
    let mut last = None;
    while let Some(due) = a.poll_timeout() {
        assert_ne!(Some(due), last, "advance({due}) got nowhere");
        last = Some(due);
        a.advance(due);
        events.extend(drain(&mut a));
    }
    assert_eq!(windows(&events), vec![(0, 1, 1)]);
    assert!(
        matches!(&events[1..], [Event::Late(LateTrade { trade, corrected: false, .. })] if trade.id == 102),
        "{events:?}"
    );
    assert_eq!(a.late_trades(neo), 1);
}

#[test]
fn recorded_trades_are_never_closed_by_the_callers_clock() {
    let mut a = agg(AggregatorConfig::default());
    a.handle_trade(trade(btc(), 1, 10_200, "1", "1"));
    assert_eq!(a.poll_timeout(), None);
    a.advance(i64::MAX);
    assert!(drain(&mut a).is_empty());
}

#[test]
fn gaps_and_duplicates_are_reported_per_symbol() {
    let mut a = agg(AggregatorConfig::default());
    a.handle_trade(trade(btc(), 10, 1_000, "1", "1"));
    assert_eq!(
        a.handle_trade(trade(btc(), 10, 1_000, "1", "1")),
        TradeOutcome::Duplicate
    );
    a.handle_trade(trade(btc(), 14, 1_100, "1", "1"));
    let events = drain(&mut a);
    assert_eq!(
        events,
        vec![Event::Gap {
            symbol: btc(),
            missing: IdRange {
                first: 11,
                last: 13
            }
        }]
    );
    assert_eq!(
        a.missing(btc()),
        vec![IdRange {
            first: 11,
            last: 13
        }]
    );
    assert_eq!(
        (a.stats().duplicates, a.stats().gaps, a.stats().missing_ids),
        (1, 1, 3)
    );
    assert_eq!(a.still_missing(), 3);
    // A late-coming id fills part of the gap; the rest never comes.
    a.handle_trade(trade(btc(), 12, 1_050, "1", "1"));
    assert_eq!(a.still_missing(), 2);
    a.flush();
    assert_eq!(windows(&drain(&mut a)), vec![(1_000, 3, 1)]);
    assert_eq!(a.still_missing(), 2);
}

#[test]
fn checkpoint_and_restore_continue_where_stored_windows_end() {
    let trades: Vec<Trade> = (0..40)
        .map(|i| trade(btc(), i, 1_000 + i as i64 * 250, "1", "1"))
        .collect();
    let mut clean = agg(AggregatorConfig::default());
    let mut clean_rows = Vec::new();
    for t in &trades {
        clean.handle_trade(*t);
        clean_rows.extend(windows(&drain(&mut clean)));
    }
    clean.flush();
    clean_rows.extend(windows(&drain(&mut clean)));

    // Crash after trade 20; stored: windows so far plus the checkpoint.
    let mut first = agg(AggregatorConfig::default());
    let mut stored = Vec::new();
    for t in &trades[..=20] {
        first.handle_trade(*t);
        stored.extend(windows(&drain(&mut first)));
    }
    let cp: SymbolCheckpoint = first.checkpoint(btc()).unwrap();
    let resume_from = trades
        .iter()
        .position(|t| t.trade_time_ms >= cp.watermark_ms.div_euclid(1000) * 1000)
        .unwrap();

    let mut second = agg(AggregatorConfig::default());
    second.restore(btc(), cp);
    for t in &trades[resume_from..] {
        second.handle_trade(*t);
        stored.extend(windows(&drain(&mut second)));
    }
    second.flush();
    stored.extend(windows(&drain(&mut second)));
    assert_eq!(stored, clean_rows);
}

#[test]
fn invalid_settings_are_rejected_up_front() {
    let bad = AggregatorConfig {
        window_ms: 0,
        ..AggregatorConfig::default()
    };
    assert_eq!(
        Aggregator::new(bad).unwrap_err(),
        ConfigError::WindowSize(0)
    );
    let bad = AggregatorConfig {
        allowed_lateness_ms: -1,
        ..AggregatorConfig::default()
    };
    assert_eq!(
        Aggregator::new(bad).unwrap_err(),
        ConfigError::Negative {
            name: "allowed_lateness_ms",
            value: -1
        }
    );
}

#[test]
fn close_through_closes_a_quiet_symbols_windows_and_makes_later_trades_late() {
    let mut a = agg(AggregatorConfig::default());
    a.handle_trade(trade(btc(), 1, 1_200, "10", "1"));
    a.handle_trade(trade(btc(), 2, 1_900, "10", "1"));
    assert_eq!(windows(&drain(&mut a)), vec![]);
    // Through 1_999 proves nothing about [1_000, 2_000): it ends at 2_000.
    a.close_through(btc(), 1_999);
    assert_eq!(windows(&drain(&mut a)), vec![]);
    a.close_through(btc(), 2_000);
    assert_eq!(windows(&drain(&mut a)), vec![(1_000, 2, 1)]);
    // Never lowered.
    a.close_through(btc(), 1_000);
    assert_eq!(a.watermark(btc()), Some(2_000));
    assert_eq!(
        a.handle_trade(trade(btc(), 3, 1_950, "10", "1")),
        TradeOutcome::Late
    );
    // A symbol never seen starts at the given watermark.
    let eth = Symbol::new("ETHUSDT").unwrap();
    a.close_through(eth, 7_000);
    assert_eq!(
        a.handle_trade(trade(eth, 1, 6_999, "1", "1")),
        TradeOutcome::Late
    );
    assert_eq!(
        a.checkpoints()
            .map(|(s, c)| (s, c.watermark_ms))
            .collect::<Vec<_>>(),
        vec![(btc(), 2_000), (eth, 7_000)]
    );
}

/// Whether a late trade still corrects its window depends on how far it is
/// behind the newest trade, not on how the watermark follows trades: a
/// recording read in id order (`pulse run`) and by the lateness (`pulse
/// consume`) correct the same trades.
#[test]
fn the_correction_horizon_is_the_same_whatever_the_watermark_policy() {
    for behind_ms in [58_500, 59_500, 60_500, 61_500, 62_500] {
        let corrected: Vec<bool> = [WatermarkPolicy::IdOrder, WatermarkPolicy::Lateness]
            .into_iter()
            .map(|watermark| {
                let mut a = agg(AggregatorConfig {
                    watermark,
                    late_policy: LatePolicy::Reemit,
                    ..AggregatorConfig::default()
                });
                for id in 1..=800u64 {
                    a.handle_trade(trade(btc(), id, id as i64 * 100, "10", "1"));
                }
                drain(&mut a);
                let late = trade(btc(), 801, 80_000 - behind_ms, "10", "1");
                a.handle_trade(late);
                drain(&mut a)
                    .into_iter()
                    .find_map(|e| match e {
                        Event::Late(l) => Some(l.corrected),
                        _ => None,
                    })
                    .expect("late")
            })
            .collect();
        let expected = behind_ms < 60_000;
        assert_eq!(corrected, [expected, expected], "{behind_ms} ms behind");
    }
}

/// A trade 90 s ahead, refuted by the next: read again after a restart
/// whose restored clock is within the jump of it, it is refuted again, not
/// taken (which would make every later trade late).
#[test]
fn a_refuted_time_read_again_after_a_restart_is_refuted_again() {
    let config = AggregatorConfig {
        late_policy: LatePolicy::Reemit,
        ..lateness()
    };
    let wrong = trade(btc(), 3, 92_000, "99", "1");
    let mut trades = vec![
        trade(btc(), 1, 1_100, "10", "1"),
        trade(btc(), 2, 2_100, "10", "1"),
        wrong,
    ];
    trades.extend((4..=60).map(|id| trade(btc(), id, id as i64 * 1_000, "10", "1")));
    let after: Vec<Trade> = (61..=100)
        .map(|id| trade(btc(), id, id as i64 * 1_000, "10", "1"))
        .collect();
    let rows = |agg: &mut Aggregator, trades: &[Trade]| {
        for t in trades {
            agg.handle_trade(*t);
        }
        agg.flush();
        drained_windows(agg)
    };
    let mut clean = agg(config.clone());
    let mut before = Vec::new();
    for t in &trades {
        clean.handle_trade(*t);
        before.extend(drain(&mut clean));
    }
    let checkpoint = clean.checkpoint(btc()).unwrap();
    assert!(checkpoint.max_time_ms > wrong.trade_time_ms - 60_000);
    let clean_rows = rows(&mut clean, &after);
    assert_eq!(clean.stats().time_outliers, 1);

    // Restart after trade 60: every trade from the start read again.
    let mut again = agg(config);
    again.restore(btc(), checkpoint);
    for t in &trades {
        again.restore_trade(*t);
    }
    assert!(
        drained_windows(&mut again).is_empty(),
        "restoring emits no window"
    );
    let again_rows = rows(&mut again, &after);
    assert_eq!(again.stats().late_trades, 0);
    assert_eq!(again_rows, clean_rows);
    assert!(again_rows.iter().all(|w| w.trade_count == 1));
}

#[test]
fn restored_trades_rebuild_emitted_windows_so_a_later_correction_is_whole() {
    let config = AggregatorConfig {
        late_policy: LatePolicy::Reemit,
        ..AggregatorConfig::default()
    };
    let trades = [
        trade(btc(), 1, 1_100, "10", "1"),
        trade(btc(), 2, 1_600, "20", "1"),
        trade(btc(), 3, 4_300, "30", "1"),
        trade(btc(), 4, 4_400, "40", "1"),
    ];
    let late = trade(btc(), 5, 1_700, "30", "2");
    let mut clean = agg(config.clone());
    for t in trades {
        clean.handle_trade(t);
    }
    drain(&mut clean);
    clean.handle_trade(late);
    let clean_rows = drained_windows(&mut clean);

    // Restart after trade 4: clocks restored, every trade read again.
    let mut again = agg(config);
    again.restore(btc(), clean.checkpoint(btc()).unwrap());
    for t in trades {
        again.restore_trade(t);
    }
    assert!(drain(&mut again).is_empty(), "restoring emits nothing");
    again.handle_trade(late);
    let rows = drained_windows(&mut again);
    assert_eq!(clean_rows.len(), 1);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].start_ms, rows[0].trade_count, rows[0].vwap),
        (1_000, 3, 22.5)
    );
    assert_eq!(rows[0].vwap, clean_rows[0].vwap);
    assert_eq!(rows[0].total_volume, clean_rows[0].total_volume);
}

#[test]
fn watermarks_at_vouch_for_quiet_symbols_by_elapsed_time_or_the_recordings_front() {
    let eth = Symbol::new("ETHUSDT").unwrap();
    let mut live = agg(AggregatorConfig::default());
    // The very first trade waits for the next to vouch for its time.
    live.handle_trade_at(trade(btc(), 1, 10_400, "1", "1"), 0);
    live.handle_trade_at(trade(btc(), 2, 10_400, "1", "1"), 0);
    live.handle_trade_at(trade(eth, 1, 10_100, "1", "1"), 50);
    // 1 s after ETH's last input: 10_100 + 1_000 − 150; BTC 1_050 ms later.
    let at: Vec<_> = live.watermarks_at(Some(1_050)).collect();
    assert_eq!(at, vec![(btc(), 10_400 + 1_050 - 150), (eth, 10_950)]);
    // Right after the last input: the newest time less the margin.
    assert_eq!(
        live.watermarks_at(Some(50)).collect::<Vec<_>>(),
        vec![(btc(), 10_300), (eth, 9_950)]
    );

    let mut replay = agg(AggregatorConfig::default());
    replay.handle_trade(trade(btc(), 1, 4_000, "1", "1"));
    replay.handle_trade(trade(btc(), 2, 4_500, "1", "1"));
    replay.handle_trade(trade(eth, 1, 3_000, "1", "1"));
    replay.handle_trade(trade(btc(), 3, 9_500, "1", "1"));
    // ETH is quiet while the recording moves on: front 9_500 − 2_000,
    // but no further than its last window's end, which that closes; a
    // trade of ETH still to come (a file not in time order across symbols)
    // is then at most a window behind, and corrects it.
    assert_eq!(
        replay.watermarks_at(None).collect::<Vec<_>>(),
        vec![(btc(), 9_500), (eth, 4_000)]
    );

    // A file sorted by symbol: ETH's trades come after BTC's, far behind
    // its time, so BTC's time vouches for nothing of ETH's.
    let mut sorted = agg(AggregatorConfig::default());
    sorted.handle_trade(trade(btc(), 1, 4_000, "1", "1"));
    sorted.handle_trade(trade(btc(), 2, 9_500, "1", "1"));
    sorted.handle_trade(trade(eth, 1, 1_000, "1", "1"));
    sorted.handle_trade(trade(eth, 2, 5_000, "1", "1"));
    assert_eq!(
        sorted.watermarks_at(None).collect::<Vec<_>>(),
        vec![(btc(), 9_500), (eth, 5_000)]
    );

    // Found by QA: a file whose lines interleave a symbol 80 s behind the
    // rest. Every first trade is held for the next to vouch for, so none
    // is in the front when the lagging one comes; it is still behind, and
    // so is a lagging symbol on the file's very first line.
    let (sand, ctk) = (
        Symbol::new("SANDUSDT").unwrap(),
        Symbol::new("CTKUSDT").unwrap(),
    );
    let mut lagging = agg(AggregatorConfig::default());
    lagging.handle_trade(trade(btc(), 1, 100_000, "1", "1"));
    lagging.handle_trade(trade(sand, 1, 100_050, "1", "1"));
    lagging.handle_trade(trade(ctk, 1, 20_000, "1", "1"));
    // BTC's next trade decides its first, and vouches for the others'.
    lagging.handle_trade(trade(btc(), 2, 100_400, "1", "1"));
    assert_eq!(
        lagging.watermarks_at(None).collect::<Vec<_>>(),
        vec![(btc(), 98_400), (ctk, 18_000), (sand, 98_400)]
    );
    lagging.handle_trade(trade(ctk, 2, 21_500, "1", "1"));
    assert_eq!(
        lagging.watermarks_at(None).nth(1),
        Some((ctk, 19_500)),
        "its own trades vouch for it"
    );
    let mut first_line = agg(AggregatorConfig::default());
    first_line.handle_trade(trade(ctk, 1, 20_000, "1", "1"));
    first_line.handle_trade(trade(btc(), 1, 100_000, "1", "1"));
    first_line.handle_trade(trade(btc(), 2, 100_400, "1", "1"));
    assert_eq!(
        first_line.watermarks_at(None).collect::<Vec<_>>(),
        vec![(btc(), 98_400), (ctk, 18_000)]
    );
}

#[test]
fn a_window_whose_sums_overflow_is_rejected_not_wrapped() {
    let max = pulse_core::Decimal::from_raw(i64::MAX);
    let huge = |id, t| Trade {
        price: max,
        quantity: max,
        ..trade(btc(), id, t, "1", "1")
    };
    let mut a = agg(AggregatorConfig::default());
    // Three trades of p = q = i64::MAX raw: Σ(p·q) needs 129 bits.
    for (id, t) in [(1, 10_100), (2, 10_200), (3, 10_300)] {
        assert_eq!(a.handle_trade(huge(id, t)), TradeOutcome::Accepted);
    }
    a.handle_trade(trade(btc(), 4, 11_100, "100", "1"));
    a.flush();
    let events = drain(&mut a);
    let [Event::Rejected(r), Event::Window(w)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(
        (r.symbol, r.start_ms, r.end_ms, r.version, r.trade_count),
        (btc(), 10_000, 11_000, 1, 3)
    );
    assert_eq!(r.error.to_string(), "Σ(p·q) overflows 128 bits");
    assert_eq!(r.error.reason(), "overflow");
    assert_eq!((w.start_ms, w.trade_count), (11_000, 1));
    assert_eq!((a.stats().windows, a.stats().rejected_windows), (1, 1));
}

#[test]
fn a_late_trade_into_a_rejected_window_is_rejected_again() {
    let max = pulse_core::Decimal::from_raw(i64::MAX);
    let mut a = agg(AggregatorConfig {
        late_policy: LatePolicy::Reemit,
        ..lateness()
    });
    let huge = |id, t| Trade {
        price: max,
        quantity: max,
        ..trade(btc(), id, t, "1", "1")
    };
    // Three trades of p = q = i64::MAX raw: Σ(p·q) leaves i128.
    a.handle_trade(huge(1, 10_100));
    a.handle_trade(huge(2, 10_200));
    a.handle_trade(huge(3, 10_250));
    a.handle_trade(trade(btc(), 4, 13_000, "1", "1"));
    a.handle_trade(huge(5, 10_300));
    let events = drain(&mut a);
    let late: Vec<(u64, bool)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Late(l) => Some((l.trade.id, l.corrected)),
            _ => None,
        })
        .collect();
    assert_eq!(late, vec![(5, false)], "its window has no row");
    let rejected: Vec<(u64, &str)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Rejected(r) => Some((r.version, r.error.reason())),
            _ => None,
        })
        .collect();
    assert_eq!(rejected, vec![(1, "overflow"), (2, "overflow")]);
    assert_eq!(a.stats().rejected_windows, 2);
    // The late trade is in no row, and says so.
    assert_eq!(a.stats().late_uncorrected, 1);
}

/// Times at the ends of `i64` (a hand-built `Trade`; the parsers reject
/// them) never overflow: every window still closes, in order.
#[test]
fn extreme_times_do_not_overflow() {
    for policy in [LatePolicy::Count, LatePolicy::Reemit] {
        let mut agg = agg(AggregatorConfig {
            late_policy: policy,
            ..AggregatorConfig::default()
        });
        for (id, t) in [
            (1, i64::MIN),
            (2, -1),
            (3, i64::MAX - 1),
            (4, i64::MAX),
            (5, 0),
        ] {
            agg.handle_trade_at(trade(btc(), id, t, "1", "1"), 10);
            agg.advance(i64::MAX);
        }
        agg.flush();
        let starts: Vec<i64> = drained_windows(&mut agg)
            .iter()
            .map(|w| w.start_ms)
            .collect();
        assert!(starts.len() >= 3, "{policy:?}: {starts:?}");
        assert!(starts.contains(&i64::MIN), "{policy:?}: {starts:?}");
    }
}

/// A trade far ahead waits for what follows, unless the caller's clock
/// says a quiet spell that long passed: the clock catching up or a
/// caller's watermark near it confirms it, a trade back in time refutes it.
#[test]
fn a_trade_far_ahead_moves_the_clock_once_confirmed() {
    let mut a = agg(AggregatorConfig::default());
    a.handle_trade_at(trade(btc(), 1, 1_000, "10", "1"), 0);
    a.handle_trade_at(trade(btc(), 2, 2_500, "10", "1"), 10);
    // 100 s of trade time after 100 s on the caller's clock: taken at once.
    a.handle_trade_at(trade(btc(), 3, 102_500, "10", "1"), 100_010);
    assert_eq!(windows(&drain(&mut a)), vec![(1_000, 1, 1), (2_000, 1, 1)]);
    assert!(a.held_ahead(btc()).next().is_none());
    // 200 s ahead 10 ms later: held until the caller's clock allows it.
    a.handle_trade_at(trade(btc(), 4, 302_500, "10", "1"), 100_020);
    a.advance(101_000);
    assert_eq!(windows(&drain(&mut a)), vec![(102_000, 1, 1)]);
    assert_eq!(a.held_ahead(btc()).next().map(|t| t.id), Some(4));
    assert_eq!(a.poll_timeout(), Some(100_010 + 200_000 - 60_000));
    a.advance(240_009);
    assert_eq!(a.newest_trade_ms(btc()), Some(102_500));
    a.advance(240_010);
    assert!(a.held_ahead(btc()).next().is_none());
    assert_eq!(a.newest_trade_ms(btc()), Some(302_500));

    // A caller's watermark near it vouches for it too; one far below not.
    let mut b = agg(lateness());
    b.handle_trade(trade(btc(), 1, 1_000, "10", "1"));
    b.handle_trade(trade(btc(), 2, 100_000, "10", "1"));
    b.close_through(btc(), 30_000);
    assert_eq!(windows(&drain(&mut b)), vec![(1_000, 1, 1)]);
    assert_eq!(b.newest_trade_ms(btc()), Some(1_000));
    b.close_through(btc(), 45_000);
    assert_eq!(b.newest_trade_ms(btc()), Some(100_000));

    // Refuted: in no window, and the next trades are not late.
    let mut c = agg(AggregatorConfig::default());
    c.handle_trade(trade(btc(), 1, 1_000, "10", "1"));
    c.handle_trade(trade(btc(), 2, 86_401_000, "10", "1"));
    c.handle_trade(trade(btc(), 3, 1_200, "10", "1"));
    c.handle_trade(trade(btc(), 4, 2_100, "10", "1"));
    c.flush();
    let events = drain(&mut c);
    assert_eq!(windows(&events), vec![(1_000, 2, 1), (2_000, 1, 1)]);
    let outliers: Vec<(u64, Option<i64>, u64)> = events
        .iter()
        .filter_map(|e| match e {
            Event::TimeOutlier(o) => Some((o.trade.id, o.newest_ms, o.next.id)),
            _ => None,
        })
        .collect();
    assert_eq!(outliers, vec![(2, Some(1_000), 3)]);
    assert_eq!((c.stats().time_outliers, c.stats().late_trades), (1, 0));

    // A symbol's first trade is checked against the other symbols' time.
    let eth = Symbol::new("ETHUSDT").unwrap();
    let mut d = agg(AggregatorConfig::default());
    d.handle_trade(trade(btc(), 1, 1_000, "10", "1"));
    d.handle_trade(trade(eth, 7, 86_401_000, "10", "1"));
    d.handle_trade(trade(eth, 8, 1_100, "10", "1"));
    d.handle_trade(trade(eth, 9, 2_200, "10", "1"));
    d.flush();
    let events = drain(&mut d);
    let eth_windows: Vec<i64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Window(w) if w.symbol == eth => Some(w.start_ms),
            _ => None,
        })
        .collect();
    assert_eq!(eth_windows, vec![1_000, 2_000]);
    assert_eq!((d.stats().time_outliers, d.stats().late_trades), (1, 0));
}

/// A symbol's own time can be old or wrong: a trade far ahead of it but
/// near the other symbols' time is taken at once.
#[test]
fn a_trade_near_the_other_symbols_time_is_taken_however_far_its_own_lags() {
    let eth = Symbol::new("ETHUSDT").unwrap();
    let years = 94_608_000_000;
    let mut a = agg(AggregatorConfig::default());
    a.handle_trade(trade(eth, 1, years + 1_000, "10", "1"));
    a.handle_trade(trade(eth, 2, years + 1_500, "10", "1"));
    // BTC's first trade is dated three years behind, its second is right.
    a.handle_trade(trade(btc(), 1, 1_000, "10", "1"));
    a.handle_trade(trade(btc(), 2, years + 1_200, "10", "1"));
    assert!(a.held_ahead(btc()).next().is_none());
    assert_eq!(a.newest_trade_ms(btc()), Some(years + 1_200));

    // Live and quiet: not held until the caller's clock covers three years.
    let mut b = agg(AggregatorConfig::default());
    b.handle_trade_at(trade(eth, 1, years + 1_000, "10", "1"), 0);
    b.handle_trade_at(trade(eth, 2, years + 1_500, "10", "1"), 0);
    b.handle_trade_at(trade(btc(), 1, 1_000, "10", "1"), 10);
    b.handle_trade_at(trade(btc(), 2, 1_100, "10", "1"), 20);
    b.handle_trade_at(trade(btc(), 3, years + 1_600, "10", "1"), 500);
    assert!(b.held_ahead(btc()).next().is_none());
    b.advance(1_000 + 150 + 500);
    let btc_windows: Vec<i64> = drain(&mut b)
        .iter()
        .filter_map(|e| match e {
            Event::Window(w) if w.symbol == btc() => Some(w.start_ms),
            _ => None,
        })
        .collect();
    assert_eq!(btc_windows, vec![1_000, years + 1_000]);
}

/// Live, a first trade held with nothing to check it against is checked
/// against the other symbols' time when it falls due, if they have one by
/// then: a day ahead of it, it waits for its own symbol's next trade.
#[test]
fn a_wrong_first_trade_is_checked_against_the_symbols_that_came_after_it() {
    let eth = Symbol::new("ETHUSDT").unwrap();
    let day = 86_400_000;
    let mut a = agg(AggregatorConfig::default());
    a.handle_trade_at(trade(btc(), 1, day + 10_995, "10", "1"), 0);
    a.handle_trade_at(trade(eth, 1, 10_900, "10", "1"), 40);
    a.handle_trade_at(trade(eth, 2, 10_950, "10", "1"), 90);
    // BTC's window would close 5 + 150 ms after its trade came.
    a.advance(155);
    assert_eq!(
        a.held_ahead(btc()).map(|t| t.id).collect::<Vec<_>>(),
        [1],
        "still held"
    );
    a.handle_trade_at(trade(btc(), 2, 11_000, "10", "1"), 300);
    a.advance(2_000);
    let events = drain(&mut a);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::TimeOutlier(o) if o.trade.id == 1)),
        "{events:?}"
    );
    assert_eq!(a.stats().late_trades, 0);
    assert_eq!(a.newest_trade_ms(btc()), Some(11_000));

    // With no other symbol by then, it is taken when due.
    let mut alone = agg(AggregatorConfig::default());
    alone.handle_trade_at(trade(btc(), 1, day + 10_995, "10", "1"), 0);
    alone.advance(155);
    assert_eq!(alone.newest_trade_ms(btc()), Some(day + 10_995));
}

/// The very first trade has nothing to be checked against, so the next
/// trade of its symbol decides it; live, it is taken when its window would
/// close anyway, so a quiet symbol's row comes no later.
#[test]
fn the_very_first_trade_waits_for_the_next_to_vouch_for_it() {
    let mut a = agg(AggregatorConfig::default());
    a.handle_trade(trade(btc(), 1, 86_401_000, "10", "1"));
    a.handle_trade(trade(btc(), 2, 1_200, "10", "1"));
    a.handle_trade(trade(btc(), 3, 2_100, "10", "1"));
    a.flush();
    let events = drain(&mut a);
    assert_eq!(windows(&events), vec![(1_000, 1, 1), (2_000, 1, 1)]);
    assert!(
        events.iter().any(|e| matches!(e,
            Event::TimeOutlier(o) if o.trade.id == 1 && o.newest_ms.is_none() && o.next.id == 2)),
        "{events:?}"
    );
    assert_eq!((a.stats().time_outliers, a.stats().late_trades), (1, 0));

    // Right, it is confirmed by the next trade before that is taken.
    let mut b = agg(AggregatorConfig::default());
    b.handle_trade(trade(btc(), 1, 1_100, "10", "1"));
    assert_eq!(b.held_ahead(btc()).map(|t| t.id).collect::<Vec<_>>(), [1]);
    b.handle_trade(trade(btc(), 2, 4_100, "10", "1"));
    assert!(b.held_ahead(btc()).next().is_none());
    assert_eq!(windows(&drain(&mut b)), vec![(1_000, 1, 1)]);

    // Live and alone: its window closes when it would have: quiet for the
    // rest of the window plus the margin.
    let mut c = agg(AggregatorConfig::default());
    c.handle_trade_at(trade(btc(), 1, 1_100, "10", "1"), 500);
    assert_eq!(c.poll_timeout(), Some(500 + 900 + 150));
    c.advance(1_549);
    assert!(drain(&mut c).is_empty());
    c.advance(1_550);
    assert_eq!(windows(&drain(&mut c)), vec![(1_000, 1, 1)]);
}

/// Feeds `inputs` (caller's clock, trade) live, advancing whenever
/// `poll_timeout` falls due before the next input and until `until`: each
/// symbol's windows with the caller's time they came out, and the events.
fn live_run(
    a: &mut Aggregator,
    inputs: &[(i64, Trade)],
    until: i64,
) -> (Vec<(Symbol, i64, i64)>, Vec<Event>) {
    let mut timed: Vec<(i64, Event)> = Vec::new();
    let steps = inputs.iter().map(|(at, t)| (*at, Some(*t)));
    for (at, trade) in steps.chain([(until, None)]) {
        while let Some(due) = a.poll_timeout().filter(|due| *due <= at) {
            a.advance(due);
            timed.extend(drain(a).into_iter().map(|e| (due, e)));
        }
        if let Some(trade) = trade {
            a.handle_trade_at(trade, at);
            timed.extend(drain(a).into_iter().map(|e| (at, e)));
        }
    }
    let out = timed
        .iter()
        .filter_map(|(at, e)| match e {
            Event::Window(w) => Some((w.symbol, w.start_ms, *at)),
            _ => None,
        })
        .collect();
    (out, timed.into_iter().map(|(_, e)| e).collect())
}

/// `n` right trades of `symbol` from id `first`, one every `every` ms from
/// `from` on the caller's clock, dated `t` + their arrival.
fn steady(symbol: Symbol, first: u64, t: i64, from: i64, every: i64, n: u64) -> Vec<(i64, Trade)> {
    (0..n)
        .map(|i| {
            let at = from + every * i as i64;
            (at, trade(symbol, first + i, t + at, "1", "1"))
        })
        .collect()
}

/// Found by QA, live: one symbol's time far behind (wrong) held the other
/// symbols' true trades, or its own, until shutdown; and a wrong first
/// trade was taken while the other symbols' first trades were still held.
#[test]
fn other_symbols_trades_vouch_for_what_a_wrong_time_held() {
    let (q0, q1, q2) = (
        Symbol::new("Q000USDT").unwrap(),
        Symbol::new("Q001USDT").unwrap(),
        Symbol::new("Q002USDT").unwrap(),
    );
    let (t, years, day) = (1_764_900_000_000, 94_608_000_000, 86_400_000);
    let emitted = |out: &[(Symbol, i64, i64)], s: Symbol, start: i64| {
        out.iter().find(|w| w.0 == s && w.1 == start).map(|w| w.2)
    };

    // Q000's first trade is three years behind; its next, right, waits
    // only until Q001's trades reach its time.
    let mut inputs = vec![
        (0, trade(q0, 1, t - years + 500, "1", "1")),
        (500, trade(q0, 2, t + 500, "1", "1")),
    ];
    inputs.extend(steady(q1, 1, t, 600, 300, 10));
    let (out, _) = live_run(&mut agg(AggregatorConfig::default()), &inputs, 10_000);
    let at = emitted(&out, q0, t).expect("Q000's right window while running");
    assert!(at < 2_000, "{at}");

    // Q001's first trade is three years behind; Q000 and Q002 trade once,
    // right, and Q001's right trades then vouch for them.
    let mut inputs = vec![
        (0, trade(q1, 1, t - years + 500, "1", "1")),
        (1_200, trade(q0, 1, t + 1_200, "1", "1")),
        (1_200, trade(q2, 1, t + 1_200, "1", "1")),
    ];
    inputs.extend(steady(q1, 2, t, 1_300, 300, 10));
    let (out, _) = live_run(&mut agg(AggregatorConfig::default()), &inputs, 10_000);
    for s in [q0, q2] {
        let at = emitted(&out, s, t + 1_000).expect("a right window while running");
        assert!(at < 3_000, "{s}: {at}");
    }

    // Q000's first trade is a day ahead; Q001 and Q002 trade once 20 ms
    // later, their first trades still held when Q000's falls due.
    let mut inputs = vec![
        (0, trade(q0, 1, t + day + 995, "1", "1")),
        (20, trade(q1, 1, t + 20, "1", "1")),
        (20, trade(q2, 1, t + 20, "1", "1")),
    ];
    inputs.extend(steady(q0, 2, t, 300, 300, 10));
    let mut a = agg(AggregatorConfig::default());
    let (out, events) = live_run(&mut a, &inputs, 10_000);
    let outliers: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::TimeOutlier(o) if o.trade.symbol == q0 => Some(o.trade.id),
            _ => None,
        })
        .collect();
    assert_eq!(outliers, [1]);
    assert_eq!(a.stats().late_trades, 0);
    assert!(
        emitted(&out, q0, t + day).is_none(),
        "no row for the wrong time"
    );
    assert!(emitted(&out, q1, t).is_some() && emitted(&out, q2, t).is_some());

    // Two first trades a day ahead do not vouch for each other, whether
    // another symbol has a time by then (Q002 busy) or only a held trade.
    for busy in [true, false] {
        let mut inputs = vec![
            (0, trade(q0, 1, t + day + 995, "1", "1")),
            (0, trade(q1, 1, t + day + 995, "1", "1")),
            (40, trade(q2, 1, t + 40, "1", "1")),
        ];
        if busy {
            inputs.extend(steady(q2, 2, t, 50, 10, 19));
        }
        inputs.extend(steady(q0, 2, t, 300, 300, 10));
        inputs.extend(steady(q1, 2, t, 300, 300, 10));
        inputs.sort_by_key(|(at, _)| *at);
        let mut a = agg(AggregatorConfig::default());
        let (out, events) = live_run(&mut a, &inputs, 10_000);
        let outliers: Vec<(Symbol, u64)> = events
            .iter()
            .filter_map(|e| match e {
                Event::TimeOutlier(o) => Some((o.trade.symbol, o.trade.id)),
                _ => None,
            })
            .collect();
        assert_eq!(outliers.len(), 2, "busy {busy}: {outliers:?}");
        assert!(outliers.contains(&(q0, 1)) && outliers.contains(&(q1, 1)));
        assert_eq!(a.stats().late_trades, 0, "busy {busy}");
        assert!(!out.iter().any(|w| w.1 >= t + day), "busy {busy}: {out:?}");
    }

    // The run's first trade is three years behind, then twenty symbols
    // trade once, right: each window comes out while running.
    let wrong = Symbol::new("WRONGUSDT").unwrap();
    let mut inputs = vec![(0, trade(wrong, 1, t - years, "1", "1"))];
    let once: Vec<Symbol> = (0..20)
        .map(|i| Symbol::new(&format!("S{i:02}USDT")).unwrap())
        .collect();
    for (i, s) in once.iter().enumerate() {
        inputs.push((
            300 + 10 * i as i64,
            trade(*s, 1, t + 300 + 10 * i as i64, "1", "1"),
        ));
    }
    let (out, _) = live_run(&mut agg(AggregatorConfig::default()), &inputs, 10_000);
    for s in once {
        let at = emitted(&out, s, t).unwrap_or_else(|| panic!("{s}: {out:?}"));
        assert!(at < 1_500, "{s}: {at}");
    }
}
