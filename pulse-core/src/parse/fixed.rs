//! The fastest path: Binance's own key orders, read at their expected places.
//!
//! Binance writes every payload of one kind with the same keys in the same
//! order and no whitespace, so a frame can be checked and read front to back
//! against a template instead of scanned key by key:
//!
//! | layout | payload keys |
//! |---|---|
//! | USD-M `@trade` | `e,E,T,s,t,p,q,X,m` |
//! | spot `@trade` | `e,E,s,t,p,q,[b,a],T,m,M` |
//! | USD-M `@aggTrade` | `e,E,a,s,p,q,[nq],f,l,T,m,[nq]` |
//! | spot `@aggTrade` | `e,E,s,a,p,q,f,l,T,m,M` |
//!
//! bare or in the combined-stream wrapper `{"stream":"..","data":{..}}`.
//! Integers, strings and decimals are read eight bytes at a time (see
//! [`swar`](super::swar)).
//!
//! The templates accept only a subset of what the general scanner accepts:
//! plain strings, integers of at most 18 digits, positive decimals of the
//! form `[0-9]{1,10}(\.[0-9]{1,8})?`, no whitespace, nothing after the frame.
//! Anything else, including every malformed frame, returns `None` and takes
//! the general path, so errors and edge cases are exactly what they were.
//! Tests check that both paths agree on every recorded frame and on random
//! mutations of them.

use super::{MAX_TRADE_TIME_MS, swar};
use crate::{Decimal, Side, Symbol, Trade, TradeKind};

/// The trade in a frame laid out as Binance lays it out; `None` otherwise.
/// Always inlined: a `Trade` returned through the stack is read back before
/// its stores retire, which stalls (parse 9.6 → 10.9 M frames/s inlined).
#[inline(always)]
pub(super) fn fixed_trade(bytes: &[u8]) -> Option<Trade> {
    let mut r = Reader { rest: bytes };
    // Keys that always follow one another are one literal: one compare.
    let wrapped = r.eat(b"{\"stream\":\"");
    if wrapped {
        r.string()?;
        r.lit(b",\"data\":{\"e\":\"")?;
    } else {
        r.lit(b"{\"e\":\"")?;
    }
    let aggregated = if r.eat(b"trade\",\"E\":") {
        false
    } else {
        r.lit(b"aggTrade\",\"E\":")?;
        true
    };
    let event_time_ms = r.time()?;
    // The key after `E` tells USD-M from spot.
    let p = match (aggregated, aggregated || r.eat(b",\"T\":")) {
        (false, true) => usdm_trade(&mut r)?,
        (false, false) => spot_trade(&mut r)?,
        (true, _) if r.eat(b",\"a\":") => usdm_agg_trade(&mut r)?,
        (true, _) => spot_agg_trade(&mut r)?,
    };
    r.lit(b"}")?;
    if wrapped {
        r.lit(b"}")?;
    }
    // A bad time is an error: the general path reports it.
    let times = [event_time_ms, p.trade_time_ms];
    if !r.rest.is_empty() || times.iter().any(|t| *t > MAX_TRADE_TIME_MS) {
        return None;
    }
    let (kind, first_trade_id, last_trade_id) = match p.range {
        // A reversed range is an error: the general path reports it.
        Some((f, l)) if f > l => return None,
        Some((f, l)) => (TradeKind::AggTrade, f, l),
        None => (TradeKind::Trade, p.id, p.id),
    };
    Some(Trade {
        symbol: p.symbol,
        id: p.id,
        kind,
        price: p.price,
        quantity: p.quantity,
        side: Side::from_buyer_is_maker(p.buyer_is_maker),
        trade_time_ms: p.trade_time_ms,
        event_time_ms,
        first_trade_id,
        last_trade_id,
    })
}

/// The positive decimal that fills `line[start..end]` exactly, if it has
/// the plain form read here; `None` leaves it to the general parser. Reads
/// words from `line`, so the bytes after `end` (a `,`) need no copy.
#[inline(always)]
pub(super) fn plain_decimal_in(line: &[u8], start: usize, end: usize) -> Option<Decimal> {
    let mut r = Reader {
        rest: line.get(start..)?,
    };
    let d = r.plain_decimal()?;
    (line.len() - r.rest.len() == end).then_some(d)
}

