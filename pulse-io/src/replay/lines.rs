//! Opening a replay file as text lines: plain, gzip, or the CSVs inside a zip.
//!
//! A text file's first bytes say what it holds, whatever its name: gzip
//! named `.jsonl` is decompressed, plain text named `.gz` is read as it is
//! (both with a warning), and other compressed data is refused by name
//! rather than read as lines of binary, every one malformed. `-` is
//! standard input, read like a file that does not name its format.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Cursor, Read, Seek};
use std::path::Path;

use pulse_core::Symbol;
use zip::ZipArchive;

use super::gzip::{self, GzipMembers};
use super::{ReplayFormat, symbol_from_file_name};
use crate::SourceError;

/// The most of a file read to tell its format.
const HEAD_BYTES: usize = 4096;
/// Enough first bytes for every magic number [`Content`] knows.
const MAGIC_BYTES: usize = 6;

/// The path that means standard input.
pub(crate) const STDIN: &str = "-";

/// A replay file opened, with its first bytes read to tell what it holds.
/// A pipe cannot be read twice, so those bytes are kept and read first.
pub(crate) struct Opened {
    file: File,
    head: Vec<u8>,
    /// A regular file, which a zip reader can seek in.
    regular: bool,
    path: String,
}

impl Opened {
    /// Opens `path` (standard input for `-`) and, unless its name already
    /// told the format (`named`), reads its first bytes: up to 4 KiB of a
    /// regular file; of a pipe, only until they tell the format, so a slow
    /// writer does not hold the start up.
    pub(crate) fn open(path: &Path, named: bool) -> io::Result<Opened> {
        let file = if path == Path::new(STDIN) {
            stdin_file()?
        } else {
            File::open(path)?
        };
        // Windows cannot stat a pipe: not regular either way.
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        let mut opened = Opened {
            file,
            head: Vec::new(),
            regular,
            path: shown(path),
        };
        if !named {
            opened.read_head()?;
        }
        Ok(opened)
    }

    fn read_head(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; HEAD_BYTES];
        loop {
            let room = HEAD_BYTES - self.head.len();
            let n = match self.file.read(&mut chunk[..room]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.head.extend_from_slice(&chunk[..n]);
            let complete = n == 0 || self.head.len() == HEAD_BYTES;
            if complete || (!self.regular && sniff(&self.head, false) != Sniff::NeedMore) {
                return Ok(());
            }
        }
    }

    /// The format the first bytes say: a zip is a dump archive, gzip is
    /// looked into, and text whose first line starts with `{` is JSONL,
    /// other text a dump CSV. `None` when they do not tell (other
    /// compressed data, or not text).
    pub(crate) fn format(&self) -> Option<ReplayFormat> {
        match sniff(&self.head, true) {
            Sniff::Format(format) => Some(format),
            Sniff::Unknown | Sniff::NeedMore => None,
        }
    }

    /// What the first bytes are when not text or gzip, e.g.
    /// `xz-compressed`, for a message saying why a file cannot be read.
    pub(crate) fn other_content(&self) -> Option<&'static str> {
        match Content::of(&self.head) {
            Content::Other(kind) => Some(kind),
            Content::Gzip | Content::Text => None,
        }
    }
}

/// How a path is named in messages.
pub(crate) fn shown(path: &Path) -> String {
    if path == Path::new(STDIN) {
        "standard input".into()
    } else {
        path.display().to_string()
    }
}

/// Standard input as a file of its own, read without Rust's buffer.
#[cfg(unix)]
fn stdin_file() -> io::Result<File> {
    use std::os::fd::AsFd;
    Ok(File::from(io::stdin().as_fd().try_clone_to_owned()?))
}

#[cfg(windows)]
fn stdin_file() -> io::Result<File> {
    use std::os::windows::io::AsHandle;
    Ok(File::from(io::stdin().as_handle().try_clone_to_owned()?))
}

/// An opened replay file, ready to be read on a blocking thread.
pub(crate) enum Input {
    /// A plain or gzip text file.
    Text {
        file: File,
        /// Its first bytes, already read.
        head: Vec<u8>,
        /// A pipe: its lines are handed on as they come, not by the block.
        streaming: bool,
        /// The name ends in `.gz`.
        named_gzip: bool,
        path: String,
    },
    /// A zip archive and its CSV entries, in name order.
    Zip {
        archive: ZipArchive<File>,
        entries: Vec<usize>,
        /// The symbol the CSVs are named after, when they name one.
        symbol: Option<Symbol>,
    },
}

