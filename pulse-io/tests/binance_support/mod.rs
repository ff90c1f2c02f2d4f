//! Helpers shared by the Binance source tests against the fake Binance.
#![allow(dead_code)] // each test file uses a different subset

use pulse_core::Trade;
use pulse_io::Metrics;
use pulse_io::metrics::SymbolLabel;
use pulse_testkit::data_dir;
use pulse_testkit::fake_binance::{FakeBinance, FakeConfig, Pace, load_trades};

/// Five USD-M altcoins interleaved, 574 aggTrades.
pub const ALTCOINS: &str = "binance-usdm_altcoins@aggTrade_2021-04-05_cryptofeed.jsonl.gz";

/// The trades of a capture in `../shared/data`, or `None` (the test skips,
/// or fails under CI) without the folder.
pub fn recorded(name: &str) -> Option<Vec<Trade>> {
    Some(load_trades(data_dir()?.join(name)).expect("load recorded trades"))
}

/// A per-symbol counter summed over the tape's symbols.
pub fn total(fake: &FakeBinance, counter: impl Fn(&SymbolLabel) -> u64) -> u64 {
    fake.symbols()
        .iter()
        .map(|s| counter(&Metrics::symbol(s.as_str())))
        .sum()
}

/// A fake publishing at `trades_per_second`, so faults land mid-stream.
pub async fn paced_fake(trades: Vec<Trade>, trades_per_second: u32) -> FakeBinance {
    let config = FakeConfig {
        pace: Pace::TradesPerSecond(trades_per_second),
        ..FakeConfig::default()
    };
    FakeBinance::start_with(trades, config).await
}
