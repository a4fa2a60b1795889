//! Conformance scripts (`tests/conformance/*.redis`): parsing and the
//! normalizer that decides whether two replies match.
//!
//! The format is documented in `tests/conformance/README.md`; the dev tool
//! `tools/redis-diff.py` follows this module, which is the authority.

use crate::reply::{self, Reply};

/// How a line's replies are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Byte for byte.
    Exact,
    /// Aggregates compared after sorting their elements, at every level.
    Sorted,
    /// Only the reply's RESP type byte is compared.
    Shape,
    /// Run on both, compare nothing.
    Ignore,
    /// Integers (at any level) may differ by max(1, 1% of Redis's value);
    /// everything else exact.
    Approx,
    /// A known divergence from Redis (a server bug, reported): the replies
    /// must *differ*; once they match the runner fails, asking for the
    /// marker to be removed, so a fixed bug becomes a regression test.
    Xfail,
}

/// One step of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send a command, compare its replies.
    Command {
        /// How to compare.
        mode: Mode,
        /// The arguments.
        argv: Vec<Vec<u8>>,
    },
    /// `@sleep MS`
    Sleep(u64),
}

/// A step with its position in the file.
#[derive(Debug, Clone)]
pub struct Line {
    /// 1-based line number.
    pub no: usize,
    /// The line as written (without the newline).
    pub text: String,
    /// What to do.
    pub step: Step,
}

