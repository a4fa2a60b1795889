//! Parsing of command arguments with Redis's rules and error texts.

use super::error::CmdError;

/// Parses a signed 64-bit integer the way Redis's `string2ll` does (no
/// spaces, no `+`, no leading zeros): the storage crate's parser, which
/// intsets use too.
pub fn parse_i64(arg: &[u8]) -> Option<i64> {
    amber_storage::types::set::parse_int(arg)
}

/// An integer argument, or `ERR value is not an integer or out of range`.
pub fn int(arg: &[u8]) -> Result<i64, CmdError> {
    parse_i64(arg).ok_or(CmdError::NotInteger)
}

/// A float argument parsed like Redis's `string2ld`/`strtold`-based parsing:
/// no spaces, `inf`/`-inf` accepted, `nan` rejected.
pub fn parse_f64(arg: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(arg).ok()?;
    if s.is_empty()
        || s.starts_with(|c: char| c.is_whitespace())
        || s.ends_with(|c: char| c.is_whitespace())
    {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    let v = match lower.trim_start_matches(['+', '-']) {
        "inf" | "infinity" => {
            if lower.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }
        }
        "nan" => return None,
        _ => {
            // Rust accepts "1e5", ".5", "5." like strtod; reject hex and other forms Rust rejects anyway.
            let v: f64 = s.parse().ok()?;
            if v.is_nan() {
                return None;
            }
            v
        }
    };
    Some(v)
}

/// A float argument, or `ERR value is not a valid float`.
pub fn float(arg: &[u8]) -> Result<f64, CmdError> {
    parse_f64(arg).ok_or(CmdError::NotFloat)
}

/// ASCII case-insensitive comparison of an argument with an option name.
pub fn is(arg: &[u8], name: &str) -> bool {
    arg.eq_ignore_ascii_case(name.as_bytes())
}

/// Lossy text of an argument for error messages.
pub fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// A whole argument of at most 15 digits after an optional sign, as a
/// double: exact (below 2^53), so it is what `strtod` gives. Scores are
/// mostly such integers (`ZADD`'s in redis-benchmark, timestamps), and the
/// general path cost about 450 instructions per score.
fn short_integer(arg: &[u8]) -> Option<f64> {
    let (neg, digits) = match arg.split_first()? {
        (b'-', rest) => (true, rest),
        (b'+', rest) => (false, rest),
        _ => (false, arg),
    };
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(c - b'0');
    }
    // `-0` is negative zero, as strtod reads it.
    let v = n as f64;
    Some(if neg { -v } else { v })
}

