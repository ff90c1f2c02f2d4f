//! The page and its scripts, embedded in the binary at build time.
//!
//! uPlot is vendored under `pulse-cli/assets/vendor/uplot/` (MIT); see
//! `docs/dashboard.md` for how to update it.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX_HTML: &str = include_str!("../../assets/index.html");
const DASHBOARD_JS: &str = include_str!("../../assets/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("../../assets/dashboard.css");
const UPLOT_JS: &str = include_str!("../../assets/vendor/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../assets/vendor/uplot/uPlot.min.css");

/// Routes for the page and its assets.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| asset("text/html; charset=utf-8", INDEX_HTML)))
        .route(
            "/dashboard.js",
            get(|| asset("text/javascript; charset=utf-8", DASHBOARD_JS)),
        )
        .route(
            "/dashboard.css",
            get(|| asset("text/css; charset=utf-8", DASHBOARD_CSS)),
        )
        .route(
            "/vendor/uPlot.iife.min.js",
            get(|| asset("text/javascript; charset=utf-8", UPLOT_JS)),
        )
        .route(
            "/vendor/uPlot.min.css",
            get(|| asset("text/css; charset=utf-8", UPLOT_CSS)),
        )
}

async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    // no-cache: a browser revalidates, so a new pulse build shows its new page.
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
