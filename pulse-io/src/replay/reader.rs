//! The reader threads: parse a replay file's lines into batches of trades.
//!
//! Decompression and parsing are blocking work, so they run off the async
//! runtime. One thread reads the file and cuts it into blocks of whole
//! lines; parse workers, one per core, turn blocks into trades; the reading
//! thread hands their results on in file order over a bounded channel. The
//! trades, counts and logs are the same as with one thread, and a slow
//! consumer slows the reading down instead of losing trades.

use std::collections::BTreeSet;
use std::io::{self, Read};
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc as sync;
use std::thread;

use pulse_core::{Frame, ParseError, Symbol, Trade, parse_csv_row, parse_frame};
use tokio::sync::mpsc;

use super::blocks::{Block, Blocks};
use super::lines::Input;
use super::symbols::SymbolFilter;
use crate::{Metrics, SourceError};

/// Malformed lines logged one by one before the rest are only counted.
const LOGGED_REJECTS: u64 = 10;
/// Batches buffered between the reading thread and the source.
const CHANNEL_BATCHES: usize = 4;
/// Bytes of whole lines a worker parses at a time: about 1,500 frames.
const BLOCK_BYTES: usize = 1 << 18;
/// Blocks each worker may hold, parsed or not, before reading waits.
const BLOCKS_PER_WORKER: usize = 2;
/// Parse workers at most, whatever the core count.
const MAX_WORKERS: usize = 4;
/// What some editors put before the first line of a UTF-8 file.
const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

/// How each line is parsed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum LineFormat {
    /// A Binance WebSocket frame.
    Json,
    /// A dump CSV row of this symbol.
    Csv(Symbol),
}

/// What the reader sends: trades in file order, or the error that stopped it.
pub(crate) type Batch = Result<Vec<Trade>, SourceError>;

/// Starts the reading thread; the channel closes at end of file.
pub(crate) fn spawn(
    input: Input,
    parser: LineParser,
    path: String,
    metrics: Metrics,
) -> Result<mpsc::Receiver<Batch>, SourceError> {
    metrics.init_rejected(ParseError::REASONS);
    metrics.init_rejected(&[Rejection::NOT_UTF8]);
    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
    let workers = thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS));
    let mut replay = Replay {
        parser,
        workers,
        block_bytes: BLOCK_BYTES,
        streaming: input.is_streaming(),
        file: path.clone(),
        path: path.clone(),
        metrics,
        lines_before: 0,
        rejected: 0,
        logged: Vec::new(),
        filtered: 0,
        seen: BTreeSet::new(),
    };
    thread::Builder::new()
        .name("pulse-replay".into())
        .spawn(move || {
            // A panic (a bug) must end the replay with an error, not look
            // like the end of the file.
            let result = panic::catch_unwind(AssertUnwindSafe(|| {
                input.read_with(|reader, entry| {
                    if let Some(entry) = entry {
                        replay.start_entry(entry);
                    }
                    replay.run(reader, &tx)
                })
            }));
            let error = match result {
                Ok(Ok(())) => None,
                Ok(Err(source)) if source.kind() == io::ErrorKind::UnexpectedEof => {
                    let source = io::Error::new(
                        source.kind(),
                        format!(
                            "the file ends mid-stream after {} whole lines, which were replayed: \
                             it is cut short, or still being written ({source})",
                            replay.lines_before
                        ),
                    );
                    Some(SourceError::Io { path, source })
                }
                Ok(Err(source)) => Some(SourceError::Io { path, source }),
                Err(_) => Some(SourceError::Other(format!(
                    "the replay reader of {path} stopped on a bug (see the panic above)"
                ))),
            };
            // Only a file read to its end tells which symbols it lacks; a
            // dropped source (Ctrl-C) stops reading early.
            let read_whole = error.is_none() && !tx.is_closed();
            if let Some(error) = error {
                // The receiver may be gone already; then nobody needs the error.
                let _ = tx.blocking_send(Err(error));
            }
            replay.finish(read_whole);
        })
        .map_err(|e| SourceError::Other(format!("starting the replay reader thread: {e}")))?;
    Ok(rx)
}

