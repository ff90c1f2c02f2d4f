//! Binance data-dump CSV rows (data.binance.vision aggTrades and trades
//! files).
//!
//! Futures aggTrades: `agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker`,
//! times in ms, `true`/`false`, header row only in newer files.
//! Spot adds an 8th column, `is_best_match`, uses `True`/`False`, and has used
//! microsecond times since 2025-01-01.
//! Trades files: futures `id,price,qty,quote_qty,time,is_buyer_maker`, spot
//! the same with `is_best_match` (seven columns, as futures aggTrades; the
//! sixth, a boolean there, tells them apart).

use super::fixed::plain_decimal_in;
use super::{ParseError, checked_time, positive_decimal, trade_id_range};
use crate::{Decimal, Side, Symbol, Trade, TradeKind};

/// Where a dump's fields are: its columns' names and the places of the
/// fields a trade needs.
struct Layout {
    kind: TradeKind,
    names: &'static [&'static str],
    /// The first and last trade ids an aggregate trade covers.
    ids: Option<(usize, usize)>,
    time: usize,
    buyer_is_maker: usize,
}

const AGG_TRADES: Layout = Layout {
    kind: TradeKind::AggTrade,
    names: &[
        "agg_trade_id",
        "price",
        "quantity",
        "first_trade_id",
        "last_trade_id",
        "transact_time",
        "is_buyer_maker",
        "is_best_match",
    ],
    ids: Some((3, 4)),
    time: 5,
    buyer_is_maker: 6,
};

const TRADES: Layout = Layout {
    kind: TradeKind::Trade,
    names: &[
        "id",
        "price",
        "qty",
        "quote_qty",
        "time",
        "is_buyer_maker",
        "is_best_match",
    ],
    ids: None,
    time: 4,
    buyer_is_maker: 5,
};

/// Times above this are microseconds: as ms it would be past the year 5000.
const MICROS_THRESHOLD: i64 = 100_000_000_000_000;

/// Parses one dump CSV line for `symbol` (dump files do not name it): an
/// aggTrades or a trades dump's, futures or spot, told by its columns.
///
/// Returns `Ok(None)` for a header row. A trailing `\r` is ignored.
///
/// ```
/// use pulse_core::{parse_csv_row, Symbol};
/// let sym = Symbol::new("BTCUSDT").unwrap();
/// let t = parse_csv_row("26159457,55.090,0.11,31005036,31005036,1617647781127,true", sym).unwrap().unwrap();
/// assert_eq!((t.id, t.trade_time_ms, t.side), (26159457, 1617647781127, pulse_core::Side::Sell));
/// assert!(parse_csv_row("agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker", sym).unwrap().is_none());
/// ```
pub fn parse_csv_row(line: &str, symbol: Symbol) -> Result<Option<Trade>, ParseError> {
    let line = line.trim_end_matches(['\r', '\n']);
    // One pass into a fixed array of field bounds: no allocation per row,
    // and no search call per short field.
    let mut bounds = [(0, 0); 8];
    let mut count = 0;
    let mut start = 0;
    for (at, &b) in line.as_bytes().iter().enumerate() {
        if b == b',' {
            if let Some(slot) = bounds.get_mut(count) {
                *slot = (start, at);
            }
            count += 1;
            start = at + 1;
        }
    }
    if let Some(slot) = bounds.get_mut(count) {
        *slot = (start, line.len());
    }
    count += 1;
    // Each arm reads with a constant layout, so its places are constants.
    match count {
        6 => row(line, &bounds, &TRADES, symbol),
        7 | 8 => match row(line, &bounds, &AGG_TRADES, symbol) {
            // Spot trades have seven columns too, with a flag where
            // aggTrades have a time: tried only when a row fails.
            Err(e) if count == 7 => {
                let sixth = &line.as_bytes()[bounds[5].0..bounds[5].1];
                match boolean(sixth) {
                    Some(_) => row(line, &bounds, &TRADES, symbol),
                    None => Err(e),
                }
            }
            read => read,
        },
        _ => Err(ParseError::ColumnCount(count)),
    }
}

