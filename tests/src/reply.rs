//! RESP replies as the tests see them: raw bytes, split into frames.
//!
//! [`parse`] finds where one reply ends (RESP2 and RESP3, every type) and
//! builds a small tree so the conformance normalizer can sort or compare
//! approximately. Servers' replies are shallow, so the recursion is bounded
//! by [`MAX_DEPTH`] rather than made iterative.

/// Deepest nesting accepted from a server.
pub const MAX_DEPTH: usize = 64;

/// One decoded reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The type byte (`+`, `-`, `:`, `$`, `*`, `%`, `~`, `_`, ...).
    pub kind: u8,
    /// The header line after the type byte (for `$` and `=`: the length).
    pub head: Vec<u8>,
    /// The payload of `$`, `=` and `!` replies (None when null).
    pub data: Option<Vec<u8>>,
    /// Elements of aggregates (a map's keys and values alternate).
    pub items: Vec<Reply>,
    /// The exact bytes of this reply.
    pub raw: Vec<u8>,
}

impl Reply {
    /// Is this an error reply (`-` or `!`)?
    pub fn is_error(&self) -> bool {
        self.kind == b'-' || self.kind == b'!'
    }

    /// The integer of a `:` reply.
    pub fn integer(&self) -> Option<i64> {
        (self.kind == b':')
            .then(|| std::str::from_utf8(&self.head).ok()?.parse().ok())
            .flatten()
    }

    /// Text of a simple string, error, or bulk string (lossy).
    pub fn text(&self) -> String {
        match &self.data {
            Some(d) => String::from_utf8_lossy(d).into_owned(),
            None => String::from_utf8_lossy(&self.head).into_owned(),
        }
    }
}

fn line(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let rel = buf.get(from..)?.windows(2).position(|w| w == b"\r\n")?;
    Some((from + rel, from + rel + 2))
}

fn count(head: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(head)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad length in reply header {:?}", show(head)))
}

/// Parses one reply at the start of `buf`. `Ok(None)`: more bytes needed.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    parse_at(buf, 0, 0)
}

fn parse_at(buf: &[u8], start: usize, depth: usize) -> Result<Option<(Reply, usize)>, String> {
    if depth > MAX_DEPTH {
        return Err("reply nested too deeply".into());
    }
    let Some(&kind) = buf.get(start) else {
        return Ok(None);
    };
    let Some((eol, mut next)) = line(buf, start + 1) else {
        return Ok(None);
    };
    let head = buf[start + 1..eol].to_vec();
    let mut reply = Reply {
        kind,
        head,
        data: None,
        items: Vec::new(),
        raw: Vec::new(),
    };
    match kind {
        b'+' | b'-' | b':' | b',' | b'#' | b'_' | b'(' => {}
        b'$' | b'=' | b'!' => {
            let n = count(&reply.head)?;
            if n >= 0 {
                let n = n as usize;
                if buf.len() < next + n + 2 {
                    return Ok(None);
                }
                if &buf[next + n..next + n + 2] != b"\r\n" {
                    return Err("bulk reply not terminated by CRLF".into());
                }
                reply.data = Some(buf[next..next + n].to_vec());
                next += n + 2;
            }
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = count(&reply.head)?;
            let elems = if kind == b'%' || kind == b'|' {
                n * 2
            } else {
                n
            };
            for _ in 0..elems.max(0) {
                match parse_at(buf, next, depth + 1)? {
                    Some((item, end)) => {
                        reply.items.push(item);
                        next = end;
                    }
                    None => return Ok(None),
                }
            }
            if kind == b'|' {
                // An attribute precedes the reply it describes.
                match parse_at(buf, next, depth + 1)? {
                    Some((item, end)) => {
                        reply.items.push(item);
                        next = end;
                    }
                    None => return Ok(None),
                }
            }
        }
        other => {
            return Err(format!(
                "unknown reply type byte {:?} in {:?}",
                other as char,
                show(&buf[start..buf.len().min(start + 64)])
            ))
        }
    }
    reply.raw = buf[start..next].to_vec();
    Ok(Some((reply, next)))
}

/// Bytes as an escaped, readable string (like Python's bytes repr).
pub fn show(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    for &c in bytes {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

/// Shortens a long shown reply for messages.
pub fn show_short(bytes: &[u8], max: usize) -> String {
    if bytes.len() <= max {
        show(bytes)
    } else {
        format!("{}... ({} bytes)", show(&bytes[..max]), bytes.len())
    }
}

/// Encodes a request as a RESP multibulk.
pub fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_boundaries() {
        let buf = b"*2\r\n$3\r\nfoo\r\n:12\r\n+OK\r\n";
        let (r, n) = parse(buf).unwrap().unwrap();
        assert_eq!(r.kind, b'*');
        assert_eq!(r.items.len(), 2);
        assert_eq!(r.items[0].data.as_deref(), Some(&b"foo"[..]));
        assert_eq!(r.items[1].integer(), Some(12));
        assert_eq!(&buf[n..], b"+OK\r\n");
        for cut in 0..n {
            assert_eq!(parse(&buf[..cut]).unwrap(), None, "cut {cut}");
        }
        let (r, n) = parse(b"%1\r\n+a\r\n_\r\n").unwrap().unwrap();
        assert_eq!((r.items.len(), n), (2, 11));
        let (r, _) = parse(b"$-1\r\n").unwrap().unwrap();
        assert_eq!(r.data, None);
        let (r, _) = parse(b"*-1\r\n").unwrap().unwrap();
        assert!(r.items.is_empty());
        assert!(parse(b"?x\r\n").is_err());
        assert!(parse(b"$3\r\nabcde").is_err());
    }

    /// The scanner agrees with redis-protocol on where frames end.
    #[test]
    fn agrees_with_redis_protocol() {
        let samples: &[&[u8]] = &[
            b"+OK\r\n",
            b"-ERR x\r\n",
            b":-5\r\n",
            b"$0\r\n\r\n",
            b"*3\r\n$1\r\na\r\n*0\r\n$0\r\n\r\n",
            b"%2\r\n+a\r\n:1\r\n+b\r\n,1.5\r\n",
            b"~2\r\n+a\r\n+b\r\n",
            b"#t\r\n",
            b"=8\r\ntxt:abcd\r\n",
            b"_\r\n",
        ];
        for s in samples {
            let ours = parse(s).unwrap().unwrap().1;
            let theirs = redis_protocol::resp3::decode::complete::decode(s)
                .unwrap()
                .unwrap()
                .1;
            assert_eq!(ours, theirs, "{}", show(s));
        }
        // RESP2-only nulls (RESP3 has `_`).
        for s in [&b"$-1\r\n"[..], b"*-1\r\n", b"*2\r\n$-1\r\n*-1\r\n"] {
            let ours = parse(s).unwrap().unwrap().1;
            let theirs = redis_protocol::resp2::decode::decode(s).unwrap().unwrap().1;
            assert_eq!(ours, theirs, "{}", show(s));
        }
    }
}
