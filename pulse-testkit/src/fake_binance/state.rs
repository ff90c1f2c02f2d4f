//! State shared by the fake's WebSocket, REST and playback tasks.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use pulse_core::{Symbol, Trade};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::config::{FakeStats, Fault, RestFault};
use super::tape::{Tape, stream_name, trade_frame};

/// What a connection task is told to do.
#[derive(Debug)]
pub(crate) enum Command {
    /// Send this text frame.
    Frame(Utf8Bytes),
    /// Misbehave.
    Fault(Fault),
}

#[derive(Debug)]
struct Conn {
    id: u64,
    /// Lower-case stream names, e.g. `btcusdt@aggtrade`.
    streams: HashSet<String>,
    tx: mpsc::UnboundedSender<Command>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connections_accepted: AtomicU64,
    pub(crate) handshakes_rejected: AtomicU64,
    pub(crate) pings_sent: AtomicU64,
    pub(crate) pongs_received: AtomicU64,
    pub(crate) pings_received: AtomicU64,
    pub(crate) subscribe_messages: AtomicU64,
    pub(crate) rest_requests: AtomicU64,
    pub(crate) time_requests: AtomicU64,
    pub(crate) rest_faults_served: AtomicU64,
}

/// REST answers to serve instead of data, oldest first.
#[derive(Debug, Default)]
pub(crate) struct FaultQueue(Mutex<VecDeque<RestFault>>);

impl FaultQueue {
    pub(crate) fn push(&self, fault: RestFault, times: usize) {
        self.0
            .lock()
            .unwrap()
            .extend(std::iter::repeat_n(fault, times));
    }

    pub(crate) fn pop(&self) -> Option<RestFault> {
        self.0.lock().unwrap().pop_front()
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) tape: Tape,
    pub(crate) counters: Counters,
    published: AtomicUsize,
    playback_done: AtomicBool,
    conns: Mutex<Vec<Conn>>,
    next_conn: AtomicU64,
    pub(crate) subscribed: watch::Sender<bool>,
    pub(crate) playing: watch::Sender<bool>,
    scheduled: Mutex<BTreeMap<usize, Vec<Fault>>>,
    /// Answers to aggTrades requests instead of data.
    pub(crate) rest_faults: FaultQueue,
    /// Answers to exchangeInfo requests instead of data.
    pub(crate) listing_faults: FaultQueue,
    /// Answers to server time requests instead of the time.
    pub(crate) time_faults: FaultQueue,
    /// (symbol, id) of trades REST serves mangled, every time.
    corrupt_on_rest: Mutex<HashSet<(Symbol, u64)>>,
    /// Tape positions published on REST only, never sent on a socket.
    kept_off_stream: Mutex<HashSet<usize>>,
    handshakes_to_reject: AtomicU64,
    /// Accepted connections still to drop right after the handshake.
    connections_to_drop: AtomicU64,
    /// The trading perpetuals exchangeInfo lists; `None`: the tape's.
    listed: Mutex<Option<Vec<Symbol>>>,
}

impl Shared {
    pub(crate) fn new(tape: Tape) -> Self {
        Shared {
            tape,
            counters: Counters::default(),
            published: AtomicUsize::new(0),
            playback_done: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
            next_conn: AtomicU64::new(0),
            subscribed: watch::Sender::new(false),
            playing: watch::Sender::new(false),
            scheduled: Mutex::new(BTreeMap::new()),
            rest_faults: FaultQueue::default(),
            listing_faults: FaultQueue::default(),
            time_faults: FaultQueue::default(),
            corrupt_on_rest: Mutex::new(HashSet::new()),
            kept_off_stream: Mutex::new(HashSet::new()),
            handshakes_to_reject: AtomicU64::new(0),
            connections_to_drop: AtomicU64::new(0),
            listed: Mutex::new(None),
        }
    }

    /// The symbols exchangeInfo lists as trading perpetuals.
    pub(crate) fn listed(&self) -> Vec<Symbol> {
        let listed = self.listed.lock().unwrap();
        listed.clone().unwrap_or_else(|| self.tape.symbols())
    }

    pub(crate) fn set_listed(&self, symbols: Vec<Symbol>) {
        *self.listed.lock().unwrap() = Some(symbols);
    }

    /// Streams some open connection is subscribed to.
    pub(crate) fn streams(&self) -> BTreeSet<String> {
        let conns = self.conns.lock().unwrap();
        conns
            .iter()
            .flat_map(|c| c.streams.iter().cloned())
            .collect()
    }

    /// The fake's clock: the latest trade time published, or before
    /// playback the first trade's (0 for an empty tape). Like Binance's
    /// server time, no trade published so far is later.
    pub(crate) fn server_time_ms(&self) -> i64 {
        let trades = self.tape.trades();
        trades[..self.published()]
            .iter()
            .map(|t| t.trade_time_ms)
            .max()
            .or_else(|| trades.first().map(|t| t.trade_time_ms))
            .unwrap_or(0)
    }