/// What a layout reads after `e` and `E`.
struct Payload {
    symbol: Symbol,
    id: u64,
    /// `f` and `l`, for aggTrades.
    range: Option<(u64, u64)>,
    price: Decimal,
    quantity: Decimal,
    trade_time_ms: i64,
    buyer_is_maker: bool,
}

/// `,"T":T,"s":"S","t":t,"p":"P","q":"Q","X":"X","m":m` (`,"T":` already read).
#[inline(always)]
fn usdm_trade(r: &mut Reader<'_>) -> Option<Payload> {
    let trade_time_ms = r.time()?;
    r.lit(b",\"s\":\"")?;
    let symbol = r.symbol()?;
    r.lit(b",\"t\":")?;
    let id = r.int()?;
    let (price, quantity) = price_quantity(r)?;
    r.lit(b",\"X\":\"")?;
    r.string()?;
    r.lit(b",\"m\":")?;
    let buyer_is_maker = r.bool()?;
    Some(Payload {
        symbol,
        id,
        range: None,
        price,
        quantity,
        trade_time_ms,
        buyer_is_maker,
    })
}

/// `,"s":"S","t":t,"p":"P","q":"Q"[,"b":b,"a":a],"T":T,"m":m,"M":M`
#[inline(always)]
fn spot_trade(r: &mut Reader<'_>) -> Option<Payload> {
    r.lit(b",\"s\":\"")?;
    let symbol = r.symbol()?;
    r.lit(b",\"t\":")?;
    let id = r.int()?;
    let (price, quantity) = price_quantity(r)?;
    // Order ids: `a` is read as the general scanner reads it, a u64.
    if r.eat(b",\"b\":") {
        r.int()?;
        r.lit(b",\"a\":")?;
        r.int()?;
    }
    r.lit(b",\"T\":")?;
    let trade_time_ms = r.time()?;
    r.lit(b",\"m\":")?;
    let buyer_is_maker = r.bool()?;
    r.lit(b",\"M\":")?;
    r.bool()?;
    Some(Payload {
        symbol,
        id,
        range: None,
        price,
        quantity,
        trade_time_ms,
        buyer_is_maker,
    })
}

/// `,"a":a,"s":"S","p":"P","q":"Q"[,"nq":"N"],"f":f,"l":l,"T":T,"m":m[,"nq":"N"]`
/// (`,"a":` already read).
#[inline(always)]
fn usdm_agg_trade(r: &mut Reader<'_>) -> Option<Payload> {
    let id = r.int()?;
    r.lit(b",\"s\":\"")?;
    let symbol = r.symbol()?;
    let (price, quantity) = price_quantity(r)?;
    if r.eat(b",\"nq\":\"") {
        r.string()?;
    }
    let (range, trade_time_ms, buyer_is_maker) = range_time_side(r)?;
    if r.eat(b",\"nq\":\"") {
        r.string()?;
    }
    Some(Payload {
        symbol,
        id,
        range: Some(range),
        price,
        quantity,
        trade_time_ms,
        buyer_is_maker,
    })
}

/// `,"s":"S","a":a,"p":"P","q":"Q","f":f,"l":l,"T":T,"m":m,"M":M`
#[inline(always)]
fn spot_agg_trade(r: &mut Reader<'_>) -> Option<Payload> {
    r.lit(b",\"s\":\"")?;
    let symbol = r.symbol()?;
    r.lit(b",\"a\":")?;
    let id = r.int()?;
    let (price, quantity) = price_quantity(r)?;
    let (range, trade_time_ms, buyer_is_maker) = range_time_side(r)?;
    r.lit(b",\"M\":")?;
    r.bool()?;
    Some(Payload {
        symbol,
        id,
        range: Some(range),
        price,
        quantity,
        trade_time_ms,
        buyer_is_maker,
    })
}

/// `,"p":"P","q":"Q"`
#[inline(always)]
fn price_quantity(r: &mut Reader<'_>) -> Option<(Decimal, Decimal)> {
    r.lit(b",\"p\":\"")?;
    let price = r.decimal()?;
    r.lit(b",\"q\":\"")?;
    let quantity = r.decimal()?;
    Some((price, quantity))
}