/// The reading thread's state: what it hands on and what it has counted.
struct Replay {
    parser: LineParser,
    workers: usize,
    block_bytes: usize,
    /// Hand each block on as soon as it is read and parsed: a pipe's
    /// writer may pause, and what came must not wait for more.
    streaming: bool,
    /// The file given, for what is said about all of it.
    file: String,
    /// Where lines are read now, for the line numbers in logs: the file,
    /// or `file!entry.csv` inside a zip.
    path: String,
    metrics: Metrics,
    /// Lines of `path` in the blocks handed on so far.
    lines_before: u64,
    rejected: u64,
    /// The line numbers of the malformed lines logged one by one.
    logged: Vec<u64>,
    /// Trades of symbols the [`SymbolFilter`] leaves out.
    filtered: u64,
    /// The symbols with trades in the file, kept or not; gathered only
    /// under [`SymbolFilter::Only`], to name the asked-for ones it lacks.
    seen: BTreeSet<Symbol>,
}

/// One worker's two ends, as the reading thread sees them.
struct Worker {
    blocks: sync::SyncSender<Block>,
    parsed: sync::Receiver<Parsed>,
}

impl Replay {
    /// Reads `reader` to its end, block by block, with the blocks dealt to
    /// the workers in turn and their results taken back in the same turn,
    /// which is file order.
    fn run(&mut self, reader: &mut dyn Read, tx: &mpsc::Sender<Batch>) -> io::Result<()> {
        thread::scope(|scope| {
            let mut workers = Vec::with_capacity(self.workers);
            for n in 0..self.workers {
                let (blocks, their_blocks) = sync::sync_channel::<Block>(BLOCKS_PER_WORKER);
                let (their_parsed, parsed) = sync::sync_channel(BLOCKS_PER_WORKER);
                let parser = self.parser.clone();
                thread::Builder::new()
                    .name(format!("pulse-parse-{n}"))
                    .spawn_scoped(scope, move || {
                        for block in their_blocks {
                            if their_parsed.send(parser.block(block)).is_err() {
                                return;
                            }
                        }
                    })?;
                workers.push(Worker { blocks, parsed });
            }
            let in_flight = workers.len() * BLOCKS_PER_WORKER;
            let (mut dealt, mut taken) = (0usize, 0usize);
            let mut blocks = Blocks::new(reader, self.block_bytes).eager(self.streaming);
            // The buffer of the block last handed on, to read the next into.
            let mut spare = None;
            let read = loop {
                // Stop reading once the source is dropped, even when the
                // rest of the file holds no trades to send.
                if tx.is_closed() {
                    break Ok(());
                }
                let block = match blocks.next(spare.take()) {
                    Ok(Some(block)) => block,
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                };
                if dealt - taken == in_flight {
                    let Some(buffer) = self.hand_on(&workers[taken % workers.len()], tx) else {
                        break Ok(());
                    };
                    spare = Some(buffer);
                    taken += 1;
                }
                let dealt_to = &workers[dealt % workers.len()];
                dealt += 1;
                if dealt_to.blocks.send(block).is_err() {
                    break Ok(());
                }
                if self.streaming {
                    let Some(buffer) = self.hand_on(dealt_to, tx) else {
                        break Ok(());
                    };
                    spare = Some(buffer);
                    taken += 1;
                }
            };
            // What was read before an error comes before it in the file.
            while taken < dealt && self.hand_on(&workers[taken % workers.len()], tx).is_some() {
                taken += 1;
            }
            read
        })
    }

    /// Counts and logs one block's malformed lines, then sends its trades
    /// and gives back the block's buffer; `None` once nobody listens.
    fn hand_on(&mut self, worker: &Worker, tx: &mpsc::Sender<Batch>) -> Option<Vec<u8>> {
        // A worker only stops early when the reading side has stopped.
        let parsed = worker.parsed.recv().ok()?;
        for (line, rejection) in parsed.rejected {
            self.reject(self.lines_before + line, rejection);
        }
        self.lines_before += parsed.lines;
        self.filtered += parsed.filtered;
        self.seen.extend(parsed.seen);
        let sent = parsed
            .batches
            .into_iter()
            .all(|batch| tx.blocking_send(Ok(batch)).is_ok());
        sent.then_some(parsed.buffer)
    }

