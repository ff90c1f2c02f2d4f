//! Backfill against the fake: queue drops, REST rate limits and errors, and
//! gaps REST cannot fill. Delivered trades are exactly the recorded ones, or
//! the recorded ones minus what is counted as unfilled.

mod binance_support;

use std::time::Duration;

use binance_support::{ALTCOINS, paced_fake, recorded, total};

use pulse_core::Trade;
use pulse_io::binance::BackfillConfig;
use pulse_io::{BinanceSource, Metrics, TradeSource};
use pulse_testkit::fake_binance::{
    FakeBinance, Fault, RestFault, assert_same_trades, collect_trades,
};
use pulse_testkit::wait_until;

/// USD-M BTCUSDT `@trade`, 10,701 trades with contiguous ids.
const BTC_2024_07: &str =
    "binance-usdm_btcusdt@trade_2024-07-18T235702Z_2024-07-19T000502Z.jsonl.gz";
const WITHIN: Duration = Duration::from_secs(60);

#[tokio::test]
async fn queue_overflow_is_repaired_from_rest() {
    let Some(trades) = recorded(BTC_2024_07) else {
        return;
    };
    let fake = FakeBinance::start(trades.clone()).await;
    let metrics = Metrics::new();
    let mut config = fake.binance_config();
    config.queue_capacity = 16;
    let connected = std::time::Instant::now();
    let mut source = BinanceSource::connect(config, metrics.clone())
        .await
        .expect("connect");
    // A consumer that does not read at all while the whole tape streams by.
    wait_until(WITHIN, "the socket reader has seen every trade", || async {
        metrics.queue_dropped.get() >= (trades.len() - 16) as u64
    })
    .await;
    let got = collect_trades(&mut source, trades.len(), WITHIN).await;
    assert_same_trades(fake.trades(), &got);
    let dropped = metrics.queue_dropped.get();
    assert_eq!(dropped, (trades.len() - 16) as u64);
    assert_eq!(
        total(&fake, |l| metrics.trades_backfilled.get_or_create(l).get()),
        dropped
    );
    assert_eq!(
        total(&fake, |l| metrics.trades_unfilled.get_or_create(l).get()),
        0
    );
    // 10,685 trades in pages of 1000.
    assert_eq!(fake.stats().rest_requests, 11);
    // Trades backfilled long after they were made are no reading of the
    // local clock against Binance's: only the 16 that came in live are.
    let live_from = trades[trades.len() - 16..]
        .iter()
        .map(|t| t.event_time_ms)
        .min()
        .unwrap();
    // Moved on by the time since they came, as if they came now.
    let since_connected = connected.elapsed().as_millis() as i64;
    let arrived = source.arrived_event_ms(&got).unwrap();
    assert!(
        (live_from..=live_from + since_connected).contains(&arrived),
        "{arrived} against {live_from} + up to {since_connected}"
    );
    assert_eq!(source.arrived_event_ms(&got), None, "taken");
}

/// A stream that skips every 25th trade (REST has them all), 80 holes a
/// second against Binance's pace of a request a second: each reply runs
/// on past the hole it was asked for and fills the later ones too. One
/// request per hole would fall ever further behind.
#[tokio::test]
async fn one_reply_fills_every_hole_it_covers() {
    let Some(trades) = recorded(BTC_2024_07) else {
        return;
    };
    let fake = paced_fake(trades.clone(), 2000).await;
    let skipped: Vec<usize> = (24..trades.len() - 1).step_by(25).collect();
    fake.keep_off_stream(skipped.iter().copied());
    let metrics = Metrics::new();
    let mut config = fake.binance_config();
    config.backfill.requests_per_minute = BackfillConfig::default().requests_per_minute;
    let mut source = BinanceSource::connect(config, metrics.clone())
        .await
        .expect("connect");
    let got = collect_trades(&mut source, trades.len(), WITHIN).await;
    assert_same_trades(fake.trades(), &got);
    assert_eq!(skipped.len(), 428);
    assert_eq!(
        total(&fake, |l| metrics.trades_backfilled.get_or_create(l).get()),
        428
    );
    assert_eq!(
        total(&fake, |l| metrics.trades_unfilled.get_or_create(l).get()),
        0
    );
    let requests = fake.stats().rest_requests;
    assert!(requests <= 60, "{requests} requests for 428 holes");
}

