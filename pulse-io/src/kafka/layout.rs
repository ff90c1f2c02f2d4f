//! The message's byte layout, written and read without a JSON library: the
//! producer's and the consumer's per-trade work.
//!
//! [`write_trade`] writes exactly what serde_json would write for the
//! message (pulse's fields never need escaping). [`read_trade`] reads that
//! layout back field by field at its known places. It only ever says yes: anything unexpected (another key order, spaces,
//! escapes, a value the checks would reject) gives `None`, and
//! [`decode_trade`] then runs serde_json, which accepts or rejects with the
//! typed error. So both paths accept exactly the same messages and give the
//! same trades; `tests::fast_path_agrees_with_serde` checks it on mutated
//! real messages.
//!
//! [`encode_trade`]: super::encode_trade
//! [`decode_trade`]: super::decode_trade

use chrono::NaiveDate;
use pulse_core::{Decimal, SCALE, SCALE_DIGITS, Side, Symbol, Trade, TradeKind};

use super::UtcOffset;

/// Appends `trade` as its JSON message, `timestamp` in `offset`.
pub(super) fn write_trade(trade: &Trade, offset: UtcOffset, out: &mut Vec<u8>) {
    out.extend_from_slice(br#"{"symbol":""#);
    out.extend_from_slice(trade.symbol.as_str().as_bytes());
    out.extend_from_slice(br#"","price":""#);
    write_decimal(trade.price, out);
    out.extend_from_slice(br#"","quantity":""#);
    write_decimal(trade.quantity, out);
    out.extend_from_slice(br#"","timestamp":""#);
    out.extend_from_slice(offset.format_ms(trade.trade_time_ms).as_bytes());
    out.extend_from_slice(br#"","side":""#);
    out.extend_from_slice(trade.side.as_str().as_bytes());
    integer(out, br#"","trade_time_ms":"#, trade.trade_time_ms);
    integer(out, br#","event_time_ms":"#, trade.event_time_ms);
    integer(out, br#","agg_id":"#, trade.id);
    integer(out, br#","first_trade_id":"#, trade.first_trade_id);
    integer(out, br#","last_trade_id":"#, trade.last_trade_id);
    out.extend_from_slice(match trade.kind {
        TradeKind::AggTrade => br#","kind":"agg_trade"}"#.as_slice(),
        TradeKind::Trade => br#","kind":"trade"}"#,
    });
}

fn integer(out: &mut Vec<u8>, key: &[u8], value: impl itoa::Integer) {
    out.extend_from_slice(key);
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// [`Decimal`]'s `Display` form (`61180.1`, `-0.5`, `3`) without `fmt`.
fn write_decimal(value: Decimal, out: &mut Vec<u8>) {
    let raw = value.raw();
    if raw < 0 {
        out.push(b'-');
    }
    let abs = raw.unsigned_abs();
    let scale = SCALE as u64;
    out.extend_from_slice(itoa::Buffer::new().format(abs / scale).as_bytes());
    let frac = abs % scale;
    if frac != 0 {
        // All eight digits with leading zeros, then the trailing zeros cut.
        let mut buffer = itoa::Buffer::new();
        let digits = &buffer.format(frac + scale).as_bytes()[1..];
        let len = SCALE_DIGITS as usize - digits.iter().rev().take_while(|&&d| d == b'0').count();
        out.push(b'.');
        out.extend_from_slice(&digits[..len]);
    }
}

/// The trade in `bytes`, if they are laid out exactly as `encode_trade`
/// writes them and every field passes the decoder's checks.
pub(super) fn read_trade(bytes: &[u8]) -> Option<Trade> {
    let mut c = Cursor(bytes);
    c.literal(br#"{"symbol":""#)?;
    let symbol = Symbol::from_bytes(c.string()?).ok()?;
    c.literal(br#","price":""#)?;
    let price = positive(c.string()?)?;
    c.literal(br#","quantity":""#)?;
    let quantity = positive(c.string()?)?;
    c.literal(br#","timestamp":""#)?;
    let timestamp = c.string()?;
    c.literal(br#","side":""#)?;
    let side = match c.string()? {
        b"BUY" => Side::Buy,
        b"SELL" => Side::Sell,
        _ => return None,
    };
    c.literal(br#","trade_time_ms":"#)?;
    let trade_time_ms = c.i64()?;
    c.literal(br#","event_time_ms":"#)?;
    let event_time_ms = c.i64()?;
    c.literal(br#","agg_id":"#)?;
    let id = c.u64()?;
    c.literal(br#","first_trade_id":"#)?;
    let first_trade_id = c.u64()?;
    c.literal(br#","last_trade_id":"#)?;
    let last_trade_id = c.u64()?;
    c.literal(br#","kind":""#)?;
    let kind = match c.string()? {
        b"agg_trade" => TradeKind::AggTrade,
        b"trade" => TradeKind::Trade,
        _ => return None,
    };
    c.literal(b"}")?;
    let well_formed = c.0.is_empty()
        && first_trade_id <= last_trade_id
        && timestamp_ms(timestamp) == Some(trade_time_ms);
    well_formed.then_some(Trade {
        symbol,
        id,
        kind,
        price,
        quantity,
        side,
        trade_time_ms,
        event_time_ms,
        first_trade_id,
        last_trade_id,
    })
}

fn positive(text: &[u8]) -> Option<Decimal> {
    Decimal::parse_bytes(text).ok().filter(|d| d.raw() > 0)
}

/// `YYYY-MM-DDTHH:MM:SS.mmm` then `Z` or `±HH:MM`, as ms since the epoch:
/// the form `UtcOffset::format_ms` writes. Other RFC 3339 spellings go to
/// chrono's full parser on the slow path.
fn timestamp_ms(text: &[u8]) -> Option<i64> {
    let (local, offset) = text.split_at_checked(23)?;
    let [
        y0,
        y1,
        y2,
        y3,
        b'-',
        m0,
        m1,
        b'-',
        d0,
        d1,
        b'T',
        h0,
        h1,
        b':',
        n0,
        n1,
        b':',
        s0,
        s1,
        b'.',
        f0,
        f1,
        f2,
    ] = *local
    else {
        return None;
    };
    let offset_s = match offset {
        b"Z" => 0,
        &[sign @ (b'+' | b'-'), oh0, oh1, b':', om0, om1] => {
            let (hours, minutes) = (digits(&[oh0, oh1])?, digits(&[om0, om1])?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = (hours * 60 + minutes) * 60;
            if sign == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(
        digits(&[y0, y1, y2, y3])? as i32,
        digits(&[m0, m1])? as u32,
        digits(&[d0, d1])? as u32,
    )?;
    let time = date.and_hms_milli_opt(
        digits(&[h0, h1])? as u32,
        digits(&[n0, n1])? as u32,
        digits(&[s0, s1])? as u32,
        digits(&[f0, f1, f2])? as u32,
    )?;
    Some(time.and_utc().timestamp_millis() - offset_s * 1000)
}

/// A run of ASCII digits as a number.
fn digits(ds: &[u8]) -> Option<i64> {
    ds.iter().try_fold(0i64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
    })
}

/// The unread rest of the message.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    #[inline(always)]
    fn literal(&mut self, expected: &[u8]) -> Option<()> {
        self.0 = self.0.strip_prefix(expected)?;
        Some(())
    }

    /// The bytes up to the next `"`, consumed with it. Only printable ASCII
    /// without escapes: what pulse writes.
    #[inline(always)]
    fn string(&mut self) -> Option<&'a [u8]> {
        for (end, &b) in self.0.iter().enumerate() {
            if b == b'"' {
                let text = &self.0[..end];
                self.0 = &self.0[end + 1..];
                return Some(text);
            }
            if !(b' '..=b'~').contains(&b) || b == b'\\' {
                return None;
            }
        }
        None
    }

    /// A JSON integer without sign, leading zero or exponent that fits `u64`.
    #[inline(always)]
    fn u64(&mut self) -> Option<u64> {
        let mut value: u64 = 0;
        let mut len = 0;
        for &b in self.0 {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            // Nineteen digits always fit; only longer numbers can overflow.
            value = if len < 19 {
                value * 10 + u64::from(digit)
            } else {
                value.checked_mul(10)?.checked_add(u64::from(digit))?
            };
            len += 1;
        }
        if len == 0 || (len > 1 && self.0[0] == b'0') {
            return None;
        }
        self.0 = &self.0[len..];
        Some(value)
    }

    #[inline(always)]
    fn i64(&mut self) -> Option<i64> {
        match self.0.strip_prefix(b"-") {
            Some(rest) => {
                self.0 = rest;
                // serde_json reads `-0` as a float, which no integer field takes.
                let magnitude = self.u64().filter(|&m| m != 0)?;
                0i64.checked_sub_unsigned(magnitude)
            }
            None => i64::try_from(self.u64()?).ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use pulse_core::{Decimal, Side, Symbol, Trade, TradeKind};

    use super::read_trade;
    use crate::kafka::message::decode_json;
    use crate::kafka::{UtcOffset, encode_trade};

    fn trade() -> impl Strategy<Value = Trade> {
        (
            (
                "[A-Z0-9_]{1,12}",
                1i64..i64::MAX,
                1i64..1_000_000_000_000_000,
            ),
            // Years 0001 to 9998, which RFC 3339 can spell in any offset.
            (
                any::<bool>(),
                any::<bool>(),
                -62_000_000_000_000i64..253_370_000_000_000,
            ),
            (any::<i64>(), any::<u64>(), any::<u64>(), 0u64..1000),
        )
            .prop_map(
                |((symbol, price, quantity), (buy, agg, time), (event, id, first, extra))| Trade {
                    symbol: Symbol::new(&symbol).unwrap(),
                    id,
                    kind: if agg {
                        TradeKind::AggTrade
                    } else {
                        TradeKind::Trade
                    },
                    price: Decimal::from_raw(price),
                    quantity: Decimal::from_raw(quantity),
                    side: if buy { Side::Buy } else { Side::Sell },
                    trade_time_ms: time,
                    event_time_ms: event,
                    first_trade_id: first.min(u64::MAX - extra),
                    last_trade_id: first.min(u64::MAX - extra) + extra,
                },
            )
    }

    fn message(trade: &Trade, offset_s: i32) -> Vec<u8> {
        let mut out = Vec::new();
        encode_trade(trade, UtcOffset::from_seconds(offset_s).unwrap(), &mut out);
        out
    }

    /// What serde_json writes for the message: the writer must match it.
    #[derive(serde::Serialize)]
    struct Serde<'a> {
        symbol: &'a str,
        price: Decimal,
        quantity: Decimal,
        timestamp: String,
        side: Side,
        trade_time_ms: i64,
        event_time_ms: i64,
        agg_id: u64,
        first_trade_id: u64,
        last_trade_id: u64,
        kind: TradeKind,
    }

    fn serde_message(t: &Trade, offset: UtcOffset) -> Vec<u8> {
        serde_json::to_vec(&Serde {
            symbol: t.symbol.as_str(),
            price: t.price,
            quantity: t.quantity,
            timestamp: offset.format_ms(t.trade_time_ms),
            side: t.side,
            trade_time_ms: t.trade_time_ms,
            event_time_ms: t.event_time_ms,
            agg_id: t.id,
            first_trade_id: t.first_trade_id,
            last_trade_id: t.last_trade_id,
            kind: t.kind,
        })
        .unwrap()
    }

    proptest! {
        #[test]
        fn writes_what_serde_writes(t in trade(), offset in -1_439i32..1_440) {
            let offset = UtcOffset::from_seconds(offset * 60).unwrap();
            let mut out = Vec::new();
            encode_trade(&t, offset, &mut out);
            prop_assert_eq!(String::from_utf8(out).unwrap(), String::from_utf8(serde_message(&t, offset)).unwrap());
        }

        #[test]
        fn reads_what_encode_writes(t in trade(), offset in -86_340i32 / 60..86_340 / 60) {
            let m = message(&t, offset * 60);
            prop_assert_eq!(read_trade(&m), Some(t));
            prop_assert_eq!(decode_json(&m).unwrap(), t);
        }

        /// One byte changed, dropped or added: whenever the fast path still
        /// says yes, serde_json says the same trade.
        #[test]
        fn fast_path_agrees_with_serde(
            t in trade(),
            offset in -1_439i32..1_440,
            at in any::<prop::sample::Index>(),
            byte in prop::sample::select(b"0123456789-+:.,\"}{ TZtzeE\\a".to_vec()),
            edit in 0u8..3,
        ) {
            let mut m = message(&t, offset * 60);
            let i = at.index(m.len());
            match edit {
                0 => m[i] = byte,
                1 => { m.remove(i); }
                _ => m.insert(i, byte),
            }
            if let Some(fast) = read_trade(&m) {
                let slow = decode_json(&m);
                prop_assert!(slow.is_ok(), "{}: fast {:?}, serde {:?}", String::from_utf8_lossy(&m), fast, slow);
                prop_assert_eq!(slow.unwrap(), fast);
            }
        }
    }

    #[test]
    fn other_spellings_fall_back() {
        let t = Trade {
            symbol: Symbol::new("BTCUSDT").unwrap(),
            id: 7,
            kind: TradeKind::AggTrade,
            price: "61180.1".parse().unwrap(),
            quantity: "0.5".parse().unwrap(),
            side: Side::Sell,
            trade_time_ms: 1_723_161_502_123,
            event_time_ms: 1_723_161_502_125,
            first_trade_id: 5,
            last_trade_id: 6,
        };
        let m = String::from_utf8(message(&t, 0)).unwrap();
        for other in [
            m.replace(",\"side\"", ", \"side\""),
            m.replace("Z\"", "+00:00\"").replace(".123", ".1230"),
            m.replace("BTCUSDT", "BTC\\u0055SDT"),
            m.replace("\"agg_id\":7", "\"agg_id\":7.0"),
            m.replace("\"event_time_ms\":1723161502125", "\"event_time_ms\":-0"),
        ] {
            assert_eq!(read_trade(other.as_bytes()), None, "{other}");
        }
        assert_eq!(read_trade(m.as_bytes()), Some(t));
        // serde still reads the re-spelled ones that are valid.
        assert_eq!(
            decode_json(m.replace(",\"side\"", ", \"side\"").as_bytes()).unwrap(),
            t
        );
    }
}
