//! The Kafka message: one JSON object per trade.
//!
//! ```json
//! {"symbol":"BTCUSDT","price":"61180.1","quantity":"0.5",
//!  "timestamp":"2024-08-09T05:28:22.123+05:30","side":"BUY",
//!  "trade_time_ms":1723161502123,"event_time_ms":1723161502125,
//!  "agg_id":2304458843,"first_trade_id":5126334100,"last_trade_id":5126334102,
//!  "kind":"agg_trade"}
//! ```
//!
//! The first five fields keep the original design's names. `price` and
//! `quantity` are decimal strings so they round-trip exactly; `timestamp` is
//! the trade time in RFC 3339 with a configurable [`UtcOffset`]. The rest is
//! what exact windows and restarts need: the trade and event times in ms,
//! the sequence id and the underlying trade-id range.

use std::borrow::Cow;

use pulse_core::{Decimal, DecimalError, Side, Symbol, SymbolError, Trade, TradeKind};
use serde::Deserialize;

use super::UtcOffset;

/// Why a message could not be turned into a [`Trade`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The record had no value (a tombstone).
    #[error("empty record value")]
    Empty,
    /// The bytes are not a JSON object.
    #[error("not JSON: {0}")]
    NotJson(serde_json::Error),
    /// A field had the wrong JSON type (e.g. a number where a string belongs).
    #[error("wrong field type: {0}")]
    WrongType(serde_json::Error),
    /// A required field was absent or null.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// The symbol was empty, too long or had odd characters.
    #[error("symbol: {0}")]
    Symbol(#[from] SymbolError),
    /// `price` or `quantity` was not an exact decimal string.
    #[error("field `{field}`: {source}")]
    Decimal {
        /// Which field.
        field: &'static str,
        /// What was wrong with it.
        source: DecimalError,
    },
    /// `price` or `quantity` was zero or negative.
    #[error("field `{field}` must be positive, got {value}")]
    NotPositive {
        /// Which field.
        field: &'static str,
        /// The value found.
        value: Decimal,
    },
    /// `side` was neither `BUY` nor `SELL`.
    #[error("side must be BUY or SELL, got {0:?}")]
    Side(String),
    /// `timestamp` was not RFC 3339, or named another instant than `trade_time_ms`.
    #[error("timestamp {timestamp:?} does not match trade_time_ms {trade_time_ms}")]
    Timestamp {
        /// The text found.
        timestamp: String,
        /// The trade time it should name.
        trade_time_ms: i64,
    },
    /// A `kind` this reader does not know.
    #[error("unknown record kind {0:?}")]
    Kind(String),
    /// `first_trade_id` was above `last_trade_id`.
    #[error("first_trade_id {first} > last_trade_id {last}")]
    TradeIdRange {
        /// `first_trade_id`.
        first: u64,
        /// `last_trade_id`.
        last: u64,
    },
}

impl MessageError {
    /// Every label [`reason`](Self::reason) gives, so a consumer's metric
    /// can show each at zero before the first bad record.
    pub const REASONS: &'static [&'static str] = &[
        "kafka_empty",
        "kafka_not_json",
        "kafka_wrong_type",
        "kafka_missing_field",
        "kafka_symbol",
        "kafka_decimal",
        "kafka_not_positive",
        "kafka_side",
        "kafka_timestamp",
        "kafka_trade_id_range",
        "kafka_kind",
    ];

    /// A short label for the `pulse_frames_rejected_total{reason}` metric.
    pub fn reason(&self) -> &'static str {
        match self {
            MessageError::Empty => "kafka_empty",
            MessageError::NotJson(_) => "kafka_not_json",
            MessageError::WrongType(_) => "kafka_wrong_type",
            MessageError::MissingField(_) => "kafka_missing_field",
            MessageError::Symbol(_) => "kafka_symbol",
            MessageError::Decimal { .. } => "kafka_decimal",
            MessageError::NotPositive { .. } => "kafka_not_positive",
            MessageError::Side(_) => "kafka_side",
            MessageError::Timestamp { .. } => "kafka_timestamp",
            MessageError::TradeIdRange { .. } => "kafka_trade_id_range",
            MessageError::Kind(_) => "kafka_kind",
        }
    }
}

