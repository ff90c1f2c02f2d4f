//! The reader thread: parses a replay file's lines into batches of trades.
//!
//! Decompression and parsing are blocking work, so they run on their own
//! thread and hand batches over a bounded channel: a slow consumer slows the
//! reader down instead of losing trades.

use std::io::{self, BufRead};

use pulse_core::{Frame, ParseError, Symbol, Trade, parse_csv_row, parse_frame};
use tokio::sync::mpsc;

use super::lines::Input;
use crate::{Metrics, SourceError};

/// Malformed lines logged one by one before the rest are only counted.
const LOGGED_REJECTS: u64 = 10;
/// Batches buffered between the reader thread and the source.
const CHANNEL_BATCHES: usize = 4;

/// How each line is parsed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum LineFormat {
    /// A Binance WebSocket frame.
    Json,
    /// A dump CSV row of this symbol.
    Csv(Symbol),
}

/// What the reader thread sends: trades in file order, or the error that
/// stopped it.
pub(crate) type Batch = Result<Vec<Trade>, SourceError>;

/// Starts the reader thread; the channel closes at end of file.
pub(crate) fn spawn(
    input: Input,
    format: LineFormat,
    path: String,
    metrics: Metrics,
    batch_size: usize,
) -> Result<mpsc::Receiver<Batch>, SourceError> {
    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
    let mut lines = LineParser {
        format,
        path: path.clone(),
        metrics,
        batch_size: batch_size.max(1),
        rejected: 0,
    };
    std::thread::Builder::new()
        .name("pulse-replay".into())
        .spawn(move || {
            let result = input.read_with(|reader| lines.run(reader, &tx));
            if let Err(source) = result {
                // The receiver may be gone already; then nobody needs the error.
                let _ = tx.blocking_send(Err(SourceError::Io { path, source }));
            }
            lines.finish();
        })
        .map_err(|e| SourceError::Other(format!("starting the replay reader thread: {e}")))?;
    Ok(rx)
}

struct LineParser {
    format: LineFormat,
    path: String,
    metrics: Metrics,
    batch_size: usize,
    rejected: u64,
}

impl LineParser {
    /// Parses each line where it lies in the reader's buffer; only a line
    /// cut by the buffer's end is copied, to be joined with its rest.
    fn run(&mut self, reader: &mut dyn BufRead, tx: &mpsc::Sender<Batch>) -> io::Result<()> {
        let mut lines = Lines {
            batch: Vec::with_capacity(self.batch_size),
            line_no: 0,
            tx,
        };
        let mut cut = Vec::new();
        loop {
            let chunk = match reader.fill_buf() {
                // As `read_until` did: a signal is no error.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => other?,
            };
            if chunk.is_empty() {
                break;
            }
            let len = chunk.len();
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', chunk) {
                let going = if cut.is_empty() {
                    lines.line(self, &chunk[start..end])
                } else {
                    cut.extend_from_slice(&chunk[start..end]);
                    let going = lines.line(self, &cut);
                    cut.clear();
                    going
                };
                if !going {
                    return Ok(()); // the source was dropped: stop reading
                }
                start = end + 1;
            }
            cut.extend_from_slice(&chunk[start..]);
            reader.consume(len);
        }
        if !cut.is_empty() && !lines.line(self, &cut) {
            return Ok(());
        }
        if !lines.batch.is_empty() {
            let _ = tx.blocking_send(Ok(lines.batch));
        }
        Ok(())
    }

    /// `Ok(None)` for lines that carry no trade: acks and CSV headers.
    fn parse(&self, line: &[u8]) -> Result<Option<Trade>, Rejection> {
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

    fn reject(&mut self, line: u64, rejection: Rejection) {
        self.rejected += 1;
        let reason = rejection.reason();
        self.metrics.reject(reason);
        if self.rejected <= LOGGED_REJECTS {
            tracing::warn!(path = %self.path, line, reason, error = %rejection, "skipping malformed line");
        } else {
            tracing::debug!(path = %self.path, line, reason, error = %rejection, "skipping malformed line");
        }
    }

    fn finish(&self) {
        if self.rejected > LOGGED_REJECTS {
            tracing::warn!(path = %self.path, rejected = self.rejected, "replay skipped malformed lines");
        }
    }
}

/// The lines read so far: the batch being filled and where it is going.
struct Lines<'a> {
    batch: Vec<Trade>,
    line_no: u64,
    tx: &'a mpsc::Sender<Batch>,
}

impl Lines<'_> {
    /// Handles one line (without its `\n`); `false` once nobody listens.
    fn line(&mut self, parser: &mut LineParser, raw: &[u8]) -> bool {
        self.line_no += 1;
        let line = raw.trim_ascii();
        if line.is_empty() {
            return true;
        }
        match parser.parse(line) {
            Ok(Some(trade)) => self.batch.push(trade),
            Ok(None) => {}
            Err(rejection) => parser.reject(self.line_no, rejection),
        }
        if self.batch.len() >= parser.batch_size {
            let full = std::mem::replace(&mut self.batch, Vec::with_capacity(parser.batch_size));
            return self.tx.blocking_send(Ok(full)).is_ok();
        }
        true
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
    fn reason(&self) -> &'static str {
        match self {
            Rejection::Parse(e) => e.reason(),
            Rejection::NotUtf8 => "utf8",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::BufReader;

    use super::*;

    /// Lines cut by every possible buffer end still parse, in order, once.
    #[test]
    fn lines_cut_by_the_buffer_end_are_joined() {
        let frame = |a: u64| {
            format!(
                r#"{{"e":"aggTrade","E":1723161502125,"a":{a},"s":"BTCUSDT","p":"61180.10","q":"0.500","f":5,"l":6,"T":1723161502123,"m":true}}"#
            )
        };
        let text = format!(
            "{}\r\n\n{}\nnot json\n  {}\n{}",
            frame(1),
            frame(2),
            frame(3),
            frame(4)
        );
        for capacity in 1..text.len() + 2 {
            let (tx, mut rx) = mpsc::channel(16);
            let mut parser = LineParser {
                format: LineFormat::Json,
                path: "test".into(),
                metrics: Metrics::new(),
                batch_size: 3,
                rejected: 0,
            };
            let mut reader = BufReader::with_capacity(capacity, text.as_bytes());
            parser.run(&mut reader, &tx).unwrap();
            drop(tx);
            let mut ids = Vec::new();
            while let Ok(batch) = rx.try_recv() {
                ids.extend(batch.unwrap().iter().map(|t| t.id));
            }
            assert_eq!(ids, [1, 2, 3, 4], "buffer of {capacity} bytes");
            assert_eq!(parser.rejected, 1, "buffer of {capacity} bytes");
        }
    }
}
