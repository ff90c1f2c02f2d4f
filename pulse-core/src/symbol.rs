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
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Symbol {
    len: u8,
    bytes: [u8; MAX_SYMBOL_LEN],
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
        let mut bytes = [0u8; MAX_SYMBOL_LEN];
        for (dst, &b) in bytes.iter_mut().zip(raw) {
            if !(b.is_ascii_alphanumeric() || b == b'_') {
                return Err(SymbolError::InvalidChar(b as char));
            }
            *dst = b.to_ascii_uppercase();
        }
        Ok(Symbol {
            len: raw.len() as u8,
            bytes,
        })
    }

    /// The symbol text, upper case.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or_default()
    }

    /// Lower-case form, as used in Binance stream names (`btcusdt@aggTrade`).
    pub fn to_lowercase(&self) -> String {
        self.as_str().to_ascii_lowercase()
    }
}

impl std::str::FromStr for Symbol {
    type Err = SymbolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Symbol::new(s)
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
    use super::*;

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
    }
}
