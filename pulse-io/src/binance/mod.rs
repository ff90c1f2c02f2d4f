//! The live Binance USD-M source (feature `binance`).
//!
//! [`BinanceSource`] follows `<symbol>@aggTrade` streams on
//! `{ws_base}/market/stream?streams=…` and hands every trade over exactly
//! once, in id order per symbol:
//! - **Shards**: at most `streams_per_connection` (200) streams per
//!   connection, named in the URL, so no SUBSCRIBE traffic is needed.
//! - **Liveness**: pings are answered; a connection silent for
//!   `stall_timeout` (after a ping of our own) is dead, and one that
//!   answers pings but carries no data for `data_timeout` is replaced
//!   (`silent_connections`); reconnects back off exponentially with
//!   jitter and resubscribe everything; connections are replaced before
//!   `max_connection_age` (Binance cuts at 24 h) with an overlap, so
//!   nothing is missed.
//! - **Completeness**: ids are ordered per symbol by pulse-core's
//!   [`Lanes`](pulse_core::Lanes). After a gap (a reconnect, a stall,
//!   a queue drop) the missing ids are fetched from
//!   `{rest_base}/fapi/v1/aggTrades`, page by page, honouring 429/418 and
//!   `Retry-After`; trades behind a gap wait until it is filled or given up.
//!   Backfilled trades carry `event_time_ms == trade_time_ms` (REST has no
//!   event time). A symbol with no trade before a reconnect has no id to
//!   show a gap from: it is looked up by trade time, from a little before
//!   the last trade its connection delivered, or, if that connection
//!   delivered none, before Binance's time when it was lost (read from
//!   `{rest_base}/fapi/v1/time` while it is down when no trade has told
//!   it yet, else from the first live trade's time less the time since).
//! - **Backpressure**: a drop-oldest queue (`queue_capacity`, 10,000)
//!   sits between the socket readers and
//!   [`next_trades`](crate::TradeSource::next_trades); dropped trades are
//!   counted and backfilled.
//! - **`ALL`**: with [`BinanceConfig::all_perpetuals`], the trading
//!   perpetuals are listed again every `max_connection_age`; when Binance
//!   lists or delists one, new connections open for the new list and the
//!   old ones close once they run, so kept symbols miss nothing.
//!
//! Counted in [`Metrics`](crate::Metrics): `gaps`, `trades_backfilled`,
//! `trades_unfilled`, `duplicates` (dropped here, e.g. during an overlap),
//! `reconnects`, `silent_connections`, `connections`, `queue_dropped`,
//! `frames_rejected`, `symbols_followed`, `symbol_list_failures`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), pulse_io::SourceError> {
//! use pulse_core::Symbol;
//! use pulse_io::{BinanceConfig, BinanceSource, Metrics, TradeSource};
//! let config = BinanceConfig::for_symbols([Symbol::new("BTCUSDT").unwrap()]);
//! let mut source = BinanceSource::connect(config, Metrics::new()).await?;
//! let mut trades = Vec::new();
//! source.next_trades(&mut trades).await?;
//! # Ok(()) }
//! ```
//!
//! ## Layout
//! - `config`: [`BinanceConfig`], [`BackfillConfig`].
//! - `connect`: TCP + TLS + WebSocket handshake.
//! - `reader`: a connection's reader task (watchdog, reconnect, rotation),
//!   one per shard of pulse-core's [`plan_shards`](pulse_core::plan_shards).
//! - `readers`: the reader tasks running, each stoppable on its own.
//! - `inbox`: the drop-oldest queue.
//! - `rest`, `backfill`: the REST client (replies parsed by pulse-core's
//!   [`parse_agg_trades`](pulse_core::parse_agg_trades)) and paging.
//! - `binance_clock`: Binance's time at an instant, from a reading of it.
//! - `universe`: [`AllPerpetuals`], the symbols of `--symbols ALL`, read
//!   from `{rest_base}/fapi/v1/exchangeInfo` (parsed by pulse-core's
//!   [`parse_exchange_info`](pulse_core::parse_exchange_info)).
//! - `relist`: that list read again every `max_connection_age`, and the
//!   switch to a new shard plan when it changed.
//! - `source`: [`BinanceSource`].

mod arrivals;
mod backfill;
mod binance_clock;
mod config;
mod connect;
mod inbox;
mod reader;
mod readers;
mod relist;
mod rest;
mod source;
mod universe;

pub use config::{BackfillConfig, BinanceConfig, DEFAULT_REST_BASE, DEFAULT_WS_BASE};
pub use source::BinanceSource;
pub use universe::{AllPerpetuals, resolve_all_perpetuals};
