//! Flags shared by every command that reads Binance.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;
use pulse_core::{Symbol, SymbolError};
use pulse_io::BinanceConfig;
use pulse_io::binance::AllPerpetuals;
use pulse_io::replay::SymbolFilter;

use crate::duration::parse_duration;

/// Where to read live trades from.
#[derive(Debug, Clone, Args)]
pub struct BinanceArgs {
    /// Symbols to follow, comma-separated (default BTCUSDT); `ALL` for every
    /// USD-M perpetual trading (from Binance's exchangeInfo, read again at
    /// each daily reconnect), `ALL,-BTCUSDT` for all but some. With
    /// --replay, only the trades of these symbols are replayed (default:
    /// every symbol in the file).
    #[arg(
        long,
        env = "PULSE_SYMBOLS",
        value_delimiter = ',',
        value_name = "LIST"
    )]
    pub symbols: Vec<SymbolChoice>,

    /// Binance USD-M WebSocket base URL; pulse appends `/market/stream?streams=…`.
    #[arg(
        long,
        env = "PULSE_BINANCE_WS_URL",
        default_value = "wss://fstream.binance.com"
    )]
    pub binance_ws_url: String,

    /// Binance USD-M REST base URL, for gap backfill and `--symbols ALL`;
    /// pulse appends `/fapi/v1/aggTrades` or `/fapi/v1/exchangeInfo`.
    #[arg(
        long,
        env = "PULSE_BINANCE_REST_URL",
        default_value = "https://fapi.binance.com"
    )]
    pub binance_rest_url: String,

    /// Replace a connection that answers pings but carries no trade for
    /// this long (a wrong URL, a stalled feed). Each replacement checks
    /// every symbol over REST. Under 10s is warned of, and so is over 50s:
    /// what a silent connection missed then reaches the topic more than
    /// pulse consume's 60 s correction horizon behind the progress markers.
    #[arg(
        long,
        env = "PULSE_DATA_TIMEOUT",
        default_value = "45s",
        value_name = "DURATION",
        value_parser = parse_duration
    )]
    pub data_timeout: Duration,
}

/// A `--data-timeout` shorter than this is warned of: Binance's busiest
/// streams go a few seconds without a trade at times (funding,
/// maintenance).
const SHORT_DATA_TIMEOUT: Duration = Duration::from_secs(10);

/// A `--data-timeout` longer than this is warned of: until a silent
/// connection is replaced, progress markers vouch for its symbols as quiet,
/// and `pulse consume` corrects windows only 60 s back (less a margin for
/// the reconnect and the markers' interval).
const LONG_DATA_TIMEOUT: Duration = Duration::from_secs(50);

/// One item of `--symbols`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolChoice {
    /// `ALL`: every trading perpetual.
    All,
    /// `-BTCUSDT`: leave one out of `ALL`.
    Except(Symbol),
    /// `BTCUSDT`.
    One(Symbol),
}

impl FromStr for SymbolChoice {
    type Err = SymbolError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("all") {
            Ok(SymbolChoice::All)
        } else if let Some(rest) = s.strip_prefix('-') {
            Symbol::new(rest).map(SymbolChoice::Except)
        } else {
            Symbol::new(s).map(SymbolChoice::One)
        }
    }
}

/// `--symbols` when not given.
const DEFAULT_SYMBOL: &str = "BTCUSDT";

