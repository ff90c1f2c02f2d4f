//! An estimate of how far the local wall clock is from Binance's, for the
//! operator only: nothing in pulse compares the two clocks.

use std::time::Duration;

use tokio::time::Instant;

use crate::metrics::Metrics;

/// Offsets above this are logged: past it, wall-clock tools mislead.
const NOTABLE_MS: i64 = 1_000;

/// The second smallest `local wall clock − event time` seen per interval
/// (the smallest when only one was): the clock offset plus a fast
/// delivery, so an upper bound on the offset when the local clock leads.
/// Not the smallest, which one frame with a wrong time ahead would set.
#[derive(Debug)]
pub(super) struct ClockOffset {
    interval: Duration,
    since: Instant,
    /// The two smallest offsets this interval, smallest first.
    smallest: [Option<i64>; 2],
    notable: bool,
}

impl ClockOffset {
    pub(super) fn new(interval: Duration) -> Self {
        ClockOffset {
            interval,
            since: Instant::now(),
            smallest: [None, None],
            notable: false,
        }
    }

    /// A batch whose oldest event time is `event_ms` arrived at `local_ms`.
    pub(super) fn observe(&mut self, local_ms: i64, event_ms: i64, metrics: &Metrics) {
        let offset = local_ms.saturating_sub(event_ms);
        match self.smallest {
            [None, _] => self.smallest[0] = Some(offset),
            [Some(first), _] if offset < first => self.smallest = [Some(offset), Some(first)],
            [Some(_), second] if second.is_none_or(|s| offset < s) => {
                self.smallest[1] = Some(offset);
            }
            _ => {}
        }
        if self.since.elapsed() < self.interval {
            return;
        }
        let [first, second] = std::mem::take(&mut self.smallest);
        let Some(estimate) = second.or(first) else {
            return;
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn reports_the_second_smallest_offset_per_interval() {
        let metrics = Metrics::new();
        let mut clock = ClockOffset::new(Duration::from_secs(10));
        clock.observe(10_000, 4_800, &metrics); // 5.2 s
        clock.observe(11_000, 5_950, &metrics); // 5.05 s
        // A frame dated a day ahead: -1 day, the smallest, left out.
        clock.observe(11_500, 86_411_500, &metrics);
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
