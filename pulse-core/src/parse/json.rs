//! Binance WebSocket frames: `aggTrade` and `trade` events, raw or wrapped in
//! the combined-stream envelope, plus subscription replies.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::fixed::fixed_trade;
use super::scan::scan_frame;
use super::{ParseError, checked_time, positive_decimal, trade_id_range};
use crate::{Side, Symbol, Trade, TradeKind};

/// What one WebSocket text frame turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A trade event.
    Trade(Trade),
    /// A reply to a `SUBSCRIBE`/`UNSUBSCRIBE` request: `{"result":null,"id":1}`.
    Ack {
        /// The request id being answered.
        id: u64,
    },
}

/// One Binance payload. Unknown keys such as `nq`, `M` or `X` are ignored.
///
/// Futures aggTrade, as recorded:
/// `{"e":"aggTrade","E":1617647781282,"a":26159457,"s":"NEOUSDT","p":"55.090","q":"0.11","f":31005036,"l":31005036,"T":1617647781127,"m":true}`
///
/// Futures trade:
/// `{"e":"trade","E":1680652699882,"T":1680652699877,"s":"BTCUSDT","t":3470478916,"p":"28160.30","q":"0.001","X":"MARKET","m":false}`
///
/// `D` is the type of the nested `data` field: the combined-stream envelope
/// `{"stream":"btcusdt@aggTrade","data":{..}}` nests one payload, never more.
/// Strings are `Cow`, so JSON escapes in them (`"BTC\u0055SDT"`) can be
/// decoded; serde fills an `Option<Cow>` with owned strings, which costs
/// little here, since only frames the faster paths refused get this far.
#[derive(Deserialize)]
#[serde(bound(deserialize = "D: Deserialize<'de>"))]
struct Wire<'a, D> {
    #[serde(borrow)]
    e: Option<Cow<'a, str>>,
    #[serde(rename = "E")]
    event_time: Option<i64>,
    #[serde(rename = "T")]
    trade_time: Option<i64>,
    #[serde(borrow)]
    s: Option<Cow<'a, str>>,
    a: Option<u64>,
    t: Option<u64>,
    #[serde(borrow)]
    p: Option<Cow<'a, str>>,
    #[serde(borrow)]
    q: Option<Cow<'a, str>>,
    f: Option<u64>,
    l: Option<u64>,
    m: Option<bool>,
    id: Option<u64>,
    #[serde(borrow)]
    error: Option<WireError<'a>>,
    data: Option<D>,
}

#[derive(Deserialize)]
struct WireError<'a> {
    code: i64,
    #[serde(borrow)]
    msg: Cow<'a, str>,
}

type Payload<'a> = Wire<'a, IgnoredAny>;

/// The payload fields both parse paths extract.
#[derive(Default)]
pub(super) struct Fields<'a> {
    pub(super) e: Option<&'a [u8]>,
    pub(super) event_time: Option<i64>,
    pub(super) trade_time: Option<i64>,
    pub(super) s: Option<&'a [u8]>,
    pub(super) a: Option<u64>,
    pub(super) t: Option<u64>,
    pub(super) p: Option<&'a [u8]>,
    pub(super) q: Option<&'a [u8]>,
    pub(super) f: Option<u64>,
    pub(super) l: Option<u64>,
    pub(super) m: Option<bool>,
    pub(super) id: Option<u64>,
}

impl<D> Wire<'_, D> {
    /// The fields, borrowed from the payload (whose strings may have been
    /// decoded into owned ones).
    fn fields(&self) -> Result<Fields<'_>, ParseError> {
        if let (None, Some(err)) = (&self.e, &self.error) {
            return Err(ParseError::Binance {
                code: err.code,
                msg: err.msg.to_string(),
            });
        }
        Ok(Fields {
            e: bytes(&self.e),
            event_time: self.event_time,
            trade_time: self.trade_time,
            s: bytes(&self.s),
            a: self.a,
            t: self.t,
            p: bytes(&self.p),
            q: bytes(&self.q),
            f: self.f,
            l: self.l,
            m: self.m,
            id: self.id,
        })
    }
}

fn bytes<'s>(s: &'s Option<Cow<'_, str>>) -> Option<&'s [u8]> {
    s.as_deref().map(str::as_bytes)
}

