//! Replay sources over the recorded files: JSONL (plain and gzip) and dump
//! CSV / csv.gz / zip files built from the same frames.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use pulse_core::{Symbol, Trade, TradeKind};
use pulse_io::{Metrics, ReplayOptions, SourceError, open_replay};
use pulse_testkit::data_dir;
use pulse_testkit::fake_binance::{assert_same_trades, load_trades};

const ALTCOINS: &str = "binance-usdm_altcoins@aggTrade_2021-04-05_cryptofeed.jsonl.gz";
const BTC_USDM: &str = "binance-usdm_btcusdt@trade_2024-08-08T235416Z_2024-08-08T235959Z.jsonl.gz";
const BTC_SPOT: &str = "binance-spot_btcusdt@trade_2024-08-08T235415Z_2024-08-09T000505Z.jsonl.gz";

fn recorded_files() -> Option<Vec<PathBuf>> {
    let dir = data_dir()?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read the data directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".jsonl.gz"))
        .collect();
    files.sort();
    Some(files)
}

/// The trade payloads of a capture, read with serde_json alone.
fn payloads(path: &Path) -> Vec<serde_json::Value> {
    let reader = BufReader::new(MultiGzDecoder::new(std::fs::File::open(path).unwrap()));
    reader
        .lines()
        .map(|l| l.unwrap())
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            v.get("data").cloned().unwrap_or(v)
        })
        .filter(|d| matches!(d["e"].as_str(), Some("trade" | "aggTrade")))
        .collect()
}

/// The id `pulse` tracks: `a` for aggTrades, `t` for trades.
fn id_of(d: &serde_json::Value) -> u64 {
    let key = if d["e"] == "aggTrade" { "a" } else { "t" };
    d[key].as_u64().unwrap()
}

/// A capture's text, decompressed.
fn decompressed(capture: &Path) -> Vec<u8> {
    let mut text = Vec::new();
    std::io::Read::read_to_end(
        &mut MultiGzDecoder::new(std::fs::File::open(capture).unwrap()),
        &mut text,
    )
    .unwrap();
    text
}

/// A named pipe `name` in `dir`.
#[cfg(unix)]
fn fifo(dir: &Path, name: &str) -> PathBuf {
    let fifo = dir.join(name);
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    fifo
}

async fn replay_all(path: &Path, options: ReplayOptions, metrics: &Metrics) -> Vec<Trade> {
    let mut source = open_replay(path, options, metrics.clone()).expect("open replay");
    assert!(!source.is_live());
    let mut trades = Vec::new();
    while source.next_trades(&mut trades).await.expect("replay") {}
    let mut after_end = Vec::new();
    assert!(
        !source.next_trades(&mut after_end).await.unwrap(),
        "ended stays ended"
    );
    trades
}

#[tokio::test]
async fn every_recorded_file_replays_with_its_trade_count() {
    let Some(files) = recorded_files() else {
        return;
    };
    assert_eq!(files.len(), 8, "{files:?}");
    for path in files {
        let expected = payloads(&path);
        let mut want: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for d in &expected {
            want.entry(d["s"].as_str().unwrap().to_string())
                .or_default()
                .push(id_of(d));
        }
        let metrics = Metrics::new();
        let trades = replay_all(&path, ReplayOptions::default(), &metrics).await;
        let mut got: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for t in &trades {
            got.entry(t.symbol.to_string()).or_default().push(t.id);
        }
        assert_eq!(trades.len(), expected.len(), "{}", path.display());
        assert_eq!(got, want, "{}", path.display());
        assert_eq!(metrics.rejected_total(), 0, "{}", path.display());
    }
}

#[tokio::test]
async fn plain_and_gzip_captures_replay_alike() {
    let Some(dir) = data_dir() else { return };
    let gz = dir.join(ALTCOINS);
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("altcoins.jsonl");
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut MultiGzDecoder::new(std::fs::File::open(&gz).unwrap()),
        &mut text,
    )
    .unwrap();
    std::fs::write(&plain, &text).unwrap();
    let metrics = Metrics::new();
    let from_gz = replay_all(&gz, ReplayOptions::default(), &metrics).await;
    let from_plain = replay_all(&plain, ReplayOptions::default(), &metrics).await;
    assert_eq!(from_gz, from_plain);
    assert_eq!(from_gz.len(), 574);
}