/// Splits a line into arguments like redis-cli: whitespace-separated,
/// `"double quotes"` with `\n \r \t \b \a \" \\ \xHH` escapes, `'single quotes'`
/// taken literally. Errors on an unterminated quote.
pub fn split_args(line: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    let n = line.len();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    loop {
        while i < n && matches!(line[i], b' ' | b'\t' | b'\r' | b'\n') {
            i += 1;
        }
        if i >= n {
            return Ok(out);
        }
        let mut cur = Vec::new();
        let mut quote: Option<u8> = None;
        while i < n {
            let c = line[i];
            match quote {
                Some(b'"') => {
                    if c == b'\\' && i + 3 < n && line[i + 1] == b'x' {
                        if let (Some(h), Some(l)) = (hex(line[i + 2]), hex(line[i + 3])) {
                            cur.push(h * 16 + l);
                            i += 4;
                            continue;
                        }
                    }
                    if c == b'\\' && i + 1 < n {
                        cur.push(match line[i + 1] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                        i += 2;
                        continue;
                    }
                    if c == b'"' {
                        quote = None;
                        i += 1;
                        break;
                    }
                    cur.push(c);
                    i += 1;
                }
                Some(_) => {
                    if c == b'\'' {
                        quote = None;
                        i += 1;
                        break;
                    }
                    cur.push(c);
                    i += 1;
                }
                None => {
                    if c == b' ' || c == b'\t' {
                        break;
                    }
                    if c == b'"' || c == b'\'' {
                        quote = Some(c);
                        i += 1;
                        continue;
                    }
                    cur.push(c);
                    i += 1;
                }
            }
        }
        if quote.is_some() {
            return Err("unterminated quote".into());
        }
        out.push(cur);
    }
}

/// Parses a whole script. Errors name the line.
pub fn parse_script(text: &[u8]) -> Result<Vec<Line>, String> {
    let mut lines = Vec::new();
    for (idx, raw) in text.split(|&c| c == b'\n').enumerate() {
        let no = idx + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let shown = String::from_utf8_lossy(raw).into_owned();
        let trimmed = shown.trim_start();
        if trimmed.trim().is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (mode, rest): (Mode, &[u8]) = if raw.first() == Some(&b'@') {
            let body = &raw[1..];
            let sp = body.iter().position(|&c| c == b' ').unwrap_or(body.len());
            let (name, rest) = (&body[..sp], body.get(sp + 1..).unwrap_or_default());
            match name {
                b"sleep" => {
                    let ms = std::str::from_utf8(rest)
                        .ok()
                        .and_then(|s| s.trim().parse::<u64>().ok())
                        .filter(|&ms| ms <= 10_000)
                        .ok_or_else(|| {
                            format!("line {no}: @sleep needs milliseconds (<= 10000)")
                        })?;
                    lines.push(Line {
                        no,
                        text: shown,
                        step: Step::Sleep(ms),
                    });
                    continue;
                }
                b"sorted" => (Mode::Sorted, rest),
                b"shape" => (Mode::Shape, rest),
                b"ignore" => (Mode::Ignore, rest),
                b"approx" => (Mode::Approx, rest),
                b"xfail" => (Mode::Xfail, rest),
                other => {
                    return Err(format!(
                        "line {no}: unknown marker @{}",
                        String::from_utf8_lossy(other)
                    ))
                }
            }
        } else {
            (Mode::Exact, raw)
        };
        let argv = split_args(rest).map_err(|e| format!("line {no}: {e}"))?;
        if argv.is_empty() {
            return Err(format!("line {no}: a marker without a command"));
        }
        lines.push(Line {
            no,
            text: shown,
            step: Step::Command { mode, argv },
        });
    }
    Ok(lines)
}

/// A reply with its aggregates' elements sorted, recursively (maps are
/// sorted by key/value pair). Returns the canonical bytes.
fn canonical_sorted(r: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    out.push(r.kind);
    out.extend_from_slice(&r.head);
    out.extend_from_slice(b"\r\n");
    match r.kind {
        b'*' | b'~' | b'>' => {
            let mut items: Vec<Vec<u8>> = r.items.iter().map(canonical_sorted).collect();
            items.sort();
            items.into_iter().for_each(|i| out.extend(i));
        }
        b'%' => {
            let mut pairs: Vec<Vec<u8>> = r
                .items
                .chunks(2)
                .map(|p| p.iter().flat_map(canonical_sorted).collect())
                .collect();
            pairs.sort();
            pairs.into_iter().for_each(|i| out.extend(i));
        }
        _ => {
            out.clear();
            out.extend_from_slice(&r.raw);
        }
    }
    out
}

fn approx_equal(a: &Reply, b: &Reply) -> bool {
    if a.kind != b.kind {
        return false;
    }
    if let (Some(x), Some(y)) = (a.integer(), b.integer()) {
        // `a` is Redis's reply: max(1, 1% of it), as tools/redis-diff.py.
        let tol = (x.unsigned_abs() / 100).max(1);
        return x.abs_diff(y) <= tol;
    }
    if a.items.is_empty() && b.items.is_empty() {
        return a.raw == b.raw;
    }
    a.head == b.head
        && a.items.len() == b.items.len()
        && a.items
            .iter()
            .zip(&b.items)
            .all(|(x, y)| approx_equal(x, y))
}

/// Whether `redis` and `amber` (one reply's raw bytes each) match under `mode`.
pub fn replies_match(mode: Mode, redis: &[u8], amber: &[u8]) -> bool {
    if mode == Mode::Ignore {
        return true;
    }
    if redis == amber {
        return mode != Mode::Xfail;
    }
    let (Ok(Some((r, _))), Ok(Some((a, _)))) = (reply::parse(redis), reply::parse(amber)) else {
        return false;
    };
    match mode {
        Mode::Exact => false,
        Mode::Ignore => true,
        Mode::Shape => r.kind == a.kind,
        Mode::Sorted => canonical_sorted(&r) == canonical_sorted(&a),
        Mode::Approx => approx_equal(&r, &a),
        Mode::Xfail => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting() {
        let s = |l: &str| split_args(l.as_bytes()).unwrap();
        assert_eq!(
            s("SET k v"),
            vec![b"SET".to_vec(), b"k".to_vec(), b"v".to_vec()]
        );
        assert_eq!(
            s(r#"SET "a b" 'c d'"#)[1..],
            [b"a b".to_vec(), b"c d".to_vec()]
        );
        assert_eq!(s(r#"X "\x41\x00\n\"\\""#)[1], b"A\x00\n\"\\".to_vec());
        assert_eq!(s(r#"X '\x41'"#)[1], br"\x41".to_vec());
        assert_eq!(s(r#"X """#)[1], b"".to_vec());
        assert!(split_args(br#"X "abc"#).is_err());
    }

    #[test]
    fn script_markers() {
        let text = b"# comment\n\nSET a 1\n@sorted KEYS *\n@sleep 5\n@approx TTL a\r\n";
        let lines = parse_script(text).unwrap();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0].no, 3);
        assert!(matches!(
            lines[1].step,
            Step::Command {
                mode: Mode::Sorted,
                ..
            }
        ));
        assert_eq!(lines[2].step, Step::Sleep(5));
        assert!(
            matches!(lines[3].step, Step::Command { mode: Mode::Approx, ref argv } if argv.len() == 2)
        );
        assert!(parse_script(b"@bogus PING").is_err());
        assert!(parse_script(b"@sorted").is_err());
    }

    #[test]
    fn normalizer() {
        assert!(replies_match(Mode::Exact, b"+OK\r\n", b"+OK\r\n"));
        assert!(!replies_match(Mode::Exact, b":1\r\n", b":2\r\n"));
        assert!(replies_match(Mode::Approx, b":100\r\n", b":99\r\n"));
        assert!(!replies_match(Mode::Approx, b":100\r\n", b":98\r\n"));
        assert!(replies_match(Mode::Approx, b":100000\r\n", b":99001\r\n"));
        assert!(!replies_match(Mode::Approx, b":100000\r\n", b":98999\r\n"));
        assert!(!replies_match(Mode::Approx, b":1\r\n", b"$1\r\n1\r\n"));
        let a = b"*2\r\n$1\r\na\r\n$1\r\nb\r\n";
        let b = b"*2\r\n$1\r\nb\r\n$1\r\na\r\n";
        assert!(replies_match(Mode::Sorted, a, b));
        assert!(!replies_match(Mode::Exact, a, b));
        assert!(!replies_match(
            Mode::Sorted,
            a,
            b"*2\r\n$1\r\na\r\n$1\r\na\r\n"
        ));
        // Nested: SCAN's [cursor, [keys]].
        let s1 = b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\nx\r\n$1\r\ny\r\n";
        let s2 = b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\ny\r\n$1\r\nx\r\n";
        assert!(replies_match(Mode::Sorted, s1, s2));
        assert!(replies_match(Mode::Shape, b"$3\r\nabc\r\n", b"$1\r\nx\r\n"));
        assert!(!replies_match(Mode::Shape, b"$3\r\nabc\r\n", b"-ERR\r\n"));
        assert!(replies_match(Mode::Ignore, b"+a\r\n", b":1\r\n"));
        assert!(!replies_match(Mode::Xfail, b"+a\r\n", b"+a\r\n"));
    }
}
