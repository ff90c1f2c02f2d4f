//! The REST `/fapi/v1/aggTrades` reply, as the backfill reads it.

use std::borrow::Cow;

use serde::Deserialize;

use super::{ParseError, positive_decimal};
use crate::{Side, Symbol, Trade, TradeKind};

/// One element of the reply, as Binance sends it (`nq` and other new keys
/// are ignored):
/// `{"a":26129,"p":"0.01633102","q":"4.70443515","f":27781,"l":27781,"T":1498793709153,"m":true}`
#[derive(Deserialize)]
struct RestAggTrade<'a> {
    a: u64,
    #[serde(borrow)]
    p: Cow<'a, str>,
    #[serde(borrow)]
    q: Cow<'a, str>,
    f: u64,
    l: u64,
    #[serde(rename = "T")]
    trade_time: i64,
    m: bool,
}

/// Parses a `GET /fapi/v1/aggTrades` reply into trades of `symbol`. REST
/// has no event time, so `event_time_ms` is the trade time.
///
/// ```
/// use pulse_core::{Symbol, parse_agg_trades};
/// let body = br#"[{"a":26129,"p":"0.01633102","q":"4.70443515","f":27781,"l":27781,"T":1498793709153,"m":true}]"#;
/// let trades = parse_agg_trades(body, Symbol::new("BTCUSDT").unwrap()).unwrap();
/// assert_eq!((trades[0].id, trades[0].price.to_string()), (26129, "0.01633102".to_string()));
/// ```
pub fn parse_agg_trades(body: &[u8], symbol: Symbol) -> Result<Vec<Trade>, ParseError> {
    let entries: Vec<RestAggTrade<'_>> = serde_json::from_slice(body)?;
    entries
        .into_iter()
        .map(|e| {
            Ok(Trade {
                symbol,
                id: e.a,
                kind: TradeKind::AggTrade,
                price: positive_decimal("p", e.p.as_bytes())?,
                quantity: positive_decimal("q", e.q.as_bytes())?,
                side: Side::from_buyer_is_maker(e.m),
                trade_time_ms: e.trade_time,
                event_time_ms: e.trade_time,
                first_trade_id: e.f,
                last_trade_id: e.l,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn btc() -> Symbol {
        Symbol::new("BTCUSDT").unwrap()
    }

    #[test]
    fn parses_replies_as_binance_sends_them() {
        // Binance's documented example, and one with `nq` (since 2025-12-31).
        let body = br#"[{"a":26129,"p":"0.01633102","q":"4.70443515","f":27781,"l":27781,"T":1498793709153,"m":true},
            {"a":26130,"p":"61180.10","q":"0.500","nq":"0.500","f":27782,"l":27790,"T":1498793709160,"m":false}]"#;
        let trades = parse_agg_trades(body, btc()).unwrap();
        assert_eq!(trades.len(), 2);
        let (a, b) = (&trades[0], &trades[1]);
        assert_eq!(
            (a.id, a.side, a.trade_time_ms, a.event_time_ms),
            (26129, Side::Sell, 1498793709153, 1498793709153)
        );
        assert_eq!(
            (a.price.to_string(), a.quantity.to_string()),
            ("0.01633102".into(), "4.70443515".into())
        );
        assert_eq!(
            (b.side, b.first_trade_id, b.last_trade_id),
            (Side::Buy, 27782, 27790)
        );
        assert_eq!(b.kind, TradeKind::AggTrade);
        assert!(parse_agg_trades(b"[]", btc()).unwrap().is_empty());
    }

    #[test]
    fn malformed_replies_are_errors() {
        let cases = [
            (&br#"{"code":-1121,"msg":"Invalid symbol."}"#[..], "JSON"),
            (
                br#"[{"a":1,"p":"1.0","q":"1","f":1,"l":1,"m":true}]"#,
                "JSON",
            ),
            (
                br#"[{"a":1,"p":"x","q":"1","f":1,"l":1,"T":1,"m":true}]"#,
                "`p`",
            ),
            (
                br#"[{"a":1,"p":"1","q":"0","f":1,"l":1,"T":1,"m":true}]"#,
                "`q` must be positive",
            ),
        ];
        for (body, want) in cases {
            let err = parse_agg_trades(body, btc()).unwrap_err().to_string();
            assert!(err.contains(want), "{err} should mention {want}");
        }
    }
}
