//! Flags shared by every command that reads Binance.

use clap::Args;
use pulse_core::Symbol;
use pulse_io::BinanceConfig;

/// Where to read live trades from.
#[derive(Debug, Clone, Args)]
pub struct BinanceArgs {
    /// Symbols to follow, comma-separated.
    #[arg(
        long,
        env = "PULSE_SYMBOLS",
        value_delimiter = ',',
        default_value = "BTCUSDT"
    )]
    pub symbols: Vec<Symbol>,

    /// Binance USD-M WebSocket base URL; pulse appends `/market/stream?streams=…`.
    #[arg(
        long,
        env = "PULSE_BINANCE_WS_URL",
        default_value = "wss://fstream.binance.com"
    )]
    pub binance_ws_url: String,

    /// Binance USD-M REST base URL, used for gap backfill; pulse appends `/fapi/v1/aggTrades`.
    #[arg(
        long,
        env = "PULSE_BINANCE_REST_URL",
        default_value = "https://fapi.binance.com"
    )]
    pub binance_rest_url: String,
}

impl BinanceArgs {
    /// The source settings these flags name, with defaults for the rest.
    pub fn config(&self) -> BinanceConfig {
        BinanceConfig {
            symbols: self.symbols.clone(),
            ws_base: self.binance_ws_url.clone(),
            rest_base: self.binance_rest_url.clone(),
            ..BinanceConfig::default()
        }
    }
}