    /// Line numbers count from the start of each CSV in a zip.
    fn start_entry(&mut self, entry: &str) {
        self.path = format!("{}!{entry}", self.file);
        self.lines_before = 0;
    }

    fn reject(&mut self, line: u64, rejection: Rejection) {
        self.rejected += 1;
        let reason = rejection.reason();
        self.metrics.reject(reason);
        if self.rejected <= LOGGED_REJECTS {
            self.logged.push(line);
            tracing::warn!(path = %self.path, line, reason, error = %rejection, "skipping malformed line");
        } else {
            tracing::debug!(path = %self.path, line, reason, error = %rejection, "skipping malformed line");
        }
    }

    fn finish(&self, read_whole: bool) {
        if self.filtered > 0 {
            tracing::info!(path = %self.file, trades = self.filtered, "skipped the trades of symbols not asked for");
        }
        if read_whole && let Some(missing) = self.parser.symbols.missing_from(&self.seen) {
            tracing::warn!(
                path = %self.file,
                missing = %listing(&missing),
                in_file = %listing(&self.seen),
                "the file has no trades of symbols --symbols asked for"
            );
        }
        if self.rejected > LOGGED_REJECTS {
            tracing::warn!(path = %self.file, rejected = self.rejected, first_lines = ?self.logged, "replay skipped malformed lines");
        }
    }
}

/// Symbols for a log line: the first few by name, then how many more.
fn listing<'a>(symbols: impl IntoIterator<Item = &'a Symbol>) -> String {
    const SHOWN: usize = 20;
    let symbols: Vec<&Symbol> = symbols.into_iter().collect();
    let mut text = symbols
        .iter()
        .take(SHOWN)
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",");
    if symbols.is_empty() {
        text.push_str("none");
    } else if symbols.len() > SHOWN {
        text.push_str(&format!(" and {} more", symbols.len() - SHOWN));
    }
    text
}

/// Turns lines into trades; the same on every worker.
#[derive(Clone, Debug)]
pub(crate) struct LineParser {
    format: LineFormat,
    batch_size: usize,
    symbols: SymbolFilter,
}

/// A parsed block: its trades in batches, its malformed lines by their
/// number within the block (from 1), how many lines it held and how many
/// trades the symbol filter left out.
struct Parsed {
    /// The block's buffer, to be filled again.
    buffer: Vec<u8>,
    batches: Vec<Vec<Trade>>,
    rejected: Vec<(u64, Rejection)>,
    lines: u64,
    filtered: u64,
    /// The symbols of the block's trades, when the filter wants them.
    seen: BTreeSet<Symbol>,
}

impl LineParser {
    /// Lines of `format` into batches of at most `batch_size` trades of the
    /// symbols `symbols` keeps.
    pub(crate) fn new(format: LineFormat, batch_size: usize, symbols: SymbolFilter) -> Self {
        LineParser {
            format,
            batch_size: batch_size.max(1),
            symbols,
        }
    }

    fn block(&self, block: Block) -> Parsed {
        let mut parsed = self.lines(block.lines());
        parsed.buffer = block.into_buffer();
        parsed
    }

