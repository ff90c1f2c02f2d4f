//! The REST `/fapi/v1/time` reply: Binance's clock, read when a connection
//! is lost before any trade said what time it is there.

use serde::Deserialize;

use super::{ParseError, checked_time};

/// `{"serverTime":1499827319559}`
#[derive(Deserialize)]
struct ServerTime {
    #[serde(rename = "serverTime")]
    server_time: i64,
}

/// Binance's error object, e.g. `{"code":-1003,"msg":"Too many requests"}`.
#[derive(Deserialize)]
struct BinanceError {
    code: i64,
    msg: String,
}

/// Parses a `GET /fapi/v1/time` reply into Binance's time, in ms.
///
/// ```
/// use pulse_core::parse_server_time;
/// assert_eq!(parse_server_time(br#"{"serverTime":1499827319559}"#).unwrap(), 1499827319559);
/// assert!(parse_server_time(br#"{"code":-1003,"msg":"Too many requests"}"#).is_err());
/// ```
///
/// # Errors
/// [`ParseError::Binance`] for Binance's error object, [`ParseError::Json`]
/// for anything else that is not the reply, and [`ParseError::TimeRange`]
/// for a time no trade could have.
pub fn parse_server_time(body: &[u8]) -> Result<i64, ParseError> {
    match serde_json::from_slice::<ServerTime>(body) {
        Ok(reply) => checked_time("serverTime", reply.server_time),
        Err(e) => Err(match serde_json::from_slice::<BinanceError>(body) {
            Ok(b) => ParseError::Binance {
                code: b.code,
                msg: b.msg,
            },
            Err(_) => ParseError::Json(e),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_time_and_refuses_what_is_not_one() {
        assert_eq!(
            parse_server_time(br#"{ "serverTime": 1723161502123 }"#).unwrap(),
            1_723_161_502_123
        );
        assert!(matches!(
            parse_server_time(br#"{"code":-1121,"msg":"Invalid."}"#),
            Err(ParseError::Binance { code: -1121, .. })
        ));
        assert!(matches!(
            parse_server_time(br#"{"serverTime":-5}"#),
            Err(ParseError::TimeRange { .. })
        ));
        for body in [&b"<html>502</html>"[..], b"{}", br#"{"serverTime":"1"}"#] {
            assert!(
                matches!(parse_server_time(body), Err(ParseError::Json(_))),
                "{body:?}"
            );
        }
    }
}
