//! Opening a capture as text lines, plain or gzip.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use flate2::read::MultiGzDecoder;

/// Opens a plain or gzip (`.gz`, any case) text file for buffered reading.
/// Concatenated gzip members are read as one stream.
pub(crate) fn open_text(path: &Path) -> io::Result<Box<dyn BufRead + Send>> {
    let file = File::open(path)?;
    let gzip = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    Ok(if gzip {
        Box::new(BufReader::new(MultiGzDecoder::new(file)))
    } else {
        Box::new(BufReader::new(file))
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    fn lines(path: &Path) -> Vec<String> {
        open_text(path)
            .unwrap()
            .lines()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn reads_plain_and_multi_member_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.jsonl");
        std::fs::write(&plain, "one\ntwo\n").unwrap();
        assert_eq!(lines(&plain), ["one", "two"]);

        let gz = dir.path().join("a.jsonl.GZ");
        let mut bytes = Vec::new();
        for part in ["one\n", "two\n"] {
            let mut enc = GzEncoder::new(Vec::new(), Compression::default());
            enc.write_all(part.as_bytes()).unwrap();
            bytes.extend(enc.finish().unwrap());
        }
        std::fs::write(&gz, bytes).unwrap();
        assert_eq!(lines(&gz), ["one", "two"]);
    }
}
