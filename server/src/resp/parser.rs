//! The request parser: RESP multibulk and inline commands, resumable across reads.
//!
//! The parser works on the unconsumed part of the connection's read buffer,
//! which only grows at its end until a whole frame has been parsed. While a
//! frame is incomplete the parser remembers how far it got (the argument
//! spans found so far and the position of the next header), so a 10 MB
//! multibulk arriving in 64 KiB pieces is scanned once, not once per read.
//! There is no recursion: requests are flat arrays of bulk strings.
//!
//! Errors and limits follow Redis 7.0's `processMultibulkBuffer` and
//! `processInlineBuffer` exactly (texts, `proto-max-bulk-len`, the 64 KiB
//! inline limit, the unauthenticated limits).

use std::ops::Range;

use smallvec::SmallVec;

/// Longest inline request or header line Redis accepts (`PROTO_INLINE_MAX_SIZE`).
pub const INLINE_MAX: usize = 64 * 1024;

/// A protocol violation: the client gets `-ERR Protocol error: ...` and the
/// connection is closed after the reply, as Redis does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl ProtocolError {
    fn new(text: &str) -> Self {
        ProtocolError(format!("Protocol error: {text}"))
    }
}

/// A complete request found at the start of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A multibulk request: argument spans relative to the frame start, and
    /// the frame's length in bytes.
    Multibulk {
        /// Total bytes the frame occupies.
        len: usize,
    },
    /// An inline request; its arguments are in [`RequestParser::inline_args`].
    Inline {
        /// Total bytes the frame occupies.
        len: usize,
    },
    /// Nothing to execute (an empty line or `*0`); skip `len` bytes.
    Empty {
        /// Total bytes to skip.
        len: usize,
    },
}

/// Resumable parser state for one connection.
#[derive(Debug)]
pub struct RequestParser {
    /// Argument spans of the current (possibly partial) multibulk frame.
    spans: Vec<Range<usize>>,
    /// Arguments of the last inline frame (unescaped, so owned).
    inline: Vec<Vec<u8>>,
    /// Arguments still expected by the current multibulk (0: at frame start).
    remaining: usize,
    /// Position of the next header or bulk within the frame.
    pos: usize,
    /// Length of the bulk whose header was read but whose data is incomplete.
    pending_bulk: Option<usize>,
    /// How far the buffer was already searched for a newline (inline or header).
    scanned: usize,
    /// Bytes the caller should make room for (a large bulk being received).
    want: usize,
    /// `proto-max-bulk-len`.
    pub max_bulk_len: usize,
}

impl Default for RequestParser {
    fn default() -> Self {
        Self::new(512 * 1024 * 1024)
    }
}

