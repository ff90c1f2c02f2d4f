//! Binance's clock as seen from here: a time on Binance's clock paired with
//! the monotonic instant it was read, so Binance's time at another instant
//! is that time plus the elapsed time between. The local wall clock, which
//! may be seconds or years away from Binance's, plays no part.

use std::time::Duration;

use tokio::time::Instant;

/// A reading of Binance's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BinanceClock {
    ms: i64,
    read_at: Instant,
}

impl BinanceClock {
    /// Binance's clock said `ms` at or before `read_at`: a server time as
    /// its reply arrived, or a trade's time as it was handed on. Reading
    /// late makes every estimate err early, which looks up more, not less.
    pub(crate) fn new(ms: i64, read_at: Instant) -> Self {
        BinanceClock { ms, read_at }
    }

    /// Binance's time at `instant`, before or after the reading, in ms.
    pub(crate) fn at(&self, instant: Instant) -> i64 {
        let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        if instant >= self.read_at {
            self.ms.saturating_add(millis(instant - self.read_at))
        } else {
            self.ms.saturating_sub(millis(self.read_at - instant))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_the_reading_by_elapsed_monotonic_time() {
        let read_at = Instant::now();
        let clock = BinanceClock::new(1_700_000_000_000, read_at);
        assert_eq!(clock.at(read_at), 1_700_000_000_000);
        assert_eq!(
            clock.at(read_at + Duration::from_millis(2_500)),
            1_700_000_002_500
        );
        let earlier = read_at
            .checked_sub(Duration::from_secs(90))
            .expect("the monotonic clock reaches back 90 s");
        assert_eq!(clock.at(earlier), 1_699_999_910_000);
    }
}
