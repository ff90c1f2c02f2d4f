//! Helpers for the `pulse run` tests: run the real binary on a real capture,
//! find its dashboard, speak minimal HTTP to it, and compute the expected
//! windows straight from pulse-core.
#![allow(dead_code)] // each test file uses a different subset

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pulse_core::{Aggregator, AggregatorConfig, Event, Frame, Window, parse_frame};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// Busy single-symbol capture: 21 313 BTCUSDT trades, 344 windows.
pub const BTC_CAPTURE: &str =
    "binance-usdm_btcusdt@trade_2024-08-08T235416Z_2024-08-08T235959Z.jsonl.gz";
/// Five interleaved USD-M symbols whose times go backwards across symbols.
pub const ALTCOINS_CAPTURE: &str = "binance-usdm_altcoins@aggTrade_2021-04-05_cryptofeed.jsonl.gz";

/// A capture from `../shared/data`, or `None` (with the reason printed)
/// when the folder is missing outside CI.
pub fn capture(name: &str) -> Option<PathBuf> {
    let path = pulse_testkit::data_dir()?.join(name);
    assert!(path.is_file(), "{} is missing", path.display());
    Some(path)
}

/// A fresh temporary directory, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("pulse-run-test")
        .tempdir()
        .unwrap()
}

/// The windows pulse-core computes from the capture directly, in emission
/// order, with the default configuration `pulse run` uses.
pub fn expected_windows(capture: &Path) -> Vec<Window> {
    let file = std::fs::File::open(capture).unwrap();
    let lines = BufReader::new(flate2::read::GzDecoder::new(file)).lines();
    let mut agg = Aggregator::new(AggregatorConfig::default()).unwrap();
    let mut windows = Vec::new();
    let mut drain = |agg: &mut Aggregator| {
        while let Some(event) = agg.poll() {
            if let Event::Window(w) = event {
                windows.push(w);
            }
        }
    };
    for line in lines {
        if let Ok(Frame::Trade(trade)) = parse_frame(line.unwrap().as_bytes()) {
            agg.handle_trade(trade);
            drain(&mut agg);
        }
    }
    agg.flush();
    drain(&mut agg);
    windows
}

/// Reads a CSV written by `--csv` into its header and rows of fields:
/// whole lines only, so a file pulse is still writing can be read (a row
/// it has written part of shows once it ends in its `\n`).
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let whole = text.rfind('\n').map_or("", |end| &text[..end]);
    let mut lines = whole
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect());
    let header = lines.next().expect("a header row");
    (header, lines.collect())
}

/// Parses an RFC 3339 UTC time as written in the CSV into ms since the epoch.
pub fn parse_utc_ms(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
        .timestamp_millis()
}

/// Asserts that CSV `rows` hold exactly `windows`, in order, value for value.
pub fn assert_rows_match(header: &[String], rows: &[Vec<String>], windows: &[Window]) {
    assert_eq!(rows.len(), windows.len(), "one CSV row per window");
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let float = |row: &[String], name: &str| -> f64 { row[col(name)].parse().unwrap() };
    for (i, (row, w)) in rows.iter().zip(windows).enumerate() {
        let at = format!("row {i} ({} {})", w.symbol, w.start_ms);
        assert_eq!(row.len(), header.len(), "{at}: field count");
        assert_eq!(parse_utc_ms(&row[col("window_start")]), w.start_ms, "{at}");
        assert_eq!(parse_utc_ms(&row[col("window_end")]), w.end_ms, "{at}");
        assert!(
            row[col("window_start")].ends_with(".000Z"),
            "{at}: UTC with ms"
        );
        assert_eq!(row[col("symbol")], w.symbol.as_str(), "{at}");
        // Exact equality: the CSV keeps every bit of the f64.
        assert_eq!(float(row, "vwap"), w.vwap, "{at}: vwap");
        assert_eq!(float(row, "net_delta"), w.net_delta, "{at}: net_delta");
        assert_eq!(
            float(row, "buy_pressure_pct"),
            w.buy_pressure_pct,
            "{at}: buy_pressure_pct"
        );
        assert_eq!(float(row, "total_volume"), w.total_volume, "{at}");
        assert_eq!(float(row, "avg_price_1_sec"), w.avg_price_1_sec, "{at}");
        assert_eq!(row[col("trade_count")], w.trade_count.to_string(), "{at}");
        assert_eq!(row[col("signal")], w.signal.as_str(), "{at}");
        for (name, exact) in [
            ("open", w.open),
            ("high", w.high),
            ("low", w.low),
            ("close", w.close),
        ] {
            assert_eq!(row[col(name)], exact.to_string(), "{at}: {name}");
        }
        for (name, exact) in [("buy_volume", w.buy_volume), ("sell_volume", w.sell_volume)] {
            assert_eq!(row[col(name)], exact.to_string(), "{at}: {name}");
        }
        assert_eq!(row[col("first_trade_id")], w.first_trade_id.to_string());
        assert_eq!(row[col("last_trade_id")], w.last_trade_id.to_string());
        assert_eq!(row[col("version")], pulse_io::row_version(w).to_string());
    }
}

