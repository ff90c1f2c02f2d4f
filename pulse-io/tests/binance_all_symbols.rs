//! `symbols = ALL`: the source reads the trading perpetuals from the fake's
//! `/fapi/v1/exchangeInfo` (the tape's symbols, plus a quarterly contract and
//! a settling perpetual it must skip), follows them over real WebSockets,
//! and delivers every trade of every symbol; exclusions are left out. The
//! list is read again every max connection age (a fraction of a second
//! here): a symbol listed since is followed, one delisted is dropped, and
//! the symbols kept lose no trade across the switch.

mod binance_support;

use std::collections::BTreeSet;
use std::time::Duration;

use binance_support::{ALTCOINS, recorded};
use pulse_core::{Symbol, Trade};
use pulse_io::binance::{AllPerpetuals, resolve_all_perpetuals};
use pulse_io::{BinanceConfig, BinanceSource, Metrics, TradeSource};
use pulse_testkit::fake_binance::{
    FakeBinance, FakeConfig, NOT_FOLLOWED, Pace, RestFault, Start, assert_same_trades,
    collect_trades,
};
use pulse_testkit::wait_until;

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

/// 574 trades at 150/s: about 3.8 s, each symbol busy throughout. Played
/// once the source is connected, so no connection misses the start.
async fn slow_fake(trades: Vec<Trade>) -> FakeBinance {
    let config = FakeConfig {
        pace: Pace::TradesPerSecond(150),
        start: Start::Manual,
    };
    FakeBinance::start_with(trades, config).await
}

fn sym(name: &str) -> Symbol {
    Symbol::new(name).unwrap()
}

/// `ALL` re-read every `every`, one connection for all symbols unless
/// `per_connection` says otherwise.
fn relisted(fake: &FakeBinance, every: Duration, per_connection: usize) -> BinanceConfig {
    BinanceConfig {
        streams_per_connection: per_connection,
        max_connection_age: every,
        rotation_overlap: Duration::from_millis(150),
        ..all(fake, Vec::new())
    }
}

/// Reads from `source` into `got` until `done` holds, checking after every
/// batch.
async fn read_until(
    source: &mut BinanceSource,
    got: &mut Vec<Trade>,
    what: &str,
    mut done: impl FnMut(&BinanceSource, &[Trade]) -> bool,
) {
    let within = Duration::from_secs(30);
    let deadline = tokio::time::Instant::now() + within;
    while !done(source, got) {
        let mut batch = Vec::new();
        match tokio::time::timeout_at(deadline, source.next_trades(&mut batch)).await {
            Err(_) => panic!("{what}: not within {within:?}, after {} trades", got.len()),
            Ok(result) => assert!(result.expect("source failed"), "source ended"),
        }
        got.extend(batch);
    }
}

/// The ids of `symbol`'s trades, in the order given.
fn ids(trades: &[Trade], symbol: Symbol) -> Vec<u64> {
    trades
        .iter()
        .filter(|t| t.symbol == symbol)
        .map(|t| t.id)
        .collect()
}

fn streams(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| format!("{n}@aggtrade")).collect()
}

