//! The REST client for `/fapi/v1/aggTrades`, `/fapi/v1/exchangeInfo` and
//! `/fapi/v1/time`, honouring rate limits.
//!
//! A 429 or 418 reply blocks every request of this client until its
//! `Retry-After` has passed: Binance bans IPs that keep asking.

use std::sync::Mutex;
use std::time::Duration;

use pulse_core::{AggTradesPage, Symbol, TradingPerpetuals};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::binance_clock::BinanceClock;
use super::config::BackfillConfig;
use crate::SourceError;
use crate::causes::with_causes;

/// Used when a 429/418 reply lacks `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Why a REST request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RestError {
    #[error("rate limited (HTTP {status}), retry after {retry_after:?}")]
    RateLimited { status: u16, retry_after: Duration },
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("request failed: {}", with_causes(.0))]
    Transport(#[from] reqwest::Error),
    #[error("unreadable reply: {0}")]
    Payload(#[from] pulse_core::ParseError),
}

impl RestError {
    /// True when the same request may succeed later.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            // A reply unreadable as a whole is a cut or garbled transfer
            // (a proxy's error page under 200), not an answer.
            RestError::RateLimited { .. } | RestError::Transport(_) | RestError::Payload(_) => true,
            RestError::Status { status, .. } => *status >= 500,
        }
    }
}

/// Where a page of aggTrades starts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PageStart {
    /// From this trade id on.
    Id(u64),
    /// From this trade time on (Binance's clock, ms): where a symbol with
    /// no id known yet starts. `startTime` without `endTime` has no
    /// one-hour limit.
    Time(i64),
}

#[derive(Debug)]
pub(crate) struct RestClient {
    http: reqwest::Client,
    /// `{rest_base}/fapi/v1`.
    api: String,
    permits: Semaphore,
    /// Longest rate-limit wait worth sitting out; longer ones fail at once.
    max_wait: Duration,
    budget: RequestBudget,
    /// Until when requests are held back, and the status that said so.
    blocked: Mutex<Option<(Instant, u16)>>,
}

impl RestClient {
    pub(crate) fn new(rest_base: &str, config: &BackfillConfig) -> Result<Self, SourceError> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout)
            .user_agent(concat!("pulse/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SourceError::Config(format!("building the REST client: {e}")))?;
        Ok(RestClient {
            http,
            api: format!("{}/fapi/v1", rest_base.trim_end_matches('/')),
            permits: Semaphore::new(config.concurrency.max(1)),
            max_wait: config.max_retry_after,
            budget: RequestBudget::per_minute(config.requests_per_minute),
            blocked: Mutex::new(None),
        })
    }

    /// Up to `limit` aggTrades of `symbol` from `start` on, oldest first,
    /// with the entries that could not be read.
    pub(crate) async fn agg_trades(
        &self,
        symbol: Symbol,
        start: PageStart,
        limit: u32,
    ) -> Result<AggTradesPage, RestError> {
        // Symbols are [A-Z0-9_], so nothing needs escaping.
        let from = match start {
            PageStart::Id(id) => format!("fromId={id}"),
            PageStart::Time(ms) => format!("startTime={}", ms.max(0)),
        };
        let url = format!(
            "{}/aggTrades?symbol={symbol}&{from}&limit={limit}",
            self.api
        );
        let body = self.get(&url).await?;
        Ok(pulse_core::parse_agg_trades(&body, symbol)?)
    }

    /// The perpetuals trading now, from `exchangeInfo` (weight 1).
    pub(crate) async fn trading_perpetuals(&self) -> Result<TradingPerpetuals, RestError> {
        let body = self.get(&format!("{}/exchangeInfo", self.api)).await?;
        Ok(pulse_core::parse_exchange_info(&body)?)
    }

    /// Binance's clock now (weight 1), read as the reply arrives.
    pub(crate) async fn server_time(&self) -> Result<BinanceClock, RestError> {
        let body = self.get(&format!("{}/time", self.api)).await?;
        let ms = pulse_core::parse_server_time(&body)?;
        Ok(BinanceClock::new(ms, Instant::now()))
    }

    /// One GET within the budget, with 429/418 turned into a block.
    async fn get(&self, url: &str) -> Result<Vec<u8>, RestError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        self.wait_out_rate_limit().await?;
        self.budget.take().await;
        let response = self.http.get(url).send().await?;
        let status = response.status().as_u16();
        if status == 429 || status == 418 {
            let retry_after = retry_after(response.headers());
            self.block_for(retry_after, status);
            return Err(RestError::RateLimited {
                status,
                retry_after,
            });
        }
        if !response.status().is_success() {
            let mut body = response.text().await.unwrap_or_default();
            body.truncate(200);
            return Err(RestError::Status { status, body });
        }
        Ok(response.bytes().await?.to_vec())
    }

    fn block_for(&self, retry_after: Duration, status: u16) {
        let until = Instant::now() + retry_after;
        let mut blocked = self.blocked.lock().unwrap();
        if blocked.is_none_or(|(b, _)| b < until) {
            *blocked = Some((until, status));
        }
    }

    /// Sits out a rate limit, or fails at once if it lasts too long: asking
    /// during a ban only makes it longer.
    async fn wait_out_rate_limit(&self) -> Result<(), RestError> {
        let blocked = *self.blocked.lock().unwrap();
        let Some((until, status)) = blocked else {
            return Ok(());
        };
        let retry_after = until.saturating_duration_since(Instant::now());
        if retry_after > self.max_wait {
            return Err(RestError::RateLimited {
                status,
                retry_after,
            });
        }
        tokio::time::sleep_until(until).await;
        Ok(())
    }
}

