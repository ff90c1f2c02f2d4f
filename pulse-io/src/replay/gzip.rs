//! Reading a gzip file member by member, as `gzip -d` does.
//!
//! A capture may be several gzip members end to end (`cat a.gz b.gz`, or a
//! recorder that appends). Files copied through tapes or block devices may
//! also end in zero padding, which `gzip -d` ignores with a warning; anything
//! else after the last member is an error, since it may be data.

use std::io::{self, BufRead, BufReader, Read};

use flate2::bufread::GzDecoder;
use tracing::warn;

/// The two bytes every gzip member starts with.
pub(super) const MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Compressed bytes read from the file at a time.
const INPUT_BUFFER_BYTES: usize = 64 * 1024;

/// The text of every member of a gzip file, in order.
pub(crate) struct GzipMembers<R: Read> {
    /// `None` before the first member and after the last.
    member: Option<GzDecoder<BufReader<R>>>,
    input: Option<BufReader<R>>,
    /// For the warning about ignored padding.
    path: String,
}

impl<R: Read> GzipMembers<R> {
    pub(crate) fn new(reader: R, path: String) -> Self {
        GzipMembers {
            member: None,
            input: Some(BufReader::with_capacity(INPUT_BUFFER_BYTES, reader)),
            path,
        }
    }

    /// Starts the next member, or returns false at the end of the file.
    fn next_member(&mut self, first: bool) -> io::Result<bool> {
        let mut input = match (self.member.take(), self.input.take()) {
            (Some(member), _) => member.into_inner(),
            (None, Some(input)) => input,
            (None, None) => return Ok(false),
        };
        let rest = input.fill_buf()?;
        if rest.is_empty() {
            return if first {
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the file is empty, without even a gzip header",
                ))
            } else {
                Ok(false)
            };
        }
        // Only the first byte is checked when the buffer holds just one;
        // a wrong second byte is then reported by the decoder itself.
        if first || rest.iter().zip(MAGIC).all(|(&b, m)| b == m) {
            self.member = Some(GzDecoder::new(input));
            return Ok(true);
        }
        let padding = skip_zeros(&mut input)?;
        if input.fill_buf()?.is_empty() {
            warn!(path = %self.path, bytes = padding,
                "ignored zero padding after the last gzip member");
            Ok(false)
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the file goes on after its last gzip member with bytes that are not gzip data",
            ))
        }
    }
}

/// Consumes zero bytes up to the first other byte or the end; returns how many.
fn skip_zeros(input: &mut impl BufRead) -> io::Result<u64> {
    let mut zeros = 0;
    loop {
        let buffer = input.fill_buf()?;
        if buffer.is_empty() {
            return Ok(zeros);
        }
        let run = buffer.iter().take_while(|&&b| b == 0).count();
        let more = run == buffer.len();
        input.consume(run);
        zeros += run as u64;
        if !more {
            return Ok(zeros);
        }
    }
}

impl<R: Read> Read for GzipMembers<R> {
    fn read(&mut self, into: &mut [u8]) -> io::Result<usize> {
        if into.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(member) = &mut self.member {
                let n = member.read(into)?;
                if n > 0 {
                    return Ok(n);
                }
            }
            let first = self.member.is_none() && self.input.is_some();
            if !self.next_member(first)? {
                return Ok(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    fn gzip(text: &str) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap()
    }

    fn read_all(file: Vec<u8>) -> io::Result<String> {
        let mut text = String::new();
        GzipMembers::new(&file[..], "test.jsonl.gz".into()).read_to_string(&mut text)?;
        Ok(text)
    }

    #[test]
    fn reads_every_member_in_order() {
        let file = [gzip("a\nb\n"), gzip(""), gzip("c\n")].concat();
        assert_eq!(read_all(file).unwrap(), "a\nb\nc\n");
    }

    #[test]
    fn ignores_zero_padding_after_the_last_member() {
        let mut file = [gzip("a\n"), gzip("b\n")].concat();
        file.extend([0; 100_000]);
        assert_eq!(read_all(file).unwrap(), "a\nb\n");
    }

    #[test]
    fn other_bytes_after_the_last_member_are_an_error() {
        for tail in [&b"{\"e\":1}\n"[..], b"\0\0\0x"] {
            let file = [gzip("a\n"), tail.to_vec()].concat();
            let error = read_all(file).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{tail:?}");
        }
        // A lone first byte of a gzip header is a member cut short.
        let file = [gzip("a\n"), vec![0x1f]].concat();
        assert_eq!(
            read_all(file).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn an_empty_file_is_an_error_that_says_so() {
        let error = read_all(Vec::new()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("empty"), "{error}");
    }

    #[test]
    fn a_file_that_is_not_gzip_is_an_error() {
        assert!(read_all(b"{\"e\":\"trade\"}\n".to_vec()).is_err());
    }

    #[test]
    fn a_cut_short_member_is_an_unexpected_end() {
        let mut file = gzip(&"line\n".repeat(1000));
        file.truncate(file.len() - 12);
        let error = read_all(file).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_damaged_checksum_is_an_error() {
        let mut file = gzip("a\nb\n");
        let crc = file.len() - 8;
        file[crc] ^= 0xff;
        assert!(read_all(file).is_err());
    }
}
