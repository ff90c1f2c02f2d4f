use super::*;
use crate::{Decimal, Side, TradeKind};

fn btc() -> Symbol {
    Symbol::new("BTCUSDT").unwrap()
}

fn t(id: u64) -> Trade {
    Trade {
        symbol: btc(),
        id,
        kind: TradeKind::AggTrade,
        price: Decimal::from_raw(100 + id as i64),
        quantity: Decimal::from_raw(1),
        side: Side::Buy,
        trade_time_ms: id as i64,
        event_time_ms: id as i64,
        first_trade_id: id,
        last_trade_id: id,
    }
}

/// The resume point of `t(id)`.
fn point(id: u64) -> ResumePoint {
    ResumePoint {
        id,
        trade_time_ms: id as i64,
    }
}

fn ids(lanes: &mut Lanes) -> Vec<u64> {
    let mut out = Vec::new();
    lanes.drain_ready(&mut out);
    out.iter().map(|t| t.id).collect()
}

fn outcome(trades: &[u64], highest: Option<u64>, failure: Option<&str>) -> BackfillOutcome {
    BackfillOutcome {
        trades: trades.iter().map(|&id| t(id)).collect(),
        highest_listed: highest,
        unreadable: Vec::new(),
        failure: failure.map(|f| BackfillFailure::Final(f.to_string())),
    }
}

#[test]
fn contiguous_and_duplicate_trades() {
    let mut lanes = Lanes::new(3);
    for id in [5, 6, 6, 7, 5] {
        lanes.live(t(id));
    }
    assert_eq!(ids(&mut lanes), vec![5, 6, 7]);
    assert_eq!(lanes.poll_backfill(), None);
    assert_eq!(lanes.stats().duplicates, 2);
}

#[test]
fn ids_below_the_handed_out_ones_are_dropped() {
    let mut lanes = Lanes::new(3);
    for id in [10, 11, 9, 8, 12] {
        lanes.live(t(id));
    }
    assert_eq!(ids(&mut lanes), vec![10, 11, 12]);
    assert_eq!(lanes.poll_backfill(), None);
    assert_eq!(lanes.stats().duplicates, 2);
    assert_eq!(lanes.stats().gaps, 0);
}

#[test]
fn a_gap_holds_trades_until_backfill_fills_it() {
    let mut lanes = Lanes::new(3);
    for id in [1, 2, 6, 7] {
        lanes.live(t(id));
    }
    assert_eq!(ids(&mut lanes), vec![1, 2]);
    assert_eq!((lanes.held(), lanes.missing()), (2, 3));
    assert_eq!(lanes.holding().collect::<Vec<_>>(), [t(1).symbol]);
    let req = lanes.poll_backfill().unwrap();
    assert_eq!((req.from_id, req.until, req.round), (3, Some(5), 0));
    assert_eq!(
        lanes.poll_backfill(),
        None,
        "one backfill per symbol at a time"
    );
    lanes.live(t(8));
    lanes.backfilled(req, outcome(&[3, 4, 5, 6], Some(6), None));
    assert_eq!(lanes.missing(), 0);
    assert_eq!(ids(&mut lanes), vec![3, 4, 5, 6, 7, 8]);
    assert_eq!(lanes.held(), 0);
    assert_eq!(lanes.holding().count(), 0, "the gap is closed");
    assert_eq!(lanes.stats().gaps, 1);
    assert_eq!(lanes.stats().backfilled, 3);
    // 6 came live: past the hole asked for, the reply's copy is no news.
    assert_eq!(lanes.stats().duplicates, 0);
    assert_eq!(lanes.poll_backfill(), None);
}

