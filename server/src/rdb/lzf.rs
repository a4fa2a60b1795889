//! LZF, the compression of RDB strings (liblzf, as vendored in Redis).
//!
//! Decompression accepts any valid stream. Compression is a hand port of
//! Redis's `lzf_c.c` with its build settings (`HLOG 16`, `VERY_FAST`,
//! `INIT_HTAB 0` but an all-null table, which is equivalent): its output
//! must be the same bytes Redis writes for `DUMP` to be byte-identical, and
//! no crate reproduces it (the `lzf` crate binds a different liblzf build,
//! and output depends on the hash function and table size).

/// `lzf_decompress`: the original of `input`, which must be exactly `len`
/// bytes long; `None` for a corrupt stream.
pub fn decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(len.min(1 << 20));
    let mut i = 0;
    while let Some(&ctrl) = input.get(i) {
        let ctrl = usize::from(ctrl);
        i += 1;
        if ctrl < 32 {
            let run = input.get(i..i + ctrl + 1)?;
            out.extend_from_slice(run);
            i += ctrl + 1;
        } else {
            let mut run = ctrl >> 5;
            if run == 7 {
                run += usize::from(*input.get(i)?);
                i += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + usize::from(*input.get(i)?) + 1;
            i += 1;
            let mut from = out.len().checked_sub(back)?;
            for _ in 0..run + 2 {
                let b = *out.get(from)?;
                out.push(b);
                from += 1;
            }
        }
        if out.len() > len {
            return None;
        }
    }
    (out.len() == len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decompresses() {
        // "abcabcabc": a literal run of 3, then a back reference of 6.
        let compressed = [2, b'a', b'b', b'c', 0x80, 2];
        assert_eq!(decompress(&compressed, 9), Some(b"abcabcabc".to_vec()));
        assert_eq!(decompress(&[0x80, 2], 2), None);
        assert_eq!(decompress(&[5, b'a'], 6), None);
    }
}
