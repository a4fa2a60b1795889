//! The HyperLogLog string format of Redis 7.0's `hyperloglog.c`, byte for
//! byte: a 16-byte header (`HYLL`, encoding, 3 unused bytes, the cached
//! cardinality little endian with bit 7 of byte 15 meaning "stale"), then
//! either 16384 dense 6-bit registers packed from the least significant
//! bit, or the sparse run-length opcodes ZERO (`00xxxxxx`), XZERO
//! (`01xxxxxx yyyyyyyy`) and VAL (`1vvvvvxx`).
//!
//! Every function works on the whole string. A read past the end of the
//! string reads a zero byte, as Redis reads the terminator of its `sds`.

use super::estimate::{self, REGISTERS};

/// Header length.
pub const HDR_SIZE: usize = 16;
/// Length of a dense HyperLogLog: header and 16384 registers of 6 bits.
pub const DENSE_SIZE: usize = HDR_SIZE + (REGISTERS * BITS).div_ceil(8);
/// Encoding byte of the dense representation.
pub const DENSE: u8 = 0;
/// Encoding byte of the sparse representation.
pub const SPARSE: u8 = 1;
/// Bits per dense register.
const BITS: usize = 6;
/// Largest register value.
const REGISTER_MAX: u32 = (1 << BITS) - 1;
/// Largest value a VAL opcode holds.
const VAL_MAX_VALUE: u8 = 32;
/// Longest run of a VAL opcode.
const VAL_MAX_LEN: i64 = 4;
/// Longest run of a ZERO opcode.
const ZERO_MAX_LEN: i64 = 64;
/// Longest run of an XZERO opcode.
const XZERO_MAX_LEN: i64 = 16384;
/// Where the encoding byte is.
const ENCODING_AT: usize = 4;
/// The byte holding the "stale cache" bit.
const CACHE_FLAG_AT: usize = 15;

/// The representation is corrupted (Redis's `INVALIDOBJ` cases).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupted;

/// Byte `i` of `s`, zero past the end.
fn byte(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

/// Overwrites byte `i` of `s`, which the caller has seen exist.
fn put(s: &mut [u8], i: usize, b: u8) {
    if let Some(x) = s.get_mut(i) {
        *x = b;
    }
}

/// Counts `n` registers holding `value` in a histogram.
fn tally(histogram: &mut [i64; 64], value: u8, n: i64) {
    if let Some(h) = histogram.get_mut(usize::from(value)) {
        *h += n;
    }
}

/// Redis's `isHLLObjectOrReply` checks on a string: long enough, magic,
/// known encoding, exact length when dense.
pub fn is_valid(s: &[u8]) -> bool {
    s.len() >= HDR_SIZE
        && s.starts_with(b"HYLL")
        && byte(s, ENCODING_AT) <= SPARSE
        && (byte(s, ENCODING_AT) != DENSE || s.len() == DENSE_SIZE)
}

/// The encoding byte.
pub fn encoding(s: &[u8]) -> u8 {
    byte(s, ENCODING_AT)
}

/// A new, empty HyperLogLog: sparse, one XZERO of 16384 registers, cached
/// cardinality 0 (`createHLLObject`).
pub fn new_empty() -> Vec<u8> {
    let mut s = vec![0u8; HDR_SIZE];
    s[..4].copy_from_slice(b"HYLL");
    s[ENCODING_AT] = SPARSE;
    let mut left = REGISTERS as i64;
    while left > 0 {
        let run = left.min(XZERO_MAX_LEN);
        s.extend_from_slice(&xzero(run));
        left -= run;
    }
    s
}

/// The cached cardinality, unless marked stale.
pub fn cached_cardinality(s: &[u8]) -> Option<u64> {
    if byte(s, CACHE_FLAG_AT) & 0x80 != 0 {
        return None;
    }
    let mut card = [0u8; 8];
    card.copy_from_slice(s.get(8..HDR_SIZE)?);
    Some(u64::from_le_bytes(card))
}

/// Stores a computed cardinality in the header.
pub fn set_cached_cardinality(s: &mut [u8], card: u64) {
    if let Some(dst) = s.get_mut(8..HDR_SIZE) {
        dst.copy_from_slice(&card.to_le_bytes());
    }
}

/// Marks the cached cardinality stale (`HLL_INVALIDATE_CACHE`).
pub fn invalidate_cache(s: &mut [u8]) {
    if let Some(b) = s.get_mut(CACHE_FLAG_AT) {
        *b |= 0x80;
    }
}

// ---------------------------------------------------------------- dense

/// Register `index` of dense `registers` (`HLL_DENSE_GET_REGISTER`).
pub fn dense_get(registers: &[u8], index: usize) -> u8 {
    let at = index * BITS / 8;
    let fb = (index * BITS) & 7;
    let b0 = u32::from(byte(registers, at));
    let b1 = u32::from(byte(registers, at + 1));
    (((b0 >> fb) | (b1 << (8 - fb))) & REGISTER_MAX) as u8
}

/// Sets register `index` of dense `registers` (`HLL_DENSE_SET_REGISTER`).
pub fn dense_set(registers: &mut [u8], index: usize, value: u8) {
    let at = index * BITS / 8;
    let fb = (index * BITS) & 7;
    let v = u32::from(value);
    if let Some(b) = registers.get_mut(at) {
        *b = ((u32::from(*b) & !(REGISTER_MAX << fb)) | (v << fb)) as u8;
    }
    if let Some(b) = registers.get_mut(at + 1) {
        *b = ((u32::from(*b) & !(REGISTER_MAX >> (8 - fb))) | (v >> (8 - fb))) as u8;
    }
}

/// Raises register `index` to `count` if it is lower (`hllDenseSet`);
/// whether it changed.
fn dense_raise(registers: &mut [u8], index: usize, count: u8) -> bool {
    if count > dense_get(registers, index) {
        dense_set(registers, index, count);
        true
    } else {
        false
    }
}

/// The registers of a dense string.
fn dense_registers(s: &[u8]) -> &[u8] {
    s.get(HDR_SIZE..).unwrap_or_default()
}

// --------------------------------------------------------------- sparse

/// One sparse opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `len` registers at zero, one byte (ZERO) or two (XZERO).
    Zeros { len: i64, xzero: bool },
    /// `len` registers at `value`.
    Val { value: u8, len: i64 },
}

