//! A local fake Binance USD-M for tests.
//!
//! It serves a tape of recorded trades the way Binance does:
//! - WebSocket `ws_base()/market/stream?streams=btcusdt@aggTrade/...`:
//!   combined-stream aggTrade frames, plus `SUBSCRIBE`/`UNSUBSCRIBE`
//!   requests. Any other path is accepted and stays silent, like Binance's
//!   legacy paths since 2026.
//! - REST `rest_base()/fapi/v1/aggTrades?symbol=..&fromId=..&limit=..`: any
//!   id range of the trades published so far, so backfill can repair gaps.
//! - REST `rest_base()/fapi/v1/time`: the tape's clock, the latest trade
//!   time published (the first trade's before playback).
//! - REST `rest_base()/fapi/v1/exchangeInfo`: the tape's symbols as trading
//!   perpetuals, plus a quarterly contract and a settling perpetual
//!   ([`NOT_FOLLOWED`]), for `--symbols ALL`. A test lists others at any
//!   time with [`FakeBinance::list_perpetuals`], as Binance does when it
//!   lists or delists a contract.
//!
//! Like the real market, the tape plays once: a client that is disconnected
//! while trades are published misses them on the WebSocket and has to
//! backfill them over REST. `@trade` captures are served as aggTrades with
//! `a = f = l = t` ([`load_trades`] does the conversion).
//!
//! Faults: [`Fault::Disconnect`] (TCP drop), [`Fault::Stall`] (open but
//! silent, no pongs), [`Fault::Close`] (server Close frame), [`Fault::Ping`],
//! [`Fault::Malformed`] (a broken frame),
//! refused handshakes ([`FakeBinance::reject_handshakes`]) and REST
//! rate-limit or error replies ([`RestFault`]) to aggTrades
//! ([`FakeBinance::fail_rest`]), exchangeInfo
//! ([`FakeBinance::fail_exchange_info`]) or the server time
//! ([`FakeBinance::fail_server_time`]). Inject them now
//! ([`FakeBinance::inject`]) or at a tape position ([`FakeBinance::schedule`]),
//! which makes a test independent of timing.
//!
//! [`collect_trades`] and [`assert_same_trades`] check what a client
//! delivered against the tape.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use pulse_testkit::fake_binance::{FakeBinance, Fault, load_trades};
//! let trades = load_trades("../shared/data/binance-usdm_altcoins@aggTrade_2021-07-22_cryptofeed.jsonl.gz")?;
//! let fake = FakeBinance::start(trades).await;
//! fake.schedule(40, Fault::Disconnect); // after 40 trades are out
//! // Point the client at fake.ws_base() and fake.rest_base(), e.g.
//! // `pulse run --binance-ws-url <ws_base> --binance-rest-url <rest_base>`.
//! # Ok(()) }
//! ```

mod check;
mod config;
mod playback;
mod rest;
mod state;
mod tape;
mod ws;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pulse_core::{Symbol, Trade};
use pulse_io::binance::BackfillConfig;
use pulse_io::{BinanceConfig, RetryPolicy};
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};

pub use check::{assert_same_trades, collect_trades};
pub use config::{FakeConfig, FakeStats, Fault, Pace, RestFault, Start};
pub use rest::NOT_FOLLOWED;
pub use tape::{as_agg_trade, load_trades};

use state::Shared;
use tape::Tape;

/// A running fake Binance on loopback. Dropping it stops every task and
/// closes every socket.
#[derive(Debug)]
pub struct FakeBinance {
    shared: Arc<Shared>,
    ws_addr: SocketAddr,
    rest_addr: SocketAddr,
    _stop: DropGuard,
}

impl FakeBinance {
    /// Starts serving `trades` (in this order) with the default
    /// [`FakeConfig`]: unpaced, from the first subscriber on.
    ///
    /// # Panics
    /// When it cannot bind a loopback port.
    pub async fn start(trades: Vec<Trade>) -> FakeBinance {
        FakeBinance::start_with(trades, FakeConfig::default()).await
    }

