//! The properties the fuzz targets in `fuzz/` assert, one function per
//! target, shared with the tests that replay the committed corpora on
//! stable Rust (feature `fuzzing`; not part of the API).
//!
//! Each function takes any bytes, returns nothing and panics when a
//! property fails: the parsers themselves must never panic, so any panic is
//! a bug.

use std::path::Path;

use serde_json::value::RawValue;

use super::fixed::fixed_trade;
use super::json::{parse_frame_general, parse_frame_serde};
use super::render;
use crate::{
    Decimal, Frame, Symbol, Trade, TradeKind, parse_agg_trades, parse_csv_row, parse_exchange_info,
    parse_frame,
};

/// The symbol the REST and CSV parsers are given (their inputs name none).
fn btc() -> Symbol {
    Symbol::new("BTCUSDT").expect("valid symbol")
}

/// `fuzz_target parse_frame`: a trade [`parse_frame`] returns is sane.
pub fn frame(bytes: &[u8]) {
    if let Ok(Frame::Trade(t)) = parse_frame(bytes) {
        frame_trade_is_sane(&t);
    }
}

/// `fuzz_target ws_paths`: the three paths of [`parse_frame`] agree, the
/// combined-stream wrapper changes nothing, and a trade written back in
/// Binance's layout reads back as itself, through the fast path where the
/// template can hold its values.
pub fn frame_paths(bytes: &[u8]) {
    paths_agree(bytes);
    let Ok(Frame::Trade(t)) = parse_frame(bytes) else {
        return;
    };
    frame_trade_is_sane(&t);
    // A bare payload (one that holds no `data` of its own) reads the same
    // inside the wrapper, as Binance and as a pretty-printer would wrap it.
    if !has_data_key(bytes) {
        let tight = [&br#"{"stream":"x@aggTrade","data":"#[..], bytes, b"}"].concat();
        let loose = [&b" {\"stream\" : \"x\",\n\"data\" :\t"[..], bytes, b" } "].concat();
        assert_eq!(
            fixed_trade(&tight),
            fixed_trade(bytes),
            "fast path, wrapped"
        );
        for wrapped in [tight, loose] {
            paths_agree(&wrapped);
            assert_eq!(parse_frame(&wrapped).ok(), Some(Frame::Trade(t)), "wrapped");
        }
    }
    let written = render::usdm_payload(&t);
    assert_eq!(
        parse_frame(written.as_bytes()).ok(),
        Some(Frame::Trade(t)),
        "{written}"
    );
    if fits_template(&t) {
        assert_eq!(fixed_trade(written.as_bytes()), Some(t), "{written}");
    }
}

/// The fast path only answers what the general path answers, and the whole
/// parser agrees with serde_json, errors included.
pub(super) fn paths_agree(bytes: &[u8]) {
    let shown = || String::from_utf8_lossy(bytes).into_owned();
    if let Some(t) = fixed_trade(bytes) {
        match parse_frame_general(bytes) {
            Ok(Frame::Trade(g)) => assert_eq!(t, g, "{}", shown()),
            other => panic!("fast path took {} as {t:?}, general: {other:?}", shown()),
        }
    }
    match (parse_frame(bytes), parse_frame_serde(bytes)) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{}", shown()),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{}", shown()),
        (a, b) => panic!("paths disagree on {}: {a:?} vs serde {b:?}", shown()),
    }
}

/// `fuzz_target parse_csv_row`: a row's trade is sane and written back as a
/// row reads back as itself.
pub fn csv_row(bytes: &[u8]) {
    let Ok(line) = std::str::from_utf8(bytes) else {
        return;
    };
    let Ok(Some(t)) = parse_csv_row(line, btc()) else {
        return;
    };
    trade_is_sane(&t);
    assert!(t.first_trade_id <= t.last_trade_id, "{t:?}");
    // Larger times were read as microseconds; written back as ms they
    // would be divided again.
    if t.trade_time_ms > 100_000_000_000_000 {
        return;
    }
    let row = match t.kind {
        TradeKind::AggTrade => render::dump_csv_row(&t),
        TradeKind::Trade => render::dump_trades_csv_row(&t),
    };
    assert_eq!(parse_csv_row(&row, btc()).ok(), Some(Some(t)), "{row}");
}

