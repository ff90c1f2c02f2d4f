//! # pulse-core
//!
//! A sans-IO engine that turns Binance trade messages into exact 1-second
//! window metrics: VWAP, net delta, buy pressure, volume, trade count, average
//! price, OHLC and a rule-based signal.
//!
//! It does no I/O and never reads a clock: time comes in as arguments, so the
//! same input gives the same output, bit for bit. Two clocks appear, never
//! compared: trade times (Binance's, ms since the Unix epoch, inside each
//! [`Trade`]) and, live, the caller's monotonic clock in ms (any origin),
//! which only measures how long a symbol has been quiet.
//! Prices and quantities are exact fixed-point [`Decimal`]s; `f64` appears only
//! in the output [`Window`].
//!
//! ## Layout
//! - [`Decimal`], [`Symbol`], [`Trade`], [`Side`]: the data model.
//! - [`parse_frame`], [`parse_agg_trades`], [`parse_csv_row`],
//!   [`parse_exchange_info`], [`parse_server_time`]: Binance WebSocket JSON,
//!   REST backfill replies, dump CSV, the list of trading perpetuals and the
//!   server time; [`render`] writes trades back in those layouts.
//! - [`Sequence`]: one symbol's id continuity, gaps and duplicates.
//! - [`plan_shards`]: which symbols go on which WebSocket connection.
//! - [`Lanes`]: a live stream's per-symbol id order, holding trades behind a
//!   gap until a [`BackfillRequest`] fills it or gives it up.
//! - [`Aggregator`]: per-symbol tumbling windows with a watermark, keeping
//!   emitted windows a while so late trades can correct them.
//! - [`WindowStats`], [`Window`], [`Signal`]: the metrics.
//! - [`DropOldest`]: the bounded drop-oldest queue.
//! - [`short_list`]: a few symbol names and how many more, for log lines.
//!
//! ## Driving the engine
//! The [`Aggregator`] is a state machine you feed and drain (the shape of
//! `quinn-proto`, QUIC's sans-IO core):
//! - a recording (a file, a topic): [`Aggregator::handle_trade`] for every
//!   trade; the trade times are the only clock;
//! - live: [`Aggregator::handle_trade_at`] with the arrival time on your
//!   monotonic clock, so that a quiet symbol's last window can close;
//!   [`Aggregator::poll_timeout`] says when to call
//!   [`Aggregator::advance`] with that clock's time (with `handle_trade`
//!   alone it stays `None` and `advance` closes nothing);
//! - [`Aggregator::poll`] until `None` after every call, for closed windows,
//!   late trades, gaps and trades whose wrong time the next ones refuted;
//! - [`Aggregator::flush`] at end of input.
//!
//! Live, with the clock read by hand where a program would read
//! `Instant::now()`, and sleep until [`Aggregator::poll_timeout`]:
//!
//! ```
//! use pulse_core::{Aggregator, AggregatorConfig, Event, Frame, parse_frame};
//!
//! let mut agg = Aggregator::new(AggregatorConfig::default()).unwrap();
//! let frames = [
//!     (0, r#"{"e":"aggTrade","E":1723161256001,"a":1,"s":"BTCUSDT","p":"61180.10","q":"0.5","f":1,"l":1,"T":1723161256000,"m":false}"#),
//!     (400, r#"{"e":"aggTrade","E":1723161256401,"a":2,"s":"BTCUSDT","p":"61180.30","q":"0.25","f":2,"l":2,"T":1723161256400,"m":true}"#),
//! ];
//! // Arrival times on our monotonic clock, in ms from any origin.
//! for (arrived_ms, frame) in frames {
//!     let Frame::Trade(trade) = parse_frame(frame.as_bytes()).unwrap() else { continue };
//!     agg.handle_trade_at(trade, arrived_ms);
//!     assert!(agg.poll().is_none(), "the window is still open");
//! }
//! // Then the market goes quiet: wake at the timeout and advance.
//! let due = agg.poll_timeout().expect("a window waits to close");
//! assert!(due > 400 && due < 2_000);
//! agg.advance(due);
//! let Some(Event::Window(w)) = agg.poll() else { panic!("closed by the quiet") };
//! assert_eq!(w.trade_count, 2);
//! ```
//!
//! A recording:
//!
//! ```
//! use pulse_core::{Aggregator, AggregatorConfig, Event, Frame, parse_frame};
//!
//! let frames = [
//!     r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1723161256001,"a":1,"s":"BTCUSDT","p":"61180.10","q":"0.500","f":1,"l":1,"T":1723161256000,"m":false}}"#,
//!     r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1723161256401,"a":2,"s":"BTCUSDT","p":"61180.30","q":"0.250","f":2,"l":3,"T":1723161256400,"m":true}}"#,
//!     r#"{"result":null,"id":1}"#,
//! ];
//! let mut agg = Aggregator::new(AggregatorConfig::default()).unwrap();
//! for frame in frames {
//!     if let Frame::Trade(trade) = parse_frame(frame.as_bytes()).unwrap() {
//!         agg.handle_trade(trade);
//!     }
//! }
//! agg.flush();
//! let Some(Event::Window(w)) = agg.poll() else { panic!("one window") };
//! assert_eq!(w.trade_count, 2);
//! assert_eq!(w.total_volume, 0.75);
//! assert_eq!(w.net_delta, 0.25);
//! // avg 61180.2 > vwap 61180.1666…, and buyers took more: STRONG BUY.
//! assert_eq!(w.signal.as_str(), "STRONG BUY");
//! ```

mod aggregator;
mod decimal;
mod decimal_sum;
mod emitted;
mod lanes;
mod parse;
mod queue;
mod sequence;
mod short_list;
mod signal;
mod stream_plan;
mod symbol;
mod trade;
mod window;

pub use aggregator::{
    Aggregator, AggregatorConfig, AggregatorStats, ConfigError, Event, LatePolicy, LateTrade,
    SymbolCheckpoint, TimeOutlier, TradeOutcome, WatermarkPolicy,
};
pub use decimal::{Decimal, DecimalError, SCALE, SCALE_DIGITS, ratio_to_f64};
pub use decimal_sum::DecimalSum;
pub use lanes::{
    BackfillFailure, BackfillOutcome, BackfillRequest, LaneEvent, LaneStats, Lanes, ResumePoint,
};
/// The fuzz targets' properties, for `fuzz/` and the corpus replay tests.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use parse::fuzz_check;
pub use parse::render;
pub use parse::{
    AggTradesPage, Frame, MAX_TRADE_TIME_MS, ParseError, RejectedAggTrade, TradingPerpetuals,
    parse_agg_trades, parse_csv_row, parse_exchange_info, parse_frame, parse_server_time,
};
pub use queue::{DEFAULT_QUEUE_CAPACITY, DropOldest};
pub use sequence::{DEFAULT_MAX_OPEN_GAPS, IdRange, Sequence, SequenceOutcome};
pub use short_list::short_list;
pub use signal::{Signal, UnknownSignal};
pub use stream_plan::{Shard, plan_shards, stream_url};
pub use symbol::{MAX_SYMBOL_LEN, Symbol, SymbolError};
pub use trade::{Side, Trade, TradeKind};
pub use window::{RejectedWindow, Window, WindowError, WindowStats};

/// The README's example runs as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
