//! Settings and results of a [`Consumer`](super::Consumer) run.

use std::time::Duration;

use pulse_core::{AggregatorConfig, LatePolicy, WatermarkPolicy};

use super::{ConsumeError, PartitionSelection};
use crate::kafka::FetchConfig;
use crate::retry::RetryPolicy;

/// What to consume and how. Plain data with defaults; checked by
/// [`validate`](Self::validate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// Topic to read. Default `trades_btc`.
    pub topic: String,
    /// Partitions this consumer takes. Default all.
    pub partitions: PartitionSelection,
    /// Fetch sizes and waits.
    pub fetch: FetchConfig,
    /// Window settings. Windows must be whole seconds (`pulse_metrics` keys
    /// on a `DateTime`), the watermark trails by the lateness (the topic's
    /// order is not known to follow ids; the producer's progress markers
    /// close windows sooner), sequence tracking is replaced by the
    /// consumer's own duplicate check. Late trades re-emit their window
    /// within `late_retention_ms` (default); restarts replay that far back.
    pub aggregator: AggregatorConfig,
    /// Least time between two inserts into the windows table (and the
    /// positions table). Default 500 ms: two inserts per second per table.
    pub insert_interval: Duration,
    /// Store early once this many windows wait. Default 100 000.
    pub max_pending_windows: usize,
    /// Backoff while ClickHouse or the broker is unreachable.
    pub retry: RetryPolicy,
    /// Attempts to store pending windows after shutdown was requested,
    /// before giving up with an error. Default 5.
    pub shutdown_attempts: u32,
    /// How often to log progress. Default 10 s.
    pub progress_interval: Duration,
    /// How often to read the topic's partitions while running, so that
    /// partitions the topic gains (and the selection takes) are read
    /// without a restart. Default 5 s; zero turns it off.
    pub partition_refresh: Duration,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            topic: "trades_btc".to_owned(),
            partitions: PartitionSelection::All,
            fetch: FetchConfig::default(),
            aggregator: AggregatorConfig {
                watermark: WatermarkPolicy::Lateness,
                track_sequence: false,
                late_policy: LatePolicy::Reemit,
                ..AggregatorConfig::default()
            },
            insert_interval: Duration::from_millis(500),
            max_pending_windows: 100_000,
            retry: RetryPolicy::default(),
            shutdown_attempts: 5,
            progress_interval: Duration::from_secs(10),
            partition_refresh: Duration::from_secs(5),
        }
    }
}

impl ConsumerConfig {
    /// Checks the settings once, up front.
    pub fn validate(&self) -> Result<(), ConsumeError> {
        let bad = |m: String| Err(ConsumeError::Config(m));
        self.aggregator
            .validate()
            .map_err(|e| ConsumeError::Config(e.to_string()))?;
        if self.aggregator.window_ms % 1000 != 0 {
            return bad(format!(
                "window length must be whole seconds for pulse_metrics, got {} ms",
                self.aggregator.window_ms
            ));
        }
        if self.aggregator.track_sequence {
            return bad("track_sequence must be off: the consumer drops duplicates itself".into());
        }
        if self.aggregator.watermark != WatermarkPolicy::Lateness {
            return bad(
                "watermark must be Lateness: the topic's order is not known to follow ids".into(),
            );
        }
        if self.topic.is_empty() {
            return bad("topic must not be empty".into());
        }
        if self.max_pending_windows == 0 {
            return bad("max_pending_windows must be > 0".into());
        }
        Ok(())
    }
}

/// Totals for the exit summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsumeSummary {
    /// Partitions read, including ones the topic gained while running.
    pub partitions: Vec<i32>,
    /// Records read and processed.
    pub records: u64,
    /// Records read again after a restart to rebuild open windows.
    pub replayed: u64,
    /// Trades added to windows.
    pub trades: u64,
    /// Duplicate trades dropped.
    pub duplicates: u64,
    /// Trades that came after their window had closed.
    pub late_trades: u64,
    /// Late trades too late to correct their stored window: in no row.
    pub late_uncorrected: u64,
    /// Bad messages counted and skipped.
    pub rejected: u64,
    /// Windows stored.
    pub windows: u64,
    /// Inserts into the windows table.
    pub inserts: u64,
}