/// Redis's `string2ll` on a header's digits: optional `-`, no `+`, no leading
/// zeros, no spaces, fits in i64.
fn parse_i64(digits: &[u8]) -> Option<i64> {
    let (neg, rest) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    match rest {
        [] => return None,
        [b'0'] => return if neg { None } else { Some(0) },
        [b'0', ..] => return None,
        _ => {}
    }
    let mut v: i64 = 0;
    for &c in rest {
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

/// A header's number of one or two digits (no leading zero) at `at`,
/// followed by `\r` and one more byte, and the position of that `\r`:
/// what almost every header of a real request is (`*3`, `$5`). `None`
/// sends the header through the general path, which also reports errors.
#[inline]
fn small_header(buf: &[u8], at: usize) -> Option<(usize, usize)> {
    let b = buf.get(at..at + 4)?;
    match *b {
        [d @ b'0'..=b'9', b'\r', _, _] => Some(((d - b'0') as usize, at + 1)),
        [t @ b'1'..=b'9', u @ b'0'..=b'9', b'\r', _] => {
            Some((((t - b'0') * 10 + (u - b'0')) as usize, at + 2))
        }
        _ => None,
    }
}

fn find(buf: &[u8], from: usize, byte: u8) -> Option<usize> {
    buf.get(from..)?
        .iter()
        .position(|&c| c == byte)
        .map(|i| i + from)
}

impl RequestParser {
    /// A parser with the given `proto-max-bulk-len`.
    pub fn new(max_bulk_len: usize) -> Self {
        RequestParser {
            spans: Vec::new(),
            inline: Vec::new(),
            remaining: 0,
            pos: 0,
            pending_bulk: None,
            scanned: 0,
            want: 0,
            max_bulk_len,
        }
    }

    /// Argument spans of the last complete multibulk frame (relative to the
    /// frame start).
    pub fn spans(&self) -> &[Range<usize>] {
        &self.spans
    }

    /// Arguments of the last complete inline frame.
    pub fn inline_args(&self) -> &[Vec<u8>] {
        &self.inline
    }

    /// The arguments of `frame`, just returned by [`RequestParser::parse`]
    /// for the bytes `pending`, and the bytes it takes. An empty frame has
    /// no arguments (skip its bytes).
    pub fn frame_args<'a>(
        &'a self,
        pending: &'a [u8],
        frame: &Frame,
    ) -> (SmallVec<[&'a [u8]; 8]>, usize) {
        let mut args = SmallVec::new();
        let len = self.fill_args(pending, frame, &mut args);
        (args, len)
    }

    /// [`RequestParser::frame_args`] into `args` (empty), returning the
    /// bytes the frame takes: the connection's loop keeps `args` in place
    /// instead of receiving a 136-byte vector by value each request.
    #[inline]
    pub fn fill_args<'a>(
        &'a self,
        pending: &'a [u8],
        frame: &Frame,
        args: &mut SmallVec<[&'a [u8]; 8]>,
    ) -> usize {
        match *frame {
            Frame::Multibulk { len } => {
                let bytes = pending.get(..len).unwrap_or_default();
                // Pushes, not `extend`: SmallVec's `extend` took about 100
                // more instructions for a three-argument request (callgrind).
                for r in &self.spans {
                    args.push(bytes.get(r.clone()).unwrap_or_default());
                }
                len
            }
            Frame::Inline { len } => {
                for a in &self.inline {
                    args.push(a.as_slice());
                }
                len
            }
            Frame::Empty { len } => len,
        }
    }

    /// While a large bulk is incomplete: the total frame bytes needed, so the
    /// caller can reserve them at once instead of growing the buffer by doubling.
    pub fn bytes_wanted(&self) -> usize {
        self.want
    }

    /// True when a frame has been started but not finished.
    pub fn in_progress(&self) -> bool {
        self.remaining > 0 || self.pos > 0
    }

    /// Parses the next frame at the start of `buf` (the unconsumed bytes).
    ///
    /// `authenticated` is false while `requirepass` is set and the client has
    /// not authenticated: Redis then limits requests to 10 arguments of 16 KiB.
    /// Returns `Ok(None)` when more bytes are needed; the call must then be
    /// repeated with the same bytes followed by new ones.
    pub fn parse(
        &mut self,
        buf: &[u8],
        authenticated: bool,
    ) -> Result<Option<Frame>, ProtocolError> {
        if buf.is_empty() {
            return Ok(None);
        }
        if !self.in_progress() && buf.first() != Some(&b'*') {
            return self.parse_inline(buf);
        }
        self.parse_multibulk(buf, authenticated)
    }

    fn reset(&mut self) {
        self.remaining = 0;
        self.pos = 0;
        self.pending_bulk = None;
        self.scanned = 0;
        self.want = 0;
    }

    /// Finds the `\r` ending the header starting at `self.pos`, remembering how
    /// far it searched. `Ok(None)`: need more bytes.
    fn header_end(&mut self, buf: &[u8], too_big: &str) -> Result<Option<usize>, ProtocolError> {
        let from = self.scanned.max(self.pos);
        match find(buf, from, b'\r') {
            None => {
                if buf.len() - self.pos > INLINE_MAX {
                    return Err(ProtocolError::new(too_big));
                }
                self.scanned = buf.len();
                Ok(None)
            }
            // Redis needs the byte after `\r` to be present (it does not check it is `\n`).
            Some(cr) if cr + 1 >= buf.len() => {
                self.scanned = cr;
                Ok(None)
            }
            Some(cr) => {
                self.scanned = 0;
                Ok(Some(cr))
            }
        }
    }

    fn parse_multibulk(
        &mut self,
        buf: &[u8],
        authenticated: bool,
    ) -> Result<Option<Frame>, ProtocolError> {
        if !self.in_progress() {
            let (count, cr) = match small_header(buf, 1) {
                Some((n, cr)) => {
                    self.scanned = 0;
                    (n as i64, cr)
                }
                None => {
                    let Some(cr) = self.header_end(buf, "too big mbulk count string")? else {
                        return Ok(None);
                    };
                    match buf.get(1..cr).and_then(parse_i64) {
                        Some(n) if n <= i32::MAX as i64 => (n, cr),
                        _ => return Err(ProtocolError::new("invalid multibulk length")),
                    }
                }
            };
            if count > 10 && !authenticated {
                return Err(ProtocolError::new("unauthenticated multibulk length"));
            }
            if count <= 0 {
                self.reset();
                return Ok(Some(Frame::Empty { len: cr + 2 }));
            }
            self.spans.clear();
            self.spans.reserve((count as usize).min(1024));
            self.remaining = count as usize;
            self.pos = cr + 2;
        }
        while self.remaining > 0 {
            let len = match self.pending_bulk {
                Some(len) => len,
                None => {
                    let fast = if buf.get(self.pos) == Some(&b'$') {
                        small_header(buf, self.pos + 1).filter(|&(n, _)| n <= self.max_bulk_len)
                    } else {
                        None
                    };
                    match fast {
                        Some((len, cr)) => {
                            self.pos = cr + 2;
                            self.scanned = 0;
                            self.pending_bulk = Some(len);
                            len
                        }
                        None => match self.bulk_header(buf, authenticated)? {
                            Some(len) => len,
                            None => return Ok(None),
                        },
                    }
                }
            };
            // Redis skips the two bytes after the data without checking them.
            let end = self.pos + len;
            if buf.len() < end + 2 {
                self.want = end + 2;
                return Ok(None);
            }
            self.spans.push(self.pos..end);
            self.pos = end + 2;
            self.pending_bulk = None;
            self.remaining -= 1;
        }
        let len = self.pos;
        self.reset();
        Ok(Some(Frame::Multibulk { len }))
    }

    /// A bulk header by the general path: its length (also kept as the
    /// pending bulk), `None` when more bytes are needed.
    fn bulk_header(
        &mut self,
        buf: &[u8],
        authenticated: bool,
    ) -> Result<Option<usize>, ProtocolError> {
        let Some(cr) = self.header_end(buf, "too big bulk count string")? else {
            return Ok(None);
        };
        let first = buf.get(self.pos).copied().unwrap_or(b'?');
        if first != b'$' {
            return Err(ProtocolError(format!(
                "Protocol error: expected '$', got '{}'",
                first as char
            )));
        }
        let len = match buf.get(self.pos + 1..cr).and_then(parse_i64) {
            Some(n) if n >= 0 && (n as u64) <= self.max_bulk_len as u64 => n as usize,
            _ => return Err(ProtocolError::new("invalid bulk length")),
        };
        if len > 16384 && !authenticated {
            return Err(ProtocolError::new("unauthenticated bulk length"));
        }
        self.pos = cr + 2;
        self.pending_bulk = Some(len);
        Ok(Some(len))
    }

    fn parse_inline(&mut self, buf: &[u8]) -> Result<Option<Frame>, ProtocolError> {
        let Some(nl) = find(buf, self.scanned, b'\n') else {
            if buf.len() > INLINE_MAX {
                return Err(ProtocolError::new("too big inline request"));
            }
            self.scanned = buf.len();
            return Ok(None);
        };
        self.scanned = 0;
        let mut line_end = nl;
        if nl > 0 && buf.get(nl - 1) == Some(&b'\r') {
            line_end -= 1;
        }
        let line = buf.get(..line_end).unwrap_or_default();
        self.inline.clear();
        split_args(line, &mut self.inline)
            .ok_or_else(|| ProtocolError::new("unbalanced quotes in request"))?;
        if self.inline.is_empty() {
            return Ok(Some(Frame::Empty { len: nl + 1 }));
        }
        Ok(Some(Frame::Inline { len: nl + 1 }))
    }
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Redis's `sdssplitargs`: splits an inline line into arguments, honouring
/// "double quotes" (with \n \r \t \b \a \xHH escapes) and 'single quotes'.
/// Returns `None` on unbalanced quotes (or a closing quote not followed by a
/// space), like Redis.
pub fn split_args(line: &[u8], out: &mut Vec<Vec<u8>>) -> Option<()> {
    let is_space = |c: u8| matches!(c, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c);
    let mut i = 0;
    loop {
        while line.get(i).is_some_and(|&c| is_space(c)) {
            i += 1;
        }
        if i >= line.len() {
            return Some(());
        }
        let mut cur = Vec::new();
        let (mut inq, mut insq) = (false, false);
        loop {
            let c = line.get(i).copied();
            if inq {
                match c {
                    None => return None,
                    Some(b'\\')
                        if line.get(i + 1) == Some(&b'x')
                            && line.get(i + 2).copied().and_then(hex_val).is_some()
                            && line.get(i + 3).copied().and_then(hex_val).is_some() =>
                    {
                        let hi = line.get(i + 2).copied().and_then(hex_val).unwrap_or(0);
                        let lo = line.get(i + 3).copied().and_then(hex_val).unwrap_or(0);
                        cur.push(hi * 16 + lo);
                        i += 3;
                    }
                    Some(b'\\') if i + 1 < line.len() => {
                        i += 1;
                        cur.push(match line.get(i).copied().unwrap_or(b'\\') {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                    }
                    Some(b'"') => {
                        // A closing quote must be followed by a space or the end.
                        if line.get(i + 1).is_some_and(|&n| !is_space(n)) {
                            return None;
                        }
                        inq = false;
                        i += 1;
                        break;
                    }
                    Some(ch) => cur.push(ch),
                }
            } else if insq {
                match c {
                    None => return None,
                    Some(b'\\') if line.get(i + 1) == Some(&b'\'') => {
                        i += 1;
                        cur.push(b'\'');
                    }
                    Some(b'\'') => {
                        if line.get(i + 1).is_some_and(|&n| !is_space(n)) {
                            return None;
                        }
                        insq = false;
                        i += 1;
                        break;
                    }
                    Some(ch) => cur.push(ch),
                }
            } else {
                match c {
                    None => break,
                    Some(ch) if is_space(ch) => break,
                    Some(b'"') => inq = true,
                    Some(b'\'') => insq = true,
                    Some(ch) => cur.push(ch),
                }
            }
            i += 1;
        }
        debug_assert!(!inq && !insq);
        out.push(cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(p: &RequestParser, buf: &[u8]) -> Vec<Vec<u8>> {
        p.spans().iter().map(|r| buf[r.clone()].to_vec()).collect()
    }

    #[test]
    fn multibulk_whole_and_split() {
        let req = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        let mut p = RequestParser::default();
        assert_eq!(
            p.parse(req, true),
            Ok(Some(Frame::Multibulk { len: req.len() }))
        );
        assert_eq!(
            args(&p, req),
            vec![b"SET".to_vec(), b"k".to_vec(), b"hello".to_vec()]
        );
        // Every split point: feed a growing prefix.
        for cut in 1..req.len() {
            let mut p = RequestParser::default();
            assert_eq!(p.parse(&req[..cut], true), Ok(None), "cut {cut}");
            assert_eq!(
                p.parse(req, true),
                Ok(Some(Frame::Multibulk { len: req.len() }))
            );
            assert_eq!(args(&p, req).len(), 3);
        }
    }

    #[test]
    fn inline_and_quotes() {
        let mut p = RequestParser::default();
        let line = b"set \"a b\" 'c d' \"\\x41\\n\"\r\n";
        assert_eq!(
            p.parse(line, true),
            Ok(Some(Frame::Inline { len: line.len() }))
        );
        assert_eq!(
            p.inline_args(),
            &[
                b"set".to_vec(),
                b"a b".to_vec(),
                b"c d".to_vec(),
                b"A\n".to_vec()
            ]
        );
        assert_eq!(p.parse(b"\r\n", true), Ok(Some(Frame::Empty { len: 2 })));
        assert!(p.parse(b"set \"a\r\n", true).is_err());
        assert!(p.parse(b"set \"a\"b\r\n", true).is_err());
    }

    #[test]
    fn errors_match_redis() {
        let err = |b: &[u8]| RequestParser::default().parse(b, true).unwrap_err().0;
        assert_eq!(err(b"*x\r\n"), "Protocol error: invalid multibulk length");
        assert_eq!(
            err(b"*1\r\n+a\r\n"),
            "Protocol error: expected '$', got '+'"
        );
        assert_eq!(err(b"*1\r\n$-1\r\n"), "Protocol error: invalid bulk length");
        assert_eq!(err(b"*1\r\n$01\r\n"), "Protocol error: invalid bulk length");
        assert_eq!(
            err(b"*3000000000\r\n"),
            "Protocol error: invalid multibulk length"
        );
        let mut p = RequestParser::new(10);
        assert_eq!(
            p.parse(b"*1\r\n$11\r\n", true).unwrap_err().0,
            "Protocol error: invalid bulk length"
        );
        let big = vec![b'a'; INLINE_MAX + 1];
        assert_eq!(err(&big), "Protocol error: too big inline request");
        let mut big = b"*".to_vec();
        big.extend(vec![b'1'; INLINE_MAX + 1]);
        assert_eq!(err(&big), "Protocol error: too big mbulk count string");
        let mut p = RequestParser::default();
        assert_eq!(
            p.parse(b"*11\r\n", false).unwrap_err().0,
            "Protocol error: unauthenticated multibulk length"
        );
    }

    #[test]
    fn empty_multibulk_is_skipped() {
        let mut p = RequestParser::default();
        assert_eq!(p.parse(b"*0\r\n", true), Ok(Some(Frame::Empty { len: 4 })));
        assert_eq!(p.parse(b"*-1\r\n", true), Ok(Some(Frame::Empty { len: 5 })));
    }

    #[test]
    fn large_bulk_asks_for_room_once() {
        let mut p = RequestParser::default();
        let head = b"*1\r\n$1000000\r\n";
        assert_eq!(p.parse(head, true), Ok(None));
        assert_eq!(p.bytes_wanted(), head.len() + 1_000_002);
    }
}
