//! CSV export of closed windows (`pulse run --csv FILE`, or `--csv -` for
//! standard output).
//!
//! The header uses the `pulse_metrics` column names: first the original
//! design's columns, then `symbol`, the extras and `version` (as stored, see
//! [`row_version`]), so the file loads into the table as is. Times are
//! RFC 3339 UTC with milliseconds. Floats use Rust's shortest round-trip
//! form and decimals their exact form, so the same trades always give the
//! same bytes.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use pulse_core::Window;

use crate::row_version::row_version;
use crate::sink::{SinkError, WindowSink};
use crate::time::utc_rfc3339_ms;

/// The header row, without the line end.
pub const CSV_HEADER: &str = "window_start,window_end,vwap,net_delta,buy_pressure_pct,\
total_volume,trade_count,avg_price_1_sec,signal,symbol,open,high,low,close,buy_volume,\
sell_volume,first_trade_id,last_trade_id,version";

/// One window as a CSV line, without the line end. Columns as [`CSV_HEADER`].
pub fn csv_row(w: &Window) -> String {
    let mut line = String::with_capacity(256);
    // Writing into a String cannot fail. No field can hold a comma or quote:
    // symbols are alphanumeric and signals are fixed words.
    let _ = write!(
        line,
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
        utc_rfc3339_ms(w.start_ms),
        utc_rfc3339_ms(w.end_ms),
        w.vwap,
        w.net_delta,
        w.buy_pressure_pct,
        w.total_volume,
        w.trade_count,
        w.avg_price_1_sec,
        w.signal,
        w.symbol,
        w.open,
        w.high,
        w.low,
        w.close,
        w.buy_volume,
        w.sell_volume,
        w.first_trade_id,
        w.last_trade_id,
        row_version(w),
    );
    line
}

/// Writes windows to a CSV file, one row each, flushed after every batch so
/// the file can be followed while pulse runs.
pub struct CsvSink {
    path: PathBuf,
    out: BufWriter<Box<dyn Write + Send>>,
    /// The file again, to sync at the end; none for standard output.
    file: Option<File>,
}

impl std::fmt::Debug for CsvSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvSink").field("path", &self.path).finish()
    }
}

impl CsvSink {
    /// Creates (or truncates) `path` and writes the header.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, SinkError> {
        let path = path.as_ref().to_path_buf();
        let io_error = |source| SinkError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = File::create(&path).map_err(io_error)?;
        let sync = file.try_clone().map_err(io_error)?;
        Self::start(path, Box::new(file), Some(sync))
    }

    /// Writes to standard output, e.g. for a pipe into another tool.
    pub fn stdout() -> Result<Self, SinkError> {
        let path = PathBuf::from("standard output");
        Self::start(path, Box::new(std::io::stdout()), None)
    }

    fn start(
        path: PathBuf,
        out: Box<dyn Write + Send>,
        file: Option<File>,
    ) -> Result<Self, SinkError> {
        let mut sink = CsvSink {
            path,
            out: BufWriter::new(out),
            file,
        };
        sink.write_line(CSV_HEADER)?;
        sink.flush_file()?;
        Ok(sink)
    }

    fn write_line(&mut self, line: &str) -> Result<(), SinkError> {
        let result = self
            .out
            .write_all(line.as_bytes())
            .and_then(|()| self.out.write_all(b"\n"));
        result.map_err(|e| self.io_error(e))
    }

    fn flush_file(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(|e| self.io_error(e))
    }

    fn io_error(&self, source: std::io::Error) -> SinkError {
        SinkError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }
}

#[async_trait]
impl WindowSink for CsvSink {
    fn name(&self) -> &'static str {
        "csv"
    }

    // Blocking writes to a local file: a batch is a few kilobytes, far less
    // than one scheduler tick, so a blocking-pool hop would cost more.
    async fn write_windows(&mut self, windows: &[Window]) -> Result<(), SinkError> {
        for w in windows {
            self.write_line(&csv_row(w))?;
        }
        self.flush_file()
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        self.flush_file()?;
        let Some(file) = &self.file else {
            return Ok(());
        };
        match file.sync_all() {
            // A pipe or a device (`--csv /dev/stdout`, `/dev/null`) has
            // nothing to sync, and says so with EINVAL.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Ok(()),
            synced => synced.map_err(|e| self.io_error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use pulse_core::{Decimal, Signal, Symbol};

    use super::*;

    fn window() -> Window {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        Window {
            symbol: Symbol::new("BTCUSDT").unwrap(),
            start_ms: 1_723_161_502_000,
            end_ms: 1_723_161_503_000,
            // A second emission: the `version` column is still the count.
            version: 2,
            vwap: 61180.166666666664,
            net_delta: 0.25,
            buy_pressure_pct: 66.66666666666667,
            total_volume: 0.75,
            trade_count: 2,
            avg_price_1_sec: 61180.2,
            signal: Signal::StrongBuy,
            open: d("61180.1"),
            high: d("61180.3"),
            low: d("61180.1"),
            close: d("61180.3"),
            volume: d("0.75").into(),
            buy_volume: d("0.5").into(),
            sell_volume: d("0.25").into(),
            first_trade_id: 1,
            last_trade_id: 2,
        }
    }

    #[test]
    fn formats_times_as_rfc3339_utc_millis() {
        assert_eq!(
            utc_rfc3339_ms(1_723_161_502_000),
            "2024-08-08T23:58:22.000Z"
        );
        assert_eq!(
            utc_rfc3339_ms(1_723_161_502_007),
            "2024-08-08T23:58:22.007Z"
        );
        assert_eq!(utc_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn row_matches_header() {
        let row = csv_row(&window());
        assert_eq!(
            row,
            "2024-08-08T23:58:22.000Z,2024-08-08T23:58:23.000Z,61180.166666666664,0.25,\
             66.66666666666667,0.75,2,61180.2,STRONG BUY,BTCUSDT,61180.1,61180.3,61180.1,\
             61180.3,0.5,0.25,1,2,2"
        );
        assert_eq!(
            row.split(',').count(),
            CSV_HEADER.split(',').count(),
            "one field per column"
        );
    }

    #[tokio::test]
    async fn writes_header_and_rows() {
        let path = std::env::temp_dir().join(format!("pulse-csv-{}.csv", std::process::id()));
        let mut sink = CsvSink::create(&path).unwrap();
        sink.write_windows(&[window(), window()]).await.unwrap();
        sink.flush().await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(lines[1], csv_row(&window()));
    }

    /// Devices and pipes cannot be synced; writing to them still works.
    #[tokio::test]
    async fn writes_to_a_device() {
        let mut sink = CsvSink::create("/dev/null").unwrap();
        sink.write_windows(&[window()]).await.unwrap();
        sink.flush().await.unwrap();
    }
}
