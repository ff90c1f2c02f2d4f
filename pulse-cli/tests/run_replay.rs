//! `pulse run --replay` on real captures, without a dashboard: exit code,
//! CSV rows against pulse-core's own computation, terminal lines, summary,
//! and byte-for-byte determinism.

mod run_support;

use std::io::{BufRead, BufReader};
use std::path::Path;

use run_support::{
    ALTCOINS_CAPTURE, BTC_CAPTURE, assert_rows_match, capture, expected_windows, parse_utc_ms,
    pulse, read_csv, temp_dir,
};

/// Runs `pulse run --replay CAPTURE --csv OUT --dashboard off` to the end.
async fn replay(capture: &Path, csv: &Path) -> (String, String) {
    let out = pulse()
        .args(["run", "--dashboard", "off", "--replay"])
        .arg(capture)
        .arg("--csv")
        .arg(csv)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "pulse run failed: {stderr}");
    (stdout, stderr)
}

/// The lines of a `.jsonl.gz` capture.
fn frames_of(capture: &Path) -> impl Iterator<Item = String> {
    let file = std::fs::File::open(capture).unwrap();
    BufRead::lines(BufReader::new(flate2::read::GzDecoder::new(file))).map(Result::unwrap)
}

#[tokio::test]
async fn replay_writes_the_windows_pulse_core_computes() {
    let Some(capture) = capture(BTC_CAPTURE) else {
        return;
    };
    let dir = temp_dir();
    let csv = dir.path().join("windows.csv");
    let (stdout, stderr) = replay(&capture, &csv).await;

    let expected = expected_windows(&capture);
    assert_eq!(expected.len(), 344, "the capture spans 344 busy seconds");
    let (header, rows) = read_csv(&csv);
    assert_eq!(
        header[..9].join(","),
        "window_start,window_end,vwap,net_delta,buy_pressure_pct,total_volume,trade_count,\
         avg_price_1_sec,signal"
    );
    assert_rows_match(&header, &rows, &expected);
    assert_eq!(rows[0][0], "2024-08-08T23:54:16.000Z");

    // One terminal line per window, in order, then the summary on stderr.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), expected.len());
    assert!(
        lines[0].starts_with("23:54:16 BTCUSDT") && lines[0].ends_with(expected[0].signal.as_str()),
        "{}",
        lines[0]
    );
    assert!(
        stderr.contains("pulse run: 21313 trades → 344 windows (BTCUSDT 344)"),
        "{stderr}"
    );
    assert!(stderr.contains("replay finished"), "{stderr}");
}

#[tokio::test]
async fn replay_of_interleaved_symbols_matches_pulse_core() {
    let Some(capture) = capture(ALTCOINS_CAPTURE) else {
        return;
    };
    let dir = temp_dir();
    let csv = dir.path().join("windows.csv");
    let (_, stderr) = replay(&capture, &csv).await;
    let expected = expected_windows(&capture);
    let (header, rows) = read_csv(&csv);
    assert_rows_match(&header, &rows, &expected);
    let symbols: std::collections::BTreeSet<&str> =
        expected.iter().map(|w| w.symbol.as_str()).collect();
    assert_eq!(symbols.len(), 5, "{symbols:?}");
    for symbol in symbols {
        assert!(stderr.contains(symbol), "{symbol} in the summary: {stderr}");
    }
}