/// `fuzz_target rest_reply`: the two REST replies pulse reads.
///
/// aggTrades: every entry is read or rejected exactly once, in order, and
/// read trades written back as a reply read back as themselves.
/// exchangeInfo: the symbols are sorted, unique and valid; the unsupported
/// names are ones [`Symbol`] rejects.
pub fn rest_reply(bytes: &[u8]) {
    if let Ok(page) = parse_agg_trades(bytes, btc()) {
        let entries: Vec<&RawValue> =
            serde_json::from_slice(bytes).expect("a page is a JSON array");
        assert_eq!(page.len(), entries.len());
        let rejected: Vec<usize> = page.rejected.iter().map(|r| r.index).collect();
        assert!(rejected.windows(2).all(|w| w[0] < w[1]), "{rejected:?}");
        assert!(rejected.iter().all(|i| *i < entries.len()));
        for t in &page.trades {
            trade_is_sane(t);
            assert!(t.first_trade_id <= t.last_trade_id, "{t:?}");
            assert_eq!((t.kind, t.symbol), (TradeKind::AggTrade, btc()));
            assert_eq!(t.event_time_ms, t.trade_time_ms);
            assert!(page.highest_id() >= Some(t.id));
        }
        let written: Vec<String> = page.trades.iter().map(render::rest_agg_trade).collect();
        let again = parse_agg_trades(format!("[{}]", written.join(",")).as_bytes(), btc())
            .expect("a written page parses");
        assert_eq!(again.trades, page.trades);
        assert!(again.rejected.is_empty());
    }
    if let Ok(found) = parse_exchange_info(bytes) {
        let names: Vec<&str> = found.symbols.iter().map(Symbol::as_str).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
        for s in &found.symbols {
            assert_eq!(Symbol::new(s.as_str()).ok(), Some(*s));
        }
        assert!(found.unsupported.iter().all(|s| Symbol::new(s).is_err()));
    }
}

/// What every parser and the Kafka decoder promise of a trade: positive,
/// exact decimals and a valid symbol.
pub fn trade_is_sane(t: &Trade) {
    assert!(t.price.raw() > 0 && t.quantity.raw() > 0, "{t:?}");
    // The decimal text is exact: it parses back to the same value.
    for d in [t.price, t.quantity] {
        assert_eq!(d.to_string().parse::<Decimal>().ok(), Some(d), "{t:?}");
    }
    assert_eq!(Symbol::new(t.symbol.as_str()).ok(), Some(t.symbol));
}

/// What the WebSocket parser adds: a `@trade` is its own id range, an
/// aggTrade's range is not reversed.
fn frame_trade_is_sane(t: &Trade) {
    trade_is_sane(t);
    let times = 0..=crate::MAX_TRADE_TIME_MS;
    assert!(
        times.contains(&t.trade_time_ms) && times.contains(&t.event_time_ms),
        "{t:?}"
    );
    match t.kind {
        TradeKind::Trade => assert_eq!((t.first_trade_id, t.last_trade_id), (t.id, t.id)),
        TradeKind::AggTrade => assert!(t.first_trade_id <= t.last_trade_id, "{t:?}"),
    }
}

/// Whether the fast path's templates hold `t`'s values: integers of at most
/// 18 digits, decimals with at most 10 integer digits.
fn fits_template(t: &Trade) -> bool {
    const LIMIT: i64 = 1_000_000_000_000_000_000;
    let ids = [t.id, t.first_trade_id, t.last_trade_id];
    let times = [t.event_time_ms, t.trade_time_ms];
    ids.iter().all(|i| *i < LIMIT as u64)
        && times.iter().all(|t| (0..LIMIT).contains(t))
        && t.price.raw() < LIMIT
        && t.quantity.raw() < LIMIT
}

/// Whether `bytes` is an object with a `data` key, however it is spelled.
fn has_data_key(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes)
        .map_or(true, |m| m.contains_key("data"))
}

/// Runs `check` on every file in `dir` and returns how many there were.
/// Panics, naming the file, when a check fails, and when `dir` is missing
/// or empty: a corpus that is gone must not pass as checked.
pub fn replay_corpus(dir: &Path, check: fn(&[u8])) -> usize {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("corpus {} is missing: {e}", dir.display()));
    let mut files: Vec<_> = entries.map(|e| e.expect("readable entry").path()).collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    for file in &files {
        let bytes = std::fs::read(file).expect("readable corpus file");
        let run = std::panic::catch_unwind(|| check(&bytes));
        if let Err(cause) = run {
            let cause = cause
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| cause.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            panic!("corpus file {} fails: {cause}", file.display());
        }
    }
    files.len()
}