    pub(crate) fn published(&self) -> usize {
        self.published.load(Ordering::SeqCst)
    }

    /// Publishes tape position `pos` to every connection subscribed to its
    /// stream. REST shows it first, so a client that sees the frame and
    /// backfills finds it there.
    pub(crate) fn publish(&self, pos: usize) {
        let trade = self.tape.trades()[pos];
        self.published.store(pos + 1, Ordering::SeqCst);
        if self.kept_off_stream.lock().unwrap().contains(&pos) {
            return;
        }
        let stream = stream_name(trade.symbol).to_ascii_lowercase();
        let frame = Utf8Bytes::from(trade_frame(&trade));
        for conn in self.conns.lock().unwrap().iter() {
            if conn.streams.contains(&stream) {
                let _ = conn.tx.send(Command::Frame(frame.clone()));
            }
        }
    }

    pub(crate) fn finish_playback(&self) {
        self.playback_done.store(true, Ordering::SeqCst);
    }

    pub(crate) fn register(
        &self,
        streams: HashSet<String>,
        tx: mpsc::UnboundedSender<Command>,
    ) -> u64 {
        let id = self.next_conn.fetch_add(1, Ordering::SeqCst);
        let any = !streams.is_empty();
        self.conns.lock().unwrap().push(Conn { id, streams, tx });
        if any {
            self.subscribed.send_replace(true);
        }
        id
    }

    pub(crate) fn unregister(&self, id: u64) {
        self.conns.lock().unwrap().retain(|c| c.id != id);
    }

    /// Adds (`subscribe`) or removes streams of connection `id`.
    pub(crate) fn update_streams(&self, id: u64, streams: &[String], subscribe: bool) {
        let mut conns = self.conns.lock().unwrap();
        if let Some(conn) = conns.iter_mut().find(|c| c.id == id) {
            for s in streams {
                let s = s.to_ascii_lowercase();
                if subscribe {
                    conn.streams.insert(s);
                } else {
                    conn.streams.remove(&s);
                }
            }
        }
        drop(conns);
        if subscribe && !streams.is_empty() {
            self.subscribed.send_replace(true);
        }
    }

    /// Sends `fault` to every open connection.
    pub(crate) fn inject(&self, fault: Fault) {
        for conn in self.conns.lock().unwrap().iter() {
            let _ = conn.tx.send(Command::Fault(fault));
        }
    }

    pub(crate) fn schedule(&self, at: usize, fault: Fault) {
        self.scheduled
            .lock()
            .unwrap()
            .entry(at)
            .or_default()
            .push(fault);
    }

    /// Faults scheduled at tape positions up to `pos`.
    pub(crate) fn take_scheduled(&self, pos: usize) -> Vec<Fault> {
        let mut scheduled = self.scheduled.lock().unwrap();
        let later = scheduled.split_off(&(pos + 1));
        let due = std::mem::replace(&mut *scheduled, later);
        due.into_values().flatten().collect()
    }

    pub(crate) fn keep_off_stream(&self, positions: impl IntoIterator<Item = usize>) {
        self.kept_off_stream.lock().unwrap().extend(positions);
    }

    pub(crate) fn corrupt_on_rest(&self, symbol: Symbol, id: u64) {
        self.corrupt_on_rest.lock().unwrap().insert((symbol, id));
    }

    pub(crate) fn is_corrupt_on_rest(&self, trade: &Trade) -> bool {
        self.corrupt_on_rest
            .lock()
            .unwrap()
            .contains(&(trade.symbol, trade.id))
    }

    pub(crate) fn reject_handshakes(&self, n: u64) {
        self.handshakes_to_reject.fetch_add(n, Ordering::SeqCst);
    }

    pub(crate) fn drop_after_handshake(&self, n: u64) {
        self.connections_to_drop.fetch_add(n, Ordering::SeqCst);
    }

    /// True when the connection just accepted is to be dropped at once.
    pub(crate) fn take_connection_drop(&self) -> bool {
        self.connections_to_drop
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// True when the next handshake is to be refused (and counts it).
    pub(crate) fn take_handshake_rejection(&self) -> bool {
        self.handshakes_to_reject
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    pub(crate) fn stats(&self) -> FakeStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::SeqCst);
        FakeStats {
            connections_accepted: get(&c.connections_accepted),
            handshakes_rejected: get(&c.handshakes_rejected),
            open_connections: self.conns.lock().unwrap().len(),
            pings_sent: get(&c.pings_sent),
            pongs_received: get(&c.pongs_received),
            pings_received: get(&c.pings_received),
            subscribe_messages: get(&c.subscribe_messages),
            rest_requests: get(&c.rest_requests),
            time_requests: get(&c.time_requests),
            rest_faults_served: get(&c.rest_faults_served),
            published: self.published(),
            playback_done: self.playback_done.load(Ordering::SeqCst),
        }
    }
}
