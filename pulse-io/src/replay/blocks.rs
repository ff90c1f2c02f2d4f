//! Cutting a byte stream into blocks of whole lines, in buffers that are
//! handed back and filled again.
//!
//! Reusing the buffers matters: a fresh 256 KiB buffer per block costs a
//! page fault per 4 KiB, which took more time than copying the file in.

use std::io::{self, Read};

/// A longer line means the file is not lines of frames or rows at all (a
/// JSON array, a binary file); reading it whole could exhaust memory.
pub(crate) const MAX_LINE_BYTES: usize = 64 << 20;

/// Whole lines (the last one may lack its `\n` at the end of the file) at
/// the start of a reusable buffer.
#[derive(Debug)]
pub(crate) struct Block {
    buffer: Vec<u8>,
    len: usize,
    /// The buffer is of the usual size, not grown for a long line.
    reusable: bool,
}

impl Block {
    /// The block's lines.
    pub(crate) fn lines(&self) -> &[u8] {
        &self.buffer[..self.len]
    }

    /// The buffer, for [`Blocks::next`] to fill again; an empty one when
    /// it grew for a long line, so that memory is freed at once instead of
    /// waiting with every block in flight.
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        if self.reusable {
            self.buffer
        } else {
            Vec::new()
        }
    }
}

/// Reads `reader` in blocks of whole lines of about `block_bytes`; a
/// longer line makes a longer block.
pub(crate) struct Blocks<'a> {
    reader: &'a mut dyn Read,
    block_bytes: usize,
    /// The bytes after the last block's last line end: the next block's start.
    tail: Vec<u8>,
    /// A read error, reported after the whole lines read before it.
    error: Option<io::Error>,
    ended: bool,
    /// A block ends after one read with a whole line, not when full.
    eager: bool,
}

impl<'a> Blocks<'a> {
    pub(crate) fn new(reader: &'a mut dyn Read, block_bytes: usize) -> Self {
        Blocks {
            reader,
            block_bytes: block_bytes.max(1),
            tail: Vec::new(),
            error: None,
            ended: false,
            eager: false,
        }
    }

    /// With `eager`, a block is handed on after any read that completes a
    /// line, so a pipe's lines do not wait for a full block.
    pub(crate) fn eager(mut self, eager: bool) -> Self {
        self.eager = eager;
        self
    }

