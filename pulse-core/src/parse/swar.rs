//! Eight bytes at a time in a `u64` ("SIMD within a register"), for the
//! fixed-order fast path: where a JSON string ends, how many digits start a
//! run and what they are worth. Safe code only: words are loaded with
//! `u64::from_le_bytes`, so byte `k` of the input is byte `k` of the word
//! counting from the least significant end.
//!
//! The flag masks below may also flag bytes *after* the first real hit (a
//! borrow or carry runs upwards from it), never before, so only their lowest
//! flag is used.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Eight bytes from `i`; past the end of `b` the bytes read as zero, which
/// every caller treats as a stop (a control character, a non-digit).
#[inline(always)]
pub(super) fn load(b: &[u8], i: usize) -> u64 {
    match b.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        Some(w) => u64::from_le_bytes(*w),
        None => load_tail(b, i),
    }
}

/// [`load`] within eight bytes of the end of `b`, or past it: out of line,
/// since only the last field of an input gets here.
#[cold]
#[inline(never)]
fn load_tail(b: &[u8], i: usize) -> u64 {
    let rest = b.get(i..).unwrap_or_default();
    let mut w = [0u8; 8];
    w[..rest.len().min(8)].copy_from_slice(&rest[..rest.len().min(8)]);
    u64::from_le_bytes(w)
}

/// The two words of sixteen bytes.
#[inline(always)]
pub(super) fn split_words(w: &[u8; 16]) -> (u64, u64) {
    let x = u128::from_le_bytes(*w);
    (x as u64, (x >> 64) as u64)
}

/// Whether `w` starts with `s` (at most 16 bytes), compared a word at a
/// time; `s` is a constant, so its words and masks fold away.
#[inline(always)]
pub(super) fn starts_with(w: &[u8; 16], s: &[u8]) -> bool {
    debug_assert!(s.len() <= 16);
    let mut want = [0u8; 16];
    want[..s.len()].copy_from_slice(s);
    let mask = match s.len() {
        16 => u128::MAX,
        n => (1u128 << (8 * n)) - 1,
    };
    (u128::from_le_bytes(*w) ^ u128::from_le_bytes(want)) & mask == 0
}

/// The high bit of every byte that cannot be inside a plain JSON string as
/// the general scanner reads one: `"`, `\`, a control character, non-ASCII.
#[inline(always)]
pub(super) fn string_stops(w: u64) -> u64 {
    let quote = w ^ (ONES * b'"' as u64);
    let backslash = w ^ (ONES * b'\\' as u64);
    let is_quote = quote.wrapping_sub(ONES) & !quote;
    let is_backslash = backslash.wrapping_sub(ONES) & !backslash;
    let is_control = w.wrapping_sub(ONES * 0x20) & !w;
    (is_quote | is_backslash | is_control | w) & HIGH
}

/// The bytes of `w` as digit values: `'0'..='9'` become `0..=9`.
#[inline(always)]
pub(super) fn digit_values(w: u64) -> u64 {
    w ^ (ONES * b'0' as u64)
}

/// How many of the first bytes are digits (0..=8), given [`digit_values`].
#[inline(always)]
pub(super) fn digit_run(v: u64) -> usize {
    // A byte is a digit iff its value is below 10: adding 118 sets the high
    // bit of any byte from 10 up; `| v` catches those from 128 up.
    let non_digit = (v.wrapping_add(ONES * 118) | v) & HIGH;
    (non_digit.trailing_zeros() / 8) as usize
}

/// Whether [`digit_run`] is `n` (0..=8), for a constant `n`: one masked
/// compare instead of a count. Flags are exact up to and including the
/// first non-digit, so the bytes after it are masked off.
#[inline(always)]
pub(super) fn digit_run_is(v: u64, n: usize) -> bool {
    debug_assert!(n <= 8);
    let non_digit = (v.wrapping_add(ONES * 118) | v) & HIGH;
    match n {
        8 => non_digit == 0,
        n => non_digit & (u64::MAX >> (56 - 8 * n)) == 0x80 << (8 * n),
    }
}

