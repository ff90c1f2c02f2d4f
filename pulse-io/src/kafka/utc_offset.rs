//! The UTC offset written into each message's human-readable `timestamp`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, SecondsFormat};

/// A fixed offset from UTC, such as `+05:30`.
///
/// The original design wrote Indian Standard Time, so that is the default.
/// A fixed offset (not a named zone with daylight saving) keeps every
/// timestamp unambiguous and reversible.
///
/// ```
/// use pulse_io::kafka::UtcOffset;
/// let ist: UtcOffset = "IST".parse().unwrap();
/// assert_eq!(ist, UtcOffset::default());
/// assert_eq!(ist.format_ms(1_723_161_502_123), "2024-08-09T05:28:22.123+05:30");
/// let utc: UtcOffset = "UTC".parse().unwrap();
/// assert_eq!(utc.format_ms(1_723_161_502_123), "2024-08-08T23:58:22.123Z");
/// assert_eq!("-03:00".parse::<UtcOffset>().unwrap().to_string(), "-03:00");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtcOffset(FixedOffset);

/// Indian Standard Time, +05:30.
const IST_SECONDS: i32 = 5 * 3600 + 30 * 60;

impl Default for UtcOffset {
    fn default() -> Self {
        UtcOffset::IST
    }
}

impl UtcOffset {
    /// UTC itself; timestamps end in `Z`.
    pub const UTC: UtcOffset = UtcOffset(FixedOffset::east_opt(0).expect("0 is in range"));
    /// Indian Standard Time, `+05:30`, as in the original design.
    pub const IST: UtcOffset =
        UtcOffset(FixedOffset::east_opt(IST_SECONDS).expect("+05:30 is in range"));

    /// An offset of `seconds` east of UTC; `None` beyond ±24 h, and for
    /// offsets with leftover seconds: RFC 3339 writes offsets in whole
    /// minutes, so such a timestamp would name another instant.
    pub fn from_seconds(seconds: i32) -> Option<Self> {
        if seconds % 60 != 0 {
            return None;
        }
        FixedOffset::east_opt(seconds).map(UtcOffset)
    }

    /// Seconds east of UTC.
    pub fn seconds(self) -> i32 {
        self.0.local_minus_utc()
    }

    /// `ms` since the epoch as RFC 3339 with milliseconds in this offset.
    /// Times outside chrono's range (never a real trade) fall back to UTC epoch.
    pub fn format_ms(self, ms: i64) -> String {
        DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .with_timezone(&self.0)
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

/// Why a UTC offset was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid UTC offset {0:?}: use +HH:MM, -HH:MM, UTC, Z or IST")]
pub struct UtcOffsetError(String);

impl FromStr for UtcOffset {
    type Err = UtcOffsetError;

    /// Accepts `+HH:MM`, `-HH:MM`, `+HHMM`, `+HH`, `UTC`, `Z` and `IST`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || UtcOffsetError(s.to_owned());
        let t = s.trim();
        if t.eq_ignore_ascii_case("utc") || t.eq_ignore_ascii_case("z") {
            return Ok(UtcOffset::UTC);
        }
        if t.eq_ignore_ascii_case("ist") {
            return Ok(UtcOffset::IST);
        }
        let (sign, rest) = match t.as_bytes().first() {
            Some(b'+') => (1, &t[1..]),
            Some(b'-') => (-1, &t[1..]),
            _ => return Err(err()),
        };
        let digits: String = rest.chars().filter(|c| *c != ':').collect();
        if !(digits.len() == 2 || digits.len() == 4) || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        let hours: i32 = digits[..2].parse().map_err(|_| err())?;
        let minutes: i32 = if digits.len() == 4 {
            digits[2..].parse().map_err(|_| err())?
        } else {
            0
        };
        if hours > 23 || minutes > 59 {
            return Err(err());
        }
        UtcOffset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok_or_else(err)
    }
}

impl fmt::Display for UtcOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.seconds();
        let sign = if s < 0 { '-' } else { '+' };
        let abs = s.unsigned_abs();
        write!(f, "{sign}{:02}:{:02}", abs / 3600, abs % 3600 / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_offsets() {
        let cases = [
            ("+05:30", 19_800),
            ("IST", 19_800),
            ("ist", 19_800),
            ("UTC", 0),
            ("Z", 0),
            ("+00:00", 0),
            ("-03:00", -10_800),
            ("+0930", 34_200),
            ("+09", 32_400),
            ("-23:59", -86_340),
        ];
        for (text, seconds) in cases {
            assert_eq!(
                text.parse::<UtcOffset>().unwrap().seconds(),
                seconds,
                "{text}"
            );
        }
        // Found by fuzzing: `-23:59:59` was written as `-24:00`.
        assert_eq!(UtcOffset::from_seconds(-86_399), None);
        assert_eq!(UtcOffset::from_seconds(90), None);
        assert_eq!(UtcOffset::from_seconds(-86_340).unwrap().seconds(), -86_340);
        for bad in ["", "05:30", "+5:30", "+24:00", "+05:60", "CET", "+05:30:00"] {
            assert!(bad.parse::<UtcOffset>().is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_rfc3339_with_millis() {
        let t = 1_680_652_799_999;
        assert_eq!(UtcOffset::IST.format_ms(t), "2023-04-05T05:29:59.999+05:30");
        assert_eq!(
            "-03:00".parse::<UtcOffset>().unwrap().format_ms(t),
            "2023-04-04T20:59:59.999-03:00"
        );
        assert_eq!(UtcOffset::UTC.format_ms(t), "2023-04-04T23:59:59.999Z");
    }
}
