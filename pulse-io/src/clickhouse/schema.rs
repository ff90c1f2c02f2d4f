//! The DDL, shared with docker compose: the `pulse-io/sql/*.sql` files are the one
//! source; pulse only substitutes the configured database and table names.

use super::{ClickHouseConfig, ClickHouseError, POSITIONS_TABLE};

/// `pulse-io/sql/001_pulse_metrics.sql`: the windows table.
pub const METRICS_DDL: &str = include_str!("../../sql/001_pulse_metrics.sql");
/// `pulse-io/sql/002_pulse_consumer_positions.sql`: the consumer positions table.
pub const POSITIONS_DDL: &str = include_str!("../../sql/002_pulse_consumer_positions.sql");

const CREATE: &str = "CREATE TABLE IF NOT EXISTS ";

/// The statements that create the database and both tables for `config`.
pub fn schema_statements(config: &ClickHouseConfig) -> Vec<String> {
    vec![
        format!("CREATE DATABASE IF NOT EXISTS `{}`", config.database),
        retarget(METRICS_DDL, "pulse_metrics", &config.metrics_table()),
        retarget(POSITIONS_DDL, POSITIONS_TABLE, &config.positions_table()),
    ]
}

/// Points the file's `CREATE TABLE IF NOT EXISTS <name>` at `qualified`.
fn retarget(ddl: &str, name: &str, qualified: &str) -> String {
    let from = format!("{CREATE}{name}\n");
    assert!(ddl.contains(&from), "DDL must contain {from:?}");
    ddl.replacen(&from, &format!("{CREATE}{qualified}\n"), 1)
}

/// Columns added to the positions table after it was first released:
/// `(name, definition, after)`. `CREATE TABLE IF NOT EXISTS` leaves an
/// older table as it is, so start-up adds them.
const ADDED_POSITION_COLUMNS: &[(&str, &str, &str)] =
    &[("last_record_hash", "UInt64 DEFAULT 0", "version")];

/// Creates the database and the tables if they are missing, and adds
/// columns an older positions table lacks.
pub async fn create_schema(config: &ClickHouseConfig) -> Result<(), ClickHouseError> {
    config.validate()?;
    let client = config.client();
    for statement in schema_statements(config) {
        timed(config, client.query(&statement).execute()).await?;
    }
    for &(name, definition, after) in ADDED_POSITION_COLUMNS {
        // Checked first: 18.16 has no `ADD COLUMN IF NOT EXISTS`.
        if has_position_column(config, &client, name).await? {
            continue;
        }
        let alter = format!(
            "ALTER TABLE {} ADD COLUMN {name} {definition} AFTER {after}",
            config.positions_table()
        );
        if let Err(e) = timed(config, client.query(&alter).execute()).await {
            // Another consumer may have added it meanwhile.
            if !has_position_column(config, &client, name).await? {
                return Err(e);
            }
        }
        tracing::info!(table = %config.positions_table(), column = name, "added a column to the positions table");
    }
    Ok(())
}

async fn has_position_column(
    config: &ClickHouseConfig,
    client: &::clickhouse::Client,
    name: &str,
) -> Result<bool, ClickHouseError> {
    let query = client
        .query("SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?")
        .bind(config.database.as_str())
        .bind(POSITIONS_TABLE)
        .bind(name);
    Ok(timed(config, query.fetch_one::<u64>()).await? > 0)
}

async fn timed<T>(
    config: &ClickHouseConfig,
    request: impl std::future::Future<Output = Result<T, ::clickhouse::error::Error>>,
) -> Result<T, ClickHouseError> {
    match tokio::time::timeout(config.request_timeout, request).await {
        Ok(result) => result.map_err(|e| ClickHouseError::request("create schema", e)),
        Err(_) => Err(ClickHouseError::Timeout {
            operation: "create schema",
            after: config.request_timeout,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_use_the_configured_names() {
        let config = ClickHouseConfig {
            database: "markets".into(),
            table: "btc_windows".into(),
            ..ClickHouseConfig::default()
        };
        let s = schema_statements(&config);
        assert_eq!(s[0], "CREATE DATABASE IF NOT EXISTS `markets`");
        assert!(s[1].contains("CREATE TABLE IF NOT EXISTS `markets`.`btc_windows`\n"));
        assert!(s[1].contains("ENGINE = ReplacingMergeTree(version)"));
        assert!(s[1].contains("ORDER BY (symbol, window_start)"));
        assert!(s[2].contains("CREATE TABLE IF NOT EXISTS `markets`.`pulse_consumer_positions`\n"));
        // Types 18.16 lacks must not creep in.
        for ddl in [METRICS_DDL, POSITIONS_DDL] {
            let code: String = ddl.lines().filter(|l| !l.starts_with("--")).collect();
            for newer in ["DateTime64", "LowCardinality", "Nullable", "Decimal"] {
                assert!(!code.contains(newer), "{newer}");
            }
        }
    }
}
