//! Parsers for Binance trade data: WebSocket JSON frames, REST aggTrades
//! replies, data-dump CSV rows, the exchangeInfo symbol list and the
//! server time.
//!
//! Both are pure functions from bytes to [`Trade`](crate::Trade) and never
//! panic: anything unexpected comes back as a [`ParseError`].

mod csv;
mod exchange_info;
mod fixed;
// The fuzz targets' properties; the fast path's tests use them too.
#[cfg(any(test, feature = "fuzzing"))]
#[cfg_attr(not(feature = "fuzzing"), allow(dead_code))]
pub mod fuzz_check;
mod json;
mod reason;
#[cfg(test)]
mod recorded;
pub mod render;
mod rest;
mod scan;
mod server_time;
mod swar;

pub use csv::parse_csv_row;
pub use exchange_info::{TradingPerpetuals, parse_exchange_info};
pub use json::{Frame, parse_frame};
pub use rest::{AggTradesPage, RejectedAggTrade, parse_agg_trades};
pub use server_time::parse_server_time;

use crate::{DecimalError, SymbolError};

/// Why a frame or row was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Not valid JSON, or a field had the wrong JSON type.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A field the event type requires was absent.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// An event type pulse does not turn into trades (e.g. `depthUpdate`).
    #[error("unsupported event type {0:?}")]
    UnsupportedEvent(String),
    /// Neither a trade nor a subscription reply.
    #[error("frame is neither a trade event nor a subscription reply")]
    UnknownFrame,
    /// Binance answered a request with an error object.
    #[error("binance error {code}: {msg}")]
    Binance {
        /// Binance's error code.
        code: i64,
        /// Binance's message.
        msg: String,
    },
    /// A price or quantity string was not an exact decimal.
    #[error("field `{field}`: {source}")]
    Decimal {
        /// Which field.
        field: &'static str,
        /// What was wrong with it.
        source: DecimalError,
    },
    /// Price or quantity was zero or negative.
    #[error("field `{0}` must be positive")]
    NotPositive(&'static str),
    /// An aggTrade's first trade id was above its last. Binance never
    /// sends one, and the Kafka message rejects one, so it stops here.
    #[error("first trade id {first} > last trade id {last}")]
    TradeIdRange {
        /// The first trade id, `f`.
        first: u64,
        /// The last trade id, `l`.
        last: u64,
    },
    /// The symbol was empty, too long or had odd characters.
    #[error("symbol: {0}")]
    Symbol(#[from] SymbolError),
    /// A CSV row had the wrong number of columns.
    #[error("expected 6, 7 or 8 CSV columns, got {0}")]
    ColumnCount(usize),
    /// A CSV column could not be read as its type.
    #[error("CSV column `{column}` is not a valid {expected}: {value:?}")]
    CsvValue {
        /// Column name, as in Binance's header.
        column: &'static str,
        /// What type was expected.
        expected: &'static str,
        /// The text found, cut to 32 bytes.
        value: String,
    },
    /// A trade or event time outside `0..=MAX_TRADE_TIME_MS`.
    #[error("field `{field}`: {value} ms is not a time from 1970 to 2286")]
    TimeRange {
        /// Which field.
        field: &'static str,
        /// The time found, in ms.
        value: i64,
    },
}

/// The latest trade or event time the parsers take: the last of 13 digits
/// (2286-11-20). Binance's times have had 13 digits since 2001; a longer one
/// is corrupt, and a single such trade would move its symbol's watermark so
/// far ahead that every later trade would be late.
pub const MAX_TRADE_TIME_MS: i64 = 9_999_999_999_999;

/// `ms` if it is a time the parsers take.
fn checked_time(field: &'static str, ms: i64) -> Result<i64, ParseError> {
    if (0..=MAX_TRADE_TIME_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(ParseError::TimeRange { field, value: ms })
    }
}

/// Checks an aggTrade's trade-id range `f..=l` is not reversed.
fn trade_id_range(first: u64, last: u64) -> Result<(u64, u64), ParseError> {
    if first > last {
        return Err(ParseError::TradeIdRange { first, last });
    }
    Ok((first, last))
}

/// Parses a price or quantity and checks it is positive.
fn positive_decimal(field: &'static str, s: &[u8]) -> Result<crate::Decimal, ParseError> {
    let d =
        crate::Decimal::parse_bytes(s).map_err(|source| ParseError::Decimal { field, source })?;
    if d.raw() <= 0 {
        return Err(ParseError::NotPositive(field));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use crate::{Frame, Symbol, parse_agg_trades, parse_csv_row, parse_frame};

    /// A time beyond 13 digits, or before 1970, is corrupt in every layout.
    #[test]
    fn times_outside_1970_to_2286_are_rejected() {
        let frame = |t: &str| {
            format!(
                r#"{{"stream":"btcusdt@trade","data":{{"e":"trade","E":1723161256322,"T":{t},"s":"BTCUSDT","t":5,"p":"61800.30","q":"0.006","X":"MARKET","m":false}}}}"#
            )
        };
        assert!(matches!(
            parse_frame(frame("9999999999999").as_bytes()),
            Ok(Frame::Trade(_))
        ));
        for t in [
            "10000000000000",
            "17231612563220",
            "9223372036854775807",
            "-5",
        ] {
            let e = parse_frame(frame(t).as_bytes()).unwrap_err();
            assert_eq!(e.reason(), "time_range", "{t}: {e}");
        }
        let e = parse_frame(
            frame("1")
                .replace("1723161256322", "17231612563220")
                .as_bytes(),
        );
        assert_eq!(
            e.unwrap_err().to_string(),
            "field `E`: 17231612563220 ms is not a time from 1970 to 2286"
        );

        let btc = Symbol::new("BTCUSDT").unwrap();
        // Dump CSV: microseconds are divided first, so only the ms range counts.
        assert!(parse_csv_row("1,2,3,4,4,1736899200123456,true", btc).is_ok());
        let e = parse_csv_row("1,2,3,4,4,17368992001234,true", btc).unwrap_err();
        assert_eq!(e.reason(), "time_range");
        let page = parse_agg_trades(
            br#"[{"a":1,"p":"1","q":"1","f":1,"l":1,"T":99999999999999,"m":true}]"#,
            btc,
        )
        .unwrap();
        assert_eq!(page.rejected.len(), 1);
        assert_eq!(page.rejected[0].error.reason(), "time_range");
    }
}
