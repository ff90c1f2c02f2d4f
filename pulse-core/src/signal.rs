//! The rule-based signal of a window.

use std::cmp::Ordering;
use std::fmt;

/// The window's signal, from its average price, VWAP and net delta.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    /// avg > vwap and delta > 0.
    StrongBuy,
    /// avg < vwap and delta < 0.
    StrongSell,
    /// avg < vwap and delta > 0.
    Accumulating,
    /// avg > vwap and delta < 0.
    Distributing,
    /// Anything else, including every tie.
    Neutral,
}

impl Signal {
    /// Applies the five rules in order. `avg_vs_vwap` compares the average
    /// price with the VWAP; `delta` compares net delta with zero. Both come
    /// from exact integer comparisons, so ties really are ties.
    pub fn classify(avg_vs_vwap: Ordering, delta: Ordering) -> Signal {
        use Ordering::*;
        match (avg_vs_vwap, delta) {
            (Greater, Greater) => Signal::StrongBuy,
            (Less, Less) => Signal::StrongSell,
            (Less, Greater) => Signal::Accumulating,
            (Greater, Less) => Signal::Distributing,
            _ => Signal::Neutral,
        }
    }

    /// The label stored in ClickHouse: `STRONG BUY`, `STRONG SELL`,
    /// `ACCUMULATING`, `DISTRIBUTING` or `NEUTRAL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::StrongBuy => "STRONG BUY",
            Signal::StrongSell => "STRONG SELL",
            Signal::Accumulating => "ACCUMULATING",
            Signal::Distributing => "DISTRIBUTING",
            Signal::Neutral => "NEUTRAL",
        }
    }

    /// All five signals, in rule order.
    pub const ALL: [Signal; 5] = [
        Signal::StrongBuy,
        Signal::StrongSell,
        Signal::Accumulating,
        Signal::Distributing,
        Signal::Neutral,
    ];
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so `{:<12}` lines columns up.
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for Signal {
    type Err = UnknownSignal;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Signal::ALL
            .into_iter()
            .find(|sig| sig.as_str() == s)
            .ok_or_else(|| UnknownSignal(s.to_string()))
    }
}

/// A label that is not one of the five signals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown signal {0:?}")]
pub struct UnknownSignal(pub String);

impl serde::Serialize for Signal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn rules_in_order_with_ties_neutral() {
        let cases = [
            (Greater, Greater, Signal::StrongBuy),
            (Less, Less, Signal::StrongSell),
            (Less, Greater, Signal::Accumulating),
            (Greater, Less, Signal::Distributing),
            (Equal, Greater, Signal::Neutral),
            (Equal, Less, Signal::Neutral),
            (Greater, Equal, Signal::Neutral),
            (Less, Equal, Signal::Neutral),
            (Equal, Equal, Signal::Neutral),
        ];
        for (avg, delta, expected) in cases {
            assert_eq!(Signal::classify(avg, delta), expected, "{avg:?} {delta:?}");
        }
    }

    #[test]
    fn display_pads_to_a_width() {
        assert_eq!(format!("[{:<12}]", Signal::Neutral), "[NEUTRAL     ]");
    }

    #[test]
    fn labels_roundtrip() {
        for s in Signal::ALL {
            assert_eq!(s.as_str().parse::<Signal>().unwrap(), s);
        }
        assert!("BUY".parse::<Signal>().is_err());
    }
}