/// A zip at `path` holding `text` as `entry`.
fn write_zip(path: &Path, entry: &str, text: &str) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    zip.start_file(entry, zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(text.as_bytes()).unwrap();
    zip.finish().unwrap();
}

/// What a dump row holds of one frame.
#[derive(Clone, Copy)]
struct Row<'a> {
    id: u64,
    price: &'a str,
    quantity: &'a str,
    first: u64,
    last: u64,
    time: i64,
    maker: bool,
}

/// A dump CSV of the frames in `capture`: `header` then a `row` each.
fn dump_of(capture: &Path, header: &str, row: impl Fn(&Row<'_>) -> String) -> String {
    let mut csv = header.to_string();
    for d in payloads(capture) {
        let id = id_of(&d);
        let (first, last) = match d["e"].as_str() {
            Some("aggTrade") => (d["f"].as_u64().unwrap(), d["l"].as_u64().unwrap()),
            _ => (id, id),
        };
        csv.push_str(&row(&Row {
            id,
            price: d["p"].as_str().unwrap(),
            quantity: d["q"].as_str().unwrap(),
            first,
            last,
            time: d["T"].as_i64().unwrap(),
            maker: d["m"].as_bool().unwrap(),
        }));
    }
    csv
}

/// Spot's flags.
fn capitalised(flag: bool) -> &'static str {
    if flag { "True" } else { "False" }
}

/// A Binance aggTrades dump CSV of the frames in `capture`, futures style
/// (7 columns, `true`/`false`, ms) or spot style (8 columns,
/// `True`/`False`, µs as since 2025).
fn dump_csv(capture: &Path, spot: bool, header: bool) -> String {
    let columns =
        "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker";
    let header = match (header, spot) {
        (false, _) => String::new(),
        (true, false) => format!("{columns}\n"),
        (true, true) => format!("{columns},is_best_match\r\n"),
    };
    dump_of(capture, &header, |r| {
        let Row {
            id,
            price: p,
            quantity: q,
            first,
            last,
            time,
            maker,
        } = *r;
        if spot {
            let (micros, m) = (time * 1000, capitalised(maker));
            format!("{id},{p},{q},{first},{last},{micros},{m},True\r\n")
        } else {
            format!("{id},{p},{q},{first},{last},{time},{maker}\n")
        }
    })
}

#[tokio::test]
async fn dump_csv_gzip_and_zip_files_replay_the_frames() {
    let Some(dir) = data_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    for (capture, spot, header) in [
        (BTC_USDM, false, true),
        (BTC_USDM, false, false),
        (BTC_SPOT, true, true),
    ] {
        let capture = dir.join(capture);
        // What the frames say, through the JSON parser; the CSV path is a different one.
        let expected = load_trades(&capture).unwrap();
        let csv = dump_csv(&capture, spot, header);
        let name = "BTCUSDT-aggTrades-2024-08-08";

        let plain = tmp.path().join(format!("{name}.csv"));
        std::fs::write(&plain, &csv).unwrap();

        let gz = tmp.path().join(format!("{name}.csv.gz"));
        let mut enc = GzEncoder::new(std::fs::File::create(&gz).unwrap(), Compression::fast());
        enc.write_all(csv.as_bytes()).unwrap();
        enc.finish().unwrap();

        let zip_path = tmp.path().join(format!("{name}.zip"));
        write_zip(&zip_path, &format!("{name}.csv"), &csv);

        // A file whose name does not say the symbol, given explicitly.
        let unnamed = tmp.path().join("dump.csv");
        std::fs::write(&unnamed, &csv).unwrap();
        let explicit = ReplayOptions {
            symbol: Some(Symbol::new("BTCUSDT").unwrap()),
            ..ReplayOptions::default()
        };

        for (path, options) in [
            (&plain, ReplayOptions::default()),
            (&gz, ReplayOptions::default()),
            (&zip_path, ReplayOptions::default()),
            (&unnamed, explicit),
        ] {
            let metrics = Metrics::new();
            let got = replay_all(path, options, &metrics).await;
            assert_eq!(got.len(), expected.len(), "{}", path.display());
            assert_same_trades(&expected, &got);
            assert!(got.iter().all(|t| t.event_time_ms == t.trade_time_ms));
        }
    }
}

