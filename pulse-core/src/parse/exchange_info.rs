//! The REST `/fapi/v1/exchangeInfo` reply, read for the symbols `--symbols
//! ALL` follows: every perpetual contract that is trading now.

use std::borrow::Cow;

use serde::Deserialize;

use super::ParseError;
use crate::Symbol;

/// The reply's parts pulse reads; everything else (rate limits, assets,
/// filters) is ignored. Abridged from Binance:
/// `{"timezone":"UTC","serverTime":1723161502123,"symbols":[{"symbol":"BTCUSDT",
/// "pair":"BTCUSDT","contractType":"PERPETUAL","status":"TRADING",...},
/// {"symbol":"BTCUSDT_250926","contractType":"CURRENT_QUARTER",...}]}`
#[derive(Deserialize)]
struct ExchangeInfo<'a> {
    #[serde(borrow)]
    symbols: Vec<SymbolInfo<'a>>,
}

#[derive(Deserialize)]
struct SymbolInfo<'a> {
    #[serde(borrow)]
    symbol: Cow<'a, str>,
    #[serde(rename = "contractType", borrow, default)]
    contract_type: Cow<'a, str>,
    #[serde(borrow)]
    status: Cow<'a, str>,
}

/// Binance's error object, e.g. `{"code":-1003,"msg":"Too many requests"}`.
#[derive(Deserialize)]
struct BinanceError {
    code: i64,
    msg: String,
}

/// The perpetuals an exchangeInfo reply lists as trading.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TradingPerpetuals {
    /// Their symbols, sorted, each once.
    pub symbols: Vec<Symbol>,
    /// Trading perpetuals whose names [`Symbol`] cannot hold (Binance has
    /// listed non-ASCII ones); the caller says so rather than hide them.
    pub unsupported: Vec<String>,
}

