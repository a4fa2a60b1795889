//! Intsets (`intset.c`): a sorted array of integers, all of the smallest
//! width (2, 4 or 8 bytes) that holds each of them. Layout: the width
//! (u32 LE), the count (u32 LE), the integers (LE).

/// The intset of `values`, which must be sorted and distinct.
///
/// Redis never narrows an intset: after the widest member is removed it
/// keeps the old width, which Amber does not remember; such a set dumps
/// with a narrower width than Redis would use (its contents are the same).
pub fn encode(values: &[i64]) -> Vec<u8> {
    let width: usize = values
        .iter()
        .map(|&v| {
            if i16::try_from(v).is_ok() {
                2
            } else if i32::try_from(v).is_ok() {
                4
            } else {
                8
            }
        })
        .max()
        .unwrap_or(2);
    let mut out = Vec::with_capacity(8 + width * values.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    out
}

/// The integers of an intset; `None` if malformed.
pub fn decode(b: &[u8]) -> Option<Vec<i64>> {
    let width = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
    let count = u32::from_le_bytes(b.get(4..8)?.try_into().ok()?) as usize;
    if !matches!(width, 2 | 4 | 8) || b.len() != 8 + width.checked_mul(count)? {
        return None;
    }
    Some(
        b.get(8..)?
            .chunks_exact(width)
            .map(|c| match c.len() {
                2 => i64::from(i16::from_le_bytes([c[0], c[1]])),
                4 => i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                _ => c.try_into().map(i64::from_le_bytes).unwrap_or_default(),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_the_narrowest_width() {
        let b = encode(&[-3, 1, 2]);
        assert_eq!(b, [2, 0, 0, 0, 3, 0, 0, 0, 0xfd, 0xff, 1, 0, 2, 0]);
        assert_eq!(decode(&b), Some(vec![-3, 1, 2]));
        let wide = encode(&[1, 1 << 40]);
        assert_eq!(wide.len(), 8 + 16);
        assert_eq!(decode(&wide), Some(vec![1, 1 << 40]));
        assert_eq!(decode(&wide[..20]), None);
    }
}