impl Op {
    /// The opcode at `p` (the second byte of an XZERO past the end reads 0).
    fn at(s: &[u8], p: usize) -> Op {
        let b = byte(s, p);
        if b & 0xc0 == 0 {
            Op::Zeros {
                len: i64::from(b & 0x3f) + 1,
                xzero: false,
            }
        } else if b & 0x80 != 0 {
            Op::Val {
                value: ((b >> 2) & 0x1f) + 1,
                len: i64::from(b & 0x3) + 1,
            }
        } else {
            let len = (i64::from(b & 0x3f) << 8 | i64::from(byte(s, p + 1))) + 1;
            Op::Zeros { len, xzero: true }
        }
    }

    /// Registers covered.
    fn span(self) -> i64 {
        match self {
            Op::Zeros { len, .. } | Op::Val { len, .. } => len,
        }
    }

    /// Bytes taken.
    fn size(self) -> usize {
        match self {
            Op::Zeros { xzero: true, .. } => 2,
            _ => 1,
        }
    }
}

/// A VAL opcode (`HLL_SPARSE_VAL_SET`).
fn val(value: u8, len: i64) -> u8 {
    (((i64::from(value) - 1) << 2 | (len - 1)) as u8) | 0x80
}

/// An XZERO opcode (`HLL_SPARSE_XZERO_SET`).
fn xzero(len: i64) -> [u8; 2] {
    let l = len - 1;
    [((l >> 8) as u8) | 0x40, (l & 0xff) as u8]
}

/// A run of zeros as ZERO or XZERO, appended to `seq`.
fn push_zeros(seq: &mut Vec<u8>, len: i64) {
    if len > ZERO_MAX_LEN {
        seq.extend_from_slice(&xzero(len));
    } else {
        seq.push((len - 1) as u8);
    }
}

/// Calls `f(first, value, len)` for every run of the sparse opcodes, in
/// order. Corrupted unless the runs cover exactly the 16384 registers (a
/// run past the last register stops the walk, as in Redis since the fix
/// for CVE-2025-32023, which Debian's 7.0 carries).
fn for_each_run(s: &[u8], mut f: impl FnMut(usize, u8, i64)) -> Result<(), Corrupted> {
    let mut idx: i64 = 0;
    let mut p = HDR_SIZE;
    while p < s.len() {
        let op = Op::at(s, p);
        let (value, len) = match op {
            Op::Zeros { len, .. } => (0, len),
            Op::Val { value, len } => (value, len),
        };
        if idx + len > REGISTERS as i64 {
            return Err(Corrupted);
        }
        f(idx as usize, value, len);
        idx += len;
        p += op.size();
    }
    if idx != REGISTERS as i64 {
        return Err(Corrupted);
    }
    Ok(())
}

