//! Helpers for the `pulse produce` / `pulse consume` tests: run the real
//! binary against the real broker and ClickHouse, signal it, wait for its
//! positions, and compute the expected rows straight from pulse-core.
#![allow(dead_code)] // each test file uses a different subset

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use pulse_core::{Aggregator, AggregatorConfig, Event, Frame, Trade, parse_frame};
use pulse_io::clickhouse::{ClickHouseConfig, WindowRow, WindowStore};
use pulse_io::kafka::{FetchConfig, PartitionReader, decode_trade, is_progress_key, partition_for};
use pulse_testkit::TestKafka;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// Busy single-symbol capture: 21,313 trades, 344 windows.
pub const BUSY_BTC: &str =
    "binance-usdm_btcusdt@trade_2024-08-08T235416Z_2024-08-08T235959Z.jsonl.gz";
/// Five interleaved symbols (spread over three partitions), 574 trades.
pub const ALTCOINS: &str = "binance-usdm_altcoins@aggTrade_2021-04-05_cryptofeed.jsonl.gz";

/// Generous bound for anything the tests wait for.
pub const WAIT: Duration = Duration::from_secs(120);

/// A capture in `../shared/data`, or `None` (the test skips) without it.
pub fn capture(name: &str) -> Option<PathBuf> {
    let path = pulse_testkit::data_dir()?.join(name);
    assert!(path.is_file(), "{} is missing", path.display());
    Some(path)
}

/// The capture's trades, parsed frame by frame with pulse-core.
pub fn trades(path: &Path) -> Vec<Trade> {
    let file = std::fs::File::open(path).unwrap();
    BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .filter_map(|line| match parse_frame(line.unwrap().as_bytes()) {
            Ok(Frame::Trade(trade)) => Some(trade),
            _ => None,
        })
        .collect()
}

/// The rows pulse-core computes from `trades` in one pass, flushed at the
/// end, ordered like [`WindowStore::select_final`].
pub fn expected_rows(trades: &[Trade]) -> Vec<WindowRow> {
    let mut agg = Aggregator::new(AggregatorConfig::default()).unwrap();
    let mut rows = Vec::new();
    for trade in trades {
        agg.handle_trade(*trade);
    }
    agg.flush();
    while let Some(event) = agg.poll() {
        if let Event::Window(w) = event {
            rows.push(WindowRow::try_from(&w).unwrap());
        }
    }
    rows.sort_by(|a, b| (&a.symbol, a.window_start).cmp(&(&b.symbol, b.window_start)));
    rows
}

/// How many of `trades` each partition of a fresh topic with `partitions`
/// partitions holds (not its end offset: progress markers sit in between;
/// see [`trade_ends`]).
pub fn ends(trades: &[Trade], partitions: i32) -> BTreeMap<i32, i64> {
    let mut ends = BTreeMap::new();
    for t in trades {
        *ends
            .entry(partition_for(&t.symbol, partitions))
            .or_insert(0) += 1;
    }
    ends
}

/// Asserts `actual` equals `expected` row by row, naming the first difference.
pub fn assert_same_rows(actual: &[WindowRow], expected: &[WindowRow]) {
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert_eq!(a, e, "row {i} differs");
    }
    assert_eq!(actual.len(), expected.len(), "row count");
}

/// Runs `pulse produce --replay path` into a topic of `partitions`
/// partitions and waits for it to exit 0; returns what it printed.
pub async fn publish_replay(brokers: &str, topic: &str, partitions: u32, path: &Path) -> String {
    let partitions = partitions.to_string();
    let mut produce = Pulse::spawn(
        "produce",
        &[
            "produce",
            "--brokers",
            brokers,
            "--topic",
            topic,
            "--partitions",
            &partitions,
            "--replay",
            path.to_str().unwrap(),
        ],
    );
    produce.wait_success().await;
    produce.output()
}

/// Every trade on the test topic: each partition is read until it gave the
/// number of trades in `ends` (waiting for them), then on until a fetch
/// brings no trade, so extras show. Progress markers are skipped.
pub async fn read_topic(kafka: &TestKafka, ends: &BTreeMap<i32, i64>) -> Vec<Trade> {
    read_trades(kafka, ends).await.0
}

/// Each partition's offset right after its `ends[p]`-th trade: what a
/// consumer's position reaches once it processed them (markers in between
/// count as records).
pub async fn trade_ends(kafka: &TestKafka, ends: &BTreeMap<i32, i64>) -> BTreeMap<i32, i64> {
    read_trades(kafka, ends).await.1
}

async fn read_trades(
    kafka: &TestKafka,
    ends: &BTreeMap<i32, i64>,
) -> (Vec<Trade>, BTreeMap<i32, i64>) {
    let client = kafka.client().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut trades = Vec::new();
    let mut offsets = BTreeMap::new();
    for (&partition, &end) in ends {
        let mut reader = PartitionReader::open(
            &client,
            kafka.topic(),
            partition,
            None,
            FetchConfig::default(),
        )
        .await
        .unwrap();
        let mut count = 0;
        let mut after_last = 0;
        loop {
            let records = reader.fetch().await.unwrap();
            // A live producer keeps writing markers: a fetch without trades
            // is the end too.
            let done = records.iter().all(|r| is_progress_key(r.key.as_deref()));
            for record in records {
                if is_progress_key(record.key.as_deref()) {
                    continue;
                }
                trades.push(decode_trade(record.value.as_deref().unwrap()).unwrap());
                count += 1;
                if count == end {
                    after_last = record.offset + 1;
                }
            }
            if done && count >= end {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "partition {partition}: {count} of {end} trades after {WAIT:?}"
            );
        }
        offsets.insert(partition, after_last);
    }
    (trades, offsets)
}

