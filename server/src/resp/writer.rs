//! The reply writer: appends RESP2 or RESP3 replies to the connection's
//! output buffer, which leaves in one write per pipelined batch.
//!
//! Replies that differ between protocol versions (null, map, set, double,
//! boolean, push) are written according to [`Protocol`], so commands never
//! branch on the client's protocol themselves.

/// The protocol version a client chose with `HELLO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// RESP2, the default.
    #[default]
    Resp2,
    /// RESP3.
    Resp3,
}

/// An output buffer with RESP encoders.
#[derive(Debug, Default)]
pub struct ReplyWriter {
    buf: Vec<u8>,
    /// The protocol replies are written in.
    pub proto: Protocol,
    /// Where the messages written with [`ReplyWriter::message`] are in
    /// `buf` (until the buffer is sent).
    messages: Vec<std::ops::Range<usize>>,
}

impl ReplyWriter {
    /// An empty writer for RESP2.
    pub fn new() -> Self {
        ReplyWriter {
            buf: Vec::with_capacity(16 * 1024),
            proto: Protocol::Resp2,
            messages: Vec::new(),
        }
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Number of bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Drops everything written (after it was sent).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.messages.clear();
        // Do not keep a huge buffer around after one big reply.
        if self.buf.capacity() > 1024 * 1024 {
            self.buf.shrink_to(16 * 1024);
        }
    }

    /// Discards what was written after `mark` (to replace a partial reply).
    pub fn truncate(&mut self, mark: usize) {
        self.buf.truncate(mark);
        self.messages.retain(|m| m.end <= mark);
    }

    /// Writes, with `f`, a message that is not a command's reply (a pub/sub
    /// message, an invalidation, a monitor line for this client itself),
    /// remembering where it is: [`ReplyWriter::drop_reply_since`] keeps it.
    pub fn message(&mut self, f: impl FnOnce(&mut ReplyWriter)) {
        let start = self.buf.len();
        f(self);
        self.messages.push(start..self.buf.len());
    }

    /// `CLIENT REPLY OFF`/`SKIP`: drops what the command wrote after
    /// `mark` except its messages ([`ReplyWriter::message`]), which Redis
    /// 7.0 still sends (they are pushed, not replied).
    pub fn drop_reply_since(&mut self, mark: usize) {
        let mut kept = Vec::new();
        for m in self.messages.iter().filter(|m| m.start >= mark) {
            kept.extend_from_slice(self.buf.get(m.clone()).unwrap_or_default());
        }
        self.buf.truncate(mark);
        self.buf.extend_from_slice(&kept);
        self.messages.retain(|m| m.end <= mark);
    }

    /// Appends already-encoded RESP.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// `tag`, the decimal `n`, CRLF. A count or length under 100 (most
    /// bulk lengths and arrays) is one fixed-size store: the general path's
    /// variable-length copy of the digits is a `memcpy` call, and replies
    /// of many short elements (`LRANGE`) made it a tenth of their CPU.
    fn header(&mut self, tag: u8, n: i64) {
        let digit = |d: i64| b'0' + d as u8;
        match n {
            0..=9 => self.buf.extend_from_slice(&[tag, digit(n), b'\r', b'\n']),
            10..=99 => {
                self.buf
                    .extend_from_slice(&[tag, digit(n / 10), digit(n % 10), b'\r', b'\n'])
            }
            _ => {
                self.buf.push(tag);
                self.buf
                    .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
                self.buf.extend_from_slice(b"\r\n");
            }
        }
    }