/// Converts a sparse string to dense in place (`hllSparseToDense`); a
/// dense one is left alone. The header, cached cardinality included, is
/// kept.
pub fn sparse_to_dense(s: &mut Vec<u8>) -> Result<(), Corrupted> {
    if encoding(s) == DENSE {
        return Ok(());
    }
    let mut dense = vec![0u8; DENSE_SIZE];
    let header = s.get(..HDR_SIZE).ok_or(Corrupted)?;
    dense[..HDR_SIZE].copy_from_slice(header);
    dense[ENCODING_AT] = DENSE;
    let registers = &mut dense[HDR_SIZE..];
    for_each_run(s, |first, value, len| {
        if value != 0 {
            for i in first..first + len as usize {
                dense_set(registers, i, value);
            }
        }
    })?;
    *s = dense;
    Ok(())
}

/// Register `index` of a sparse string, `None` if the opcodes end before.
fn sparse_get(s: &[u8], index: usize) -> Option<u8> {
    let index = index as i64;
    let mut first = 0i64;
    let mut p = HDR_SIZE;
    while p < s.len() {
        let op = Op::at(s, p);
        if index < first + op.span() {
            return Some(match op {
                Op::Zeros { .. } => 0,
                Op::Val { value, .. } => value,
            });
        }
        first += op.span();
        p += op.size();
    }
    None
}

/// Raises register `index` of a sparse string to `count` if it is lower
/// (`hllSparseSet`), splitting the opcode that covers it and merging equal
/// neighbours as Redis does. Promotes the string to dense when `count`
/// does not fit a VAL opcode or the string would grow past `max_bytes`.
/// Returns whether the register changed.
pub fn sparse_raise(
    s: &mut Vec<u8>,
    index: usize,
    count: u8,
    max_bytes: u64,
) -> Result<bool, Corrupted> {
    if count > VAL_MAX_VALUE {
        return promote(s, index, count);
    }
    let index_i = index as i64;

    // Step 1: find the opcode covering the register.
    let mut p = HDR_SIZE;
    let mut first = 0i64;
    let mut prev: Option<usize> = None;
    let mut span = 0i64;
    while p < s.len() {
        let op = Op::at(s, p);
        span = op.span();
        if index_i < first + span {
            break;
        }
        prev = Some(p);
        p += op.size();
        first += span;
    }
    if span == 0 || p >= s.len() {
        return Err(Corrupted);
    }
    let op = Op::at(s, p);
    let runlen = op.span();

    // Step 2: the easy cases, in place.
    let mut in_place = false;
    match op {
        Op::Val { value, len } => {
            if value >= count {
                return Ok(false);
            }
            if len == 1 {
                put(s, p, val(count, 1));
                in_place = true;
            }
        }
        Op::Zeros { xzero: false, .. } if runlen == 1 => {
            put(s, p, val(count, 1));
            in_place = true;
        }
        Op::Zeros { .. } => {}
    }

    if !in_place {
        // The general case: split the opcode in up to three.
        let last = first + span - 1;
        let mut seq: Vec<u8> = Vec::with_capacity(5);
        match op {
            Op::Zeros { .. } => {
                if index_i != first {
                    push_zeros(&mut seq, index_i - first);
                }
                seq.push(val(count, 1));
                if index_i != last {
                    push_zeros(&mut seq, last - index_i);
                }
            }
            Op::Val { value, .. } => {
                if index_i != first {
                    seq.push(val(value, index_i - first));
                }
                seq.push(val(count, 1));
                if index_i != last {
                    seq.push(val(value, last - index_i));
                }
            }
        }

        // Step 3: substitute the sequence for the opcode.
        let old_len = op.size();
        let delta = seq.len() as i64 - old_len as i64;
        if delta > 0 && s.len() as u64 + delta as u64 > max_bytes {
            return promote(s, index, count);
        }
        // An XZERO cut short by the end of the string is replaced as if it
        // were whole, and the string ends where C's length arithmetic says.
        let new_len = (s.len() as i64 + delta) as usize;
        let old_end = (p + old_len).min(s.len());
        s.splice(p..old_end, seq);
        s.truncate(new_len);
    }

    // Step 4: merge adjacent VAL opcodes of equal value, scanning up to 5
    // opcodes from the previous one.
    let mut p = prev.unwrap_or(HDR_SIZE);
    let mut scan = 5;
    while p < s.len() && scan > 0 {
        scan -= 1;
        let op = Op::at(s, p);
        let Op::Val { value, len } = op else {
            p += op.size();
            continue;
        };
        if p + 1 < s.len() {
            if let Op::Val {
                value: next_value,
                len: next_len,
            } = Op::at(s, p + 1)
            {
                if value == next_value && len + next_len <= VAL_MAX_LEN {
                    put(s, p + 1, val(value, len + next_len));
                    s.remove(p);
                    continue;
                }
            }
        }
        p += 1;
    }
    invalidate_cache(s);
    Ok(true)
}

