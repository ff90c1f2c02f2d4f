//! The REST `/fapi/v1/aggTrades` reply, as the backfill reads it.
//!
//! A reply is read entry by entry: one trade that cannot be read costs that
//! trade, not the page, and its id (when readable) is reported so the
//! caller can count it as lost instead of skipping it silently.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{ParseError, checked_time, positive_decimal, trade_id_range};
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

/// Just the id of an element the full shape did not fit.
#[derive(Deserialize)]
struct IdOnly {
    a: u64,
}

/// Binance's error object, e.g. `{"code":-1121,"msg":"Invalid symbol."}`.
#[derive(Deserialize)]
struct BinanceError {
    code: i64,
    msg: String,
}

/// A parsed `GET /fapi/v1/aggTrades` reply: the trades that could be read
/// and the entries that could not.
#[derive(Debug, Default)]
pub struct AggTradesPage {
    /// Trades read, in reply order (oldest first).
    pub trades: Vec<Trade>,
    /// Entries that could not be read, in reply order.
    pub rejected: Vec<RejectedAggTrade>,
}

/// An entry of an aggTrades reply that could not be read.
#[derive(Debug)]
pub struct RejectedAggTrade {
    /// Position in the reply, from 0.
    pub index: usize,
    /// Its aggTrade id `a`, when that much could be read.
    pub id: Option<u64>,
    /// What was wrong with it.
    pub error: ParseError,
}

impl AggTradesPage {
    /// Entries in the reply, read or not: a page of `limit` entries means
    /// more may follow.
    pub fn len(&self) -> usize {
        self.trades.len() + self.rejected.len()
    }

    /// True for an empty reply.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The highest id the reply listed, unreadable entries included.
    pub fn highest_id(&self) -> Option<u64> {
        let read = self.trades.iter().map(|t| t.id);
        read.chain(self.rejected.iter().filter_map(|r| r.id)).max()
    }
}

/// Parses a `GET /fapi/v1/aggTrades` reply into trades of `symbol`. REST
/// has no event time, so `event_time_ms` is the trade time.
///
/// Only a reply that is not a JSON array at all is an error (a Binance
/// error object comes back as [`ParseError::Binance`]); a bad entry is
/// listed in [`AggTradesPage::rejected`] and the others are kept.
///
/// ```
/// use pulse_core::{Symbol, parse_agg_trades};
/// let body = br#"[{"a":26129,"p":"0.01633102","q":"4.70443515","f":27781,"l":27781,"T":1498793709153,"m":true},
///                 {"a":26130,"p":"oops","q":"1","f":27782,"l":27782,"T":1498793709160,"m":true}]"#;
/// let page = parse_agg_trades(body, Symbol::new("BTCUSDT").unwrap()).unwrap();
/// assert_eq!((page.trades[0].id, page.trades[0].price.to_string()), (26129, "0.01633102".to_string()));
/// assert_eq!((page.rejected[0].id, page.highest_id()), (Some(26130), Some(26130)));
/// ```
pub fn parse_agg_trades(body: &[u8], symbol: Symbol) -> Result<AggTradesPage, ParseError> {
    let entries: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| {
        match serde_json::from_slice::<BinanceError>(body) {
            Ok(b) => ParseError::Binance {
                code: b.code,
                msg: b.msg,
            },
            Err(_) => ParseError::Json(e),
        }
    })?;
    let mut page = AggTradesPage {
        trades: Vec::with_capacity(entries.len()),
        rejected: Vec::new(),
    };
    for (index, raw) in entries.into_iter().enumerate() {
        match entry(raw.get(), symbol) {
            Ok(trade) => page.trades.push(trade),
            Err(error) => page.rejected.push(RejectedAggTrade {
                index,
                id: serde_json::from_str::<IdOnly>(raw.get()).ok().map(|e| e.a),
                error,
            }),
        }
    }
    Ok(page)
}