/// A Binance trades dump of the `@trade` frames in `capture`: futures (6
/// columns, a header, ms) or spot (7 columns, `True`/`False`, µs).
fn trades_dump_csv(capture: &Path, spot: bool) -> String {
    let header = if spot {
        ""
    } else {
        "id,price,qty,quote_qty,time,is_buyer_maker\n"
    };
    dump_of(capture, header, |r| {
        let Row {
            id,
            price: p,
            quantity: q,
            time,
            maker,
            ..
        } = *r;
        // Not read by pulse; Binance's own is p·q.
        let quote = "1.5";
        if spot {
            let (micros, m) = (time * 1000, capitalised(maker));
            format!("{id},{p},{q},{quote},{micros},{m},True\n")
        } else {
            format!("{id},{p},{q},{quote},{time},{maker}\n")
        }
    })
}

#[tokio::test]
async fn trades_dumps_replay_the_frames_as_single_trades() {
    let Some(dir) = data_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    for (capture, spot) in [(BTC_USDM, false), (BTC_SPOT, true)] {
        let capture = dir.join(capture);
        let expected = load_trades(&capture).unwrap();
        let csv = trades_dump_csv(&capture, spot);
        let name = "BTCUSDT-trades-2024-08-08";
        let plain = tmp.path().join(format!("{name}.csv"));
        std::fs::write(&plain, &csv).unwrap();
        let zip_path = tmp.path().join(format!("{name}.zip"));
        write_zip(&zip_path, &format!("{name}.csv"), &csv);
        for path in [&plain, &zip_path] {
            let metrics = Metrics::new();
            let got = replay_all(path, ReplayOptions::default(), &metrics).await;
            assert_eq!(got.len(), expected.len(), "{}", path.display());
            assert_same_trades(&expected, &got);
            assert!(
                got.iter().all(|t| t.kind == TradeKind::Trade
                    && (t.first_trade_id, t.last_trade_id) == (t.id, t.id)),
                "{}",
                path.display()
            );
        }
    }
}

#[tokio::test]
async fn malformed_lines_are_counted_and_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let good = [
        r#"{"stream":"neousdt@aggTrade","data":{"e":"aggTrade","E":1617647781282,"a":26159457,"s":"NEOUSDT","p":"55.090","q":"0.11","f":31005036,"l":31005036,"T":1617647781127,"m":true}}"#,
        r#"{"e":"aggTrade","E":1617647781300,"a":26159458,"s":"NEOUSDT","p":"55.100","q":"1.00","f":31005037,"l":31005038,"T":1617647781290,"m":false}"#,
    ];
    let lines = [
        r#"{"result":null,"id":1}"#,
        good[0],
        "",
        "not json at all",
        r#"{"e":"aggTrade","E":1,"a":1,"s":"NEOUSDT","p":"55.0","f":1,"l":1,"T":1,"m":true}"#,
        "\u{FFFD}\u{FFFD}",
        r#"{"e":"depthUpdate","E":1}"#,
        good[1],
        r#"{"e":"aggTrade","E":1,"a":2,"s":"NEOUSDT","p":"-1","q":"1","f":1,"l":1,"T":1,"m":true}"#,
    ];
    let path = tmp.path().join("broken.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    let metrics = Metrics::new();
    let got = replay_all(&path, ReplayOptions::default(), &metrics).await;
    let ids: Vec<u64> = got.iter().map(|t| t.id).collect();
    assert_eq!(ids, vec![26159457, 26159458]);
    let text = metrics.encode();
    for (reason, n) in [
        ("json", 2),
        ("missing_field", 1),
        ("unsupported_event", 1),
        ("not_positive", 1),
        ("utf8", 0),
        ("decimal", 0),
    ] {
        let line = format!("pulse_frames_rejected_total{{reason=\"{reason}\"}} {n}");
        assert!(text.contains(&line), "{line} in\n{text}");
    }

    // CSV: a bad row between good ones.
    let csv = tmp.path().join("NEOUSDT-aggTrades-2021-04-05.csv");
    std::fs::write(
        &csv,
        "1,55.09,0.11,5,5,1617647781127,true\n1,2,3\n2,55.1,1,6,7,1617647781290,False\n",
    )
    .unwrap();
    let metrics = Metrics::new();
    let got = replay_all(&csv, ReplayOptions::default(), &metrics).await;
    assert_eq!(got.iter().map(|t| t.id).collect::<Vec<_>>(), vec![1, 2]);
    assert!(
        metrics
            .encode()
            .contains("pulse_frames_rejected_total{reason=\"csv_columns\"} 1")
    );
}

