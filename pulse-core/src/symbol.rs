//! Trading-pair symbols stored inline, so trades are `Copy` and never allocate.

use std::fmt;

/// Longest symbol [`Symbol`] can hold. Binance symbols are much shorter
/// (`BTCUSDT`, `1000SHIBUSDT`, `BTCUSDT_250926`).
pub const MAX_SYMBOL_LEN: usize = 23;

/// An upper-case trading-pair symbol such as `BTCUSDT`.
///
/// ```
/// use pulse_core::Symbol;
/// let s = Symbol::new("btcusdt").unwrap();
/// assert_eq!(s.as_str(), "BTCUSDT");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
// Three aligned words, the text zero-padded and its length in the last
// byte: trades copy symbols, and maps compare them, per trade.
#[repr(align(8))]
pub struct Symbol {
    bytes: [u8; 24],
}

/// Why a symbol was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SymbolError {
    /// Empty, or longer than [`MAX_SYMBOL_LEN`].
    #[error("symbol must be 1..={MAX_SYMBOL_LEN} characters, got {0}")]
    Length(usize),
    /// Only ASCII letters, digits and `_` are allowed.
    #[error("invalid character {0:?} in symbol")]
    InvalidChar(char),
}

impl Symbol {
    /// Validates and upper-cases a symbol.
    pub fn new(s: &str) -> Result<Self, SymbolError> {
        Symbol::from_bytes(s.as_bytes())
    }

    /// Validates and upper-cases a symbol given as ASCII bytes.
    pub fn from_bytes(raw: &[u8]) -> Result<Self, SymbolError> {
        if raw.is_empty() || raw.len() > MAX_SYMBOL_LEN {
            return Err(SymbolError::Length(raw.len()));
        }
        let mut bytes = [0u8; 24];
        for (dst, &b) in bytes.iter_mut().zip(raw) {
            if !(b.is_ascii_alphanumeric() || b == b'_') {
                return Err(SymbolError::InvalidChar(b as char));
            }
            *dst = b.to_ascii_uppercase();
        }
        bytes[MAX_SYMBOL_LEN] = raw.len() as u8;
        Ok(Symbol { bytes })
    }

    /// [`from_bytes`](Self::from_bytes) of `window[..len]`, eight bytes at
    /// a time: the parsers' fast path hands in the input from the symbol's
    /// start, so whole words can be read without copying first. Always
    /// inlined so the words stay in registers instead of a stack round trip.
    #[inline(always)]
    pub(crate) fn from_window(window: &[u8; 24], len: usize) -> Result<Self, SymbolError> {
        if len == 0 || len > MAX_SYMBOL_LEN {
            return Err(SymbolError::Length(len));
        }
        let mut words = [0u64; 3];
        let mut valid = true;
        // Only the words the symbol reaches into; the rest stay zero.
        for (k, word) in words.iter_mut().enumerate().take(len.div_ceil(8)) {
            let x = u64::from_le_bytes(*window[8 * k..].first_chunk::<8>().unwrap_or(&[0; 8]));
            let n = (len - 8 * k).min(8);
            let keep = if n == 8 {
                HIGH
            } else {
                HIGH & ((1u64 << (8 * n)) - 1)
            };
            // Range tests on the low seven bits cannot carry between bytes;
            // `ascii` rules out the rest.
            let x7 = x & !HIGH;
            let ascii = !x & HIGH;
            let lower = in_range(x7, b'a', b'z');
            let ok = (in_range(x7, b'0', b'9') | in_range(x7, b'A', b'Z') | lower)
                | in_range(x7, b'_', b'_');
            valid &= ok & ascii & keep == keep;
            // `keep >> 7` is 1 in each kept byte: spread it to 0xff.
            *word = (x ^ (lower >> 2)) & ((keep >> 7) * 0xff);
        }
        if !valid {
            return Self::from_bytes(&window[..len]);
        }
        // Whole words, so a reader of the result loads what was stored.
        words[2] |= (len as u64) << 56;
        let mut bytes = [0u8; 24];
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        Ok(Symbol { bytes })
    }

    /// The symbol text, upper case.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored.
        std::str::from_utf8(&self.bytes[..self.len()]).unwrap_or_default()
    }

    /// Lower-case form, as used in Binance stream names (`btcusdt@aggTrade`).
    pub fn to_lowercase(&self) -> String {
        self.as_str().to_ascii_lowercase()
    }
}

