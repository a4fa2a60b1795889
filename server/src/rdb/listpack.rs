//! Listpacks (`listpack.c`): how Redis 7.0 packs small hashes, sorted sets
//! and the nodes of a list's quicklist. Built entry by entry exactly as
//! Redis's `lpAppend` builds them, so `DUMP` is byte-identical.
//!
//! Layout: total bytes (u32 LE), element count (u16 LE, 65535 when it
//! does not fit), the entries, and an end byte 0xFF. An entry is an
//! encoding header and data, then its own length backwards (`backlen`).

/// The end marker.
const EOF: u8 = 0xff;
/// Header bytes plus the end byte.
const OVERHEAD: usize = 4 + 2 + 1;

/// A listpack being built.
#[derive(Debug, Clone)]
pub struct Listpack {
    buf: Vec<u8>,
    count: usize,
}

impl Default for Listpack {
    fn default() -> Self {
        Listpack::new()
    }
}

impl Listpack {
    /// An empty listpack (`lpNew`).
    pub fn new() -> Self {
        Listpack {
            buf: vec![0; 6],
            count: 0,
        }
    }

    /// The size of the finished listpack (`lpBytes`).
    pub fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends an element (`lpAppend`): an integer when the bytes are a
    /// canonical 64-bit decimal (`lpStringToInt64`), else a string.
    pub fn push(&mut self, ele: &[u8]) {
        let start = self.buf.len();
        match int_value(ele) {
            Some(v) => encode_int(&mut self.buf, v),
            None => encode_str(&mut self.buf, ele),
        }
        let entry_len = self.buf.len() - start;
        encode_backlen(&mut self.buf, entry_len);
        self.count += 1;
    }