#[tokio::test]
async fn a_cut_short_gzip_file_replays_its_whole_lines_then_says_so() {
    let Some(dir) = data_dir() else { return };
    let gz = std::fs::read(dir.join(BTC_USDM)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("btcusdt.jsonl.gz");
    std::fs::write(&path, &gz[..gz.len() / 2]).unwrap();
    // What a tolerant reader gets out of the first half: its whole lines.
    let mut text = Vec::new();
    let _ = std::io::Read::read_to_end(
        &mut MultiGzDecoder::new(std::fs::File::open(&path).unwrap()),
        &mut text,
    );
    let whole = text.iter().filter(|&&b| b == b'\n').count();
    assert!(whole > 1_000, "{whole}");

    let mut source = open_replay(&path, ReplayOptions::default(), Metrics::new()).unwrap();
    let mut trades = Vec::new();
    let err = loop {
        match source.next_trades(&mut trades).await {
            Ok(true) => {}
            Ok(false) => panic!("a cut-short file must not end like a whole one"),
            Err(e) => break e,
        }
    };
    assert_eq!(trades.len(), whole);
    let shown = err.to_string();
    assert!(
        shown.contains(&format!("ends mid-stream after {whole} whole lines")),
        "{shown}"
    );
}

#[tokio::test]
async fn concatenated_captures_padded_with_zeros_replay_whole() {
    let Some(dir) = data_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut file = std::fs::read(dir.join(BTC_USDM)).unwrap();
    file.extend(std::fs::read(dir.join(BTC_SPOT)).unwrap());
    file.extend([0; 4096]);
    let path = tmp.path().join("both.jsonl.gz");
    std::fs::write(&path, &file).unwrap();
    let metrics = Metrics::new();
    let trades = replay_all(&path, ReplayOptions::default(), &metrics).await;
    let want = payloads(&dir.join(BTC_USDM)).len() + payloads(&dir.join(BTC_SPOT)).len();
    assert_eq!(trades.len(), want);
    assert_eq!(metrics.rejected_total(), 0);

    // Anything but zeros after the last member may be data: an error.
    file.extend(b"{\"e\":\"trade\"}\n");
    std::fs::write(&path, &file).unwrap();
    let mut source = open_replay(&path, ReplayOptions::default(), Metrics::new()).unwrap();
    let mut trades = Vec::new();
    let err = loop {
        match source.next_trades(&mut trades).await {
            Ok(true) => {}
            Ok(false) => panic!("bytes after the last member must not end like a whole file"),
            Err(e) => break e,
        }
    };
    assert_eq!(trades.len(), want);
    assert!(err.to_string().contains("not gzip data"), "{err}");
}

/// Files as other tools write them: a UTF-8 byte order mark first (Excel,
/// Notepad, PowerShell), also at the start of each file concatenated;
/// gzip without `.gz` in the name, or plain text with it; a month's zip of
/// daily CSVs with macOS metadata. Every trade is replayed and nothing is
/// counted malformed.
#[tokio::test]
async fn byte_order_marks_and_unnamed_gzip_lose_nothing() {
    let Some(dir) = data_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let capture = dir.join(BTC_USDM);
    let expected = load_trades(&capture).unwrap();
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let text = decompressed(&capture);

    let jsonl = tmp.path().join("bom.jsonl");
    std::fs::write(&jsonl, [BOM, &text].concat()).unwrap();
    let csv_text = dump_csv(&capture, false, true);
    let csv = tmp.path().join("BTCUSDT-aggTrades-2024-08-08.csv");
    std::fs::write(&csv, [BOM, csv_text.as_bytes()].concat()).unwrap();
    let csv_gz = tmp.path().join("BTCUSDT-aggTrades-2024-08-09.csv.gz");
    let mut enc = GzEncoder::new(std::fs::File::create(&csv_gz).unwrap(), Compression::fast());
    enc.write_all(&[BOM, csv_text.as_bytes()].concat()).unwrap();
    enc.finish().unwrap();
    let unnamed_gzip = tmp.path().join("capture.jsonl");
    std::fs::copy(&capture, &unnamed_gzip).unwrap();
    let plain_named_gzip = tmp.path().join("plain.jsonl.gz");
    std::fs::write(&plain_named_gzip, &text).unwrap();

    // Two halves, each as its own file would be: a BOM first.
    let half = text.len() / 2;
    let half = half + text[half..].iter().position(|&b| b == b'\n').unwrap() + 1;
    let (first, second) = text.split_at(half);
    let members = tmp.path().join("two-files.jsonl.gz");
    let mut file = Vec::new();
    for part in [first, second] {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(&[BOM, part].concat()).unwrap();
        file.extend(enc.finish().unwrap());
    }
    std::fs::write(&members, file).unwrap();

    // A month's zip, named by nothing; its daily CSVs name the symbol.
    let rows: Vec<&str> = csv_text.lines().collect();
    let (header, rows) = rows.split_first().unwrap();
    let (day1, day2) = rows.split_at(rows.len() / 2);
    let month = tmp.path().join("august.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&month).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    for (name, body) in [
        (
            "__MACOSX/._BTCUSDT-aggTrades-2024-08-01.csv",
            "\0\u{5}\u{16}\u{7}".to_string(),
        ),
        ("BTCUSDT-aggTrades-2024-08-02.csv", day2.join("\n")),
        ("._BTCUSDT-aggTrades-2024-08-01.csv", "\0\u{5}".to_string()),
        (
            "BTCUSDT-aggTrades-2024-08-01.csv",
            format!("{header}\n{}\n", day1.join("\n")),
        ),
    ] {
        zip.start_file(name, options).unwrap();
        zip.write_all(&[BOM, body.as_bytes()].concat()).unwrap();
    }
    zip.finish().unwrap();

    for path in [
        &jsonl,
        &csv,
        &csv_gz,
        &unnamed_gzip,
        &plain_named_gzip,
        &members,
        &month,
    ] {
        let metrics = Metrics::new();
        let got = replay_all(path, ReplayOptions::default(), &metrics).await;
        assert_eq!(got.len(), expected.len(), "{}", path.display());
        assert_same_trades(&expected, &got);
        assert_eq!(metrics.rejected_total(), 0, "{}", path.display());
    }
}

/// Files whose names say nothing (no extension, `.log`, `.txt.gz`, `.bin`)
/// are read by what their first bytes hold; bytes that say nothing are
/// refused at open, naming the extensions that would.
#[tokio::test]
async fn a_file_named_by_nothing_is_read_by_its_content() {
    let Some(dir) = data_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let capture = dir.join(BTC_USDM);
    let expected = load_trades(&capture).unwrap();
    let text = decompressed(&capture);

    let gzip = tmp.path().join("capture");
    std::fs::copy(&capture, &gzip).unwrap();
    let plain = tmp.path().join("capture.log");
    std::fs::write(&plain, &text).unwrap();
    let txt_gz = tmp.path().join("capture.txt.gz");
    std::fs::copy(&capture, &txt_gz).unwrap();
    let csv_text = dump_csv(&capture, false, true);
    let csv = tmp.path().join("dump.dat");
    std::fs::write(&csv, &csv_text).unwrap();
    let zip_path = tmp.path().join("dumps.bin");
    write_zip(&zip_path, "BTCUSDT-aggTrades-2024-08-08.csv", &csv_text);

    let btc = Symbol::new("BTCUSDT").unwrap();
    for (path, symbol) in [
        (&gzip, None),
        (&plain, None),
        (&txt_gz, None),
        (&csv, Some(btc)),
        (&zip_path, None),
    ] {
        let metrics = Metrics::new();
        let options = ReplayOptions {
            symbol,
            ..ReplayOptions::default()
        };
        let got = replay_all(path, options, &metrics).await;
        assert_eq!(got.len(), expected.len(), "{}", path.display());
        assert_same_trades(&expected, &got);
        assert_eq!(metrics.rejected_total(), 0, "{}", path.display());
    }

    // A dump CSV still needs its symbol from somewhere.
    let open_err = |path: &Path| {
        open_replay(path, ReplayOptions::default(), Metrics::new())
            .err()
            .expect("fails at open")
            .to_string()
    };
    let err = open_err(&csv);
    assert!(
        err.to_string().contains("does not name its symbol"),
        "{err}"
    );
    let binary = tmp.path().join("data.bin");
    std::fs::write(&binary, b"\x00\x01\x02 not a capture").unwrap();
    let err = open_err(&binary);
    assert!(
        err.contains("cannot tell the format of") && err.contains(".jsonl"),
        "{err}"
    );
    // A compression pulse does not read is named, whatever the file's name.
    for (name, magic, kind) in [
        (
            "capture.jsonl.xz",
            &b"\xfd7zXZ\x00rest"[..],
            "xz-compressed",
        ),
        (
            "capture.zst",
            &b"\x28\xb5\x2f\xfdrest"[..],
            "zstd-compressed",
        ),
        ("capture", &b"BZh91AY&SY"[..], "bzip2-compressed"),
        (
            "capture.jsonl.lz4",
            &b"\x04\x22\x4d\x18rest"[..],
            "lz4-compressed",
        ),
    ] {
        let path = tmp.path().join(name);
        std::fs::write(&path, magic).unwrap();
        let err = open_err(&path);
        assert!(err.contains(kind) && err.contains("gzip"), "{name}: {err}");
    }
}

/// A pipe cannot be read twice: the bytes that tell its format are read
/// once, a few at a time if that is how they come, and kept for the replay;
/// a pipe named for the format is still looked into (gzip named `.jsonl`).
#[cfg(unix)]
#[tokio::test]
async fn a_pipe_is_read_by_its_content_once() {
    let Some(dir) = data_dir() else { return };
    let capture = dir.join(BTC_USDM);
    let expected = load_trades(&capture).unwrap();
    let bytes = std::fs::read(&capture).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for name in ["capture", "named.jsonl"] {
        let fifo = fifo(tmp.path(), name);
        let writer = {
            let (fifo, bytes) = (fifo.clone(), bytes.clone());
            std::thread::spawn(move || {
                let mut pipe = std::fs::File::create(&fifo).unwrap();
                // Less than a gzip header first: the format waits for more.
                pipe.write_all(&bytes[..3]).unwrap();
                pipe.flush().unwrap();
                std::thread::sleep(std::time::Duration::from_millis(100));
                pipe.write_all(&bytes[3..]).unwrap();
            })
        };
        let metrics = Metrics::new();
        let got = replay_all(&fifo, ReplayOptions::default(), &metrics).await;
        writer.join().unwrap();
        assert_eq!(got.len(), expected.len(), "{name}");
        assert_same_trades(&expected, &got);
        assert_eq!(metrics.rejected_total(), 0, "{name}");
    }
}

/// What a pipe's writer sent is replayed while the writer pauses: its
/// lines do not wait for a full block or for the end.
#[cfg(unix)]
#[tokio::test]
async fn a_pipe_hands_on_what_came_while_its_writer_pauses() {
    let Some(dir) = data_dir() else { return };
    let capture = dir.join(BTC_USDM);
    let expected = load_trades(&capture).unwrap();
    let text = decompressed(&capture);
    // The first 100 lines, then a pause until the test has their trades.
    let cut = text
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(99)
        .map(|(i, _)| i + 1)
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let fifo = fifo(tmp.path(), "live.jsonl");
    let (resume, paused) = std::sync::mpsc::channel::<()>();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut pipe = std::fs::File::create(&fifo).unwrap();
            pipe.write_all(&text[..cut]).unwrap();
            pipe.flush().unwrap();
            paused.recv().unwrap();
            pipe.write_all(&text[cut..]).unwrap();
        })
    };
    let mut source = open_replay(&fifo, ReplayOptions::default(), Metrics::new()).unwrap();
    let mut got = Vec::new();
    let first = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while got.len() < 100 {
            assert!(source.next_trades(&mut got).await.unwrap(), "ended early");
        }
    })
    .await;
    assert!(
        first.is_ok(),
        "only {} trades while the writer paused",
        got.len()
    );
    assert_eq!(got.len(), 100, "no more than was written");
    resume.send(()).unwrap();
    while source.next_trades(&mut got).await.unwrap() {}
    writer.join().unwrap();
    assert_same_trades(&expected, &got);
}