/// Parses a `GET /fapi/v1/exchangeInfo` reply into the symbols with
/// `contractType == "PERPETUAL"` and `status == "TRADING"`.
///
/// ```
/// use pulse_core::parse_exchange_info;
/// let body = br#"{"symbols":[
///   {"symbol":"BTCUSDT","contractType":"PERPETUAL","status":"TRADING"},
///   {"symbol":"BTCUSDT_250926","contractType":"CURRENT_QUARTER","status":"TRADING"},
///   {"symbol":"FTTUSDT","contractType":"PERPETUAL","status":"SETTLING"}]}"#;
/// let found = parse_exchange_info(body).unwrap();
/// assert_eq!(found.symbols.len(), 1);
/// assert_eq!(found.symbols[0].as_str(), "BTCUSDT");
/// ```
pub fn parse_exchange_info(body: &[u8]) -> Result<TradingPerpetuals, ParseError> {
    let info: ExchangeInfo<'_> = match serde_json::from_slice(body) {
        Ok(info) => info,
        Err(e) => {
            return Err(match serde_json::from_slice::<BinanceError>(body) {
                Ok(b) => ParseError::Binance {
                    code: b.code,
                    msg: b.msg,
                },
                Err(_) => ParseError::Json(e),
            });
        }
    };
    let mut found = TradingPerpetuals::default();
    for s in info.symbols {
        if s.contract_type != "PERPETUAL" || s.status != "TRADING" {
            continue;
        }
        match Symbol::new(&s.symbol) {
            Ok(symbol) => found.symbols.push(symbol),
            Err(_) => found.unsupported.push(s.symbol.into_owned()),
        }
    }
    found.symbols.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    found.symbols.dedup();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like Binance's reply: the top-level keys, a full entry with its
    /// filters, and the contract types and statuses USD-M futures use.
    const REPLY: &str = r#"{
      "timezone": "UTC", "serverTime": 1723161502123, "futuresType": "U_MARGINED",
      "rateLimits": [{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":2400}],
      "exchangeFilters": [], "assets": [{"asset":"USDT","marginAvailable":true,"autoAssetExchange":"-10000"}],
      "symbols": [
        {"symbol":"BTCUSDT","pair":"BTCUSDT","contractType":"PERPETUAL","deliveryDate":4133404800000,
         "onboardDate":1569398400000,"status":"TRADING","maintMarginPercent":"2.5000","requiredMarginPercent":"5.0000",
         "baseAsset":"BTC","quoteAsset":"USDT","marginAsset":"USDT","pricePrecision":2,"quantityPrecision":3,
         "baseAssetPrecision":8,"quotePrecision":8,"underlyingType":"COIN","underlyingSubType":["PoW"],
         "triggerProtect":"0.0500","liquidationFee":"0.012500","marketTakeBound":"0.05",
         "filters":[{"filterType":"PRICE_FILTER","minPrice":"261.10","maxPrice":"809484","tickSize":"0.10"},
                    {"filterType":"LOT_SIZE","stepSize":"0.001","maxQty":"1000","minQty":"0.001"}],
         "orderTypes":["LIMIT","MARKET","STOP"],"timeInForce":["GTC","IOC","FOK","GTX"]},
        {"symbol":"ETHUSDT","pair":"ETHUSDT","contractType":"PERPETUAL","status":"TRADING","filters":[]},
        {"symbol":"1000SHIBUSDT","pair":"1000SHIBUSDT","contractType":"PERPETUAL","status":"TRADING"},
        {"symbol":"BTCUSDT_250926","pair":"BTCUSDT","contractType":"CURRENT_QUARTER","status":"TRADING"},
        {"symbol":"ETHUSDT_251226","pair":"ETHUSDT","contractType":"NEXT_QUARTER","status":"TRADING"},
        {"symbol":"FTTUSDT","pair":"FTTUSDT","contractType":"PERPETUAL","status":"SETTLING"},
        {"symbol":"NEWUSDT","pair":"NEWUSDT","contractType":"PERPETUAL","status":"PENDING_TRADING"},
        {"symbol":"OLDUSDT","pair":"OLDUSDT","contractType":"PERPETUAL","status":"CLOSE"},
        {"symbol":"LUNAUSDT","pair":"LUNAUSDT","contractType":"","status":"SETTLING"},
        {"symbol":"币安人生USDT","pair":"币安人生USDT","contractType":"PERPETUAL","status":"TRADING"},
        {"symbol":"BTCUSDT","pair":"BTCUSDT","contractType":"PERPETUAL","status":"TRADING"}
      ]
    }"#;

    fn names(found: &TradingPerpetuals) -> Vec<&str> {
        found.symbols.iter().map(Symbol::as_str).collect()
    }

    #[test]
    fn follows_trading_perpetuals_only() {
        let found = parse_exchange_info(REPLY.as_bytes()).unwrap();
        assert_eq!(names(&found), ["1000SHIBUSDT", "BTCUSDT", "ETHUSDT"]);
        assert_eq!(found.unsupported, ["币安人生USDT"]);
    }

    #[test]
    fn table_of_entries() {
        let cases = [
            (r#"{"symbols":[]}"#, vec![]),
            (
                r#"{"symbols":[{"symbol":"solusdt","contractType":"PERPETUAL","status":"TRADING"}]}"#,
                vec!["SOLUSDT"],
            ),
            // No contractType at all: not known to be a perpetual.
            (
                r#"{"symbols":[{"symbol":"XUSDT","status":"TRADING"}]}"#,
                vec![],
            ),
            (
                r#"{"symbols":[{"symbol":"XUSDT","contractType":"PERPETUAL_DELIVERING","status":"TRADING"}]}"#,
                vec![],
            ),
            (
                r#"{"symbols":[{"symbol":"XUSDT","contractType":"PERPETUAL","status":"BREAK"}]}"#,
                vec![],
            ),
        ];
        for (body, want) in cases {
            let found = parse_exchange_info(body.as_bytes()).unwrap();
            assert_eq!(names(&found), want, "{body}");
        }
    }

    #[test]
    fn errors_are_named() {
        let err = parse_exchange_info(br#"{"code":-1003,"msg":"Too many requests."}"#).unwrap_err();
        assert!(
            matches!(err, ParseError::Binance { code: -1003, ref msg } if msg == "Too many requests."),
            "{err}"
        );
        for bad in [&b"not json"[..], b"[]", br#"{"symbols":[{"symbol":"X"}]}"#] {
            assert!(
                matches!(parse_exchange_info(bad), Err(ParseError::Json(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
