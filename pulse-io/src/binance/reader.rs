//! One connection's reader task: reads frames into the inbox, watches for
//! stalls and for connections that answer pings but carry no data,
//! reconnects with backoff, and replaces the connection before
//! Binance's 24 h cut-off with an overlap so no trade falls between.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use prometheus_client::metrics::gauge::Gauge;
use pulse_core::{Frame, Symbol, Trade, TradeKind, parse_frame};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Bytes, Message};
use tokio_util::sync::CancellationToken;

use super::config::BinanceConfig;
use super::connect::{ConnectError, Ws, connect};
use super::inbox::Inbox;
use crate::retry::Backoff;
use crate::{Metrics, SourceError};
use pulse_core::Shard;

/// Malformed frames logged one by one per reader before only being counted.
const LOGGED_REJECTS: u64 = 10;
/// The `frames_rejected` reason of a binary frame, which Binance never sends.
pub(crate) const BINARY_FRAME: &str = "binary";
/// The `frames_rejected` reason of a trade of a symbol the connection was
/// not subscribed to: a server or proxy mixing streams up.
pub(crate) const NOT_SUBSCRIBED: &str = "not_subscribed";
/// A connection that lived (or, for a silent one, carried data) this long
/// was healthy: the next failure starts the reconnect delays over, so a
/// feed dropped every minute is not waited for longer each time. One that
/// dies sooner (a server that accepts and then drops every connection)
/// keeps them growing; 10 s keeps that to a handshake per 10 s per shard,
/// far inside Binance's connection limits.
const HEALTHY_FOR: Duration = Duration::from_secs(10);

/// What a reader tells the source besides trades.
#[derive(Debug)]
pub(crate) enum ShardEvent {
    /// The connection of the shard with this index failed; its symbols'
    /// trades are being missed until it is replaced.
    Disconnected(usize),
    /// The connection of the shard with this index, for these symbols, was
    /// replaced after a failure.
    Reconnected {
        index: usize,
        symbols: Vec<Symbol>,
        /// The latest trade time the shard delivered, if any: trades up to
        /// about then came through.
        delivered_until_ms: Option<i64>,
        /// When the failed connection was lost: for a shard that delivered
        /// no trade, the outage is looked up from about then.
        lost_at: Instant,
        /// The inbox position of the new connection's first trade: the
        /// trades before it came first.
        inbox_mark: u64,
    },
    /// The shard with this index, started while running, has connected.
    Connected(usize),
}

/// Everything a reader task needs.
#[derive(Debug)]
pub(crate) struct ShardReader {
    pub(crate) shard: Shard,
    /// The shard's symbols, to look each trade up in.
    pub(crate) followed: HashSet<Symbol>,
    /// Symbols whose aggTrades this shard has carried: an `@trade` event
    /// of one of them is another id space mixed in.
    pub(crate) carried_agg_trades: HashSet<Symbol>,
    pub(crate) config: Arc<BinanceConfig>,
    pub(crate) tls: Arc<rustls::ClientConfig>,
    pub(crate) inbox: Arc<Inbox>,
    pub(crate) events: mpsc::UnboundedSender<ShardEvent>,
    pub(crate) metrics: Metrics,
    pub(crate) cancel: CancellationToken,
    pub(crate) rejected: u64,
    /// The latest trade time delivered, over every connection so far.
    pub(crate) delivered_until_ms: Option<i64>,
    /// Reconnect delays, kept across connections (see [`HEALTHY_FOR`]).
    pub(crate) backoff: Backoff,
}

/// An open connection; counted in the `connections` gauge while it lives.
struct Live {
    ws: Ws,
    opened: Instant,
    /// When the last data frame (not a ping or pong) came; `opened` before.
    last_data: Instant,
    /// When the last frame of any kind came; `opened` before.
    last_frame: Instant,
    rotate_at: Instant,
    /// When a connection being replaced died before its replacement ran.
    lost_at: Option<Instant>,
    gauge: Gauge,
}