/// Data pulse cannot read is refused by what it is, not read as lines of
/// binary.
#[tokio::test]
async fn other_compressed_data_is_named_not_read_as_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let zstd = tmp.path().join("capture.jsonl");
    std::fs::write(&zstd, b"\x28\xb5\x2f\xfd\x04\x58rest of a zstd frame").unwrap();
    let mut source = open_replay(&zstd, ReplayOptions::default(), Metrics::new()).unwrap();
    let err = source.next_trades(&mut Vec::new()).await.unwrap_err();
    assert!(
        err.to_string().contains("the file is zstd-compressed"),
        "{err}"
    );
}

/// A paced replay appends to `out`: trades the caller left there are not
/// news, so it still waits until a trade of its own is due.
#[tokio::test]
async fn a_paced_replay_waits_for_its_own_trades_whatever_out_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("two.jsonl");
    let frame = |a: u64, t: i64| {
        format!(
            r#"{{"e":"aggTrade","E":{t},"a":{a},"s":"BTCUSDT","p":"61180.10","q":"0.500","f":{a},"l":{a},"T":{t},"m":true}}"#
        )
    };
    let text = format!(
        "{}\n{}\n",
        frame(1, 1_723_161_502_000),
        frame(2, 1_723_161_502_300)
    );
    std::fs::write(&path, text).unwrap();
    let options = ReplayOptions {
        speed: Some(1.0),
        ..ReplayOptions::default()
    };
    let mut source = open_replay(&path, options, Metrics::new()).unwrap();
    let mut out = Vec::new();
    assert!(source.next_trades(&mut out).await.unwrap());
    assert_eq!(out.iter().map(|t| t.id).collect::<Vec<_>>(), [1]);
    // Trade 2 is due 300 ms later: the call waits for it.
    assert!(source.next_trades(&mut out).await.unwrap());
    assert_eq!(out.iter().map(|t| t.id).collect::<Vec<_>>(), [1, 2]);
}