    /// The next block, filled into `spare` when given (a buffer from an
    /// earlier block); `None` at the end of the file.
    pub(crate) fn next(&mut self, spare: Option<Vec<u8>>) -> io::Result<Option<Block>> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        if self.ended {
            return Ok(None);
        }
        // Zeroed once per buffer, not per block: the length stays the
        // buffer's size and `len` says how much of it holds the block.
        let mut buffer = spare.unwrap_or_default();
        let size = self.block_bytes.max(self.tail.len() + 1);
        if buffer.len() < size {
            buffer.resize(size, 0);
        }
        let mut len = self.tail.len();
        buffer[..len].copy_from_slice(&self.tail);
        if self.tail.capacity() > self.block_bytes {
            self.tail = Vec::new(); // it held a long line
        } else {
            self.tail.clear();
        }
        // The bytes carried over hold no line end.
        let mut searched = len;
        loop {
            len += self.fill(&mut buffer[len..]);
            // The block starts a line, and only that line can be longer
            // than a block.
            let first_end = memchr::memchr(b'\n', &buffer[searched..len]).map(|e| searched + e);
            if first_end.unwrap_or(len) > MAX_LINE_BYTES {
                self.ended = true;
                self.error = None;
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "a line longer than {} MiB: not a file of one frame or row per line",
                        MAX_LINE_BYTES >> 20
                    ),
                ));
            }
            let reusable = buffer.len() <= 2 * self.block_bytes;
            if self.ended {
                // At an error only the whole lines count; at the end of
                // the file the last line may lack its `\n`.
                if self.error.is_some() {
                    len = memchr::memrchr(b'\n', &buffer[..len]).map_or(0, |end| end + 1);
                }
                if len == 0 {
                    return self.error.take().map_or(Ok(None), Err);
                }
                return Ok(Some(Block {
                    buffer,
                    len,
                    reusable,
                }));
            }
            if let Some(first_end) = first_end {
                let cut = first_end
                    + 1
                    + memchr::memrchr(b'\n', &buffer[first_end + 1..len]).map_or(0, |e| e + 1);
                self.tail.extend_from_slice(&buffer[cut..len]);
                return Ok(Some(Block {
                    buffer,
                    len: cut,
                    reusable,
                }));
            }
            searched = len;
            buffer.resize(len + self.block_bytes, 0);
        }
    }

    /// Reads until `buffer` is full or the input ends; how many bytes came.
    fn fill(&mut self, buffer: &mut [u8]) -> usize {
        let mut filled = 0;
        while filled < buffer.len() {
            match self.reader.read(&mut buffer[filled..]) {
                Ok(0) => {
                    self.ended = true;
                    break;
                }
                Ok(n) => {
                    filled += n;
                    if self.eager {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error = Some(e);
                    self.ended = true;
                    break;
                }
            }
        }
        filled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every block size and every read size gives the same lines, each
    /// block ending at a line end but the last, with the buffers reused.
    #[test]
    fn blocks_hold_whole_lines_in_order() {
        let text = b"one\ntwo two\n\nthree three three\nfour";
        for block_bytes in 1..text.len() + 2 {
            for read_bytes in 1..8 {
                let mut reader = io::BufReader::with_capacity(read_bytes, &text[..]);
                let mut blocks = Blocks::new(&mut reader, block_bytes);
                let (mut all, mut spare) = (Vec::new(), None);
                while let Some(block) = blocks.next(spare.take()).unwrap() {
                    let lines = block.lines();
                    let last = all.len() + lines.len() == text.len();
                    assert!(last || lines.ends_with(b"\n"), "{lines:?}");
                    all.extend_from_slice(lines);
                    spare = Some(block.into_buffer());
                }
                assert_eq!(all, text, "blocks of {block_bytes}, reads of {read_bytes}");
                assert!(blocks.next(None).unwrap().is_none());
            }
        }
    }

    /// A block reuses the buffer it is given instead of allocating one.
    #[test]
    fn a_spare_buffer_is_filled_again() {
        let text = b"aaaa\nbbbb\ncccc\n";
        let mut reader = &text[..];
        let mut blocks = Blocks::new(&mut reader, 6);
        let first = blocks.next(None).unwrap().unwrap();
        assert_eq!(first.lines(), b"aaaa\n");
        let buffer = first.into_buffer();
        let at = buffer.as_ptr();
        let second = blocks.next(Some(buffer)).unwrap().unwrap();
        assert_eq!(second.lines(), b"bbbb\n");
        assert_eq!(second.buffer.as_ptr(), at);
    }

    /// A block of `lines` followed by one line of `long` bytes and `\n`,
    /// read in blocks of 256 KiB: the lengths of the blocks, or the error.
    fn read_long(before: usize, long: usize) -> io::Result<Vec<usize>> {
        let lines = "a\n".repeat(before / 2);
        let mut reader = lines
            .as_bytes()
            .chain(io::repeat(b'x').take(long as u64))
            .chain(&b"\nb\n"[..]);
        let mut blocks = Blocks::new(&mut reader, 1 << 18);
        let mut lengths = Vec::new();
        let mut spare = None;
        while let Some(block) = blocks.next(spare.take())? {
            lengths.push(block.lines().len());
            spare = Some(block.into_buffer());
        }
        Ok(lengths)
    }

    /// The limit is the line's own length, wherever the line starts.
    #[test]
    fn a_line_may_be_exactly_as_long_as_the_limit() {
        for before in [0, 200 << 10] {
            let lengths = read_long(before, MAX_LINE_BYTES).unwrap();
            assert_eq!(lengths.iter().sum::<usize>(), before + MAX_LINE_BYTES + 3);
            let error = read_long(before, MAX_LINE_BYTES + 1).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{before}");
        }
    }

    /// A buffer grown for a long line is freed when its block is done with,
    /// not kept for the next block.
    #[test]
    fn a_grown_buffer_is_not_handed_back() {
        let text = format!("{}\nshort\n", "x".repeat(100));
        let mut reader = text.as_bytes();
        let mut blocks = Blocks::new(&mut reader, 8);
        let long = blocks.next(None).unwrap().unwrap();
        assert_eq!(long.lines().len(), 101);
        assert!(long.into_buffer().is_empty());
        let short = blocks.next(None).unwrap().unwrap();
        assert_eq!(short.lines(), b"short\n");
        assert_eq!(short.into_buffer().len(), 8);
    }
}
