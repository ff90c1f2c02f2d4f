//! The recorded trades the fake serves, and their wire formats.

use std::collections::HashMap;
use std::io::{self, BufRead};
use std::path::Path;

use pulse_core::{Frame, Side, Symbol, Trade, TradeKind, parse_frame, render};

/// Reads the trades of a JSONL capture (plain or `.gz`), such as the files
/// in `../shared/data`, in file order and as the fake serves them: `@trade`
/// events become aggTrades with `a = f = l = t` (see [`as_agg_trade`]).
/// Subscription acks are skipped.
///
/// # Errors
/// When the file cannot be read or a line is not a trade frame: test data
/// is expected to be clean.
pub fn load_trades(path: impl AsRef<Path>) -> io::Result<Vec<Trade>> {
    let path = path.as_ref();
    let mut reader = crate::text::open_text(path)?;
    let mut trades = Vec::new();
    let mut line = Vec::new();
    let mut line_no = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(trades);
        }
        line_no += 1;
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        match parse_frame(text) {
            Ok(Frame::Trade(t)) => trades.push(as_agg_trade(t)),
            Ok(Frame::Ack { .. }) => {}
            Err(e) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}:{line_no}: {e}", path.display()),
                ));
            }
        }
    }
}

/// The aggTrade the fake serves for a recorded trade: an `@trade` event
/// becomes an aggTrade of one trade, `a = f = l = t`.
pub fn as_agg_trade(trade: Trade) -> Trade {
    match trade.kind {
        TradeKind::AggTrade => trade,
        TradeKind::Trade => Trade {
            kind: TradeKind::AggTrade,
            first_trade_id: trade.id,
            last_trade_id: trade.id,
            ..trade
        },
    }
}

/// The combined-stream frame Binance sends for `trade`, keys in futures
/// order `e,E,a,s,p,q,f,l,T,m`:
/// `{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":..,"a":..,...}}`.
/// A trade of kind `Trade` goes out as recorded, as an `@trade` event,
/// which is what a server playing a recording back as it was sends.
pub(crate) fn trade_frame(t: &Trade) -> String {
    let payload = render::usdm_payload(t);
    let stream = match t.kind {
        TradeKind::AggTrade => stream_name(t.symbol),
        TradeKind::Trade => format!("{}@trade", t.symbol.to_lowercase()),
    };
    format!(r#"{{"stream":"{stream}","data":{payload}}}"#)
}

/// What a corrupted REST entry looks like: the id is intact, the price is
/// not a number, as a truncated or mangled upstream record would be.
fn corrupt_rest_entry(t: &Trade, out: &mut String) {
    use std::fmt::Write;
    let _ = write!(
        out,
        r#"{{"a":{},"p":"NaN","q":"{}","f":{},"l":{},"T":{},"m":{}}}"#,
        t.id,
        t.quantity,
        t.first_trade_id,
        t.last_trade_id,
        t.trade_time_ms,
        t.side == Side::Sell,
    );
}

/// A REST reply body: a JSON array of aggTrades, with the entries for
/// which `corrupt` is true mangled.
pub(crate) fn rest_json(trades: &[Trade], corrupt: impl Fn(&Trade) -> bool) -> String {
    let mut out = String::with_capacity(2 + trades.len() * 100);
    out.push('[');
    for (i, t) in trades.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if corrupt(t) {
            corrupt_rest_entry(t, &mut out);
        } else {
            out.push_str(&render::rest_agg_trade(t));
        }
    }
    out.push(']');
    out
}

/// The stream name, lower-case as Binance expects: `btcusdt@aggtrade`.
pub(crate) fn stream_name(symbol: Symbol) -> String {
    format!("{}@aggTrade", symbol.to_lowercase())
}

/// The trades in publishing order, plus a per-symbol index by id for REST.
#[derive(Debug)]
pub(crate) struct Tape {
    trades: Vec<Trade>,
    /// Per symbol: (id, position on the tape), sorted by id.
    by_symbol: HashMap<Symbol, Vec<(u64, usize)>>,
}

impl Tape {
    pub(crate) fn new(trades: Vec<Trade>) -> Self {
        let mut by_symbol: HashMap<Symbol, Vec<(u64, usize)>> = HashMap::new();
        for (pos, t) in trades.iter().enumerate() {
            by_symbol.entry(t.symbol).or_default().push((t.id, pos));
        }
        for ids in by_symbol.values_mut() {
            ids.sort_unstable();
        }
        Tape { trades, by_symbol }
    }