impl Input {
    /// Opens the archive of a zip now, so a zip without a CSV fails at
    /// start-up rather than on the reader thread.
    pub(crate) fn new(opened: Opened, format: ReplayFormat) -> Result<Input, SourceError> {
        let Opened {
            mut file,
            head,
            regular,
            path: shown,
        } = opened;
        let io_err = |source| SourceError::Io {
            path: shown.clone(),
            source,
        };
        match format {
            ReplayFormat::Jsonl { gzip } | ReplayFormat::Csv { gzip } => Ok(Input::Text {
                file,
                head,
                streaming: !regular,
                named_gzip: gzip,
                path: shown,
            }),
            ReplayFormat::Zip => {
                if !regular {
                    return Err(SourceError::Config(format!(
                        "{shown} is a zip archive, which cannot be read from a pipe: save it to a file first"
                    )));
                }
                file.rewind().map_err(io_err)?;
                let archive = ZipArchive::new(file)
                    .map_err(|e| io_err(io::Error::new(io::ErrorKind::InvalidData, e)))?;
                let entries = csv_entries(&archive);
                if entries.is_empty() {
                    return Err(SourceError::Config(format!("{shown} holds no .csv file")));
                }
                let named: BTreeSet<Symbol> = entries
                    .iter()
                    .filter_map(|&i| archive.name_for_index(i))
                    .filter_map(|name| symbol_from_file_name(Path::new(name)))
                    .collect();
                if named.len() > 1 {
                    let named: Vec<&str> = named.iter().map(Symbol::as_str).collect();
                    return Err(SourceError::Config(format!(
                        "{shown} holds dumps of several symbols ({}): replay them one at a time",
                        named.join(", ")
                    )));
                }
                if entries.len() > 1 {
                    tracing::info!(path = %shown, entries = entries.len(), "replaying every CSV in the zip, in name order");
                }
                Ok(Input::Zip {
                    archive,
                    entries,
                    symbol: named.into_iter().next(),
                })
            }
        }
    }

    /// True for a pipe, whose writer may be slow: a replay of it hands
    /// each line on as soon as it is read.
    pub(crate) fn is_streaming(&self) -> bool {
        matches!(
            self,
            Input::Text {
                streaming: true,
                ..
            }
        )
    }

    /// The symbol the zip's CSVs are named after (`BTCUSDT-aggTrades-….csv`),
    /// when they name one.
    pub(crate) fn named_symbol(&self) -> Option<Symbol> {
        match self {
            Input::Text { .. } => None,
            Input::Zip { symbol, .. } => *symbol,
        }
    }

    /// Hands the decompressed text to `read`, once per CSV of a zip (with
    /// the CSV's name). It reads in large blocks, so a plain file is read
    /// straight into them, with no buffer between.
    pub(crate) fn read_with(
        self,
        mut read: impl FnMut(&mut dyn Read, Option<&str>) -> io::Result<()>,
    ) -> io::Result<()> {
        match self {
            Input::Text {
                mut file,
                mut head,
                named_gzip,
                path,
                ..
            } => {
                // A file whose name told the format was not read at open:
                // its first bytes still say what it holds.
                if head.len() < MAGIC_BYTES {
                    let missing = (MAGIC_BYTES - head.len()) as u64;
                    file.by_ref().take(missing).read_to_end(&mut head)?;
                }
                let content = Content::of(&head);
                let lone_magic_byte = gzip::MAGIC.starts_with(&head);
                // The bytes looked at come first again.
                let mut text = Cursor::new(head).chain(file);
                match content {
                    Content::Gzip => {
                        if !named_gzip {
                            tracing::warn!(%path, "the file is gzip-compressed though its name does not end in .gz; decompressing it");
                        }
                        read(&mut GzipMembers::new(text, path), None)
                    }
                    Content::Other(kind) => Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the file is {kind}, not text or gzip: decompress it first"),
                    )),
                    // Empty or a lone first magic byte: the gzip reader
                    // says what is wrong with such a .gz.
                    Content::Text if named_gzip && lone_magic_byte => {
                        read(&mut GzipMembers::new(text, path), None)
                    }
                    Content::Text => {
                        if named_gzip {
                            tracing::warn!(%path, "the file's name ends in .gz but it is not gzip; reading it as plain text");
                        }
                        read(&mut text, None)
                    }
                }
            }
            Input::Zip {
                mut archive,
                entries,
                ..
            } => {
                for entry in entries {
                    let mut csv = archive
                        .by_index(entry)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    let name = csv.name().to_owned();
                    read(&mut csv, Some(&name))?;
                }
                Ok(())
            }
        }
    }
}

/// The indices of a zip's CSV files in name order, leaving out the
/// metadata macOS adds (`__MACOSX/`, `._name.csv`).
fn csv_entries(archive: &ZipArchive<File>) -> Vec<usize> {
    let mut csvs: Vec<(&str, usize)> = (0..archive.len())
        .filter_map(|i| archive.name_for_index(i).map(|name| (name, i)))
        .filter(|(name, _)| {
            let base = name.rsplit('/').next().unwrap_or(name);
            name.to_ascii_lowercase().ends_with(".csv")
                && !name.starts_with("__MACOSX/")
                && !base.starts_with("._")
        })
        .collect();
    csvs.sort();
    csvs.into_iter().map(|(_, i)| i).collect()
}