/// The trade in a row cut at `bounds`, its fields where `layout` says.
#[inline(always)]
fn row(
    line: &str,
    bounds: &[(usize, usize); 8],
    layout: &Layout,
    symbol: Symbol,
) -> Result<Option<Trade>, ParseError> {
    // Fields are cut out of the bytes: `line[s..e]` would check for UTF-8
    // boundaries, which a cut at an ASCII `,` always is.
    let field = |k: usize| &line.as_bytes()[bounds[k].0..bounds[k].1];
    let names = layout.names;
    if field(0) == names[0].as_bytes() {
        return Ok(None);
    }
    let id = int(line, bounds[0], names[0])? as u64;
    let mut time = int(line, bounds[layout.time], names[layout.time])?;
    if time > MICROS_THRESHOLD {
        time /= 1000;
    }
    let time = checked_time(names[layout.time], time)?;
    let price = decimal(line, bounds[1], "price")?;
    let quantity = decimal(line, bounds[2], "quantity")?;
    let maker = field(layout.buyer_is_maker);
    let buyer_is_maker = boolean(maker).ok_or_else(|| {
        bad(
            names[layout.buyer_is_maker],
            "boolean",
            &String::from_utf8_lossy(maker),
        )
    })?;
    let (first_trade_id, last_trade_id) = match layout.ids {
        Some((first, last)) => trade_id_range(
            int(line, bounds[first], names[first])? as u64,
            int(line, bounds[last], names[last])? as u64,
        )?,
        None => (id, id),
    };
    Ok(Some(Trade {
        symbol,
        id,
        kind: layout.kind,
        price,
        quantity,
        side: Side::from_buyer_is_maker(buyer_is_maker),
        trade_time_ms: time,
        event_time_ms: time,
        first_trade_id,
        last_trade_id,
    }))
}

/// The price or quantity in `line[start..end]`: the plain form read word by
/// word, anything else by [`positive_decimal`], which decides.
#[inline(always)]
fn decimal(
    line: &str,
    (start, end): (usize, usize),
    field: &'static str,
) -> Result<Decimal, ParseError> {
    match plain_decimal_in(line.as_bytes(), start, end) {
        Some(d) => Ok(d),
        None => positive_decimal(field, &line.as_bytes()[start..end]),
    }
}

/// Inlined, so the common case stays in registers; the rest is out of line.
#[inline(always)]
fn int(line: &str, (start, end): (usize, usize), column: &'static str) -> Result<i64, ParseError> {
    match plain_digits(&line.as_bytes()[start..end]) {
        Some(value) => Ok(value),
        None => int_slow(&line[start..end], column),
    }
}

/// Up to 18 plain digits cannot overflow: summed directly.
#[inline(always)]
fn plain_digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 18 {
        return None;
    }
    let (mut value, mut digits) = (0i64, true);
    for &c in b {
        let d = c.wrapping_sub(b'0');
        digits &= d <= 9;
        value = value.wrapping_mul(10).wrapping_add(i64::from(d));
    }
    digits.then_some(value)
}

/// Anything else (a sign, more digits, junk): `str::parse` decides.
#[cold]
#[inline(never)]
fn int_slow(s: &str, column: &'static str) -> Result<i64, ParseError> {
    s.parse::<i64>()
        .ok()
        .filter(|v| *v >= 0)
        .ok_or_else(|| bad(column, "non-negative integer", s))
}

fn boolean(s: &[u8]) -> Option<bool> {
    if s.eq_ignore_ascii_case(b"true") {
        Some(true)
    } else if s.eq_ignore_ascii_case(b"false") {
        Some(false)
    } else {
        None
    }
}

