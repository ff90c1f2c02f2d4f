//! Exact fixed-point decimals for prices and quantities.
//!
//! Binance sends prices and quantities as decimal strings with at most eight
//! fractional digits. Parsing them straight into scaled integers keeps every
//! sum exact, so the same trades always give the same bits.

use std::fmt;
use std::str::FromStr;

/// Number of fractional digits kept by [`Decimal`].
pub const SCALE_DIGITS: u32 = 8;
/// `10^SCALE_DIGITS`: the integer value of `1`.
pub const SCALE: i64 = 100_000_000;

/// A fixed-point decimal with eight fractional digits, stored as `value × 10^8`.
///
/// ```
/// use pulse_core::Decimal;
/// let p: Decimal = "61800.30".parse().unwrap();
/// assert_eq!(p.raw(), 6_180_030_000_000);
/// assert_eq!(p.to_string(), "61800.3");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Decimal(i64);

/// Why a decimal string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecimalError {
    /// The string was empty or held only a sign or a point.
    #[error("empty decimal")]
    Empty,
    /// A character other than a digit, one leading `-` and one `.`.
    #[error("invalid character {0:?} in decimal")]
    InvalidChar(char),
    /// More than eight fractional digits that are not zero.
    #[error("more than {SCALE_DIGITS} fractional digits")]
    TooPrecise,
    /// The value does not fit in the fixed-point range.
    #[error("decimal out of range")]
    Overflow,
}

impl Decimal {
    /// Zero.
    pub const ZERO: Decimal = Decimal(0);

    /// Builds a decimal from its scaled integer (`value × 10^8`).
    pub const fn from_raw(raw: i64) -> Self {
        Decimal(raw)
    }

    /// The scaled integer (`value × 10^8`).
    pub const fn raw(self) -> i64 {
        self.0
    }

    /// True when the value is below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// Nearest `f64`; use only at the output edge.
    pub fn to_f64(self) -> f64 {
        ratio_to_f64(self.0 as i128, SCALE as i128)
    }

    /// Parses a decimal from bytes, exactly, without going through `f64`.
    pub fn parse_bytes(s: &[u8]) -> Result<Self, DecimalError> {
        let (negative, digits) = match s.split_first() {
            Some((b'-', rest)) => (true, rest),
            Some((b'+', rest)) => (false, rest),
            _ => (false, s),
        };
        if digits.is_empty() {
            return Err(DecimalError::Empty);
        }
        let mut int: i64 = 0;
        let mut frac: i64 = 0;
        let mut frac_digits = 0u32;
        let mut seen_point = false;
        let mut seen_digit = false;
        for &b in digits {
            match b {
                b'0'..=b'9' => {
                    seen_digit = true;
                    let d = (b - b'0') as i64;
                    if seen_point {
                        if frac_digits < SCALE_DIGITS {
                            frac = frac * 10 + d;
                            frac_digits += 1;
                        } else if d != 0 {
                            return Err(DecimalError::TooPrecise);
                        }
                    } else {
                        int = int
                            .checked_mul(10)
                            .and_then(|v| v.checked_add(d))
                            .ok_or(DecimalError::Overflow)?;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                other => return Err(DecimalError::InvalidChar(other as char)),
            }
        }
        if !seen_digit {
            return Err(DecimalError::Empty);
        }
        let frac = frac * 10i64.pow(SCALE_DIGITS - frac_digits);
        let raw = int
            .checked_mul(SCALE)
            .and_then(|v| v.checked_add(frac))
            .ok_or(DecimalError::Overflow)?;
        Ok(Decimal(if negative { -raw } else { raw }))
    }

    /// Adds, failing on overflow.
    pub fn checked_add(self, other: Decimal) -> Option<Decimal> {
        self.0.checked_add(other.0).map(Decimal)
    }

    /// Subtracts, failing on overflow.
    ///
    /// ```
    /// use pulse_core::Decimal;
    /// let (a, b): (Decimal, Decimal) = ("61180.1".parse().unwrap(), "0.25".parse().unwrap());
    /// assert_eq!(a.checked_sub(b).unwrap().to_string(), "61179.85");
    /// assert_eq!(Decimal::from_raw(i64::MIN).checked_sub(b), None);
    /// ```
    pub fn checked_sub(self, other: Decimal) -> Option<Decimal> {
        self.0.checked_sub(other.0).map(Decimal)
    }
}

impl FromStr for Decimal {
    type Err = DecimalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Decimal::parse_bytes(s.as_bytes())
    }
}

/// Shortest exact form: no trailing zeros, no exponent (`61800.3`, `0.006`, `5`).
impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let abs = self.0.unsigned_abs();
        write_scaled(f, self.0 < 0, abs / SCALE as u64, abs % SCALE as u64)
    }
}