/// The value of one series on a /metrics page (0 when absent).
pub fn series(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// The Prometheus text a `pulse … --metrics 127.0.0.1:0` serves, found
/// through the address it logs.
pub async fn scrape_metrics(pulse: &Pulse) -> String {
    let mut addr = None;
    pulse_testkit::wait_until(WAIT, "the metrics server's address is logged", || {
        addr = pulse
            .output()
            .split("serving http://")
            .nth(1)
            .and_then(|rest| rest.split("/metrics").next())
            .map(str::to_owned);
        std::future::ready(addr.is_some())
    })
    .await;
    let addr = addr.unwrap();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    assert!(
        reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200"),
        "{reply}"
    );
    reply
}

/// Asserts, from a terminated `pulse consume`'s closing `done` line, that it
/// inserted at most once per `interval_s` (plus once at shutdown).
pub fn assert_batched_inserts(output: &str, interval_s: f64) {
    let done = output
        .lines()
        .find(|l| l.contains(" done "))
        .unwrap_or_else(|| panic!("no done line in\n{output}"));
    let field = |name: &str| -> f64 {
        let value = done.split(&format!(" {name}=")).nth(1).expect(name);
        value.split(' ').next().unwrap().parse().unwrap()
    };
    let (inserts, seconds, records) = (field("inserts"), field("seconds"), field("records"));
    // A run that found nothing left to read has nothing to insert.
    let some = inserts >= 1.0 || records == 0.0;
    assert!(
        some && inserts <= seconds / interval_s + 2.0,
        "{inserts} inserts in {seconds} s: {done}"
    );
}

/// The store a `pulse consume --database db --table table` writes.
pub fn store(url: &str, database: &str, table: &str) -> WindowStore {
    WindowStore::new(ClickHouseConfig {
        url: url.to_owned(),
        database: database.to_owned(),
        table: table.to_owned(),
        ..ClickHouseConfig::default()
    })
    .unwrap()
}

/// Records processed so far by consumers writing `store`, over all partitions.
pub async fn processed(store: &WindowStore, topic: &str) -> i64 {
    match store.load_positions(topic).await {
        Ok(positions) => positions.values().map(|p| p.next_offset).sum(),
        Err(_) => 0,
    }
}

/// Waits until the stored positions reach `ends` (offsets, e.g. from
/// [`trade_ends`]) for every partition.
pub async fn wait_processed(store: &WindowStore, topic: &str, ends: &BTreeMap<i32, i64>) {
    let what = format!("the consumers' positions reach {ends:?}");
    pulse_testkit::wait_until(WAIT, &what, || async {
        let Ok(positions) = store.load_positions(topic).await else {
            return false;
        };
        ends.iter()
            .all(|(p, end)| positions.get(p).is_some_and(|pos| pos.next_offset >= *end))
    })
    .await;
}

/// A running `pulse` process, its output in a log file. Killed on drop.
pub struct Pulse {
    name: String,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Pulse {
    /// Starts `pulse <args>`; `name` labels it in failure messages.
    pub fn spawn(name: &str, args: &[&str]) -> Pulse {
        let dir = tempfile::Builder::new()
            .prefix("pulse-cli-test")
            .tempdir()
            .unwrap();
        // Names like "consume 0/3" must not become paths.
        let file_name: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let log = dir.path().join(format!("{file_name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_pulse"))
            .args(args)
            .env("PULSE_LOG", "info,rskafka=warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start pulse {args:?}: {e}"));
        Pulse {
            name: name.to_owned(),
            child,
            log,
            _dir: dir,
        }
    }

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with its output if it has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited early ({status}):\n{}", self.name, self.output());
        }
    }

    /// Waits for it to exit on its own.
    pub async fn wait(&mut self) -> ExitStatus {
        match tokio::time::timeout(WAIT, self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => panic!(
                "{} did not exit within {WAIT:?}:\n{}",
                self.name,
                self.output()
            ),
        }
    }

    /// Waits for it to exit and asserts success.
    pub async fn wait_success(&mut self) {
        let status = self.wait().await;
        assert!(
            status.success(),
            "{} failed ({status}):\n{}",
            self.name,
            self.output()
        );
    }

    /// SIGTERM, as `docker stop` or systemd send: it should flush and exit 0.
    pub async fn terminate(&mut self) {
        self.signal("-TERM");
        self.wait_success().await;
    }

    /// SIGINT, as Ctrl-C sends; returns how it exited.
    pub async fn interrupt(&mut self) -> ExitStatus {
        self.signal("-INT");
        self.wait().await
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("still running").to_string();
        let sent = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// SIGKILL: no chance to flush anything.
    pub async fn kill(&mut self) {
        self.child.start_kill().unwrap();
        let _ = self.child.wait().await;
    }
}

/// The `pulse consume` arguments for a test database and table.
pub fn consume_args<'a>(
    brokers: &'a str,
    topic: &'a str,
    url: &'a str,
    database: &'a str,
    table: &'a str,
) -> Vec<&'a str> {
    vec![
        "consume",
        "--brokers",
        brokers,
        "--topic",
        topic,
        "--clickhouse",
        url,
        "--database",
        database,
        "--table",
        table,
        "--insert-interval",
        "100ms",
    ]
}