    /// Starts serving `trades` with `config`.
    ///
    /// # Panics
    /// When it cannot bind a loopback port.
    pub async fn start_with(trades: Vec<Trade>, config: FakeConfig) -> FakeBinance {
        let trades = trades.into_iter().map(as_agg_trade).collect();
        let shared = Arc::new(Shared::new(Tape::new(trades)));
        let cancel = CancellationToken::new();
        let ws_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake WebSocket port");
        let rest_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake REST port");
        let ws_addr = ws_listener.local_addr().expect("local address");
        let rest_addr = rest_listener.local_addr().expect("local address");
        tokio::spawn(ws::accept_loop(ws_listener, shared.clone(), cancel.clone()));
        let router = rest::router(shared.clone());
        let stop = cancel.clone();
        tokio::spawn(async move {
            let _ = axum::serve(rest_listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        tokio::spawn(playback::run(shared.clone(), config, cancel.clone()));
        FakeBinance {
            shared,
            ws_addr,
            rest_addr,
            _stop: cancel.drop_guard(),
        }
    }

    /// The WebSocket base URL, e.g. `ws://127.0.0.1:41234`, for
    /// `--binance-ws-url`; clients append `/market/stream?streams=…`.
    pub fn ws_base(&self) -> String {
        format!("ws://{}", self.ws_addr)
    }

    /// The REST base URL, e.g. `http://127.0.0.1:41235`, for
    /// `--binance-rest-url`; clients append `/fapi/v1/aggTrades`.
    pub fn rest_base(&self) -> String {
        format!("http://{}", self.rest_addr)
    }

    /// A client config for this fake: every symbol on the tape, its URLs,
    /// and timings short enough for tests (1 s stall timeout, reconnects
    /// after 50–500 ms, 3 start-up attempts, catch-up after 200 ms, no REST
    /// request budget to speak of).
    pub fn binance_config(&self) -> BinanceConfig {
        BinanceConfig {
            symbols: self.symbols(),
            ws_base: self.ws_base(),
            rest_base: self.rest_base(),
            stall_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(2),
            startup_attempts: 3,
            retry: RetryPolicy {
                initial: Duration::from_millis(50),
                max: Duration::from_millis(500),
            },
            backfill: BackfillConfig {
                catch_up_delay: Duration::from_millis(200),
                requests_per_minute: 600_000,
                ..BackfillConfig::default()
            },
            ..BinanceConfig::default()
        }
    }

    /// The trades on the tape, as served (aggTrades), in publishing order.
    pub fn trades(&self) -> &[Trade] {
        self.shared.tape.trades()
    }

    /// The symbols on the tape, sorted.
    pub fn symbols(&self) -> Vec<Symbol> {
        self.shared.tape.symbols()
    }

    /// From now on, exchangeInfo lists `symbols` as the trading perpetuals
    /// instead of the tape's (plus [`NOT_FOLLOWED`] either way). The tape
    /// still plays every symbol, to whoever subscribed.
    pub fn list_perpetuals(&self, symbols: Vec<Symbol>) {
        self.shared.set_listed(symbols);
    }

    /// The streams open connections are subscribed to, lower-case, e.g.
    /// `btcusdt@aggtrade`.
    pub fn subscribed_streams(&self) -> BTreeSet<String> {
        self.shared.streams()
    }

    /// Applies `fault` to every WebSocket open now.
    pub fn inject(&self, fault: Fault) {
        self.shared.inject(fault);
    }

    /// Applies `fault` once `published` trades are out, before the next one
    /// (`trades().len()` means after the last). Schedule before playback
    /// reaches that point; a position already passed is applied before the
    /// next trade.
    pub fn schedule(&self, published: usize, fault: Fault) {
        self.shared.schedule(published, fault);
    }

    /// Answers the next `times` aggTrades requests with `fault` instead of
    /// data; e.g. `fail_rest(RestFault::Unavailable, n)` is a burst of n
    /// 5xx answers in a row.
    pub fn fail_rest(&self, fault: RestFault, times: usize) {
        self.shared.rest_faults.push(fault, times);
    }

    /// Answers the next `times` exchangeInfo requests with `fault`.
    pub fn fail_exchange_info(&self, fault: RestFault, times: usize) {
        self.shared.listing_faults.push(fault, times);
    }

    /// Answers the next `times` server time requests with `fault`.
    pub fn fail_server_time(&self, fault: RestFault, times: usize) {
        self.shared.time_faults.push(fault, times);
    }

    /// Publishes the trades at these tape positions on REST only, never on
    /// a socket: id gaps with no disconnect, that a backfill fills.
    pub fn keep_off_stream(&self, positions: impl IntoIterator<Item = usize>) {
        self.shared.keep_off_stream(positions);
    }

    /// Serves trade `id` of `symbol` mangled (its price is `"NaN"`) in every
    /// REST page from now on; the WebSocket still sends it intact.
    pub fn corrupt_on_rest(&self, symbol: Symbol, id: u64) {
        self.shared.corrupt_on_rest(symbol, id);
    }

    /// Refuses the next `n` WebSocket handshakes with HTTP 503.
    pub fn reject_handshakes(&self, n: u64) {
        self.shared.reject_handshakes(n);
    }

    /// Drops the next `n` connections right after their handshake, without
    /// a Close frame.
    pub fn drop_after_handshake(&self, n: u64) {
        self.shared.drop_after_handshake(n);
    }

    /// Starts playback when the config says [`Start::Manual`].
    pub fn play(&self) {
        self.shared.playing.send_replace(true);
    }

    /// Trades published so far.
    pub fn published(&self) -> usize {
        self.shared.published()
    }

    /// Counters for assertions.
    pub fn stats(&self) -> FakeStats {
        self.shared.stats()
    }
}
