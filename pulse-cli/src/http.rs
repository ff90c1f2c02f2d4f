//! The HTTP server: `/metrics` for Prometheus (and, for `pulse run`, the dashboard).

use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use pulse_io::{CancellationToken, Metrics};

/// Routes every pulse HTTP server has.
pub fn metrics_routes(metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .with_state(metrics)
}

/// prometheus-client writes the OpenMetrics text format (`_total` samples
/// under the counter's name, `# EOF`), so say so: Prometheus then parses
/// the counters as counters.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn render_metrics(State(metrics): State<Metrics>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, OPENMETRICS)], metrics.encode())
}

/// Binds `addr` and serves `router` until `shutdown`. Returns the bound
/// address (useful with port 0) once listening.
pub async fn serve(
    addr: SocketAddr,
    router: Router,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding HTTP server to {addr}"))?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = result {
            tracing::error!("HTTP server on {bound} failed: {e}");
        }
    });
    tracing::info!("serving http://{bound}/metrics");
    Ok(bound)
}

/// Serves `/metrics` alone on `addr`, if given (`--metrics` of `produce`
/// and `consume`).
pub async fn serve_metrics(
    addr: Option<SocketAddr>,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    if let Some(addr) = addr {
        serve(addr, metrics_routes(metrics.clone()), shutdown.clone()).await?;
    }
    Ok(())
}