#[test]
fn one_reply_fills_every_hole_it_covers() {
    let mut lanes = Lanes::new(3);
    for id in [1, 3, 4, 6, 8, 9] {
        lanes.live(t(id));
    }
    assert_eq!(ids(&mut lanes), vec![1]);
    assert_eq!((lanes.held(), lanes.missing()), (5, 3));
    let req = lanes.poll_backfill().unwrap();
    assert_eq!((req.from_id, req.until), (2, Some(2)));
    // REST pages on from 2 to what it has, past the stream's newest.
    lanes.backfilled(req, outcome(&(2..=11).collect::<Vec<_>>(), Some(11), None));
    assert_eq!(ids(&mut lanes), (1..=9).collect::<Vec<_>>()[1..]);
    assert_eq!(lanes.missing(), 0);
    assert_eq!(lanes.stats().backfilled, 3, "2, 5 and 7");
    assert_eq!(lanes.stats().duplicates, 0);
    assert_eq!(lanes.poll_backfill(), None, "no request per hole");
    // 10 and 11 are the stream's to bring, once.
    lanes.live(t(10));
    lanes.live(t(11));
    assert_eq!(ids(&mut lanes), vec![10, 11]);
    assert_eq!(lanes.stats().duplicates, 0);
}

#[test]
fn holes_rest_does_not_have_are_left_unfilled() {
    // (backfill outcomes in turn, ids handed out, trades unfilled)
    let cases: Vec<(&str, Vec<BackfillOutcome>, Vec<u64>, u64)> = vec![
        (
            "listed past the hole",
            vec![outcome(&[4, 9], Some(9), None)],
            vec![1, 4, 9],
            6,
        ),
        (
            "failed",
            vec![outcome(&[2], Some(2), Some("HTTP 400"))],
            vec![1, 2, 9],
            6,
        ),
        (
            "never catches up",
            vec![
                outcome(&[], None, None),
                outcome(&[], None, None),
                outcome(&[], None, None),
            ],
            vec![1, 9],
            7,
        ),
        (
            "progress resets the rounds",
            vec![
                outcome(&[], None, None),
                outcome(&[2, 3], Some(3), None),
                outcome(&[], None, None),
                outcome(&[4, 5, 6, 7, 8], Some(8), None),
            ],
            vec![1, 2, 3, 4, 5, 6, 7, 8, 9],
            0,
        ),
    ];
    for (name, outcomes, want, unfilled) in cases {
        let mut lanes = Lanes::new(3);
        lanes.live(t(1));
        lanes.live(t(9));
        for o in outcomes {
            let req = lanes
                .poll_backfill()
                .unwrap_or_else(|| panic!("{name}: no request"));
            lanes.backfilled(req, o);
        }
        assert_eq!(ids(&mut lanes), want, "{name}");
        assert_eq!(lanes.held(), 0, "{name}");
        assert_eq!(lanes.poll_backfill(), None, "{name}");
        assert_eq!(lanes.stats().unfilled, unfilled, "{name}");
    }
}

fn transient(trades: &[u64], highest: Option<u64>) -> BackfillOutcome {
    BackfillOutcome {
        failure: Some(BackfillFailure::Transient("HTTP 503".into())),
        ..outcome(trades, highest, None)
    }
}