#[tokio::test]
async fn small_pages_across_many_symbols() {
    let Some(trades) = recorded(ALTCOINS) else {
        return;
    };
    let fake = paced_fake(trades.clone(), 1000).await;
    let metrics = Metrics::new();
    let mut config = fake.binance_config();
    config.backfill.page_limit = 7;
    let mut source = BinanceSource::connect(config, metrics.clone())
        .await
        .expect("connect");
    fake.schedule(150, Fault::Disconnect);
    fake.schedule(400, Fault::Stall);
    let got = collect_trades(&mut source, trades.len(), WITHIN).await;
    assert_same_trades(fake.trades(), &got);
    assert!(fake.stats().rest_requests > 10, "paged: {:?}", fake.stats());
}

#[tokio::test]
async fn rate_limits_during_backfill_are_waited_out() {
    for fault in [
        RestFault::TooManyRequests {
            retry_after: Duration::from_secs(1),
        },
        RestFault::Banned {
            retry_after: Duration::from_secs(1),
        },
        RestFault::Unavailable,
    ] {
        let Some(trades) = recorded(ALTCOINS) else {
            return;
        };
        let fake = paced_fake(trades.clone(), 1000).await;
        let metrics = Metrics::new();
        let mut source = BinanceSource::connect(fake.binance_config(), metrics.clone())
            .await
            .expect("connect");
        fake.fail_rest(fault, 2);
        fake.schedule(200, Fault::Disconnect);
        let started = tokio::time::Instant::now();
        let got = collect_trades(&mut source, trades.len(), WITHIN).await;
        assert_same_trades(fake.trades(), &got);
        assert_eq!(fake.stats().rest_faults_served, 2, "{fault:?}");
        assert_eq!(
            total(&fake, |l| metrics.trades_unfilled.get_or_create(l).get()),
            0,
            "{fault:?}"
        );
        if !matches!(fault, RestFault::Unavailable) {
            assert!(
                started.elapsed() >= Duration::from_secs(1),
                "{fault:?}: Retry-After honoured"
            );
        } else {
            // Failed requests are retried and counted; rate limits are waits.
            let text = metrics.encode();
            let retried = "pulse_source_retries_total{operation=\"rest_backfill\"} 2";
            assert!(text.contains(retried), "{text}");
        }
    }
}

/// While backfill waits, the live trades after the gap are held: the
/// `trades_held` gauge shows them and `trades_missing` the ids they wait
/// for (a stop then would report both), and both are back at 0 once the
/// trades are handed on.
#[tokio::test]
async fn trades_held_behind_a_gap_are_shown_until_backfill_fills_it() {
    let Some(trades) = recorded(ALTCOINS) else {
        return;
    };
    let fake = paced_fake(trades.clone(), 1000).await;
    let metrics = Metrics::new();
    let mut source = BinanceSource::connect(fake.binance_config(), metrics.clone())
        .await
        .expect("connect");
    fake.fail_rest(
        RestFault::TooManyRequests {
            retry_after: Duration::from_secs(3),
        },
        1,
    );
    fake.schedule(200, Fault::Disconnect);
    let (mut most_held, mut most_missing) = (0, 0);
    let got = read_while(&mut source, |got| {
        let totals = metrics.source_totals();
        most_held = most_held.max(totals.held);
        most_missing = most_missing.max(totals.missing);
        got.len() < trades.len()
    })
    .await;
    assert_same_trades(fake.trades(), &got);
    assert!(most_held > 0, "trades were held while backfill waited");
    assert!(
        most_missing > 0,
        "the ids they wait for were counted missing"
    );
    assert_eq!(metrics.source_totals().held, 0);
    assert_eq!(metrics.source_totals().missing, 0);
}

/// A symbol that first trades while the connection is down has no id to
/// show the gap from: its trades since the last one the shard delivered
/// are looked up by time, and none is lost.
#[tokio::test]
async fn a_symbol_first_trading_during_a_reconnect_loses_nothing() {
    let Some(recorded_trades) = recorded(ALTCOINS) else {
        return;
    };
    const CUT: usize = 200;
    // One symbol trades only from the disconnect on.
    let late = recorded_trades[CUT + 1].symbol;
    let trades: Vec<Trade> = recorded_trades
        .iter()
        .enumerate()
        .filter(|(i, t)| t.symbol != late || *i > CUT)
        .map(|(_, t)| *t)
        .collect();
    let first_late = trades.iter().position(|t| t.symbol == late).unwrap();
    let fake = paced_fake(trades.clone(), 1000).await;
    let metrics = Metrics::new();
    let mut source = BinanceSource::connect(fake.binance_config(), metrics.clone())
        .await
        .expect("connect");
    fake.schedule(first_late, Fault::Disconnect);
    let got = read_while(&mut source, |got| got.len() < trades.len()).await;
    assert_same_trades(fake.trades(), &got);
    let backfilled = metrics
        .trades_backfilled
        .get_or_create(&Metrics::symbol(late.as_str()))
        .get();
    assert!(backfilled > 0, "{late}'s first trades came over REST");
    assert_eq!(
        total(&fake, |l| metrics.trades_unfilled.get_or_create(l).get()),
        0
    );
}