/// Parses one WebSocket text frame.
///
/// ```
/// use pulse_core::{parse_frame, Frame, Side};
/// let raw = br#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"a":7,"s":"BTCUSDT","p":"100.5","q":"0.25","f":10,"l":11,"T":2,"m":true,"nq":"0.25"}}"#;
/// let Frame::Trade(t) = parse_frame(raw).unwrap() else { panic!() };
/// assert_eq!((t.id, t.side, t.price.to_string()), (7, Side::Sell, "100.5".to_string()));
/// assert_eq!(parse_frame(br#"{"result":null,"id":1}"#).unwrap(), Frame::Ack { id: 1 });
/// ```
pub fn parse_frame(bytes: &[u8]) -> Result<Frame, ParseError> {
    // Three paths, each the reference for the one before: Binance's own key
    // orders, then any well-formed frame, then serde_json for the rest and
    // for its precise errors.
    if let Some(trade) = fixed_trade(bytes) {
        return Ok(Frame::Trade(trade));
    }
    parse_frame_general(bytes)
}

/// Every frame, without the fixed-order fast path.
// Kept out of `parse_frame`, so the fast path stays a small function with a
// small stack frame.
#[inline(never)]
pub(super) fn parse_frame_general(bytes: &[u8]) -> Result<Frame, ParseError> {
    match scan_frame(bytes) {
        Some(fields) => fields_to_frame(fields),
        None => parse_frame_serde(bytes),
    }
}

/// The reference path: serde_json, with its precise error messages.
pub(super) fn parse_frame_serde(bytes: &[u8]) -> Result<Frame, ParseError> {
    let outer: Wire<'_, Payload<'_>> = match serde_json::from_slice(bytes) {
        Ok(outer) => outer,
        Err(e) => return Err(unsupported_event(bytes).unwrap_or_else(|| e.into())),
    };
    let fields = match &outer.data {
        Some(inner) => inner.fields()?,
        None => outer.fields()?,
    };
    fields_to_frame(fields)
}

/// A frame's event name and nothing else, for frames unreadable as trades.
#[derive(Deserialize)]
#[serde(bound(deserialize = "D: Deserialize<'de>"))]
struct Named<'a, D> {
    #[serde(borrow)]
    e: Option<Cow<'a, str>>,
    data: Option<D>,
}

/// [`ParseError::UnsupportedEvent`] for a frame of an event pulse does not
/// read, whatever its fields: a `depthUpdate`'s `a` is a list, not an id,
/// and that is no reason to call the frame malformed JSON.
fn unsupported_event(bytes: &[u8]) -> Option<ParseError> {
    let outer: Named<'_, Named<'_, IgnoredAny>> = serde_json::from_slice(bytes).ok()?;
    let name = match outer.data {
        Some(inner) => inner.e,
        None => outer.e,
    }?;
    (name != "aggTrade" && name != "trade").then(|| ParseError::UnsupportedEvent(name.into()))
}

/// Built lazily: constructing an unused error costs a drop on the hot path.
fn missing(field: &'static str) -> ParseError {
    ParseError::MissingField(field)
}