fn unfilled_events(lanes: &mut Lanes) -> Vec<(u64, u64, String)> {
    std::iter::from_fn(|| lanes.poll_event())
        .filter_map(|e| match e {
            LaneEvent::Unfilled {
                missing, reason, ..
            } => Some((missing.first, missing.last, reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_transient_failure_keeps_the_hole_open() {
    let mut lanes = Lanes::new(3);
    lanes.live(t(1));
    lanes.live(t(9));
    // Two failed rounds, one with part of the hole, then the rest.
    let req = lanes.poll_backfill().unwrap();
    lanes.backfilled(req, transient(&[], None));
    let req = lanes.poll_backfill().expect("asked again");
    assert_eq!((req.from_id, req.until, req.round), (2, Some(8), 1));
    lanes.backfilled(req, transient(&[2, 3], Some(3)));
    let req = lanes.poll_backfill().expect("progress: asked again");
    assert_eq!((req.from_id, req.round), (4, 0));
    lanes.backfilled(req, transient(&[], None));
    let req = lanes.poll_backfill().expect("one round left");
    lanes.backfilled(req, outcome(&[4, 5, 6, 7, 8], Some(8), None));
    assert_eq!(ids(&mut lanes), (1..=9).collect::<Vec<_>>());
    assert_eq!(lanes.stats().unfilled, 0);
    let failed: Vec<bool> = std::iter::from_fn(|| lanes.poll_event())
        .filter_map(|e| match e {
            LaneEvent::BackfillFailed { retrying, .. } => Some(retrying),
            _ => None,
        })
        .collect();
    assert_eq!(failed, vec![true, true, true]);
}

#[test]
fn transient_failures_past_the_rounds_leave_the_hole_unfilled() {
    let mut lanes = Lanes::new(3);
    lanes.live(t(1));
    lanes.live(t(9));
    for _ in 0..3 {
        let req = lanes.poll_backfill().expect("a round");
        lanes.backfilled(req, transient(&[], None));
    }
    assert_eq!(lanes.poll_backfill(), None);
    assert_eq!(ids(&mut lanes), vec![1, 9]);
    assert_eq!(lanes.stats().unfilled, 7);
    assert_eq!(unfilled_events(&mut lanes), vec![(2, 8, "HTTP 503".into())]);
}

#[test]
fn an_unreadable_trade_costs_only_its_id() {
    // (held live ids, backfilled ids, unreadable ids, unfilled ranges)
    type Case = (&'static str, Vec<u64>, Vec<u64>, Vec<u64>, Vec<(u64, u64)>);
    let cases: Vec<Case> = vec![
        (
            "inside the hole",
            vec![9],
            vec![2, 3, 5, 6, 7, 8],
            vec![4],
            vec![(4, 4)],
        ),
        (
            "at its start",
            vec![9],
            vec![4, 5, 6, 7, 8],
            vec![2, 3],
            vec![(2, 3)],
        ),
        (
            "at its end",
            vec![9],
            vec![2, 3, 4, 5, 6, 7],
            vec![8],
            vec![(8, 8)],
        ),
        (
            "several",
            vec![9],
            vec![3, 5, 6, 8],
            vec![2, 4, 7],
            vec![(2, 2), (4, 4), (7, 7)],
        ),
        (
            "also live",
            vec![5, 9],
            vec![2, 3, 4, 6, 7, 8],
            vec![5],
            vec![],
        ),
    ];
    for (name, live, fetched, unreadable, want) in cases {
        let mut lanes = Lanes::new(3);
        lanes.live(t(1));
        for &id in &live {
            lanes.live(t(id));
        }
        let req = lanes.poll_backfill().unwrap();
        let o = BackfillOutcome {
            unreadable: unreadable.clone(),
            ..outcome(&fetched, Some(8), None)
        };
        lanes.backfilled(req, o);
        let got = ids(&mut lanes);
        let mut expected: Vec<u64> = (1..=9)
            .filter(|id| !unreadable.contains(id) || live.contains(id))
            .collect();
        expected.dedup();
        assert_eq!(got, expected, "{name}");
        let lost: Vec<(u64, u64)> = unfilled_events(&mut lanes)
            .into_iter()
            .map(|(first, last, reason)| {
                assert_eq!(reason, "unreadable in the REST reply", "{name}");
                (first, last)
            })
            .collect();
        assert_eq!(lost, want, "{name}");
        assert_eq!(lanes.poll_backfill(), None, "{name}: nothing asked again");
    }
}

#[test]
fn an_unreadable_last_trade_of_a_catch_up_is_given_up_at_once() {
    let mut lanes = Lanes::new(3);
    lanes.live(t(1));
    lanes.reconnected(&[btc()], None);
    lanes.catch_up_quiet(&[btc()]);
    let req = lanes.poll_backfill().unwrap();
    assert_eq!(req.until, None);
    let o = BackfillOutcome {
        unreadable: vec![4],
        ..outcome(&[2, 3], Some(4), None)
    };
    lanes.backfilled(req, o);
    lanes.live(t(5));
    assert_eq!(ids(&mut lanes), vec![1, 2, 3, 5]);
    assert_eq!(lanes.stats().unfilled, 1);
    assert_eq!(lanes.stats().gaps, 0, "id 4 is accounted for, not a gap");
    assert_eq!(lanes.poll_backfill(), None);
}

#[test]
fn a_reconnected_quiet_symbol_is_held_until_its_catch_up_answers() {
    let mut lanes = Lanes::new(3);
    lanes.live(t(1));
    assert_eq!(lanes.holding().count(), 0);
    lanes.reconnected(&[btc()], None);
    assert_eq!(lanes.holding().collect::<Vec<_>>(), [btc()], "quiet");
    lanes.catch_up_quiet(&[btc()]);
    assert_eq!(lanes.holding().count(), 1, "catch-up wanted");
    let req = lanes.poll_backfill().unwrap();
    assert_eq!(lanes.holding().count(), 1, "catch-up in flight");
    lanes.backfilled(req, outcome(&[2, 3], Some(3), None));
    assert_eq!(lanes.holding().count(), 0, "caught up");
    assert_eq!(ids(&mut lanes), vec![1, 2, 3]);

    // A live trade after the reconnect shows any gap itself.
    lanes.reconnected(&[btc()], None);
    lanes.live(t(4));
    assert_eq!(lanes.holding().count(), 0);
}

#[test]
fn a_catch_up_that_failed_for_now_is_asked_again() {
    let mut lanes = Lanes::new(2);
    lanes.live(t(1));
    lanes.reconnected(&[btc()], None);
    lanes.catch_up_quiet(&[btc()]);
    let req = lanes.poll_backfill().unwrap();
    lanes.backfilled(req, transient(&[], None));
    let req = lanes.poll_backfill().expect("asked again");
    assert_eq!((req.from_id, req.until, req.round), (2, None, 1));
    lanes.backfilled(req, transient(&[], None));
    assert_eq!(lanes.poll_backfill(), None, "bounded by the rounds");
    assert_eq!(lanes.stats().unfilled, 0, "nothing known missing");
}

#[test]
fn a_resumed_lane_backfills_from_after_the_last_delivered_trade() {
    let mut lanes = Lanes::new(3);
    lanes.resume_after(btc(), point(4), 100);
    // The old copies of delivered trades are duplicates, the first live
    // trade reveals the gap, and backfill closes it.
    for id in [3, 4, 8, 9] {
        lanes.live(t(id));
    }
    assert_eq!(ids(&mut lanes), Vec::<u64>::new());
    let req = lanes.poll_backfill().unwrap();
    assert_eq!((req.from_id, req.until), (5, Some(7)));
    lanes.backfilled(req, outcome(&[5, 6, 7, 8], Some(8), None));
    assert_eq!(ids(&mut lanes), vec![5, 6, 7, 8, 9]);
    // 3 and 4; the reply's 8, past the hole, is the stream's.
    assert_eq!(lanes.stats().duplicates, 2);
    assert_eq!(lanes.stats().backfilled, 3);
    assert_eq!(lanes.stats().unfilled, 0);
}

#[test]
fn a_resume_point_ahead_of_the_live_stream_starts_the_lane_over() {
    let mut lanes = Lanes::new(3);
    // The topic's last trade came from another id space (a replayed
    // `@trade` capture): a far higher id, at an earlier trade time.
    let resumed = ResumePoint {
        id: 5_000,
        trade_time_ms: 10,
    };
    lanes.resume_after(btc(), resumed, 100);
    lanes.catch_up_quiet(&[btc()]);
    let catch_up = lanes.poll_backfill().unwrap();
    assert_eq!(catch_up.from_id, 5_001);
    lanes.live(t(20));
    lanes.live(t(21));
    assert_eq!(
        lanes.poll_event(),
        Some(LaneEvent::ResumeAhead {
            symbol: btc(),
            resumed,
            live_id: 20,
            live_time_ms: 20,
        })
    );
    assert_eq!(lanes.poll_event(), None, "reported once");
    // REST shares the live ids: nothing lies above the point.
    lanes.backfilled(catch_up, outcome(&[], None, None));
    lanes.live(t(22));
    assert_eq!(ids(&mut lanes), vec![20, 21, 22]);
    assert_eq!(lanes.stats(), LaneStats::default(), "no duplicate, no gap");
    assert_eq!(lanes.poll_backfill(), None);
    // From then on, repeats are ordinary duplicates.
    lanes.live(t(21));
    assert_eq!(lanes.stats().duplicates, 1);
}

#[test]
fn old_copies_of_the_resume_point_stay_duplicates() {
    let mut lanes = Lanes::new(3);
    lanes.resume_after(btc(), point(10), 100);
    // Lower ids at earlier (or the same) times: copies of what the
    // topic holds, not a sign of another stream.
    lanes.live(t(9));
    lanes.live(t(10));
    lanes.live(t(11));
    lanes.live(t(12));
    // A reconnect replays recent ids.
    lanes.reconnected(&[btc()], None);
    lanes.live(t(11));
    lanes.live(t(12));
    lanes.live(t(13));
    assert_eq!(ids(&mut lanes), vec![11, 12, 13]);
    assert_eq!(lanes.stats().duplicates, 4);
    let events: Vec<LaneEvent> = std::iter::from_fn(|| lanes.poll_event()).collect();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, LaneEvent::ResumeAhead { .. })),
        "{events:?}"
    );
}

#[test]
fn a_resume_backfills_at_most_its_bound() {
    let mut lanes = Lanes::new(3);
    lanes.resume_after(btc(), point(10), 3);
    lanes.live(t(30));
    // 11..=26 lie more than 3 before the first live trade: given up, counted.
    let req = lanes.poll_backfill().unwrap();
    assert_eq!((req.from_id, req.until), (27, Some(29)));
    lanes.backfilled(req, outcome(&[27, 28, 29], Some(29), None));
    assert_eq!(ids(&mut lanes), vec![27, 28, 29, 30]);
    assert_eq!(lanes.stats().unfilled, 16);
}

#[test]
fn a_quiet_resumed_lane_catches_up_within_its_bound() {
    let mut lanes = Lanes::new(3);
    lanes.resume_after(btc(), point(10), 500);
    assert_eq!(lanes.poll_backfill(), None, "waits for a live trade first");
    lanes.catch_up_quiet(&[btc()]);
    let req = lanes.poll_backfill().unwrap();
    assert_eq!((req.from_id, req.until), (11, Some(510)));
    lanes.backfilled(req, outcome(&[11, 12], Some(12), None));
    assert_eq!(ids(&mut lanes), vec![11, 12]);
    assert_eq!(lanes.poll_backfill(), None);
}

#[test]
fn a_quiet_resume_uses_up_its_bound_and_the_first_live_trade_counts_the_rest() {
    let mut lanes = Lanes::new(3);
    lanes.resume_after(btc(), point(10), 3);
    // An old id first: it neither reveals the gap nor spends the bound.
    lanes.live(t(9));
    lanes.catch_up_quiet(&[btc()]);
    let req = lanes.poll_backfill().unwrap();
    assert_eq!((req.from_id, req.until), (11, Some(13)));
    // REST lists past the bound; only what was kept counts as listed.
    lanes.backfilled(req, outcome(&[11, 12, 13], Some(13), None));
    assert_eq!(ids(&mut lanes), vec![11, 12, 13]);
    lanes.reconnected(&[btc()], None);
    lanes.catch_up_quiet(&[btc()]);
    assert_eq!(lanes.poll_backfill(), None, "the bound is used up");
    // The first live trade gives up everything before it.
    lanes.live(t(20));
    assert_eq!(ids(&mut lanes), vec![20]);
    assert_eq!(lanes.stats().unfilled, 6);
    assert_eq!(lanes.stats().backfilled, 3);
}

#[test]
fn a_backfill_superseded_by_the_bound_does_not_cost_a_round() {
    let mut lanes = Lanes::new(1);
    lanes.resume_after(btc(), point(0), 5);
    lanes.catch_up_quiet(&[btc()]);
    let catch_up = lanes.poll_backfill().unwrap();
    assert_eq!((catch_up.from_id, catch_up.until), (1, Some(5)));
    // The first live trade arrives while the catch-up is in flight.
    lanes.live(t(100));
    lanes.backfilled(catch_up, outcome(&[1, 2, 3, 4, 5], Some(5), None));
    // 1..=94 are given up; 95..=99 are still wanted, with a round to spare.
    let req = lanes.poll_backfill().unwrap();
    assert_eq!((req.from_id, req.until), (95, Some(99)));
    lanes.backfilled(req, outcome(&[95, 96, 97, 98, 99], Some(99), None));
    assert_eq!(ids(&mut lanes), vec![95, 96, 97, 98, 99, 100]);
    assert_eq!(lanes.stats().unfilled, 94);
}

#[test]
fn evicted_trades_are_backfilled_even_without_a_later_trade() {
    let mut lanes = Lanes::new(3);
    lanes.live(t(1));
    lanes.evicted(btc(), IdRange { first: 2, last: 4 });
    let req = lanes.poll_backfill().unwrap();
    assert_eq!((req.from_id, req.until), (2, Some(4)));
    lanes.backfilled(req, outcome(&[2, 3, 4], Some(4), None));
    lanes.live(t(5));
    assert_eq!(ids(&mut lanes), vec![1, 2, 3, 4, 5]);

    // Evicted before anything was handed out: start from the oldest lost id.
    let mut lanes = Lanes::new(3);
    lanes.evicted(
        btc(),
        IdRange {
            first: 10,
            last: 11,
        },
    );
    lanes.live(t(12));
    let req = lanes.poll_backfill().unwrap();
    assert_eq!((req.from_id, req.until), (10, Some(11)));
    lanes.backfilled(req, outcome(&[10, 11, 12], Some(12), None));
    assert_eq!(ids(&mut lanes), vec![10, 11, 12]);
}

#[test]
fn reconnect_catches_up_quiet_symbols_only() {
    let eth = Symbol::new("ETHUSDT").unwrap();
    let mut lanes = Lanes::new(3);
    lanes.live(t(1));
    lanes.live(Trade {
        symbol: eth,
        ..t(50)
    });
    let unseen = Symbol::new("BNBUSDT").unwrap();
    let all = [btc(), eth, unseen];
    lanes.reconnected(&all, None);
    // ETH trades again after the reconnect: its sequence shows any gap.
    lanes.live(Trade {
        symbol: eth,
        ..t(51)
    });
    assert_eq!(
        lanes.poll_backfill(),
        None,
        "nothing before the catch-up is due"
    );
    lanes.catch_up_quiet(&all);
    let req = lanes.poll_backfill().unwrap();
    assert_eq!((req.symbol, req.from_id, req.until), (btc(), 2, None));
    assert_eq!(
        lanes.poll_backfill(),
        None,
        "busy and unseen symbols need none"
    );
    lanes.live(t(4));
    lanes.backfilled(req, outcome(&[2, 3, 4, 5], Some(5), None));
    lanes.live(t(5));
    lanes.live(t(6));
    let btc_ids: Vec<u64> = {
        let mut out = Vec::new();
        lanes.drain_ready(&mut out);
        out.iter()
            .filter(|t| t.symbol == btc())
            .map(|t| t.id)
            .collect()
    };
    assert_eq!(btc_ids, vec![1, 2, 3, 4, 5, 6]);
}

#[test]
fn an_outage_is_unchecked_until_a_live_trade_or_a_catch_up_answers() {
    let eth = Symbol::new("ETHUSDT").unwrap();
    let sol = Symbol::new("SOLUSDT").unwrap();
    let mut lanes = Lanes::new(1);
    for symbol in [btc(), eth, sol] {
        lanes.live(Trade { symbol, ..t(1) });
    }
    assert_eq!(lanes.unchecked_outages().count(), 0);
    lanes.reconnected(&[btc(), eth, sol], None);
    let unchecked = |lanes: &Lanes| lanes.unchecked_outages().collect::<Vec<_>>();
    assert_eq!(unchecked(&lanes), [btc(), eth, sol]);

    // ETH trades: any gap shows in its ids.
    lanes.live(Trade {
        symbol: eth,
        ..t(2)
    });
    assert_eq!(unchecked(&lanes), [btc(), sol]);

    // BTC's catch-up answers; SOL's fails for good.
    lanes.catch_up_quiet(&[btc(), sol]);
    let first = lanes.poll_backfill().unwrap();
    let second = lanes.poll_backfill().unwrap();
    assert_eq!((first.symbol, second.symbol), (btc(), sol));
    assert_eq!(unchecked(&lanes), [btc(), sol], "under way");
    lanes.backfilled(first, outcome(&[], Some(1), None));
    lanes.backfilled(second, outcome(&[], None, Some("HTTP 400")));
    assert_eq!(unchecked(&lanes), [sol]);
    assert_eq!(lanes.poll_backfill(), None, "given up");

    // Only a live trade of SOL tells now.
    lanes.live(Trade {
        symbol: sol,
        ..t(2)
    });
    assert_eq!(lanes.unchecked_outages().count(), 0);

    // A resume's catch-up that reached its bound with more listed beyond
    // has not seen the whole outage.
    let bnb = Symbol::new("BNBUSDT").unwrap();
    lanes.resume_after(bnb, point(10), 2);
    lanes.catch_up_quiet(&[bnb]);
    let req = lanes.poll_backfill().unwrap();
    assert_eq!((req.from_id, req.until), (11, Some(12)));
    let mut page = outcome(&[], Some(15), None);
    page.trades = [11, 12]
        .map(|id| Trade {
            symbol: bnb,
            ..t(id)
        })
        .to_vec();
    lanes.backfilled(req, page);
    assert_eq!(unchecked(&lanes), [bnb]);
}

#[test]
fn a_forgotten_symbol_starts_afresh() {
    let mut lanes = Lanes::new(3);
    for id in [1, 2, 5] {
        lanes.live(t(id));
    }
    assert_eq!(ids(&mut lanes), vec![1, 2]);
    assert_eq!(lanes.forget(btc()), 1, "5 waited behind the hole 3..=4");
    assert_eq!(
        lanes.poll_backfill(),
        None,
        "no backfill for a dropped symbol"
    );
    // Listed again later: its first trade starts the lane, no gap back to 2.
    lanes.live(t(40));
    lanes.live(t(41));
    assert_eq!(ids(&mut lanes), vec![40, 41]);
    assert_eq!(lanes.poll_backfill(), None);
    assert_eq!(lanes.stats().gaps, 1, "only the first hole");
}

/// A symbol that had not traded before a reconnect: its first live
/// trade waits while the trades since the connection failed are
/// fetched by time, then all go out in id order; what REST did not
/// list between the two is a hole like any other.
#[test]
fn a_symbol_without_trades_before_a_reconnect_is_looked_up_by_time() {
    let mut lanes = Lanes::new(3);
    lanes.reconnected(&[btc()], Some(1_000));
    lanes.live(t(50));
    assert_eq!(ids(&mut lanes), Vec::<u64>::new(), "held until anchored");
    assert_eq!(lanes.holding().count(), 1);
    let req = lanes.poll_backfill().unwrap();
    assert_eq!(
        (req.from_time_ms, req.until, req.round),
        (Some(1_000), Some(49), 0)
    );
    lanes.live(t(51));
    lanes.backfilled(req, outcome(&[40, 41], Some(41), None));
    assert_eq!(ids(&mut lanes), vec![40, 41]);
    assert_eq!(lanes.missing(), 8);
    // 42..=49 are asked for by id, as for any gap.
    let req = lanes.poll_backfill().unwrap();
    assert_eq!(
        (req.from_id, req.until, req.from_time_ms),
        (42, Some(49), None)
    );
    let rest: Vec<u64> = (42..=49).collect();
    lanes.backfilled(req, outcome(&rest, Some(49), None));
    assert_eq!(ids(&mut lanes), (42..=51).collect::<Vec<_>>());
    assert_eq!(lanes.stats().backfilled, 10, "live trades are not counted");
    assert_eq!(lanes.holding().count(), 0);
}

/// Quiet after the reconnect too: the catch-up asks by time. An empty
/// answer leaves the lane looking: its next live trade asks again, and
/// REST that lists nothing before it has not caught up yet (asked again,
/// a bounded number of rounds, then reported unchecked). A lane with no
/// time to ask from starts at its next live trade.
#[test]
fn a_quiet_symbol_without_trades_is_caught_up_by_time() {
    let mut lanes = Lanes::new(3);
    let eth = Symbol::new("ETHUSDT").unwrap();
    lanes.reconnected(&[btc()], Some(1_000));
    lanes.reconnected(&[eth], None);
    assert_eq!(
        lanes.poll_backfill(),
        None,
        "not before the catch-up is due"
    );
    lanes.catch_up_quiet(&[btc(), eth]);
    let req = lanes.poll_backfill().unwrap();
    assert_eq!(
        (req.symbol, req.from_time_ms, req.until),
        (btc(), Some(1_000), None)
    );
    assert_eq!(lanes.poll_backfill(), None, "nothing to ask for ETH");
    lanes.backfilled(req, outcome(&[], None, None));
    lanes.live(Trade {
        symbol: eth,
        ..t(3)
    });
    assert_eq!(ids(&mut lanes), vec![3]);

    // BTC trades: REST lags and lists nothing twice, then 5 and 6.
    lanes.live(t(7));
    for round in 0..2 {
        let req = lanes.poll_backfill().unwrap();
        assert_eq!(
            (req.from_time_ms, req.until, req.round),
            (Some(1_000), Some(6), round)
        );
        lanes.backfilled(req, outcome(&[], None, None));
        assert_eq!(ids(&mut lanes), Vec::<u64>::new());
    }
    let req = lanes.poll_backfill().unwrap();
    lanes.backfilled(req, outcome(&[5, 6, 7, 8], Some(6), None));
    assert_eq!(ids(&mut lanes), vec![5, 6, 7]);
    assert_eq!(lanes.stats().backfilled, 2, "the live 7 is not counted");
    assert_eq!(lanes.stats().duplicates, 0);

    // REST never lists the outage: after the rounds the symbol goes on
    // from its first live trade, and the outage is reported unchecked.
    let bnb = Symbol::new("BNBUSDT").unwrap();
    std::iter::from_fn(|| lanes.poll_event()).for_each(drop);
    lanes.reconnected(&[bnb], Some(2_000));
    lanes.live(Trade {
        symbol: bnb,
        ..t(9)
    });
    lanes.live(Trade {
        symbol: bnb,
        ..t(11)
    });
    for round in 0..3 {
        let req = lanes.poll_backfill().unwrap();
        assert_eq!((req.symbol, req.round), (bnb, round));
        lanes.backfilled(req, outcome(&[], None, None));
    }
    assert_eq!(ids(&mut lanes), vec![9]);
    assert_eq!(lanes.stats().unchecked, 1);
    let events: Vec<LaneEvent> = std::iter::from_fn(|| lanes.poll_event()).collect();
    assert!(
        events.iter().any(
            |e| matches!(e, LaneEvent::Unchecked { symbol, first_live: 9, .. } if *symbol == bnb)
        ),
        "{events:?}"
    );
    let gaps = events
        .iter()
        .filter(|e| matches!(e, LaneEvent::Gap { .. }))
        .count();
    assert_eq!(gaps, 1, "the gap between 9 and 11 is reported once");

    // BNB's hole is filled.
    let req = lanes.poll_backfill().unwrap();
    assert_eq!((req.symbol, req.from_id), (bnb, 10));
    let mut filled = outcome(&[], Some(10), None);
    filled.trades.push(Trade {
        symbol: bnb,
        ..t(10)
    });
    lanes.backfilled(req, filled);
    assert_eq!(ids(&mut lanes), vec![10, 11]);

    // A blind lookup that fails leaves the outage unchecked, and says
    // so, until a live trade asks again.
    let sol = Symbol::new("SOLUSDT").unwrap();
    lanes.reconnected(&[sol], Some(3_000));
    lanes.catch_up_quiet(&[sol]);
    let req = lanes.poll_backfill().unwrap();
    lanes.backfilled(req, outcome(&[], None, Some("HTTP 400")));
    assert_eq!(lanes.unchecked_outages().collect::<Vec<_>>(), [sol]);
    assert_eq!(lanes.poll_backfill(), None);
    lanes.live(Trade {
        symbol: sol,
        ..t(30)
    });
    let req = lanes.poll_backfill().unwrap();
    assert_eq!((req.symbol, req.from_time_ms), (sol, Some(3_000)));
    let mut found = outcome(&[], Some(29), None);
    found.trades = [28, 29]
        .map(|id| Trade {
            symbol: sol,
            ..t(id)
        })
        .to_vec();
    lanes.backfilled(req, found);
    assert_eq!(ids(&mut lanes), vec![28, 29, 30]);
    assert_eq!(lanes.unchecked_outages().count(), 0);
}
