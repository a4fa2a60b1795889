//! A software model of the x87 80-bit `long double` that Redis's
//! `INCRBYFLOAT` computes with on x86-64, so our replies match its digits.
//!
//! Redis parses both operands with `strtold`, adds them in extended precision
//! (64-bit mantissa) and prints the sum with `%.17Lf`, trimming trailing
//! zeros. Plain `f64` arithmetic gives visibly different answers
//! (`10.5 + 0.1` prints as `10.59999999999999964` with 17 decimals), so we
//! reproduce each step exactly: correctly rounded parsing (decimal and hex
//! forms, as glibc), correctly rounded addition, and exact decimal printing,
//! all rounding to nearest, ties to even. Numbers too large for `u128` go
//! through a small unsigned big integer ([`Big`]), needed only for extreme
//! exponents.

use std::cmp::Ordering;

/// Exponent of the smallest denormal: values are `mant * 2^exp` with
/// `exp >= MIN_EXP`.
const MIN_EXP: i32 = -16445;
/// Largest exponent of a normalized (bit 63 set) mantissa.
const MAX_EXP: i32 = 16320;
/// Redis's `MAX_LONG_DOUBLE_CHARS`: `string2ld` refuses inputs this long.
const MAX_CHARS: usize = 5 * 1024;

/// A finite extended-precision number: `(-1)^neg * mant * 2^exp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongDouble {
    neg: bool,
    mant: u64,
    exp: i32,
}

/// What `string2ld` makes of an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A finite number.
    Finite(LongDouble),
    /// `inf`, `-infinity`, ...
    Infinite,
}

impl LongDouble {
    const ZERO: LongDouble = LongDouble {
        neg: false,
        mant: 0,
        exp: 0,
    };

    /// The exact value of an integer (every `i64` fits in 64 mantissa bits).
    pub fn from_i64(v: i64) -> Self {
        round(v < 0, u128::from(v.unsigned_abs()), 0, false).unwrap_or(Self::ZERO)
    }

    /// Parses like Redis's `string2ld`: the whole argument must be a number
    /// `strtold` accepts, without leading space, not NaN, not overflowing,
    /// and not underflowing to zero.
    pub fn parse(s: &[u8]) -> Option<Parsed> {
        if s.is_empty() || s.len() >= MAX_CHARS {
            return None;
        }
        let (neg, body) = match s.split_first() {
            Some((b'-', rest)) => (true, rest),
            Some((b'+', rest)) => (false, rest),
            _ => (false, s),
        };
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Some(Parsed::Infinite);
        }
        let hex = body.len() > 2
            && body.first() == Some(&b'0')
            && matches!(body.get(1), Some(b'x' | b'X'));
        let value = if hex {
            parse_hex(neg, body.get(2..)?)?
        } else {
            parse_decimal(neg, body)?
        };
        Some(Parsed::Finite(value))
    }

    /// `self + other`, correctly rounded; `None` when the sum overflows to
    /// infinity.
    pub fn add(self, other: LongDouble) -> Option<LongDouble> {
        if other.mant == 0 {
            if self.mant == 0 {
                // -0 + -0 is -0; any other mix of zeros is +0.
                return Some(LongDouble {
                    neg: self.neg && other.neg,
                    ..Self::ZERO
                });
            }
            return Some(self);
        }
        if self.mant == 0 {
            return Some(other);
        }
        // 62 spare low bits give room for guard bits after alignment; the
        // sum of two values below 2^126 cannot overflow a u128.
        let (mut a, mut b) = (self, other);
        if a.exp < b.exp {
            std::mem::swap(&mut a, &mut b);
        }
        let big_a = u128::from(a.mant) << 62;
        let big_b = u128::from(b.mant) << 62;
        let exp = a.exp - 62;
        let shift = (a.exp - b.exp) as u32;
        // Shift the smaller-exponent operand right, folding every lost bit
        // into its lowest bit ("jamming"): with this many guard bits the
        // final rounding is still exact.
        let aligned_b = if shift >= 127 {
            u128::from(big_b != 0)
        } else {
            let lost = big_b & ((1u128 << shift) - 1);
            (big_b >> shift) | u128::from(lost != 0)
        };
        let (neg, sum) = if a.neg == b.neg {
            (a.neg, big_a + aligned_b)
        } else {
            match big_a.cmp(&aligned_b) {
                Ordering::Greater => (a.neg, big_a - aligned_b),
                Ordering::Less => (b.neg, aligned_b - big_a),
                Ordering::Equal => return Some(Self::ZERO),
            }
        };
        round(neg, sum, exp, false)
    }

    /// The text `ld2string(..., LD_STR_HUMAN)` produces: `%.17Lf` with
    /// trailing zeros (and a bare point) removed, and `-0` written `0`.
    pub fn to_human(self) -> String {
        // N = round(|x| * 10^17), then place the point 17 digits from the end.
        let scaled = u128::from(self.mant) * 100_000_000_000_000_000u128;
        let digits = if self.exp >= 0 {
            let mut big = Big::from_u128(scaled);
            big.shl(self.exp as u32);
            big.to_decimal()
        } else {
            let sh = self.exp.unsigned_abs();
            let n = if sh >= 128 {
                // |x| * 10^17 < 2^121 <= half a unit: rounds to zero.
                0
            } else {
                let kept = scaled >> sh;
                let rem = scaled & ((1u128 << sh) - 1);
                let half = 1u128 << (sh - 1);
                if rem > half || (rem == half && kept & 1 == 1) {
                    kept + 1
                } else {
                    kept
                }
            };
            n.to_string()
        };
        let mut out = String::with_capacity(digits.len() + 3);
        if self.neg {
            out.push('-');
        }
        if digits.len() <= 17 {
            out.push('0');
            out.push('.');
            out.push_str(&"0".repeat(17 - digits.len()));
            out.push_str(&digits);
        } else {
            let (int, frac) = digits.split_at(digits.len() - 17);
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
        }
        let trimmed = out.trim_end_matches('0').trim_end_matches('.').len();
        out.truncate(trimmed);
        if out == "-0" {
            out.remove(0);
        }
        out
    }
}