    pub(crate) fn trades(&self) -> &[Trade] {
        &self.trades
    }

    pub(crate) fn symbols(&self) -> Vec<Symbol> {
        let mut symbols: Vec<Symbol> = self.by_symbol.keys().copied().collect();
        symbols.sort_unstable();
        symbols
    }

    /// What REST answers to `startTime`: up to `limit` trades of `symbol`
    /// with trade time ≥ `start_ms`, in id order, among the first
    /// `published` trades of the tape. `None` for an unknown symbol.
    pub(crate) fn page_since(
        &self,
        symbol: Symbol,
        start_ms: i64,
        limit: usize,
        published: usize,
    ) -> Option<Vec<Trade>> {
        let ids = self.by_symbol.get(&symbol)?;
        let page = ids
            .iter()
            .filter(|(_, pos)| *pos < published)
            .map(|&(_, pos)| self.trades[pos])
            .filter(|t| t.trade_time_ms >= start_ms)
            .take(limit)
            .collect();
        Some(page)
    }

    /// What REST answers: up to `limit` trades of `symbol` with id ≥
    /// `from_id` (or the latest `limit` without it), among the first
    /// `published` trades of the tape. `None` for an unknown symbol.
    pub(crate) fn page(
        &self,
        symbol: Symbol,
        from_id: Option<u64>,
        limit: usize,
        published: usize,
    ) -> Option<Vec<Trade>> {
        let ids = self.by_symbol.get(&symbol)?;
        let visible = ids.iter().filter(|(_, pos)| *pos < published);
        let page: Vec<Trade> = match from_id {
            Some(from) => visible
                .filter(|(id, _)| *id >= from)
                .take(limit)
                .map(|&(_, pos)| self.trades[pos])
                .collect(),
            None => {
                let all: Vec<&(u64, usize)> = visible.collect();
                all[all.len().saturating_sub(limit)..]
                    .iter()
                    .map(|&&(_, pos)| self.trades[pos])
                    .collect()
            }
        };
        Some(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRADE: &str = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1680652699882,"T":1680652699877,"s":"BTCUSDT","t":3470478916,"p":"28160.30","q":"0.001","X":"MARKET","m":true}}"#;
    const AGG: &str = r#"{"stream":"neousdt@aggTrade","data":{"e":"aggTrade","E":1617647781282,"a":26159457,"s":"NEOUSDT","p":"55.090","q":"0.11","f":31005036,"l":31005036,"T":1617647781127,"m":true}}"#;

    fn trade(frame: &str) -> Trade {
        match parse_frame(frame.as_bytes()).unwrap() {
            Frame::Trade(t) => as_agg_trade(t),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn frames_round_trip_through_the_parser() {
        for frame in [TRADE, AGG] {
            let t = trade(frame);
            assert_eq!(trade(&trade_frame(&t)), t, "{frame}");
        }
        let t = trade(TRADE);
        assert_eq!(
            (t.kind, t.first_trade_id, t.last_trade_id),
            (TradeKind::AggTrade, 3470478916, 3470478916)
        );
        assert!(trade_frame(&t).starts_with(r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1680652699882,"a":3470478916,"s":"BTCUSDT","p":"28160.3""#));
    }

    #[test]
    fn rest_pages_only_show_published_trades() {
        let base = trade(AGG);
        let other = Symbol::new("BTCUSDT").unwrap();
        let trades: Vec<Trade> = (0..6)
            .map(|i| Trade {
                id: base.id + i,
                symbol: if i == 2 { other } else { base.symbol },
                ..base
            })
            .collect();
        let tape = Tape::new(trades);
        let ids = |page: Option<Vec<Trade>>| page.unwrap().iter().map(|t| t.id).collect::<Vec<_>>();
        let a = base.id;
        assert_eq!(
            ids(tape.page(base.symbol, Some(a), 10, 6)),
            vec![a, a + 1, a + 3, a + 4, a + 5]
        );
        assert_eq!(
            ids(tape.page(base.symbol, Some(a + 1), 2, 6)),
            vec![a + 1, a + 3]
        );
        assert_eq!(
            ids(tape.page(base.symbol, Some(a), 10, 4)),
            vec![a, a + 1, a + 3]
        );
        assert_eq!(ids(tape.page(base.symbol, None, 2, 6)), vec![a + 4, a + 5]);
        assert_eq!(ids(tape.page(other, Some(0), 10, 2)), Vec::<u64>::new());
        assert!(
            tape.page(Symbol::new("ETHUSDT").unwrap(), None, 1, 6)
                .is_none()
        );
    }
}