    fn lines(&self, block: &[u8]) -> Parsed {
        let mut parsed = Parsed {
            buffer: Vec::new(),
            batches: Vec::new(),
            rejected: Vec::new(),
            lines: 0,
            filtered: 0,
            seen: BTreeSet::new(),
        };
        let gather = self.symbols.wants_seen();
        // Trades come in runs of one symbol; one look-up per run.
        let mut last = None;
        let mut batch = Vec::with_capacity(self.batch_size);
        let mut start = 0;
        let ends = memchr::memchr_iter(b'\n', block).chain(
            // A last line without its `\n`.
            (block.last().is_some_and(|&b| b != b'\n')).then_some(block.len()),
        );
        for end in ends {
            parsed.lines += 1;
            let line = block[start..end].trim_ascii();
            start = end + 1;
            if line.is_empty() {
                continue;
            }
            let trade = self.parse(line);
            if gather
                && let Ok(Some(trade)) = &trade
                && last != Some(trade.symbol)
            {
                last = Some(trade.symbol);
                parsed.seen.insert(trade.symbol);
            }
            match trade {
                Ok(Some(trade)) if self.symbols.keeps(trade.symbol) => batch.push(trade),
                Ok(Some(_)) => parsed.filtered += 1,
                Ok(None) => {}
                Err(rejection) => parsed.rejected.push((parsed.lines, rejection)),
            }
            if batch.len() >= self.batch_size {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(self.batch_size));
                parsed.batches.push(full);
            }
        }
        if !batch.is_empty() {
            parsed.batches.push(batch);
        }
        parsed
    }

    /// `Ok(None)` for lines that carry no trade: acks and CSV headers.
    fn parse(&self, line: &[u8]) -> Result<Option<Trade>, Rejection> {
        let parsed = self.parse_as_is(line);
        // A UTF-8 byte order mark, as editors write at the start of a file
        // (and so of each file concatenated): looked for only on a line
        // that failed, which keeps it off the hot path.
        if parsed.is_err()
            && let Some(rest) = line.strip_prefix(BYTE_ORDER_MARK)
        {
            return self.parse_as_is(rest);
        }
        parsed
    }

    fn parse_as_is(&self, line: &[u8]) -> Result<Option<Trade>, Rejection> {
        match self.format {
            LineFormat::Json => match parse_frame(line) {
                Ok(Frame::Trade(trade)) => Ok(Some(trade)),
                Ok(Frame::Ack { .. }) => Ok(None),
                Err(e) => Err(Rejection::Parse(e)),
            },
            LineFormat::Csv(symbol) => {
                let text = std::str::from_utf8(line).map_err(|_| Rejection::NotUtf8)?;
                parse_csv_row(text, symbol).map_err(Rejection::Parse)
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum Rejection {
    #[error(transparent)]
    Parse(ParseError),
    #[error("line is not valid UTF-8")]
    NotUtf8,
}

impl Rejection {
    const NOT_UTF8: &'static str = "utf8";

    fn reason(&self) -> &'static str {
        match self {
            Rejection::Parse(e) => e.reason(),
            Rejection::NotUtf8 => Self::NOT_UTF8,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::BufReader;

    use super::super::blocks::MAX_LINE_BYTES;

    use super::*;

    fn frame(a: u64) -> String {
        format!(
            r#"{{"e":"aggTrade","E":1723161502125,"a":{a},"s":"BTCUSDT","p":"61180.10","q":"0.500","f":5,"l":6,"T":1723161502123,"m":true}}"#
        )
    }

    fn replay(workers: usize, block_bytes: usize, batch_size: usize) -> Replay {
        Replay {
            parser: LineParser::new(LineFormat::Json, batch_size, SymbolFilter::All),
            workers,
            block_bytes,
            streaming: false,
            file: "test".into(),
            path: "test".into(),
            metrics: Metrics::new(),
            lines_before: 0,
            rejected: 0,
            logged: Vec::new(),
            filtered: 0,
            seen: BTreeSet::new(),
        }
    }

    /// Every block size, from one byte up, one to three workers, read as a
    /// file or a pipe: the trades come in file order, once, in batches no
    /// larger than asked, and malformed lines keep their line numbers.
    #[test]
    fn blocks_of_any_size_give_the_lines_in_file_order() {
        let text = format!(
            "{}\r\n\n{}\nnot json\n  {}\n{}\n{{\"e\":\n{}",
            frame(1),
            frame(2),
            frame(3),
            frame(4),
            frame(5)
        );
        for (workers, streaming) in (1..=3).flat_map(|w| [(w, false), (w, true)]) {
            for block_bytes in 1..text.len() + 2 {
                let (tx, mut rx) = mpsc::channel(64);
                let mut replay = replay(workers, block_bytes, 2);
                replay.streaming = streaming;
                let mut reader = BufReader::with_capacity(7, text.as_bytes());
                replay.run(&mut reader, &tx).unwrap();
                drop(tx);
                let mut ids = Vec::new();
                while let Ok(batch) = rx.try_recv() {
                    let batch = batch.unwrap();
                    assert!((1..=2).contains(&batch.len()));
                    ids.extend(batch.iter().map(|t| t.id));
                }
                let case = format!(
                    "{workers} workers, blocks of {block_bytes} bytes, streaming {streaming}"
                );
                assert_eq!(ids, [1, 2, 3, 4, 5], "{case}");
                assert_eq!(replay.rejected, 2, "{case}");
                assert_eq!(replay.logged, [4, 7], "{case}");
                assert_eq!(replay.lines_before, 8, "{case}");
            }
        }
    }

    /// Trades of symbols left out are counted, not handed on; the line
    /// numbers of malformed lines stay those of the file.
    #[test]
    fn the_symbol_filter_keeps_only_the_symbols_asked_for() {
        let text = format!(
            "{}\n{}\nnot json\n{}\n",
            frame(1),
            frame(2).replace("BTCUSDT", "ETHUSDT"),
            frame(3)
        );
        let eth = Symbol::new("ETHUSDT").unwrap();
        for (filter, ids, filtered) in [
            (SymbolFilter::Only([eth].into()), vec![2], 2),
            (SymbolFilter::Except([eth].into()), vec![1, 3], 1),
            (SymbolFilter::All, vec![1, 2, 3], 0),
        ] {
            let (tx, mut rx) = mpsc::channel(64);
            let mut replay = replay(2, 64, 8);
            replay.parser = LineParser::new(LineFormat::Json, 8, filter.clone());
            replay.run(&mut text.as_bytes(), &tx).unwrap();
            drop(tx);
            let mut got = Vec::new();
            while let Ok(batch) = rx.try_recv() {
                got.extend(batch.unwrap().iter().map(|t| t.id));
            }
            assert_eq!(got, ids, "{filter:?}");
            assert_eq!(replay.filtered, filtered, "{filter:?}");
            assert_eq!(replay.logged, [3], "{filter:?}");
        }
    }

    /// Reads `text`, then fails as a truncated gzip stream does.
    struct FailsAfter<'a>(&'a [u8]);

    impl Read for FailsAfter<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "cut short"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// Every whole line read before a read error is handed on, then the
    /// error; the cut-off line is not.
    #[test]
    fn a_read_error_keeps_the_whole_lines_before_it() {
        let text: String = (1..=100).map(|a| frame(a) + "\n").collect();
        let cut = text.find(&frame(60)).unwrap() + 20;
        let (tx, mut rx) = mpsc::channel(200);
        let mut reader = BufReader::new(FailsAfter(&text.as_bytes()[..cut]));
        let error = replay(2, 1 << 12, 8).run(&mut reader, &tx).unwrap_err();
        assert_eq!(error.to_string(), "cut short");
        drop(tx);
        let mut ids = Vec::new();
        while let Ok(batch) = rx.try_recv() {
            ids.extend(batch.unwrap().iter().map(|t| t.id));
        }
        assert_eq!(ids, (1..60).collect::<Vec<_>>());
    }

    /// A file that is not lines at all ends the replay with an error
    /// instead of being read whole into memory.
    #[test]
    fn an_endless_line_is_an_error() {
        let text = frame(1) + "\n";
        let endless = io::repeat(b'x').take(MAX_LINE_BYTES as u64 + (1 << 20));
        let mut reader = BufReader::new(text.as_bytes().chain(endless));
        let (tx, mut rx) = mpsc::channel(4);
        let error = replay(1, BLOCK_BYTES, 8).run(&mut reader, &tx).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("longer than 64 MiB"), "{error}");
        assert_eq!(rx.try_recv().unwrap().unwrap()[0].id, 1);
    }

    /// A dropped source stops the reading: no hang, no error.
    #[test]
    fn reading_stops_when_the_source_is_gone() {
        let text: String = (1..=10_000).map(|a| frame(a) + "\n").collect();
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let mut reader = BufReader::new(text.as_bytes());
        replay(2, 4096, 16).run(&mut reader, &tx).unwrap();
    }
}
