//! Opening a replay file as text lines: plain, gzip, or the CSV inside a zip.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use zip::ZipArchive;

use super::ReplayFormat;
use super::bom::SkipBom;
use super::gzip::{self, GzipMembers};
use crate::SourceError;

/// An opened replay file, ready to be read on a blocking thread.
pub(crate) enum Input {
    /// A plain or gzip text file.
    Text {
        file: File,
        gzip: bool,
        path: String,
    },
    /// A zip archive and the index of the entry to read.
    Zip {
        archive: ZipArchive<File>,
        entry: usize,
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
        let mut file = File::open(path).map_err(io_err)?;
        match format {
            ReplayFormat::Jsonl { gzip } | ReplayFormat::Csv { gzip } => {
                // A compressed file without `.gz` in its name would be read
                // as lines of binary, every one malformed.
                let gzip = gzip || is_gzip(&mut file).map_err(io_err)?;
                if gzip && !format_says_gzip(format) {
                    tracing::warn!(
                        path = %path.display(),
                        "the file is gzip-compressed though its name does not end in .gz; decompressing it"
                    );
                }
                Ok(Input::Text {
                    file,
                    gzip,
                    path: path.display().to_string(),
                })
            }
            ReplayFormat::Zip => {
                let archive = ZipArchive::new(file)
                    .map_err(|e| io_err(io::Error::new(io::ErrorKind::InvalidData, e)))?;
                let entry = (0..archive.len())
                    .find(|&i| {
                        archive
                            .name_for_index(i)
                            .is_some_and(|n| n.to_ascii_lowercase().ends_with(".csv"))
                    })
                    .ok_or_else(|| {
                        SourceError::Config(format!("{} holds no .csv file", path.display()))
                    })?;
                Ok(Input::Zip { archive, entry })
            }
        }
    }

    /// Hands the decompressed text to `read`. It reads in large blocks,
    /// so a plain file is read straight into them, with no buffer between.
    pub(crate) fn read_with(
        self,
        read: impl FnOnce(&mut dyn Read) -> io::Result<()>,
    ) -> io::Result<()> {
        match self {
            Input::Text {
                file, gzip: false, ..
            } => read(&mut SkipBom::new(file)),
            Input::Text {
                file,
                gzip: true,
                path,
            } => read(&mut SkipBom::new(GzipMembers::new(file, path))),
            Input::Zip { mut archive, entry } => {
                let csv = archive
                    .by_index(entry)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                read(&mut SkipBom::new(csv))
            }
        }
    }
}

fn format_says_gzip(format: ReplayFormat) -> bool {
    matches!(
        format,
        ReplayFormat::Jsonl { gzip: true } | ReplayFormat::Csv { gzip: true }
    )
}

/// Whether a regular file starts with the gzip magic bytes; it is read
/// from its start again afterwards. A pipe cannot be rewound, so it is
/// taken as named.
fn is_gzip(file: &mut File) -> io::Result<bool> {
    if !file.metadata()?.is_file() {
        return Ok(false);
    }
    let mut head = [0u8; 2];
    let starts = match file.read_exact(&mut head) {
        Ok(()) => head == gzip::MAGIC,
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => false,
        Err(e) => return Err(e),
    };
    file.seek(SeekFrom::Start(0))?;
    Ok(starts)
}
