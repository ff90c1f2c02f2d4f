//! The properties the `kafka_record` fuzz target in `fuzz/` asserts, shared
//! with the test that replays its committed corpus on stable Rust (feature
//! `fuzzing`; not part of the API).

use std::ops::RangeInclusive;

use pulse_core::fuzz_check::trade_is_sane;
use pulse_core::{Frame, Trade, parse_frame};

use super::{
    ProgressMarker, UtcOffset, decode_progress, decode_trade, encode_progress, encode_trade,
};

/// Trade times the `timestamp` can name in every offset: RFC 3339 years
/// 0000 to 9999, a day inside each end. Beyond them the message names no
/// instant and decoding rejects it (`kafka_timestamp`); no Binance trade
/// time comes near.
const TIMESTAMP_RANGE: RangeInclusive<i64> = -62_167_132_800_000..=253_402_214_400_000;

/// Offsets a message's `timestamp` is written in: the default, UTC, and
/// the extremes a fixed offset can take, `-23:59` and `+23:59`.
fn offsets() -> [UtcOffset; 4] {
    let far = |s| UtcOffset::from_seconds(s).expect("in range");
    [UtcOffset::IST, UtcOffset::UTC, far(-86_340), far(86_340)]
}

/// `fuzz_target kafka_record`: one record value, read both ways the
/// consumer reads values (a trade, or a progress marker under the marker
/// key), and as the Binance frame a producer would publish.
///
/// - A decoded trade is sane and re-encodes, in any offset, to a message
///   that decodes to the same trade.
/// - A decoded marker re-encodes to one that decodes to the same marker.
/// - A trade read from a Binance frame, once encoded, decodes to itself.
/// - Where the decoder's fast path reads a trade, serde_json reads the same.
pub fn record_value(bytes: &[u8]) {
    if let Some(fast) = super::layout::read_trade(bytes) {
        let slow = super::message::decode_json(bytes);
        assert_eq!(slow.ok(), Some(fast), "{}", String::from_utf8_lossy(bytes));
    }
    if let Ok(t) = decode_trade(bytes) {
        trade_is_sane(&t);
        assert!(t.first_trade_id <= t.last_trade_id, "{t:?}");
        round_trip(&t);
    }
    if let Ok(marker) = decode_progress(bytes) {
        let mut json = Vec::new();
        encode_progress(&marker, &mut json);
        let again: Option<ProgressMarker> = decode_progress(&json).ok();
        assert_eq!(again, Some(marker), "{}", String::from_utf8_lossy(&json));
    }
    if let Ok(Frame::Trade(t)) = parse_frame(bytes) {
        round_trip(&t);
    }
}

fn round_trip(t: &Trade) {
    for offset in offsets() {
        let mut json = Vec::new();
        encode_trade(t, offset, &mut json);
        let decoded = decode_trade(&json);
        if !TIMESTAMP_RANGE.contains(&t.trade_time_ms) {
            continue;
        }
        match decoded {
            Ok(again) => assert_eq!(&again, t, "{}", String::from_utf8_lossy(&json)),
            Err(e) => panic!("{t:?} encodes to {} ({e})", String::from_utf8_lossy(&json)),
        }
    }
}
