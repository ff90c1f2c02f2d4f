//! The fake's REST side: `GET /fapi/v1/aggTrades?symbol=..&fromId=..&limit=..`
//! (or `startTime=..` instead of `fromId`), `GET /fapi/v1/exchangeInfo` and
//! `GET /fapi/v1/time`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pulse_core::Symbol;

use super::config::RestFault;
use super::state::{FaultQueue, Shared};
use super::tape::rest_json;

/// Binance's default and largest page sizes.
const DEFAULT_LIMIT: usize = 500;
const MAX_LIMIT: usize = 1000;

#[derive(Debug, serde::Deserialize)]
struct AggTradesQuery {
    symbol: String,
    #[serde(rename = "fromId")]
    from_id: Option<u64>,
    #[serde(rename = "startTime")]
    start_time: Option<i64>,
    limit: Option<usize>,
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/fapi/v1/aggTrades", get(agg_trades))
        .route("/fapi/v1/exchangeInfo", get(exchange_info))
        .route("/fapi/v1/time", get(server_time))
        .with_state(shared)
}

/// Counts the request; the reply of the next fault queued, if any.
fn counted_fault(shared: &Shared, queue: &FaultQueue) -> Option<Response> {
    shared.counters.rest_requests.fetch_add(1, Ordering::SeqCst);
    let fault = queue.pop()?;
    shared
        .counters
        .rest_faults_served
        .fetch_add(1, Ordering::SeqCst);
    Some(fault_reply(fault))
}

async fn agg_trades(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<AggTradesQuery>,
) -> Response {
    if let Some(reply) = counted_fault(&shared, &shared.rest_faults) {
        return reply;
    }
    let page = Symbol::new(&q.symbol).ok().and_then(|symbol| {
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        let published = shared.published();
        match (q.from_id, q.start_time) {
            (None, Some(start)) => shared.tape.page_since(symbol, start, limit, published),
            (from_id, _) => shared.tape.page(symbol, from_id, limit, published),
        }
    });
    match page {
        Some(trades) => json(
            StatusCode::OK,
            rest_json(&trades, |t| shared.is_corrupt_on_rest(t)),
        ),
        None => json(
            StatusCode::BAD_REQUEST,
            r#"{"code":-1121,"msg":"Invalid symbol."}"#.to_string(),
        ),
    }
}

/// Symbols the fake lists besides the tape's, none of which `ALL` follows.
pub const NOT_FOLLOWED: [(&str, &str, &str); 2] = [
    ("BTCUSDT_260925", "CURRENT_QUARTER", "TRADING"),
    ("DELISTEDUSDT", "PERPETUAL", "SETTLING"),
];

/// Every tape symbol (or those set with
/// [`FakeBinance::list_perpetuals`](super::FakeBinance::list_perpetuals)) as
/// a trading perpetual, plus [`NOT_FOLLOWED`], in Binance's shape
/// (abridged: no filters or assets).
async fn exchange_info(State(shared): State<Arc<Shared>>) -> Response {
    let entry = |symbol: &str, contract: &str, status: &str| {
        serde_json::json!({
            "symbol": symbol,
            "pair": symbol.split('_').next().unwrap_or(symbol),
            "contractType": contract,
            "status": status,
            "quoteAsset": "USDT",
            "pricePrecision": 2,
            "filters": [],
        })
    };
    if let Some(reply) = counted_fault(&shared, &shared.listing_faults) {
        return reply;
    }
    let mut symbols: Vec<_> = shared
        .listed()
        .iter()
        .map(|s| entry(s.as_str(), "PERPETUAL", "TRADING"))
        .collect();
    symbols.extend(NOT_FOLLOWED.iter().map(|(s, c, st)| entry(s, c, st)));
    let body = serde_json::json!({
        "timezone": "UTC",
        "serverTime": 0,
        "futuresType": "U_MARGINED",
        "rateLimits": [],
        "symbols": symbols,
    });
    json(StatusCode::OK, body.to_string())
}

/// `{"serverTime":…}` on the tape's clock ([`Shared::server_time_ms`]).
async fn server_time(State(shared): State<Arc<Shared>>) -> Response {
    shared.counters.time_requests.fetch_add(1, Ordering::SeqCst);
    if let Some(fault) = shared.time_faults.pop() {
        return fault_reply(fault);
    }
    let body = serde_json::json!({ "serverTime": shared.server_time_ms() });
    json(StatusCode::OK, body.to_string())
}

fn fault_reply(fault: RestFault) -> Response {
    let limited = |status, retry_after: std::time::Duration, body: &str| {
        let secs = retry_after.as_millis().div_ceil(1000).to_string();
        (
            status,
            [(header::RETRY_AFTER, secs)],
            json(status, body.to_string()),
        )
            .into_response()
    };
    match fault {
        RestFault::TooManyRequests { retry_after } => limited(
            StatusCode::TOO_MANY_REQUESTS,
            retry_after,
            r#"{"code":-1003,"msg":"Too many requests; current limit of IP is 2400 requests per minute."}"#,
        ),
        RestFault::Banned { retry_after } => limited(
            StatusCode::IM_A_TEAPOT,
            retry_after,
            r#"{"code":-1003,"msg":"Way too many requests; IP banned."}"#,
        ),
        RestFault::Unavailable => json(
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"code":-1008,"msg":"Service Unavailable."}"#.to_string(),
        ),
        RestFault::CutShort => json(StatusCode::OK, r#"[{"a":1"#.to_string()),
    }
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}
