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
    fn run(&mut self, reader: &mut dyn BufRead, tx: &mpsc::Sender<Batch>) -> io::Result<()> {
        let mut buf = Vec::new();
        let mut batch = Vec::with_capacity(self.batch_size);
        let mut line_no = 0u64;
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf)? == 0 {
                break;
            }
            line_no += 1;
            let line = buf.trim_ascii();
            if line.is_empty() {
                continue;
            }
            match self.parse(line) {
                Ok(Some(trade)) => batch.push(trade),
                Ok(None) => {}
                Err(rejection) => self.reject(line_no, rejection),
            }
            if batch.len() >= self.batch_size
                && tx.blocking_send(Ok(std::mem::take(&mut batch))).is_err()
            {
                // The source was dropped: stop reading.
                return Ok(());
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(Ok(batch));
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
