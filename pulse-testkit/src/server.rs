//! Child-process plumbing shared by the private server launchers.

use std::fs::{File, OpenOptions};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};

use super::wait::poll_until;

/// How long a server may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A loopback port nobody listens on right now.
///
/// The OS picks it; it stays free until someone binds it, which is good
/// enough for tests that bind it a moment later.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .expect("bind an ephemeral loopback port")
        .port()
}

/// One running server process whose output goes to a log file.
///
/// Dropping it kills the process, so a failing test leaves no server behind.
#[derive(Debug)]
pub(crate) struct ServerChild {
    name: &'static str,
    log: PathBuf,
    child: Option<Child>,
}

impl ServerChild {
    /// Starts `command` with stdout and stderr appended to `log`.
    pub(crate) fn spawn(name: &'static str, command: &mut Command, log: &Path) -> Self {
        let open_log = || -> File {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap_or_else(|e| panic!("open {name} log {}: {e}", log.display()))
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(open_log())
            .stderr(open_log())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} ({command:?}): {e}"));
        Self {
            name,
            log: log.to_owned(),
            child: Some(child),
        }
    }

    pub(crate) fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGSTOP (`hung`) or SIGCONT: a stopped process keeps its sockets open
    /// but answers nothing, like a hung server.
    pub(crate) fn set_hung(&mut self, hung: bool) {
        if let Some(child) = self.child.as_ref() {
            let signal = if hung { Signal::STOP } else { Signal::CONT };
            kill_process(Pid::from_child(child), signal)
                .unwrap_or_else(|e| panic!("signal {} ({signal:?}): {e}", self.name));
        }
    }

    /// SIGKILL: the process gets no chance to flush or clean up.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Err only means it has already exited; wait() reaps it either way.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within [`STOP_TIMEOUT`].
    pub(crate) async fn stop(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            let _ = kill_process(Pid::from_child(child), Signal::TERM);
            let exited = poll_until(STOP_TIMEOUT, || {
                let exited = !matches!(child.try_wait(), Ok(None));
                async move { exited }
            })
            .await;
            if !exited {
                eprintln!(
                    "{} ignored SIGTERM for {STOP_TIMEOUT:?}; killing it",
                    self.name
                );
            }
        }
        self.kill();
    }

    /// Panics with the end of the log unless the process is still running.
    pub(crate) fn assert_running(&mut self, doing: &str) {
        if !self.is_running() {
            let status = self.child.as_mut().map(|child| child.try_wait());
            panic!(
                "{} exited while {doing} (status {status:?}); log {}:\n{}",
                self.name,
                self.log.display(),
                self.log_tail()
            );
        }
    }

    /// Panics with the end of the log; for a server that never became ready.
    pub(crate) fn fail_not_ready(&mut self, within: Duration) -> ! {
        self.kill();
        panic!(
            "{} did not become ready within {within:?}; log {}:\n{}",
            self.name,
            self.log.display(),
            self.log_tail()
        );
    }

    fn log_tail(&self) -> String {
        const LINES: usize = 40;
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LINES)..].join("\n")
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        self.kill();
    }
}