impl BinanceArgs {
    /// `--symbols`, or its default.
    fn choices(&self) -> Cow<'_, [SymbolChoice]> {
        if self.symbols.is_empty() {
            let btc = Symbol::new(DEFAULT_SYMBOL).expect("a valid symbol");
            Cow::Owned(vec![SymbolChoice::One(btc)])
        } else {
            Cow::Borrowed(&self.symbols)
        }
    }

    /// Which symbols a replay keeps: those of `--symbols` if given, else all.
    pub fn replay_filter(&self) -> anyhow::Result<SymbolFilter> {
        if self.symbols.is_empty() {
            return Ok(SymbolFilter::All);
        }
        Ok(match self.all_perpetuals()? {
            Some(all) => SymbolFilter::Except(all.except.into_iter().collect()),
            None => SymbolFilter::Only(self.listed().into_iter().collect()),
        })
    }

    /// The symbols named one by one (none with `ALL`).
    pub fn listed(&self) -> Vec<Symbol> {
        self.choices()
            .iter()
            .filter_map(|c| match c {
                SymbolChoice::One(s) => Some(*s),
                _ => None,
            })
            .collect()
    }

    /// `ALL` minus its exclusions, if asked for.
    pub fn all_perpetuals(&self) -> anyhow::Result<Option<AllPerpetuals>> {
        let all = self.choices().contains(&SymbolChoice::All);
        let except: Vec<Symbol> = self
            .choices()
            .iter()
            .filter_map(|c| match c {
                SymbolChoice::Except(s) => Some(*s),
                _ => None,
            })
            .collect();
        if !all {
            anyhow::ensure!(
                except.is_empty(),
                "--symbols: -SYMBOL leaves a symbol out of ALL, e.g. ALL,-BTCUSDT"
            );
            return Ok(None);
        }
        anyhow::ensure!(
            self.listed().is_empty(),
            "--symbols: ALL already includes every perpetual; name exclusions as -SYMBOL"
        );
        Ok(Some(AllPerpetuals { except }))
    }

    /// The source settings these flags name, with defaults for the rest.
    /// With `ALL`, `symbols` is empty: the source reads them from Binance.
    pub fn config(&self) -> anyhow::Result<BinanceConfig> {
        // Shorter, a merely quiet market has its connections replaced, and
        // every symbol checked over REST, again and again. Allowed, as a
        // test against a local server may want it, but said.
        if self.data_timeout < SHORT_DATA_TIMEOUT {
            tracing::warn!(
                data_timeout = ?self.data_timeout,
                "--data-timeout under {}s: connections of symbols that are merely quiet will be replaced, and their symbols checked over REST, over and over",
                SHORT_DATA_TIMEOUT.as_secs()
            );
        }
        if self.data_timeout > LONG_DATA_TIMEOUT {
            tracing::warn!(
                data_timeout = ?self.data_timeout,
                "--data-timeout over {}s: trades a silent connection missed reach the topic more than 60 s behind the progress markers, and pulse consume counts them as too late, in no row (pulse run's own windows are not affected)",
                LONG_DATA_TIMEOUT.as_secs()
            );
        }
        Ok(BinanceConfig {
            symbols: self.listed(),
            all_perpetuals: self.all_perpetuals()?,
            ws_base: self.binance_ws_url.clone(),
            rest_base: self.binance_rest_url.clone(),
            data_timeout: self.data_timeout,
            ..BinanceConfig::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        binance: BinanceArgs,
    }

    fn config(symbols: &str) -> anyhow::Result<BinanceConfig> {
        Cli::try_parse_from(["pulse", "--symbols", symbols])?
            .binance
            .config()
    }

    fn sym(s: &str) -> Symbol {
        Symbol::new(s).unwrap()
    }

    #[test]
    fn symbols_all_and_exclusions() {
        let c = config("btcusdt,ETHUSDT").unwrap();
        assert_eq!(c.symbols, [sym("BTCUSDT"), sym("ETHUSDT")]);
        assert_eq!(c.all_perpetuals, None);

        let c = config("ALL").unwrap();
        assert!(c.symbols.is_empty());
        assert_eq!(c.all_perpetuals, Some(AllPerpetuals::default()));

        let c = config("all,-BTCUSDT,-ethusdt").unwrap();
        assert_eq!(
            c.all_perpetuals.unwrap().except,
            [sym("BTCUSDT"), sym("ETHUSDT")]
        );

        for bad in ["-BTCUSDT", "ALL,BTCUSDT", "ALL,-", "BTC-USDT"] {
            assert!(config(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn data_timeout_defaults_to_the_library_default() {
        assert_eq!(
            config("BTCUSDT").unwrap().data_timeout,
            BinanceConfig::default().data_timeout
        );
        let c = Cli::try_parse_from(["pulse", "--data-timeout", "10m"]).unwrap();
        assert_eq!(
            c.binance.config().unwrap().data_timeout,
            Duration::from_secs(600)
        );
        // Below consume's 60 s correction horizon, with room to spare.
        assert!(BinanceConfig::default().data_timeout <= LONG_DATA_TIMEOUT);
        assert!(
            LONG_DATA_TIMEOUT
                < Duration::from_millis(
                    pulse_core::AggregatorConfig::default().late_retention_ms as u64
                )
        );
        // Short is allowed (a local test server), with a warning.
        let c = Cli::try_parse_from(["pulse", "--data-timeout", "500ms"]).unwrap();
        assert_eq!(
            c.binance.config().unwrap().data_timeout,
            Duration::from_millis(500)
        );
    }
}
