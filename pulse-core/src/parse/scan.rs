//! A fast path for the common case: a well-formed Binance frame with plain
//! strings and integers. It reads the same fields as the serde path in a
//! single pass without building anything. On anything unusual (escapes,
//! floats where integers go, duplicate keys, odd nesting) it returns `None`
//! and the caller uses serde_json, which gives the exact error. Tests check
//! both paths agree on every recorded frame and on mutated ones.

use super::json::Fields;

/// Scans a whole frame; `None` means "use the serde path".
pub(super) fn scan_frame(bytes: &[u8]) -> Option<Fields<'_>> {
    // Binance frames are ASCII. Anything else (which serde_json must check
    // for valid UTF-8) takes the serde path.
    if !bytes.is_ascii() {
        return None;
    }
    let mut cur = Cursor { b: bytes, i: 0 };
    let mut outer = Fields::default();
    let mut inner = Fields::default();
    let nested = cur.object(&mut outer, Some(&mut inner))?;
    cur.ws();
    if cur.i != cur.b.len() {
        return None;
    }
    Some(if nested { inner } else { outer })
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    /// A string without escapes or control characters, returned raw.
    #[inline]
    fn string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            match *self.b.get(self.i)? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
        let s = &self.b[start..self.i];
        self.i += 1;
        Some(s)
    }

    /// A JSON integer that fits in u64 (no sign, fraction or exponent).
    #[inline]
    fn u64(&mut self) -> Option<u64> {
        self.ws();
        self.digits()
    }

    /// [`u64`](Self::u64) without the whitespace before it.
    #[inline]
    fn digits(&mut self) -> Option<u64> {
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.b.get(self.i) {
            v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
            self.i += 1;
        }
        let len = self.i - start;
        // Empty, leading zero, or a float/exponent follows: not ours.
        if len == 0
            || (len > 1 && self.b[start] == b'0')
            || matches!(self.b.get(self.i), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        Some(v)
    }

    #[inline]
    fn i64(&mut self) -> Option<i64> {
        self.ws();
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
            // No whitespace after the sign: `- 5` is not JSON.
            let v = self.digits()?;
            // serde_json reads `-0` as the float -0.0, which no i64 field takes.
            return if v != 0 && v <= i64::MAX as u64 {
                Some(-(v as i64))
            } else {
                None
            };
        }
        i64::try_from(self.u64()?).ok()
    }

    #[inline]
    fn bool(&mut self) -> Option<bool> {
        self.ws();
        let rest = &self.b[self.i..];
        if rest.starts_with(b"true") {
            self.i += 4;
            Some(true)
        } else if rest.starts_with(b"false") {
            self.i += 5;
            Some(false)
        } else {
            None
        }
    }

    /// Reads an object of payload fields into `f`. At the top level
    /// (`data` given), a nested `data` object is read into it; returns
    /// whether one was.
    fn object(&mut self, f: &mut Fields<'a>, mut data: Option<&mut Fields<'a>>) -> Option<bool> {
        let mut seen = 0u32;
        self.eat(b'{')?;
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Some(false);
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            let bit = match key {
                b"e" => {
                    f.e = Some(self.string()?);
                    1
                }
                b"E" => {
                    f.event_time = Some(self.i64()?);
                    2
                }
                b"T" => {
                    f.trade_time = Some(self.i64()?);
                    4
                }
                b"s" => {
                    f.s = Some(self.string()?);
                    8
                }
                b"a" => {
                    f.a = Some(self.u64()?);
                    16
                }
                b"t" => {
                    f.t = Some(self.u64()?);
                    32
                }
                b"p" => {
                    f.p = Some(self.string()?);
                    64
                }
                b"q" => {
                    f.q = Some(self.string()?);
                    128
                }
                b"f" => {
                    f.f = Some(self.u64()?);
                    256
                }
                b"l" => {
                    f.l = Some(self.u64()?);
                    512
                }
                b"m" => {
                    f.m = Some(self.bool()?);
                    1024
                }
                b"id" => {
                    f.id = Some(self.u64()?);
                    2048
                }
                b"data" if data.is_some() => {
                    self.object(data.as_deref_mut()?, None)?;
                    4096
                }
                // Errors and other nested payloads go the serde way.
                b"error" | b"data" => return None,
                _ => {
                    self.skip_value(0)?;
                    0
                }
            };
            if seen & bit != 0 {
                return None; // duplicate key: serde reports it
            }
            seen |= bit;
            self.ws();
            match self.b.get(self.i)? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(seen & 4096 != 0);
                }
                _ => return None,
            }
        }
    }

    /// Skips any JSON value, checking its grammar as serde would.
    fn skip_value(&mut self, depth: u32) -> Option<()> {
        if depth > 32 {
            return None;
        }
        self.ws();
        match *self.b.get(self.i)? {
            b'"' => self.string().map(drop),
            b't' | b'f' => self.bool().map(drop),
            b'n' => self.b[self.i..].starts_with(b"null").then(|| self.i += 4),
            b'{' | b'[' => {
                let close = if self.b[self.i] == b'{' { b'}' } else { b']' };
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&close) {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    if close == b'}' {
                        self.string()?;
                        self.eat(b':')?;
                    }
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match *self.b.get(self.i)? {
                        b',' => self.i += 1,
                        c if c == close => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            _ => self.number(),
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let digits = |c: &mut Self| {
            let s = c.i;
            while let Some(b'0'..=b'9') = c.b.get(c.i) {
                c.i += 1;
            }
            c.i - s
        };
        let start = self.i;
        let n = digits(self);
        if n == 0 || (n > 1 && self.b[start] == b'0') {
            return None;
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return None;
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::json::parse_frame_serde;
    use crate::parse_frame;
    use proptest::prelude::*;

    fn agree(bytes: &[u8]) {
        let fast = parse_frame(bytes);
        let reference = parse_frame_serde(bytes);
        match (&fast, &reference) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{}", String::from_utf8_lossy(bytes)),
            (Err(a), Err(b)) => assert_eq!(
                a.to_string(),
                b.to_string(),
                "{}",
                String::from_utf8_lossy(bytes)
            ),
            _ => panic!(
                "paths disagree on {}: {fast:?} vs {reference:?}",
                String::from_utf8_lossy(bytes)
            ),
        }
    }

    #[test]
    fn every_recorded_frame_takes_the_fast_path_and_agrees() {
        for r in super::super::recorded::frames() {
            assert!(
                super::scan_frame(&r.frame).is_some(),
                "{}: slow path for {}",
                r.capture,
                String::from_utf8_lossy(&r.frame)
            );
            agree(&r.frame);
        }
    }

    #[test]
    fn unusual_but_valid_json_agrees() {
        let cases = [
            r#" { "e" : "aggTrade" , "E":1,"a":2,"s":"BTCUSDT","p":"1.5","q":"2","f":3,"l":4,"T":5,"m":false } "#,
            r#"{"e":"aggTrade","E":1,"a":2,"s":"BTCUSDT","p":"1.5","q":"2","f":3,"l":4,"T":5,"m":false,"x":[1,{"y":null}],"z":-1.5e+3}"#,
            r#"{"e":"agg\u0054rade","E":1,"a":2,"s":"BTCUSDT","p":"1.5","q":"2","f":3,"l":4,"T":5,"m":false}"#,
            r#"{"e":"aggTrade","E":1.0,"a":2,"s":"BTCUSDT","p":"1.5","q":"2","f":3,"l":4,"T":5,"m":false}"#,
            r#"{"e":"aggTrade","e":"trade","E":1,"a":2,"s":"BTCUSDT","p":"1.5","q":"2","f":3,"l":4,"T":5,"m":false}"#,
            r#"{"stream":"x","data":{"e":"trade","E":1,"t":2,"s":"BTCUSDT","p":"1.5","q":"2","T":-5,"m":true}}"#,
            r#"{"stream":"x","data":{"e":"trade","E":1,"t":2,"s":"BTCUSDT","p":"1.5","q":"2","T":-0,"m":true}}"#,
            // Found by fuzzing: the scanner took `- 5` as -5.
            r#"{"stream":"x","data":{"e":"trade","E":1,"t":2,"s":"BTCUSDT","p":"1.5","q":"2","T":- 5,"m":true}}"#,
            "{\"e\":\"trade\",\"E\":-\n1,\"t\":2,\"s\":\"BTCUSDT\",\"p\":\"1.5\",\"q\":\"2\",\"T\":5,\"m\":true}",
            r#"{"data":null,"result":null,"id":7}"#,
            r#"{"e":"aggTrade","E":01,"a":2,"s":"BTCUSDT","p":"1.5","q":"2","f":3,"l":4,"T":5,"m":false}"#,
            r#"{"e":"aggTrade","E":1,"a":18446744073709551616,"s":"B","p":"1","q":"2","f":3,"l":4,"T":5,"m":false}"#,
            r#"{"result":null,"id":1}trailing"#,
            r#"{"e":"aggTrade",}"#,
        ];
        for c in cases {
            agree(c.as_bytes());
        }
    }

    proptest! {
        #[test]
        fn mutated_frames_agree(
            pick in 0usize..1000,
            edits in prop::collection::vec((0usize..400, any::<u8>()), 1..4),
        ) {
            let base = br#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1617647781282,"a":26159457,"s":"NEOUSDT","p":"55.090","q":"0.11","f":31005036,"l":31005036,"T":1617647781127,"m":true,"nq":"0.11"}}"#;
            let trade = br#"{"e":"trade","E":1680652699882,"T":1680652699877,"s":"BTCUSDT","t":3470478916,"p":"28160.30","q":"0.001","X":"MARKET","m":false}"#;
            let mut frame = if pick % 2 == 0 { base.to_vec() } else { trade.to_vec() };
            for (pos, byte) in edits {
                let pos = pos % frame.len();
                // Mostly JSON-significant bytes, so the grammar gets exercised.
                let b = b"{}[]\":,0123456789.-eEtfnul \\"[byte as usize % 24];
                frame[pos] = if byte % 5 == 0 { byte } else { b };
            }
            agree(&frame);
        }
    }
}
