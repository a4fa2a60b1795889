//! The hashing and counting half of Redis 7.0's `hyperloglog.c`:
//! MurmurHash64A, the `000..1` pattern length of an element, and the
//! cardinality estimate from a register histogram (Ertl's improved
//! estimator, `hllCount` with `hllSigma` / `hllTau`).

/// Index bits of the hash (16384 registers).
pub const P: u32 = 14;
/// Hash bits left for the pattern (`64 - P`).
pub const Q: usize = 64 - P as usize;
/// Number of registers.
pub const REGISTERS: usize = 1 << P;
/// `0.5 / ln(2)`, Redis's `HLL_ALPHA_INF`.
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;
/// The seed Redis hashes elements with.
const SEED: u64 = 0xadc8_3b19;

/// Redis's `MurmurHash64A` (MurmurHash2, 64-bit, read little endian).
pub fn murmur64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    // C computes `seed ^ (len * m)` with `len` an int: the product is
    // taken in 64 bits after the int is widened.
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut blocks = key.chunks_exact(8);
    for block in blocks.by_ref() {
        let mut w = [0u8; 8];
        w.copy_from_slice(block);
        let mut k = u64::from_le_bytes(w).wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// Redis's `hllPatLen`: the register an element hashes to and the length
/// of the `000..1` pattern of the rest of its hash (1 to `Q + 1`).
pub fn pattern(element: &[u8]) -> (usize, u8) {
    let hash = murmur64a(element, SEED);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    // The extra bit at Q bounds the count at Q + 1.
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// Ertl's sigma function (`hllSigma`).
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let z_prime = z;
        z += x * y;
        y += y;
        if z_prime == z {
            return z;
        }
    }
}

/// Ertl's tau function (`hllTau`).
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let z_prime = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if z_prime == z {
            return z / 3.0;
        }
    }
}

/// The estimate of `hllCount` from a histogram of register values
/// (`histogram[v]` registers hold `v`; values above `Q + 1` are ignored,
/// as in Redis).
pub fn cardinality(histogram: &[i64; 64]) -> u64 {
    let m = REGISTERS as f64;
    let at = |v: usize| histogram.get(v).copied().unwrap_or(0) as f64;
    let mut z = m * tau((m - at(Q + 1)) / m);
    for j in (1..=Q).rev() {
        z += at(j);
        z *= 0.5;
    }
    z += m * sigma(at(0) / m);
    let e = ALPHA_INF * m * m / z;
    // C: `(uint64_t) llroundl(e)` converted through a double. Out of range
    // (all registers past Q + 1 make z zero and e infinite) llroundl gives
    // LLONG_MIN, which the conversion keeps as the bit pattern 1 << 63.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if (-TWO_POW_63..TWO_POW_63).contains(&e) {
        e.round() as i64 as u64
    } else {
        1u64 << 63
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur_matches_redis_registers() {
        // Redis 7.0: `PFADD k <element>` then `PFDEBUG GETREG k` sets
        // exactly this register to this value.
        assert_eq!(pattern(b"a"), (12711, 2));
        assert_eq!(pattern(b"b"), (15780, 1));
        assert_eq!(pattern(b"hello"), (9216, 1));
        assert_eq!(pattern(b"abcdefgh"), (1383, 1));
        assert_eq!(pattern(b"foobarbaz123"), (15302, 1));
        assert_eq!(pattern(b""), (5938, 2));
    }

    #[test]
    fn empty_and_full_histograms() {
        let mut h = [0i64; 64];
        h[0] = REGISTERS as i64;
        assert_eq!(cardinality(&h), 0);
        let mut h = [0i64; 64];
        h[63] = REGISTERS as i64;
        assert_eq!(cardinality(&h), 1 << 63);
        // One register at 1, like one element added.
        let mut h = [0i64; 64];
        h[0] = REGISTERS as i64 - 1;
        h[1] = 1;
        assert_eq!(cardinality(&h), 1);
    }
}
