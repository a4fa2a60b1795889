//! LZF, the compression of RDB strings (liblzf, as vendored in Redis).
//!
//! Decompression accepts any valid stream. Compression is a hand port of
//! liblzf 3.6's `lzf_compress` with its default settings (`HLOG 16`,
//! `VERY_FAST`, the multiplicative hash, offsets in the table): Debian's
//! redis-server links the system liblzf 3.6, not the older copy vendored
//! in Redis's tree (whose hash differs and finds other matches), and
//! `DUMP` must write the same bytes. No crate is used because none
//! reproduces this output (the `lzf` crate binds another build; the match
//! finder's hash and table size decide the bytes). liblzf leaves its table
//! uninitialised; this port starts from an empty one, which is what a
//! fresh table holds in practice (checked against redis-server 7.0.15 on
//! random strings).

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
            let from = out.len().checked_sub(back)?;
            for k in from..from + run + 2 {
                let b = *out.get(k)?;
                out.push(b);
            }
        }
        if out.len() > len {
            return None;
        }
    }
    (out.len() == len).then_some(out)
}

/// Bits of the hash table's index (`HLOG`).
const HLOG: u32 = 16;
/// Longest literal run.
const MAX_LIT: usize = 1 << 5;
/// Farthest back reference.
const MAX_OFF: usize = 1 << 13;
/// Longest back reference.
const MAX_REF: usize = (1 << 8) + (1 << 3);

/// `IDX` of liblzf 3.6's `lzf_c.c` (the multiplicative hash; wrapping
/// 32-bit arithmetic).
fn idx(h: u32) -> usize {
    ((h.wrapping_mul(0x1e35_a7bd) >> (32 - HLOG - 8)) & ((1 << HLOG) - 1)) as usize
}

/// `lzf_compress(input, len, out, out_len)`: the compressed bytes, or
/// `None` when they would not fit in `out_len` bytes (Redis then stores
/// the string as it is).
pub fn compress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let in_len = input.len();
    if in_len < 2 || out_len == 0 {
        // (lzf_compress of one byte emits a literal; Redis never asks.)
        return None;
    }
    // Positions + 1 of the last occurrence of each hash; 0 = none.
    let mut htab = vec![0usize; 1 << HLOG];
    let mut out = vec![0u8; out_len + 4];
    let at = |i: usize| u32::from(input[i]);
    let mut ip = 0usize;
    let mut op = 1usize; // start run
    let mut lit = 0usize;
    let mut hval = (at(0) << 8) | at(1);
    while ip + 2 < in_len {
        hval = (hval << 8) | at(ip + 2);
        let slot = idx(hval);
        let found = htab[slot];
        htab[slot] = ip + 1;
        let matched = found > 1 && {
            let r = found - 1;
            ip.checked_sub(r + 1).is_some_and(|off| off < MAX_OFF)
                && input[r..r + 3] == input[ip..ip + 3]
        };
        if matched {
            let r = found - 1;
            let off = ip - r - 1;
            let mut len = 2usize;
            let maxlen = (in_len - ip - len).min(MAX_REF);
            if op + 3 + 1 >= out_len && op - usize::from(lit == 0) + 3 + 1 >= out_len {
                return None;
            }
            out[op - lit - 1] = (lit as u8).wrapping_sub(1); // stop run
            if lit == 0 {
                op -= 1; // undo run if length is zero
            }
            // The C code's unrolled loop reads up to 16 bytes past a
            // `maxlen` above 16 before checking it: kept as is, it decides
            // the match length near the end of the input.
            let mut done = false;
            if maxlen > 16 {
                for _ in 0..16 {
                    len += 1;
                    if input[r + len] != input[ip + len] {
                        done = true;
                        break;
                    }
                }
            }
            if !done {
                len += 1;
                while len < maxlen && input[r + len] == input[ip + len] {
                    len += 1;
                }
            }
            len -= 2; // now the number of octets - 1
            ip += 1;
            if len < 7 {
                out[op] = ((off >> 8) + (len << 5)) as u8;
                op += 1;
            } else {
                out[op] = ((off >> 8) + (7 << 5)) as u8;
                out[op + 1] = (len - 7) as u8;
                op += 2;
            }
            out[op] = off as u8;
            op += 2; // and start a run
            lit = 0;
            ip += len + 1;
            if ip + 2 >= in_len {
                break;
            }
            // VERY_FAST: hash the two positions before the new `ip`.
            ip -= 2;
            hval = (at(ip) << 8) | at(ip + 1);
            for _ in 0..2 {
                hval = (hval << 8) | at(ip + 2);
                htab[idx(hval)] = ip + 1;
                ip += 1;
            }
        } else {
            if op >= out_len {
                return None;
            }
            lit += 1;
            out[op] = input[ip];
            op += 1;
            ip += 1;
            if lit == MAX_LIT {
                out[op - lit - 1] = (lit - 1) as u8;
                lit = 0;
                op += 1;
            }
        }
    }
    if op + 3 > out_len {
        return None;
    }
    while ip < in_len {
        lit += 1;
        out[op] = input[ip];
        op += 1;
        ip += 1;
        if lit == MAX_LIT {
            out[op - lit - 1] = (lit - 1) as u8;
            lit = 0;
            op += 1;
        }
    }
    out[op - lit - 1] = (lit as u8).wrapping_sub(1);
    if lit == 0 {
        op -= 1;
    }
    out.truncate(op);
    Some(out)
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

    #[test]
    fn compresses_as_redis() {
        // `SET k aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa` (50 a's)
        // then `DUMP k` on redis-server 7.0.15: `\x00\xc3\t2` and these
        // bytes (the hash of 4 bytes finds the first match at offset 2).
        let input = [b'a'; 50];
        let c = compress(&input, input.len() - 4).expect("compressible");
        assert_eq!(c, [1, b'a', b'a', 0xe0, 37, 0, 1, b'a', b'a']);
        assert_eq!(decompress(&c, 50).as_deref(), Some(&input[..]));
        // Random-looking input does not fit in len - 4 bytes.
        let noise: Vec<u8> = (0..64u32)
            .map(|i| (i * 97 + 13) as u8 ^ (i >> 2) as u8)
            .collect();
        assert_eq!(compress(&noise, noise.len() - 4), None);
    }

    #[test]
    fn round_trips() {
        let mut data = Vec::new();
        for i in 0..5000u32 {
            data.extend_from_slice(format!("key:{}:{}", i % 77, i * 31 % 1000).as_bytes());
        }
        for len in [21, 40, 300, 9000, data.len()] {
            let input = &data[..len];
            if let Some(c) = compress(input, input.len() - 4) {
                assert!(c.len() <= input.len() - 4);
                assert_eq!(decompress(&c, len).as_deref(), Some(input));
            }
        }
    }
}