/// A connection lost before it delivered any trade leaves no trade time to
/// look its outage up from: Binance's server time, read while it is down,
/// gives one, and none of the trades made meanwhile is lost.
#[tokio::test]
async fn a_connection_lost_before_its_first_trade_loses_nothing() {
    let Some(fake) = lost_before_the_first_trade().await else {
        return;
    };
    let metrics = every_trade_after_the_outage(&fake).await;
    assert_eq!(fake.stats().time_requests, 1);
    assert_eq!(metrics.source_totals().unchecked, 0);
}

/// Without the server time, the first live trade's time, less the time
/// since the connection was lost, tells where to look from.
#[tokio::test]
async fn without_the_server_time_the_first_live_trade_dates_the_outage() {
    let Some(fake) = lost_before_the_first_trade().await else {
        return;
    };
    fake.fail_server_time(RestFault::Unavailable, 100);
    every_trade_after_the_outage(&fake).await;
    assert!(fake.stats().time_requests >= 3, "three tries at least");
}

/// Stopped while its connection is down, a source cannot look up what its
/// symbols miss: it says so, per symbol, in the gauge and the totals.
#[tokio::test]
async fn a_stop_while_disconnected_counts_every_symbol_unchecked() {
    let Some(trades) = recorded(ALTCOINS) else {
        return;
    };
    let fake = paced_fake(trades, 100).await;
    let followed = fake.symbols().len() as u64;
    let metrics = Metrics::new();
    let mut source = BinanceSource::connect(fake.binance_config(), metrics.clone())
        .await
        .expect("connect");
    read_while(&mut source, |got| got.len() < 20).await;
    assert_eq!(metrics.source_totals().unchecked, 0);
    fake.reject_handshakes(u64::MAX);
    fake.inject(Fault::Disconnect);
    let deadline = tokio::time::Instant::now() + WITHIN;
    while metrics.connect_failures.get() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no reconnect tried");
        let mut batch = Vec::new();
        let wait = Duration::from_millis(100);
        let _ = tokio::time::timeout(wait, source.next_trades(&mut batch)).await;
    }
    assert_eq!(metrics.outages_unchecked_pending.get(), followed as i64);
    drop(source);
    assert_eq!(metrics.source_totals().unchecked, followed);
}

/// A fake whose tape keeps time with its pace (100 trades a second, 10 ms
/// apart on the tape too, as on a live market) and drops every connection
/// before its first trade.
async fn lost_before_the_first_trade() -> Option<FakeBinance> {
    let mut trades = recorded(ALTCOINS)?;
    let start = trades[0].trade_time_ms;
    for (i, t) in (0..).zip(trades.iter_mut()) {
        t.trade_time_ms = start + 10 * i;
        t.event_time_ms = t.trade_time_ms;
    }
    let fake = paced_fake(trades, 100).await;
    fake.schedule(0, Fault::Disconnect);
    Some(fake)
}

/// Reads the whole tape from a source connected to `fake`, checks every
/// trade came, some over REST, and returns the source's metrics.
async fn every_trade_after_the_outage(fake: &FakeBinance) -> Metrics {
    let metrics = Metrics::new();
    let mut source = BinanceSource::connect(fake.binance_config(), metrics.clone())
        .await
        .expect("connect");
    let got = read_while(&mut source, |got| got.len() < fake.trades().len()).await;
    assert_same_trades(fake.trades(), &got);
    let backfilled = total(fake, |l| metrics.trades_backfilled.get_or_create(l).get());
    assert!(backfilled > 0, "the outage came over REST");
    metrics
}