/// Converts to dense and raises the register there (the `promote` label).
fn promote(s: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupted> {
    sparse_to_dense(s)?;
    let registers = s.get_mut(HDR_SIZE..).unwrap_or_default();
    Ok(dense_raise(registers, index, count))
}

// ------------------------------------------------------------ shared ops

/// Raises register `index` to `count` in either encoding (`hllAdd` once the
/// element is hashed). `max_bytes` is `hll-sparse-max-bytes`.
pub fn raise(s: &mut Vec<u8>, index: usize, count: u8, max_bytes: u64) -> Result<bool, Corrupted> {
    match encoding(s) {
        DENSE => {
            let registers = s.get_mut(HDR_SIZE..).unwrap_or_default();
            Ok(dense_raise(registers, index, count))
        }
        SPARSE => sparse_raise(s, index, count, max_bytes),
        _ => Err(Corrupted),
    }
}

/// Would raising register `index` to `count` change anything? (Also true
/// when the register cannot be read, so the write reports the corruption.)
pub fn would_raise(s: &[u8], index: usize, count: u8) -> bool {
    let current = match encoding(s) {
        DENSE => Some(dense_get(dense_registers(s), index)),
        SPARSE => sparse_get(s, index),
        _ => None,
    };
    current.is_none_or(|c| count > c)
}

/// Folds the registers of a valid HyperLogLog into `max` by maximum
/// (`hllMerge`).
pub fn merge_into(max: &mut [u8; REGISTERS], s: &[u8]) -> Result<(), Corrupted> {
    if encoding(s) == DENSE {
        let registers = dense_registers(s);
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(registers, i));
        }
        return Ok(());
    }
    for_each_run(s, |first, value, len| {
        let end = (first + len as usize).min(REGISTERS);
        for m in max.get_mut(first..end).unwrap_or_default() {
            *m = (*m).max(value);
        }
    })
}

/// The estimated cardinality of a valid HyperLogLog (`hllCount`); a sparse
/// one whose opcodes do not cover exactly 16384 registers is corrupted.
pub fn count(s: &[u8]) -> Result<u64, Corrupted> {
    let mut histogram = [0i64; 64];
    if encoding(s) == DENSE {
        let registers = dense_registers(s);
        for i in 0..REGISTERS {
            tally(&mut histogram, dense_get(registers, i), 1);
        }
    } else {
        for_each_run(s, |_, value, len| tally(&mut histogram, value, len))?;
    }
    Ok(estimate::cardinality(&histogram))
}

/// The cardinality of registers held one per byte (multi-key PFCOUNT's
/// `HLL_RAW` encoding).
pub fn count_raw(registers: &[u8; REGISTERS]) -> u64 {
    let mut histogram = [0i64; 64];
    for &r in registers {
        tally(&mut histogram, r, 1);
    }
    estimate::cardinality(&histogram)
}

