//! When a replayed trade is due: real time × a speed factor, by trade time.

use std::time::Duration;

use tokio::time::Instant;

/// The longest wait for one trade. A tiny speed or a far-off trade time
/// would otherwise overflow `Duration` or `Instant`.
const LONGEST_WAIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Maps trade times to instants. The first trade asked about is due at once
/// and fixes the origin; later ones follow at `speed` times real time. A
/// trade older than the origin (times may step back across symbols) is due
/// at once.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pacer {
    speed: f64,
    origin: Option<(i64, Instant)>,
}

impl Pacer {
    /// `speed` must be finite and positive (checked by the caller).
    pub(crate) fn new(speed: f64) -> Self {
        Pacer {
            speed,
            origin: None,
        }
    }

    /// The instant at which a trade at `trade_time_ms` is due.
    pub(crate) fn due(&mut self, trade_time_ms: i64, now: Instant) -> Instant {
        let (t0, start) = *self.origin.get_or_insert((trade_time_ms, now));
        let ahead_ms = trade_time_ms.saturating_sub(t0).max(0) as f64 / self.speed;
        let wait = Duration::try_from_secs_f64(ahead_ms / 1000.0).unwrap_or(LONGEST_WAIT);
        start + wait.min(LONGEST_WAIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_scale_with_speed() {
        // (speed, trade times, expected offsets from the first, in ms)
        let cases: &[(f64, &[i64], &[u64])] = &[
            (1.0, &[1000, 1000, 1500, 4000], &[0, 0, 500, 3000]),
            (2.0, &[1000, 1500, 4000], &[0, 250, 1500]),
            (0.5, &[1000, 1500], &[0, 1000]),
            // Times stepping back across symbols are due at once.
            (1.0, &[5000, 4000, 6000], &[0, 0, 1000]),
        ];
        for (speed, times, offsets) in cases {
            let start = Instant::now();
            let mut pacer = Pacer::new(*speed);
            let got: Vec<u64> = times
                .iter()
                .map(|&t| (pacer.due(t, start) - start).as_millis() as u64)
                .collect();
            assert_eq!(&got, offsets, "speed {speed}");
        }
    }

    #[test]
    fn tiny_speeds_and_far_times_wait_at_most_a_year() {
        let start = Instant::now();
        for (speed, later) in [
            (1e-300, 2000),
            (1e-4, 9_000_000_000_000_000_000),
            (1.0, i64::MAX),
        ] {
            let mut pacer = Pacer::new(speed);
            assert_eq!(pacer.due(1000, start), start);
            assert_eq!(
                pacer.due(later, start) - start,
                LONGEST_WAIT,
                "speed {speed}"
            );
        }
    }
}