/// By length, then bytewise: the order a derived `Ord` gives, compared a
/// word at a time, since every map keyed by symbol does this per trade.
impl Ord for Symbol {
    // Inline across crates: the maps in pulse-io compare symbols per record.
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.len()
            .cmp(&other.len())
            .then_with(|| self.words().cmp(&other.words()))
    }
}

impl PartialOrd for Symbol {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Symbol {
    #[inline]
    fn len(&self) -> usize {
        self.bytes[MAX_SYMBOL_LEN] as usize
    }

    /// The bytes as big-endian words, which compare as the zero-padded
    /// text does; the length in the last byte only breaks ties `cmp` has
    /// already settled.
    #[inline]
    fn words(&self) -> [u64; 3] {
        let word =
            |k: usize| u64::from_be_bytes(*self.bytes[8 * k..].first_chunk().unwrap_or(&[0; 8]));
        [word(0), word(1), word(2)]
    }
}

const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `x` (each below 0x80) in `lo..=hi`.
#[inline(always)]
fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let at_least_lo = x + ONES * (0x80 - lo) as u64;
    let above_hi = x + ONES * (0x7f - hi) as u64;
    at_least_lo & !above_hi & HIGH
}

impl std::str::FromStr for Symbol {
    type Err = SymbolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Symbol::new(s)
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so `{:<10}` lines columns up.
        f.pad(self.as_str())
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({})", self.as_str())
    }
}

impl serde::Serialize for Symbol {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Symbol {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Symbol::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// The word-wise order is the derived one: length, then bytes.
        #[test]
        fn orders_by_length_then_bytes(a in "[A-Z0-9_]{1,23}", b in "[A-Z0-9_]{1,23}") {
            let (x, y) = (Symbol::new(&a).unwrap(), Symbol::new(&b).unwrap());
            let expected = a.len().cmp(&b.len()).then_with(|| a.as_bytes().cmp(b.as_bytes()));
            prop_assert_eq!(x.cmp(&y), expected);
            prop_assert_eq!(x == y, a == b);
        }
    }

    use super::*;

    #[test]
    fn display_pads_to_a_width() {
        let btc = Symbol::new("BTCUSDT").unwrap();
        assert_eq!(
            format!("[{btc:<9}] [{btc:>9}] [{btc}]"),
            "[BTCUSDT  ] [  BTCUSDT] [BTCUSDT]"
        );
    }

    #[test]
    fn validates_and_uppercases() {
        assert_eq!(Symbol::new("ethusdt").unwrap().as_str(), "ETHUSDT");
        assert_eq!(
            Symbol::new("BTCUSDT_250926").unwrap().to_lowercase(),
            "btcusdt_250926"
        );
        assert_eq!(Symbol::new(""), Err(SymbolError::Length(0)));
        assert_eq!(Symbol::new("BTC/USDT"), Err(SymbolError::InvalidChar('/')));
        assert_eq!(Symbol::new(&"A".repeat(24)), Err(SymbolError::Length(24)));
        assert_eq!(
            Symbol::from_bytes(b"BTC\0"),
            Err(SymbolError::InvalidChar('\0'))
        );
    }

    proptest::proptest! {
        /// The same as checking and upper-casing byte by byte.
        #[test]
        fn matches_a_byte_loop(raw in proptest::collection::vec(
            proptest::sample::select(b"azAZ09_/@[`{\0\x7f\xc3\xff-".to_vec()), 0..26)
        ) {
            let expected = if raw.is_empty() || raw.len() > MAX_SYMBOL_LEN {
                Err(SymbolError::Length(raw.len()))
            } else if let Some(&b) = raw.iter().find(|b| !(b.is_ascii_alphanumeric() || **b == b'_')) {
                Err(SymbolError::InvalidChar(b as char))
            } else {
                Ok(raw.to_ascii_uppercase())
            };
            let got = Symbol::from_bytes(&raw).map(|s| s.as_str().as_bytes().to_vec());
            proptest::prop_assert_eq!(&got, &expected);
            let mut window = [b'"'; 24];
            let n = raw.len().min(24);
            window[..n].copy_from_slice(&raw[..n]);
            if raw.len() <= 24 {
                let got = Symbol::from_window(&window, raw.len());
                proptest::prop_assert_eq!(got, Symbol::from_bytes(&raw));
            }
        }
    }
}
