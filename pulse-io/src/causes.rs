//! An error with its causes, for logs and messages.
//!
//! HTTP clients say only "error sending request" or "client error
//! (Connect)" and keep what happened ("operation timed out", "Connection
//! refused") in their sources.

use std::error::Error;

/// `err`, then each cause it does not already say, joined by `: `.
pub(crate) fn with_causes(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("error sending request")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn causes_follow_the_error_once_each() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(
            with_causes(&Outer(refused)),
            "error sending request: refused"
        );
        let plain = std::io::Error::other("disk full");
        assert_eq!(with_causes(&plain), "disk full");
    }
}
