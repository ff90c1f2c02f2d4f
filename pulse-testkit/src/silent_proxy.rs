//! A TCP proxy whose open connections can go silently dead.
//!
//! A host that vanishes (a container given a new address, a cable pulled)
//! leaves its peers' connections open with nothing coming back: no reset,
//! no close. [`SilentProxy::go_silent`] does that to every connection open
//! at the time, while connections made afterwards are carried as before,
//! as they would be to the server's new address.

use std::net::SocketAddr;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A proxy on a loopback port in front of `upstream`. Dropping it closes
/// every connection it carries.
#[derive(Debug)]
pub struct SilentProxy {
    addr: SocketAddr,
    /// Connections accepted before the generation changes go silent.
    generation: watch::Sender<u64>,
    accepting: tokio::task::JoinHandle<()>,
}

impl SilentProxy {
    /// Starts forwarding connections on a free loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind the proxy's loopback port");
        let addr = listener.local_addr().expect("proxy address");
        let (generation, watching) = watch::channel(0);
        let accepting = tokio::spawn(accept(listener, upstream, watching));
        SilentProxy {
            addr,
            generation,
            accepting,
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops carrying bytes on every connection open now, in both
    /// directions, and keeps them open; new connections are carried.
    pub fn go_silent(&self) {
        self.generation.send_modify(|g| *g += 1);
    }
}

impl Drop for SilentProxy {
    fn drop(&mut self) {
        // The connection tasks live in the accepting task's JoinSet.
        self.accepting.abort();
    }
}

async fn accept(listener: TcpListener, upstream: SocketAddr, generation: watch::Receiver<u64>) {
    let mut connections = JoinSet::new();
    while let Ok((client, _)) = listener.accept().await {
        connections.spawn(carry(client, upstream, generation.clone()));
        // Reap finished connections so the set does not grow for ever.
        while connections.try_join_next().is_some() {}
    }
}

/// Carries one connection until either side closes it or the proxy goes
/// silent; then holds both ends open, carrying nothing.
async fn carry(mut client: TcpStream, upstream: SocketAddr, mut generation: watch::Receiver<u64>) {
    let born = *generation.borrow_and_update();
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return; // the client sees its connection closed, as with no server
    };
    let silenced = tokio::select! {
        _ = copy_bidirectional(&mut client, &mut server) => false,
        _ = generation.wait_for(|g| *g != born) => true,
    };
    if silenced {
        // Both ends stay open until the proxy is dropped.
        std::future::pending::<()>().await;
    }
}
