//! Redis's `rand.c`: the 48-bit linear congruential generator behind
//! `math.random` in scripts (the same sequence on every platform, unlike
//! libc's `random()`). Like Redis's, the state is one per process, starts
//! from `lrand48`'s default and changes only with `math.randomseed`.

use std::sync::atomic::{AtomicU64, Ordering};

/// `REDIS_LRAND48_MAX` (`INT32_MAX`).
pub const LRAND48_MAX: i64 = i32::MAX as i64;

const MULTIPLIER: u64 = 0x5_DEEC_E66D;
const INCREMENT: u64 = 0xB;
const MASK: u64 = (1 << 48) - 1;
/// `lrand48`'s state before any seeding (`X0 X1 X2` in `rand.c`).
const DEFAULT_STATE: u64 = 0x1234_ABCD_330E;

static STATE: AtomicU64 = AtomicU64::new(DEFAULT_STATE);

/// `redisLrand48`: the next 31-bit value.
pub fn next() -> i64 {
    let x = STATE.load(Ordering::Relaxed);
    let x = MULTIPLIER.wrapping_mul(x).wrapping_add(INCREMENT) & MASK;
    STATE.store(x, Ordering::Relaxed);
    (x >> 17) as i64
}

/// `redisSrand48`: seeds with the low 32 bits of `seed`.
pub fn seed(seed: i32) {
    STATE.store(((seed as u32 as u64) << 16) | 0x330E, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_lrand48() {
        // glibc's srand48(1); lrand48() gives 89400484, then 976015093.
        seed(1);
        assert_eq!(next(), 89_400_484);
        assert_eq!(next(), 976_015_093);
    }
}