/// C's `strtod` as glibc implements it, over the bytes up to the first NUL
/// (a C string): leading white space, a sign, `inf`/`infinity`/`nan[(...)]`,
/// hexadecimal (`0x1.8p3`) and decimal forms. Returns the value, the number
/// of bytes consumed (0 when nothing parsed) and whether `errno` would be
/// `ERANGE` (overflow to infinity, or underflow below the smallest normal
/// double; for hexadecimal text only underflow to zero is flagged).
pub fn strtod(arg: &[u8]) -> (f64, usize, bool) {
    if let Some(v) = short_integer(arg) {
        return (v, arg.len(), false);
    }
    let s = match arg.iter().position(|&c| c == 0) {
        Some(n) => arg.get(..n).unwrap_or_default(),
        None => arg,
    };
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let mut i = 0;
    while matches!(at(i), b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let neg = at(i) == b'-';
    if matches!(at(i), b'+' | b'-') {
        i += 1;
    }
    let sign = if neg { -1.0 } else { 1.0 };
    let rest = s.get(i..).unwrap_or_default();
    let starts = |w: &str| {
        rest.len() >= w.len()
            && rest
                .get(..w.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(w.as_bytes()))
    };
    if starts("infinity") {
        return (sign * f64::INFINITY, i + 8, false);
    }
    if starts("inf") {
        return (sign * f64::INFINITY, i + 3, false);
    }
    if starts("nan") {
        let mut j = i + 3;
        if at(j) == b'(' {
            let mut k = j + 1;
            while at(k).is_ascii_alphanumeric() || at(k) == b'_' {
                k += 1;
            }
            if at(k) == b')' {
                j = k + 1;
            }
        }
        return (f64::NAN, j, false);
    }
    if at(i) == b'0' && matches!(at(i + 1), b'x' | b'X') {
        if let Some((v, used, erange)) = hex_float(s, i + 2) {
            return (sign * v, used, erange);
        }
        // "0x" without hex digits: just the 0.
        return (sign * 0.0, i + 1, false);
    }
    // Decimal. Spans of the integer and fraction digits (no allocation:
    // this runs for every score of `ZADD`).
    let int_start = i;
    while at(i).is_ascii_digit() {
        i += 1;
    }
    let digits = s.get(int_start..i).unwrap_or_default();
    let mut frac: &[u8] = &[];
    if at(i) == b'.' {
        let mut j = i + 1;
        while at(j).is_ascii_digit() {
            j += 1;
        }
        frac = s.get(i + 1..j).unwrap_or_default();
        if !digits.is_empty() || !frac.is_empty() {
            i = j;
        }
    }
    if digits.is_empty() && frac.is_empty() {
        return (0.0, 0, false);
    }
    let nonzero = digits.iter().chain(frac).any(|&c| c != b'0');
    let mut exp: i64 = 0;
    if matches!(at(i), b'e' | b'E') {
        let mut j = i + 1;
        let eneg = at(j) == b'-';
        if matches!(at(j), b'+' | b'-') {
            j += 1;
        }
        if at(j).is_ascii_digit() {
            while at(j).is_ascii_digit() {
                exp = (exp * 10 + i64::from(at(j) - b'0')).min(1 << 40);
                j += 1;
            }
            if eneg {
                exp = -exp;
            }
            i = j;
        }
    }
    // "<digits>.<frac>e<exp>", which Rust's correctly rounded parser reads
    // as strtod would.
    let mut text = smallvec::SmallVec::<[u8; 64]>::new();
    text.extend_from_slice(if digits.is_empty() { b"0" } else { digits });
    text.push(b'.');
    text.extend_from_slice(if frac.is_empty() { b"0" } else { frac });
    if exp != 0 {
        text.push(b'e');
        text.extend_from_slice(itoa::Buffer::new().format(exp).as_bytes());
    }
    let v: f64 = std::str::from_utf8(&text)
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0.0);
    // glibc sets ERANGE on overflow and on underflow: a result below the
    // smallest normal double (zero, or a subnormal it could not represent
    // exactly; decimal text of fewer than ~750 significant digits never
    // denotes a subnormal exactly, so every nonzero subnormal counts).
    let erange = v.is_infinite() || (nonzero && v < f64::MIN_POSITIVE);
    (sign * v, i, erange)
}

/// The hexadecimal part of `strtod` after `0x` at `i`: `None` without a
/// hex digit.
fn hex_float(s: &[u8], mut i: usize) -> Option<(f64, usize, bool)> {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let hex = |c: u8| (c as char).to_digit(16).map(u64::from);
    let mut mant: u64 = 0;
    let mut exp2: i64 = 0;
    let mut any = false;
    let mut sticky = false;
    let mut push = |d: u64, frac: bool, mant: &mut u64, exp2: &mut i64| {
        if *mant >> 60 == 0 {
            *mant = *mant << 4 | d;
            if frac {
                *exp2 -= 4;
            }
        } else {
            sticky |= d != 0;
            if !frac {
                *exp2 += 4;
            }
        }
    };
    while let Some(d) = hex(at(i)) {
        push(d, false, &mut mant, &mut exp2);
        any = true;
        i += 1;
    }
    if at(i) == b'.' {
        let mut j = i + 1;
        let mut frac_any = false;
        while let Some(d) = hex(at(j)) {
            push(d, true, &mut mant, &mut exp2);
            frac_any = true;
            j += 1;
        }
        if any || frac_any {
            i = j;
            any = true;
        }
    }
    if !any {
        return None;
    }
    if matches!(at(i), b'p' | b'P') {
        let mut j = i + 1;
        let neg = at(j) == b'-';
        if matches!(at(j), b'+' | b'-') {
            j += 1;
        }
        if at(j).is_ascii_digit() {
            let mut e: i64 = 0;
            while at(j).is_ascii_digit() {
                e = (e * 10 + i64::from(at(j) - b'0')).min(1 << 40);
                j += 1;
            }
            exp2 += if neg { -e } else { e };
            i = j;
        }
    }
    if sticky {
        mant |= 1;
    }
    let mut v = mant as f64;
    let mut e = exp2;
    while e > 0 && v.is_finite() && v != 0.0 {
        let step = e.min(1000);
        v *= 2f64.powi(step as i32);
        e -= step;
    }
    while e < 0 && v != 0.0 {
        let step = (-e).min(1000);
        v /= 2f64.powi(step as i32);
        e += step;
    }
    let erange = v.is_infinite() || (v == 0.0 && mant != 0);
    Some((v, i, erange))
}

