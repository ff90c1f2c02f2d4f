//! Where the windows go: server, database, table.

use std::fmt;
use std::time::Duration;

use super::ClickHouseError;

/// ClickHouse settings. Plain data with defaults; checked by [`validate`](Self::validate).
///
/// `Debug` shows the password as `<redacted>`, so a logged config leaks nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct ClickHouseConfig {
    /// HTTP endpoint, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    /// Database; created when missing. Default `default`.
    pub database: String,
    /// Table for the windows; created when missing. Default `pulse_metrics`.
    pub table: String,
    /// User name, if the server needs one.
    pub user: Option<String>,
    /// Password, if the server needs one.
    pub password: Option<String>,
    /// Longest a single request may take before it counts as failed (and is
    /// retried). Default 30 s.
    pub request_timeout: Duration,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            url: "http://127.0.0.1:8123".to_owned(),
            database: "default".to_owned(),
            table: "pulse_metrics".to_owned(),
            user: None,
            password: None,
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("table", &self.table)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// The table holding consumer positions, next to the windows.
pub const POSITIONS_TABLE: &str = "pulse_consumer_positions";

impl ClickHouseConfig {
    /// Checks the settings once, up front.
    pub fn validate(&self) -> Result<(), ClickHouseError> {
        // Checked first, so no error below echoes a password.
        if has_credentials(&self.url) {
            return Err(ClickHouseError::Config(
                "the URL must not carry a user or password (`user:password@`): it would show in \
                 logs and in `ps`; name the user with --clickhouse-user and give the password in \
                 PULSE_CLICKHOUSE_PASSWORD or --clickhouse-password-file"
                    .to_owned(),
            ));
        }
        // The client sends its own query string and drops this one, so a
        // `?password=` there would only be logged.
        if self.url.contains('?') {
            return Err(ClickHouseError::Config(
                "the URL must not have a query (`?…`): the client drops it; name the database \
                 with --database, the user with --clickhouse-user, and give the password in \
                 PULSE_CLICKHOUSE_PASSWORD or --clickhouse-password-file"
                    .to_owned(),
            ));
        }
        for (what, value) in [("user", &self.user), ("password", &self.password)] {
            // An HTTP header cannot hold them; say so before the server is asked.
            if value
                .as_deref()
                .is_some_and(|v| v.chars().any(char::is_control))
            {
                return Err(ClickHouseError::Config(format!(
                    "the {what} holds a line break or another control character \
                     (a password file may end in an extra empty line)"
                )));
            }
        }
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(ClickHouseError::Config(format!(
                "URL must start with http:// or https://, got {:?}",
                self.url
            )));
        }
        for (what, name) in [("database", &self.database), ("table", &self.table)] {
            if !is_identifier(name) {
                return Err(ClickHouseError::Config(format!(
                    "{what} name {name:?} must be letters, digits and _ and not start with a digit"
                )));
            }
        }
        if self.request_timeout.is_zero() {
            return Err(ClickHouseError::Config(
                "the request timeout (--clickhouse-timeout) must be above zero".to_owned(),
            ));
        }
        Ok(())
    }

    /// A client for the server, without a default database (names are
    /// always qualified). Validation is off: ClickHouse 18.16 rejects the
    /// setting it sends.
    pub fn client(&self) -> ::clickhouse::Client {
        let mut client = ::clickhouse::Client::default()
            .with_url(&self.url)
            .with_validation(false);
        if let Some(user) = &self.user {
            client = client.with_user(user);
        }
        if let Some(password) = &self.password {
            client = client.with_password(password);
        }
        client
    }

    /// `` `database`.`table` `` for the windows.
    pub fn metrics_table(&self) -> String {
        qualified(&self.database, &self.table)
    }

    /// `` `database`.`pulse_consumer_positions` ``.
    pub fn positions_table(&self) -> String {
        qualified(&self.database, POSITIONS_TABLE)
    }
}

fn qualified(database: &str, table: &str) -> String {
    format!("`{database}`.`{table}`")
}

/// True when the URL's authority has a `userinfo@` part.
fn has_credentials(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.contains('@')
}

/// Names are restricted so they never need escaping.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let config = ClickHouseConfig {
            user: Some("pulse".into()),
            password: Some("s3cret".into()),
            ..ClickHouseConfig::default()
        };
        let debug = format!("{config:?} {config:#?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains(r#"password: Some("<redacted>")"#), "{debug}");
        assert!(debug.contains(r#"user: Some("pulse")"#), "{debug}");
        let none = format!("{:?}", ClickHouseConfig::default());
        assert!(none.contains("password: None"), "{none}");
    }

    #[test]
    fn validates_names_and_url() {
        assert!(ClickHouseConfig::default().validate().is_ok());
        for (database, table) in [("db-1", "t"), ("db", "1t"), ("db", "t;DROP"), ("", "t")] {
            let config = ClickHouseConfig {
                database: database.into(),
                table: table.into(),
                ..ClickHouseConfig::default()
            };
            assert!(config.validate().is_err(), "{database}.{table}");
        }
        let config = ClickHouseConfig {
            url: "127.0.0.1:8123".into(),
            ..ClickHouseConfig::default()
        };
        assert!(config.validate().is_err());
        let config = ClickHouseConfig {
            request_timeout: Duration::ZERO,
            ..ClickHouseConfig::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("--clickhouse-timeout"), "{err}");
    }

    #[test]
    fn credentials_in_the_url_are_refused_without_echoing_them() {
        for url in [
            "http://pulse:s3cret@127.0.0.1:8123",
            "https://pulse@ch.example:8443/",
            "ftp://pulse:s3cret@ch",
            "http://127.0.0.1:8123/?password=s3cret",
            "http://127.0.0.1:8123/?pass%77ord=s3cret",
            "http://127.0.0.1:8123/?database=x&User=pulse",
        ] {
            let config = ClickHouseConfig {
                url: url.into(),
                ..ClickHouseConfig::default()
            };
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("PULSE_CLICKHOUSE_PASSWORD"), "{url}: {err}");
            assert!(!err.contains("s3cret"), "{url}: {err}");
        }
        for url in [
            "http://127.0.0.1:8123",
            "http://ch:8123/path@x",
            "https://ch:8443/",
        ] {
            let config = ClickHouseConfig {
                url: url.into(),
                ..ClickHouseConfig::default()
            };
            assert!(config.validate().is_ok(), "{url}");
        }
    }

    #[test]
    fn a_password_a_header_cannot_carry_is_refused() {
        for (user, password) in [(None, "two\nlines"), (None, "cr\r"), (Some("a\nb"), "ok")] {
            let config = ClickHouseConfig {
                user: user.map(str::to_owned),
                password: Some(password.into()),
                ..ClickHouseConfig::default()
            };
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("control character"), "{err}");
            assert!(!err.contains(password), "{err}");
        }
        assert_eq!(
            ClickHouseConfig::default().metrics_table(),
            "`default`.`pulse_metrics`"
        );
    }
}