/// A `pulse` command with a quiet log.
pub fn pulse() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pulse"));
    cmd.env("PULSE_LOG", "warn")
        .env_remove("PULSE_DASHBOARD")
        .env_remove("PULSE_SYMBOLS")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// A running `pulse run` with a dashboard on a free port.
pub struct RunningPulse {
    pub child: Child,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
}

impl RunningPulse {
    /// Starts `pulse run ARGS --dashboard 127.0.0.1:0` and waits until it
    /// says where the dashboard is.
    pub async fn start(args: &[&str]) -> RunningPulse {
        RunningPulse::start_with_env(&[], args).await
    }

    /// [`start`](Self::start) with extra environment variables, e.g. a
    /// preloaded libfaketime.
    pub async fn start_with_env(env: &[(&str, &str)], args: &[&str]) -> RunningPulse {
        let mut child = pulse()
            .envs(env.iter().copied())
            .arg("run")
            .args(args)
            .args(["--dashboard", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = Arc::new(Mutex::new(String::new()));
        let mut out = child.stdout.take().unwrap();
        let sink = stdout.clone();
        tokio::spawn(async move {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text).await;
            sink.lock().unwrap().push_str(&text);
        });

        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let stderr = Arc::new(Mutex::new(String::new()));
        let find = async {
            while let Some(line) = lines.next_line().await.unwrap() {
                stderr.lock().unwrap().push_str(&format!("{line}\n"));
                if let Some(url) = line.strip_prefix("dashboard: http://") {
                    return url.trim_end_matches('/').parse::<SocketAddr>().unwrap();
                }
            }
            panic!(
                "pulse exited without a dashboard:\n{}",
                stderr.lock().unwrap()
            );
        };
        let addr = tokio::time::timeout(Duration::from_secs(30), find)
            .await
            .expect("pulse printed its dashboard address");
        let sink = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        RunningPulse {
            child,
            addr,
            stderr,
            stdout,
        }
    }

    /// Base URL of the dashboard, with a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Everything printed to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Everything printed to stdout (complete once the process exited).
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Waits until stderr says the replay finished.
    pub async fn wait_for_replay_end(&self) {
        let stderr = self.stderr.clone();
        pulse_testkit::wait_until(Duration::from_secs(120), "the replay finished", || {
            let stderr = stderr.clone();
            async move { stderr.lock().unwrap().contains("replay finished") }
        })
        .await;
    }

    /// Sends SIGINT (Ctrl-C) and returns the exit status.
    pub async fn interrupt(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("still running");
        let killed = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("pulse exits after Ctrl-C")
            .unwrap()
    }
}

/// A minimal HTTP/1.0 GET (so the body is neither chunked nor kept alive);
/// returns the status code, the lower-cased head and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut response))
        .await
        .expect("response within 30 s")
        .unwrap();
    let text = String::from_utf8(response).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// An open `GET /events` stream, read one server-sent event at a time.
pub struct EventStream {
    reader: tokio::io::BufReader<tokio::net::TcpStream>,
}

impl EventStream {
    pub async fn open(addr: SocketAddr) -> EventStream {
        Self::open_path(addr, "/events").await
    }

    /// `path` is `/events` with a query, e.g. `/events?symbol=BTCUSDT`.
    pub async fn open_path(addr: SocketAddr, path: &str) -> EventStream {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request =
            format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut reader = tokio::io::BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        let head = head.to_ascii_lowercase();
        assert!(
            head.starts_with("http/1.") && head.contains(" 200 "),
            "{head}"
        );
        assert!(head.contains("content-type: text/event-stream"), "{head}");
        EventStream { reader }
    }

    /// The next event's name and data, skipping keep-alive comments.
    pub async fn next(&mut self) -> (String, String) {
        self.try_next().await.expect("event stream closed")
    }

    /// Every event until the server ends the stream.
    pub async fn rest(&mut self) -> Vec<(String, String)> {
        let mut events = Vec::new();
        while let Some(event) = self.try_next().await {
            events.push(event);
        }
        events
    }

    /// The next event, or `None` once the stream has ended.
    async fn try_next(&mut self) -> Option<(String, String)> {
        let (mut name, mut data) = (String::new(), String::new());
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(60), self.reader.read_line(&mut line))
                .await
                .expect("an event within 60 s")
                .unwrap();
            if n == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if let Some(v) = line.strip_prefix("event:") {
                name = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            } else if line.is_empty() && !data.is_empty() {
                return Some((name, data));
            }
        }
    }
}