/// Rounds `q * 2^exp` (plus a positive amount below one unit of `q` when
/// `sticky`) to the extended format, ties to even. `None` on overflow.
/// A nonzero input that underflows comes back as a zero mantissa.
///
/// When `sticky` is set, `q` must carry at least two bits more than the 64
/// kept, which every caller guarantees.
fn round(neg: bool, q: u128, exp: i32, sticky: bool) -> Option<LongDouble> {
    if q == 0 {
        return Some(LongDouble {
            neg,
            ..LongDouble::ZERO
        });
    }
    let len = 128 - q.leading_zeros() as i32;
    let mut shift = len - 64;
    if exp.saturating_add(shift) < MIN_EXP {
        // Denormal: keep only the bits at or above 2^MIN_EXP.
        shift = MIN_EXP.saturating_sub(exp);
    }
    let (mant, exp) = if shift > 0 {
        let (kept, rem, half) = if shift >= 129 {
            (0, 0, 1)
        } else if shift == 128 {
            (0, q, 1u128 << 127)
        } else {
            (q >> shift, q & ((1u128 << shift) - 1), 1u128 << (shift - 1))
        };
        let up = rem > half || (rem == half && (sticky || kept & 1 == 1));
        let mut m = kept + u128::from(up);
        let mut e = exp + shift;
        if m >> 64 != 0 {
            m >>= 1;
            e += 1;
        }
        (m as u64, e)
    } else {
        ((q << shift.unsigned_abs()) as u64, exp + shift)
    };
    if mant == 0 {
        return Some(LongDouble {
            neg,
            ..LongDouble::ZERO
        });
    }
    // Normalized exponent: where the mantissa's top bit would sit.
    let top = exp + (64 - mant.leading_zeros() as i32) - 64;
    if top > MAX_EXP {
        return None;
    }
    Some(LongDouble { neg, mant, exp })
}

/// A decimal number `digits[.digits][e[+-]digits]` (already without sign).
fn parse_decimal(neg: bool, s: &[u8]) -> Option<LongDouble> {
    let mut i = 0;
    let mut big = Big::zero();
    let mut seen = 0usize; // digits in the mantissa
    let mut frac = 0i64; // digits after the point
    let mut chunk = 0u32;
    let mut chunk_len = 0u32;
    let mut point = false;
    while let Some(&c) = s.get(i) {
        match c {
            b'0'..=b'9' => {
                seen += 1;
                if point {
                    frac += 1;
                }
                chunk = chunk * 10 + u32::from(c - b'0');
                chunk_len += 1;
                if chunk_len == 9 {
                    big.mul_add(1_000_000_000, chunk);
                    (chunk, chunk_len) = (0, 0);
                }
            }
            b'.' if !point => point = true,
            _ => break,
        }
        i += 1;
    }
    if seen == 0 {
        return None;
    }
    if chunk_len > 0 {
        big.mul_add(10u32.pow(chunk_len), chunk);
    }
    let mut exp10: i64 = 0;
    if let Some(b'e' | b'E') = s.get(i) {
        let (eneg, mut j) = match s.get(i + 1) {
            Some(b'-') => (true, i + 2),
            Some(b'+') => (false, i + 2),
            _ => (false, i + 1),
        };
        let start = j;
        while let Some(&c) = s.get(j) {
            if !c.is_ascii_digit() {
                break;
            }
            exp10 = (exp10 * 10 + i64::from(c - b'0')).min(1_000_000_000);
            j += 1;
        }
        if j == start {
            return None;
        }
        if eneg {
            exp10 = -exp10;
        }
        i = j;
    }
    if i != s.len() {
        return None;
    }
    if big.is_zero() {
        return Some(LongDouble {
            neg,
            ..LongDouble::ZERO
        });
    }
    let k = exp10 - frac;
    // The value is below 10^(k + digits): bound it before building powers.
    let magnitude = k + big.decimal_digits_upper() as i64;
    if magnitude > 4934 {
        return None; // overflow: strtold gives HUGE_VALL and ERANGE
    }
    if magnitude < -4952 {
        return None; // underflow to zero with ERANGE
    }
    let mut num = big;
    let mut den = Big::from_u128(1);
    if k >= 0 {
        num.mul_pow10(k as u32);
    } else {
        den.mul_pow10(k.unsigned_abs() as u32);
    }
    let r = ratio(neg, num, den)?;
    (r.mant != 0).then_some(r)
}

