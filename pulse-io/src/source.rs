//! Where trades come from: the [`TradeSource`] trait, and the [`Source`]
//! of any input the [`Pipeline`](crate::Pipeline) reads.

use async_trait::async_trait;
use pulse_core::{Symbol, Trade};

/// Why a source stopped for good. Recoverable trouble (a dropped socket, a
/// rate limit) is handled inside the source and only logged and counted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// A file could not be opened or read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The source was configured wrongly (bad URL, no symbols, ...).
    #[error("invalid source configuration: {0}")]
    Config(String),
    /// The source could not reach its server and gave up.
    #[error("could not reach {url}: {reason}")]
    Unreachable {
        /// The server address.
        url: String,
        /// Why, in words.
        reason: String,
    },
    /// The broker failed in a way a retry cannot fix.
    #[cfg(feature = "kafka")]
    #[error(transparent)]
    Kafka(#[from] crate::kafka::KafkaError),
    /// Any other fatal failure.
    #[error("{0}")]
    Other(String),
}

/// A stream of trades: live from an exchange, or replayed from a file.
///
/// Implement it to feed your own data into the pulse pipeline. Within one
/// symbol a source should yield trades in id order, each once.
#[async_trait]
pub trait TradeSource: Send {
    /// Waits for more trades and appends them to `out`. Returns `Ok(false)`
    /// once the source has ended (a replay reached end of file); live
    /// sources never end. Trades appended before an error still count.
    ///
    /// It must be cancel-safe: the pipeline waits on it in a `select!`
    /// beside its timers and drops the future when a timer fires first.
    /// Keep what you have read in `self` until it is in `out`, and await
    /// only to wait (a socket read, a channel receive), never between
    /// taking a trade and appending it: a trade taken before such an await
    /// is lost when the future is dropped there.
    async fn next_trades(&mut self, out: &mut Vec<Trade>) -> Result<bool, SourceError>;

    /// True when trade times follow the wall clock, so the driver may close
    /// idle windows with [`pulse_core::Aggregator::advance`]. Replays return
    /// false: their clock is the data itself.
    fn is_live(&self) -> bool {
        true
    }

    /// Symbols whose trades the source holds back for now (behind a gap
    /// being backfilled). The driver keeps their windows open meanwhile,
    /// instead of closing them as idle.
    fn holding(&self) -> Vec<Symbol> {
        Vec::new()
    }

    /// Every symbol the source follows, traded or not. Progress markers
    /// vouch for the quiet ones too (those not [`holding`](Self::holding)),
    /// so a restarted producer knows they were followed and looks up what
    /// they traded meanwhile. Empty by default: only symbols that traded
    /// are vouched for.
    fn followed(&self) -> Vec<Symbol> {
        Vec::new()
    }

    /// The oldest event time (Binance's `E`) of the trades that arrived live
    /// since the last call, for the estimate of the local clock's offset;
    /// `batch` is what the last [`next_trades`](Self::next_trades) gave. By
    /// default the batch's oldest. A source that also hands on trades long
    /// after they arrived (backfilled, or held behind a gap) should leave
    /// those out: they would say the local clock is ahead.
    fn arrived_event_ms(&mut self, batch: &[Trade]) -> Option<i64> {
        oldest_event_ms(batch)
    }
}

/// The oldest event time in `trades`: one frame with a wrong time ahead
/// must not say the clock is a day behind.
pub(crate) fn oldest_event_ms(trades: &[Trade]) -> Option<i64> {
    trades.iter().map(|t| t.event_time_ms).min()
}

/// What a [`Pipeline`](crate::Pipeline) reads: batches of its stage's
/// inputs. Trades come through [`TradeSource`]; `pulse consume` reads Kafka
/// records. `next_batch` must be cancel-safe: the pipeline waits on it in a
/// `select!` beside timers.
#[async_trait]
pub trait Source<I>: Send {
    /// Waits for more inputs and appends them to `out`; `Ok(false)` once the
    /// source has ended. Inputs appended before an error still count.
    async fn next_batch(&mut self, out: &mut Vec<I>) -> Result<bool, SourceError>;

    /// See [`TradeSource::is_live`].
    fn is_live(&self) -> bool {
        true
    }

    /// See [`TradeSource::holding`].
    fn holding(&self) -> Vec<Symbol> {
        Vec::new()
    }

    /// See [`TradeSource::followed`].
    fn followed(&self) -> Vec<Symbol> {
        Vec::new()
    }

    /// See [`TradeSource::arrived_event_ms`]; `trades` are the last batch's.
    fn arrived_event_ms(&mut self, trades: &[Trade]) -> Option<i64> {
        oldest_event_ms(trades)
    }
}

#[async_trait]
impl Source<Trade> for Box<dyn TradeSource> {
    async fn next_batch(&mut self, out: &mut Vec<Trade>) -> Result<bool, SourceError> {
        self.next_trades(out).await
    }

    fn is_live(&self) -> bool {
        self.as_ref().is_live()
    }

    fn holding(&self) -> Vec<Symbol> {
        self.as_ref().holding()
    }

    fn followed(&self) -> Vec<Symbol> {
        self.as_ref().followed()
    }

    fn arrived_event_ms(&mut self, trades: &[Trade]) -> Option<i64> {
        self.as_mut().arrived_event_ms(trades)
    }
}