fn bad(column: &'static str, expected: &'static str, value: &str) -> ParseError {
    ParseError::CsvValue {
        column,
        expected,
        value: value.chars().take(32).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn btc() -> Symbol {
        Symbol::new("BTCUSDT").unwrap()
    }

    #[test]
    fn futures_and_spot_rows() {
        let futures = parse_csv_row(
            "3470478916,28160.30,0.001,5,6,1680652699877,false\r\n",
            btc(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(futures.id, 3470478916);
        assert_eq!(futures.price.to_string(), "28160.3");
        assert_eq!(futures.side, Side::Buy);
        assert_eq!((futures.first_trade_id, futures.last_trade_id), (5, 6));
        assert_eq!(futures.trade_time_ms, 1680652699877);

        let spot = parse_csv_row(
            "3724513093,61180.01000000,0.00100000,3724513093,3724513093,1736899200123456,True,True",
            btc(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(spot.trade_time_ms, 1736899200123);
        assert_eq!(spot.side, Side::Sell);
        assert_eq!(spot.quantity.to_string(), "0.001");

        let spot_ms = parse_csv_row("1,2.5,1,1,1,1680652699877,False,True", btc())
            .unwrap()
            .unwrap();
        assert_eq!(
            (spot_ms.trade_time_ms, spot_ms.side),
            (1680652699877, Side::Buy)
        );
    }

    #[test]
    fn trades_dump_rows() {
        let futures = "5266583935,61800.30,0.006,370.80180,1723161256322,true";
        let t = parse_csv_row(futures, btc()).unwrap().unwrap();
        assert_eq!(
            (t.id, t.kind, t.first_trade_id, t.last_trade_id),
            (5266583935, TradeKind::Trade, 5266583935, 5266583935)
        );
        assert_eq!((t.trade_time_ms, t.side), (1723161256322, Side::Sell));
        assert_eq!(
            (t.price.to_string(), t.quantity.to_string()),
            ("61800.3".into(), "0.006".into())
        );

        // Spot: seven columns, as futures aggTrades, but the sixth is a flag.
        let spot = "51175358,17.80180000,5.69000000,101.29224200,1736899200123456,False,True";
        let t = parse_csv_row(spot, btc()).unwrap().unwrap();
        assert_eq!(
            (t.id, t.kind, t.trade_time_ms, t.side),
            (51175358, TradeKind::Trade, 1736899200123, Side::Buy)
        );

        let header = "id,price,qty,quote_qty,time,is_buyer_maker";
        assert!(parse_csv_row(header, btc()).unwrap().is_none());
        let err = parse_csv_row("1,2,3,4,5,maybe", btc()).unwrap_err();
        assert!(
            matches!(
                err,
                ParseError::CsvValue {
                    column: "is_buyer_maker",
                    ..
                }
            ),
            "{err:?}"
        );
        let err = parse_csv_row("1,2,3,4,-5,true", btc()).unwrap_err();
        assert!(
            matches!(err, ParseError::CsvValue { column: "time", .. }),
            "{err:?}"
        );
    }

    #[test]
    fn header_rows_are_skipped() {
        let futures =
            "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker";
        assert!(parse_csv_row(futures, btc()).unwrap().is_none());
        assert!(
            parse_csv_row(&format!("{futures},is_best_match"), btc())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn malformed_rows_are_typed_errors() {
        let cases = [
            ("", "ColumnCount(1)"),
            ("1,2,3", "ColumnCount(3)"),
            ("x,1,1,1,1,1,true", "agg_trade_id"),
            ("1,1,1,1,1,1,yes", "is_buyer_maker"),
            ("1,1,1,1,1,-5,true", "transact_time"),
            ("1,abc,1,1,1,1,true", "Decimal"),
            ("1,1,-1,1,1,1,true", "NotPositive(quantity)"),
            ("1,1,1,3,2,1,true", "TradeIdRange { first: 3, last: 2 }"),
        ];
        for (row, expected) in cases {
            let got = match parse_csv_row(row, btc()).expect_err(row) {
                ParseError::ColumnCount(n) => format!("ColumnCount({n})"),
                ParseError::CsvValue { column, .. } => column.to_string(),
                ParseError::Decimal { .. } => "Decimal".into(),
                ParseError::NotPositive(f) => format!("NotPositive({f})"),
                other => format!("{other:?}"),
            };
            assert_eq!(got, expected, "{row}");
        }
    }

    proptest::proptest! {
        /// The one-pass splitter, digit loop and word-wise decimals agree
        /// with `split(',')`, `str::parse` and `positive_decimal` on rows of
        /// numbers, signs, junk and odd counts.
        #[test]
        fn fast_paths_agree_with_the_plain_ones(
            fields in proptest::collection::vec("[-+]?[0-9]{0,20}|[0-9.]{1,12}|[0-9]{1,11}\\.[0-9]{0,10}|0+|true|False|x|", 0..10),
        ) {
            let row = fields.join(",");
            let plain: Vec<&str> = row.split(',').collect();
            let got = parse_csv_row(&row, btc());
            if !(6..=8).contains(&plain.len()) {
                proptest::prop_assert!(matches!(got, Err(ParseError::ColumnCount(n)) if n == plain.len()));
            }
            for (col, text) in plain.iter().enumerate().take(3).skip(1) {
                let end = row.len().min(plain[..=col].iter().map(|f| f.len() + 1).sum::<usize>() - 1);
                let start = end - text.len();
                let fast = decimal(&row, (start, end), "price").map_err(|e| e.to_string());
                let slow = positive_decimal("price", text.as_bytes()).map_err(|e| e.to_string());
                proptest::prop_assert_eq!(fast, slow, "{:?}", text);
            }
            for (col, text) in plain.iter().enumerate().take(6).filter(|(c, _)| [0, 3, 4, 5].contains(c)) {
                let expected = text.parse::<i64>().ok().filter(|v| *v >= 0);
                proptest::prop_assert_eq!(int(text, (0, text.len()), "id").ok(), expected, "{:?} in {}", text, col);
            }
        }
    }
}