/// `,"f":f,"l":l,"T":T,"m":m`
#[inline(always)]
fn range_time_side(r: &mut Reader<'_>) -> Option<((u64, u64), i64, bool)> {
    r.lit(b",\"f\":")?;
    let f = r.int()?;
    r.lit(b",\"l\":")?;
    let l = r.int()?;
    r.lit(b",\"T\":")?;
    let t = r.time()?;
    r.lit(b",\"m\":")?;
    Some(((f, l), t, r.bool()?))
}

/// Longest integer read here: 18 digits always fit in `i64` and `u64`.
const MAX_INT_DIGITS: usize = 18;
/// Longest integer part of a decimal: `(10^10 − 1) × 10^8` fits in `i64`.
const MAX_DECIMAL_INT_DIGITS: usize = 10;
const POW10: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// What is left of the input. Reading consumes it from the front, so a
/// word load needs one length check and no offset arithmetic.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Drops the first `n` bytes, which the caller has read.
    #[inline(always)]
    fn skip(&mut self, n: usize) {
        self.rest = self.rest.get(n..).unwrap_or_default();
    }

    /// Consumes `s` if the input continues with it.
    #[inline(always)]
    fn eat<const N: usize>(&mut self, s: &[u8; N]) -> bool {
        // A word compare where the input has the bytes for one.
        let hit = match self.rest.first_chunk::<16>() {
            Some(w) if N <= 16 => swar::starts_with(w, s),
            _ => self.rest.first_chunk::<N>() == Some(s),
        };
        if hit {
            self.skip(N);
        }
        hit
    }

    /// Consumes `s`, which must come next.
    #[inline(always)]
    fn lit<const N: usize>(&mut self, s: &[u8; N]) -> Option<()> {
        self.eat(s).then_some(())
    }

    /// The rest of a plain string whose opening quote was read, and its
    /// closing quote.
    #[inline(always)]
    fn string(&mut self) -> Option<&'a [u8]> {
        let mut n = 0;
        loop {
            let stops = swar::string_stops(swar::load(self.rest, n));
            if stops != 0 {
                n += (stops.trailing_zeros() / 8) as usize;
                break;
            }
            n += 8;
        }
        if self.rest.get(n) != Some(&b'"') {
            return None;
        }
        let s = self.rest.get(..n)?;
        self.skip(n + 1);
        Some(s)
    }

    /// A string read as a [`Symbol`]; a bad one is left to the general path.
    #[inline(always)]
    fn symbol(&mut self) -> Option<Symbol> {
        let start = self.rest;
        let raw = self.string()?;
        match start.first_chunk::<24>() {
            Some(window) => Symbol::from_window(window, raw.len()).ok(),
            None => Symbol::from_bytes(raw).ok(),
        }
    }

    /// A run of digits, up to `max` of them: (value, count). Reads nothing
    /// beyond the run; the caller checks what follows.
    #[inline(always)]
    fn digits(&mut self, max: usize) -> Option<(u64, usize)> {
        let mut value = 0u64;
        let mut total = 0;
        loop {
            let v = swar::digit_values(swar::load(self.rest, 0));
            let n = swar::digit_run(v);
            total += n;
            if total > max {
                return None;
            }
            if n > 0 {
                value = value * POW10[n] + swar::leading_digits(v, n);
                self.skip(n);
            }
            if n < 8 {
                return Some((value, total));
            }
        }
    }

    /// A JSON integer as the general scanner takes one: digits, no leading
    /// zero. What may follow (`,` or `}`) is checked by the next literal.
    #[inline(always)]
    fn int(&mut self) -> Option<u64> {
        // Ids have 8 to 15 digits: two words hold them, read without a loop.
        if let Some(w) = self.rest.first_chunk::<16>() {
            let (hi, lo) = swar::split_words(w);
            let (hi, lo) = (swar::digit_values(hi), swar::digit_values(lo));
            let n = swar::digit_run(lo);
            // Eight digits, not led by a zero, then fewer than eight.
            if swar::digit_run_is(hi, 8) && hi & 0xff != 0 && n < 8 {
                let mut value = swar::eight_digits(hi);
                if n > 0 {
                    value = value * POW10[n] + swar::leading_digits(lo, n);
                }
                self.skip(8 + n);
                return Some(value);
            }
        }
        let first = self.rest.first().copied();
        let (value, n) = self.digits(MAX_INT_DIGITS)?;
        if n == 0 || (n > 1 && first == Some(b'0')) {
            return None;
        }
        Some(value)
    }

    /// A millisecond time: a non-negative [`int`](Self::int).
    #[inline(always)]
    fn time(&mut self) -> Option<i64> {
        // Times from 2001 to 2286 have 13 digits. Checking for exactly that
        // turns the next field's position into a predicted branch rather
        // than a value computed from this one's length.
        let hi = swar::digit_values(swar::load(self.rest, 0));
        let lo = swar::digit_values(swar::load(self.rest, 8));
        if swar::digit_run_is(hi, 8) && swar::digit_run_is(lo, 5) && hi & 0xff != 0 {
            self.skip(13);
            let v = swar::eight_digits(hi) * 100_000 + swar::leading_digits(lo, 5);
            return Some(v as i64);
        }
        self.int().map(|v| v as i64)
    }

    /// The rest of a decimal string (its opening quote was read) and the
    /// closing quote: exact and positive, as `Decimal::parse_bytes` and the
    /// positivity check would make it.
    #[inline(always)]
    fn decimal(&mut self) -> Option<Decimal> {
        let d = self.plain_decimal()?;
        self.lit(b"\"")?;
        Some(d)
    }

    /// `[0-9]{1,10}(\.[0-9]{1,8})?`, not zero; what follows is the caller's.
    #[inline(always)]
    fn plain_decimal(&mut self) -> Option<Decimal> {
        match self.short_decimal() {
            Some(d) => Some(d),
            None => self.long_decimal(),
        }
    }

    /// [`plain_decimal`](Self::plain_decimal), eight digits at a time.
    #[inline(always)]
    fn long_decimal(&mut self) -> Option<Decimal> {
        let (int, n) = self.digits(MAX_DECIMAL_INT_DIGITS)?;
        if n == 0 {
            return None;
        }
        let mut raw = int * POW10[8];
        if self.eat(b".") {
            let v = swar::digit_values(swar::load(self.rest, 0));
            let n = swar::digit_run(v);
            // `7.` and a ninth fractional digit are left to the general path.
            if n == 0 || (n == 8 && self.rest.get(8).is_some_and(u8::is_ascii_digit)) {
                return None;
            }
            raw += swar::fraction_digits(v, n);
            self.skip(n);
        }
        (raw != 0).then(|| Decimal::from_raw(raw as i64))
    }

    /// [`plain_decimal`](Self::plain_decimal) of one with at most seven
    /// digits, the point aside (`28145.10`, `0.002`), or `None` without
    /// reading anything. With the point squeezed out of the word, all its
    /// digits are read at once: `28145.10` is 2814510 × 10^6.
    #[inline(always)]
    fn short_decimal(&mut self) -> Option<Decimal> {
        let x = u128::from_le_bytes(*self.rest.first_chunk::<16>()?);
        let v = swar::digit_values(x as u64);
        let n = swar::digit_run(v);
        if n == 0 || n == 8 {
            return None;
        }
        let (digits, read) = if (x >> (8 * n)) as u8 == b'.' {
            let int = (1u128 << (8 * n)) - 1;
            let squeezed = swar::digit_values(((x & int) | ((x >> 8) & !int)) as u64);
            let m = swar::digit_run(squeezed);
            // No fractional digit (`7.`), or perhaps more than fit: the
            // general reading decides.
            if m == n || m == 8 {
                return None;
            }
            (
                swar::leading_digits(squeezed, m) * POW10[8 - (m - n)],
                m + 1,
            )
        } else {
            (swar::leading_digits(v, n) * POW10[8], n)
        };
        if digits == 0 {
            return None;
        }
        self.skip(read);
        Some(Decimal::from_raw(digits as i64))
    }

    #[inline(always)]
    fn bool(&mut self) -> Option<bool> {
        if self.eat(b"true") {
            Some(true)
        } else if self.eat(b"false") {
            Some(false)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fuzz_check::paths_agree as agree;
    use super::super::json::{parse_frame_general, parse_frame_serde};
    use super::super::recorded;
    use super::{Reader, fixed_trade};
    use crate::Frame;
    use proptest::prelude::*;

    /// One frame per layout, as recorded (the `nq` ones as Binance sends
    /// them since 2025-12-31).
    const LAYOUTS: [&str; 7] = [
        r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161256322,"T":1723161256322,"s":"BTCUSDT","t":5266583935,"p":"61800.30","q":"0.006","X":"MARKET","m":false}}"#,
        r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1680652800000,"s":"BTCUSDT","t":3071245454,"p":"28165.47000000","q":"0.00056000","b":20720542158,"a":20720542592,"T":1680652799999,"m":true,"M":true}}"#,
        r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}"#,
        r#"{"stream":"sandusdt@aggTrade","data":{"e":"aggTrade","E":1617647797640,"a":9445517,"s":"SANDUSDT","p":"0.69067","q":"369","f":12821738,"l":12821738,"T":1617647797485,"m":true}}"#,
        r#"{"e":"aggTrade","E":1767225600123,"a":5,"s":"BTCUSDT","p":"94000.10","q":"0.002","nq":"0.002","f":8,"l":9,"T":1767225600120,"m":false}"#,
        r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"a":7,"s":"BTCUSDT","p":"100.5","q":"0.25","f":10,"l":11,"T":2,"m":true,"nq":"0.25"}}"#,
        r#"{"stream":"zilusdt@aggTrade","data":{"e":"aggTrade","E":1617647603484,"s":"ZILUSDT","a":18938405,"p":"0.21448000","q":"2062.90000000","f":23806928,"l":23806928,"T":1617647603483,"m":false,"M":true}}"#,
    ];

    #[test]
    fn every_layout_takes_the_fast_path() {
        for frame in LAYOUTS {
            assert!(fixed_trade(frame.as_bytes()).is_some(), "{frame}");
            agree(frame.as_bytes());
        }
    }

    #[test]
    fn every_recorded_frame_takes_the_fast_path_and_agrees() {
        for r in recorded::frames() {
            let fast = fixed_trade(&r.frame).unwrap_or_else(|| {
                panic!(
                    "{}: general path for {}",
                    r.capture,
                    String::from_utf8_lossy(&r.frame)
                )
            });
            match parse_frame_general(&r.frame) {
                Ok(Frame::Trade(general)) => assert_eq!(fast, general, "{}", r.capture),
                other => panic!("{}: general path gave {other:?}", r.capture),
            }
            match parse_frame_serde(&r.frame) {
                Ok(Frame::Trade(serde)) => assert_eq!(fast, serde, "{}", r.capture),
                other => panic!("{}: serde gave {other:?}", r.capture),
            }
        }
    }

    /// Valid and invalid frames at the edges of what the templates take.
    #[test]
    fn edge_cases_agree() {
        let base = LAYOUTS[0];
        let edits: &[(&str, &str)] = &[
            (r#""p":"61800.30""#, r#""p":"7.""#),
            (r#""p":"61800.30""#, r#""p":".5""#),
            (r#""p":"61800.30""#, r#""p":"+1.5""#),
            (r#""p":"61800.30""#, r#""p":"-1.5""#),
            (r#""p":"61800.30""#, r#""p":"0""#),
            (r#""p":"61800.30""#, r#""p":"0.00000000""#),
            (r#""p":"61800.30""#, r#""p":"0.00000001""#),
            (r#""p":"61800.30""#, r#""p":"0.000000001""#),
            (r#""p":"61800.30""#, r#""p":"1.000000000""#),
            (r#""p":"61800.30""#, r#""p":"1.123456789""#),
            (r#""p":"61800.30""#, r#""p":"00061800.30""#),
            (r#""p":"61800.30""#, r#""p":"9999999999.99999999""#),
            (r#""p":"61800.30""#, r#""p":"10000000000""#),
            (r#""p":"61800.30""#, r#""p":"92233720368.54775807""#),
            (r#""p":"61800.30""#, r#""p":"92233720369""#),
            (r#""p":"61800.30""#, r#""p":"1e5""#),
            (r#""p":"61800.30""#, r#""p":"1.2.3""#),
            (r#""p":"61800.30""#, r#""p":"""#),
            (r#""p":"61800.30""#, r#""p":61800.30"#),
            (r#""q":"0.006""#, r#""q":"0.006 ""#),
            (r#""t":5266583935"#, r#""t":0"#),
            (r#""t":5266583935"#, r#""t":05266583935"#),
            (r#""t":5266583935"#, r#""t":999999999999999999"#),
            (r#""t":5266583935"#, r#""t":1000000000000000000"#),
            (r#""t":5266583935"#, r#""t":18446744073709551615"#),
            (r#""t":5266583935"#, r#""t":18446744073709551616"#),
            (r#""t":5266583935"#, r#""t":5266583935.0"#),
            (r#""t":5266583935"#, r#""t":5266583935e0"#),
            (r#""t":5266583935"#, r#""t":-1"#),
            (r#""T":1723161256322"#, r#""T":-1723161256322"#),
            (r#""T":1723161256322"#, r#""T":-0"#),
            (r#""T":1723161256322"#, r#""T":0"#),
            (r#""T":1723161256322"#, r#""T":9223372036854775807"#),
            (r#""T":1723161256322"#, r#""T":9223372036854775808"#),
            (r#""E":1723161256322,"#, ""),
            (r#""s":"BTCUSDT""#, r#""s":"btcusdt""#),
            (r#""s":"BTCUSDT""#, r#""s":"BTC-USDT""#),
            (r#""s":"BTCUSDT""#, r#""s":"""#),
            (r#""s":"BTCUSDT""#, r#""s":"ABCDEFGHIJKLMNOPQRSTUVWXYZ""#),
            (r#""s":"BTCUSDT""#, r#""s":"BTC\u0055SDT""#),
            (r#""s":"BTCUSDT""#, r#""s":"BTCUSDTé""#),
            (r#""X":"MARKET""#, r#""X":"INSURANCE_FUND""#),
            (r#""X":"MARKET""#, r#""X":null"#),
            (r#""X":"MARKET""#, r#""X":"MAR\"KET""#),
            (r#""X":"MARKET""#, "\"X\":\"MAR\tKET\""),
            (r#""m":false"#, r#""m":true"#),
            (r#""m":false"#, r#""m":fals"#),
            (r#""m":false"#, r#""m":0"#),
            (r#""stream":"btcusdt@trade""#, r#""stream":"btc\\usdt""#),
            (r#""stream":"btcusdt@trade""#, r#""stream":"""#),
            (r#""stream":"btcusdt@trade""#, r#""stream":1"#),
            (r#""e":"trade""#, r#""e":"trades""#),
            (r#""e":"trade""#, r#""e":"depthUpdate""#),
            (r#""e":"trade""#, r#""e":"trade","e":"trade""#),
            (r#""t":5266583935"#, r#""t":5266583935,"t":1"#),
            (r#""X":"MARKET""#, r#""X":"MARKET","id":1"#),
            (
                r#""X":"MARKET""#,
                r#""X":"MARKET","error":{"code":1,"msg":"x"}"#,
            ),
            (r#""data":{"#, r#""data": {"#),
            (r#","s":"#, r#", "s":"#),
        ];
        for (from, to) in edits {
            assert!(base.contains(from), "{from}");
            agree(base.replacen(from, to, 1).as_bytes());
        }
        for frame in [
            format!("{base} "),
            format!(" {base}"),
            format!("{base}}}"),
            base[..base.len() - 1].to_string(),
            bare(base).to_string(),
            format!("{} ", bare(base)),
            LAYOUTS[4].replace(r#""f":8"#, r#""nq":"1","f":8"#),
            LAYOUTS[4].replace(r#""m":false"#, r#""m":false,"nq":"1""#),
            LAYOUTS[1].replace(r#","a":20720542592"#, ""),
            LAYOUTS[1].replace(r#""a":20720542592"#, r#""a":-2"#),
            LAYOUTS[6].replace(r#","M":true"#, ""),
        ] {
            agree(frame.as_bytes());
        }
    }

    /// A combined-stream frame's payload.
    fn bare(frame: &str) -> &str {
        let start = frame.find(r#""data":"#).unwrap() + 7;
        &frame[start..frame.len() - 1]
    }

    /// Every single-byte change of one recorded frame per layout.
    #[test]
    fn every_single_byte_edit_agrees() {
        let bytes: Vec<u8> = b"{}[]\":,0123456789.-+eE tfnul\\\x00\x7f\xc3A_".to_vec();
        for frame in LAYOUTS {
            for pos in 0..frame.len() {
                for &b in &bytes {
                    let mut f = frame.as_bytes().to_vec();
                    f[pos] = b;
                    agree(&f);
                }
            }
        }
    }

    proptest! {
        /// The one-word reading of short decimals is the general one.
        #[test]
        fn short_decimals_read_as_long_ones(
            text in "[0-9]{0,9}(\\.[0-9]{0,9})?[.\",0-9a]?",
            pad in 0usize..20,
        ) {
            let input = format!("{text}{}", "\"".repeat(pad));
            let mut short = Reader { rest: input.as_bytes() };
            if let Some(d) = short.short_decimal() {
                let mut long = Reader { rest: input.as_bytes() };
                prop_assert_eq!(long.long_decimal(), Some(d));
                prop_assert_eq!(long.rest, short.rest);
            } else {
                prop_assert_eq!(short.rest, input.as_bytes());
            }
        }
    }

    /// A recorded frame (or a built-in one without the data) by index.
    fn pick(i: usize) -> Vec<u8> {
        let frames = recorded::frames();
        if frames.is_empty() {
            LAYOUTS[i % LAYOUTS.len()].as_bytes().to_vec()
        } else {
            frames[i % frames.len()].frame.clone()
        }
    }

    #[derive(Debug, Clone)]
    enum Edit {
        Replace(usize, u8),
        Insert(usize, u8),
        Remove(usize),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        // Mostly bytes that matter to JSON and to the templates.
        let byte = prop_oneof![
            4 => prop::sample::select(b"{}[]\":,0123456789.-e tfn\\".to_vec()),
            1 => any::<u8>(),
        ];
        prop_oneof![
            4 => (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Replace(i, b)),
            1 => (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
            1 => any::<usize>().prop_map(Edit::Remove),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn mutated_recorded_frames_agree(
            i in any::<usize>(),
            edits in prop::collection::vec(edit(), 1..4),
        ) {
            let mut f = pick(i);
            for e in edits {
                match e {
                    Edit::Replace(p, b) => {
                        let n = f.len();
                        f[p % n] = b;
                    }
                    Edit::Insert(p, b) => f.insert(p % (f.len() + 1), b),
                    Edit::Remove(p) => {
                        f.remove(p % f.len());
                    }
                }
                if f.is_empty() {
                    break;
                }
            }
            agree(&f);
        }

        /// Recorded layouts with random numbers and strings in their fields.
        #[test]
        fn generated_fields_agree(
            layout in 0..LAYOUTS.len(),
            p in "[0-9]{0,12}(\\.[0-9]{0,10})?",
            q in "0{0,3}[0-9]{0,3}(\\.0{0,9}[0-9]{0,3})?",
            id in "-?[0-9]{0,21}",
            time in "-?[0-9]{0,20}",
            symbol in "[A-Za-z0-9_@ ]{0,25}",
        ) {
            let f = replace_value(LAYOUTS[layout], "\"p\":\"", &p);
            let f = replace_value(&f, "\"q\":\"", &q);
            let f = replace_value(&f, "\"t\":", &id);
            let f = replace_value(&f, "\"a\":", &id);
            let f = replace_value(&f, "\"T\":", &time);
            let f = replace_value(&f, "\"s\":\"", &symbol);
            agree(f.as_bytes());
        }
    }

    /// `frame` with the value after `key` (up to `,`, `}` or `"`) replaced.
    fn replace_value(frame: &str, key: &str, value: &str) -> String {
        let Some(start) = frame.find(key).map(|k| k + key.len()) else {
            return frame.to_string();
        };
        let len = frame[start..].find([',', '}', '"']).unwrap();
        format!("{}{value}{}", &frame[..start], &frame[start + len..])
    }
}