/// `int.frac`, `frac` in units of 10^-8, without trailing zeros.
struct Shortest<T> {
    int: T,
    frac: u64,
}

impl<T: fmt::Display> fmt::Display for Shortest<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (int, mut frac) = (&self.int, self.frac);
        if frac == 0 {
            return write!(f, "{int}");
        }
        let mut width = SCALE_DIGITS as usize;
        while frac % 10 == 0 {
            frac /= 10;
            width -= 1;
        }
        write!(f, "{int}.{frac:0width$}")
    }
}

/// Writes `int.frac`, `frac` in units of 10^-8, without trailing zeros, or
/// with exactly the formatter's precision (rounded half away from zero);
/// width, fill, alignment and `+` apply as to a number.
pub(crate) fn write_scaled(
    f: &mut fmt::Formatter<'_>,
    negative: bool,
    int: impl Into<u128> + fmt::Display,
    frac: u64,
) -> fmt::Result {
    if f.width().is_none() && f.precision().is_none() && !f.sign_plus() {
        // The usual case, and the CSV export's: no buffer.
        let sign = if negative { "-" } else { "" };
        return write!(f, "{sign}{}", Shortest { int, frac });
    }
    let mut int: u128 = int.into();
    let digits = match f.precision() {
        None => Shortest { int, frac }.to_string(),
        Some(places) if places >= SCALE_DIGITS as usize => {
            let zeros = places - SCALE_DIGITS as usize;
            format!("{int}.{frac:08}{}", "0".repeat(zeros))
        }
        Some(places) => {
            let unit = 10u64.pow(SCALE_DIGITS - places as u32);
            let mut kept = frac / unit + u64::from(frac % unit >= unit - frac % unit);
            if kept == SCALE as u64 / unit {
                int += 1;
                kept = 0;
            }
            match places {
                0 => int.to_string(),
                _ => format!("{int}.{kept:0places$}"),
            }
        }
    };
    // A value that rounds to zero has no sign, as `0.00` and not `-0.00`.
    let zero = digits.bytes().all(|b| b == b'0' || b == b'.');
    f.pad_integral(!negative || zero, "", &digits)
}

impl serde::Serialize for Decimal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Decimal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `num / den` as the nearest `f64` (ties to even), computed from integers so
/// that the same inputs always give the same bits on every platform.
///
/// Dividing two rounded floats would round twice and can land one ulp off
/// (`1.89` would print as `1.8900000000000001`), so the quotient is carried
/// in integers to 55 significant bits, with a sticky bit for the remainder,
/// and rounded once.
pub fn ratio_to_f64(num: i128, den: i128) -> f64 {
    debug_assert!(den != 0);
    const EXACT: u128 = 1 << f64::MANTISSA_DIGITS;
    let negative = (num < 0) != (den < 0);
    let (n, d) = (num.unsigned_abs(), den.unsigned_abs());
    let magnitude = if n <= EXACT && d <= EXACT {
        // Both are exact doubles, and IEEE division rounds once.
        n as f64 / d as f64
    } else {
        quotient_to_f64(n, d)
    };
    if negative { -magnitude } else { magnitude }
}

