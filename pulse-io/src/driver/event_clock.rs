//! Where a window's end falls on the monotonic clock, for the latency
//! histograms, without the wall clock.
//!
//! Each symbol's newest trade time is pinned to the monotonic instant the
//! pipeline first handled it. A window's end is placed relative to that
//! pin, by the difference of the two trade times: Binance's clock is only
//! compared with itself and the local one with itself, so a skewed local
//! clock, or a replay server years in the past, leaves latencies right.

use std::collections::BTreeMap;
use std::time::Duration;

use pulse_core::Symbol;
use tokio::time::Instant;

/// A symbol's newest trade time and when it was first handled.
#[derive(Debug, Clone, Copy)]
struct Pin {
    trade_ms: i64,
    handled: Instant,
}

/// Each symbol's [`Pin`].
#[derive(Debug, Default)]
pub(super) struct EventClock {
    pins: BTreeMap<Symbol, Pin>,
}

impl EventClock {
    /// `symbol`'s newest trade time is `trade_ms` at `now`; a time seen
    /// before keeps its first instant. A newest time can only fall when the
    /// stage started over (the consumer after a topic reset): that pins anew.
    pub(super) fn handled(&mut self, symbol: Symbol, trade_ms: i64, now: Instant) {
        let pin = Pin {
            trade_ms,
            handled: now,
        };
        let old = self.pins.entry(symbol).or_insert(pin);
        if trade_ms != old.trade_ms {
            *old = pin;
        }
    }

    /// The monotonic instant at which `symbol`'s trade time reached
    /// `time_ms`, as its newest trade places it; `None` before any trade.
    pub(super) fn instant_of(&self, symbol: Symbol, time_ms: i64) -> Option<Instant> {
        let pin = self.pins.get(&symbol)?;
        let ahead = time_ms.saturating_sub(pin.trade_ms);
        let by = Duration::from_millis(ahead.unsigned_abs());
        if ahead >= 0 {
            pin.handled.checked_add(by)
        } else {
            pin.handled.checked_sub(by)
        }
    }
}

/// Seconds from `since` to `now`; zero if `since` is later.
pub(super) fn seconds_between(since: Instant, now: Instant) -> f64 {
    now.saturating_duration_since(since).as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn places_times_relative_to_the_newest_trade() {
        let btc = Symbol::new("BTCUSDT").unwrap();
        let mut clock = EventClock::default();
        assert!(clock.instant_of(btc, 0).is_none());

        // Trade times from 2019: the local clock is never asked.
        let t0 = Instant::now();
        clock.handled(btc, 1_546_300_800_500, t0);
        let later = t0 + Duration::from_secs(3);
        // The same newest time later keeps its first instant.
        clock.handled(btc, 1_546_300_800_500, later);
        // The window [..800_000, ..801_000) ends 0.5 s after the pin.
        let end = clock.instant_of(btc, 1_546_300_801_000).unwrap();
        assert_eq!(end - t0, Duration::from_millis(500));
        assert_eq!(seconds_between(end, later), 2.5);
        // Its window start lies before the pin.
        let start = clock.instant_of(btc, 1_546_300_800_000).unwrap();
        assert_eq!(t0 - start, Duration::from_millis(500));
        // A newer trade moves the pin.
        clock.handled(btc, 1_546_300_802_000, later);
        assert_eq!(
            clock.instant_of(btc, 1_546_300_801_000).unwrap(),
            later - Duration::from_secs(1)
        );
        assert_eq!(seconds_between(later, t0), 0.0);
        // A stage started over with older trades pins them anew.
        let reset = later + Duration::from_secs(100);
        clock.handled(btc, 1_546_300_700_500, reset);
        assert_eq!(
            clock.instant_of(btc, 1_546_300_701_000).unwrap(),
            reset + Duration::from_millis(500)
        );
    }
}
