//! Errors of the ClickHouse adapter, split into retryable and fatal.

use std::time::Duration;

use crate::causes::with_causes;
use crate::sink::SinkError;

/// Why a ClickHouse operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClickHouseError {
    /// The server could not be reached or answered with an error.
    #[error("ClickHouse {operation}: {}", with_causes(source))]
    Request {
        /// What was being done, e.g. `insert windows`.
        operation: &'static str,
        /// The cause.
        source: ::clickhouse::error::Error,
    },
    /// The server did not answer in time.
    #[error("ClickHouse {operation} timed out after {after:?}")]
    Timeout {
        /// What was being done.
        operation: &'static str,
        /// How long pulse waited.
        after: Duration,
    },
    /// A stored consumer position could not be read back.
    #[error("stored position of {topic}/{partition} is corrupt: {reason}")]
    CorruptPosition {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// What was wrong.
        reason: String,
    },
    /// A setting was invalid.
    #[error("invalid ClickHouse configuration: {0}")]
    Config(String),
}

/// Server error codes that describe a passing state (overload, restart,
/// timeouts, a full disk), not a problem with the request itself.
const RETRYABLE_CODES: &[u32] = &[
    3,   // UNEXPECTED_END_OF_FILE
    74,  // CANNOT_READ_FROM_FILE_DESCRIPTOR
    75,  // CANNOT_WRITE_TO_FILE_DESCRIPTOR (e.g. no space left on device)
    159, // TIMEOUT_EXCEEDED
    164, // READONLY
    202, // TOO_MANY_SIMULTANEOUS_QUERIES
    203, // NO_FREE_CONNECTION
    209, // SOCKET_TIMEOUT
    210, // NETWORK_ERROR
    236, // ABORTED
    241, // MEMORY_LIMIT_EXCEEDED
    242, // TABLE_IS_READ_ONLY
    243, // NOT_ENOUGH_SPACE
    252, // TOO_MANY_PARTS
    285, // TOO_FEW_LIVE_REPLICAS
    319, // UNKNOWN_STATUS_OF_INSERT
    394, // QUERY_WAS_CANCELLED
    425, // SYSTEM_ERROR
];

impl ClickHouseError {
    pub(crate) fn request(operation: &'static str, source: ::clickhouse::error::Error) -> Self {
        ClickHouseError::Request { operation, source }
    }

    /// True when the same request may succeed later: the server is down,
    /// restarting, overloaded or slow. False for errors a retry cannot fix
    /// (bad credentials, missing table, schema mismatch).
    pub fn is_retryable(&self) -> bool {
        use ::clickhouse::error::Error as E;
        match self {
            ClickHouseError::Timeout { .. } => true,
            ClickHouseError::Request { source, .. } => match source {
                E::Network(_) | E::TimedOut => true,
                E::BadResponse(text) => {
                    server_code(text).is_none_or(|c| RETRYABLE_CODES.contains(&c))
                }
                _ => false,
            },
            ClickHouseError::CorruptPosition { .. } | ClickHouseError::Config(_) => false,
        }
    }
}

/// The `Code: N` of a server error text, if there is one.
fn server_code(text: &str) -> Option<u32> {
    let rest = &text[text.find("Code: ")? + "Code: ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl From<ClickHouseError> for SinkError {
    fn from(e: ClickHouseError) -> Self {
        let reason = e.to_string();
        if e.is_retryable() {
            SinkError::Unavailable {
                sink: "clickhouse",
                reason,
            }
        } else {
            SinkError::Rejected {
                sink: "clickhouse",
                reason,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(text: &str) -> ClickHouseError {
        ClickHouseError::request(
            "test",
            ::clickhouse::error::Error::BadResponse(text.to_owned()),
        )
    }

    #[test]
    fn classifies_server_errors() {
        assert!(bad("Code: 252, e.displayText() = DB::Exception: Too many parts").is_retryable());
        assert!(bad("Code: 241. DB::Exception: Memory limit exceeded").is_retryable());
        // A full disk passes once space is freed; the rows wait meanwhile.
        assert!(
            bad("Code: 75, e.displayText() = DB::ErrnoException: Cannot write to file , errno: 28, strerror: No space left on device")
                .is_retryable()
        );
        assert!(
            bad("Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space")
                .is_retryable()
        );
        assert!(
            !bad("Code: 60, e.displayText() = DB::Exception: Table x.y doesn't exist")
                .is_retryable()
        );
        assert!(!bad("Code: 516. DB::Exception: default: Authentication failed").is_retryable());
        // No code at all: an HTTP-level failure, e.g. a proxy in front of a restarting server.
        assert!(bad("502 Bad Gateway").is_retryable());
        assert_eq!(server_code("Code: 62, e.displayText()"), Some(62));
    }

    /// As hyper's connect error: a vague message, the reason in its source.
    #[derive(Debug, thiserror::Error)]
    #[error("client error (Connect)")]
    struct Connect(#[source] std::io::Error);

    #[test]
    fn a_network_error_says_its_cause() {
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let err = ClickHouseError::request(
            "insert windows",
            ::clickhouse::error::Error::Network(Box::new(Connect(refused))),
        );
        assert_eq!(
            err.to_string(),
            "ClickHouse insert windows: network error: client error (Connect): Connection refused"
        );
    }
}
