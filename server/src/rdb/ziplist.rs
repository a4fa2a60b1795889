//! Ziplists (`ziplist.c`), read only: the encoding of small lists, hashes
//! and sorted sets before Redis 7.0, which 7.0 still loads.
//!
//! Layout: total bytes (u32 LE), offset of the tail (u32 LE), entry count
//! (u16 LE), the entries, and an end byte 0xFF. An entry is the previous
//! entry's length (1 byte, or 0xFE and a u32), an encoding, and data.

/// The elements of a ziplist, as strings (integers in decimal); `None` if
/// the bytes are not a well-formed ziplist.
pub fn elements(zl: &[u8]) -> Option<Vec<Vec<u8>>> {
    let total = u32::from_le_bytes(zl.get(..4)?.try_into().ok()?) as usize;
    if total != zl.len() || total < 11 || zl.last() != Some(&0xff) {
        return None;
    }
    let mut out = Vec::new();
    let mut p = 10;
    while *zl.get(p)? != 0xff {
        // The previous entry's length.
        p += if *zl.get(p)? == 0xfe { 5 } else { 1 };
        let enc = *zl.get(p)?;
        let bytes = |from: usize, n: usize| zl.get(from..from.checked_add(n)?);
        let int = |v: i64| v.to_string().into_bytes();
        let (value, next) = match enc >> 6 {
            0 => {
                let n = usize::from(enc & 0x3f);
                (bytes(p + 1, n)?.to_vec(), p + 1 + n)
            }
            1 => {
                let n = (usize::from(enc & 0x3f) << 8) | usize::from(*zl.get(p + 1)?);
                (bytes(p + 2, n)?.to_vec(), p + 2 + n)
            }
            2 => {
                let n = u32::from_be_bytes(bytes(p + 1, 4)?.try_into().ok()?) as usize;
                (bytes(p + 5, n)?.to_vec(), p.checked_add(5 + n)?)
            }
            _ => match enc {
                0xc0 => (
                    int(i64::from(i16::from_le_bytes(
                        bytes(p + 1, 2)?.try_into().ok()?,
                    ))),
                    p + 3,
                ),
                0xd0 => (
                    int(i64::from(i32::from_le_bytes(
                        bytes(p + 1, 4)?.try_into().ok()?,
                    ))),
                    p + 5,
                ),
                0xe0 => (
                    int(i64::from_le_bytes(bytes(p + 1, 8)?.try_into().ok()?)),
                    p + 9,
                ),
                0xf0 => {
                    let s = bytes(p + 1, 3)?;
                    (
                        int(i64::from(i32::from_le_bytes([0, s[0], s[1], s[2]]) >> 8)),
                        p + 4,
                    )
                }
                0xfe => (int(i64::from(*zl.get(p + 1)? as i8)), p + 2),
                0xf1..=0xfd => (int(i64::from(enc & 0x0f) - 1), p + 1),
                _ => return None,
            },
        };
        out.push(value);
        p = next;
    }
    (p == zl.len() - 1).then_some(out)
}

/// The pairs of a zipmap (`zipmap.c`, hashes before Redis 2.6): a count
/// byte, then per pair a field length, the field, a value length, a free
/// byte count, the value and the free bytes, then 0xFF.
pub fn zipmap_pairs(zm: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut p = 1;
    let mut out = Vec::new();
    let len = |p: &mut usize| -> Option<usize> {
        let b = *zm.get(*p)?;
        match b {
            0..=253 => {
                *p += 1;
                Some(usize::from(b))
            }
            254 => {
                let n = u32::from_le_bytes(zm.get(*p + 1..*p + 5)?.try_into().ok()?);
                *p += 5;
                Some(n as usize)
            }
            255 => None,
        }
    };
    while *zm.get(p)? != 0xff {
        let n = len(&mut p)?;
        let field = zm.get(p..p.checked_add(n)?)?.to_vec();
        p += n;
        let n = len(&mut p)?;
        let free = usize::from(*zm.get(p)?);
        p += 1;
        let value = zm.get(p..p.checked_add(n)?)?.to_vec();
        p = p.checked_add(n)?.checked_add(free)?;
        out.push((field, value));
    }
    (p == zm.len() - 1).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_ziplist() {
        // From Redis 6: RPUSH l a 12 -> ziplist [a, 12].
        let zl = [
            0x13, 0, 0, 0, 0x0e, 0, 0, 0, 2, 0, 0, 1, b'a', 3, 0xfe, 12, 0xff,
        ];
        let mut zl = zl.to_vec();
        zl[0] = zl.len() as u8;
        assert_eq!(elements(&zl), Some(vec![b"a".to_vec(), b"12".to_vec()]));
        assert_eq!(elements(&zl[..zl.len() - 1]), None);
    }
}