/// The value of eight digit values, the first the most significant.
#[inline(always)]
pub(super) fn eight_digits(v: u64) -> u64 {
    // Pairs, then quads, then all eight (Lemire's multiply-and-shift).
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    (v & MASK)
        .wrapping_mul(MUL1)
        .wrapping_add(((v >> 16) & MASK).wrapping_mul(MUL2))
        >> 32
}

/// The value of the first `n` digit values (1..=8) as an integer.
#[inline(always)]
pub(super) fn leading_digits(v: u64, n: usize) -> u64 {
    debug_assert!((1..=8).contains(&n));
    // Shifting up pads the front with zero digits.
    eight_digits(v << (8 * (8 - n)))
}

/// The first `n` digit values (0..=8) read as eight fractional digits, i.e.
/// padded with zeros at the back: `"3", 1` is 30000000.
#[inline(always)]
pub(super) fn fraction_digits(v: u64, n: usize) -> u64 {
    debug_assert!(n <= 8);
    let keep = if n == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * n)) - 1
    };
    eight_digits(v & keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn word(s: &[u8]) -> u64 {
        load(s, 0)
    }

    #[test]
    fn finds_the_first_stop() {
        let first = |s: &[u8]| (string_stops(word(s)).trailing_zeros() / 8) as usize;
        assert_eq!(first(b"BTCUSDT\""), 7);
        assert_eq!(first(b"ab\"cdefg"), 2);
        assert_eq!(first(b"a\\\"bcdef"), 1);
        assert_eq!(first(b"abc\x1f\"xyz"), 3);
        assert_eq!(first(b"abcd\xc3\xa9\"x"), 4);
        assert_eq!(first(b"abcdefgh"), 8);
        assert_eq!(first(b"abc"), 3, "zero padding stops");
        assert_eq!(first(b"\x7f~ !#[]\""), 7);
    }

    #[test]
    fn reads_digits() {
        let v = digit_values(word(b"61800.30"));
        assert_eq!(digit_run(v), 5);
        assert_eq!(leading_digits(v, 5), 61800);
        assert_eq!(fraction_digits(digit_values(word(b"30\"")), 2), 30_000_000);
        assert_eq!(fraction_digits(digit_values(word(b"00000001")), 8), 1);
        assert_eq!(
            leading_digits(digit_values(word(b"12345678")), 8),
            12_345_678
        );
        assert_eq!(digit_run(digit_values(word(b"/:09"))), 0);
        assert_eq!(digit_run(digit_values(word(b"0123456789"))), 8);
    }

    proptest! {
        #[test]
        fn stops_match_a_byte_loop(bytes in prop::collection::vec(any::<u8>(), 0..12)) {
            let expected = bytes
                .iter()
                .take(8)
                .position(|&b| b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b))
                .unwrap_or(bytes.len().min(8));
            let got = (string_stops(load(&bytes, 0)).trailing_zeros() / 8) as usize;
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn starts_with_matches_a_slice_compare(
            input in prop::array::uniform16(prop::sample::select(b"{\"e:,ta".to_vec())),
            s in prop::collection::vec(prop::sample::select(b"{\"e:,ta".to_vec()), 0..17),
        ) {
            prop_assert_eq!(starts_with(&input, &s), input.starts_with(&s));
        }

        #[test]
        fn digits_match_a_byte_loop(bytes in prop::collection::vec(any::<u8>(), 0..12)) {
            let n = bytes.iter().take(8).take_while(|b| b.is_ascii_digit()).count();
            let v = digit_values(load(&bytes, 0));
            prop_assert_eq!(digit_run(v), n);
            for k in 0..=8 {
                prop_assert_eq!(digit_run_is(v, k), n == k, "{}", k);
            }
            let value = bytes[..n].iter().fold(0u64, |a, d| a * 10 + (d - b'0') as u64);
            if n > 0 {
                prop_assert_eq!(leading_digits(v, n), value);
            }
            prop_assert_eq!(fraction_digits(v, n), value * 10u64.pow(8 - n as u32));
        }
    }
}