#[tokio::test]
async fn replay_is_byte_for_byte_deterministic() {
    let Some(capture) = capture(BTC_CAPTURE) else {
        return;
    };
    let dir = temp_dir();
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    let (stdout_a, _) = replay(&capture, &a).await;
    let (stdout_b, _) = replay(&capture, &b).await;
    let (bytes_a, bytes_b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert!(bytes_a.len() > 10_000);
    assert!(bytes_a == bytes_b, "the two CSV files differ");
    assert_eq!(stdout_a, stdout_b, "terminal lines differ");
}

/// `--csv -` writes the same bytes to standard output, with no table
/// mixed in; the summary stays on standard error.
#[tokio::test]
async fn csv_to_standard_output_is_the_file_alone() {
    let Some(capture) = capture(ALTCOINS_CAPTURE) else {
        return;
    };
    let dir = temp_dir();
    let file = dir.path().join("windows.csv");
    replay(&capture, &file).await;
    let (stdout, stderr) = replay(&capture, Path::new("-")).await;
    assert_eq!(stdout.as_bytes(), std::fs::read(&file).unwrap());
    assert!(stderr.contains("574 trades → 268 windows"), "{stderr}");
    assert!(!stderr.contains("csv:"), "{stderr}");
    assert!(!dir.path().join("-").exists() && !Path::new("-").exists());
}

/// `--replay -` reads standard input, gzip or plain, and writes the same
/// rows as the file itself; a zip cannot be read from a pipe and says so.
#[tokio::test]
async fn replay_reads_standard_input_like_the_file() {
    let Some(capture) = capture(BTC_CAPTURE) else {
        return;
    };
    let dir = temp_dir();
    let from_file = dir.path().join("file.csv");
    replay(&capture, &from_file).await;
    let gzip = std::fs::read(&capture).unwrap();
    let plain = frames_of(&capture)
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes();
    let zip = b"PK\x03\x04 the rest of a zip".to_vec();
    for (name, input) in [("gzip", gzip), ("plain", plain)] {
        let csv = dir.path().join(format!("{name}.csv"));
        let (code, stderr) = replay_stdin(&csv, input).await;
        assert_eq!(code, Some(0), "{name}: {stderr}");
        assert!(
            std::fs::read(&from_file).unwrap() == std::fs::read(&csv).unwrap(),
            "{name} on standard input wrote other rows than the file"
        );
    }
    let (code, stderr) = replay_stdin(&dir.path().join("zip.csv"), zip).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("standard input is a zip archive, which cannot be read from a pipe"),
        "{stderr}"
    );
}

/// Ctrl-C while `--replay -` waits for its writer's first bytes stops at
/// once, cleanly.
#[tokio::test]
async fn ctrl_c_while_standard_input_is_silent_stops_at_once() {
    let mut child = pulse()
        .args(["run", "--dashboard", "off", "-q", "--replay", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The writer stays open and silent; pulse has its signal handler long
    // before a second.
    let _stdin = child.stdin.take().unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let pid = child.id().expect("still waiting for its input");
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait())
        .await
        .expect("pulse stops without waiting for the writer")
        .unwrap();
    assert!(status.success(), "{status}");
}

/// `pulse run --replay - --csv OUT` fed `input` on standard input: its
/// exit code and stderr.
async fn replay_stdin(csv: &Path, input: Vec<u8>) -> (Option<i32>, String) {
    use tokio::io::AsyncWriteExt;
    let mut child = pulse()
        .args(["run", "--dashboard", "off", "-q", "--replay", "-", "--csv"])
        .arg(csv)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // A refused zip closes the pipe early: the write may fail then.
    let _ = stdin.write_all(&input).await;
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    (out.status.code(), String::from_utf8(out.stderr).unwrap())
}

/// One frame whose time is a day off costs that trade only, also the very
/// first: the rows are those of the file without it, and the summary names
/// it.
#[tokio::test]
async fn a_wrong_timestamp_costs_only_its_own_trade() {
    let Some(capture) = capture(BTC_CAPTURE) else {
        return;
    };
    let dir = temp_dir();
    let frames: Vec<String> = frames_of(&capture).collect();
    for wrong in [0, frames.len() / 3] {
        let clean: Vec<&String> = frames
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != wrong)
            .map(|(_, f)| f)
            .collect();
        let without = dir.path().join("without.jsonl");
        std::fs::write(&without, lines_of(&clean)).unwrap();
        let mut frame: serde_json::Value = serde_json::from_str(&frames[wrong]).unwrap();
        let data = frame.get_mut("data").unwrap();
        for key in ["T", "E"] {
            let day_later = data[key].as_i64().unwrap() + 86_400_000;
            data[key] = day_later.into();
        }
        let mut corrupted_frames = frames.clone();
        corrupted_frames[wrong] = frame.to_string();
        let corrupted = dir.path().join("corrupted.jsonl");
        let lines = lines_of(&corrupted_frames.iter().collect::<Vec<_>>());
        std::fs::write(&corrupted, lines).unwrap();
        let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
        let (_, stderr) = replay(&corrupted, &a).await;
        replay(&without, &b).await;
        assert!(
            std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
            "frame {wrong}: the wrong timestamp changed other rows"
        );
        assert!(
            stderr.contains("0 late")
                && stderr.contains("1 with a time far ahead that the next trades refuted"),
            "frame {wrong}: {stderr}"
        );
    }
}

