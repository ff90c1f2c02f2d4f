//! The live trades' event times as they arrived, for the estimate of the
//! local clock's offset from Binance's.

use tokio::time::Instant;

/// The oldest event time fed since last taken, with when it was fed. A
/// trade can be handed on long after it came (held behind a gap until a
/// backfill fills it); paired with the wall clock then, its event time
/// would say the local clock is ahead by the wait.
#[derive(Debug, Default)]
pub(super) struct Arrivals {
    oldest: Option<(i64, Instant)>,
}

impl Arrivals {
    /// A live trade with event time `event_ms` came at `at`.
    pub(super) fn fed(&mut self, event_ms: i64, at: Instant) {
        // The largest offset at arrival wins: the oldest of a moment, so
        // that one frame with a wrong time ahead cannot move it.
        let larger = match self.oldest {
            None => true,
            Some((oldest, then)) => {
                let since = at.saturating_duration_since(then).as_millis() as i64;
                event_ms < oldest.saturating_add(since)
            }
        };
        if larger {
            self.oldest = Some((event_ms, at));
        }
    }

    /// The oldest event time, moved on by the time since it came: what it
    /// would have been had it come `now`, to pair with the wall clock now.
    pub(super) fn take(&mut self, now: Instant) -> Option<i64> {
        let (event_ms, at) = self.oldest.take()?;
        let since = now.saturating_duration_since(at).as_millis() as i64;
        Some(event_ms.saturating_add(since))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn trades_of_one_moment_give_the_oldest() {
        let at = Instant::now();
        let mut arrivals = Arrivals::default();
        for event in [1_000, 900, 1_100] {
            arrivals.fed(event, at);
        }
        assert_eq!(arrivals.take(at), Some(900));
        assert_eq!(arrivals.take(at), None, "taken");
    }

    #[test]
    fn a_trade_handed_on_later_counts_from_when_it_came() {
        let came = Instant::now();
        let mut arrivals = Arrivals::default();
        arrivals.fed(5_000, came);
        // Held 11 s behind a gap, then handed on: 11 s on the wall clock
        // since it came, so its event time moves on by as much.
        assert_eq!(arrivals.take(came + Duration::from_secs(11)), Some(16_000));
        // A trade 2 s later that was 1.5 s in flight has the larger offset
        // (1.5 s against 1 s): it is the one kept.
        arrivals.fed(4_000, came);
        arrivals.fed(5_500, came + Duration::from_secs(2));
        assert_eq!(arrivals.take(came + Duration::from_secs(2)), Some(5_500));
        arrivals.fed(4_000, came);
        arrivals.fed(5_000, came + Duration::from_secs(2));
        assert_eq!(arrivals.take(came + Duration::from_secs(2)), Some(5_000));
    }
}