/// The message as read: every field optional so a missing one gets a typed error.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(borrow)]
    symbol: Option<Cow<'a, str>>,
    #[serde(borrow)]
    price: Option<Cow<'a, str>>,
    #[serde(borrow)]
    quantity: Option<Cow<'a, str>>,
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    side: Option<Cow<'a, str>>,
    trade_time_ms: Option<i64>,
    event_time_ms: Option<i64>,
    agg_id: Option<u64>,
    first_trade_id: Option<u64>,
    last_trade_id: Option<u64>,
    kind: Option<TradeKind>,
}

/// Appends `trade` as one JSON message to `out`, with `timestamp` in `offset`.
///
/// ```
/// use pulse_core::{Frame, parse_frame};
/// use pulse_io::kafka::{UtcOffset, decode_trade, encode_trade};
/// let frame = br#"{"e":"aggTrade","E":1723161502125,"a":7,"s":"BTCUSDT","p":"61180.10","q":"0.500","f":5,"l":6,"T":1723161502123,"m":true}"#;
/// let Frame::Trade(trade) = parse_frame(frame).unwrap() else { unreachable!() };
/// let mut json = Vec::new();
/// encode_trade(&trade, UtcOffset::IST, &mut json);
/// assert_eq!(
///     std::str::from_utf8(&json).unwrap(),
///     r#"{"symbol":"BTCUSDT","price":"61180.1","quantity":"0.5","timestamp":"2024-08-09T05:28:22.123+05:30","side":"SELL","trade_time_ms":1723161502123,"event_time_ms":1723161502125,"agg_id":7,"first_trade_id":5,"last_trade_id":6,"kind":"agg_trade"}"#
/// );
/// assert_eq!(decode_trade(&json).unwrap(), trade);
/// ```
pub fn encode_trade(trade: &Trade, offset: UtcOffset, out: &mut Vec<u8>) {
    super::layout::write_trade(trade, offset, out);
}

/// Parses one message back into the exact [`Trade`] it was made from.
///
/// Rejects anything that is not a well-formed trade: see [`MessageError`].
pub fn decode_trade(bytes: &[u8]) -> Result<Trade, MessageError> {
    match super::layout::read_trade(bytes) {
        Some(trade) => Ok(trade),
        None => decode_json(bytes),
    }
}

/// [`decode_trade`] by serde_json: any JSON spelling, typed errors.
pub(super) fn decode_json(bytes: &[u8]) -> Result<Trade, MessageError> {
    let m: Incoming<'_> = serde_json::from_slice(bytes).map_err(json_error)?;
    let symbol = Symbol::new(&required(m.symbol, "symbol")?)?;
    let price = positive(&required(m.price, "price")?, "price")?;
    let quantity = positive(&required(m.quantity, "quantity")?, "quantity")?;
    let side = match &*required(m.side, "side")? {
        "BUY" => Side::Buy,
        "SELL" => Side::Sell,
        other => return Err(MessageError::Side(other.to_owned())),
    };
    let trade_time_ms = required(m.trade_time_ms, "trade_time_ms")?;
    let event_time_ms = required(m.event_time_ms, "event_time_ms")?;
    let id = required(m.agg_id, "agg_id")?;
    let first_trade_id = required(m.first_trade_id, "first_trade_id")?;
    let last_trade_id = required(m.last_trade_id, "last_trade_id")?;
    if first_trade_id > last_trade_id {
        return Err(MessageError::TradeIdRange {
            first: first_trade_id,
            last: last_trade_id,
        });
    }
    let timestamp = required(m.timestamp, "timestamp")?;
    // The readable timestamp must name the same instant, so a hand-edited or
    // corrupted message cannot disagree with itself.
    let parsed = chrono::DateTime::parse_from_rfc3339(&timestamp).map(|t| t.timestamp_millis());
    if parsed != Ok(trade_time_ms) {
        return Err(MessageError::Timestamp {
            timestamp: timestamp.into_owned(),
            trade_time_ms,
        });
    }
    Ok(Trade {
        symbol,
        id,
        kind: m.kind.unwrap_or(TradeKind::AggTrade),
        price,
        quantity,
        side,
        trade_time_ms,
        event_time_ms,
        first_trade_id,
        last_trade_id,
    })
}

/// A serde error as the [`MessageError`] it means: bad types, or not JSON.
pub(super) fn json_error(e: serde_json::Error) -> MessageError {
    match e.classify() {
        serde_json::error::Category::Data => MessageError::WrongType(e),
        _ => MessageError::NotJson(e),
    }
}

fn required<T>(value: Option<T>, field: &'static str) -> Result<T, MessageError> {
    value.ok_or(MessageError::MissingField(field))
}