/// Correctly rounded `n / d` by long division: quotient bits are produced
/// until there are at least 55 of them (53 kept, one to round on, one sticky).
fn quotient_to_f64(n: u128, d: u128) -> f64 {
    const WANT: u32 = f64::MANTISSA_DIGITS + 2;
    let (mut q, mut r) = (n / d, n % d);
    // The quotient so far is `q × 2^-exp`. With `n ≥ 1` and `d < 2^128`
    // the loop ends with `exp` below 256, far from the subnormal range.
    let mut exp: i32 = 0;
    while r != 0 && bits(q) < WANT {
        let shift = (WANT - bits(q)).min(r.leading_zeros());
        if shift == 0 {
            // `r` uses all 128 bits, so `2r > d` and the next bit is 1;
            // `2r - d < d` fits, and wrapping arithmetic computes it exactly.
            q = (q << 1) | 1;
            r = (r << 1).wrapping_sub(d);
            exp += 1;
        } else {
            let wide = r << shift;
            q = (q << shift) | (wide / d);
            r = wide % d;
            exp += shift as i32;
        }
    }
    // Round to odd: a set low bit below the rounding bit stands for the
    // discarded remainder, so the one rounding `as f64` does is correct.
    let sticky = u128::from(r != 0);
    let rounded = (q | sticky) as f64;
    rounded * power_of_two(-exp)
}

/// `2^e` as an exact double, for `e` in the normal range.
fn power_of_two(e: i32) -> f64 {
    debug_assert!((-1022..=1023).contains(&e));
    f64::from_bits(((1023 + e) as u64) << 52)
}