/// `PFDEBUG DECODE`'s text of the sparse opcodes: `z:N`, `Z:N`, `v:V,N`.
pub fn decode(s: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut p = HDR_SIZE;
    while p < s.len() {
        let op = Op::at(s, p);
        parts.push(match op {
            Op::Zeros { len, xzero: false } => format!("z:{len}"),
            Op::Zeros { len, xzero: true } => format!("Z:{len}"),
            Op::Val { value, len } => format!("v:{value},{len}"),
        });
        p += op.size();
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_set_get_every_register_and_value() {
        let mut regs = vec![0u8; DENSE_SIZE - HDR_SIZE];
        for shift in 0..64usize {
            for i in 0..REGISTERS {
                dense_set(&mut regs, i, ((i + shift) & 63) as u8);
            }
            for i in 0..REGISTERS {
                assert_eq!(
                    dense_get(&regs, i),
                    ((i + shift) & 63) as u8,
                    "register {i}"
                );
            }
        }
        // Neighbours are untouched by a set.
        let mut regs = vec![0u8; DENSE_SIZE - HDR_SIZE];
        dense_set(&mut regs, 1, 63);
        assert_eq!(&regs[..2], &[0b1100_0000, 0b0000_1111]);
        assert_eq!((dense_get(&regs, 0), dense_get(&regs, 2)), (0, 0));
    }

    #[test]
    fn new_empty_is_redis_bytes() {
        let s = new_empty();
        assert_eq!(s, b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0\x7f\xff");
        assert!(is_valid(&s));
        assert_eq!(count(&s), Ok(0));
        assert_eq!(decode(&s), "Z:16384");
        assert_eq!(cached_cardinality(&s), Some(0));
    }

    #[test]
    fn sparse_to_dense_keeps_every_register() {
        // Registers spread over every opcode shape: long and short zero
        // runs, runs of equal values, values up to 32.
        let mut sparse = new_empty();
        let mut expected = [0u8; REGISTERS];
        let mut seed = 12345u64;
        for _ in 0..600 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let index = (seed >> 33) as usize % REGISTERS;
            let count = ((seed >> 20) % 32) as u8 + 1;
            let changed = sparse_raise(&mut sparse, index, count, 1 << 20).unwrap();
            assert_eq!(changed, count > expected[index]);
            expected[index] = expected[index].max(count);
            // Neighbouring registers with the same value make VAL runs.
            if index + 1 < REGISTERS {
                sparse_raise(&mut sparse, index + 1, count, 1 << 20).unwrap();
                expected[index + 1] = expected[index + 1].max(count);
            }
        }
        assert_eq!(encoding(&sparse), SPARSE);
        for (i, &e) in expected.iter().enumerate() {
            assert_eq!(sparse_get(&sparse, i), Some(e), "sparse register {i}");
        }
        let sparse_count = count(&sparse).unwrap();
        let mut dense = sparse.clone();
        sparse_to_dense(&mut dense).unwrap();
        assert_eq!(dense.len(), DENSE_SIZE);
        assert_eq!(&dense[..4], b"HYLL");
        assert_eq!(encoding(&dense), DENSE);
        for (i, &e) in expected.iter().enumerate() {
            assert_eq!(dense_get(&dense[HDR_SIZE..], i), e, "dense register {i}");
        }
        assert_eq!(count(&dense).unwrap(), sparse_count);
        let mut merged = [0u8; REGISTERS];
        merge_into(&mut merged, &sparse).unwrap();
        assert_eq!(merged, expected);
    }

    #[test]
    fn promotion_on_size_and_value() {
        let mut s = new_empty();
        assert_eq!(sparse_raise(&mut s, 100, 3, 20), Ok(true));
        // XZERO-VAL-XZERO is 21 bytes: too long for 20, so dense.
        assert_eq!(encoding(&s), DENSE);
        assert_eq!(dense_get(&s[HDR_SIZE..], 100), 3);
        let mut s = new_empty();
        assert_eq!(sparse_raise(&mut s, 7, 33, 3000), Ok(true));
        assert_eq!(encoding(&s), DENSE);
        assert_eq!(dense_get(&s[HDR_SIZE..], 7), 33);
    }

    #[test]
    fn corrupted_sparse_is_detected() {
        let mut s = new_empty();
        s.truncate(HDR_SIZE + 1); // half an XZERO: 16129 registers
        assert_eq!(count(&s), Err(Corrupted));
        assert_eq!(sparse_to_dense(&mut s.clone()), Err(Corrupted));
        assert_eq!(merge_into(&mut [0; REGISTERS], &s), Err(Corrupted));
        assert_eq!(sparse_raise(&mut s, 16300, 1, 3000), Err(Corrupted));
        // A run past register 16383 is corrupted even when the runs before
        // it cover exactly 16384 registers.
        let mut s = new_empty();
        s.push(val(1, 1));
        assert_eq!(count(&s), Err(Corrupted));
        assert_eq!(sparse_to_dense(&mut s.clone()), Err(Corrupted));
        assert_eq!(merge_into(&mut [0; REGISTERS], &s), Err(Corrupted));
        // The registers it does cover can still be raised, as in Redis.
        assert_eq!(sparse_raise(&mut s, 5, 1, 3000), Ok(true));
    }
}
