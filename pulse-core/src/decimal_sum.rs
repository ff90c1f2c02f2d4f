//! Exact sums of decimals. A window's volumes can outgrow what one trade's
//! quantity holds: a second of a cheap, busy coin can pass 92 billion units.

use std::fmt;

use crate::decimal::{Decimal, SCALE, ratio_to_f64, write_scaled};

/// An exact sum of [`Decimal`]s, stored as `value × 10^8` in 128 bits.
///
/// ```
/// use pulse_core::{Decimal, DecimalSum};
/// let q: Decimal = "50000000000".parse().unwrap();
/// let sum = DecimalSum::from_raw(q.raw() as i128 * 2);
/// assert_eq!(sum.to_string(), "100000000000");
/// assert_eq!(sum.to_decimal(), None);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DecimalSum(i128);

impl DecimalSum {
    /// Zero.
    pub const ZERO: DecimalSum = DecimalSum(0);

    /// Builds a sum from its scaled integer (`value × 10^8`).
    pub const fn from_raw(raw: i128) -> Self {
        DecimalSum(raw)
    }

    /// The scaled integer (`value × 10^8`).
    pub const fn raw(self) -> i128 {
        self.0
    }

    /// The nearest `f64`.
    pub fn to_f64(self) -> f64 {
        ratio_to_f64(self.0, SCALE as i128)
    }

    /// As a [`Decimal`], if it fits one.
    pub fn to_decimal(self) -> Option<Decimal> {
        i64::try_from(self.0).ok().map(Decimal::from_raw)
    }

    /// Adds, failing on overflow.
    pub fn checked_add(self, other: DecimalSum) -> Option<DecimalSum> {
        self.0.checked_add(other.0).map(DecimalSum)
    }

    /// Subtracts, failing on overflow.
    ///
    /// ```
    /// use pulse_core::{Decimal, DecimalSum};
    /// let buy = DecimalSum::from("2.5".parse::<Decimal>().unwrap());
    /// let sell = DecimalSum::from("3.75".parse::<Decimal>().unwrap());
    /// assert_eq!(buy.checked_sub(sell).unwrap().to_string(), "-1.25");
    /// assert_eq!(DecimalSum::from_raw(i128::MIN).checked_sub(buy), None);
    /// ```
    pub fn checked_sub(self, other: DecimalSum) -> Option<DecimalSum> {
        self.0.checked_sub(other.0).map(DecimalSum)
    }
}

impl From<Decimal> for DecimalSum {
    fn from(d: Decimal) -> Self {
        DecimalSum(d.raw() as i128)
    }
}

impl fmt::Display for DecimalSum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let abs = self.0.unsigned_abs();
        let scale = SCALE as u128;
        // The remainder is below 10^8, so it fits.
        write_scaled(f, self.0 < 0, abs / scale, (abs % scale) as u64)
    }
}

impl serde::Serialize for DecimalSum {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn a_sum_that_fits_a_decimal_reads_as_that_decimal(raw: i64) {
            let (d, sum) = (Decimal::from_raw(raw), DecimalSum::from(Decimal::from_raw(raw)));
            proptest::prop_assert_eq!(sum.to_string(), d.to_string());
            proptest::prop_assert_eq!(sum.to_f64(), d.to_f64());
            proptest::prop_assert_eq!(sum.to_decimal(), Some(d));
        }
    }

    #[test]
    fn sums_past_a_decimal_stay_exact() {
        let max = i64::MAX as i128;
        assert_eq!(
            DecimalSum::from_raw(max + 1).to_string(),
            "92233720368.54775808"
        );
        assert_eq!(
            DecimalSum::from_raw(-3 * max).to_string(),
            "-276701161105.64327421"
        );
        assert_eq!(DecimalSum::from_raw(i128::MIN).to_decimal(), None);
        assert_eq!(
            DecimalSum::from_raw(i128::MIN).to_string(),
            "-1701411834604692317316873037158.84105728"
        );
        assert_eq!(
            DecimalSum::from_raw(10_000_000_000_000_000_000).to_f64(),
            1e11
        );
        let big = DecimalSum::from_raw(3 * max);
        assert_eq!(format!("[{big:>22.2}]"), "[       276701161105.64]");
    }
}
