//! When a replayed trade is due: real time × a speed factor, by trade time.

use std::time::Duration;

use tokio::time::Instant;

/// The longest wait for one trade. A tiny speed or a far-off trade time
/// would otherwise overflow `Duration` or `Instant`.
const LONGEST_WAIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// The longest pause between trades, after the speed: a file that joins
/// captures made months apart is not waited on for months.
pub(crate) const LONGEST_PAUSE: Duration = Duration::from_secs(10);

/// Maps trade times to instants. The first trade asked about is due at once
/// and fixes the origin; later ones follow at `speed` times real time,
/// except that a pause longer than [`LONGEST_PAUSE`] is cut to it (the
/// origin moves on; windows go by trade time and are unchanged). A trade
/// older than the origin (times may step back across symbols) is due at
/// once.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pacer {
    speed: f64,
    origin: Option<(i64, Instant)>,
    /// The newest trade time asked about, and when it is due.
    newest: Option<(i64, Instant)>,
}

impl Pacer {
    /// `speed` must be finite and positive (checked by the caller).
    pub(crate) fn new(speed: f64) -> Self {
        Pacer {
            speed,
            origin: None,
            newest: None,
        }
    }

    /// The instant at which a trade at `trade_time_ms` is due; asked again
    /// for the same trade, the same instant.
    pub(crate) fn due(&mut self, trade_time_ms: i64, now: Instant) -> Instant {
        let mut due = self.paced(trade_time_ms, now);
        if let Some((newest_ms, newest_due)) = self.newest
            && trade_time_ms > newest_ms
            && due > newest_due + LONGEST_PAUSE
        {
            due = newest_due + LONGEST_PAUSE;
            tracing::info!(
                paused_ms = trade_time_ms - newest_ms,
                waiting = ?LONGEST_PAUSE,
                "the recording pauses for longer than a replay waits: going on sooner"
            );
            self.origin = Some((trade_time_ms, due));
        }
        if self
            .newest
            .is_none_or(|(newest_ms, _)| trade_time_ms > newest_ms)
        {
            self.newest = Some((trade_time_ms, due));
        }
        due
    }

    fn paced(&mut self, trade_time_ms: i64, now: Instant) -> Instant {
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
    fn tiny_speeds_and_far_times_pause_at_most_the_longest_pause() {
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
                LONGEST_PAUSE,
                "speed {speed}"
            );
        }
    }

    #[test]
    fn a_pause_of_months_is_cut_and_the_pace_goes_on_after_it() {
        let start = Instant::now();
        let mut pacer = Pacer::new(10.0);
        let year_ms = 365 * 24 * 3600 * 1000;
        let offsets: Vec<u128> = [0, 20_000, year_ms, year_ms, year_ms - 5, year_ms + 50_000]
            .iter()
            .map(|&t| (pacer.due(1_000 + t, start) - start).as_millis())
            .collect();
        // 2 s, then 10 s for the year (asked twice, the same), a trade
        // stepping back at once, then 5 s on at 10×.
        assert_eq!(offsets, [0, 2_000, 12_000, 12_000, 12_000, 17_000]);
    }
}
