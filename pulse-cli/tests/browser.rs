//! The dashboard in a real browser: Debian's headless Chromium driven over
//! WebDriver (chromedriver + fantoccini) while `pulse run` replays a real
//! capture at 20x (about 17 s, so a slow browser start still opens the
//! page mid-replay). Checks that the charts draw, that what the page shows
//! equals the `--csv` rows, that the symbol picker and the URL's `#SYMBOL`
//! work, that a stopped run says so, and saves `docs/dashboard.png`.
//!
//! Skips, saying why, when chromium or chromedriver is missing, unless
//! `CI=true`. Install: `apt-get install chromium chromium-driver`.
//! `PULSE_CHROMIUM` and `PULSE_CHROMEDRIVER` override the binaries.

mod run_support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use pulse_testkit::{is_ci, wait_until};
use run_support::{ALTCOINS_CAPTURE, BTC_CAPTURE, RunningPulse, capture, read_csv, temp_dir};
use serde_json::{Value, json};

/// Chromium flags that work as root in a container with no display or
/// network beyond loopback.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1040",
    "--hide-scrollbars",
];

/// `$var` if set, else the first of `candidates` that exists.
fn binary(var: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// Chromium and chromedriver, or `None` after printing why the test skips.
fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let chromium = binary(
        "PULSE_CHROMIUM",
        &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
    );
    let driver = binary("PULSE_CHROMEDRIVER", &["/usr/bin/chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ => {
            let why = "chromium and chromedriver are not installed \
                       (apt-get install chromium chromium-driver, or set PULSE_CHROMIUM and PULSE_CHROMEDRIVER)";
            assert!(!is_ci(), "{why}, and CI=true makes that a failure");
            pulse_testkit::skip(&format!("browser test: {why}"));
            None
        }
    }
}

/// A chromedriver on a free loopback port, killed on drop.
struct ChromeDriver {
    _child: tokio::process::Child,
    url: String,
}

impl ChromeDriver {
    fn start(binary: &Path, log: &Path) -> ChromeDriver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tokio::process::Command::new(binary)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        ChromeDriver {
            _child: child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A new browser session, retried until chromedriver listens.
    async fn session(&self, chromium: &Path, profile: &Path) -> Client {
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&self.url)
                .await
            {
                Ok(client) => return client,
                // Not listening yet: poll, as wait_until would.
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no browser session from chromedriver: {e}"),
            }
        }
    }
}

/// Runs `script` (a function body) and returns its value.
async fn js(client: &Client, script: &str) -> Value {
    client
        .execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

/// Waits until `script` returns true in the page.
async fn wait_for(client: &Client, within: Duration, what: &str, script: &'static str) {
    wait_until(within, what, || {
        let client = client.clone();
        async move { js(&client, script).await == Value::Bool(true) }
    })
    .await;
}

/// Non-transparent pixels of each chart canvas.
const INKED_PIXELS: &str = r#"
    return [...document.querySelectorAll('.chart canvas')].map((c) => {
        const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let inked = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) inked++;
        return inked;
    });
"#;

