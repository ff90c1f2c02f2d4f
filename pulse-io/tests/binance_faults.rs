//! The Binance source against the fake: after each WebSocket fault the
//! trades delivered are exactly the recorded ones (none missing, none
//! duplicated, in id order per symbol), and reconnects happen in bounded time.

mod binance_support;

use std::future::Future;
use std::time::Duration;

use binance_support::{ALTCOINS, paced_fake, recorded, total};

use pulse_core::{Trade, TradeKind};
use pulse_io::{BinanceSource, Metrics, TradeSource};
use pulse_testkit::fake_binance::{
    FakeBinance, FakeConfig, Fault, Pace, assert_same_trades, collect_trades,
};
use pulse_testkit::wait_until;

const WITHIN: Duration = Duration::from_secs(30);
/// How long a reconnect may take: the stall timeout plus backoff, with room.
const RECONNECT_WITHIN: Duration = Duration::from_secs(5);

#[tokio::test]
async fn delivers_every_trade_when_nothing_goes_wrong() {
    let Some(trades) = recorded(ALTCOINS) else {
        return;
    };
    let fake = FakeBinance::start(trades.clone()).await;
    let metrics = Metrics::new();
    let mut source = BinanceSource::connect(fake.binance_config(), metrics.clone())
        .await
        .expect("connect");
    let got = collect_trades(&mut source, trades.len(), WITHIN).await;
    assert_same_trades(fake.trades(), &got);
    assert_eq!(fake.stats().connections_accepted, 1);
    assert_eq!(metrics.reconnects.get(), 0);
    assert_eq!(metrics.connections.get(), 1);
}

#[tokio::test]
async fn symbols_are_sharded_over_connections_and_survive_a_drop_of_all() {
    let Some(trades) = recorded(ALTCOINS) else {
        return;
    };
    // Played once all three connections are up, so none misses the start.
    let config = FakeConfig {
        pace: Pace::TradesPerSecond(1000),
        start: pulse_testkit::fake_binance::Start::Manual,
    };
    let fake = FakeBinance::start_with(trades.clone(), config).await;
    let metrics = Metrics::new();
    // Five symbols at two streams per connection: three connections.
    let config = pulse_io::BinanceConfig {
        streams_per_connection: 2,
        ..fake.binance_config()
    };
    let mut source = BinanceSource::connect(config, metrics.clone())
        .await
        .expect("connect");
    fake.play();
    let mut got = collect_trades(&mut source, trades.len() / 2, WITHIN).await;
    assert_eq!(fake.stats().connections_accepted, 3);
    assert_eq!(metrics.connections.get(), 3);
    fake.inject(Fault::Disconnect);
    got.extend(collect_trades(&mut source, trades.len() - got.len(), WITHIN).await);
    assert_same_trades(fake.trades(), &got);
    assert_eq!(
        fake.stats().connections_accepted,
        6,
        "each shard reconnected once"
    );
    assert_eq!(metrics.reconnects.get(), 3);
}

/// Injects `fault` a third of the way in, checks the reconnect came within
/// [`RECONNECT_WITHIN`], then that every trade arrived exactly once.
/// The altcoins capture played at 1000 trades/s and a source connected to
/// it, with its metrics; `None` without the recorded data.
async fn altcoins_source() -> Option<(Vec<Trade>, FakeBinance, Metrics, BinanceSource)> {
    let trades = recorded(ALTCOINS)?;
    let fake = paced_fake(trades.clone(), 1000).await;
    let metrics = Metrics::new();
    let source = BinanceSource::connect(fake.binance_config(), metrics.clone())
        .await
        .expect("connect");
    Some((trades, fake, metrics, source))
}

/// The trades `source` delivers until `done` finishes: a test waiting for a
/// reconnect keeps consuming meanwhile, as a real pipeline would.
async fn consume_until(source: &mut BinanceSource, done: impl Future<Output = ()>) -> Vec<Trade> {
    let mut got = Vec::new();
    tokio::pin!(done);
    loop {
        let mut batch = Vec::new();
        tokio::select! {
            _ = &mut done => return got,
            more = source.next_trades(&mut batch) => {
                more.expect("source");
                got.extend(batch);
            }
        }
    }
}