#[tokio::test]
async fn a_changed_list_is_followed_from_the_next_daily_reconnect() {
    let Some(trades) = recorded(ALTCOINS) else {
        return;
    };
    let (bat, neo, sand) = (sym("BATUSDT"), sym("NEOUSDT"), sym("SANDUSDT"));
    let fake = slow_fake(trades).await;
    fake.list_perpetuals(vec![neo, sand]);
    let metrics = Metrics::new();
    let config = relisted(&fake, Duration::from_millis(600), 200);
    let mut source = BinanceSource::connect(config, metrics.clone())
        .await
        .unwrap();
    assert_eq!(source.symbols(), [neo, sand]);
    assert_eq!(metrics.symbols_followed.get(), 2);
    // Binance lists BAT and delists SAND; the next re-read finds out.
    fake.list_perpetuals(vec![bat, neo]);
    fake.play();

    let tape = fake.trades().to_vec();
    let (neo_all, bat_last) = (ids(&tape, neo), *ids(&tape, bat).last().unwrap());
    let mut got = Vec::new();
    let what = "every NEO trade and the last BAT one";
    read_until(&mut source, &mut got, what, |_, got| {
        ids(got, neo).len() >= neo_all.len() && ids(got, bat).last() == Some(&bat_last)
    })
    .await;

    assert_eq!(source.symbols(), [bat, neo]);
    assert_eq!(metrics.symbols_followed.get(), 2);
    assert_eq!(metrics.symbol_list_failures.get(), 0);
    // NEO moved to the new connection without losing or repeating a trade.
    let neo_tape: Vec<Trade> = tape.iter().copied().filter(|t| t.symbol == neo).collect();
    let neo_got: Vec<Trade> = got.iter().copied().filter(|t| t.symbol == neo).collect();
    assert_same_trades(&neo_tape, &neo_got);
    let unfilled = metrics
        .trades_unfilled
        .get_or_create(&Metrics::symbol("NEOUSDT"))
        .get();
    assert_eq!(unfilled, 0);
    // BAT from its new connection on, to the end of the tape.
    let (bat_tape, bat_got) = (ids(&tape, bat), ids(&got, bat));
    assert!(
        !bat_got.is_empty() && bat_got.len() < bat_tape.len(),
        "{} of {}",
        bat_got.len(),
        bat_tape.len()
    );
    assert_eq!(bat_got, bat_tape[bat_tape.len() - bat_got.len()..]);
    // SAND up to the switch, then no more.
    let (sand_tape, sand_got) = (ids(&tape, sand), ids(&got, sand));
    assert!(
        !sand_got.is_empty() && sand_got.len() < sand_tape.len(),
        "{} of {}",
        sand_got.len(),
        sand_tape.len()
    );
    assert_eq!(sand_got, sand_tape[..sand_got.len()]);
    for symbol in ["CHRUSDT", "CTKUSDT"] {
        assert!(ids(&got, sym(symbol)).is_empty(), "{symbol} is not listed");
    }
    wait_until(
        Duration::from_secs(5),
        "the old connection is closed",
        || async { fake.subscribed_streams() == streams(&["batusdt", "neousdt"]) },
    )
    .await;
}

#[tokio::test]
async fn a_failed_re_read_keeps_the_symbols_and_is_retried() {
    let Some(trades) = recorded(ALTCOINS) else {
        return;
    };
    let (neo, sand) = (sym("NEOUSDT"), sym("SANDUSDT"));
    let fake = slow_fake(trades).await;
    fake.list_perpetuals(vec![neo, sand]);
    let metrics = Metrics::new();
    // One symbol per connection: only SAND's connection has to go.
    let config = relisted(&fake, Duration::from_millis(500), 1);
    let mut source = BinanceSource::connect(config, metrics.clone())
        .await
        .unwrap();
    fake.fail_exchange_info(RestFault::Unavailable, 2);
    fake.list_perpetuals(vec![neo]);
    fake.play();

    let mut got = Vec::new();
    read_until(&mut source, &mut got, "two failed re-reads", |_, _| {
        metrics.symbol_list_failures.get() == 2
    })
    .await;
    // The retry has a backoff delay ahead of it: nothing changed yet.
    assert_eq!(source.symbols(), [neo, sand]);
    let tape = fake.trades().to_vec();
    let neo_all = ids(&tape, neo).len();
    let what = "SAND dropped and every NEO trade";
    read_until(&mut source, &mut got, what, |source, got| {
        source.symbols() == [neo] && ids(got, neo).len() >= neo_all
    })
    .await;
    assert_eq!(metrics.symbol_list_failures.get(), 2);
    assert_eq!(metrics.symbols_followed.get(), 1);
    let neo_tape: Vec<Trade> = tape.iter().copied().filter(|t| t.symbol == neo).collect();
    let neo_got: Vec<Trade> = got.iter().copied().filter(|t| t.symbol == neo).collect();
    assert_same_trades(&neo_tape, &neo_got);
    let (sand_tape, sand_got) = (ids(&tape, sand), ids(&got, sand));
    assert!(sand_got.len() < sand_tape.len(), "SAND stopped early");
    assert_eq!(sand_got, sand_tape[..sand_got.len()]);
    wait_until(
        Duration::from_secs(5),
        "SAND's connection is closed",
        || async { fake.subscribed_streams() == streams(&["neousdt"]) },
    )
    .await;
}