/// A busy second of a cheap coin trades more units than one quantity can
/// hold (92 billion): its row is still written, exact.
#[tokio::test]
async fn a_second_of_more_than_92_billion_units_still_has_its_row() {
    let dir = temp_dir();
    let file = dir.path().join("pepe.jsonl");
    let frame = |id: u64, t: i64, p: &str, q: &str, m: bool| {
        format!(
            r#"{{"e":"trade","E":{t},"s":"PEPEUSDT","t":{id},"p":"{p}","q":"{q}","T":{t},"m":{m}}}"#
        )
    };
    let lines = [
        frame(1, 1_723_161_256_000, "0.00000800", "50000000000.00", false),
        frame(2, 1_723_161_256_500, "0.00000801", "50000000000.00", true),
        frame(3, 1_723_161_257_000, "0.00000801", "1.00", true),
    ];
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let csv = dir.path().join("out.csv");
    let (_, stderr) = replay(&file, &csv).await;
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 3, "{text}\n{stderr}");
    assert_eq!(
        rows[1],
        "2024-08-08T23:54:16.000Z,2024-08-08T23:54:17.000Z,0.000008005,0,50,100000000000,2,\
         0.000008005,NEUTRAL,PEPEUSDT,0.000008,0.00000801,0.000008,0.00000801,50000000000,\
         50000000000,1,2,2"
    );
    assert!(!stderr.contains("without a row"), "{stderr}");
}

fn lines_of(lines: &[&String]) -> String {
    let mut text = String::new();
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    text
}

#[tokio::test]
async fn a_busy_dashboard_port_fails_early_and_says_what_to_do() {
    let Some(capture) = capture(ALTCOINS_CAPTURE) else {
        return;
    };
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = pulse()
        .args(["run", "--dashboard", &addr, "--replay"])
        .arg(&capture)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert!(stderr.contains(&addr), "{stderr}");
    assert!(stderr.contains("--dashboard off"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing processed");
}

/// A gzip file cut short replays its whole lines, writes their windows,
/// prints the summary and then fails, saying where the file ends.
#[tokio::test]
async fn a_cut_short_file_keeps_what_it_read_and_fails_saying_so() {
    let Some(capture) = capture(BTC_CAPTURE) else {
        return;
    };
    let dir = temp_dir();
    let gz = std::fs::read(&capture).unwrap();
    let cut = dir.path().join("btcusdt.jsonl.gz");
    std::fs::write(&cut, &gz[..gz.len() / 3]).unwrap();
    let csv = dir.path().join("cut.csv");
    let out = pulse()
        .args(["run", "--dashboard", "off", "-q", "--replay"])
        .arg(&cut)
        .arg("--csv")
        .arg(&csv)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let rows = read_csv(&csv).1.len();
    assert!(rows > 10, "{rows} rows\n{stderr}");
    assert!(
        stderr.contains(&format!("windows (BTCUSDT {rows}) in "))
            && stderr.contains("; stopped by the error below"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("csv: {rows} rows in ")),
        "{stderr}"
    );
    assert!(
        stderr.contains("the file ends mid-stream after "),
        "{stderr}"
    );

    // A file that is not there fails before the dashboard is announced.
    let out = pulse()
        .args(["run", "--dashboard", "127.0.0.1:0", "--replay"])
        .arg(dir.path().join("missing.jsonl"))
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("opening the replay file"), "{stderr}");
    assert!(!stderr.contains("dashboard: http"), "{stderr}");
}

/// Malformed lines are skipped and counted on the summary line; a file of
/// nothing else is an error, not an empty success.
#[tokio::test]
async fn malformed_lines_are_counted_and_a_file_of_only_them_fails() {
    let Some(capture) = capture(BTC_CAPTURE) else {
        return;
    };
    let dir = temp_dir();
    let frames: Vec<String> = frames_of(&capture).take(2).collect();
    let mixed = dir.path().join("mixed.jsonl");
    let text = format!("{}\nnot json\n{}\n{{\"e\":\n", frames[0], frames[1]);
    std::fs::write(&mixed, text).unwrap();
    let csv = dir.path().join("mixed.csv");
    let (_, stderr) = replay(&mixed, &csv).await;
    assert!(
        stderr.contains("pulse run: 2 trades → ") && stderr.contains(", 2 malformed skipped; "),
        "{stderr}"
    );

    let garbage = dir.path().join("garbage.jsonl");
    std::fs::write(&garbage, "not json\n{\"e\":\nhello\n").unwrap();
    let out = pulse()
        .args(["run", "--dashboard", "off", "-q", "--replay"])
        .arg(&garbage)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "no line of {} is a trade: 3 malformed",
            garbage.display()
        )),
        "{stderr}"
    );
}

