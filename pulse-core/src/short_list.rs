//! Symbol lists for log lines: with `--symbols ALL` a list can name
//! hundreds, so a line names a few and counts the rest.

use crate::Symbol;

/// Symbol names logged one by one; more are only counted.
const NAMES_LOGGED: usize = 10;

/// Up to ten names, then how many more: `AUSDT BUSDT … (+3)`.
pub fn short_list(symbols: &[Symbol]) -> String {
    let mut out: Vec<&str> = symbols
        .iter()
        .take(NAMES_LOGGED)
        .map(Symbol::as_str)
        .collect();
    let more = format!("(+{})", symbols.len().saturating_sub(NAMES_LOGGED));
    if symbols.len() > NAMES_LOGGED {
        out.push(&more);
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syms(names: &[String]) -> Vec<Symbol> {
        names.iter().map(|n| Symbol::new(n).unwrap()).collect()
    }

    #[test]
    fn long_lists_are_shortened() {
        let two = syms(&["AUSDT".into(), "BUSDT".into()]);
        assert_eq!(short_list(&two), "AUSDT BUSDT");
        let names: Vec<String> = (0..13).map(|i| format!("S{i}USDT")).collect();
        let short = short_list(&syms(&names));
        assert!(short.starts_with("S0USDT S1USDT"), "{short}");
        assert!(short.ends_with("S9USDT (+3)"), "{short}");
        let ten = short_list(&syms(&names[..10]));
        assert!(ten.ends_with("S9USDT"), "{ten}");
        assert_eq!(short_list(&[]), "");
    }
}
