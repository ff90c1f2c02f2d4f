//! The stream plan: Binance symbols split across WebSocket connections,
//! and each connection's URL.
//!
//! Streams are named in the URL, so a connection is subscribed by its
//! handshake alone: no SUBSCRIBE messages count against Binance's limit of
//! 10 incoming messages per second, and a reconnect resubscribes everything.

use crate::Symbol;

/// The symbols one connection carries, and its URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Position among the shards, for logs.
    pub index: usize,
    /// Its symbols, each once.
    pub symbols: Vec<Symbol>,
    /// The combined-stream URL naming every symbol's `@aggTrade` stream.
    pub url: String,
}

/// Splits `symbols` (duplicates removed, order kept) into shards of at most
/// `per_connection` streams.
pub fn plan_shards(ws_base: &str, symbols: &[Symbol], per_connection: usize) -> Vec<Shard> {
    let mut unique: Vec<Symbol> = Vec::with_capacity(symbols.len());
    for s in symbols {
        if !unique.contains(s) {
            unique.push(*s);
        }
    }
    unique
        .chunks(per_connection.max(1))
        .enumerate()
        .map(|(index, chunk)| Shard {
            index,
            symbols: chunk.to_vec(),
            url: stream_url(ws_base, chunk),
        })
        .collect()
}

/// `{base}/market/stream?streams=btcusdt@aggTrade/ethusdt@aggTrade`.
pub fn stream_url(ws_base: &str, symbols: &[Symbol]) -> String {
    let streams: Vec<String> = symbols
        .iter()
        .map(|s| format!("{}@aggTrade", s.to_lowercase()))
        .collect();
    format!(
        "{}/market/stream?streams={}",
        ws_base.trim_end_matches('/'),
        streams.join("/")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syms(names: &[&str]) -> Vec<Symbol> {
        names.iter().map(|n| Symbol::new(n).unwrap()).collect()
    }

    #[test]
    fn urls_follow_the_2026_market_path() {
        let cases = [
            (
                "wss://fstream.binance.com",
                vec!["BTCUSDT", "ETHUSDT"],
                "wss://fstream.binance.com/market/stream?streams=btcusdt@aggTrade/ethusdt@aggTrade",
            ),
            (
                "ws://127.0.0.1:9000/",
                vec!["1000SHIBUSDT"],
                "ws://127.0.0.1:9000/market/stream?streams=1000shibusdt@aggTrade",
            ),
        ];
        for (base, symbols, want) in cases {
            assert_eq!(stream_url(base, &syms(&symbols)), want);
        }
    }

    #[test]
    fn shards_hold_at_most_the_cap_and_drop_duplicates() {
        let names: Vec<String> = (0..450).map(|i| format!("S{i}USDT")).collect();
        let mut symbols: Vec<Symbol> = names.iter().map(|n| Symbol::new(n).unwrap()).collect();
        symbols.push(symbols[0]);
        let shards = plan_shards("wss://x", &symbols, 200);
        let sizes: Vec<usize> = shards.iter().map(|s| s.symbols.len()).collect();
        assert_eq!(sizes, vec![200, 200, 50]);
        assert_eq!(shards[2].index, 2);
        assert_eq!(shards[1].symbols[0].as_str(), "S200USDT");
        assert_eq!(shards[0].url.matches("@aggTrade").count(), 200);
    }
}
