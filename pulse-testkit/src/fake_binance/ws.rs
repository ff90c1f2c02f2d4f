//! The fake's WebSocket side: `/market/stream?streams=a@aggTrade/b@aggTrade`.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{StatusCode, Uri};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_util::sync::CancellationToken;

use super::config::Fault;
use super::state::{Command, Shared};

/// How long a server-side close waits for the client's Close reply.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => {
                if let Ok((tcp, _)) = accepted {
                    let _ = tcp.set_nodelay(true);
                    tokio::spawn(serve(tcp, shared.clone(), cancel.clone()));
                }
            }
        }
    }
}

// tungstenite's handshake callback fixes the large error type.
#[allow(clippy::result_large_err)]
async fn serve(tcp: TcpStream, shared: Arc<Shared>, cancel: CancellationToken) {
    let mut uri = None;
    let reject = shared.take_handshake_rejection();
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        uri = Some(req.uri().clone());
        if reject {
            let mut refusal = ErrorResponse::new(Some("fake binance: handshake refused".into()));
            *refusal.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            return Err(refusal);
        }
        Ok(resp)
    };
    let handshake = tokio_tungstenite::accept_hdr_async(tcp, callback).await;
    if reject {
        shared
            .counters
            .handshakes_rejected
            .fetch_add(1, Ordering::SeqCst);
    }
    let Ok(mut ws) = handshake else { return };
    shared
        .counters
        .connections_accepted
        .fetch_add(1, Ordering::SeqCst);
    if shared.take_connection_drop() {
        return; // as a server in maintenance, or a proxy, does
    }
    // Like Binance since its 2026 split, other paths accept and stay silent.
    let streams = uri.as_ref().map(requested_streams).unwrap_or_default();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let id = shared.register(streams.clone(), tx);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            command = rx.recv() => match command {
                Some(Command::Frame(text)) => {
                    if ws.send(Message::Text(text)).await.is_err() {
                        break;
                    }
                }
                Some(Command::Fault(Fault::Disconnect)) | None => break,
                Some(Command::Fault(Fault::Stall)) => {
                    shared.unregister(id);
                    stall(ws, &cancel).await;
                    return;
                }
                Some(Command::Fault(Fault::Close)) => {
                    close(&mut ws).await;
                    break;
                }
                Some(Command::Fault(
                    fault @ (Fault::Malformed
                    | Fault::Stranger
                    | Fault::TradeEvent),
                )) => {
                    let frame = bad_frame(fault, &streams);
                    if ws.send(Message::text(frame)).await.is_err() {
                        break;
                    }
                }
                Some(Command::Fault(Fault::Ping)) => {
                    shared.counters.pings_sent.fetch_add(1, Ordering::SeqCst);
                    if ws.send(Message::Ping(Bytes::from_static(b"fake-binance"))).await.is_err() {
                        break;
                    }
                }
            },
            message = ws.next() => match message {
                Some(Ok(Message::Pong(_))) => {
                    shared.counters.pongs_received.fetch_add(1, Ordering::SeqCst);
                }
                // tungstenite queues the pong; the next read or write sends it.
                Some(Ok(Message::Ping(_))) => {
                    shared.counters.pings_received.fetch_add(1, Ordering::SeqCst);
                }
                Some(Ok(Message::Text(text))) => {
                    if let Some(reply) = handle_request(&shared, id, &text)
                        && ws.send(Message::text(reply)).await.is_err()
                    {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    shared.unregister(id);
    // Dropping `ws` drops the TCP connection: no Close frame for Disconnect.
}

/// Streams named in `?streams=a@aggTrade/b@aggTrade` on `/market/stream`.
/// The frame a fault of the bad-frame kind sends on a connection
/// following `streams`; the last carries a followed symbol's trade, with
/// an id far ahead of the tape's.
fn bad_frame(fault: Fault, streams: &HashSet<String>) -> String {
    let followed = streams
        .iter()
        .min()
        .and_then(|s| s.split('@').next())
        .unwrap_or("btcusdt");
    let symbol = followed.to_ascii_uppercase();
    match fault {
        Fault::Malformed => r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","#.to_owned(),
        Fault::Stranger => r#"{"stream":"zzzusdt@aggTrade","data":{"e":"aggTrade","E":1617580800001,"a":7,"s":"ZZZUSDT","p":"1.5","q":"2","f":7,"l":7,"T":1617580800000,"m":false}}"#.to_owned(),
        _ => format!(
            r#"{{"stream":"{followed}@trade","data":{{"e":"trade","E":1617580800001,"T":1617580800000,"s":"{symbol}","t":999999999999,"p":"1.5","q":"2","X":"MARKET","m":false}}}}"#
        ),
    }
}

fn requested_streams(uri: &Uri) -> HashSet<String> {
    if uri.path().trim_end_matches('/') != "/market/stream" {
        return HashSet::new();
    }
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.strip_prefix("streams="))
        .flat_map(|v| v.split('/'))
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Answers `{"method":"SUBSCRIBE","params":[..],"id":1}` (and UNSUBSCRIBE)
/// as Binance does: `{"result":null,"id":1}`.
fn handle_request(shared: &Shared, conn: u64, text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Request {
        method: String,
        #[serde(default)]
        params: Vec<String>,
        id: serde_json::Value,
    }
    let req: Request = serde_json::from_str(text).ok()?;
    shared
        .counters
        .subscribe_messages
        .fetch_add(1, Ordering::SeqCst);
    let reply = match req.method.as_str() {
        "SUBSCRIBE" => {
            shared.update_streams(conn, &req.params, true);
            serde_json::json!({"result": null, "id": req.id})
        }
        "UNSUBSCRIBE" => {
            shared.update_streams(conn, &req.params, false);
            serde_json::json!({"result": null, "id": req.id})
        }
        _ => serde_json::json!({"error": {"code": 2, "msg": "Invalid request"}, "id": req.id}),
    };
    Some(reply.to_string())
}

/// Holds the socket open, reading raw bytes so nothing is parsed and no
/// pong goes out, until the client hangs up.
async fn stall(mut ws: WebSocketStream<TcpStream>, cancel: &CancellationToken) {
    let tcp = ws.get_mut();
    let mut buf = [0u8; 4096];
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            read = tcp.read(&mut buf) => if matches!(read, Ok(0) | Err(_)) { return },
        }
    }
}

async fn close(ws: &mut WebSocketStream<TcpStream>) {
    let frame = CloseFrame {
        code: CloseCode::Away,
        reason: "fake binance: server closing".into(),
    };
    if ws.close(Some(frame)).await.is_ok() {
        // Wait for the client's Close so the handshake completes.
        let _ =
            tokio::time::timeout(CLOSE_GRACE, async { while ws.next().await.is_some() {} }).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_come_from_the_market_path_only() {
        let cases = [
            (
                "/market/stream?streams=btcusdt@aggTrade/ethusdt@aggTrade",
                vec!["btcusdt@aggtrade", "ethusdt@aggtrade"],
            ),
            (
                "/market/stream?streams=BTCUSDT@aggTrade",
                vec!["btcusdt@aggtrade"],
            ),
            ("/market/stream", vec![]),
            ("/ws/btcusdt@aggTrade", vec![]),
            ("/stream?streams=btcusdt@aggTrade", vec![]),
        ];
        for (uri, want) in cases {
            let mut got: Vec<String> = requested_streams(&uri.parse().unwrap())
                .into_iter()
                .collect();
            got.sort();
            assert_eq!(got, want, "{uri}");
        }
    }
}