async fn survives(fault: Fault) {
    let Some((trades, fake, metrics, mut source)) = altcoins_source().await else {
        return;
    };
    let third = trades.len() / 3;
    let mut got = collect_trades(&mut source, third, WITHIN).await;
    fake.inject(fault);
    // Keep consuming while waiting, as a real pipeline would.
    let what = format!("the client reconnects after {fault:?}");
    let reconnected = wait_until(RECONNECT_WITHIN, &what, || async {
        fake.stats().connections_accepted >= 2 && fake.stats().open_connections == 1
    });
    got.extend(consume_until(&mut source, reconnected).await);
    let rest = trades.len() - got.len();
    got.extend(collect_trades(&mut source, rest, WITHIN).await);
    assert_same_trades(fake.trades(), &got);
    assert!(
        metrics.reconnects.get() >= 1,
        "{fault:?}: a reconnect is counted"
    );
    // Trades published while the client was away came over REST.
    assert!(
        total(&fake, |l| metrics.trades_backfilled.get_or_create(l).get()) > 0,
        "{fault:?}: backfilled"
    );
    assert_eq!(
        total(&fake, |l| metrics.trades_unfilled.get_or_create(l).get()),
        0,
        "{fault:?}: nothing left unfilled"
    );
    assert_eq!(
        metrics.connections.get(),
        1,
        "{fault:?}: the old connection is gone"
    );
}

#[tokio::test]
async fn abrupt_disconnect() {
    survives(Fault::Disconnect).await;
}

#[tokio::test]
async fn silent_stall_is_caught_by_the_watchdog() {
    survives(Fault::Stall).await;
}

#[tokio::test]
async fn server_close_frame() {
    survives(Fault::Close).await;
}

#[tokio::test]
async fn pings_are_answered_and_keep_the_connection() {
    let Some((trades, fake, metrics, mut source)) = altcoins_source().await else {
        return;
    };
    for at in [100, 200, 300] {
        fake.schedule(at, Fault::Ping);
    }
    let got = collect_trades(&mut source, trades.len(), WITHIN).await;
    assert_same_trades(fake.trades(), &got);
    wait_until(RECONNECT_WITHIN, "every ping is answered", || async {
        fake.stats().pongs_received >= 3
    })
    .await;
    assert_eq!(fake.stats().pings_sent, 3);
    assert_eq!(fake.stats().connections_accepted, 1);
    assert_eq!(metrics.reconnects.get(), 0);
}

/// A server that plays a `@trade` recording back as it was (not as
/// aggTrades) is followed as it is: its trade ids are contiguous too.
#[tokio::test]
async fn trade_events_as_recorded_are_taken() {
    let Some(trades) = recorded(ALTCOINS) else {
        return;
    };
    let as_recorded: Vec<Trade> = trades
        .iter()
        .map(|t| Trade {
            kind: TradeKind::Trade,
            first_trade_id: t.id,
            last_trade_id: t.id,
            ..*t
        })
        .collect();
    let fake = paced_fake(as_recorded.clone(), 1000).await;
    let metrics = Metrics::new();
    let mut source = BinanceSource::connect(fake.binance_config(), metrics.clone())
        .await
        .expect("connect");
    let got = collect_trades(&mut source, trades.len(), WITHIN).await;
    assert_same_trades(&as_recorded, &got);
    assert!(
        metrics
            .encode()
            .contains("pulse_frames_rejected_total{reason=\"not_subscribed\"} 0")
    );
}