#[tokio::test]
async fn a_long_ban_leaves_the_gap_unfilled_and_counted() {
    let Some(trades) = recorded(ALTCOINS) else {
        return;
    };
    let fake = paced_fake(trades.clone(), 1000).await;
    let metrics = Metrics::new();
    let mut config = fake.binance_config();
    // One request at a time, so the ban is known before the next one.
    config.backfill.concurrency = 1;
    let mut source = BinanceSource::connect(config, metrics.clone())
        .await
        .expect("connect");
    // Longer than the 120 s a backfill may wait.
    fake.fail_rest(
        RestFault::Banned {
            retry_after: Duration::from_secs(600),
        },
        1,
    );
    fake.schedule(200, Fault::Disconnect);
    let unfilled = || total(&fake, |l| metrics.trades_unfilled.get_or_create(l).get());
    // Until delivered + unfilled reach the recorded count.
    let got = read_while(&mut source, |got| {
        got.len() as u64 + unfilled() < trades.len() as u64
    })
    .await;
    assert!(unfilled() > 0);
    assert_eq!(fake.stats().rest_requests, 1, "no request during the ban");
    // What was delivered is the recording minus the gaps, in order, once.
    let delivered: std::collections::HashSet<(String, u64)> =
        got.iter().map(|t| (t.symbol.to_string(), t.id)).collect();
    assert_eq!(delivered.len(), got.len(), "no duplicates");
    let expected: Vec<Trade> = fake
        .trades()
        .iter()
        .filter(|t| delivered.contains(&(t.symbol.to_string(), t.id)))
        .copied()
        .collect();
    assert_same_trades(&expected, &got);
}

#[tokio::test]
async fn gaps_rest_cannot_fill_are_counted_not_waited_for() {
    let Some(full) = recorded(ALTCOINS) else {
        return;
    };
    // Ids older than REST's one-year reach look like this: gone everywhere.
    // Cut every seventh trade, and a run of five, out of the tape.
    let trades: Vec<Trade> = full
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 7 != 3 && !(200..205).contains(i))
        .map(|(_, t)| *t)
        .collect();
    // Count the holes independently of the code under test.
    let (mut gaps, mut missing) = (0u64, 0u64);
    let mut last: std::collections::HashMap<_, u64> = std::collections::HashMap::new();
    for t in &trades {
        if let Some(prev) = last.insert(t.symbol, t.id)
            && t.id > prev + 1
        {
            gaps += 1;
            missing += t.id - prev - 1;
        }
    }
    assert!(gaps > 50, "{gaps}");
    let fake = FakeBinance::start(trades.clone()).await;
    let metrics = Metrics::new();
    let mut source = BinanceSource::connect(fake.binance_config(), metrics.clone())
        .await
        .expect("connect");
    let got = collect_trades(&mut source, trades.len(), WITHIN).await;
    assert_same_trades(fake.trades(), &got);
    assert_eq!(total(&fake, |l| metrics.gaps.get_or_create(l).get()), gaps);
    assert_eq!(
        total(&fake, |l| metrics.trades_unfilled.get_or_create(l).get()),
        missing
    );
    assert_eq!(
        total(&fake, |l| metrics.trades_backfilled.get_or_create(l).get()),
        0
    );
}

/// `next_trades` appends: trades the caller left in `out` are not news,
/// so it still waits for trades of its own.
#[tokio::test]
async fn next_trades_waits_for_new_trades_whatever_out_holds() {
    let Some(trades) = recorded(ALTCOINS) else {
        return;
    };
    let fake = paced_fake(trades.clone(), 1000).await;
    let mut source = BinanceSource::connect(fake.binance_config(), Metrics::new())
        .await
        .expect("connect");
    let mut out = vec![trades[0]];
    tokio::time::timeout(WITHIN, source.next_trades(&mut out))
        .await
        .expect("trades in time")
        .expect("source");
    assert!(out.len() > 1, "returned without a trade of its own");
    assert_eq!(out[0], trades[0]);
    assert_eq!(out[1], fake.trades()[0]);
}

/// Reads batches while `more` (asked before each, with what came so far)
/// says so, failing after [`WITHIN`].
async fn read_while(
    source: &mut BinanceSource,
    mut more: impl FnMut(&[Trade]) -> bool,
) -> Vec<Trade> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + WITHIN;
    while more(&got) {
        // A fresh batch: `next_trades` returns at once while `out` holds any.
        let mut batch = Vec::new();
        tokio::time::timeout_at(deadline, source.next_trades(&mut batch))
            .await
            .expect("the trades expected in time")
            .expect("source");
        got.extend(batch);
    }
    got
}