impl Live {
    fn new(ws: Ws, config: &BinanceConfig, gauge: &Gauge) -> Self {
        gauge.inc();
        Live {
            ws,
            opened: Instant::now(),
            last_data: Instant::now(),
            last_frame: Instant::now(),
            rotate_at: Instant::now() + config.max_connection_age,
            lost_at: None,
            gauge: gauge.clone(),
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

enum Ended {
    Shutdown,
    RotationDue,
    Dead(String),
    /// Pongs came back but no data frame for `data_timeout`.
    Silent,
}

/// Whether a message is data: anything but control frames and the end.
fn is_data(message: &Option<Result<Message, tungstenite::Error>>) -> bool {
    matches!(message, Some(Ok(Message::Text(_) | Message::Binary(_))))
}

/// The URL without its long stream list, for messages.
fn short_url(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// Opens a shard's first connection, giving up after
/// `config.startup_attempts` with [`SourceError::Unreachable`].
pub(crate) async fn connect_at_startup(
    shard: &Shard,
    config: &BinanceConfig,
    tls: &Arc<rustls::ClientConfig>,
    metrics: &Metrics,
) -> Result<Ws, SourceError> {
    let mut delays = config.retry.delays();
    let mut last_error = None;
    for attempt in 1..=config.startup_attempts {
        match connect(&shard.url, tls, config.connect_timeout).await {
            Ok(ws) => return Ok(ws),
            Err(e) => {
                metrics.connect_failures.inc();
                tracing::warn!(shard = shard.index, attempt, url = short_url(&shard.url), error = %e, "cannot connect to Binance");
                last_error = Some(e);
            }
        }
        if attempt < config.startup_attempts {
            tokio::time::sleep(delays.next_delay()).await;
        }
    }
    Err(SourceError::Unreachable {
        url: short_url(&shard.url).to_string(),
        reason: format!(
            "{} connection attempts failed, the last with: {}",
            config.startup_attempts,
            last_error.map_or_else(|| "no attempt made".to_string(), |e| e.to_string())
        ),
    })
}

impl ShardReader {
    /// Runs until cancelled, reconnecting for ever.
    pub(crate) async fn run(mut self, ws: Ws) {
        let gauge = self.metrics.connections.clone();
        let mut conn = Live::new(ws, &self.config, &gauge);
        tracing::info!(
            shard = self.shard.index,
            symbols = self.shard.symbols.len(),
            url = short_url(&self.shard.url),
            "connected to Binance"
        );
        loop {
            let next = match self.serve(&mut conn).await {
                Ended::Shutdown => return,
                Ended::Dead(reason) => {
                    tracing::warn!(shard = self.shard.index, %reason, "Binance connection lost; reconnecting");
                    let healthy = conn.opened.elapsed() >= HEALTHY_FOR;
                    // A stalled connection was lost when it last said anything.
                    let lost_at = conn.last_frame;
                    self.replace(conn, healthy, lost_at, &gauge).await
                }
                Ended::Silent => {
                    self.metrics.silent_connections.inc();
                    tracing::warn!(
                        shard = self.shard.index,
                        url = short_url(&self.shard.url),
                        timeout = ?self.config.data_timeout,
                        "Binance connection answers pings but carries no data; reconnecting \
                         (a wrong URL, such as the legacy /ws path, does this; for rarely traded symbols raise the data timeout)"
                    );
                    // Healthy means data came: a URL that never carries any backs off.
                    let healthy = conn.last_data.duration_since(conn.opened) >= HEALTHY_FOR;
                    let lost_at = conn.last_data;
                    self.replace(conn, healthy, lost_at, &gauge).await
                }
                Ended::RotationDue => self.rotate(conn, &gauge).await,
            };
            let Some(next) = next else { return };
            conn = next;
        }
    }

    /// Runs a shard added while the source runs (the symbol list changed):
    /// connects at once, or backs off and retries for ever like a reconnect,
    /// says so, then reads as [`run`](Self::run) does. Nothing needs
    /// backfilling: the connections it replaces stay open until it is up.
    pub(crate) async fn connect_then_run(mut self) {
        let ws = match self.connect_once().await {
            None => return,
            Some(Ok(ws)) => ws,
            Some(Err(e)) => {
                tracing::warn!(shard = self.shard.index, url = short_url(&self.shard.url), error = %e, "cannot connect a new shard; retrying");
                match self.reconnect().await {
                    Some(ws) => ws,
                    None => return,
                }
            }
        };
        let _ = self.events.send(ShardEvent::Connected(self.shard.index));
        self.run(ws).await;
    }

    /// Drops a failed connection, which carried trades until `lost_at`,
    /// and [`recover`](Self::recover)s; the backoff starts over only after
    /// a connection that was `healthy`.
    async fn replace(
        &mut self,
        conn: Live,
        healthy: bool,
        lost_at: Instant,
        gauge: &Gauge,
    ) -> Option<Live> {
        if healthy {
            self.backoff.reset();
        }
        drop(conn);
        self.recover(lost_at, gauge).await
    }

    /// After a failure: reconnects (for ever) and has what was missed
    /// backfilled. `None` when the source stopped meanwhile.
    async fn recover(&mut self, lost_at: Instant, gauge: &Gauge) -> Option<Live> {
        let _ = self.events.send(ShardEvent::Disconnected(self.shard.index));
        let ws = self.reconnect().await?;
        self.metrics.reconnects.inc();
        self.send_reconnected(lost_at);
        tracing::info!(
            shard = self.shard.index,
            "reconnected to Binance; backfilling what was missed"
        );
        Some(Live::new(ws, &self.config, gauge))
    }

    /// Reads until the connection dies, stalls, goes without data, or is
    /// due for replacement.
    async fn serve(&mut self, conn: &mut Live) -> Ended {
        let stall = self.config.stall_timeout;
        let data_timeout = self.config.data_timeout;
        conn.last_frame = Instant::now();
        let mut pinged = false;
        loop {
            let dead_at = conn.last_frame + stall;
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return Ended::Shutdown,
                message = conn.ws.next() => {
                    conn.last_frame = Instant::now();
                    pinged = false;
                    if is_data(&message) {
                        conn.last_data = conn.last_frame;
                    }
                    if let Err(reason) = self.on_message(message) {
                        return Ended::Dead(reason);
                    }
                }
                // A quiet but healthy connection answers a ping before the watchdog fires.
                _ = tokio::time::sleep_until(conn.last_frame + stall / 3), if !pinged => {
                    pinged = true;
                    let ping = conn.ws.send(Message::Ping(Bytes::from_static(b"pulse")));
                    match tokio::time::timeout_at(dead_at, ping).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return Ended::Dead(format!("sending a ping failed: {e}")),
                        Err(_) => return Ended::Dead(format!("no frame for {stall:?}")),
                    }
                }
                _ = tokio::time::sleep_until(dead_at) => {
                    return Ended::Dead(format!("no frame for {stall:?}"));
                }
                _ = tokio::time::sleep_until(conn.last_data + data_timeout) => return Ended::Silent,
                _ = tokio::time::sleep_until(conn.rotate_at) => return Ended::RotationDue,
            }
        }
    }

    /// Handles one message. Pings need nothing here: tungstenite queues the
    /// pong and sends it on the next read, which follows at once.
    fn on_message(
        &mut self,
        message: Option<Result<Message, tungstenite::Error>>,
    ) -> Result<(), String> {
        match message {
            None => Err("connection closed without a Close frame".into()),
            Some(Err(e)) => Err(format!("read failed: {e}")),
            Some(Ok(Message::Text(text))) => {
                self.on_text(text.as_bytes());
                Ok(())
            }
            Some(Ok(Message::Close(frame))) => Err(match frame {
                Some(f) => format!("server closed the connection ({}: {})", f.code, f.reason),
                None => "server closed the connection".into(),
            }),
            Some(Ok(Message::Binary(_))) => {
                self.reject(BINARY_FRAME, "unexpected binary frame");
                Ok(())
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Ok(()),
        }
    }

    fn on_text(&mut self, bytes: &[u8]) {
        match parse_frame(bytes) {
            Ok(Frame::Trade(trade)) => match self.not_subscribed(&trade) {
                None => {
                    let time = trade.trade_time_ms;
                    self.delivered_until_ms =
                        Some(self.delivered_until_ms.map_or(time, |t| t.max(time)));
                    self.inbox.push(trade)
                }
                Some(error) => self.reject(NOT_SUBSCRIBED, &error),
            },
            Ok(Frame::Ack { .. }) => {}
            Err(e) => self.reject(e.reason(), &e.to_string()),
        }
    }

    /// Why `trade` is not one of this connection's streams, if it is not:
    /// a server or proxy mixing streams up. Its id would be taken for one
    /// of another stream and open a false gap or hide a real trade. A
    /// server that sends only `@trade` events (a recording played back as
    /// it was) is taken as it is: its trade ids are contiguous too. The
    /// payload's `s` says whose trade it is, as in other clients; the
    /// frame's `stream` label is not checked.
    fn not_subscribed(&mut self, trade: &Trade) -> Option<String> {
        if !self.followed.contains(&trade.symbol) {
            return Some(format!(
                "trade of {}, which this connection does not follow",
                trade.symbol
            ));
        }
        match trade.kind {
            TradeKind::AggTrade => {
                self.carried_agg_trades.insert(trade.symbol);
                None
            }
            TradeKind::Trade if self.carried_agg_trades.contains(&trade.symbol) => Some(format!(
                "{} trade event (@trade) among its aggTrades: a trade id is no aggTrade id",
                trade.symbol
            )),
            TradeKind::Trade => None,
        }
    }

    fn send_reconnected(&self, lost_at: Instant) {
        let _ = self.events.send(ShardEvent::Reconnected {
            index: self.shard.index,
            symbols: self.shard.symbols.clone(),
            delivered_until_ms: self.delivered_until_ms,
            lost_at,
            inbox_mark: self.inbox.pushed(),
        });
    }

    fn reject(&mut self, reason: &str, error: &str) {
        self.metrics.reject(reason);
        self.rejected += 1;
        if self.rejected <= LOGGED_REJECTS {
            tracing::warn!(
                shard = self.shard.index,
                reason,
                error,
                "skipping malformed frame"
            );
        } else {
            tracing::debug!(
                shard = self.shard.index,
                reason,
                error,
                "skipping malformed frame"
            );
        }
    }

    /// Connects again, with backoff, until it works or the source stops.
    async fn reconnect(&mut self) -> Option<Ws> {
        let mut attempt = 0u64;
        loop {
            let wait = self.backoff.next_delay();
            tokio::select! {
                _ = self.cancel.cancelled() => return None,
                _ = tokio::time::sleep(wait) => {}
            }
            attempt += 1;
            match self.connect_once().await? {
                Ok(ws) => return Some(ws),
                Err(e) => {
                    self.metrics.connect_failures.inc();
                    tracing::warn!(shard = self.shard.index, attempt, error = %e, "reconnect failed")
                }
            }
        }
    }

    /// One attempt; `None` when the source stopped meanwhile.
    async fn connect_once(&self) -> Option<Result<Ws, ConnectError>> {
        tokio::select! {
            _ = self.cancel.cancelled() => None,
            result = connect(&self.shard.url, &self.tls, self.config.connect_timeout) => Some(result),
        }
    }

    /// Replaces `old` with a new connection, reading both for
    /// `rotation_overlap` so trades in flight on either are kept; the
    /// sequence tracker drops the duplicates. `old` keeps being read while
    /// the new one connects. If the new connection fails, `old` is kept and
    /// the replacement retried later; if both fail, this is a reconnect.
    async fn rotate(&mut self, mut old: Live, gauge: &Gauge) -> Option<Live> {
        tracing::info!(
            shard = self.shard.index,
            "replacing the connection before Binance's 24 h limit"
        );
        let (url, tls, timeout) = (
            self.shard.url.clone(),
            self.tls.clone(),
            self.config.connect_timeout,
        );
        let connecting = async move { connect(&url, &tls, timeout).await };
        tokio::pin!(connecting);
        let mut old_alive = true;
        let connected = loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return None,
                result = &mut connecting => break result,
                message = old.ws.next(), if old_alive => {
                    if let Err(reason) = self.on_message(message) {
                        tracing::warn!(shard = self.shard.index, %reason, "connection lost while replacing it");
                        old_alive = false;
                        old.lost_at = Some(Instant::now());
                    }
                }
            }
        };
        let mut new = match connected {
            Ok(ws) => Live::new(ws, &self.config, gauge),
            Err(e) => {
                return self
                    .keep_or_recover(old, old_alive, &e.to_string(), gauge)
                    .await;
            }
        };
        let overlap_until = Instant::now() + self.config.rotation_overlap;
        while old_alive {
            tokio::select! {
                _ = self.cancel.cancelled() => return None,
                message = new.ws.next() => {
                    if let Err(reason) = self.on_message(message) {
                        drop(new);
                        return self.keep_or_recover(old, old_alive, &reason, gauge).await;
                    }
                }
                message = old.ws.next() => {
                    if self.on_message(message).is_err() {
                        old_alive = false;
                        old.lost_at = Some(Instant::now());
                    }
                }
                _ = tokio::time::sleep_until(overlap_until) => break,
            }
        }
        self.metrics.reconnects.inc();
        if old_alive {
            // Close politely, but never wait long for it.
            let _ = tokio::time::timeout(Duration::from_secs(1), old.ws.close(None)).await;
        } else {
            // Trades may have fallen between the two: have quiet symbols checked.
            self.send_reconnected(old.lost_at.unwrap_or_else(Instant::now));
        }
        tracing::info!(shard = self.shard.index, "connection replaced");
        Some(new)
    }

    /// The replacement failed: keep `old` and try again later, or, if `old`
    /// died too, reconnect.
    async fn keep_or_recover(
        &mut self,
        mut old: Live,
        old_alive: bool,
        reason: &str,
        gauge: &Gauge,
    ) -> Option<Live> {
        if old_alive {
            tracing::warn!(
                shard = self.shard.index,
                reason,
                "planned reconnect failed; keeping the current connection"
            );
            // Growing delays: a server refusing new connections is not
            // asked again and again.
            old.rotate_at = Instant::now() + self.backoff.next_delay();
            return Some(old);
        }
        let lost_at = old.lost_at.unwrap_or_else(Instant::now);
        drop(old);
        tracing::warn!(
            shard = self.shard.index,
            reason,
            "planned reconnect failed and the current connection is gone; reconnecting"
        );
        self.recover(lost_at, gauge).await
    }
}
