//! Progress markers: records in which the producer vouches for progress, so
//! a consumer can close a quiet symbol's windows from the topic alone.
//!
//! A marker on partition P with `{"BTCUSDT": W}` says: every trade of
//! BTCUSDT with `trade_time_ms < W` that this producer will publish is on P
//! before the marker. The producer takes W from the same watermark `pulse
//! run` closes windows at (ids in order, or the symbol quiet for long
//! enough), so a consumer reading markers closes windows when `pulse run`
//! would, and a restart reading the same records closes them the same way.
//!
//! ```json
//! {"kind":"progress","watermarks":{"BTCUSDT":1723161503000,"ETHUSDT":1723161502000},"after":"a5a3852492c728a9"}
//! ```
//!
//! `after` is the hash of the record the producer wrote to the partition
//! just before the marker (absent for its first record there). Markers of
//! different data thus differ even when their watermarks agree, so a
//! consumer position that ends on a marker is not taken for another
//! topic's (see the consumer's identity check).
//!
//! Key `__pulse_progress` and header `pulse-record: progress`, so plain
//! Kafka readers can skip them without parsing JSON; see `docs/schema.md`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use pulse_core::Symbol;
use serde::{Deserialize, Serialize};

use super::MessageError;
use super::message::json_error;

/// The record key of every progress marker. Trade keys are upper-case
/// symbols, so no trade has it.
pub const PROGRESS_KEY: &str = "__pulse_progress";

/// The header naming what a record holds; only markers carry it.
pub const RECORD_HEADER: &str = "pulse-record";

/// [`RECORD_HEADER`]'s value on a marker.
pub const PROGRESS_HEADER_VALUE: &str = "progress";

/// The `kind` field of a marker's JSON.
const PROGRESS_KIND: &str = "progress";

/// What one marker vouches for: each symbol's watermark.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgressMarker {
    /// Every trade of the symbol before this time is already on the partition.
    pub watermarks: BTreeMap<Symbol, i64>,
    /// The hash of the record written to the partition just before it.
    pub after: Option<u64>,
}

#[derive(Serialize)]
struct Outgoing<'a> {
    kind: &'static str,
    watermarks: BTreeMap<&'a str, i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    after: Option<String>,
}

#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    watermarks: Option<BTreeMap<Cow<'a, str>, i64>>,
    #[serde(borrow)]
    after: Option<Cow<'a, str>>,
}

/// `after`'s text: 16 lower-case hex digits.
const AFTER_DIGITS: usize = 16;

/// Appends `marker` as JSON to `out`.
pub fn encode_progress(marker: &ProgressMarker, out: &mut Vec<u8>) {
    let message = Outgoing {
        kind: PROGRESS_KIND,
        watermarks: marker
            .watermarks
            .iter()
            .map(|(s, w)| (s.as_str(), *w))
            .collect(),
        after: marker.after.map(|h| format!("{h:0AFTER_DIGITS$x}")),
    };
    // Serializing plain fields into a Vec cannot fail.
    let _ = serde_json::to_writer(out, &message);
}

/// Parses a marker written by [`encode_progress`].
pub fn decode_progress(bytes: &[u8]) -> Result<ProgressMarker, MessageError> {
    let m: Incoming<'_> = serde_json::from_slice(bytes).map_err(json_error)?;
    match m.kind.as_deref() {
        Some(PROGRESS_KIND) => {}
        Some(other) => return Err(MessageError::Kind(other.to_owned())),
        None => return Err(MessageError::MissingField("kind")),
    }
    let watermarks = m
        .watermarks
        .ok_or(MessageError::MissingField("watermarks"))?
        .into_iter()
        .map(|(s, w)| Ok((Symbol::new(&s)?, w)))
        .collect::<Result<_, MessageError>>()?;
    let after = match m.after.as_deref() {
        None => None,
        Some(hex) if hex.len() == AFTER_DIGITS && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u64::from_str_radix(hex, 16).ok()
        }
        Some(hex) => return Err(bad_after(hex)),
    };
    Ok(ProgressMarker { watermarks, after })
}

fn bad_after(hex: &str) -> MessageError {
    MessageError::WrongType(serde::de::Error::custom(format!(
        "`after` must be {AFTER_DIGITS} hex digits, got {hex:?}"
    )))
}

/// Whether a record with this key is a progress marker.
pub fn is_progress_key(key: Option<&[u8]>) -> bool {
    key == Some(PROGRESS_KEY.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Symbol {
        Symbol::new(s).unwrap()
    }

    #[test]
    fn round_trips_exactly() {
        let marker = ProgressMarker {
            watermarks: [(sym("ETHUSDT"), 1_723_161_502_000), (sym("BTCUSDT"), -5)]
                .into_iter()
                .collect(),
            after: None,
        };
        let mut json = Vec::new();
        encode_progress(&marker, &mut json);
        assert_eq!(
            std::str::from_utf8(&json).unwrap(),
            r#"{"kind":"progress","watermarks":{"BTCUSDT":-5,"ETHUSDT":1723161502000}}"#
        );
        assert_eq!(decode_progress(&json).unwrap(), marker);

        let after = ProgressMarker {
            after: Some(0x0a5a_3852_492c_728a),
            ..marker
        };
        json.clear();
        encode_progress(&after, &mut json);
        assert_eq!(
            std::str::from_utf8(&json).unwrap(),
            r#"{"kind":"progress","watermarks":{"BTCUSDT":-5,"ETHUSDT":1723161502000},"after":"0a5a3852492c728a"}"#
        );
        assert_eq!(decode_progress(&json).unwrap(), after);
    }

    #[test]
    fn rejects_what_is_not_a_marker() {
        let cases = [
            (r#"{"watermarks":{}}"#, "kafka_missing_field"),
            (r#"{"kind":"agg_trade","watermarks":{}}"#, "kafka_kind"),
            (r#"{"kind":"progress"}"#, "kafka_missing_field"),
            (
                r#"{"kind":"progress","watermarks":{"BTC/USDT":1}}"#,
                "kafka_symbol",
            ),
            (
                r#"{"kind":"progress","watermarks":{"BTCUSDT":"1"}}"#,
                "kafka_wrong_type",
            ),
            ("progress", "kafka_not_json"),
            (
                r#"{"kind":"progress","watermarks":{},"after":"+a5a3852492c728a"}"#,
                "kafka_wrong_type",
            ),
            (
                r#"{"kind":"progress","watermarks":{},"after":"a5a3"}"#,
                "kafka_wrong_type",
            ),
        ];
        for (input, reason) in cases {
            let err = decode_progress(input.as_bytes()).expect_err(input);
            assert_eq!(err.reason(), reason, "{input}: {err}");
        }
    }

    #[test]
    fn the_key_is_no_trades_key() {
        if let Ok(symbol) = Symbol::new(PROGRESS_KEY) {
            assert_ne!(symbol.as_str(), PROGRESS_KEY);
        }
        assert!(is_progress_key(Some(b"__pulse_progress")));
        assert!(!is_progress_key(Some(b"BTCUSDT")));
        assert!(!is_progress_key(None));
    }
}
