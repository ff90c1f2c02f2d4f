//! `symbols = ALL`: the source reads the trading perpetuals from the fake's
//! `/fapi/v1/exchangeInfo` (the tape's symbols, plus a quarterly contract and
//! a settling perpetual it must skip), follows them over real WebSockets,
//! and delivers every trade of every symbol; exclusions are left out.

mod binance_support;

use std::time::Duration;

use binance_support::{ALTCOINS, recorded};
use pulse_core::Symbol;
use pulse_io::binance::{AllPerpetuals, resolve_all_perpetuals};
use pulse_io::{BinanceConfig, BinanceSource, Metrics};
use pulse_testkit::fake_binance::{
    FakeBinance, FakeConfig, NOT_FOLLOWED, Start, assert_same_trades, collect_trades,
};

fn all(fake: &FakeBinance, except: Vec<Symbol>) -> BinanceConfig {
    BinanceConfig {
        symbols: Vec::new(),
        all_perpetuals: Some(AllPerpetuals { except }),
        // ALL is sharded like any list.
        streams_per_connection: 2,
        ..fake.binance_config()
    }
}

#[tokio::test]
async fn all_follows_every_trading_perpetual_and_delivers_every_trade() {
    let Some(trades) = recorded(ALTCOINS) else {
        return;
    };
    // Played once all three connections are up, so none misses the start.
    let config = FakeConfig {
        start: Start::Manual,
        ..FakeConfig::default()
    };
    let fake = FakeBinance::start_with(trades, config).await;
    assert_eq!(fake.symbols().len(), 5, "{:?}", fake.symbols());

    let mut source = BinanceSource::connect(all(&fake, Vec::new()), Metrics::new())
        .await
        .unwrap();
    fake.play();
    let followed = source.config().symbols.clone();
    assert_eq!(followed, fake.symbols());
    for (name, _, _) in NOT_FOLLOWED {
        assert!(!followed.iter().any(|s| s.as_str() == name), "{name}");
    }
    let got = collect_trades(&mut source, fake.trades().len(), Duration::from_secs(30)).await;
    assert_same_trades(fake.trades(), &got);
    // Five symbols at two per connection.
    assert_eq!(fake.stats().connections_accepted, 3);
    let mut symbols: Vec<Symbol> = got.iter().map(|t| t.symbol).collect();
    symbols.sort();
    symbols.dedup();
    assert_eq!(symbols.len(), 5);
}

#[tokio::test]
async fn exclusions_are_left_out() {
    let Some(trades) = recorded(ALTCOINS) else {
        return;
    };
    let fake = FakeBinance::start(trades).await;
    let tape = fake.symbols();
    let config = all(&fake, vec![tape[0], tape[2]]);
    let symbols = resolve_all_perpetuals(&config).await.unwrap();
    assert_eq!(symbols, [tape[1], tape[3], tape[4]]);

    // Excluding everything is a configuration error, not a silent idle source.
    let err = resolve_all_perpetuals(&all(&fake, tape.clone()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no trading perpetual"), "{err}");
}
