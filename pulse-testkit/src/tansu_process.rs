//! A private tansu broker a test can kill and restart.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::env::{TANSU_BIN_VAR, require_env};
use super::server::{ServerChild, free_port};
use super::services::kafka_client;
use super::silent_proxy::SilentProxy;
use super::wait::poll_until;

/// How long a fresh or restarted broker may take to answer metadata requests.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the broker keeps its records.
#[derive(Debug, Clone)]
enum Storage {
    /// `memory://`: fast, gone when the process dies.
    Memory,
    /// `sqlite://`: survives kill -9 and restart.
    Sqlite { dir: PathBuf, file_name: String },
}

/// A tansu broker on a free loopback port.
///
/// The port (and, for sqlite, the database file) survive [`kill`](Self::kill)
/// and [`restart`](Self::restart), so clients can reconnect to the same
/// address. Dropping it kills the broker.
#[derive(Debug)]
pub struct TansuProcess {
    // Field order matters: the broker dies before its log dir is removed.
    server: ServerChild,
    bin: PathBuf,
    port: u16,
    /// Where the broker tells clients to connect, when not its own port.
    advertised: Option<SocketAddr>,
    storage: Storage,
    logs: TempDir,
}

impl TansuProcess {
    /// Starts a broker with in-memory storage, using the binary named by
    /// `PULSE_TEST_TANSU_BIN`.
    ///
    /// Returns `None` (the test skips) when that variable is unset.
    ///
    /// # Panics
    /// When the variable is unset under `CI=true`, or the broker does not
    /// become ready.
    pub async fn start_memory() -> Option<Self> {
        let bin = require_env(TANSU_BIN_VAR)?;
        Some(Self::start_with(bin.into(), free_port(), None, Storage::Memory).await)
    }

    /// Starts a broker with in-memory storage behind a [`SilentProxy`]:
    /// the broker's metadata names the proxy, so clients that bootstrap
    /// from the proxy's address make every connection through it.
    ///
    /// Returns `None` (the test skips) when `PULSE_TEST_TANSU_BIN` is unset.
    ///
    /// # Panics
    /// As [`start_memory`](Self::start_memory).
    pub async fn start_memory_behind_proxy() -> Option<(Self, SilentProxy)> {
        let bin = require_env(TANSU_BIN_VAR)?;
        let port = free_port();
        let proxy = SilentProxy::start(SocketAddr::from(([127, 0, 0, 1], port))).await;
        let broker = Self::start_with(bin.into(), port, Some(proxy.addr()), Storage::Memory).await;
        Some((broker, proxy))
    }

    /// Starts a broker that stores records in the sqlite file `db_file`
    /// (created if missing), using the binary named by `PULSE_TEST_TANSU_BIN`.
    ///
    /// The file name must be a plain name such as `tansu.db`: tansu reads it
    /// from the host part of a `sqlite://` URL.
    ///
    /// Returns `None` (the test skips) when that variable is unset.
    ///
    /// # Panics
    /// When the variable is unset under `CI=true`, when `db_file`'s
    /// directory does not exist, or the broker does not become ready.
    pub async fn start_sqlite(db_file: impl AsRef<Path>) -> Option<Self> {
        let bin = require_env(TANSU_BIN_VAR)?;
        let db_file = db_file.as_ref();
        let file_name = db_file
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_else(|| panic!("sqlite file {} has no UTF-8 name", db_file.display()))
            .to_owned();
        let parent = db_file
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = parent
            .canonicalize()
            .unwrap_or_else(|e| panic!("sqlite directory {}: {e}", parent.display()));
        let storage = Storage::Sqlite { dir, file_name };
        Some(Self::start_with(bin.into(), free_port(), None, storage).await)
    }

    async fn start_with(
        bin: PathBuf,
        port: u16,
        advertised: Option<SocketAddr>,
        storage: Storage,
    ) -> Self {
        let logs = tempfile::Builder::new()
            .prefix("pulse-tansu-")
            .tempdir()
            .expect("create tansu log dir");
        let server = spawn(&bin, port, advertised, &storage, logs.path());
        let mut broker = Self {
            server,
            bin,
            port,
            advertised,
            storage,
            logs,
        };
        broker.wait_ready().await;
        broker
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The bootstrap broker list for `rskafka::client::ClientBuilder::new`.
    pub fn brokers(&self) -> Vec<String> {
        vec![self.addr()]
    }

    /// The broker's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.server.pid()
    }

    /// Whether the broker process is alive.
    pub fn is_running(&mut self) -> bool {
        self.server.is_running()
    }

    /// Graceful shutdown (SIGTERM), waiting until the process has exited.
    pub async fn stop(&mut self) {
        self.server.stop().await;
    }

    /// Hangs the broker (SIGSTOP): connections stay open, nothing is answered.
    pub fn hang(&mut self) {
        self.server.set_hung(true);
    }

    /// Lets a [`hang`](Self::hang)ed broker go on (SIGCONT).
    pub fn resume(&mut self) {
        self.server.set_hung(false);
    }

    /// Crash (SIGKILL), waiting until the process has exited.
    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// Kills the broker if it runs, then starts it again on the same port
    /// and storage, and waits until it answers.
    pub async fn restart(&mut self) {
        self.server.kill();
        self.server = spawn(
            &self.bin,
            self.port,
            self.advertised,
            &self.storage,
            self.logs.path(),
        );
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let brokers = self.brokers();
        let server = &mut self.server;
        let ready = poll_until(READY_TIMEOUT, || {
            server.assert_running("starting");
            let brokers = brokers.clone();
            async move {
                let metadata = async {
                    let client = kafka_client(brokers).await.ok()?;
                    client.rskafka().list_topics().await.ok()
                };
                matches!(
                    tokio::time::timeout(Duration::from_secs(2), metadata).await,
                    Ok(Some(_))
                )
            }
        })
        .await;
        if !ready {
            self.server.fail_not_ready(READY_TIMEOUT);
        }
    }
}

fn spawn(
    bin: &Path,
    port: u16,
    advertised: Option<SocketAddr>,
    storage: &Storage,
    log_dir: &Path,
) -> ServerChild {
    let url = format!("tcp://127.0.0.1:{port}");
    let advertised = advertised.map_or_else(|| url.clone(), |a| format!("tcp://{a}"));
    let mut command = Command::new(bin);
    command
        .arg("broker")
        .args(["--listener-url", &url])
        .args(["--advertised-listener-url", &advertised]);
    match storage {
        Storage::Memory => {
            command.args(["--storage-engine", "memory://tansu/"]);
        }
        Storage::Sqlite { dir, file_name } => {
            // tansu resolves the sqlite URL against its working directory.
            command
                .args(["--storage-engine", &format!("sqlite://{file_name}")])
                .current_dir(dir);
        }
    }
    ServerChild::spawn("tansu", &mut command, &log_dir.join("tansu.log"))
}
