//! Stream ID arguments, parsed as Redis 7.0's `streamGenericParseIDOrReply`
//! and `streamParseIntervalIDOrReply` parse them, with their error texts.

use amber_storage::types::stream::StreamId;

use crate::cmd::args::c_str;
use crate::cmd::error::CmdError;

/// `ERR Invalid stream ID specified as stream command argument`.
pub fn invalid() -> CmdError {
    CmdError::err("Invalid stream ID specified as stream command argument")
}

/// An ID as `XADD` takes it: `ms`, `ms-seq` or `ms-*` (the sequence to be
/// generated: `None`). `-` and `+` are refused.
pub fn parse_for_add(arg: &[u8]) -> Result<(u64, Option<u64>), CmdError> {
    parse_generic(arg, 0, true, true)
}

/// A strict ID (`-` and `+` refused); a missing sequence is `missing_seq`.
pub fn parse_strict(arg: &[u8], missing_seq: u64) -> Result<StreamId, CmdError> {
    let (ms, seq) = parse_generic(arg, missing_seq, true, false)?;
    Ok(StreamId::new(ms, seq.unwrap_or(missing_seq)))
}

/// An ID where `-` is `0-0` and `+` the largest ID.
pub fn parse(arg: &[u8], missing_seq: u64) -> Result<StreamId, CmdError> {
    let (ms, seq) = parse_generic(arg, missing_seq, false, false)?;
    Ok(StreamId::new(ms, seq.unwrap_or(missing_seq)))
}

/// A range bound of `XRANGE`/`XPENDING`: `(id` excludes the id. Returns the
/// ID and whether it is excluded.
pub fn parse_interval(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), CmdError> {
    match arg {
        [b'(', rest @ ..] if !rest.is_empty() => Ok((parse_strict(rest, missing_seq)?, true)),
        _ => Ok((parse(arg, missing_seq)?, false)),
    }
}

fn parse_generic(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    seq_may_be_auto: bool,
) -> Result<(u64, Option<u64>), CmdError> {
    if arg.len() > 127 {
        return Err(invalid());
    }
    let buf = c_str(arg);
    match buf {
        b"-" | b"+" if strict => return Err(invalid()),
        b"-" => return Ok((0, Some(0))),
        b"+" => return Ok((u64::MAX, Some(u64::MAX))),
        _ => {}
    }
    let (ms, seq) = match buf.iter().position(|&c| c == b'-') {
        Some(dash) => (
            buf.get(..dash).unwrap_or_default(),
            Some(buf.get(dash + 1..).unwrap_or_default()),
        ),
        None => (buf, None),
    };
    let ms = string2ull(ms).ok_or_else(invalid)?;
    let seq = match seq {
        Some(b"*") if seq_may_be_auto => None,
        Some(s) => Some(string2ull(s).ok_or_else(invalid)?),
        None => Some(missing_seq),
    };
    Ok((ms, seq))
}

/// Redis's `string2ull`: a canonical `long long` that is not negative, or
/// else what `strtoull` accepts in full (leading spaces, a sign, leading
/// zeros; a `-` wraps around as in C, so `-0` is 0, while a canonical
/// negative number such as `-1` is refused before `strtoull` sees it).
fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(v) = crate::cmd::args::parse_i64(s) {
        return u64::try_from(v).ok();
    }
    let mut i = s
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?;
    let mut neg = false;
    match s.get(i) {
        Some(b'+') => i += 1,
        Some(b'-') => {
            neg = true;
            i += 1;
        }
        _ => {}
    }
    let digits = s.get(i..)?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// The ID as Redis writes it (`ms-seq`).
pub fn format(id: StreamId) -> String {
    id.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_like_redis() {
        assert_eq!(parse(b"-", 0), Ok(StreamId::MIN));
        assert_eq!(parse(b"+", 0), Ok(StreamId::MAX));
        assert_eq!(parse(b"5", 7), Ok(StreamId::new(5, 7)));
        assert_eq!(parse(b"5-3", 7), Ok(StreamId::new(5, 3)));
        assert_eq!(parse(b"+5-03", 0), Ok(StreamId::new(5, 3)));
        // A negative canonical number is refused; "-0" goes to strtoull.
        assert!(parse(b"1--1", 0).is_err());
        assert_eq!(parse(b"7--0", 0), Ok(StreamId::new(7, 0)));
        assert_eq!(parse(b"6- 1", 0), Ok(StreamId::new(6, 1)));
        assert!(parse(b"", 0).is_err());
        assert!(parse(b"1-", 0).is_err());
        assert!(parse(b"18446744073709551616", 0).is_err());
        assert!(parse_strict(b"-", 0).is_err());
        assert_eq!(parse_for_add(b"5-*"), Ok((5, None)));
        assert!(parse(b"5-*", 0).is_err());
        assert_eq!(parse_interval(b"(5", 0), Ok((StreamId::new(5, 0), true)));
        assert!(parse_interval(b"(-", 0).is_err());
        assert_eq!(parse_interval(b"(", 0).map(|x| x.1), Err(invalid()));
    }
}
