//! The normalised trade, whatever venue format it came from.

use crate::{Decimal, Symbol};

/// Which side the taker was on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Side {
    /// The taker bought (Binance `m == false`).
    Buy,
    /// The taker sold: the buyer was the maker (Binance `m == true`).
    Sell,
}

impl Side {
    /// Binance's rule: `m` (buyer is maker) means the taker sold.
    pub fn from_buyer_is_maker(m: bool) -> Self {
        if m { Side::Sell } else { Side::Buy }
    }

    /// `BUY` or `SELL`, as in the Kafka message.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }
}

/// Which Binance id space [`Trade::id`] belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TradeKind {
    /// An aggregate trade; `id` is the aggTrade id `a`.
    AggTrade,
    /// A single trade; `id` is the trade id `t`.
    Trade,
}

/// One trade, normalised. Times are milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Trade {
    /// Trading pair, upper case.
    pub symbol: Symbol,
    /// Sequence id: aggTrade id `a` or trade id `t` (see [`Trade::kind`]).
    pub id: u64,
    /// Which id space `id` is in.
    pub kind: TradeKind,
    /// Price, exact.
    pub price: Decimal,
    /// Quantity, exact.
    pub quantity: Decimal,
    /// Taker side.
    pub side: Side,
    /// Trade time `T`: the event time windows are built on.
    pub trade_time_ms: i64,
    /// Event time `E`: when Binance sent it (equal to `T` for dump rows).
    pub event_time_ms: i64,
    /// First underlying trade id (`f`), or `id` for single trades.
    pub first_trade_id: u64,
    /// Last underlying trade id (`l`), or `id` for single trades.
    pub last_trade_id: u64,
}