/// A hexadecimal number `hex[.hex][p[+-]digits]` (after `0x`).
fn parse_hex(neg: bool, s: &[u8]) -> Option<LongDouble> {
    let mut i = 0;
    let mut q: u128 = 0;
    let mut exp2: i64 = 0;
    let mut sticky = false;
    let mut seen = 0usize;
    let mut point = false;
    while let Some(&c) = s.get(i) {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            b'.' if !point => {
                point = true;
                i += 1;
                continue;
            }
            _ => break,
        };
        seen += 1;
        if q >> 120 == 0 {
            q = (q << 4) | u128::from(d);
            if point {
                exp2 -= 4;
            }
        } else {
            // Beyond 120 significant bits: only whether it is nonzero matters.
            sticky |= d != 0;
            if !point {
                exp2 += 4;
            }
        }
        i += 1;
    }
    if seen == 0 {
        return None;
    }
    if let Some(b'p' | b'P') = s.get(i) {
        let (eneg, mut j) = match s.get(i + 1) {
            Some(b'-') => (true, i + 2),
            Some(b'+') => (false, i + 2),
            _ => (false, i + 1),
        };
        let start = j;
        let mut e: i64 = 0;
        while let Some(&c) = s.get(j) {
            if !c.is_ascii_digit() {
                break;
            }
            e = (e * 10 + i64::from(c - b'0')).min(1_000_000_000);
            j += 1;
        }
        if j == start {
            return None;
        }
        exp2 += if eneg { -e } else { e };
        i = j;
    }
    if i != s.len() {
        return None;
    }
    if q == 0 {
        return Some(LongDouble {
            neg,
            ..LongDouble::ZERO
        });
    }
    let exp = exp2.clamp(-100_000, 100_000) as i32;
    let r = round(neg, q, exp, sticky)?;
    (r.mant != 0).then_some(r)
}

/// `num / den` correctly rounded (both nonzero).
fn ratio(neg: bool, mut num: Big, mut den: Big) -> Option<LongDouble> {
    // Scale so the quotient has 66 or 67 bits: enough for rounding with
    // the remainder as sticky bit.
    let t = num.bits() as i64 - den.bits() as i64;
    let s = 66 - t;
    if s > 0 {
        num.shl(s as u32);
    } else {
        den.shl(s.unsigned_abs() as u32);
    }
    let mut q: u128 = 0;
    for bit in (0..68u32).rev() {
        let mut shifted = den.clone();
        shifted.shl(bit);
        if num.cmp(&shifted) != Ordering::Less {
            num.sub(&shifted);
            q |= 1u128 << bit;
        }
    }
    let exp = (-s).clamp(-200_000, 200_000) as i32;
    round(neg, q, exp, !num.is_zero())
}