fn positive(text: &str, field: &'static str) -> Result<Decimal, MessageError> {
    let value: Decimal = text
        .parse()
        .map_err(|source| MessageError::Decimal { field, source })?;
    if value.raw() <= 0 {
        return Err(MessageError::NotPositive { field, value });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const GOOD: &str = r#"{"symbol":"BTCUSDT","price":"28165.47","quantity":"0.00056","timestamp":"2023-04-05T05:29:59.999+05:30","side":"SELL","trade_time_ms":1680652799999,"event_time_ms":1680652800000,"agg_id":3071245454,"first_trade_id":3071245454,"last_trade_id":3071245454,"kind":"trade"}"#;

    fn with(field: &str, value: &str) -> String {
        let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        if value == "<absent>" {
            v.as_object_mut().unwrap().remove(field);
        } else {
            v[field] = serde_json::from_str(value).unwrap();
        }
        v.to_string()
    }

    #[test]
    fn decodes_a_good_message_exactly() {
        let t = decode_trade(GOOD.as_bytes()).unwrap();
        assert_eq!(t.symbol.as_str(), "BTCUSDT");
        assert_eq!(t.price.raw(), 2_816_547_000_000);
        assert_eq!(t.quantity.raw(), 56_000);
        assert_eq!(t.side, Side::Sell);
        assert_eq!(
            (t.trade_time_ms, t.event_time_ms),
            (1_680_652_799_999, 1_680_652_800_000)
        );
        assert_eq!(
            (t.id, t.first_trade_id, t.last_trade_id),
            (3_071_245_454, 3_071_245_454, 3_071_245_454)
        );
        assert_eq!(t.kind, TradeKind::Trade);
        let mut again = Vec::new();
        encode_trade(&t, UtcOffset::IST, &mut again);
        assert_eq!(std::str::from_utf8(&again).unwrap(), GOOD);
    }

    #[test]
    fn kind_defaults_to_agg_trade_and_other_offsets_decode() {
        let t = decode_trade(with("kind", "<absent>").as_bytes()).unwrap();
        assert_eq!(t.kind, TradeKind::AggTrade);
        let utc = with("timestamp", r#""2023-04-04T23:59:59.999Z""#);
        assert_eq!(
            decode_trade(utc.as_bytes()).unwrap().trade_time_ms,
            1_680_652_799_999
        );
    }

    #[test]
    fn rejects_bad_messages_with_typed_errors() {
        let cases: Vec<(String, &str)> = vec![
            ("not json at all".into(), "kafka_not_json"),
            (r#"{"symbol":"BTCUSDT""#.into(), "kafka_not_json"),
            ("[1,2,3]".into(), "kafka_wrong_type"),
            (with("price", "28165.47"), "kafka_wrong_type"),
            (with("quantity", "<absent>"), "kafka_missing_field"),
            (with("agg_id", "null"), "kafka_missing_field"),
            (with("timestamp", "<absent>"), "kafka_missing_field"),
            (with("symbol", r#""BTC/USDT""#), "kafka_symbol"),
            (with("price", r#""1e5""#), "kafka_decimal"),
            (with("quantity", r#""-0.5""#), "kafka_not_positive"),
            (with("price", r#""0""#), "kafka_not_positive"),
            (with("side", r#""buy""#), "kafka_side"),
            (with("timestamp", r#""yesterday""#), "kafka_timestamp"),
            (
                with("timestamp", r#""2023-04-05T05:29:59.998+05:30""#),
                "kafka_timestamp",
            ),
            (with("first_trade_id", "3071245455"), "kafka_trade_id_range"),
            (with("agg_id", "-1"), "kafka_wrong_type"),
        ];
        let mut seen = BTreeSet::new();
        for (input, reason) in cases {
            let err = decode_trade(input.as_bytes()).expect_err(&input);
            assert_eq!(err.reason(), reason, "{input}: {err}");
            seen.insert(reason);
        }
        // The two errors decode_trade cannot give: an empty record and a
        // marker of an unknown kind.
        seen.insert(MessageError::Empty.reason());
        seen.insert(MessageError::Kind("snapshot".into()).reason());
        assert_eq!(seen, MessageError::REASONS.iter().copied().collect());
    }

    #[test]
    fn error_messages_name_the_problem() {
        let err = decode_trade(with("quantity", r#""-0.5""#).as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field `quantity` must be positive, got -0.5"
        );
        let err = decode_trade(with("side", "<absent>").as_bytes()).unwrap_err();
        assert_eq!(err.to_string(), "missing field `side`");
    }
}
