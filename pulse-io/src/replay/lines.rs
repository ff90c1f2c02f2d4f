//! Opening a replay file as text lines: plain, gzip, or the CSVs inside a zip.
//!
//! A text file's first bytes say what it holds, whatever its name: gzip
//! named `.jsonl` is decompressed, plain text named `.gz` is read as it is
//! (both with a warning), and other compressed data is refused by name
//! rather than read as lines of binary, every one malformed.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use pulse_core::Symbol;
use zip::ZipArchive;

use super::gzip::{self, GzipMembers};
use super::{ReplayFormat, symbol_from_file_name};
use crate::SourceError;

/// An opened replay file, ready to be read on a blocking thread.
pub(crate) enum Input {
    /// A plain or gzip text file.
    Text {
        file: File,
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
    /// Opens `path` now, so a missing file or a zip without a CSV fails at
    /// start-up rather than on the reader thread.
    pub(crate) fn open(path: &Path, format: ReplayFormat) -> Result<Input, SourceError> {
        let io_err = |source| SourceError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        match format {
            ReplayFormat::Jsonl { gzip } | ReplayFormat::Csv { gzip } => Ok(Input::Text {
                file,
                named_gzip: gzip,
                path: path.display().to_string(),
            }),
            ReplayFormat::Zip => {
                let archive = ZipArchive::new(file)
                    .map_err(|e| io_err(io::Error::new(io::ErrorKind::InvalidData, e)))?;
                let entries = csv_entries(&archive);
                if entries.is_empty() {
                    return Err(SourceError::Config(format!(
                        "{} holds no .csv file",
                        path.display()
                    )));
                }
                let named: BTreeSet<Symbol> = entries
                    .iter()
                    .filter_map(|&i| archive.name_for_index(i))
                    .filter_map(|name| symbol_from_file_name(Path::new(name)))
                    .collect();
                if named.len() > 1 {
                    let named: Vec<&str> = named.iter().map(Symbol::as_str).collect();
                    return Err(SourceError::Config(format!(
                        "{} holds dumps of several symbols ({}): replay them one at a time",
                        path.display(),
                        named.join(", ")
                    )));
                }
                if entries.len() > 1 {
                    tracing::info!(path = %path.display(), entries = entries.len(), "replaying every CSV in the zip, in name order");
                }
                Ok(Input::Zip {
                    archive,
                    entries,
                    symbol: named.into_iter().next(),
                })
            }
        }
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
                named_gzip,
                path,
            } => {
                let mut first = Vec::with_capacity(6);
                file.by_ref().take(6).read_to_end(&mut first)?;
                let head = &first[..];
                // The bytes looked at come first again.
                let mut text = head.chain(file);
                match Content::of(head) {
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
                    Content::Text if named_gzip && gzip::MAGIC.starts_with(head) => {
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

/// The format of a file whose name does not say, from its first bytes: a
/// zip is a dump archive, gzip is looked into, and text whose first line
/// starts with `{` is JSONL, other text a dump CSV. `None` when the bytes
/// do not tell (other compressed data) or cannot be read twice (a pipe).
pub(crate) fn format_from_content(path: &Path) -> io::Result<Option<ReplayFormat>> {
    const HEAD: u64 = 4096;
    if !std::fs::metadata(path)?.is_file() {
        return Ok(None);
    }
    let mut head = Vec::new();
    File::open(path)?.take(HEAD).read_to_end(&mut head)?;
    let (gzip, text) = match Content::of(&head) {
        Content::Text => (false, head),
        Content::Gzip => {
            // The head is cut short: keep what inflates before the cut.
            let mut text = Vec::new();
            let mut decoder = flate2::read::GzDecoder::new(&head[..]).take(HEAD);
            let mut chunk = [0u8; 512];
            while let Ok(n @ 1..) = decoder.read(&mut chunk) {
                text.extend_from_slice(&chunk[..n]);
            }
            (true, text)
        }
        Content::Other(kind) if kind.starts_with("a zip") => return Ok(Some(ReplayFormat::Zip)),
        Content::Other(_) => return Ok(None),
    };
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&text);
    let first = text.iter().find(|b| !b.is_ascii_whitespace());
    Ok(match first {
        Some(b'{') | None => Some(ReplayFormat::Jsonl { gzip }),
        Some(b) if b.is_ascii_alphanumeric() => Some(ReplayFormat::Csv { gzip }),
        Some(_) => None,
    })
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
        const OTHERS: [(&[u8], &str); 5] = [
            (b"PK\x03\x04", "a zip archive (name it .zip)"),
            (b"PK\x05\x06", "an empty zip archive"),
            (b"\x28\xb5\x2f\xfd", "zstd-compressed"),
            (b"BZh", "bzip2-compressed"),
            (b"\xfd7zXZ\x00", "xz-compressed"),
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