/// What a file's first bytes say of its format.
#[derive(Debug, PartialEq, Eq)]
enum Sniff {
    Format(ReplayFormat),
    /// Not text, gzip or zip.
    Unknown,
    /// Not enough yet: more may come (`complete` was false).
    NeedMore,
}

/// The format `head` says, `complete` when no more bytes will come.
fn sniff(head: &[u8], complete: bool) -> Sniff {
    if !complete && head.len() < MAGIC_BYTES {
        return Sniff::NeedMore;
    }
    let (gzip, text) = match Content::of(head) {
        Content::Text => (false, head.to_vec()),
        Content::Gzip => {
            // The head may be cut short: keep what inflates before the cut.
            let mut text = Vec::new();
            let mut decoder = flate2::read::GzDecoder::new(head).take(HEAD_BYTES as u64);
            let mut chunk = [0u8; 512];
            while let Ok(n @ 1..) = decoder.read(&mut chunk) {
                text.extend_from_slice(&chunk[..n]);
            }
            (true, text)
        }
        Content::Other(kind) if kind.starts_with("a zip") => {
            return Sniff::Format(ReplayFormat::Zip);
        }
        Content::Other(_) => return Sniff::Unknown,
    };
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&text);
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Sniff::Format(ReplayFormat::Jsonl { gzip }),
        Some(b) if b.is_ascii_alphanumeric() => Sniff::Format(ReplayFormat::Csv { gzip }),
        Some(_) => Sniff::Unknown,
        None if complete => Sniff::Format(ReplayFormat::Jsonl { gzip }),
        None => Sniff::NeedMore,
    }
}

/// What a text file's first bytes say it holds.
#[derive(Debug, PartialEq, Eq)]
enum Content {
    Gzip,
    /// Compressed or archived in a way read only from a file's name, if at all.
    Other(&'static str),
    Text,
}

impl Content {
    fn of(head: &[u8]) -> Content {
        const OTHERS: [(&[u8], &str); 6] = [
            (b"PK\x03\x04", "a zip archive (name it .zip)"),
            (b"PK\x05\x06", "an empty zip archive"),
            (b"\x28\xb5\x2f\xfd", "zstd-compressed"),
            (b"BZh", "bzip2-compressed"),
            (b"\xfd7zXZ\x00", "xz-compressed"),
            (b"\x04\x22\x4d\x18", "lz4-compressed"),
        ];
        if head.starts_with(&gzip::MAGIC) {
            return Content::Gzip;
        }
        OTHERS
            .iter()
            .find(|(magic, _)| head.starts_with(magic))
            .map_or(Content::Text, |&(_, kind)| Content::Other(kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_tells_its_format_once_it_can() {
        let jsonl = Sniff::Format(ReplayFormat::Jsonl { gzip: false });
        let csv = Sniff::Format(ReplayFormat::Csv { gzip: false });
        let cases: [(&[u8], bool, Sniff); 8] = [
            (b"{\"e\"", false, Sniff::NeedMore),
            (b"\n\n  \n\n  ", false, Sniff::NeedMore),
            (b"\n\n  \n\n  ", true, jsonl),
            (
                b"\xEF\xBB\xBF\n{\"stream\"",
                false,
                Sniff::Format(ReplayFormat::Jsonl { gzip: false }),
            ),
            (b"agg_trade_id,price", false, csv),
            (
                b"PK\x03\x04\x14\x00",
                false,
                Sniff::Format(ReplayFormat::Zip),
            ),
            (b"\x28\xb5\x2f\xfd\x04\x58", false, Sniff::Unknown),
            (b"<html>", true, Sniff::Unknown),
        ];
        for (head, complete, want) in cases {
            assert_eq!(sniff(head, complete), want, "{head:?}");
        }
        // gzip: the head of a member, cut anywhere, waits for its text.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, b"{\"e\":\"trade\"}\n").unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(sniff(&gz[..10], false), Sniff::NeedMore);
        assert_eq!(
            sniff(&gz, false),
            Sniff::Format(ReplayFormat::Jsonl { gzip: true })
        );
    }

    #[test]
    fn content_from_first_bytes() {
        let cases: [(&[u8], Content); 7] = [
            (b"\x1f\x8b\x08\x00", Content::Gzip),
            (b"{\"e\":\"trade\"", Content::Text),
            (b"agg_tr", Content::Text),
            (b"", Content::Text),
            (b"\x1f", Content::Text),
            (
                b"PK\x03\x04\x14\x00",
                Content::Other("a zip archive (name it .zip)"),
            ),
            (
                b"\x28\xb5\x2f\xfd\x04\x58",
                Content::Other("zstd-compressed"),
            ),
        ];
        for (head, want) in cases {
            assert_eq!(Content::of(head), want, "{head:?}");
        }
    }
}
