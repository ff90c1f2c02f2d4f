//! Flags naming the ClickHouse database and table, shared by `consume` and `run`.
//!
//! The password never comes from argv, where `ps` shows it to every user of
//! the machine: it comes from a file or from the environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use pulse_io::clickhouse::ClickHouseConfig;

use crate::duration::parse_duration;

/// Where the password comes from when no file is named.
pub const PASSWORD_ENV: &str = "PULSE_CLICKHOUSE_PASSWORD";

/// Where in ClickHouse the windows go, and who to connect as. The server URL
/// is each command's own flag: `consume` always writes to ClickHouse, `run`
/// only when asked.
#[derive(Debug, Clone, Args)]
pub struct ClickHouseArgs {
    /// ClickHouse database (created if missing).
    #[arg(long, env = "PULSE_CLICKHOUSE_DATABASE", default_value = "default")]
    pub database: String,

    /// Table for the windows (created if missing).
    #[arg(long, env = "PULSE_CLICKHOUSE_TABLE", default_value = "pulse_metrics")]
    pub table: String,

    /// ClickHouse user.
    #[arg(long, env = "PULSE_CLICKHOUSE_USER")]
    pub clickhouse_user: Option<String>,

    /// Read the ClickHouse password from FILE (one trailing newline is
    /// ignored). Without it, pulse reads the password from the environment
    /// variable PULSE_CLICKHOUSE_PASSWORD; never pass it on the command line.
    #[arg(long, value_name = "FILE", env = "PULSE_CLICKHOUSE_PASSWORD_FILE")]
    pub clickhouse_password_file: Option<PathBuf>,

    /// How long one ClickHouse request may take before it counts as failed
    /// and is retried (a server that is down or hung).
    #[arg(
        long,
        env = "PULSE_CLICKHOUSE_TIMEOUT",
        value_name = "DURATION",
        default_value = "30s",
        value_parser = parse_duration
    )]
    pub clickhouse_timeout: Duration,
}

impl ClickHouseArgs {
    /// The settings for the server at `url`, with the password from the
    /// file or the environment.
    pub fn config(&self, url: &str) -> anyhow::Result<ClickHouseConfig> {
        self.config_with_env(url, std::env::var(PASSWORD_ENV).ok())
    }

    /// [`config`](Self::config), with the environment's password passed in.
    fn config_with_env(
        &self,
        url: &str,
        env_password: Option<String>,
    ) -> anyhow::Result<ClickHouseConfig> {
        let password = match &self.clickhouse_password_file {
            Some(path) => Some(read_password(path)?),
            None => env_password,
        };
        let config = ClickHouseConfig {
            url: url.to_owned(),
            database: self.database.clone(),
            table: self.table.clone(),
            user: self.clickhouse_user.clone(),
            password,
            request_timeout: self.clickhouse_timeout,
        };
        // Checked here so a bad flag fails before anything starts or logs.
        config.validate()?;
        Ok(config)
    }
}

/// The file's text without its trailing newline (editors and `echo` add one).
fn read_password(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading --clickhouse-password-file {}", path.display()))?;
    let password = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    Ok(password.to_owned())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        store: ClickHouseArgs,
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("pulse").chain(args.iter().copied()))
    }

    #[test]
    fn the_password_file_wins_and_loses_its_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        for (text, password) in [
            ("s3cret\n", "s3cret"),
            ("s3cret\r\n", "s3cret"),
            ("s3cret", "s3cret"),
            (" two words ", " two words "),
            ("", ""),
        ] {
            let path = dir.path().join("password");
            std::fs::write(&path, text).unwrap();
            let cli = parse(&[
                "--clickhouse-user",
                "pulse",
                "--clickhouse-password-file",
                path.to_str().unwrap(),
            ])
            .unwrap();
            let config = cli
                .store
                .config_with_env("http://ch:8123", Some("from-env".into()))
                .unwrap();
            assert_eq!(config.password.as_deref(), Some(password), "{text:?}");
            assert_eq!(config.user.as_deref(), Some("pulse"));
        }
    }

    #[test]
    fn without_a_file_the_password_comes_from_the_environment() {
        let cli = parse(&[]).unwrap();
        let config = cli
            .store
            .config_with_env("http://ch:8123", Some("from-env".into()))
            .unwrap();
        assert_eq!(config.password.as_deref(), Some("from-env"));
        let config = cli.store.config_with_env("http://ch:8123", None).unwrap();
        assert_eq!(config.password, None);
    }

    #[test]
    fn a_missing_password_file_is_a_clear_error() {
        let cli = parse(&["--clickhouse-password-file", "/nonexistent/pw"]).unwrap();
        let err = cli
            .store
            .config_with_env("http://ch:8123", None)
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("reading --clickhouse-password-file /nonexistent/pw"),
            "{err:#}"
        );
    }

    #[test]
    fn a_password_file_with_an_extra_line_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "s3cret\n\n").unwrap();
        let cli = parse(&["--clickhouse-password-file", path.to_str().unwrap()]).unwrap();
        let err = cli
            .store
            .config_with_env("http://ch:8123", None)
            .unwrap_err();
        let err = format!("{err:#}");
        assert!(err.contains("password holds a line break"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn a_bad_url_or_table_is_refused_up_front() {
        let cli = parse(&[]).unwrap();
        let err = cli.store.config_with_env("ftp://x", None).unwrap_err();
        assert!(
            format!("{err:#}").contains("must start with http://"),
            "{err:#}"
        );
        let cli = parse(&["--table", "1bad"]).unwrap();
        let err = cli
            .store
            .config_with_env("http://ch:8123", None)
            .unwrap_err();
        assert!(format!("{err:#}").contains("\"1bad\""), "{err:#}");
    }

    #[test]
    fn the_password_itself_is_no_option() {
        let err = parse(&["--clickhouse-password", "s3cret"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
    }
}
