//! Dropping the UTF-8 byte order mark some editors and Windows tools write
//! at the start of a text file: left in, it would make the first line
//! malformed and lose its trade (or a dump's header).

use std::io::{self, Read};

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Reads `inner` without a leading byte order mark.
pub(crate) struct SkipBom<R> {
    inner: R,
    /// The first bytes, read to look for the mark and still to be handed on.
    head: [u8; 3],
    /// `head[start..end]` is still to be handed on.
    start: usize,
    end: usize,
    looked: bool,
}

impl<R: Read> SkipBom<R> {
    pub(crate) fn new(inner: R) -> Self {
        SkipBom {
            inner,
            head: [0; 3],
            start: 0,
            end: 0,
            looked: false,
        }
    }

    fn look(&mut self) -> io::Result<()> {
        self.looked = true;
        while self.end < BOM.len() {
            match self.inner.read(&mut self.head[self.end..]) {
                Ok(0) => break,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.head[..self.end] == BOM {
            self.start = self.end;
            tracing::debug!("skipped a UTF-8 byte order mark at the start of the file");
        }
        Ok(())
    }
}

impl<R: Read> Read for SkipBom<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.looked {
            self.look()?;
        }
        if self.start < self.end {
            let n = buf.len().min(self.end - self.start);
            buf[..n].copy_from_slice(&self.head[self.start..self.start + n]);
            self.start += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        SkipBom::new(bytes).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn a_leading_mark_is_dropped_and_everything_else_kept() {
        assert_eq!(read_all(b"\xEF\xBB\xBF{\"e\":1}\n"), b"{\"e\":1}\n");
        assert_eq!(read_all(b"\xEF\xBB\xBF"), b"");
        // Only at the very start: elsewhere it is data.
        assert_eq!(read_all(b"a\xEF\xBB\xBFb"), b"a\xEF\xBB\xBFb");
        for short in [&b""[..], b"a", b"ab", b"\xEF\xBB", b"abc", b"abcdef"] {
            assert_eq!(read_all(short), short);
        }
    }

    /// A reader that hands out one byte per call, as a pipe may.
    struct ByteByByte<'a>(&'a [u8]);

    impl Read for ByteByByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some((first, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            buf[0] = *first;
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn a_mark_split_over_reads_is_still_found() {
        let mut out = Vec::new();
        SkipBom::new(ByteByByte(b"\xEF\xBB\xBFid,price\n"))
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"id,price\n");
        let mut one = [0u8; 1];
        let mut reader = SkipBom::new(&b"xyz!"[..]);
        let mut got = Vec::new();
        while reader.read(&mut one).unwrap() == 1 {
            got.push(one[0]);
        }
        assert_eq!(got, b"xyz!");
    }
}
