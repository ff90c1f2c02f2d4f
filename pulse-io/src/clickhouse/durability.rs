//! Inserts that the crash argument depends on are synchronous.
//!
//! A position is written only after the windows it covers (see
//! [`positions`](super::positions)). That order only holds if the windows
//! insert is stored when it returns: a server profile with
//! `async_insert=1, wait_for_async_insert=0` acknowledges an insert before
//! writing it, so a crash could keep the position and lose the windows. So
//! pulse pins `async_insert=0` on its inserts, but only where the server
//! knows the setting: ClickHouse before 21.11 (e.g. Debian's 18.16) rejects
//! unknown settings, and its inserts are always synchronous anyway.

use std::sync::Arc;

use tokio::sync::OnceCell;

use super::ClickHouseError;

/// What pulse pins on its inserts when the server knows `async_insert`.
pub(super) const SYNCHRONOUS: &[(&str, &str)] = &[("async_insert", "0")];

/// The settings to pin, given whether the server knows `async_insert`.
pub(super) fn insert_settings(knows_async_insert: bool) -> &'static [(&'static str, &'static str)] {
    if knows_async_insert { SYNCHRONOUS } else { &[] }
}

/// Whether the server knows `async_insert`, asked once per store (and its
/// clones) on the first insert.
#[derive(Clone, Debug, Default)]
pub(super) struct ServerSettings {
    knows_async_insert: Arc<OnceCell<bool>>,
}

impl ServerSettings {
    /// The settings to pin on this server's inserts.
    pub(super) async fn for_inserts(
        &self,
        store: &super::WindowStore,
    ) -> Result<&'static [(&'static str, &'static str)], ClickHouseError> {
        let knows = self
            .knows_async_insert
            .get_or_try_init(|| async {
                let query = store
                    .client
                    .query("SELECT count() FROM system.settings WHERE name = 'async_insert'");
                let found = store
                    .timed("read server settings", query.fetch_one::<u64>())
                    .await?;
                tracing::debug!(
                    async_insert = found > 0,
                    "ClickHouse server settings read; inserts pinned synchronous where known"
                );
                Ok::<_, ClickHouseError>(found > 0)
            })
            .await?;
        Ok(insert_settings(*knows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn async_insert_is_pinned_off_where_the_server_knows_it() {
        assert_eq!(insert_settings(true), &[("async_insert", "0")]);
        // 18.16 answers `Unknown setting async_insert` (code 115) to it.
        assert!(insert_settings(false).is_empty());
    }
}