#[tokio::test]
async fn malformed_frames_and_strangers_trades_are_counted_and_skipped() {
    let Some((trades, fake, metrics, mut source)) = altcoins_source().await else {
        return;
    };
    fake.schedule(100, Fault::Malformed);
    fake.schedule(300, Fault::Malformed);
    fake.schedule(400, Fault::Stranger);
    // A followed symbol's @trade event among its aggTrades, its id far
    // ahead: taken, it would open a false gap.
    fake.schedule(500, Fault::TradeEvent);
    let got = collect_trades(&mut source, trades.len(), WITHIN).await;
    assert_same_trades(fake.trades(), &got);
    assert_eq!(metrics.source_totals().gaps, 0);
    let text = metrics.encode();
    for line in [
        "pulse_frames_rejected_total{reason=\"json\"} 2",
        "pulse_frames_rejected_total{reason=\"not_subscribed\"} 2",
        "pulse_frames_rejected_total{reason=\"binary\"} 0",
        "pulse_frames_rejected_total{reason=\"decimal\"} 0",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    assert_eq!(metrics.reconnects.get(), 0);
}

/// A fake holding the altcoin capture that starts only when told
/// (`Start::Manual`): its sockets stay open and carry no trade.
async fn quiet_fake() -> Option<FakeBinance> {
    let trades = recorded(ALTCOINS)?;
    let config = FakeConfig {
        start: pulse_testkit::fake_binance::Start::Manual,
        ..FakeConfig::default()
    };
    Some(FakeBinance::start_with(trades, config).await)
}

#[tokio::test]
async fn a_quiet_connection_is_kept_alive_by_our_pings() {
    let Some(fake) = quiet_fake().await else {
        return;
    };
    let metrics = Metrics::new();
    let source = BinanceSource::connect(fake.binance_config(), metrics.clone())
        .await
        .expect("connect");
    // Three pings span well over the 1 s stall timeout.
    wait_until(
        RECONNECT_WITHIN,
        "the client pings a quiet connection three times",
        || async { fake.stats().pings_received >= 3 },
    )
    .await;
    assert_eq!(
        fake.stats().connections_accepted,
        1,
        "no reconnect while pongs come back"
    );
    assert_eq!(metrics.reconnects.get(), 0);
    drop(source);
}

/// A connection that answers pings but never carries a trade (as Binance's
/// legacy paths do) is replaced after `data_timeout`, counted, and what
/// comes once data flows is delivered whole.
#[tokio::test]
async fn a_connection_without_data_is_replaced() {
    let Some(fake) = quiet_fake().await else {
        return;
    };
    let metrics = Metrics::new();
    let config = pulse_io::BinanceConfig {
        data_timeout: Duration::from_millis(1_500),
        ..fake.binance_config()
    };
    let mut source = BinanceSource::connect(config, metrics.clone())
        .await
        .expect("connect");
    // Counted once pulse has the new connection, a moment after the fake.
    wait_until(
        RECONNECT_WITHIN,
        "the silent connection is replaced twice",
        || async { fake.stats().connections_accepted >= 3 && metrics.reconnects.get() >= 2 },
    )
    .await;
    // Our pings were answered all along: only the missing data ended them,
    // each replacement after one silence (a third may have begun since).
    assert!(fake.stats().pings_received >= 2, "{:?}", fake.stats());
    let (silent, reconnects) = (metrics.silent_connections.get(), metrics.reconnects.get());
    assert!(
        (reconnects..=reconnects + 1).contains(&silent),
        "{silent} silent, {reconnects} reconnects"
    );
    let text = metrics.encode();
    assert!(text.contains("pulse_silent_connections_total "), "{text}");
    fake.play();
    let got = collect_trades(&mut source, fake.trades().len(), WITHIN).await;
    assert_same_trades(fake.trades(), &got);
}

#[tokio::test]
async fn refused_reconnects_are_retried_with_backoff() {
    let Some((trades, fake, _, mut source)) = altcoins_source().await else {
        return;
    };
    // More refusals than the 3 start-up attempts: once connected, it never gives up.
    fake.reject_handshakes(6);
    fake.schedule(100, Fault::Disconnect);
    let got = collect_trades(&mut source, trades.len(), WITHIN).await;
    assert_same_trades(fake.trades(), &got);
    assert_eq!(fake.stats().handshakes_rejected, 6);
    assert_eq!(fake.stats().connections_accepted, 2);
}

/// A server that completes every handshake and then drops the connection
/// gets ever longer waits, not a reconnect every first delay.
#[tokio::test]
async fn connections_dropped_after_the_handshake_back_off() {
    let Some((trades, fake, _, mut source)) = altcoins_source().await else {
        return;
    };
    let mut got = collect_trades(&mut source, 100, WITHIN).await;
    fake.drop_after_handshake(8);
    let dropped_at = std::time::Instant::now();
    fake.inject(Fault::Disconnect);
    got.extend(collect_trades(&mut source, trades.len() - got.len(), WITHIN).await);
    assert_same_trades(fake.trades(), &got);
    let reconnected = wait_until(WITHIN, "the tenth connection", || async {
        fake.stats().connections_accepted == 10 && fake.stats().open_connections == 1
    });
    let more = consume_until(&mut source, reconnected).await;
    assert!(more.is_empty(), "no trades beyond the capture: {more:?}");
    // Delays from 50 ms doubling to the 500 ms cap: at least
    // 50 + 100 + 200 + 400 + 4 × 500 ms before the tenth connection.
    let waited = dropped_at.elapsed();
    assert!(waited >= Duration::from_millis(2_750), "{waited:?}");
}

#[tokio::test]
async fn repeated_faults_of_every_kind() {
    let Some((trades, fake, metrics, mut source)) = altcoins_source().await else {
        return;
    };
    for (at, fault) in [
        (50, Fault::Disconnect),
        (150, Fault::Ping),
        (250, Fault::Close),
        (350, Fault::Stall),
        (500, Fault::Disconnect),
    ] {
        fake.schedule(at, fault);
    }
    let got = collect_trades(&mut source, trades.len(), WITHIN).await;
    assert_same_trades(fake.trades(), &got);
    // The stall is caught after 1 s, when playback (574 trades at 1000/s)
    // has passed 500 already: that last disconnect finds no connection.
    assert!(
        metrics.reconnects.get() >= 3,
        "reconnects: {}",
        metrics.reconnects.get()
    );
}