/// A source whose consumer reads nothing until the whole tape was evicted
/// from a 16-trade queue, so all but 16 trades come from REST.
async fn overflowed(fake: &FakeBinance, metrics: &Metrics) -> BinanceSource {
    let mut config = fake.binance_config();
    config.queue_capacity = 16;
    let source = BinanceSource::connect(config, metrics.clone())
        .await
        .expect("connect");
    let evicted = (fake.trades().len() - 16) as u64;
    wait_until(WITHIN, "the socket reader has seen every trade", || async {
        metrics.queue_dropped.get() >= evicted
    })
    .await;
    source
}

#[tokio::test]
async fn a_corrupt_trade_in_a_rest_page_costs_only_that_trade() {
    let Some(trades) = recorded(BTC_2024_07) else {
        return;
    };
    let fake = FakeBinance::start(trades.clone()).await;
    // In the middle of the third page of the backfill.
    let bad = fake.trades()[2500];
    fake.corrupt_on_rest(bad.symbol, bad.id);
    let metrics = Metrics::new();
    let mut source = overflowed(&fake, &metrics).await;
    let got = collect_trades(&mut source, trades.len() - 1, WITHIN).await;
    let expected: Vec<Trade> = fake
        .trades()
        .iter()
        .filter(|t| t.id != bad.id)
        .copied()
        .collect();
    assert_same_trades(&expected, &got);
    let unfilled = total(&fake, |l| metrics.trades_unfilled.get_or_create(l).get());
    let backfilled = total(&fake, |l| metrics.trades_backfilled.get_or_create(l).get());
    assert_eq!(unfilled, 1, "the bad trade is counted lost");
    assert_eq!(backfilled, metrics.queue_dropped.get() - 1);
    let rejected = metrics.encode();
    assert!(
        rejected.contains("pulse_frames_rejected_total{reason=\"decimal\"} 1"),
        "{rejected}"
    );
    // The bad id is given up at once, not asked for again.
    assert_eq!(fake.stats().rest_requests, 11);
}

#[tokio::test]
async fn a_5xx_burst_within_the_retry_budget_loses_nothing() {
    let Some(trades) = recorded(BTC_2024_07) else {
        return;
    };
    let fake = FakeBinance::start(trades.clone()).await;
    let metrics = Metrics::new();
    let mut source = overflowed(&fake, &metrics).await;
    let budget = {
        let b = &source.config().backfill;
        (b.attempts * b.rounds) as usize
    };
    // Every backfill but the last of the budget fails in full.
    fake.fail_rest(RestFault::Unavailable, budget - 1);
    let got = collect_trades(&mut source, trades.len(), WITHIN).await;
    assert_same_trades(fake.trades(), &got);
    assert_eq!(fake.stats().rest_faults_served, (budget - 1) as u64);
    assert_eq!(
        total(&fake, |l| metrics.trades_unfilled.get_or_create(l).get()),
        0
    );
}

/// A 200 reply cut short is a failed transfer, not an answer: it is
/// retried like a 5xx, and the gap is filled.
#[tokio::test]
async fn rest_replies_cut_short_are_retried_and_lose_nothing() {
    let Some(trades) = recorded(BTC_2024_07) else {
        return;
    };
    let fake = FakeBinance::start(trades.clone()).await;
    let metrics = Metrics::new();
    let mut source = overflowed(&fake, &metrics).await;
    fake.fail_rest(RestFault::CutShort, 3);
    let got = collect_trades(&mut source, trades.len(), WITHIN).await;
    assert_same_trades(fake.trades(), &got);
    assert_eq!(fake.stats().rest_faults_served, 3);
    assert_eq!(
        total(&fake, |l| metrics.trades_unfilled.get_or_create(l).get()),
        0
    );
}

#[tokio::test]
async fn a_5xx_burst_beyond_the_retry_budget_is_counted_as_unfilled() {
    let Some(trades) = recorded(BTC_2024_07) else {
        return;
    };
    let fake = FakeBinance::start(trades.clone()).await;
    let metrics = Metrics::new();
    let mut source = overflowed(&fake, &metrics).await;
    let budget = {
        let b = &source.config().backfill;
        (b.attempts * b.rounds) as usize
    };
    fake.fail_rest(RestFault::Unavailable, budget);
    // Only the 16 trades the queue kept arrive; the rest is counted.
    let got = collect_trades(&mut source, 16, WITHIN).await;
    assert_same_trades(&fake.trades()[trades.len() - 16..], &got);
    assert_eq!(
        total(&fake, |l| metrics.trades_unfilled.get_or_create(l).get()),
        metrics.queue_dropped.get()
    );
    assert_eq!(fake.stats().rest_requests, budget as u64, "no more asked");
}