/// Redis's `string2d` (`getDoubleFromObject`): the whole argument is a
/// `strtod` number, no leading space, no NaN, no overflow or underflow to 0.
pub fn parse_score(arg: &[u8]) -> Option<f64> {
    if arg.is_empty()
        || matches!(
            arg.first(),
            Some(b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
        )
    {
        return None;
    }
    let (v, used, erange) = strtod(arg);
    if used != arg.len() || v.is_nan() || (erange && (v.is_infinite() || v == 0.0)) {
        return None;
    }
    Some(v)
}

/// Redis's `getPositiveLongFromObjectOrReply`/`getRangeLongFromObjectOrReply`:
/// an integer within `min..=max`, else `msg` (or Redis's default texts).
pub fn int_in_range(arg: &[u8], min: i64, max: i64, msg: Option<&str>) -> Result<i64, CmdError> {
    let v = match parse_i64(arg) {
        Some(v) => v,
        None => return Err(msg.map_or(CmdError::NotInteger, CmdError::msg)),
    };
    if v < min || v > max {
        return Err(match msg {
            Some(m) => CmdError::msg(m),
            None if min == 0 && max == i64::MAX => {
                CmdError::err("value is out of range, must be positive")
            }
            None => CmdError::err(format!(
                "value is out of range, value must between {min} and {max}"
            )),
        });
    }
    Ok(v)
}

/// The argument at `i`, or an empty slice past the end (the dispatcher has
/// already checked arity, so this only avoids a panicking index).
pub fn nth<'a>(args: &[&'a [u8]], i: usize) -> &'a [u8] {
    args.get(i).copied().unwrap_or_default()
}

/// The argument as C code sees it through `strlen`: cut at the first NUL.
pub fn c_str(arg: &[u8]) -> &[u8] {
    match arg.iter().position(|&c| c == 0) {
        Some(n) => arg.get(..n).unwrap_or_default(),
        None => arg,
    }
}

/// [`is`] on the argument cut at its first NUL, for options Redis compares
/// with `strcasecmp` (so `"NX\0junk"` counts as `NX`, as there).
pub fn is_c(arg: &[u8], name: &str) -> bool {
    is(c_str(arg), name)
}

