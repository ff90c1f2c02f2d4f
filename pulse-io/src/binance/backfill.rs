//! One backfill: paging `/fapi/v1/aggTrades` from an id until caught up.

use pulse_core::{BackfillOutcome, BackfillRequest, Trade};

use super::config::BackfillConfig;
use super::rest::{RestClient, RestError};
use crate::RetryPolicy;

/// Pages from `req.from_id` until `req.until` is reached or a page comes
/// back short. Transient failures are retried with backoff, rate limits are
/// waited out (by the client), and anything else ends the backfill with
/// what it has.
pub(crate) async fn run(
    rest: &RestClient,
    req: BackfillRequest,
    config: &BackfillConfig,
    retry: RetryPolicy,
) -> BackfillOutcome {
    let mut delays = retry.delays();
    if req.round > 0 {
        let mut wait = delays.next_delay();
        for _ in 1..req.round {
            wait = delays.next_delay();
        }
        tokio::time::sleep(wait).await;
        delays.reset();
    }
    let symbol = req.symbol;
    let mut outcome = BackfillOutcome::default();
    let mut from = req.from_id;
    let mut failures = 0;
    loop {
        match rest.agg_trades(symbol, from, config.page_limit).await {
            Ok(page) => {
                failures = 0;
                delays.reset();
                let full = page.len() >= config.page_limit as usize;
                let Some(highest) = page.iter().map(|t| t.id).max().filter(|&h| h >= from) else {
                    return outcome;
                };
                // Ids past `until` were listed but not kept: claim no more
                // than what this backfill hands back.
                outcome.highest_listed =
                    Some(req.until.map_or(highest, |until| highest.min(until)));
                // Past `until` the live stream has it: keep only what is missing.
                let wanted = |t: &Trade| req.until.is_none_or(|until| t.id <= until);
                outcome.trades.extend(page.into_iter().filter(wanted));
                from = highest + 1;
                if !full || req.until.is_some_and(|until| highest >= until) {
                    return outcome;
                }
            }
            Err(RestError::RateLimited {
                status,
                retry_after,
            }) => {
                failures += 1;
                if retry_after > config.max_retry_after || failures >= config.attempts {
                    outcome.failure = Some(format!(
                        "rate limited (HTTP {status}, retry after {retry_after:?}; waiting at most {:?}, {} times)",
                        config.max_retry_after, config.attempts
                    ));
                    return outcome;
                }
                // The client holds every request back until Retry-After passes.
                tracing::warn!(%symbol, status, ?retry_after, "REST rate limit during backfill; waiting");
            }
            Err(e) if e.is_retryable() && failures + 1 < config.attempts => {
                failures += 1;
                let wait = delays.next_delay();
                tracing::warn!(%symbol, error = %e, retry_in = ?wait, "backfill request failed; retrying");
                tokio::time::sleep(wait).await;
            }
            Err(e) => {
                outcome.failure = Some(e.to_string());
                return outcome;
            }
        }
    }
}