/// A little-endian unsigned big integer, just what parsing and printing
/// extreme values needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn zero() -> Self {
        Big(Vec::new())
    }

    fn from_u128(mut v: u128) -> Self {
        let mut limbs = Vec::with_capacity(4);
        while v != 0 {
            limbs.push(v as u32);
            v >>= 32;
        }
        Big(limbs)
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    /// `self = self * m + a`.
    fn mul_add(&mut self, m: u32, a: u32) {
        let mut carry = u64::from(a);
        for limb in self.0.iter_mut() {
            let v = u64::from(*limb) * u64::from(m) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }

    fn mul_pow10(&mut self, mut k: u32) {
        while k >= 9 {
            self.mul_add(1_000_000_000, 0);
            k -= 9;
        }
        if k > 0 {
            self.mul_add(10u32.pow(k), 0);
        }
    }

    fn bits(&self) -> u32 {
        match self.0.last() {
            None => 0,
            Some(&top) => (self.0.len() as u32 - 1) * 32 + (32 - top.leading_zeros()),
        }
    }

    /// An upper bound on the number of decimal digits.
    fn decimal_digits_upper(&self) -> u32 {
        // log10(2) < 0.30103
        self.bits() * 30103 / 100_000 + 1
    }

    fn shl(&mut self, bits: u32) {
        if self.is_zero() {
            return;
        }
        let (limbs, rest) = ((bits / 32) as usize, bits % 32);
        if rest > 0 {
            let mut carry = 0u32;
            for limb in self.0.iter_mut() {
                let v = (*limb << rest) | carry;
                carry = *limb >> (32 - rest);
                *limb = v;
            }
            if carry != 0 {
                self.0.push(carry);
            }
        }
        if limbs > 0 {
            let mut shifted = vec![0; limbs];
            shifted.extend_from_slice(&self.0);
            self.0 = shifted;
        }
    }

    fn cmp(&self, other: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    /// `self -= other`; requires `self >= other`.
    fn sub(&mut self, other: &Big) {
        let mut borrow = 0i64;
        for (i, limb) in self.0.iter_mut().enumerate() {
            let o = i64::from(other.0.get(i).copied().unwrap_or(0));
            let mut v = i64::from(*limb) - o - borrow;
            borrow = 0;
            if v < 0 {
                v += 1 << 32;
                borrow = 1;
            }
            *limb = v as u32;
        }
        self.trim();
    }

    /// `self /= d`, returning the remainder.
    fn div_small(&mut self, d: u32) -> u32 {
        let mut rem = 0u64;
        for limb in self.0.iter_mut().rev() {
            let v = (rem << 32) | u64::from(*limb);
            *limb = (v / u64::from(d)) as u32;
            rem = v % u64::from(d);
        }
        self.trim();
        rem as u32
    }

    fn to_decimal(&self) -> String {
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            chunks.push(n.div_small(1_000_000_000));
        }
        let mut out = String::with_capacity(chunks.len() * 9);
        for (i, c) in chunks.iter().rev().enumerate() {
            if i == 0 {
                out.push_str(&c.to_string());
            } else {
                out.push_str(&format!("{c:09}"));
            }
        }
        if out.is_empty() {
            out.push('0');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(s: &str) -> LongDouble {
        match LongDouble::parse(s.as_bytes()) {
            Some(Parsed::Finite(v)) => v,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn incr(a: &str, b: &str) -> String {
        ld(a).add(ld(b)).expect("finite").to_human()
    }

    #[test]
    fn sums_print_like_redis() {
        assert_eq!(incr("10.5", "0.1"), "10.6");
        assert_eq!(incr("10.6", "-1.1"), "9.5");
        assert_eq!(incr("0.1", "0.2"), "0.3");
        assert_eq!(incr("0", "5.0e3"), "5000");
        assert_eq!(incr("0", "-0"), "0");
        assert_eq!(incr("1", "-1"), "0");
        assert_eq!(incr("0", "1.5"), "1.5");
        assert_eq!(incr("0", "0x10"), "16");
        assert_eq!(incr("0", "0x1p-2"), "0.25");
        assert_eq!(incr("0", "1e-30"), "0");
        assert_eq!(incr("0", "-1e-30"), "0");
        assert_eq!(incr("3.0e3", "1"), "3001");
        assert_eq!(incr("0", "1e20"), "100000000000000000000");
    }

    #[test]
    fn parse_rejects_like_string2ld() {
        for bad in [
            "",
            " 1",
            "1 ",
            "nan",
            "-nan",
            "1e",
            "1e+",
            ".",
            "-",
            "0x",
            "0xg",
            "1.2.3",
            "abc",
            "1e99999",
            "1e-99999",
            "0x1p99999",
            "infinit",
        ] {
            assert_eq!(LongDouble::parse(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(LongDouble::parse(b"-inf"), Some(Parsed::Infinite));
        assert_eq!(LongDouble::parse(b"Infinity"), Some(Parsed::Infinite));
        assert_eq!(ld(".5").to_human(), "0.5");
        assert_eq!(ld("5.").to_human(), "5");
        assert_eq!(ld("+7").to_human(), "7");
        assert_eq!(ld("0e0").to_human(), "0");
    }

    #[test]
    fn extremes() {
        // Largest finite long double and the overflow just above it.
        let max = ld("1.18973149535723176502e4932");
        assert!(max.to_human().len() > 4900);
        assert_eq!(max.add(max), None);
        assert_eq!(LongDouble::parse(b"1.2e4932"), None);
        // Denormals are accepted (strtold's ERANGE with a nonzero value).
        assert!(LongDouble::parse(b"4e-4951").is_some());
        assert_eq!(
            LongDouble::from_i64(i64::MIN).to_human(),
            "-9223372036854775808"
        );
    }
}