/// A blocking command's timeout in seconds, parsed like Redis's `string2ld`
/// (the `long double` parser): what [`parse_f64`] accepts, infinities
/// included. A nonzero number too small for a `f64` (`1e-400`, which a
/// `long double` still holds) comes back as a tiny number of its sign, so
/// rounding it up to milliseconds still gives 1 ms (or 0 for a negative one).
pub fn parse_timeout_secs(arg: &[u8]) -> Option<f64> {
    if arg.len() >= 5 * 1024 {
        return None;
    }
    let v = parse_f64(arg)?;
    if v == 0.0 {
        let mantissa = arg
            .split(|&c| c == b'e' || c == b'E')
            .next()
            .unwrap_or_default();
        if mantissa.iter().any(|c| (b'1'..=b'9').contains(c)) {
            return Some(if arg.first() == Some(&b'-') {
                -1e-300
            } else {
                1e-300
            });
        }
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_like_redis() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b"01",
            b" 1",
            b"1 ",
            b"-0",
            b"1.0",
            b"abc",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn floats_like_redis() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b""), None);
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
    }

    #[test]
    fn scores_like_string2d() {
        assert_eq!(parse_score(b"1.5"), Some(1.5));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"+Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_score(b"0x10"), Some(16.0));
        assert_eq!(parse_score(b"0x1.8p1"), Some(3.0));
        assert_eq!(parse_score(b".5"), Some(0.5));
        assert_eq!(parse_score(b"5."), Some(5.0));
        assert_eq!(parse_score(b"1e-320").map(|v| v > 0.0), Some(true));
        for bad in [
            &b"nan"[..],
            b"abc",
            b"",
            b" 1",
            b"1 ",
            b"1e400",
            b"1e-400",
            b"1e",
            b"0x",
            b"--1",
            b"1\x002",
            b".",
        ] {
            assert_eq!(parse_score(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(strtod(b"1e"), (1.0, 1, false));
        assert_eq!(strtod(b""), (0.0, 0, false));
        assert_eq!(strtod(b" 2x"), (2.0, 2, false));
        assert!(strtod(b"1e400").2);
    }

    /// C's `strtod` on `text`: value, bytes consumed, `ERANGE`.
    fn libc_strtod(text: &[u8]) -> (f64, usize, bool) {
        let c = std::ffi::CString::new(text).expect("no NUL in the generated text");
        let mut end: *mut libc::c_char = std::ptr::null_mut();
        // SAFETY: `c` is a valid NUL-terminated string that outlives the
        // call, and `end` is a valid out pointer; errno is this thread's.
        unsafe {
            *libc::__errno_location() = 0;
            let v = libc::strtod(c.as_ptr(), &mut end);
            let used = end.offset_from(c.as_ptr()) as usize;
            (v, used, *libc::__errno_location() == libc::ERANGE)
        }
    }

    #[test]
    fn strtod_flags_underflow_like_libc() {
        for text in [
            &b"3000000000E-320"[..],
            b"1e-320",
            b"4.9e-324",
            b"2.2250738585072011e-308",
            b"2.2250738585072014e-308",
            b"1e-400",
            b"-1e-310",
            b"0e-400",
            b"1e308",
            b"1e309",
        ] {
            assert_reads_like_libc(text);
        }
    }

    /// Our `strtod` gives libc's value (bit for bit), length and `ERANGE`.
    fn assert_reads_like_libc(text: &[u8]) {
        let ours = strtod(text);
        let theirs = libc_strtod(text);
        let shown = String::from_utf8_lossy(text);
        assert_eq!(ours.0.to_bits(), theirs.0.to_bits(), "{shown}");
        assert_eq!((ours.1, ours.2), (theirs.1, theirs.2), "{shown}");
    }

    #[test]
    fn short_integers_read_as_libc_reads_them() {
        for text in [
            &b"0"[..],
            b"-0",
            b"+0",
            b"-",
            b"+",
            b"000000012345",
            b"-999999999999999",
            b"9999999999999999",
            b"12a",
            b"1 ",
        ] {
            assert_reads_like_libc(text);
        }
    }

    proptest::proptest! {
        /// Our `strtod` reads decimal text exactly as glibc's does.
        #[test]
        fn strtod_matches_libc(text in "[ +-]?[0-9]{0,25}(\\.[0-9]{0,25})?([eE][+-]?[0-9]{1,4})?[a-z]?") {
            let ours = strtod(text.as_bytes());
            let theirs = libc_strtod(text.as_bytes());
            proptest::prop_assert_eq!(ours.0.to_bits(), theirs.0.to_bits(), "{:?}", text);
            proptest::prop_assert_eq!(ours.1, theirs.1, "{:?}", text);
            proptest::prop_assert_eq!(ours.2, theirs.2, "{:?}", text);
        }
    }
}