fn entry(json: &str, symbol: Symbol) -> Result<Trade, ParseError> {
    let e: RestAggTrade<'_> = serde_json::from_str(json)?;
    let (first_trade_id, last_trade_id) = trade_id_range(e.f, e.l)?;
    let trade_time_ms = checked_time("T", e.trade_time)?;
    Ok(Trade {
        symbol,
        id: e.a,
        kind: TradeKind::AggTrade,
        price: positive_decimal("p", e.p.as_bytes())?,
        quantity: positive_decimal("q", e.q.as_bytes())?,
        side: Side::from_buyer_is_maker(e.m),
        trade_time_ms,
        event_time_ms: trade_time_ms,
        first_trade_id,
        last_trade_id,
    })
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
        let page = parse_agg_trades(body, btc()).unwrap();
        assert!(page.rejected.is_empty());
        assert_eq!((page.len(), page.highest_id()), (2, Some(26130)));
        let (a, b) = (&page.trades[0], &page.trades[1]);
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
        let empty = parse_agg_trades(b"[]", btc()).unwrap();
        assert!(empty.is_empty() && empty.highest_id().is_none());
    }

    #[test]
    fn a_bad_entry_costs_only_itself() {
        // (bad entry, its id as far as readable, what the error names)
        let cases = [
            (
                r#"{"a":2,"p":"1.0","q":"1","f":2,"l":2,"m":true}"#,
                Some(2),
                "JSON",
            ),
            (
                r#"{"a":2,"p":"x","q":"1","f":2,"l":2,"T":1,"m":true}"#,
                Some(2),
                "`p`",
            ),
            (
                r#"{"a":2,"p":"1","q":"0","f":2,"l":2,"T":1,"m":true}"#,
                Some(2),
                "`q` must be positive",
            ),
            (
                r#"{"a":2,"p":"1","q":"1.000000001","f":2,"l":2,"T":1,"m":true}"#,
                Some(2),
                "fractional digits",
            ),
            (
                r#"{"a":"two","p":"1","q":"1","f":2,"l":2,"T":1,"m":true}"#,
                None,
                "JSON",
            ),
            (
                r#"{"a":2,"p":"1","q":"1","f":3,"l":2,"T":1,"m":true}"#,
                Some(2),
                "first trade id 3 > last trade id 2",
            ),
            (r#"null"#, None, "JSON"),
            (r#"[1,2]"#, None, "JSON"),
        ];
        let good = |id: u64| {
            format!(r#"{{"a":{id},"p":"100.5","q":"0.25","f":{id},"l":{id},"T":{id},"m":false}}"#)
        };
        for (bad, id, want) in cases {
            let body = format!("[{},{bad},{}]", good(1), good(3));
            let page = parse_agg_trades(body.as_bytes(), btc()).unwrap();
            let ids: Vec<u64> = page.trades.iter().map(|t| t.id).collect();
            assert_eq!(ids, vec![1, 3], "{bad}");
            assert_eq!(page.len(), 3, "{bad}");
            let [rejected] = &page.rejected[..] else {
                panic!("{bad}: one rejected entry")
            };
            assert_eq!((rejected.index, rejected.id), (1, id), "{bad}");
            let err = rejected.error.to_string();
            assert!(err.contains(want), "{bad}: {err} should mention {want}");
            assert_eq!(page.highest_id(), Some(3));
        }
    }

    #[test]
    fn only_a_reply_that_is_no_array_fails_whole() {
        let err =
            parse_agg_trades(br#"{"code":-1121,"msg":"Invalid symbol."}"#, btc()).unwrap_err();
        assert!(
            matches!(&err, ParseError::Binance { code: -1121, msg } if msg == "Invalid symbol."),
            "{err}"
        );
        for body in [&b"<html>502 Bad Gateway</html>"[..], b"[{\"a\":1", b""] {
            let err = parse_agg_trades(body, btc()).unwrap_err();
            assert_eq!(err.reason(), "json", "{err}");
        }
    }

    #[test]
    fn every_entry_is_either_read_or_rejected() {
        // Truncated and shuffled bodies never panic, and nothing listed is dropped.
        let body = br#"[{"a":1,"p":"1","q":"1","f":1,"l":1,"T":1,"m":true},{"a":2,"p":"-1","q":"1","f":2,"l":2,"T":1,"m":true},{"a":3,"p":"1","q":"1","f":3,"l":3,"T":1,"m":false}]"#;
        for cut in 0..body.len() {
            let _ = parse_agg_trades(&body[..cut], btc());
        }
        let page = parse_agg_trades(body, btc()).unwrap();
        assert_eq!((page.trades.len(), page.rejected.len()), (2, 1));
        assert_eq!(page.rejected[0].error.reason(), "not_positive");
    }
}