fn column(header: &[String], name: &str) -> usize {
    header.iter().position(|h| h == name).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_renders_the_replay_and_matches_the_csv() {
    let Some((chromium, chromedriver)) = browser_binaries() else {
        return;
    };
    let (Some(btc), Some(altcoins)) = (capture(BTC_CAPTURE), capture(ALTCOINS_CAPTURE)) else {
        return;
    };
    let dir = temp_dir();
    let csv = dir.path().join("windows.csv");
    let mut pulse = RunningPulse::start(&[
        "--replay",
        btc.to_str().unwrap(),
        "--speed",
        "20",
        "--csv",
        csv.to_str().unwrap(),
        "--keep-serving",
        "-q",
    ])
    .await;
    let driver = ChromeDriver::start(&chromedriver, &dir.path().join("chromedriver.log"));
    let client = driver.session(&chromium, &dir.path().join("profile")).await;
    client.goto(&pulse.url()).await.unwrap();

    // Charts exist and windows arrive pushed while the replay runs.
    wait_for(
        &client,
        Duration::from_secs(60),
        "four charts and a first window",
        "return document.querySelectorAll('.chart canvas').length === 4 \
         && Number(document.body.dataset.windows) > 0",
    )
    .await;
    let first_count = js(&client, "return Number(document.body.dataset.windows)").await;
    wait_for(
        &client,
        Duration::from_secs(120),
        "the replay to finish on the page",
        "return document.body.dataset.state === 'ended'",
    )
    .await;

    // Every window is on the page: the latest values equal the last CSV row,
    // and the VWAP series drawn equals the CSV column, value for value.
    let (header, rows) = read_csv(&csv);
    assert_eq!(rows.len(), 344);
    assert!(
        first_count.as_u64().unwrap() < rows.len() as u64,
        "the page was open before the replay ended ({first_count} windows at first)"
    );
    // The status event marks the page ended at once; the windows that came
    // just before it are drawn on the next animation frame.
    wait_for(
        &client,
        Duration::from_secs(10),
        "all 344 windows drawn",
        "return Number(document.body.dataset.windows) === 344",
    )
    .await;
    let latest = js(
        &client,
        "return Object.assign({}, document.getElementById('latest').dataset)",
    )
    .await;
    let last = rows.last().unwrap();
    let field = |name: &str| last[column(&header, name)].clone();
    let number = |v: &Value| v.as_str().unwrap().parse::<f64>().unwrap();
    assert_eq!(latest["windowStart"], field("window_start"));
    assert_eq!(latest["symbol"], field("symbol"));
    assert_eq!(latest["signal"], field("signal"));
    assert_eq!(latest["tradeCount"], field("trade_count"));
    for (key, name) in [
        ("vwap", "vwap"),
        ("netDelta", "net_delta"),
        ("buyPressurePct", "buy_pressure_pct"),
        ("totalVolume", "total_volume"),
        ("avgPrice", "avg_price_1_sec"),
    ] {
        assert_eq!(
            number(&latest[key]),
            field(name).parse::<f64>().unwrap(),
            "{key}"
        );
    }
    let signal_text = js(
        &client,
        "return document.getElementById('signal').textContent",
    )
    .await;
    assert_eq!(signal_text, field("signal"), "the signal is shown as text");
    let trades_text = js(
        &client,
        "return document.getElementById('stat-trades').textContent",
    )
    .await;
    assert_eq!(trades_text, field("trade_count"));
    let drawn_vwap = js(&client, "return pulseDashboard.charts.price.data[1]").await;
    let csv_vwap: Vec<f64> = rows
        .iter()
        .map(|r| r[column(&header, "vwap")].parse().unwrap())
        .collect();
    let drawn_vwap: Vec<f64> = drawn_vwap
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(drawn_vwap, csv_vwap, "the price chart plots the CSV's VWAP");

    // Each chart has drawn something beyond its empty frame.
    let inked = js(&client, INKED_PIXELS).await;
    let inked: Vec<u64> = inked
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(inked.len(), 4);
    assert!(
        inked.iter().all(|&n| n > 2_000),
        "inked pixels per chart: {inked:?}"
    );

    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("dashboard.png"), &png).unwrap();
    assert!(pulse.interrupt().await.success());

    // Several symbols: the picker lists them and switches the whole page.
    let csv = dir.path().join("altcoins.csv");
    let mut pulse = RunningPulse::start(&[
        "--replay",
        altcoins.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
        "--keep-serving",
        "-q",
    ])
    .await;
    pulse.wait_for_replay_end().await;
    client.goto(&pulse.url()).await.unwrap();
    wait_for(
        &client,
        Duration::from_secs(30),
        "the picker to list five symbols",
        "return !document.getElementById('picker').hidden \
         && document.getElementById('symbol').options.length === 5",
    )
    .await;
    let (header, rows) = read_csv(&csv);
    for symbol in ["SANDUSDT", "CHRUSDT"] {
        client
            .find(Locator::Css("#symbol"))
            .await
            .unwrap()
            .select_by_value(symbol)
            .await
            .unwrap();
        let ours: Vec<&Vec<String>> = rows
            .iter()
            .filter(|r| r[column(&header, "symbol")] == symbol)
            .collect();
        let last = ours.last().unwrap();
        wait_until(Duration::from_secs(10), "the page to switch symbol", || {
            let client = client.clone();
            async move {
                let latest = js(
                    &client,
                    "return document.getElementById('latest').dataset.symbol",
                )
                .await;
                latest == symbol
            }
        })
        .await;
        let latest = js(
            &client,
            "return Object.assign({}, document.getElementById('latest').dataset, \
             {windows: document.body.dataset.windows})",
        )
        .await;
        assert_eq!(latest["windows"], ours.len().to_string(), "{symbol}");
        assert_eq!(latest["windowStart"], last[column(&header, "window_start")]);
        assert_eq!(
            number(&latest["vwap"]),
            last[column(&header, "vwap")].parse::<f64>().unwrap()
        );
        assert_eq!(latest["signal"], last[column(&header, "signal")]);
    }

    // Editing the URL's #SYMBOL switches too.
    js(&client, "location.hash = '#NEOUSDT'; return null").await;
    wait_for(
        &client,
        Duration::from_secs(10),
        "the page to follow the edited URL",
        "return document.getElementById('latest').dataset.symbol === 'NEOUSDT' \
         && document.getElementById('symbol').value === 'NEOUSDT'",
    )
    .await;
    assert!(pulse.interrupt().await.success());

    // A symbol named in the URL before its first window is shown once it
    // has one; meanwhile another is. At real speed CHRUSDT comes seconds in.
    let mut pulse =
        RunningPulse::start(&["--replay", altcoins.to_str().unwrap(), "--speed", "1", "-q"]).await;
    client
        .goto(&format!("{}#CHRUSDT", pulse.url()))
        .await
        .unwrap();
    wait_for(
        &client,
        Duration::from_secs(60),
        "the symbol the URL names",
        "return document.getElementById('latest').dataset.symbol === 'CHRUSDT' \
         && location.hash === '#CHRUSDT'",
    )
    .await;
    // Stopped mid-replay: the page says so, not that it is reconnecting.
    assert!(pulse.interrupt().await.success());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let conn = js(
        &client,
        "return document.getElementById('conn').textContent",
    )
    .await;
    assert_eq!(conn, "stopped");
    // Off the dead server first: closing on its page fails with its error.
    client.goto("about:blank").await.unwrap();
    client.close().await.unwrap();
}
