//! `--symbols ALL`: the symbols to follow are every USD-M perpetual Binance
//! lists as trading, read from `/fapi/v1/exchangeInfo`, minus exclusions.
//! Read at start-up here, and again around every daily reconnect by the
//! source (`relist`).

use pulse_core::{Symbol, short_list};

use super::config::BinanceConfig;
use super::rest::{RestClient, RestError};
use crate::SourceError;

/// Follow every perpetual trading now, except these.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllPerpetuals {
    /// Symbols left out, e.g. for `ALL,-BTCUSDT`.
    pub except: Vec<Symbol>,
}

/// Why the trading perpetuals could not be listed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ListingError {
    #[error("cannot read exchangeInfo: {0}")]
    Rest(#[from] RestError),
    #[error("exchangeInfo lists no trading perpetual besides the excluded ones")]
    NothingLeft,
    #[error("the listing task failed: {0}")]
    Task(String),
}

impl ListingError {
    /// True when asking again may succeed.
    fn is_retryable(&self) -> bool {
        match self {
            ListingError::Rest(e) => e.is_retryable(),
            ListingError::NothingLeft | ListingError::Task(_) => false,
        }
    }
}

/// One read of exchangeInfo: the trading perpetuals not in `all.except`,
/// sorted. An empty answer is an error, so a bad reply never empties the
/// symbols followed.
pub(crate) async fn list_trading(
    rest: &RestClient,
    all: &AllPerpetuals,
) -> Result<Vec<Symbol>, ListingError> {
    let found = rest.trading_perpetuals().await?;
    if !found.unsupported.is_empty() {
        tracing::warn!(symbols = ?found.unsupported, "skipping trading perpetuals whose names pulse cannot hold");
    }
    let unlisted: Vec<Symbol> = (all.except.iter())
        .filter(|s| !found.symbols.contains(s))
        .copied()
        .collect();
    if !unlisted.is_empty() {
        tracing::warn!(symbols = %short_list(&unlisted), "excluded symbols that exchangeInfo does not list as trading perpetuals (a typo?)");
    }
    let symbols: Vec<Symbol> = found
        .symbols
        .into_iter()
        .filter(|s| !all.except.contains(s))
        .collect();
    if symbols.is_empty() {
        return Err(ListingError::NothingLeft);
    }
    Ok(symbols)
}

/// The symbols `config.all_perpetuals` names now, sorted.
///
/// Retries transient failures with `config.retry`, up to
/// `config.startup_attempts` tries, like the first connection.
///
/// # Errors
/// [`SourceError::Config`] when `all_perpetuals` is unset or nothing is left
/// after the exclusions; [`SourceError::Unreachable`] when exchangeInfo
/// cannot be read.
pub async fn resolve_all_perpetuals(config: &BinanceConfig) -> Result<Vec<Symbol>, SourceError> {
    let Some(all) = &config.all_perpetuals else {
        return Err(SourceError::Config("all_perpetuals is not set".into()));
    };
    let rest = RestClient::new(&config.rest_base, &config.backfill)?;
    let mut delays = config.retry.delays();
    let mut attempt = 0;
    let symbols = loop {
        attempt += 1;
        match list_trading(&rest, all).await {
            Ok(symbols) => break symbols,
            Err(e) if e.is_retryable() && attempt < config.startup_attempts => {
                tracing::warn!(attempt, error = %e, "cannot read Binance exchangeInfo; retrying");
                tokio::time::sleep(delays.next_delay()).await;
            }
            Err(e @ ListingError::NothingLeft) => return Err(SourceError::Config(e.to_string())),
            Err(e) => {
                return Err(SourceError::Unreachable {
                    url: format!("{}/fapi/v1/exchangeInfo", config.rest_base),
                    reason: e.to_string(),
                });
            }
        }
    };
    tracing::info!(
        symbols = symbols.len(),
        excluded = all.except.len(),
        "following every trading USD-M perpetual"
    );
    Ok(symbols)
}
