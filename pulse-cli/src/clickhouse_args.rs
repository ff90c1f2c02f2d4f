//! Flags naming the ClickHouse database and table, shared by `consume` and `run`.

use clap::Args;
use pulse_io::clickhouse::ClickHouseConfig;

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

    /// ClickHouse password.
    #[arg(long, env = "PULSE_CLICKHOUSE_PASSWORD", hide_env_values = true)]
    pub clickhouse_password: Option<String>,
}

impl ClickHouseArgs {
    /// The settings for the server at `url`.
    pub fn config(&self, url: &str) -> ClickHouseConfig {
        ClickHouseConfig {
            url: url.to_owned(),
            database: self.database.clone(),
            table: self.table.clone(),
            user: self.clickhouse_user.clone(),
            password: self.clickhouse_password.clone(),
            ..ClickHouseConfig::default()
        }
    }
}