/// A trade that comes after its window closed (a file written out of order)
/// re-emits the window with it: the newest version of every window is the
/// window of the capture in order, so nothing is lost.
#[tokio::test]
async fn late_trades_in_a_file_correct_their_windows() {
    let Some(capture) = capture(BTC_CAPTURE) else {
        return;
    };
    let dir = temp_dir();
    let mut frames: Vec<String> = frames_of(&capture).collect();
    // Every 97th frame arrives 1,000 frames later: up to 38 s of trades
    // here, inside the 60 s a closed window stays correctable.
    let mut moved = 0;
    for i in (0..frames.len() - 1_000).step_by(97).rev() {
        let frame = frames.remove(i);
        frames.insert(i + 1_000, frame);
        moved += 1;
    }
    let shuffled = dir.path().join("late.jsonl");
    std::fs::write(&shuffled, frames.join("\n")).unwrap();
    let csv = dir.path().join("late.csv");
    let (stdout, stderr) = replay(&shuffled, &csv).await;

    let (header, rows) = read_csv(&csv);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let version = |row: &Vec<String>| row[col("version")].parse::<u64>().unwrap();
    // The newest row of each window, in window order.
    let mut newest = std::collections::BTreeMap::new();
    for row in rows.iter() {
        let key = parse_utc_ms(&row[col("window_start")]);
        let old = newest.insert(key, row.clone());
        assert!(
            old.is_none_or(|old| version(&old) < version(row)),
            "{row:?}"
        );
    }
    let newest: Vec<Vec<String>> = newest.into_values().collect();
    assert_rows_match(&header, &newest, &expected_windows(&capture));

    // A correction per late trade, those moved past their window's close
    // (in the busiest seconds 1,000 frames are not enough to be late),
    // except where the window had no other trade: that is a first row.
    let late: usize = stderr
        .split(" late (")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no late count in {stderr}"));
    assert!(
        late > moved / 2 && late <= moved,
        "{late} of {moved}: {stderr}"
    );
    let corrections = rows.len() - newest.len();
    assert!(corrections > 0 && corrections <= late, "{corrections}");
    // Each window counted once on the summary line, corrections apart.
    assert!(
        stderr.contains("21313 trades → 344 windows (BTCUSDT 344)")
            && stderr.contains(&format!(
                "{late} late ({late} in re-emitted windows), 0 dup"
            )),
        "{stderr}"
    );
    assert_eq!(stdout.matches("(corrected)").count(), corrections);
}

