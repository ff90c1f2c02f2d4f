//! The HTTP server: `/metrics` for Prometheus (and, for `pulse run`, the dashboard).

use std::net::SocketAddr;
use std::time::Duration;

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

/// A running HTTP server.
pub struct Server {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Stops accepting and waits, up to `grace`, for open responses (event
    /// streams) to finish.
    pub async fn stop(self, grace: Duration) {
        self.shutdown.cancel();
        if tokio::time::timeout(grace, self.task).await.is_err() {
            tracing::debug!(addr = %self.addr, "HTTP responses still open at exit");
        }
    }
}

/// Binds `addr` and serves `router` until `shutdown`, or until
/// [`Server::stop`], once listening.
pub async fn serve(
    addr: SocketAddr,
    router: Router,
    shutdown: CancellationToken,
) -> anyhow::Result<Server> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding HTTP server to {addr}"))?;
    let bound = listener.local_addr()?;
    let stopping = shutdown.clone();
    let task = tokio::spawn(async move {
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(async move { stopping.cancelled().await })
            .await;
        if let Err(e) = result {
            tracing::error!("HTTP server on {bound} failed: {e}");
        }
    });
    tracing::info!("serving http://{bound}/metrics");
    Ok(Server {
        addr: bound,
        shutdown,
        task,
    })
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