fn fields_to_frame(w: Fields<'_>) -> Result<Frame, ParseError> {
    let kind = match w.e {
        Some(b"aggTrade") => TradeKind::AggTrade,
        Some(b"trade") => TradeKind::Trade,
        Some(other) => {
            return Err(ParseError::UnsupportedEvent(
                String::from_utf8_lossy(other).into_owned(),
            ));
        }
        None => {
            return match w.id {
                Some(id) => Ok(Frame::Ack { id }),
                None => Err(ParseError::UnknownFrame),
            };
        }
    };
    let id = match kind {
        TradeKind::AggTrade => w.a.ok_or_else(|| missing("a"))?,
        TradeKind::Trade => w.t.ok_or_else(|| missing("t"))?,
    };
    let trade_time_ms = checked_time("T", w.trade_time.ok_or_else(|| missing("T"))?)?;
    let event_time_ms = match w.event_time {
        Some(e) => checked_time("E", e)?,
        None => trade_time_ms,
    };
    let (first_trade_id, last_trade_id) = match kind {
        TradeKind::AggTrade => trade_id_range(
            w.f.ok_or_else(|| missing("f"))?,
            w.l.ok_or_else(|| missing("l"))?,
        )?,
        TradeKind::Trade => (id, id),
    };
    Ok(Frame::Trade(Trade {
        symbol: Symbol::from_bytes(w.s.ok_or_else(|| missing("s"))?)?,
        id,
        kind,
        price: positive_decimal("p", w.p.ok_or_else(|| missing("p"))?)?,
        quantity: positive_decimal("q", w.q.ok_or_else(|| missing("q"))?)?,
        side: Side::from_buyer_is_maker(w.m.ok_or_else(|| missing("m"))?),
        trade_time_ms,
        event_time_ms,
        first_trade_id,
        last_trade_id,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Decimal;

    fn trade(bytes: &str) -> Trade {
        match parse_frame(bytes.as_bytes()) {
            Ok(Frame::Trade(t)) => t,
            other => panic!("expected a trade from {bytes}, got {other:?}"),
        }
    }

    /// One line with every field a parsed trade has.
    fn fields(t: &Trade) -> String {
        format!(
            "{} {} {:?} {:?} {} @ {} T={} E={} ids {}..={}",
            t.symbol,
            t.id,
            t.kind,
            t.side,
            t.quantity,
            t.price,
            t.trade_time_ms,
            t.event_time_ms,
            t.first_trade_id,
            t.last_trade_id
        )
    }

    // Real payloads from ../shared/data, one per shape: name, frame, fields.
    #[test]
    fn parses_every_recorded_shape() {
        let cases = [
            (
                "usdm aggTrade, combined",
                r#"{"stream":"neousdt@aggTrade","data":{"e":"aggTrade","E":1617647781282,"a":26159457,"s":"NEOUSDT","p":"55.090","q":"0.11","f":31005036,"l":31005036,"T":1617647781127,"m":true}}"#,
                "NEOUSDT 26159457 AggTrade Sell 0.11 @ 55.09 T=1617647781127 E=1617647781282 ids 31005036..=31005036",
            ),
            (
                "usdm aggTrade with nq, raw",
                r#"{"e":"aggTrade","E":1767225600123,"a":5,"s":"BTCUSDT","p":"94000.10","q":"0.002","nq":"0.002","f":8,"l":9,"T":1767225600120,"m":false}"#,
                "BTCUSDT 5 AggTrade Buy 0.002 @ 94000.1 T=1767225600120 E=1767225600123 ids 8..=9",
            ),
            (
                "spot aggTrade with M",
                r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1617647625483,"s":"BTCUSDT","a":689046711,"p":"58360.01000000","q":"0.00178000","f":765786364,"l":765786364,"T":1617647625482,"m":false,"M":true}}"#,
                "BTCUSDT 689046711 AggTrade Buy 0.00178 @ 58360.01 T=1617647625482 E=1617647625483 ids 765786364..=765786364",
            ),
            (
                "usdm trade",
                r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1680652699882,"T":1680652699877,"s":"BTCUSDT","t":3470478916,"p":"28160.30","q":"0.001","X":"MARKET","m":true}}"#,
                "BTCUSDT 3470478916 Trade Sell 0.001 @ 28160.3 T=1680652699877 E=1680652699882 ids 3470478916..=3470478916",
            ),
            (
                "spot trade with b/a order ids",
                r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255000,"s":"BTCUSDT","t":3724513093,"p":"61180.01000000","q":"0.00100000","b":28462735372,"a":28462735268,"T":1723161254999,"m":false,"M":true}}"#,
                "BTCUSDT 3724513093 Trade Buy 0.001 @ 61180.01 T=1723161254999 E=1723161255000 ids 3724513093..=3724513093",
            ),
        ];
        for (name, frame, expected) in cases {
            let t = trade(frame);
            assert_eq!(fields(&t), expected, "{name}");
            // The printed price is exact: it parses back to the same value.
            assert_eq!(
                t.price.to_string().parse::<Decimal>().unwrap(),
                t.price,
                "{name}"
            );
        }
    }

    /// JSON escapes are valid anywhere in a string; Binance sends none, but
    /// a frame that has them is the same frame.
    #[test]
    fn escaped_strings_read_as_their_text() {
        let plain = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1680652699882,"T":1680652699877,"s":"BTCUSDT","t":3470478916,"p":"28160.30","q":"0.001","X":"MARKET","m":true}}"#;
        let expected = fields(&trade(plain));
        for (from, to) in [
            (r#""s":"BTCUSDT""#, r#""s":"BTC\u0055SDT""#),
            (r#""e":"trade""#, r#""e":"tr\u0061de""#),
            (r#""p":"28160.30""#, r#""p":"28160\u002e30""#),
            (r#""q":"0.001""#, r#""q":"0.00\u0031""#),
            (r#""X":"MARKET""#, r#""X":"MAR\/KET""#),
        ] {
            let escaped = plain.replace(from, to);
            assert_ne!(escaped, plain);
            assert_eq!(fields(&trade(&escaped)), expected, "{escaped}");
        }
        let err = parse_frame(plain.replace("BTCUSDT", r"BTC\u00e9").as_bytes()).unwrap_err();
        assert!(matches!(err, ParseError::Symbol(_)), "{err}");
    }

    #[test]
    fn recognises_acks_and_errors() {
        assert_eq!(
            parse_frame(br#"{"result":null,"id":1}"#).unwrap(),
            Frame::Ack { id: 1 }
        );
        assert_eq!(
            parse_frame(br#"{"id":42,"result":null}"#).unwrap(),
            Frame::Ack { id: 42 }
        );
        match parse_frame(br#"{"error":{"code":2,"msg":"Invalid request"},"id":3}"#) {
            Err(ParseError::Binance { code: 2, msg }) => assert_eq!(msg, "Invalid request"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_frames_are_typed_errors() {
        let agg = |patch: &str| {
            format!(
                r#"{{"e":"aggTrade","E":1,"a":1,"s":"BTCUSDT","f":1,"l":1,"T":1,"m":true,{patch}}}"#
            )
        };
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "Json"),
            ("not json".into(), "Json"),
            ("[1,2]".into(), "Json"),
            ("{}".into(), "UnknownFrame"),
            (r#"{"e":"depthUpdate","E":1}"#.into(), "UnsupportedEvent"),
            // Its `a` is a list, not an id: still another event, not bad JSON.
            (r#"{"stream":"btcusdt@depth","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[["1.0","2"]],"a":[["1.1","3"]]}}"#.into(), "UnsupportedEvent"),
            (r#"{"e":"depthUpdate","a":[["1.1","3"]]}"#.into(), "UnsupportedEvent"),
            (agg(r#""p":"1.0""#), "MissingField(q)"),
            (agg(r#""q":"1.0""#), "MissingField(p)"),
            (agg(r#""p":"1.0","q":"abc""#), "Decimal"),
            (agg(r#""p":1.0,"q":"1.0""#), "Json"),
            (agg(r#""p":"1.0","q":"-1.0""#), "NotPositive(q)"),
            (agg(r#""p":"0","q":"1.0""#), "NotPositive(p)"),
            (r#"{"e":"trade","E":1,"T":1,"s":"BTCUSDT","p":"1","q":"1","m":true}"#.into(), "MissingField(t)"),
            (r#"{"e":"aggTrade","E":1,"a":1,"s":"X","p":"1","q":"1","f":2,"l":1,"T":1,"m":true}"#.into(), "TradeIdRange { first: 2, last: 1 }"),
            (r#"{"e":"aggTrade","E":1,"a":1,"s":"","p":"1","q":"1","f":1,"l":1,"T":1,"m":true}"#.into(), "Symbol"),
            (r#"{"e":"aggTrade","E":1,"a":-1,"s":"X","p":"1","q":"1","f":1,"l":1,"T":1,"m":true}"#.into(), "Json"),
            (r#"{"stream":"x","data":"oops"}"#.into(), "Json"),
        ];
        for (frame, expected) in cases {
            let err = parse_frame(frame.as_bytes()).expect_err(&frame);
            let got = match &err {
                ParseError::Json(_) => "Json".to_string(),
                ParseError::MissingField(f) => format!("MissingField({f})"),
                ParseError::NotPositive(f) => format!("NotPositive({f})"),
                ParseError::UnsupportedEvent(_) => "UnsupportedEvent".into(),
                ParseError::UnknownFrame => "UnknownFrame".into(),
                ParseError::Decimal { .. } => "Decimal".into(),
                ParseError::Symbol(_) => "Symbol".into(),
                other => format!("{other:?}"),
            };
            assert_eq!(got, expected, "frame {frame}: {err}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = parse_frame(&bytes);
        }
    }
}
