//! Parsing of command arguments with Redis's rules and error texts.

use super::error::CmdError;

/// Parses a signed 64-bit integer the way Redis's `string2ll` does (no
/// spaces, no `+`, no leading zeros).
pub fn parse_i64(arg: &[u8]) -> Option<i64> {
    if arg.is_empty() || arg.len() > 20 {
        return None;
    }
    let (neg, digits) = match arg.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, arg),
    };
    match digits {
        [] => return None,
        [b'0'] => return (!neg).then_some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        let d = (c - b'0') as i64;
        v = if neg {
            v.checked_mul(10)?.checked_sub(d)?
        } else {
            v.checked_mul(10)?.checked_add(d)?
        };
    }
    Some(v)
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
}
