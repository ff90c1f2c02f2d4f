//! Opening one WebSocket: TCP, TLS (rustls with ring and webpki roots) and
//! the handshake, within a deadline.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

/// An open Binance WebSocket.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("no handshake within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    WebSocket(#[from] tungstenite::Error),
}

/// TLS settings for `wss://`: the ring provider and Mozilla's roots, so the
/// build needs neither aws-lc nor the system's certificate store.
pub(crate) fn tls_config() -> Arc<rustls::ClientConfig> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}

/// Connects to `url` (`ws://` or `wss://`) within `timeout`.
pub(crate) async fn connect(
    url: &str,
    tls: &Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<Ws, ConnectError> {
    let handshake = tokio_tungstenite::connect_async_tls_with_config(
        url,
        None,
        true,
        Some(Connector::Rustls(tls.clone())),
    );
    let (ws, _response) = tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| ConnectError::Timeout(timeout))??;
    Ok(ws)
}
