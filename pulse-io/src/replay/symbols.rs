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

    /// Whether [`missing_from`](Self::missing_from) needs the file's symbols.
    pub(crate) fn wants_seen(&self) -> bool {
        matches!(self, SymbolFilter::Only(_))
    }

    /// The symbols asked for by name that `seen` (the file's) lacks, if any.
    pub(crate) fn missing_from(&self, seen: &BTreeSet<Symbol>) -> Option<BTreeSet<Symbol>> {
        let SymbolFilter::Only(asked) = self else {
            return None;
        };
        let missing: BTreeSet<Symbol> = asked.difference(seen).copied().collect();
        (!missing.is_empty()).then_some(missing)
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

    #[test]
    fn names_the_asked_for_symbols_the_file_lacks() {
        let (btc, eth) = (
            Symbol::new("BTCUSDT").unwrap(),
            Symbol::new("ETHUSDT").unwrap(),
        );
        let seen = [btc].into();
        let only = SymbolFilter::Only([btc, eth].into());
        assert_eq!(only.missing_from(&seen), Some([eth].into()));
        assert_eq!(SymbolFilter::Only([btc].into()).missing_from(&seen), None);
        assert_eq!(SymbolFilter::Except([eth].into()).missing_from(&seen), None);
        assert!(only.wants_seen() && !SymbolFilter::All.wants_seen());
    }
}
