//! Which symbols' trades a replay hands out (`--symbols` with `--replay`).

use std::collections::BTreeSet;

use pulse_core::Symbol;

/// Keeps every symbol (the default), only some, or all but some.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SymbolFilter {
    /// Every symbol in the file.
    #[default]
    All,
    /// Only these.
    Only(BTreeSet<Symbol>),
    /// Every symbol but these.
    Except(BTreeSet<Symbol>),
}

impl SymbolFilter {
    /// Whether trades of `symbol` are replayed.
    pub fn keeps(&self, symbol: Symbol) -> bool {
        match self {
            SymbolFilter::All => true,
            SymbolFilter::Only(kept) => kept.contains(&symbol),
            SymbolFilter::Except(left_out) => !left_out.contains(&symbol),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_it_names() {
        let (btc, eth) = (
            Symbol::new("BTCUSDT").unwrap(),
            Symbol::new("ETHUSDT").unwrap(),
        );
        assert!(SymbolFilter::All.keeps(btc));
        let only = SymbolFilter::Only([eth].into());
        assert!(!only.keeps(btc) && only.keeps(eth));
        let except = SymbolFilter::Except([eth].into());
        assert!(except.keeps(btc) && !except.keeps(eth));
    }
}
