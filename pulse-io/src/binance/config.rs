//! [`BinanceConfig`]: plain settings with defaults, validated once.

use std::collections::BTreeMap;
use std::time::Duration;

use pulse_core::{DEFAULT_QUEUE_CAPACITY, ResumePoint, Symbol};

use super::universe::AllPerpetuals;
use crate::{RetryPolicy, SourceError};

/// Binance's production USD-M futures WebSocket base.
pub const DEFAULT_WS_BASE: &str = "wss://fstream.binance.com";
/// Binance's production USD-M futures REST base.
pub const DEFAULT_REST_BASE: &str = "https://fapi.binance.com";

/// Settings of a [`BinanceSource`](super::BinanceSource).
#[derive(Clone, Debug, PartialEq)]
pub struct BinanceConfig {
    /// Symbols to follow (`aggTrade` streams).
    pub symbols: Vec<Symbol>,
    /// Follow every trading perpetual instead: when `symbols` is empty,
    /// [`BinanceSource::connect`](super::BinanceSource::connect) fills it
    /// from `{rest_base}/fapi/v1/exchangeInfo`. The source reads that list
    /// again every `max_connection_age` and follows the symbols Binance
    /// listed or delisted meanwhile.
    pub all_perpetuals: Option<AllPerpetuals>,
    /// WebSocket base; `/market/stream?streams=…` is appended.
    pub ws_base: String,
    /// REST base; `/fapi/v1/aggTrades` is appended.
    pub rest_base: String,
    /// Most streams per connection. Binance allows 1024; 200 is the usual
    /// safe cap.
    pub streams_per_connection: usize,
    /// A connection that delivers no frame for this long is dead. A ping is
    /// sent after a third of it, so a quiet but healthy connection answers
    /// with a pong in time.
    pub stall_timeout: Duration,
    /// A connection that answers pings but delivers no data frame (a trade,
    /// an ack, even a malformed frame) for this long is replaced, counted in
    /// `silent_connections`: Binance's legacy `/ws` paths accept and then
    /// send nothing. Each replacement of a shard whose symbols are merely
    /// quiet costs a REST check per symbol. Default 45 s: until a silent
    /// connection is replaced, its symbols count as quiet and progress
    /// markers vouch for the time passing, so what it missed reaches a
    /// topic that far behind them; `pulse consume` corrects windows up to
    /// 60 s back, and counts older trades as too late, in no row.
    pub data_timeout: Duration,
    /// Connections are replaced before this age (Binance cuts at 24 h).
    /// With `all_perpetuals`, the symbol list is read again as often.
    pub max_connection_age: Duration,
    /// How long the old and new connections both run during a planned
    /// replacement, at most, so no trade falls between them.
    pub rotation_overlap: Duration,
    /// Time allowed for one TCP + TLS + WebSocket handshake.
    pub connect_timeout: Duration,
    /// Connection attempts at start-up before giving up with
    /// [`SourceError::Unreachable`]. Once connected, reconnects never give up.
    pub startup_attempts: u32,
    /// Capacity of the drop-oldest queue between socket readers and
    /// [`TradeSource::next_trades`](crate::TradeSource::next_trades).
    pub queue_capacity: usize,
    /// Backoff between reconnects and between failed REST requests.
    pub retry: RetryPolicy,
    /// REST backfill settings.
    pub backfill: BackfillConfig,
    /// The last aggTrade already delivered per symbol (its id and trade
    /// time), e.g. found on the topic by a restarted producer. Those symbols
    /// continue right after it: trades missed in between are backfilled over
    /// REST (at most [`BackfillConfig::max_resume_backfill`] per symbol) and
    /// older ones are dropped as duplicates. A point the live stream shows
    /// to be from elsewhere (a live trade at or below its id but later in
    /// time) is counted in `resume_ahead` and the symbol starts from the
    /// live stream, see [`Lanes::resume_after`](pulse_core::Lanes::resume_after).
    pub resume_after: BTreeMap<Symbol, ResumePoint>,
    /// Symbols an earlier run followed without delivering a trade of them,
    /// with the trade time (Binance's clock) up to which it vouched they
    /// had none (e.g. from the producer's progress markers): what they
    /// traded since is looked up by time, as after a reconnect.
    pub quiet_until: BTreeMap<Symbol, i64>,
}

/// How gaps are backfilled over REST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackfillConfig {
    /// Trades per request (`limit`); Binance allows at most 1000.
    pub page_limit: u32,
    /// Failed requests (network, timeouts, 5xx) in a row per backfill
    /// before it stops; the gap stays open for the next round.
    pub attempts: u32,
    /// Backfills of one gap in a row that bring nothing new, because REST
    /// lags behind the WebSocket or keeps failing, before the gap is left
    /// unfilled and counted. A gap survives `attempts × rounds` failed
    /// requests in a row; the rounds wait out REST lagging the stream by
    /// about 3 s (backoff doubling from `retry.initial`, 200 ms).
    pub rounds: u32,
    /// A `Retry-After` longer than this (a long 418 ban) makes a backfill
    /// give up instead of waiting.
    pub max_retry_after: Duration,
    /// REST requests in flight at once.
    pub concurrency: usize,
    /// REST requests started per minute, at most (bursts of up to 10).
    /// aggTrades weighs 20 of Binance's 2400 per minute; 60 leaves half the
    /// budget to other clients on the same IP.
    pub requests_per_minute: u32,
    /// After a reconnect, how long to wait for a symbol's next live trade
    /// (which reveals any gap by itself) before backfilling it blindly.
    pub catch_up_delay: Duration,
    /// Time allowed for one REST request.
    pub request_timeout: Duration,
    /// Most trades per symbol backfilled when resuming after
    /// [`BinanceConfig::resume_after`]. When the first live trade shows the
    /// gap, these are the ones just before it; a quiet symbol's catch-up
    /// takes the oldest. Missed trades beyond the bound are counted as
    /// unfilled and logged. 100 000 takes about two minutes at the default
    /// request rate.
    pub max_resume_backfill: u64,
}

