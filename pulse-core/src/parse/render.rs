//! Trades written back in the layouts the parsers read, for fakes, tests and
//! benchmarks that need Binance's own bytes. Each reads back as the trade it
//! was made from.

use crate::{DecimalSum, SCALE, Side, Trade, TradeKind};

/// `t` as a row of a USD-M aggTrades dump file, the layout
/// [`parse_csv_row`](crate::parse_csv_row) reads.
///
/// ```
/// use pulse_core::{parse_csv_row, render, Symbol};
/// let sym = Symbol::new("NEOUSDT").unwrap();
/// let row = "26159457,55.09,0.11,31005036,31005036,1617647781127,true";
/// let t = parse_csv_row(row, sym).unwrap().unwrap();
/// assert_eq!(render::dump_csv_row(&t), row);
/// ```
pub fn dump_csv_row(t: &Trade) -> String {
    format!(
        "{},{},{},{},{},{},{}",
        t.id,
        t.price,
        t.quantity,
        t.first_trade_id,
        t.last_trade_id,
        t.trade_time_ms,
        buyer_is_maker(t),
    )
}

/// `t` as a row of a USD-M trades dump file, which
/// [`parse_csv_row`](crate::parse_csv_row) reads too. Its quote quantity,
/// which pulse does not read, is p·q cut to eight places.
///
/// ```
/// use pulse_core::{parse_csv_row, render, Symbol};
/// let sym = Symbol::new("BTCUSDT").unwrap();
/// let row = "5266583935,61800.3,0.006,370.8018,1723161256322,true";
/// let t = parse_csv_row(row, sym).unwrap().unwrap();
/// assert_eq!(render::dump_trades_csv_row(&t), row);
/// ```
pub fn dump_trades_csv_row(t: &Trade) -> String {
    let quote = t.price.raw() as i128 * t.quantity.raw() as i128 / SCALE as i128;
    format!(
        "{},{},{},{},{},{}",
        t.id,
        t.price,
        t.quantity,
        DecimalSum::from_raw(quote),
        t.trade_time_ms,
        buyer_is_maker(t),
    )
}

/// `t` as one element of a REST `/fapi/v1/aggTrades` reply, the layout
/// [`parse_agg_trades`](crate::parse_agg_trades) reads.
pub fn rest_agg_trade(t: &Trade) -> String {
    format!(
        r#"{{"a":{},"p":"{}","q":"{}","f":{},"l":{},"T":{},"m":{}}}"#,
        t.id,
        t.price,
        t.quantity,
        t.first_trade_id,
        t.last_trade_id,
        t.trade_time_ms,
        buyer_is_maker(t),
    )
}

/// `t` as the payload of a USD-M stream event, keys in Binance's order: an
/// `@trade` event for a [`TradeKind::Trade`], an `@aggTrade` one otherwise.
/// [`parse_frame`](crate::parse_frame) reads it bare or in the
/// combined-stream wrapper.
pub fn usdm_payload(t: &Trade) -> String {
    let m = buyer_is_maker(t);
    match t.kind {
        TradeKind::Trade => format!(
            r#"{{"e":"trade","E":{},"T":{},"s":"{}","t":{},"p":"{}","q":"{}","X":"MARKET","m":{m}}}"#,
            t.event_time_ms, t.trade_time_ms, t.symbol, t.id, t.price, t.quantity
        ),
        TradeKind::AggTrade => format!(
            r#"{{"e":"aggTrade","E":{},"a":{},"s":"{}","p":"{}","q":"{}","f":{},"l":{},"T":{},"m":{m}}}"#,
            t.event_time_ms,
            t.id,
            t.symbol,
            t.price,
            t.quantity,
            t.first_trade_id,
            t.last_trade_id,
            t.trade_time_ms
        ),
    }
}

/// Binance's `m`: the buyer was the maker, so the taker sold.
fn buyer_is_maker(t: &Trade) -> bool {
    t.side == Side::Sell
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Frame, Symbol, parse_agg_trades, parse_csv_row, parse_frame};

    fn trades() -> [Trade; 2] {
        let agg = r#"{"e":"aggTrade","E":1617647781282,"a":26159457,"s":"NEOUSDT","p":"55.09","q":"0.11","f":31005036,"l":31005037,"T":1617647781127,"m":true}"#;
        let trade = r#"{"e":"trade","E":1680652699882,"T":1680652699877,"s":"BTCUSDT","t":3470478916,"p":"28160.3","q":"0.001","X":"MARKET","m":false}"#;
        [agg, trade].map(|f| match parse_frame(f.as_bytes()) {
            Ok(Frame::Trade(t)) => t,
            other => panic!("{other:?}"),
        })
    }

    #[test]
    fn payloads_are_binance_bytes_and_read_back() {
        let [agg, trade] = trades();
        assert_eq!(
            usdm_payload(&agg),
            r#"{"e":"aggTrade","E":1617647781282,"a":26159457,"s":"NEOUSDT","p":"55.09","q":"0.11","f":31005036,"l":31005037,"T":1617647781127,"m":true}"#
        );
        for t in [agg, trade] {
            let frame = usdm_payload(&t);
            assert!(matches!(parse_frame(frame.as_bytes()), Ok(Frame::Trade(r)) if r == t));
        }
    }

    #[test]
    fn rows_and_rest_entries_read_back() {
        let [agg, _] = trades();
        let symbol = Symbol::new("NEOUSDT").unwrap();
        let row = dump_csv_row(&agg);
        assert_eq!(
            row,
            "26159457,55.09,0.11,31005036,31005037,1617647781127,true"
        );
        let from_row = parse_csv_row(&row, symbol).unwrap().unwrap();
        assert_eq!(from_row.price, agg.price);
        assert_eq!(from_row.first_trade_id, agg.first_trade_id);

        let entry = rest_agg_trade(&agg);
        assert_eq!(
            entry,
            r#"{"a":26159457,"p":"55.09","q":"0.11","f":31005036,"l":31005037,"T":1617647781127,"m":true}"#
        );
        let page = parse_agg_trades(format!("[{entry}]").as_bytes(), symbol).unwrap();
        assert_eq!(page.trades.len(), 1);
        assert_eq!(page.trades[0].last_trade_id, agg.last_trade_id);
        assert_eq!(page.trades[0].side, agg.side);
    }
}
