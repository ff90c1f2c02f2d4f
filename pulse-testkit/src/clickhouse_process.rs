//! A private ClickHouse server a test can stop, kill and restart.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::env::{CLICKHOUSE_SERVER_BIN_VAR, require_env};
use super::server::{ServerChild, free_port};
use super::services::clickhouse_client;
use super::wait::poll_until;

/// The config template shared with `scripts/services.sh`.
const CONFIG_TEMPLATE: &str = include_str!("../clickhouse/config.xml");
const USERS_XML: &str = include_str!("../clickhouse/users.xml");

/// A user of the test `users.xml` that needs a password, with it: tests of
/// credentials run against a [`ClickHouseProcess`], which always has it.
pub const PASSWORD_USER: (&str, &str) = ("pulse_secret", "correct horse battery staple");

/// How long a fresh or restarted server may take to answer queries.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Writes `config.xml` and `users.xml` for a server keeping all state in `state_dir`.
///
/// Returns the path of `config.xml`.
pub(crate) fn write_config(state_dir: &Path, http_port: u16, tcp_port: u16) -> PathBuf {
    let config = CONFIG_TEMPLATE
        .replace("@STATE_DIR@", &state_dir.display().to_string())
        .replace("@HTTP_PORT@", &http_port.to_string())
        .replace("@TCP_PORT@", &tcp_port.to_string());
    let config_path = state_dir.join("config.xml");
    std::fs::write(&config_path, config).expect("write ClickHouse config.xml");
    std::fs::write(state_dir.join("users.xml"), USERS_XML).expect("write ClickHouse users.xml");
    config_path
}

/// A `clickhouse-server` on free loopback ports with its data in a temp dir.
///
/// The data dir and ports survive [`stop`](Self::stop), [`kill`](Self::kill)
/// and [`restart`](Self::restart); the temp dir is removed on drop, after the
/// server is killed.
#[derive(Debug)]
pub struct ClickHouseProcess {
    // Field order matters: the server dies before its directory is removed.
    server: ServerChild,
    bin: PathBuf,
    config: PathBuf,
    http_port: u16,
    state: TempDir,
}

impl ClickHouseProcess {
    /// Starts a server with the binary named by `PULSE_TEST_CLICKHOUSE_SERVER_BIN`.
    ///
    /// Returns `None` (the test skips) when that variable is unset.
    ///
    /// # Panics
    /// When the variable is unset under `CI=true`, or the server does not
    /// become ready.
    pub async fn start() -> Option<Self> {
        let bin = require_env(CLICKHOUSE_SERVER_BIN_VAR)?;
        Some(Self::start_with(bin).await)
    }

    /// Starts a server from the `clickhouse-server` binary at `bin`.
    ///
    /// # Panics
    /// When the server does not become ready.
    pub async fn start_with(bin: impl Into<PathBuf>) -> Self {
        let bin = bin.into();
        let state = tempfile::Builder::new()
            .prefix("pulse-clickhouse-")
            .tempdir()
            .expect("create ClickHouse temp dir");
        std::fs::create_dir_all(state.path().join("log")).expect("create ClickHouse log dir");
        let http_port = free_port();
        let mut tcp_port = free_port();
        while tcp_port == http_port {
            tcp_port = free_port();
        }
        let config = write_config(state.path(), http_port, tcp_port);
        let server = spawn(&bin, &config, state.path());
        let mut process = Self {
            server,
            bin,
            config,
            http_port,
            state,
        };
        process.wait_ready().await;
        process
    }

    /// `http://127.0.0.1:<port>`, for `clickhouse::Client::with_url`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// A client for this server (validation off, as 18.16 requires).
    pub fn client(&self) -> clickhouse::Client {
        clickhouse_client(&self.url())
    }

    /// The directory holding the server's data, config and logs.
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.server.pid()
    }

    /// Whether the server process is alive.
    pub fn is_running(&mut self) -> bool {
        self.server.is_running()
    }

    /// Graceful shutdown (SIGTERM), waiting until the process has exited.
    pub async fn stop(&mut self) {
        self.server.stop().await;
    }

    /// Hangs the server (SIGSTOP): connections stay open, nothing is answered.
    pub fn hang(&mut self) {
        self.server.set_hung(true);
    }

    /// Lets a [`hang`](Self::hang)ed server go on (SIGCONT).
    pub fn resume(&mut self) {
        self.server.set_hung(false);
    }

    /// Crash (SIGKILL), waiting until the process has exited.
    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// Stops the server if it runs, then starts it again on the same port
    /// with the same data, and waits until it answers.
    pub async fn restart(&mut self) {
        self.server.stop().await;
        self.server = spawn(&self.bin, &self.config, self.state.path());
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let client = self.client();
        let server = &mut self.server;
        let ready = poll_until(READY_TIMEOUT, || {
            server.assert_running("starting");
            let client = client.clone();
            async move {
                let ping = client.query("SELECT 1").fetch_one::<u8>();
                matches!(
                    tokio::time::timeout(Duration::from_secs(2), ping).await,
                    Ok(Ok(1))
                )
            }
        })
        .await;
        if !ready {
            self.server.fail_not_ready(READY_TIMEOUT);
        }
    }
}

fn spawn(bin: &Path, config: &Path, state_dir: &Path) -> ServerChild {
    let mut command = Command::new(bin);
    command
        .arg(format!("--config-file={}", config.display()))
        // The server resolves users.xml and writes preprocessed configs relative to here.
        .current_dir(state_dir);
    ServerChild::spawn(
        "clickhouse-server",
        &mut command,
        &state_dir.join("log/stdout.log"),
    )
}
