//! How the fake plays its tape, and the faults it can inject.

use std::time::Duration;

/// How fast the fake publishes its tape.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Pace {
    /// As fast as the sockets take it.
    #[default]
    Unpaced,
    /// A steady rate, whatever the recorded times.
    TradesPerSecond(u32),
    /// By recorded trade time, at `speed` × real time.
    RealTime {
        /// `2.0` plays twice as fast as recorded.
        speed: f64,
    },
}

/// When playback begins.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Start {
    /// As soon as a WebSocket client has subscribed to any stream, so the
    /// first client sees the whole tape live.
    #[default]
    OnFirstSubscriber,
    /// When the test calls [`FakeBinance::play`](super::FakeBinance::play).
    Manual,
}

/// Settings of a [`FakeBinance`](super::FakeBinance).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FakeConfig {
    /// Publishing speed.
    pub pace: Pace,
    /// When publishing starts.
    pub start: Start,
}

/// A WebSocket fault, applied to every connection open at that moment.
/// Connections made afterwards behave normally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Drops the TCP connection without a Close frame, as a network failure
    /// or a crashed proxy does.
    Disconnect,
    /// Keeps the socket open but sends nothing and answers nothing (not even
    /// pings): the silent stall a watchdog must catch.
    Stall,
    /// Sends a Close frame (1001, going away), as Binance does at the 24 h
    /// limit or during maintenance, then waits for the client's reply.
    Close,
    /// Sends a Ping frame; the client's Pong shows in
    /// [`FakeStats::pongs_received`].
    Ping,
    /// Sends a text frame that is not JSON, then carries on.
    Malformed,
    /// Sends a well-formed trade of a symbol nobody subscribed to
    /// (`ZZZUSDT`), as a proxy mixing streams up would.
    Stranger,
    /// Sends an `@trade` event of a followed symbol, among its aggTrades:
    /// its `t` is no aggTrade id.
    TradeEvent,
}

/// A canned REST reply served instead of data, see
/// [`FakeBinance::fail_rest`](super::FakeBinance::fail_rest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestFault {
    /// HTTP 429 with `Retry-After` (whole seconds, rounded up).
    TooManyRequests {
        /// Sent as `Retry-After`.
        retry_after: Duration,
    },
    /// HTTP 418: the IP is banned for `retry_after`.
    Banned {
        /// Sent as `Retry-After`.
        retry_after: Duration,
    },
    /// HTTP 503 with Binance's "service unavailable" body.
    Unavailable,
    /// HTTP 200 with a body cut short, as a proxy that dropped the
    /// connection mid-reply leaves it.
    CutShort,
}

/// Counters a test can assert on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FakeStats {
    /// WebSocket handshakes completed.
    pub connections_accepted: u64,
    /// WebSocket handshakes refused on purpose.
    pub handshakes_rejected: u64,
    /// Connections currently open and serving data.
    pub open_connections: usize,
    /// Ping frames the fake sent.
    pub pings_sent: u64,
    /// Pong frames clients sent back.
    pub pongs_received: u64,
    /// Ping frames clients sent (the fake answers each with a pong).
    pub pings_received: u64,
    /// SUBSCRIBE/UNSUBSCRIBE messages received.
    pub subscribe_messages: u64,
    /// aggTrades and exchangeInfo requests received, faults included.
    pub rest_requests: u64,
    /// Server time (`/fapi/v1/time`) requests received, faults included.
    pub time_requests: u64,
    /// REST requests answered with a [`RestFault`].
    pub rest_faults_served: u64,
    /// Trades published so far.
    pub published: usize,
    /// True once the whole tape was published.
    pub playback_done: bool,
}