impl Default for BackfillConfig {
    fn default() -> Self {
        BackfillConfig {
            page_limit: 1000,
            attempts: 5,
            rounds: 5,
            max_retry_after: Duration::from_secs(120),
            concurrency: 2,
            requests_per_minute: 60,
            catch_up_delay: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_resume_backfill: 100_000,
        }
    }
}

impl Default for BinanceConfig {
    fn default() -> Self {
        BinanceConfig {
            symbols: vec![Symbol::new("BTCUSDT").expect("valid symbol")],
            all_perpetuals: None,
            ws_base: DEFAULT_WS_BASE.to_string(),
            rest_base: DEFAULT_REST_BASE.to_string(),
            streams_per_connection: 200,
            stall_timeout: Duration::from_secs(15),
            data_timeout: Duration::from_secs(45),
            max_connection_age: Duration::from_secs(23 * 3600),
            rotation_overlap: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            startup_attempts: 5,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            retry: RetryPolicy::default(),
            backfill: BackfillConfig::default(),
            resume_after: BTreeMap::new(),
            quiet_until: BTreeMap::new(),
        }
    }
}

impl BinanceConfig {
    /// The default config for `symbols`.
    pub fn for_symbols(symbols: impl IntoIterator<Item = Symbol>) -> Self {
        BinanceConfig {
            symbols: symbols.into_iter().collect(),
            ..BinanceConfig::default()
        }
    }

    /// Checks the settings once, before anything connects.
    pub fn validate(&self) -> Result<(), SourceError> {
        let bad = |msg: String| Err(SourceError::Config(msg));
        if self.symbols.is_empty() && self.all_perpetuals.is_none() {
            return bad("no symbols to follow".into());
        }
        if !(self.ws_base.starts_with("ws://") || self.ws_base.starts_with("wss://")) {
            return bad(format!(
                "WebSocket base URL must start with ws:// or wss://, got {:?}",
                self.ws_base
            ));
        }
        if !(self.rest_base.starts_with("http://") || self.rest_base.starts_with("https://")) {
            return bad(format!(
                "REST base URL must start with http:// or https://, got {:?}",
                self.rest_base
            ));
        }
        if !(1..=1024).contains(&self.streams_per_connection) {
            return bad(format!(
                "streams per connection must be 1..=1024, got {}",
                self.streams_per_connection
            ));
        }
        if !(1..=1000).contains(&self.backfill.page_limit) {
            return bad(format!(
                "backfill page limit must be 1..=1000, got {}",
                self.backfill.page_limit
            ));
        }
        let durations = [
            ("stall timeout", self.stall_timeout),
            ("data timeout", self.data_timeout),
            ("max connection age", self.max_connection_age),
            ("connect timeout", self.connect_timeout),
            ("request timeout", self.backfill.request_timeout),
        ];
        if let Some((name, _)) = durations.iter().find(|(_, d)| d.is_zero()) {
            return bad(format!("{name} must be positive"));
        }
        if let Some(symbol) = self.resume_after.keys().find(|s| !self.symbols.contains(s)) {
            return bad(format!(
                "resume_after names {symbol}, which is not among the symbols followed"
            ));
        }
        if let Some(symbol) = self
            .quiet_until
            .keys()
            .find(|s| !self.symbols.contains(s) || self.resume_after.contains_key(s))
        {
            return bad(format!(
                "quiet_until names {symbol}, which is not followed or has a resume point"
            ));
        }
        if self.rotation_overlap >= self.max_connection_age {
            return bad("rotation overlap must be shorter than the max connection age".into());
        }
        if self.startup_attempts == 0
            || self.queue_capacity == 0
            || self.backfill.concurrency == 0
            || self.backfill.requests_per_minute == 0
        {
            return bad(
                "start-up attempts, queue capacity, backfill concurrency and requests per minute must be at least 1"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Mistake = Box<dyn Fn(&mut BinanceConfig)>;

    #[test]
    fn default_is_valid_and_mistakes_are_named() {
        assert!(BinanceConfig::default().validate().is_ok());
        let cases: Vec<(&str, Mistake)> = vec![
            ("no symbols", Box::new(|c| c.symbols.clear())),
            (
                "ws://",
                Box::new(|c| c.ws_base = "https://fstream.binance.com".into()),
            ),
            (
                "http://",
                Box::new(|c| c.rest_base = "fapi.binance.com".into()),
            ),
            (
                "streams per connection",
                Box::new(|c| c.streams_per_connection = 0),
            ),
            ("page limit", Box::new(|c| c.backfill.page_limit = 1001)),
            (
                "stall timeout",
                Box::new(|c| c.stall_timeout = Duration::ZERO),
            ),
            (
                "data timeout",
                Box::new(|c| c.data_timeout = Duration::ZERO),
            ),
            (
                "rotation overlap",
                Box::new(|c| c.rotation_overlap = c.max_connection_age),
            ),
            ("queue capacity", Box::new(|c| c.queue_capacity = 0)),
            (
                "not among the symbols",
                Box::new(|c| {
                    let point = ResumePoint {
                        id: 7,
                        trade_time_ms: 0,
                    };
                    c.resume_after
                        .insert(Symbol::new("ETHUSDT").unwrap(), point);
                }),
            ),
        ];
        for (want, mutate) in cases {
            let mut config = BinanceConfig::default();
            mutate(&mut config);
            let err = config.validate().expect_err(want).to_string();
            assert!(err.contains(want), "{want}: {err}");
        }
    }
}