/// Significant bits in `x`.
fn bits(x: u128) -> u32 {
    128 - x.leading_zeros()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binance_strings_exactly() {
        let cases: &[(&str, i64)] = &[
            ("61800.30", 6_180_030_000_000),
            ("0.006", 600_000),
            ("0.00000001", 1),
            ("29130.00000000", 2_913_000_000_000),
            ("5", 500_000_000),
            ("-1.5", -150_000_000),
            (".5", 50_000_000),
            ("7.", 700_000_000),
            ("0.100000000000", 10_000_000),
        ];
        for (s, raw) in cases {
            assert_eq!(s.parse::<Decimal>().unwrap().raw(), *raw, "{s}");
        }
    }

    #[test]
    fn rejects_malformed_strings() {
        let cases: &[(&str, DecimalError)] = &[
            ("", DecimalError::Empty),
            ("-", DecimalError::Empty),
            (".", DecimalError::Empty),
            ("1.2.3", DecimalError::InvalidChar('.')),
            ("1e5", DecimalError::InvalidChar('e')),
            (" 1", DecimalError::InvalidChar(' ')),
            ("0.000000001", DecimalError::TooPrecise),
            ("99999999999999999999", DecimalError::Overflow),
            ("NaN", DecimalError::InvalidChar('N')),
        ];
        for (s, err) in cases {
            assert_eq!(s.parse::<Decimal>().unwrap_err(), *err, "{s}");
        }
    }

    #[test]
    fn display_is_shortest_exact_form() {
        for (s, shown) in [
            ("61800.30", "61800.3"),
            ("0.006", "0.006"),
            ("5.000", "5"),
            ("-0.5", "-0.5"),
        ] {
            assert_eq!(s.parse::<Decimal>().unwrap().to_string(), shown);
        }
    }

    #[test]
    fn display_takes_width_precision_and_alignment_as_a_number_does() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let p = d("61800.125");
        assert_eq!(format!("[{p:>12}]"), "[   61800.125]");
        assert_eq!(format!("[{p:<12}]"), "[61800.125   ]");
        assert_eq!(format!("[{p:012}]"), "[00061800.125]");
        assert_eq!(
            format!("{p:.2} {p:.0} {p:.10}"),
            "61800.13 61800 61800.1250000000"
        );
        assert_eq!(format!("{:+}", d("1.5")), "+1.5");
        assert_eq!(format!("[{:>8.1}]", d("-0.96")), "[    -1.0]");
        assert_eq!(format!("{:.1}", d("-0.04")), "0.0", "no sign on a zero");
        assert_eq!(format!("{:.3}", d("9.9995")), "10.000");
    }

    #[test]
    fn ratio_is_exact_for_whole_quotients() {
        assert_eq!(ratio_to_f64(6_180_030_000_000, SCALE as i128), 61800.3);
        assert_eq!(ratio_to_f64(-3, 2), -1.5);
    }

    #[test]
    fn to_f64_is_the_nearest_double() {
        // Rounding the integer and fractional parts separately gave
        // 1.8900000000000001 and 1.4889999999999999 here.
        for s in [
            "1.89",
            "1.489",
            "0.1",
            "61800.3",
            "-0.006",
            "92233720368.54775807",
        ] {
            let d: Decimal = s.parse().unwrap();
            assert_eq!(d.to_f64(), s.parse::<f64>().unwrap(), "{s}");
        }
    }

    #[test]
    fn ratio_rounds_wide_quotients_once() {
        // A VWAP: notional at scale 10^16 over volume × 10^8, both past 2^53.
        let (num, den) = (10i128.pow(30) + 7, 3 * 10i128.pow(20));
        assert_eq!(ratio_to_f64(num, den), oracle(num, den));
        assert_eq!(ratio_to_f64(i128::MIN, 3), oracle(i128::MIN, 3));
        assert_eq!(ratio_to_f64(1, i128::MAX), oracle(1, i128::MAX));
        assert_eq!(
            ratio_to_f64(i128::MAX, i128::MAX - 1),
            oracle(i128::MAX, i128::MAX - 1)
        );
        assert_eq!(ratio_to_f64(0, i128::MAX), 0.0);
    }

    /// The correctly rounded quotient, from num-rational's big rationals.
    fn oracle(num: i128, den: i128) -> f64 {
        use num_traits::ToPrimitive;
        let big = num_rational::BigRational::new(num.into(), den.into());
        big.to_f64().unwrap()
    }

    proptest::proptest! {
        #[test]
        fn to_f64_matches_parsing_the_exact_text(raw: i64) {
            let d = Decimal::from_raw(raw);
            proptest::prop_assert_eq!(d.to_f64(), d.to_string().parse::<f64>().unwrap());
        }

        #[test]
        fn ratio_matches_the_oracle(
            num: i128,
            den: i128,
            narrow in 0u32..120,
        ) {
            // Also the narrow inputs the windows produce, not only full-width ones.
            let (num, den) = (num >> narrow, den >> (narrow / 2));
            let den = if den == 0 { -7 } else { den };
            proptest::prop_assert_eq!(ratio_to_f64(num, den), oracle(num, den));
        }

        #[test]
        fn display_rounds_to_any_precision_half_away_from_zero(raw: i64, places in 0usize..10) {
            let shown = format!("{:.places$}", Decimal::from_raw(raw));
            // The oracle rounds the whole raw value at once.
            let kept = match places {
                p if p >= 8 => i128::from(raw.unsigned_abs()) * 10i128.pow(p as u32 - 8),
                p => {
                    let unit = 10i128.pow(8 - p as u32);
                    (i128::from(raw.unsigned_abs()) + unit / 2) / unit
                }
            };
            let scale = 10i128.pow(places as u32);
            let sign = if raw < 0 && kept != 0 { "-" } else { "" };
            let expected = match places {
                0 => format!("{sign}{kept}"),
                _ => format!("{sign}{}.{:0places$}", kept / scale, kept % scale),
            };
            proptest::prop_assert_eq!(shown, expected);
        }

        #[test]
        fn display_roundtrips(raw in -(i64::MAX / 2)..(i64::MAX / 2)) {
            let d = Decimal::from_raw(raw);
            proptest::prop_assert_eq!(d.to_string().parse::<Decimal>().unwrap(), d);
        }
    }
}