/// A trade older than the 60 s a closed window stays correctable is in no
/// row: the summary and a warning say so, not only the late count.
#[tokio::test]
async fn trades_too_late_to_correct_are_named_on_the_summary() {
    let Some(capture) = capture(BTC_CAPTURE) else {
        return;
    };
    let dir = temp_dir();
    let mut frames: Vec<String> = frames_of(&capture).collect();
    // The capture spans minutes: a frame from its start sent last.
    let frame = frames.remove(100);
    frames.push(frame);
    let shuffled = dir.path().join("too-late.jsonl");
    std::fs::write(&shuffled, frames.join("\n")).unwrap();
    let csv = dir.path().join("too-late.csv");
    let (_, stderr) = replay(&shuffled, &csv).await;

    assert!(
        stderr.contains("21313 trades → 344 windows (BTCUSDT 344)")
            && stderr.contains("; 1 late (1 too late to correct, in no row), 0 duplicates, 1 gaps (each filled later)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("late trade too late to correct its window: counted, in no row"),
        "{stderr}"
    );
    // One row per window, nothing re-emitted; all trades but one are in them.
    let (header, rows) = read_csv(&csv);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(rows.len(), 344);
    let stored: u64 = rows
        .iter()
        .map(|row| row[col("trade_count")].parse::<u64>().unwrap())
        .sum();
    assert_eq!(stored, 21_312);
}

/// `--symbols` with `--replay` replays only those symbols: their windows
/// are the ones of the whole file, and the others have none.
#[tokio::test]
async fn symbols_pick_what_a_replay_replays() {
    let Some(capture) = capture(ALTCOINS_CAPTURE) else {
        return;
    };
    let dir = temp_dir();
    let keep = ["NEOUSDT", "BATUSDT"];
    let only_kept = |windows: Vec<pulse_core::Window>| -> Vec<pulse_core::Window> {
        let mut kept: Vec<_> = windows
            .into_iter()
            .filter(|w| keep.contains(&w.symbol.as_str()))
            .collect();
        kept.sort_by_key(|w| (w.symbol, w.start_ms));
        kept
    };
    let expected = only_kept(expected_windows(&capture));
    for symbols in ["NEOUSDT,BATUSDT", "ALL,-CHRUSDT,-CTKUSDT,-SANDUSDT"] {
        let csv = dir.path().join("kept.csv");
        let out = replay_of(&capture, symbols)
            .env("PULSE_LOG", "info")
            .arg("--csv")
            .arg(&csv)
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(out.status.success(), "{symbols}: {stderr}");
        let (header, mut rows) = read_csv(&csv);
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        rows.sort_by_key(|r| (r[col("symbol")].clone(), r[col("window_start")].clone()));
        assert_rows_match(&header, &rows, &expected);
        // The file's 574 trades: 266 of the two kept, 308 of the others.
        assert!(
            stderr.contains("pulse run: 266 trades"),
            "{symbols}: {stderr}"
        );
        assert!(
            stderr.contains("trades=308")
                && stderr.contains("skipped the trades of symbols not asked for"),
            "{symbols}: {stderr}"
        );
    }
}

/// `pulse run --dashboard off -q --symbols SYMBOLS --replay CAPTURE`.
fn replay_of(capture: &Path, symbols: &str) -> tokio::process::Command {
    let mut cmd = pulse();
    cmd.args([
        "run",
        "--dashboard",
        "off",
        "-q",
        "--symbols",
        symbols,
        "--replay",
    ])
    .arg(capture);
    cmd
}

/// A symbol asked for that the file lacks is named in a warning, with the
/// symbols the file has, instead of silently giving no windows for it.
#[tokio::test]
async fn asking_for_a_symbol_the_file_lacks_says_which_it_has() {
    let Some(capture) = capture(ALTCOINS_CAPTURE) else {
        return;
    };
    let out = replay_of(&capture, "NEOUSDT,XRPUSDT")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("the file has no trades of symbols --symbols asked for")
            && stderr.contains("missing=XRPUSDT ")
            && stderr.contains("in_file=BATUSDT,CHRUSDT,CTKUSDT,NEOUSDT,SANDUSDT"),
        "{stderr}"
    );
    assert!(
        stderr.contains("pulse run: 180 trades → 74 windows (NEOUSDT 74)"),
        "{stderr}"
    );
}
