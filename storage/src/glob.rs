//! Redis's glob-style pattern matching (`KEYS`, `SCAN MATCH`, `PSUBSCRIBE`).
//!
//! Supports `*`, `?`, `[abc]`, `[^abc]`, `[a-z]` and `\x` escapes, like Redis's
//! `stringmatchlen`. Written iteratively (backtracking to the last `*`) so a
//! hostile pattern cannot overflow the stack; matching is O(pattern × string)
//! in the worst case.

/// Does `string` match the glob `pattern`? `nocase` folds ASCII case.
pub fn matches(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut s) = (0usize, 0usize);
    // Where to resume after the last `*`: (pattern index after the star, string index).
    let mut star: Option<(usize, usize)> = None;
    while s < string.len() {
        let c = string[s];
        let step = match pattern.get(p) {
            Some(b'*') => {
                // Collapse runs of stars.
                while pattern.get(p) == Some(&b'*') {
                    p += 1;
                }
                if p == pattern.len() {
                    return true;
                }
                star = Some((p, s));
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => class_match(pattern, p + 1, c, nocase),
            Some(b'\\') if p + 1 < pattern.len() => {
                if eq(pattern[p + 1], c) {
                    Some(p + 2)
                } else {
                    None
                }
            }
            Some(&pc) => {
                if eq(pc, c) {
                    Some(p + 1)
                } else {
                    None
                }
            }
            None => None,
        };
        match step {
            Some(next) => {
                p = next;
                s += 1;
            }
            None => match star {
                Some((sp, ss)) => {
                    p = sp;
                    s = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    while pattern.get(p) == Some(&b'*') {
        p += 1;
    }
    p == pattern.len()
}

/// Matches `c` against the class starting at `pattern[start]` (just after `[`).
/// Returns the pattern index after the closing `]` on a match.
fn class_match(pattern: &[u8], start: usize, c: u8, nocase: bool) -> Option<usize> {
    let fold = |b: u8| if nocase { b.to_ascii_lowercase() } else { b };
    let c = fold(c);
    let mut i = start;
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut hit = false;
    loop {
        match pattern.get(i) {
            // An unterminated class ends at the end of the pattern, as in Redis.
            None => {
                i = pattern.len();
                break;
            }
            Some(b']') => {
                i += 1;
                break;
            }
            Some(b'\\') if i + 1 < pattern.len() => {
                if fold(pattern[i + 1]) == c {
                    hit = true;
                }
                i += 2;
            }
            Some(&lo) if pattern.get(i + 1) == Some(&b'-') && i + 2 < pattern.len() => {
                let hi = pattern[i + 2];
                let (lo, hi) = if lo > hi { (hi, lo) } else { (lo, hi) };
                let (lo, hi) = (fold(lo), fold(hi));
                if c >= lo && c <= hi {
                    hit = true;
                }
                i += 3;
            }
            Some(&b) => {
                if fold(b) == c {
                    hit = true;
                }
                i += 1;
            }
        }
    }
    if hit != negate {
        Some(i)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn basics() {
        assert!(matches(b"*", b"anything", false));
        assert!(matches(b"h?llo", b"hello", false));
        assert!(!matches(b"h?llo", b"hllo", false));
        assert!(matches(b"h*llo", b"heeeello", false));
        assert!(matches(b"h[ae]llo", b"hallo", false));
        assert!(!matches(b"h[^e]llo", b"hello", false));
        assert!(matches(b"h[a-b]llo", b"hbllo", false));
        assert!(matches(b"h\\*llo", b"h*llo", false));
        assert!(!matches(b"h\\*llo", b"hello", false));
        assert!(matches(b"HELLO", b"hello", true));
        assert!(matches(b"a*b*c", b"axxbyyc", false));
        assert!(!matches(b"a*b*c", b"axxbyy", false));
        assert!(matches(b"", b"", false));
        assert!(!matches(b"", b"a", false));
    }

    #[test]
    fn hostile_pattern_is_fast() {
        let pat = b"a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
        let s = vec![b'a'; 5000];
        assert!(!matches(pat, &s, false));
    }
}
