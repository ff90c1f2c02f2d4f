//! Retry delays: exponential backoff with jitter, shared by reconnects and
//! sink retries.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Backoff settings. Plain data with sensible defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First delay.
    pub initial: Duration,
    /// Largest delay.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A fresh, endless sequence of delays: doubling from `initial` up to
    /// `max`, each with random jitter so many clients do not retry in step.
    pub fn delays(&self) -> Backoff {
        Backoff {
            inner: self.builder().build(),
            policy: *self,
        }
    }

    fn builder(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.initial)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
    }
}

/// Delays for one run of retries; [`Backoff::reset`] after a success.
#[derive(Debug)]
pub struct Backoff {
    inner: backon::ExponentialBackoff,
    policy: RetryPolicy,
}

impl Backoff {
    /// The next delay to wait before retrying.
    pub fn next_delay(&mut self) -> Duration {
        self.inner.next().unwrap_or(self.policy.max)
    }

    /// Starts again from the initial delay.
    pub fn reset(&mut self) {
        self.inner = self.policy.builder().build();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_reset() {
        let policy = RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(800),
        };
        let mut b = policy.delays();
        let first = b.next_delay();
        assert!(
            first >= Duration::from_millis(100) && first <= Duration::from_millis(200),
            "{first:?}"
        );
        let later: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        assert!(
            later.iter().all(|d| *d <= Duration::from_millis(1600)),
            "{later:?}"
        );
        assert!(later.last().unwrap() >= &Duration::from_millis(800));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(200));
    }
}
