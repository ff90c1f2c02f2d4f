//! The windows table: inserts and reads.

use std::future::Future;

use super::durability::ServerSettings;
use super::{ClickHouseConfig, ClickHouseError, WindowRow, create_schema, partitions};

/// A handle on one `pulse_metrics` table and the positions table beside it.
/// Cheap to clone; clones share what was learnt about the server.
#[derive(Clone)]
pub struct WindowStore {
    pub(super) config: ClickHouseConfig,
    pub(super) client: ::clickhouse::Client,
    pub(super) server: ServerSettings,
}

impl std::fmt::Debug for WindowStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowStore")
            .field("url", &self.config.url)
            .field("table", &self.config.metrics_table())
            .finish_non_exhaustive()
    }
}

impl WindowStore {
    /// A store for `config`, after checking it. Connects lazily.
    pub fn new(config: ClickHouseConfig) -> Result<Self, ClickHouseError> {
        config.validate()?;
        let client = config.client();
        Ok(WindowStore {
            config,
            client,
            server: ServerSettings::default(),
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &ClickHouseConfig {
        &self.config
    }

    /// Creates the database and both tables if they are missing.
    pub async fn create_schema(&self) -> Result<(), ClickHouseError> {
        create_schema(&self.config).await
    }

    /// Inserts `rows`, stored when it returns (see
    /// [`insert_settings`](Self::insert_settings)): in one `INSERT`, or one
    /// per 48 months when they span more, as the server refuses inserts
    /// into too many partitions. On error nothing is kept by the client:
    /// the caller still owns `rows` and may retry with them (rows stored by
    /// an earlier `INSERT` of the batch are then replaced by themselves).
    pub async fn insert_windows(&self, rows: &[WindowRow]) -> Result<(), ClickHouseError> {
        if rows.is_empty() {
            return Ok(());
        }
        let settings = self.insert_settings().await?;
        for batch in partitions::inserts(rows, partitions::MONTHS_PER_INSERT) {
            self.insert(&batch, settings).await?;
        }
        Ok(())
    }

    async fn insert(
        &self,
        rows: &[&WindowRow],
        settings: &[(&'static str, &'static str)],
    ) -> Result<(), ClickHouseError> {
        // Already quoted; `insert` would quote `db`.`t` again as one name.
        let table = self.config.metrics_table();
        self.timed("insert windows", async {
            let mut insert = self.client.insert_unescaped::<WindowRow>(&table).await?;
            for &(name, value) in settings {
                insert = insert.with_setting(name, value);
            }
            for row in rows {
                insert.write(*row).await?;
            }
            insert.end().await
        })
        .await
    }

    /// The settings pulse pins on its inserts to this server, so that an
    /// insert is stored when it returns whatever the server's profile says:
    /// `async_insert=0` on servers that know it (21.11 and later), none on
    /// older ones, whose inserts are always synchronous and which reject
    /// unknown settings. Asked once per store, on first use.
    pub async fn insert_settings(
        &self,
    ) -> Result<&'static [(&'static str, &'static str)], ClickHouseError> {
        self.server.for_inserts(self).await
    }

    /// Every window, one row each (`FINAL`), ordered by symbol and start.
    pub async fn select_final(&self) -> Result<Vec<WindowRow>, ClickHouseError> {
        let sql = format!(
            "SELECT ?fields FROM {} FINAL ORDER BY symbol, window_start",
            self.config.metrics_table()
        );
        self.timed(
            "select windows",
            self.client.query(&sql).fetch_all::<WindowRow>(),
        )
        .await
    }

    /// Runs `request` with the configured timeout, naming it in errors.
    pub(super) async fn timed<T>(
        &self,
        operation: &'static str,
        request: impl Future<Output = Result<T, ::clickhouse::error::Error>>,
    ) -> Result<T, ClickHouseError> {
        match tokio::time::timeout(self.config.request_timeout, request).await {
            Ok(result) => result.map_err(|e| ClickHouseError::request(operation, e)),
            Err(_) => Err(ClickHouseError::Timeout {
                operation,
                after: self.config.request_timeout,
            }),
        }
    }
}
