//! One compact line per closed window, for a terminal.
//!
//! ```text
//! 23:58:22 BTCUSDT    vwap     61615.60  delta   -141.379  buy  16.5%  vol     211.321  trades  1647  DISTRIBUTING
//! ```

use std::io::{ErrorKind, Write};

use async_trait::async_trait;
use pulse_core::Window;

use crate::sink::{SinkError, WindowSink};

/// Formats one window as a terminal line (UTC time of the window start).
pub fn window_line(w: &Window) -> String {
    let time = chrono::DateTime::from_timestamp_millis(w.start_ms).map_or_else(
        || w.start_ms.to_string(),
        |t| t.format("%H:%M:%S").to_string(),
    );
    let price_digits = price_decimals(w.vwap);
    // A re-emitted window (late trades folded in) replaces an earlier line.
    let corrected = if w.version > 1 { "  (corrected)" } else { "" };
    format!(
        "{time} {symbol:<10} vwap {vwap:>12.price_digits$}  delta {delta:>+10.3}  buy {buy:>5.1}%  \
         vol {vol:>11.3}  trades {trades:>5}  {signal}{corrected}",
        symbol = w.symbol,
        vwap = w.vwap,
        delta = w.net_delta,
        buy = w.buy_pressure_pct,
        vol = w.total_volume,
        trades = w.trade_count,
        signal = w.signal,
    )
}

/// Enough decimals to see a tick move, from BTC at 60 000 to coins at 0.001.
fn price_decimals(price: f64) -> usize {
    match price.abs() {
        p if p >= 1000.0 => 2,
        p if p >= 1.0 => 4,
        _ => 6,
    }
}

/// Prints each window as one line to a writer, usually stdout.
#[derive(Debug)]
pub struct TerminalSink<W> {
    out: W,
    /// False once the reader went away (`pulse run | head`): printing stops,
    /// the pipeline goes on.
    open: bool,
}

impl TerminalSink<std::io::Stdout> {
    /// Prints to standard output.
    pub fn stdout() -> Self {
        TerminalSink::new(std::io::stdout())
    }
}

impl<W: Write + Send> TerminalSink<W> {
    /// Prints to `out`.
    pub fn new(out: W) -> Self {
        TerminalSink { out, open: true }
    }

    /// The writer, e.g. to inspect what a test printed.
    pub fn into_inner(self) -> W {
        self.out
    }

    fn print(&mut self, windows: &[Window]) -> std::io::Result<()> {
        for w in windows {
            writeln!(self.out, "{}", window_line(w))?;
        }
        self.out.flush()
    }
}

#[async_trait]
impl<W: Write + Send> WindowSink for TerminalSink<W> {
    fn name(&self) -> &'static str {
        "terminal"
    }

    async fn write_windows(&mut self, windows: &[Window]) -> Result<(), SinkError> {
        if !self.open {
            return Ok(());
        }
        match self.print(windows) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::BrokenPipe => {
                tracing::info!("stdout closed; no longer printing windows");
                self.open = false;
                Ok(())
            }
            Err(source) => Err(SinkError::Io {
                path: "<stdout>".into(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use pulse_core::{Decimal, DecimalSum, Signal, Symbol};

    use super::*;

    fn window(symbol: &str, vwap: f64, delta: f64) -> Window {
        Window {
            symbol: Symbol::new(symbol).unwrap(),
            start_ms: 1_723_161_502_000,
            end_ms: 1_723_161_503_000,
            version: 1,
            vwap,
            net_delta: delta,
            buy_pressure_pct: 66.66666666666667,
            total_volume: 123.456,
            trade_count: 1647,
            avg_price_1_sec: vwap,
            signal: Signal::StrongBuy,
            open: Decimal::ZERO,
            high: Decimal::ZERO,
            low: Decimal::ZERO,
            close: Decimal::ZERO,
            volume: DecimalSum::ZERO,
            buy_volume: DecimalSum::ZERO,
            sell_volume: DecimalSum::ZERO,
            first_trade_id: 1,
            last_trade_id: 2,
        }
    }

    #[test]
    fn line_has_every_field() {
        assert_eq!(
            window_line(&window("BTCUSDT", 61180.166, 12.345)),
            "23:58:22 BTCUSDT    vwap     61180.17  delta    +12.345  buy  66.7%  \
             vol     123.456  trades  1647  STRONG BUY"
        );
        let corrected = Window {
            version: 3,
            ..window("BTCUSDT", 61180.166, 12.345)
        };
        assert!(
            window_line(&corrected).ends_with("STRONG BUY  (corrected)"),
            "{}",
            window_line(&corrected)
        );
        let small = window_line(&window("CHRUSDT", 0.3251234, -4.0));
        assert!(
            small.contains("vwap     0.325123  delta     -4.000"),
            "{small}"
        );
    }

    #[tokio::test]
    async fn prints_one_line_per_window() {
        let mut sink = TerminalSink::new(Vec::new());
        let w = window("BTCUSDT", 1.0, 0.0);
        sink.write_windows(&[w.clone(), w]).await.unwrap();
        let text = String::from_utf8(sink.into_inner()).unwrap();
        assert_eq!(text.lines().count(), 2);
    }
}