/// Our own pace, so pulse never earns a 429: requests are spaced
/// `interval` apart on average, with bursts of up to [`BURST`] (GCRA).
#[derive(Debug)]
struct RequestBudget {
    interval: Duration,
    /// When the budget is spent up to; requests may run up to `BURST - 1`
    /// intervals ahead of it.
    spent_until: Mutex<Instant>,
}

/// Requests that may go out back to back.
const BURST: u32 = 10;

impl RequestBudget {
    fn per_minute(requests: u32) -> Self {
        RequestBudget {
            interval: Duration::from_secs(60) / requests.max(1),
            spent_until: Mutex::new(Instant::now()),
        }
    }

    /// Waits until a request fits the budget, and spends it.
    async fn take(&self) {
        let start_at = {
            let now = Instant::now();
            let mut spent = self.spent_until.lock().unwrap();
            let base = (*spent).max(now);
            *spent = base + self.interval;
            (base + self.interval)
                .checked_sub(self.interval * BURST)
                .unwrap_or(now)
        };
        tokio::time::sleep_until(start_at).await;
    }
}

/// `Retry-After` in whole seconds, as Binance sends it.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Duration {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_RETRY_AFTER, Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    #[test]
    fn retry_after_is_read_in_seconds() {
        let cases = [
            (Some("7"), 7),
            (Some(" 120 "), 120),
            (Some("soon"), 30),
            (None, 30),
        ];
        for (value, secs) in cases {
            let mut headers = HeaderMap::new();
            if let Some(v) = value {
                headers.insert(RETRY_AFTER, HeaderValue::from_static(v));
            }
            assert_eq!(
                retry_after(&headers),
                Duration::from_secs(secs),
                "{value:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_allows_a_burst_then_paces() {
        let budget = RequestBudget::per_minute(60);
        let start = Instant::now();
        let mut starts = Vec::new();
        for _ in 0..13 {
            budget.take().await;
            starts.push((Instant::now() - start).as_secs());
        }
        assert_eq!(starts, vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3]);
    }

    #[test]
    fn only_transient_failures_are_retryable() {
        let status = |status| RestError::Status {
            status,
            body: String::new(),
        };
        assert!(status(503).is_retryable());
        assert!(!status(400).is_retryable());
        assert!(
            RestError::RateLimited {
                status: 418,
                retry_after: Duration::ZERO
            }
            .is_retryable()
        );
    }
}
