//! Shared by the root package's tests: paths and file loaders for the compose
//! stack, the Grafana provisioning and the dashboard.

#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

/// The workspace root, where docker-compose.yml lives.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Reads a file under the repository root, with the path in the panic.
pub fn read(relative: impl AsRef<Path>) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Parses a YAML file under the repository root.
pub fn yaml(relative: impl AsRef<Path>) -> serde_norway::Value {
    let relative = relative.as_ref();
    let mut value: serde_norway::Value = serde_norway::from_str(&read(relative))
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", relative.display()));
    // `<<: *anchor` merge keys, as docker compose applies them.
    value
        .apply_merge()
        .unwrap_or_else(|e| panic!("{}: bad merge key: {e}", relative.display()));
    value
}

/// The provisioned dashboard.
pub const DASHBOARD: &str = "grafana/dashboards/pulse.json";

/// Parses the dashboard JSON.
pub fn dashboard() -> Json {
    serde_json::from_str(&read(DASHBOARD))
        .unwrap_or_else(|e| panic!("{DASHBOARD} is not valid JSON: {e}"))
}

/// Every panel, including those nested in rows.
pub fn panels(dashboard: &Json) -> Vec<&Json> {
    fn walk<'a>(list: &'a Json, out: &mut Vec<&'a Json>) {
        for panel in list.as_array().into_iter().flatten() {
            out.push(panel);
            if let Some(nested) = panel.get("panels") {
                walk(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// One SQL query of the dashboard: where it is, and its text.
#[derive(Debug, Clone)]
pub struct DashboardQuery {
    /// `panel "<title>"` or `variable "<name>"`.
    pub origin: String,
    /// The panel type (`timeseries`, `stat`, ...) or `variable`.
    pub kind: String,
    /// The SQL with Grafana's macros still in it.
    pub sql: String,
    /// The target's `format`: 0 time series, 1 table (none for variables).
    pub format: Option<u64>,
}

/// Every SQL query in the dashboard: template variables first, then each
/// panel target's `rawSql`.
pub fn dashboard_queries(dashboard: &Json) -> Vec<DashboardQuery> {
    let mut out = Vec::new();
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if var["type"] == "query" {
            let sql = match &var["query"] {
                Json::String(s) => s.clone(),
                // Newer Grafana stores `{ "rawSql": ... }` objects.
                other => other["rawSql"].as_str().unwrap_or_default().to_owned(),
            };
            out.push(DashboardQuery {
                origin: format!("variable {:?}", var["name"].as_str().unwrap_or("?")),
                kind: "variable".into(),
                sql,
                format: None,
            });
        }
    }
    for panel in panels(dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(sql) = target["rawSql"].as_str() {
                out.push(DashboardQuery {
                    origin: format!("panel {:?}", panel["title"].as_str().unwrap_or("?")),
                    kind: panel["type"].as_str().unwrap_or("?").to_owned(),
                    sql: sql.to_owned(),
                    format: target["format"].as_u64(),
                });
            }
        }
    }
    out
}

/// The dashboard's ClickHouse data source uid, as provisioned.
pub const DATASOURCE_UID: &str = "pulse-clickhouse";
/// The Grafana plugin id of the ClickHouse data source.
pub const CLICKHOUSE_PLUGIN: &str = "grafana-clickhouse-datasource";

/// A path relative to the repository root, as a `PathBuf`.
pub fn repo_path(relative: impl AsRef<Path>) -> PathBuf {
    repo_root().join(relative)
}