    /// `+OK`
    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// A simple string (`+text`). `text` must not contain CR or LF.
    pub fn simple(&mut self, text: &str) {
        self.buf.push(b'+');
        self.buf.extend_from_slice(text.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An error reply. `text` is the full message including its code
    /// (`ERR ...`, `WRONGTYPE ...`); newlines are replaced by spaces as Redis does.
    pub fn error(&mut self, text: &str) {
        self.buf.push(b'-');
        self.buf.extend(
            text.bytes()
                .map(|c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
        );
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An integer reply.
    pub fn int(&mut self, n: i64) {
        self.header(b':', n);
    }

    /// A bulk string.
    pub fn bulk(&mut self, data: &[u8]) {
        self.header(b'$', data.len() as i64);
        self.buf.extend_from_slice(data);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// A bulk string holding the decimal form of `n`.
    pub fn bulk_int(&mut self, n: i64) {
        self.bulk(itoa::Buffer::new().format(n).as_bytes());
    }

    /// The null reply: `$-1` in RESP2, `_` in RESP3.
    pub fn null(&mut self) {
        match self.proto {
            Protocol::Resp2 => self.buf.extend_from_slice(b"$-1\r\n"),
            Protocol::Resp3 => self.buf.extend_from_slice(b"_\r\n"),
        }
    }

    /// The null array: `*-1` in RESP2, `_` in RESP3.
    pub fn null_array(&mut self) {
        match self.proto {
            Protocol::Resp2 => self.buf.extend_from_slice(b"*-1\r\n"),
            Protocol::Resp3 => self.buf.extend_from_slice(b"_\r\n"),
        }
    }

    /// An array header of `n` elements.
    pub fn array(&mut self, n: usize) {
        self.header(b'*', n as i64);
    }

    /// A map header of `n` key/value pairs (a flat array of 2n in RESP2).
    pub fn map(&mut self, n: usize) {
        match self.proto {
            Protocol::Resp2 => self.header(b'*', 2 * n as i64),
            Protocol::Resp3 => self.header(b'%', n as i64),
        }
    }

    /// A set header of `n` elements (an array in RESP2).
    pub fn set(&mut self, n: usize) {
        match self.proto {
            Protocol::Resp2 => self.header(b'*', n as i64),
            Protocol::Resp3 => self.header(b'~', n as i64),
        }
    }

    /// A push header of `n` elements (an array in RESP2).
    pub fn push(&mut self, n: usize) {
        match self.proto {
            Protocol::Resp2 => self.header(b'*', n as i64),
            Protocol::Resp3 => self.header(b'>', n as i64),
        }
    }

    /// A boolean: `#t`/`#f` in RESP3, `:1`/`:0` in RESP2.
    pub fn boolean(&mut self, b: bool) {
        match (self.proto, b) {
            (Protocol::Resp2, true) => self.buf.extend_from_slice(b":1\r\n"),
            (Protocol::Resp2, false) => self.buf.extend_from_slice(b":0\r\n"),
            (Protocol::Resp3, true) => self.buf.extend_from_slice(b"#t\r\n"),
            (Protocol::Resp3, false) => self.buf.extend_from_slice(b"#f\r\n"),
        }
    }

    /// A double: `,1.5` in RESP3, a bulk string in RESP2, formatted like
    /// Redis's `%.17g` (shortest round-trip form, `inf`/`-inf`/`nan`).
    pub fn double(&mut self, d: f64) {
        let text = format_double(d);
        match self.proto {
            Protocol::Resp2 => self.bulk(text.as_bytes()),
            Protocol::Resp3 => {
                self.buf.push(b',');
                self.buf.extend_from_slice(text.as_bytes());
                self.buf.extend_from_slice(b"\r\n");
            }
        }
    }

    /// A verbatim string (`=len\r\ntxt:...` in RESP3, a bulk string in RESP2).
    pub fn verbatim(&mut self, format: &str, text: &[u8]) {
        match self.proto {
            Protocol::Resp2 => self.bulk(text),
            Protocol::Resp3 => {
                self.header(b'=', (text.len() + 4) as i64);
                self.buf.extend_from_slice(format.as_bytes());
                self.buf.push(b':');
                self.buf.extend_from_slice(text);
                self.buf.extend_from_slice(b"\r\n");
            }
        }
    }
}

/// Formats a double the way Redis replies with one (`addReplyDouble`):
/// integral values within 2^53 without a fraction, `inf`, `-inf`, `nan`,
/// otherwise `%.17g`.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    format_g17(d)
}

/// C's `%.17g`.
pub fn format_g17(d: f64) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // An integral value below 10^15 is its digits under `%.17g` (at most 15
    // of them, no fraction, no exponent): the common case of scores, and
    // two formatting passes and a log10 cheaper.
    if d.fract() == 0.0 && d.abs() < 1e15 {
        return itoa::Buffer::new().format(d as i64).to_string();
    }
    format_g17_general(d)
}

/// [`format_g17`] without its shortcut for integral values.
fn format_g17_general(d: f64) -> String {
    let exp = d.abs().log10().floor() as i32;
    // Decide with the exponent of the value as rounded to 17 significant digits.
    let sci = format!("{:.16e}", d);
    let (mantissa, e) = sci.split_once('e').unwrap_or((&sci, "0"));
    let e: i32 = e.parse().unwrap_or(exp);
    if !(-4..17).contains(&e) {
        let m = trim_zeros(mantissa);
        let sign = if e < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", e.abs())
    } else {
        let decimals = (16 - e).max(0) as usize;
        trim_zeros(&format!("{:.*}", decimals, d)).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g17_matches_c() {
        assert_eq!(format_g17(1.5), "1.5");
        assert_eq!(format_g17(10.0), "10");
        assert_eq!(format_g17(0.1), "0.10000000000000001");
        assert_eq!(format_g17(1e20), "1e+20");
        assert_eq!(format_g17(1.0e-5), "1.0000000000000001e-05");
        assert_eq!(format_g17(-3.25), "-3.25");
        assert_eq!(format_g17(123456789012345680.0), "1.2345678901234568e+17");
        assert_eq!(format_g17(0.0001), "0.0001");
    }

    #[test]
    fn integral_shortcut_formats_as_the_general_path() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut values = vec![
            1.0,
            -1.0,
            7.0,
            1e14,
            999_999_999_999_999.0,
            -999_999_999_999_999.0,
        ];
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = (x % 16) as i32;
            let v = (x >> 8) as f64 % 10f64.powi(digits);
            values.push(if x & 1 == 0 { v.trunc() } else { -v.trunc() });
        }
        for v in values {
            if v != 0.0 {
                assert_eq!(format_g17(v), format_g17_general(v), "{v}");
            }
        }
    }

    #[test]
    fn protocol_dependent_replies() {
        let mut w = ReplyWriter::new();
        w.null();
        w.map(1);
        w.boolean(true);
        assert_eq!(w.as_bytes(), b"$-1\r\n*2\r\n:1\r\n");
        let mut w = ReplyWriter::new();
        w.proto = Protocol::Resp3;
        w.null();
        w.map(1);
        w.boolean(true);
        w.double(2.5);
        assert_eq!(w.as_bytes(), b"_\r\n%1\r\n#t\r\n,2.5\r\n");
    }
}
