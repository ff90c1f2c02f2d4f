//! One backfill: paging `/fapi/v1/aggTrades` from an id until caught up.

use pulse_core::{AggTradesPage, BackfillFailure, BackfillOutcome, BackfillRequest, Symbol};

use super::config::BackfillConfig;
use super::rest::{PageStart, RestClient, RestError};
use crate::{Metrics, RetryPolicy};

/// Pages from `req.from_id` (or from `req.from_time_ms`) until `req.until`
/// is reached or a page comes back short. Transient failures are retried with backoff, rate limits are
/// waited out (by the client), and anything else ends the backfill with
/// what it has. A failure says whether the lanes should keep the gap open
/// ([`BackfillFailure::Transient`]) or give it up. Entries of a page that
/// cannot be read are counted as rejected, logged, and reported as
/// [`BackfillOutcome::unreadable`]; the rest of the page is kept.
pub(crate) async fn run(
    rest: &RestClient,
    req: BackfillRequest,
    config: &BackfillConfig,
    retry: RetryPolicy,
    metrics: &Metrics,
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
    // A lane with no id yet asks by time first; pages after go by id.
    let mut since = req.from_time_ms;
    let mut failures = 0;
    loop {
        let start = since.map_or(PageStart::Id(from), PageStart::Time);
        match rest.agg_trades(symbol, start, config.page_limit).await {
            Ok(page) => {
                failures = 0;
                delays.reset();
                since = None;
                let full = page.len() >= config.page_limit as usize;
                let Some(highest) = page.highest_id().filter(|&h| h >= from) else {
                    return outcome;
                };
                // Past `until` too: the lanes fill the later holes a page
                // covers and leave the rest to the stream.
                outcome.highest_listed = Some(highest);
                outcome
                    .unreadable
                    .extend(reject_unreadable(&page, symbol, from, metrics));
                outcome.trades.extend(page.trades);
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
                let reason = || {
                    format!(
                        "rate limited (HTTP {status}, retry after {retry_after:?}; waiting at most {:?}, {} times)",
                        config.max_retry_after, config.attempts
                    )
                };
                // Asking during a long ban only makes it longer.
                if retry_after > config.max_retry_after {
                    outcome.failure = Some(BackfillFailure::Final(reason()));
                    return outcome;
                }
                if failures >= config.attempts {
                    outcome.failure = Some(BackfillFailure::Transient(reason()));
                    return outcome;
                }
                // The client holds every request back until Retry-After passes.
                tracing::warn!(%symbol, status, ?retry_after, "REST rate limit during backfill; waiting");
            }
            Err(e) if e.is_retryable() && failures + 1 < config.attempts => {
                failures += 1;
                let wait = delays.next_delay();
                tracing::warn!(%symbol, error = %e, retry_in = ?wait, "backfill request failed; retrying");
                metrics.source_retry("rest_backfill");
                tokio::time::sleep(wait).await;
            }
            Err(e) => {
                let reason = e.to_string();
                outcome.failure = Some(if e.is_retryable() {
                    BackfillFailure::Transient(reason)
                } else {
                    BackfillFailure::Final(reason)
                });
                return outcome;
            }
        }
    }
}

/// Counts and logs the page's unreadable entries; yields the ids of those
/// whose id could be read, so they are counted as lost rather than skipped.
fn reject_unreadable<'a>(
    page: &'a AggTradesPage,
    symbol: Symbol,
    from: u64,
    metrics: &'a Metrics,
) -> impl Iterator<Item = u64> + 'a {
    page.rejected.iter().filter_map(move |r| {
        metrics.reject(r.error.reason());
        match r.id {
            Some(id) => {
                tracing::warn!(%symbol, id, error = %r.error, "unreadable trade in a REST backfill reply; it is lost");
            }
            None => {
                tracing::warn!(%symbol, from, index = r.index, error = %r.error, "unreadable entry without an id in a REST backfill reply; its trade is lost");
            }
        }
        r.id
    })
}
