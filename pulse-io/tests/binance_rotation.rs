//! Planned reconnects before Binance's 24 h cut-off, with a max connection
//! age of a fraction of a second: the new connection overlaps the old one,
//! so nothing is missed and nothing needs backfilling.

mod binance_support;

use std::time::Duration;

use binance_support::{ALTCOINS, paced_fake, recorded};

use pulse_io::{BinanceSource, Metrics};
use pulse_testkit::fake_binance::{assert_same_trades, collect_trades};
use pulse_testkit::wait_until;

#[tokio::test]
async fn connections_are_replaced_with_an_overlap() {
    let Some(trades) = recorded(ALTCOINS) else {
        return;
    };
    // 574 trades at 400/s: about 1.4 s of streaming.
    let fake = paced_fake(trades.clone(), 400).await;
    let metrics = Metrics::new();
    let mut config = fake.binance_config();
    config.max_connection_age = Duration::from_millis(400);
    config.rotation_overlap = Duration::from_millis(150);
    let mut source = BinanceSource::connect(config, metrics.clone())
        .await
        .expect("connect");
    let got = collect_trades(&mut source, trades.len(), Duration::from_secs(30)).await;
    assert_same_trades(fake.trades(), &got);
    let stats = fake.stats();
    assert!(stats.connections_accepted >= 3, "{stats:?}");
    assert!(
        metrics.reconnects.get() >= 2,
        "planned reconnects are counted"
    );
    let backfilled: u64 = fake
        .symbols()
        .iter()
        .map(|s| {
            metrics
                .trades_backfilled
                .get_or_create(&Metrics::symbol(s.as_str()))
                .get()
        })
        .sum();
    assert_eq!(backfilled, 0, "the overlap left no gap");
    wait_until(
        Duration::from_secs(5),
        "the replaced connections are closed",
        || async { fake.stats().open_connections == 1 },
    )
    .await;
    assert_eq!(metrics.connections.get(), 1);
}

#[tokio::test]
async fn a_refused_replacement_keeps_the_old_connection() {
    let Some(trades) = recorded(ALTCOINS) else {
        return;
    };
    let fake = paced_fake(trades.clone(), 400).await;
    let metrics = Metrics::new();
    let mut config = fake.binance_config();
    config.max_connection_age = Duration::from_millis(300);
    config.rotation_overlap = Duration::from_millis(150);
    let mut source = BinanceSource::connect(config, metrics.clone())
        .await
        .expect("connect");
    // The first two replacements are refused; the old connection carries on.
    fake.reject_handshakes(2);
    let got = collect_trades(&mut source, trades.len(), Duration::from_secs(30)).await;
    assert_same_trades(fake.trades(), &got);
    assert_eq!(fake.stats().handshakes_rejected, 2);
    let backfilled: u64 = fake
        .symbols()
        .iter()
        .map(|s| {
            metrics
                .trades_backfilled
                .get_or_create(&Metrics::symbol(s.as_str()))
                .get()
        })
        .sum();
    assert_eq!(backfilled, 0, "the old connection never stopped");
}
