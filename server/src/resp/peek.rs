//! A look ahead at the requests waiting in the input buffer, without
//! consuming them: each complete multibulk request's name and first
//! argument, for the batch's cache hints (`amber_storage::Keyspace::prefetch`).
//!
//! Separate from [`super::parser`] on purpose: the parser keeps resumable
//! state for one request at a time and enforces Redis's limits; this only
//! reads what is already complete and stops at the first thing it does not
//! understand (an inline command, a partial request, anything malformed),
//! which the parser then handles as usual. A wrong peek costs a useless
//! hint, never a reply.

/// Most argument headers one call reads. The peek runs each time input
/// arrives, and the requests it walks are not consumed until they are
/// complete: without a bound, a million-argument request arriving in 64 KiB
/// pieces would be walked from its start on every piece (what the resumable
/// parser exists to avoid).
const MAX_ARGS_WALKED: usize = 1024;

/// Calls `each(name, first_argument)` for the complete multibulk requests at
/// the start of `buf` that have at least two arguments, up to `max`
/// requests (requests with fewer arguments count but are not reported) and
/// [`MAX_ARGS_WALKED`] arguments in all, or until `each` returns false.
/// Returns how many requests it walked.
pub fn first_args<'a>(
    buf: &'a [u8],
    max: usize,
    each: impl FnMut(&'a [u8], &'a [u8]) -> bool,
) -> usize {
    walk(buf, max, each).0
}

/// [`first_args`], also returning how many argument headers it read.
fn walk<'a>(
    buf: &'a [u8],
    max: usize,
    mut each: impl FnMut(&'a [u8], &'a [u8]) -> bool,
) -> (usize, usize) {
    let mut at = 0;
    let mut walked = 0;
    let mut args_left = MAX_ARGS_WALKED;
    while walked < max {
        let Some((argc, mut pos)) = header(buf, at, b'*') else {
            break;
        };
        let mut first_two: [&'a [u8]; 2] = [&[], &[]];
        let mut complete = true;
        for i in 0..argc {
            if args_left == 0 {
                complete = false;
                break;
            }
            args_left -= 1;
            let Some((len, start)) = header(buf, pos, b'$') else {
                complete = false;
                break;
            };
            let end = start + len;
            if buf.get(end..end + 2) != Some(b"\r\n") {
                complete = false;
                break;
            }
            if let Some(slot) = first_two.get_mut(i) {
                *slot = buf.get(start..end).unwrap_or_default();
            }
            pos = end + 2;
        }
        if !complete || argc == 0 {
            break;
        }
        walked += 1;
        at = pos;
        if argc >= 2 && !each(first_two[0], first_two[1]) {
            break;
        }
    }
    (walked, MAX_ARGS_WALKED - args_left)
}

/// Reads `<tag><decimal>\r\n` at `at`: the number and the position after
/// the line. `None` for anything else, a partial line, or a number too big
/// to be a real request's.
fn header(buf: &[u8], at: usize, tag: u8) -> Option<(usize, usize)> {
    let rest = buf.get(at..)?;
    if rest.first() != Some(&tag) {
        return None;
    }
    let digits = rest.get(1..)?;
    let mut n: usize = 0;
    for (i, &c) in digits.iter().enumerate().take(12) {
        match c {
            b'0'..=b'9' => n = n * 10 + usize::from(c - b'0'),
            b'\r' if i > 0 => {
                return (digits.get(i + 1) == Some(&b'\n')).then_some((n, at + 1 + i + 2));
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::first_args;

    type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

    fn peek(buf: &[u8], max: usize) -> (usize, Pairs) {
        let mut seen = Vec::new();
        let n = first_args(buf, max, |a, b| {
            seen.push((a.to_vec(), b.to_vec()));
            true
        });
        (n, seen)
    }

    fn pair(a: &str, b: &str) -> (Vec<u8>, Vec<u8>) {
        (a.as_bytes().to_vec(), b.as_bytes().to_vec())
    }

    #[test]
    fn walks_complete_requests_and_reports_the_first_two_arguments() {
        let buf = b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$2\r\nbb\r\n$1\r\nv\r\n";
        assert_eq!(
            peek(buf, 10),
            (3, vec![pair("GET", "a"), pair("SET", "bb")])
        );
        assert_eq!(peek(buf, 1), (1, vec![pair("GET", "a")]));
    }

    #[test]
    fn reads_a_bounded_number_of_arguments_per_call() {
        // A huge request in progress: walked only up to the bound, each time.
        let mut buf = b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*1000000\r\n".to_vec();
        for _ in 0..100_000 {
            buf.extend_from_slice(b"$1\r\nx\r\n");
        }
        assert_eq!(peek(&buf, 10), (1, vec![pair("GET", "a")]));
        assert_eq!(
            super::walk(&buf, 10, |_, _| true),
            (1, super::MAX_ARGS_WALKED)
        );
        // Complete requests past the bound are not reported either.
        let mut many = Vec::new();
        for _ in 0..super::MAX_ARGS_WALKED {
            many.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n");
        }
        let (walked, seen) = peek(&many, usize::MAX);
        assert_eq!(walked, super::MAX_ARGS_WALKED / 2);
        assert_eq!(seen.len(), walked);
    }

    #[test]
    fn stops_at_partial_inline_or_malformed_input() {
        let whole = b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n";
        for cut in 0..whole.len() {
            let mut buf = whole.to_vec();
            buf.extend_from_slice(&whole[..cut]);
            assert_eq!(peek(&buf, 10), (1, vec![pair("GET", "a")]), "cut {cut}");
        }
        for bad in [
            &b"PING\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n"[..],
            b"*2\r\n$3\r\nGET\r\n$1\r\nab\r\n",
            b"*x\r\n",
            b"*2\r\n$-1\r\n",
            b"*0\r\n",
            b"*2\r\n$99999999999999999\r\n",
            b"*\r\n",
        ] {
            assert_eq!(
                peek(bad, 10),
                (0, vec![]),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
