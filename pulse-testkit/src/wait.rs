//! Waiting for a condition with a deadline instead of sleeping.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How often a condition is re-checked.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Polls `condition` until it returns true.
///
/// ```no_run
/// # async fn demo(done: std::sync::Arc<std::sync::atomic::AtomicBool>) {
/// use std::sync::atomic::Ordering;
/// use std::time::Duration;
/// pulse_testkit::wait_until(Duration::from_secs(5), "the flag is set", || {
///     let done = done.clone();
///     async move { done.load(Ordering::SeqCst) }
/// })
/// .await;
/// # }
/// ```
///
/// # Panics
/// When `condition` is still false after `within`; the message names `what`.
pub async fn wait_until<F, Fut>(within: Duration, what: &str, condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    if !poll_until(within, condition).await {
        panic!("timed out after {within:?} waiting until {what}");
    }
}

/// Polls `condition` until it returns true (`true`) or `within` passes (`false`).
pub(crate) async fn poll_until<F, Fut>(within: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn returns_once_the_condition_holds() {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        wait_until(Duration::from_secs(1), "the third call", move || {
            let counter = counter.clone();
            async move { counter.fetch_add(1, Ordering::SeqCst) >= 2 }
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_the_deadline() {
        assert!(!poll_until(Duration::from_millis(100), || async { false }).await);
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "timed out after 100ms waiting until never")]
    async fn wait_until_panics_with_what_it_waited_for() {
        wait_until(Duration::from_millis(100), "never", || async { false }).await;
    }
}
