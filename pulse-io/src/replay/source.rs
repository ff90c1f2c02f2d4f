//! [`ReplaySource`]: a [`TradeSource`] reading a recorded file.

use std::collections::VecDeque;
use std::path::Path;

use async_trait::async_trait;
use pulse_core::{Symbol, Trade};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::format::{ReplayFormat, symbol_from_file_name};
use super::lines::{Input, Opened, STDIN, shown};
use super::pace::Pacer;
use super::reader::{self, Batch, LineFormat, LineParser};
use super::symbols::SymbolFilter;
use crate::{Metrics, SourceError, TradeSource};

/// How to replay a file.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayOptions {
    /// `None` replays as fast as possible; `Some(x)` paces by trade time at
    /// `x` times real time (`2.0` is twice as fast). Must be positive.
    pub speed: Option<f64>,
    /// The symbol of a dump CSV or zip whose name (or whose CSVs' names)
    /// does not say it, like `BTCUSDT-aggTrades-2024-08-08.csv` does; the
    /// names win when they do. Ignored for JSONL, whose frames name their
    /// symbol.
    pub symbol: Option<Symbol>,
    /// Most trades handed out per call when unpaced.
    pub batch_size: usize,
    /// Which symbols' trades are handed out; every symbol by default.
    pub symbols: SymbolFilter,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            speed: None,
            symbol: None,
            batch_size: 1024,
            symbols: SymbolFilter::All,
        }
    }
}

/// Opens a replay file, choosing the reader by extension (see
/// [`ReplayFormat::from_path`]), or by the file's first bytes when the name
/// does not say.
///
/// ```no_run
/// # async fn demo() -> Result<(), pulse_io::SourceError> {
/// use pulse_io::replay::{ReplayOptions, open_replay};
/// let mut source = open_replay("capture.jsonl.gz", ReplayOptions::default(), pulse_io::Metrics::new())?;
/// let mut trades = Vec::new();
/// while source.next_trades(&mut trades).await? {}
/// # Ok(()) }
/// ```
pub fn open_replay(
    path: impl AsRef<Path>,
    options: ReplayOptions,
    metrics: Metrics,
) -> Result<Box<dyn TradeSource>, SourceError> {
    Ok(Box::new(ReplaySource::open(path, options, metrics)?))
}

/// Trades from a file, in file order; see the [module docs](super).
#[derive(Debug)]
pub struct ReplaySource {
    batches: mpsc::Receiver<Batch>,
    pending: VecDeque<Trade>,
    pacer: Option<Pacer>,
    ended: bool,
}

impl ReplaySource {
    /// Opens `path` and starts reading it on a background thread.
    ///
    /// Fails at once when the file cannot be opened, its format is unknown,
    /// the speed is not positive, or a dump's symbol cannot be told.
    pub fn open(
        path: impl AsRef<Path>,
        options: ReplayOptions,
        metrics: Metrics,
    ) -> Result<Self, SourceError> {
        let path = path.as_ref();
        let shown = shown(path);
        if let Some(speed) = options.speed
            && !(speed.is_finite() && speed > 0.0)
        {
            return Err(SourceError::Config(format!(
                "replay speed must be a positive number, got {speed}"
            )));
        }
        let no_symbol = || {
            SourceError::Config(format!(
                "{shown} does not name its symbol (like BTCUSDT-aggTrades-2024-08-08.csv or BTCUSDT-trades-2024-08-08.csv): give the symbol explicitly (pulse: --symbols ETHUSDT)"
            ))
        };
        let named = symbol_from_file_name(path);
        let needs_symbol = |format| {
            matches!(format, ReplayFormat::Csv { .. }) && options.symbol.or(named).is_none()
        };
        let by_name = ReplayFormat::from_path(path);
        // Known before opening, which may wait (a FIFO without a writer).
        if by_name.is_some_and(needs_symbol) {
            return Err(no_symbol());
        }
        let opened = Opened::open(path, by_name.is_some()).map_err(|source| SourceError::Io {
            path: shown.clone(),
            source,
        })?;
        let format = match by_name {
            Some(format) => format,
            None => {
                let format = opened.format().ok_or_else(|| {
                    SourceError::Config(if let Some(kind) = opened.other_content() {
                        format!(
                            "{shown} is {kind}, which pulse does not read: decompress it, or compress it with gzip"
                        )
                    } else if path == Path::new(STDIN) {
                        "cannot tell the format of standard input from its first bytes: \
                         pipe in JSONL frames or a dump CSV, plain or gzip"
                            .to_string()
                    } else {
                        format!(
                            "cannot tell the format of {shown}: name it .jsonl, .jsonl.gz, .csv, .csv.gz or .zip"
                        )
                    })
                })?;
                tracing::info!(path = %shown, ?format, "the name does not say the format; read from the first bytes");
                if needs_symbol(format) {
                    return Err(no_symbol());
                }
                format
            }
        };
        let input = Input::new(opened, format)?;
        let lines = match format {
            ReplayFormat::Jsonl { .. } => LineFormat::Json,
            ReplayFormat::Csv { .. } | ReplayFormat::Zip => {
                let symbol = match (named, input.named_symbol()) {
                    // Either label would be silently wrong for some rows.
                    (Some(zip), Some(csvs)) if zip != csvs => {
                        return Err(SourceError::Config(format!(
                            "{shown} is named for {zip} but its CSVs for {csvs}: rename one"
                        )));
                    }
                    (zip, csvs) => zip.or(csvs),
                };
                // What the names say wins: a symbol filter then keeps or
                // leaves out its trades, as for any other file.
                LineFormat::Csv(symbol.or(options.symbol).ok_or_else(no_symbol)?)
            }
        };
        let parser = LineParser::new(lines, options.batch_size, options.symbols);
        let batches = reader::spawn(input, parser, shown, metrics)?;
        Ok(ReplaySource {
            batches,
            pending: VecDeque::new(),
            pacer: options.speed.map(Pacer::new),
            ended: false,
        })
    }
}

#[async_trait]
impl TradeSource for ReplaySource {
    // Cancel-safe: trades taken from the channel wait in `pending`, and the
    // pacing sleep is recomputed from state on every call.
    async fn next_trades(&mut self, out: &mut Vec<Trade>) -> Result<bool, SourceError> {
        // What `out` held before is the caller's: wait for trades of our own.
        let before = out.len();
        loop {
            if self.pending.is_empty() {
                if self.ended {
                    return Ok(false);
                }
                match self.batches.recv().await {
                    // Unpaced, a batch is handed on whole, without a copy.
                    Some(Ok(batch)) if self.pacer.is_none() => {
                        if out.is_empty() {
                            *out = batch;
                        } else {
                            out.extend(batch);
                        }
                        return Ok(true);
                    }
                    Some(Ok(batch)) => self.pending.extend(batch),
                    Some(Err(e)) => {
                        self.ended = true;
                        return Err(e);
                    }
                    None => {
                        self.ended = true;
                        return Ok(false);
                    }
                }
                continue;
            }
            let Some(pacer) = self.pacer.as_mut() else {
                out.extend(self.pending.drain(..));
                return Ok(true);
            };
            let now = Instant::now();
            let mut next_due = None;
            while let Some(trade) = self.pending.front() {
                let due = pacer.due(trade.trade_time_ms, now);
                if due > now {
                    next_due = Some(due);
                    break;
                }
                out.extend(self.pending.pop_front());
            }
            if out.len() > before {
                return Ok(true);
            }
            if let Some(due) = next_due {
                tokio::time::sleep_until(due).await;
            }
        }
    }

    fn is_live(&self) -> bool {
        false
    }
}
