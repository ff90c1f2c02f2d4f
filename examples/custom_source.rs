//! Your own trade feed: implement [`pulse_io::TradeSource`] and the pulse
//! pipeline aggregates it like Binance data.
//!
//! ```sh
//! cargo run --example custom_source
//! ```
//!
//! The source below simulates a market: a seeded random walk, 20 trades per
//! simulated second for 30 seconds, handed out in batches. A real source
//! would read a socket, a file or another exchange's API; the contract is:
//! - `next_trades` appends the next trades to `out` and returns `Ok(true)`,
//!   or `Ok(false)` once the feed has ended for good;
//! - within a symbol, trades come in id order, each once (pulse drops and
//!   counts duplicates, and reports skipped ids as gaps);
//! - `next_trades` is cancel-safe: the pipeline drops it when a timer fires
//!   first, so it must not hold a trade it has taken across an await (keep
//!   it in `self` until it is in `out`);
//! - `is_live` says whether trade times follow the wall clock. Live sources
//!   let the pipeline close a quiet symbol's last window by the clock;
//!   replays and simulations like this one are driven by their own times.

use pulse_core::{Aggregator, AggregatorConfig, Decimal, SCALE, Side, Symbol, Trade, TradeKind};
use pulse_io::{
    CancellationToken, Metrics, Pipeline, PipelineSummary, SourceError, TerminalSink, TradeSource,
    async_trait,
};

/// A deterministic random-walk market for one symbol.
#[derive(Debug)]
struct RandomWalk {
    symbol: Symbol,
    /// State of the xorshift generator: the same seed gives the same trades.
    rng: u64,
    next_id: u64,
    time_ms: i64,
    /// Price in units of 10^-8 (pulse-core's fixed-point scale).
    price: i64,
    remaining: u64,
    batch: usize,
}

impl RandomWalk {
    fn new(symbol: &str, seed: u64, start_ms: i64, trades: u64) -> anyhow::Result<Self> {
        Ok(RandomWalk {
            symbol: Symbol::new(symbol)?,
            rng: seed.max(1),
            next_id: 1,
            time_ms: start_ms,
            price: 60_000 * SCALE,
            remaining: trades,
            batch: 64,
        })
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64: tiny, fast and good enough to simulate a tape.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn next_trade(&mut self) -> Trade {
        let r = self.next_random();
        // Tick of 0.10, up to ±3 ticks; 0.001 to 0.5 units; 50 ms apart.
        let ticks = (r % 7) as i64 - 3;
        self.price += ticks * SCALE / 10;
        let quantity = Decimal::from_raw(((r >> 8) % 500 + 1) as i64 * SCALE / 1000);
        let side = if (r >> 20) % 100 < 52 {
            Side::Buy
        } else {
            Side::Sell
        };
        let id = self.next_id;
        let trade = Trade {
            symbol: self.symbol,
            id,
            kind: TradeKind::AggTrade,
            price: Decimal::from_raw(self.price),
            quantity,
            side,
            trade_time_ms: self.time_ms,
            event_time_ms: self.time_ms,
            first_trade_id: id,
            last_trade_id: id,
        };
        self.next_id += 1;
        self.time_ms += 50;
        trade
    }
}

#[async_trait]
impl TradeSource for RandomWalk {
    async fn next_trades(&mut self, out: &mut Vec<Trade>) -> Result<bool, SourceError> {
        let n = self.remaining.min(self.batch as u64);
        for _ in 0..n {
            let trade = self.next_trade();
            out.push(trade);
        }
        self.remaining -= n;
        Ok(self.remaining > 0)
    }

    fn is_live(&self) -> bool {
        false
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let summary = run(std::io::stdout()).await?;
    println!(
        "{} trades, {} windows, {} duplicates, {} gaps",
        summary.trades, summary.windows, summary.duplicates, summary.gaps
    );
    Ok(())
}

/// Aggregates 30 simulated seconds and prints each window to `out`.
pub(crate) async fn run(
    out: impl std::io::Write + Send + 'static,
) -> anyhow::Result<PipelineSummary> {
    // From 2024-08-08 23:58:20 UTC, 600 trades = 30 simulated seconds.
    let source = RandomWalk::new("SIMUSDT", 42, 1_723_161_500_000, 600)?;
    let summary = Pipeline::new(Box::new(source), Metrics::new())
        .aggregator(Aggregator::new(AggregatorConfig::default())?)
        .window_sink(Box::new(TerminalSink::new(out)))
        .run(CancellationToken::new())
        .await?;
    Ok(summary)
}
