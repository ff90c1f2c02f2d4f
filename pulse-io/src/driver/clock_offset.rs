//! An estimate of how far the local wall clock is from Binance's, for the
//! operator only: nothing in pulse compares the two clocks.

use std::time::Duration;

use tokio::time::Instant;

use crate::metrics::Metrics;

/// Offsets above this are logged: past it, wall-clock tools mislead.
const NOTABLE_MS: i64 = 1_000;

/// Offsets this far below the interval's median are frames with a wrong
/// time ahead, not fast deliveries.
const WRONG_AHEAD_MS: i64 = 60_000;

/// Offsets kept per interval; past it the interval's first ones decide.
const MAX_OFFSETS: usize = 1 << 16;

/// The smallest `local wall clock − event time` seen per interval: the
/// clock offset plus a fast delivery, so an upper bound on the offset when
/// the local clock leads. Offsets a minute or more below the interval's
/// median are left out: frames with a wrong time ahead would set them.
#[derive(Debug)]
pub(super) struct ClockOffset {
    interval: Duration,
    since: Instant,
    /// The offsets this interval, one per batch.
    offsets: Vec<i64>,
    notable: bool,
}

impl ClockOffset {
    pub(super) fn new(interval: Duration) -> Self {
        ClockOffset {
            interval,
            since: Instant::now(),
            offsets: Vec::new(),
            notable: false,
        }
    }

    /// A batch whose oldest event time is `event_ms` arrived at `local_ms`.
    pub(super) fn observe(&mut self, local_ms: i64, event_ms: i64, metrics: &Metrics) {
        if self.offsets.len() < MAX_OFFSETS {
            self.offsets.push(local_ms.saturating_sub(event_ms));
        }
        if self.since.elapsed() < self.interval {
            return;
        }
        let Some(estimate) = fastest_delivery(&mut self.offsets) else {
            return;
        };
        self.offsets.clear();
        self.since = Instant::now();
        metrics.clock_offset.set(estimate as f64 / 1000.0);
        let notable = estimate.abs() > NOTABLE_MS;
        if notable && !self.notable {
            tracing::warn!(
                offset_ms = estimate,
                "the local clock differs from Binance's event time by more than a second; windows and pulse's latency histograms are unaffected"
            );
        } else if !notable && self.notable {
            tracing::info!(
                offset_ms = estimate,
                "the local clock agrees with Binance's again"
            );
        }
        self.notable = notable;
    }
}

/// The smallest of `offsets` not a minute or more below their median.
fn fastest_delivery(offsets: &mut [i64]) -> Option<i64> {
    if offsets.is_empty() {
        return None;
    }
    let middle = offsets.len() / 2;
    let median = *offsets.select_nth_unstable(middle).1;
    let floor = median.saturating_sub(WRONG_AHEAD_MS);
    offsets.iter().copied().filter(|o| *o > floor).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn reports_the_smallest_offset_per_interval_but_wrong_times_ahead() {
        let metrics = Metrics::new();
        let mut clock = ClockOffset::new(Duration::from_secs(10));
        clock.observe(10_000, 4_800, &metrics); // 5.2 s
        clock.observe(11_000, 5_950, &metrics); // 5.05 s
        // Frames dated a day and a year ahead: left out.
        clock.observe(11_500, 86_411_500, &metrics);
        clock.observe(11_600, 31_536_011_600, &metrics);
        clock.observe(11_700, 6_500, &metrics); // 5.2 s
        tokio::time::advance(Duration::from_secs(10)).await;
        clock.observe(12_000, 6_800, &metrics); // 5.2 s, ends the interval
        assert_eq!(metrics.clock_offset.get(), 5.05);
        assert!(clock.notable);
        tokio::time::advance(Duration::from_secs(10)).await;
        clock.observe(20_000, 19_990, &metrics);
        assert_eq!(metrics.clock_offset.get(), 0.01);
        assert!(!clock.notable);
    }
}