    /// The finished bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(EOF);
        let total = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
        let count = u16::try_from(self.count).unwrap_or(u16::MAX);
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

/// `lpStringToInt64`: the value of a canonical signed 64-bit decimal.
fn int_value(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let v: i64 = std::str::from_utf8(b).ok()?.parse().ok()?;
    let mut buf = itoa::Buffer::new();
    (buf.format(v).as_bytes() == b).then_some(v)
}

fn encode_int(out: &mut Vec<u8>, v: i64) {
    if (0..=127).contains(&v) {
        out.push(v as u8);
    } else if (-4096..=4095).contains(&v) {
        let u = (v as u64) & 0x1fff;
        out.extend_from_slice(&[0xc0 | (u >> 8) as u8, u as u8]);
    } else if (-32768..=32767).contains(&v) {
        out.push(0xf1);
        out.extend_from_slice(&(v as i16).to_le_bytes());
    } else if (-8_388_608..=8_388_607).contains(&v) {
        out.push(0xf2);
        out.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
    } else if let Ok(v) = i32::try_from(v) {
        out.push(0xf3);
        out.extend_from_slice(&v.to_le_bytes());
    } else {
        out.push(0xf4);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn encode_str(out: &mut Vec<u8>, s: &[u8]) {
    let len = s.len();
    if len < 64 {
        out.push(0x80 | len as u8);
    } else if len < 4096 {
        out.extend_from_slice(&[0xe0 | (len >> 8) as u8, len as u8]);
    } else {
        out.push(0xf0);
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }
    out.extend_from_slice(s);
}

/// `lpEncodeBacklen`: the entry's length, 7 bits per byte, most
/// significant first, every byte but the first with its high bit set.
fn encode_backlen(out: &mut Vec<u8>, len: usize) {
    let n = if len <= 127 {
        1
    } else if len < 16383 {
        2
    } else if len < 2_097_151 {
        3
    } else if len < 268_435_455 {
        4
    } else {
        5
    };
    for i in (0..n).rev() {
        let b = ((len >> (7 * i)) & 127) as u8;
        out.push(if i == n - 1 { b } else { b | 128 });
    }
}

/// The elements of a listpack, as strings (integers in decimal); `None`
/// if the bytes are not a well-formed listpack.
pub fn elements(lp: &[u8]) -> Option<Vec<Vec<u8>>> {
    let total = u32::from_le_bytes(lp.get(..4)?.try_into().ok()?) as usize;
    if total != lp.len() || total < OVERHEAD || lp.last() != Some(&EOF) {
        return None;
    }
    let count = u16::from_le_bytes(lp.get(4..6)?.try_into().ok()?);
    let mut out = Vec::new();
    let mut p = 6;
    loop {
        let first = *lp.get(p)?;
        if first == EOF {
            break;
        }
        let start = p;
        let (value, next) = entry(lp, p)?;
        out.push(value);
        let backlen = backlen_size(next - start);
        p = next.checked_add(backlen)?;
        if p >= lp.len() {
            return None;
        }
    }
    if p != lp.len() - 1 || (count != u16::MAX && usize::from(count) != out.len()) {
        return None;
    }
    Some(out)
}

fn backlen_size(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    }
}

/// The entry at `p`: its value and where its backlen starts.
fn entry(lp: &[u8], p: usize) -> Option<(Vec<u8>, usize)> {
    let b = *lp.get(p)?;
    let int = |v: i64, next: usize| Some((v.to_string().into_bytes(), next));
    let bytes = |from: usize, n: usize| lp.get(from..from.checked_add(n)?);
    if b & 0x80 == 0 {
        return int(i64::from(b), p + 1);
    }
    if b & 0xc0 == 0x80 {
        let n = usize::from(b & 0x3f);
        return Some((bytes(p + 1, n)?.to_vec(), p + 1 + n));
    }
    if b & 0xe0 == 0xc0 {
        let u = (u64::from(b & 0x1f) << 8) | u64::from(*lp.get(p + 1)?);
        let v = if u >= 1 << 12 {
            u as i64 - (1 << 13)
        } else {
            u as i64
        };
        return int(v, p + 2);
    }
    match b {
        0xf1 => int(
            i64::from(i16::from_le_bytes(bytes(p + 1, 2)?.try_into().ok()?)),
            p + 3,
        ),
        0xf2 => {
            let s = bytes(p + 1, 3)?;
            let v = i32::from_le_bytes([0, s[0], s[1], s[2]]) >> 8;
            int(i64::from(v), p + 4)
        }
        0xf3 => int(
            i64::from(i32::from_le_bytes(bytes(p + 1, 4)?.try_into().ok()?)),
            p + 5,
        ),
        0xf4 => int(i64::from_le_bytes(bytes(p + 1, 8)?.try_into().ok()?), p + 9),
        0xf0 => {
            let n = u32::from_le_bytes(bytes(p + 1, 4)?.try_into().ok()?) as usize;
            Some((bytes(p + 5, n)?.to_vec(), p.checked_add(5 + n)?))
        }
        _ if b & 0xf0 == 0xe0 => {
            let n = (usize::from(b & 0x0f) << 8) | usize::from(*lp.get(p + 1)?);
            Some((bytes(p + 2, n)?.to_vec(), p + 2 + n))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_redis_bytes_and_reads_them_back() {
        let mut lp = Listpack::new();
        for e in [
            &b"a"[..],
            b"1",
            b"-1",
            b"5000",
            b"-70000",
            b"100000000",
            b"9223372036854775807",
            b"01",
            &[b'x'; 100],
        ] {
            lp.push(e);
        }
        let bytes = lp.finish();
        // `a`: a 6-bit string of 1 byte, then its backlen 2.
        assert_eq!(&bytes[6..9], &[0x81, b'a', 2]);
        // `1`: a 7-bit integer; `-1`: a 13-bit integer.
        assert_eq!(&bytes[9..11], &[1, 1]);
        assert_eq!(&bytes[11..14], &[0xdf, 0xff, 2]);
        let els = elements(&bytes).expect("well formed");
        assert_eq!(els.len(), 9);
        assert_eq!(els[4], b"-70000");
        assert_eq!(els[6], b"9223372036854775807");
        assert_eq!(els[7], b"01");
        assert_eq!(els[8], vec![b'x'; 100]);
        assert_eq!(elements(&bytes[..bytes.len() - 1]), None);
    }
}
