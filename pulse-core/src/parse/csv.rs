//! Binance data-dump CSV rows (data.binance.vision aggTrades files).
//!
//! Futures: `agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker`,
//! times in ms, `true`/`false`, header row only in newer files.
//! Spot adds an 8th column, `is_best_match`, uses `True`/`False`, and has used
//! microsecond times since 2025-01-01.

use super::{ParseError, checked_time, positive_decimal, trade_id_range};
use crate::{Side, Symbol, Trade, TradeKind};

const COLUMNS: [&str; 8] = [
    "agg_trade_id",
    "price",
    "quantity",
    "first_trade_id",
    "last_trade_id",
    "transact_time",
    "is_buyer_maker",
    "is_best_match",
];

/// Times above this are microseconds: as ms it would be past the year 5000.
const MICROS_THRESHOLD: i64 = 100_000_000_000_000;

/// Parses one dump CSV line for `symbol` (dump files do not name it).
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
    // One pass into a fixed array: no allocation per row, and no search
    // call per short field.
    let mut fields = [""; 8];
    let mut count = 0;
    let mut start = 0;
    for (at, &b) in line.as_bytes().iter().enumerate() {
        if b == b',' {
            if let Some(slot) = fields.get_mut(count) {
                *slot = &line[start..at];
            }
            count += 1;
            start = at + 1;
        }
    }
    if let Some(slot) = fields.get_mut(count) {
        *slot = &line[start..];
    }
    count += 1;
    if count != 7 && count != 8 {
        return Err(ParseError::ColumnCount(count));
    }
    if fields[0] == COLUMNS[0] {
        return Ok(None);
    }
    let id = int(fields[0], 0)?;
    let mut time = int(fields[5], 5)?;
    if time > MICROS_THRESHOLD {
        time /= 1000;
    }
    let time = checked_time(COLUMNS[5], time)?;
    let price = positive_decimal("price", fields[1].as_bytes())?;
    let quantity = positive_decimal("quantity", fields[2].as_bytes())?;
    let side = Side::from_buyer_is_maker(boolean(fields[6], 6)?);
    let (first_trade_id, last_trade_id) =
        trade_id_range(int(fields[3], 3)? as u64, int(fields[4], 4)? as u64)?;
    Ok(Some(Trade {
        symbol,
        id: id as u64,
        kind: TradeKind::AggTrade,
        price,
        quantity,
        side,
        trade_time_ms: time,
        event_time_ms: time,
        first_trade_id,
        last_trade_id,
    }))
}

fn int(s: &str, col: usize) -> Result<i64, ParseError> {
    // Up to 18 plain digits cannot overflow: summed directly. Anything else
    // (a sign, more digits, junk) takes `str::parse`, which decides.
    let b = s.as_bytes();
    if !b.is_empty() && b.len() <= 18 {
        let (mut value, mut digits) = (0i64, true);
        for &c in b {
            let d = c.wrapping_sub(b'0');
            digits &= d <= 9;
            value = value.wrapping_mul(10).wrapping_add(i64::from(d));
        }
        if digits {
            return Ok(value);
        }
    }
    s.parse::<i64>()
        .ok()
        .filter(|v| *v >= 0)
        .ok_or_else(|| bad(col, "non-negative integer", s))
}

fn boolean(s: &str, col: usize) -> Result<bool, ParseError> {
    if s.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if s.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(bad(col, "boolean", s))
    }
}

fn bad(col: usize, expected: &'static str, value: &str) -> ParseError {
    ParseError::CsvValue {
        column: COLUMNS[col],
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
        /// The one-pass splitter and digit loop agree with `split(',')` and
        /// `str::parse` on rows of numbers, signs, junk and odd counts.
        #[test]
        fn fast_paths_agree_with_the_plain_ones(
            fields in proptest::collection::vec("[-+]?[0-9]{0,20}|[0-9.]{1,12}|true|False|x|", 0..10),
        ) {
            let row = fields.join(",");
            let plain: Vec<&str> = row.split(',').collect();
            let got = parse_csv_row(&row, btc());
            if plain.len() != 7 && plain.len() != 8 {
                proptest::prop_assert!(matches!(got, Err(ParseError::ColumnCount(n)) if n == plain.len()));
            }
            for (col, text) in plain.iter().enumerate().take(6).filter(|(c, _)| [0, 3, 4, 5].contains(c)) {
                let expected = text.parse::<i64>().ok().filter(|v| *v >= 0);
                proptest::prop_assert_eq!(int(text, col).ok(), expected, "{:?}", text);
            }
        }
    }
}
