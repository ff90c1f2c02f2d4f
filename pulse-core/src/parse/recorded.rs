//! The recorded frames in `../shared/data` (or `$PULSE_DATA_DIR`), for the
//! parsers' differential tests. Read once per test binary.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::OnceLock;

/// One recorded frame and the capture it came from.
pub(super) struct Recorded {
    pub(super) capture: String,
    pub(super) frame: Vec<u8>,
}

/// Every line of every `.jsonl.gz` capture, in file-name order. Empty, with
/// a printed reason, when the data is absent; panics under `CI=true`.
pub(super) fn frames() -> &'static [Recorded] {
    static FRAMES: OnceLock<Vec<Recorded>> = OnceLock::new();
    FRAMES.get_or_init(load)
}

fn load() -> Vec<Recorded> {
    let dir = std::env::var_os("PULSE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        assert!(!ci, "no data at {}", dir.display());
        // To stderr itself: libtest captures eprintln! of passing tests.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "skipping test: no data at {} (set PULSE_DATA_DIR)",
            dir.display()
        );
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".jsonl.gz"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let capture = path.file_name().unwrap().to_string_lossy().into_owned();
        let gz = flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap());
        for line in std::io::BufReader::new(gz).split(b'\n') {
            let frame = line.unwrap();
            if !frame.is_empty() {
                out.push(Recorded {
                    capture: capture.clone(),
                    frame,
                });
            }
        }
    }
    out
}