#[tokio::test]
async fn unusable_files_fail_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let no_symbol = tmp.path().join("dump.csv");
    std::fs::write(&no_symbol, "").unwrap();
    let empty_zip = tmp.path().join("BTCUSDT-aggTrades-2024-08-08.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&empty_zip).unwrap());
    zip.start_file("README.txt", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.finish().unwrap();
    let two_symbols = tmp.path().join("dumps.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&two_symbols).unwrap());
    for name in [
        "BTCUSDT-aggTrades-2024-08-08.csv",
        "ETHUSDT-aggTrades-2024-08-08.csv",
    ] {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
    }
    zip.finish().unwrap();
    let btc_month = tmp.path().join("ETHUSDT-aggTrades-2024-08.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&btc_month).unwrap());
    zip.start_file(
        "BTCUSDT-aggTrades-2024-08-01.csv",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    zip.finish().unwrap();
    let jsonl = tmp.path().join("ok.jsonl");
    std::fs::write(&jsonl, "").unwrap();
    let cases: Vec<(PathBuf, ReplayOptions, &str)> = vec![
        (
            btc_month,
            ReplayOptions::default(),
            "is named for ETHUSDT but its CSVs for BTCUSDT",
        ),
        (
            two_symbols,
            ReplayOptions::default(),
            "several symbols (BTCUSDT, ETHUSDT)",
        ),
        (
            tmp.path().join("missing.jsonl"),
            ReplayOptions::default(),
            "Io",
        ),
        (tmp.path().join("notes.txt"), ReplayOptions::default(), "Io"),
        (no_symbol, ReplayOptions::default(), "symbol"),
        (empty_zip, ReplayOptions::default(), "no .csv"),
        (
            jsonl.clone(),
            ReplayOptions {
                speed: Some(0.0),
                ..ReplayOptions::default()
            },
            "speed",
        ),
        (
            jsonl,
            ReplayOptions {
                speed: Some(f64::NAN),
                ..ReplayOptions::default()
            },
            "speed",
        ),
    ];
    for (path, options, want) in cases {
        let err = open_replay(&path, options, Metrics::new())
            .err()
            .expect("fails");
        let shown = match &err {
            SourceError::Io { .. } => "Io".to_string(),
            other => other.to_string(),
        };
        assert!(shown.contains(want), "{}: {shown}", path.display());
    }
}
