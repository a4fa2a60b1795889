//! Bit commands on strings: SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD
//! BITFIELD_RO, ported from Redis 7.0's `bitops.c` (bit 0 is the most
//! significant bit of the first byte).

use amber_storage::{Guard, SetExpiry};

use super::args::{self, c_str, is_c, nth};
use super::error::{CmdError, CmdResult};
use super::strings::{existing_string_mut, max_bulk_len, raw_string, read_string, string_of};
use super::{Ctx, Handler};
use crate::notify;

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("setbit", setbit),
    ("getbit", getbit),
    ("bitcount", bitcount),
    ("bitpos", bitpos),
    ("bitop", bitop),
    ("bitfield", bitfield),
    ("bitfield_ro", bitfield_ro),
];

const BIT_OFFSET_ERR: &str = "bit offset is not an integer or out of range";

/// Redis's `getBitOffsetFromArgument`: a bit offset below
/// `proto-max-bulk-len * 8`; with `bits`, `#N` means `N * bits`.
fn bit_offset(ctx: &Ctx<'_>, arg: &[u8], bits: Option<u32>) -> Result<u64, CmdError> {
    let (hash, digits) = match (arg.split_first(), bits) {
        (Some((b'#', rest)), Some(b)) if b > 0 => (Some(b), rest),
        _ => (None, arg),
    };
    let mut v = args::parse_i64(digits).ok_or_else(|| CmdError::err(BIT_OFFSET_ERR))?;
    if let Some(b) = hash {
        // C multiplies without an overflow check; wrapping matches it.
        v = v.wrapping_mul(i64::from(b));
    }
    if v < 0 || (v >> 3) as u64 >= max_bulk_len(ctx) {
        return Err(CmdError::err(BIT_OFFSET_ERR));
    }
    Ok(v as u64)
}

/// The string at `key`, grown with zero bytes so that bit `max_bit` exists
/// (Redis's `lookupStringForBitCommand`). Returns the bytes and whether the
/// key was created or grown.
fn string_for_bits<'g>(
    g: &'g mut Guard<'_>,
    key: &[u8],
    max_bit: u64,
) -> Result<(&'g mut Vec<u8>, bool), CmdError> {
    let need = (max_bit >> 3) as usize + 1;
    let exists = string_of(g.get(key))?.is_some();
    if !exists {
        g.set(key, raw_string(vec![0; need]), SetExpiry::Persist)?;
    }
    let s = existing_string_mut(g, key)?;
    let bytes = s.bytes_mut();
    let grown = bytes.len() < need;
    if grown {
        bytes.resize(need, 0);
    }
    Ok((bytes, grown || !exists))
}

fn setbit(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let offset = bit_offset(ctx, nth(args, 2), None)?;
    const ERR: &str = "bit is not an integer or out of range";
    let on = args::parse_i64(nth(args, 3)).ok_or_else(|| CmdError::err(ERR))?;
    if on & !1 != 0 {
        return Err(CmdError::err(ERR));
    }
    let mut g = ctx.lock_one(key)?;
    let (bytes, created_or_grown) = string_for_bits(&mut g, key, offset)?;
    let mask = 1u8 << (7 - (offset & 7));
    let old = match bytes.get_mut((offset >> 3) as usize) {
        Some(byte) => {
            let old = *byte & mask != 0;
            if on == 1 {
                *byte |= mask;
            } else {
                *byte &= !mask;
            }
            old
        }
        None => false,
    };
    // As Redis: a bit set to the value it had, in a string that neither
    // appeared nor grew, is no change (no dirty, no event, not propagated).
    if created_or_grown || old != (on == 1) {
        ctx.notify(notify::STRING, "setbit", key);
    } else {
        g.unchanged(key);
    }
    ctx.out.int(i64::from(old));
    Ok(())
}

fn getbit(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let offset = bit_offset(ctx, nth(args, 2), None)?;
    let mut g = ctx.lock_one(key)?;
    let s = read_string(ctx, &mut g, key)?.unwrap_or_default();
    let bit = s
        .get((offset >> 3) as usize)
        .is_some_and(|b| b & (1 << (7 - (offset & 7))) != 0);
    ctx.out.int(i64::from(bit));
    Ok(())
}

/// Number of set bits.
pub fn popcount(s: &[u8]) -> u64 {
    let mut chunks = s.chunks_exact(8);
    let mut n: u64 = chunks
        .by_ref()
        .map(|c| {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            u64::from(u64::from_ne_bytes(w).count_ones())
        })
        .sum();
    n += chunks
        .remainder()
        .iter()
        .map(|b| u64::from(b.count_ones()))
        .sum::<u64>();
    n
}

/// Redis's `redisBitpos`: the position of the first bit equal to `bit`;
/// for 0 not found it is `8 * len` (the string is zero padded on the
/// right), for 1 it is -1.
pub fn first_bit(s: &[u8], bit: bool) -> i64 {
    let skip = if bit { 0u8 } else { 0xff };
    match s.iter().position(|&b| b != skip) {
        Some(i) => {
            let b = s.get(i).copied().unwrap_or(0);
            let within = if bit {
                b.leading_zeros()
            } else {
                (!b).leading_zeros()
            };
            i as i64 * 8 + i64::from(within)
        }
        None if bit => -1,
        None => s.len() as i64 * 8,
    }
}

/// A resolved BITCOUNT / BITPOS range in bytes, with the masks of the
/// out-of-range bits of the first and last byte (BIT mode).
struct BitRange {
    start: i64,
    end: i64,
    first_mask: u8,
    last_mask: u8,
}

/// The index arithmetic shared by BITCOUNT and BITPOS.
fn resolve_range(len: usize, start: i64, end: i64, is_bit: bool) -> BitRange {
    let totlen = if is_bit {
        (len as i64) << 3
    } else {
        len as i64
    };
    let mut start = if start < 0 {
        totlen.wrapping_add(start)
    } else {
        start
    }
    .max(0);
    let mut end = if end < 0 {
        totlen.wrapping_add(end)
    } else {
        end
    }
    .max(0);
    if end >= totlen {
        end = totlen - 1;
    }
    let (mut first_mask, mut last_mask) = (0u8, 0u8);
    if is_bit && start <= end {
        first_mask = !((1u16 << (8 - (start & 7))) - 1) as u8;
        last_mask = ((1u16 << (7 - (end & 7))) - 1) as u8;
        start >>= 3;
        end >>= 3;
    }
    BitRange {
        start,
        end,
        first_mask,
        last_mask,
    }
}

/// BIT or BYTE (case-insensitive), else a syntax error.
fn bit_unit(arg: &[u8]) -> Result<bool, CmdError> {
    if is_c(arg, "bit") {
        Ok(true)
    } else if is_c(arg, "byte") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

fn bitcount(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let mut g = ctx.lock_one(key)?;
    let Some(s) = read_string(ctx, &mut g, key)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let r = match args.len() {
        4 | 5 => {
            let start = args::int(nth(args, 2))?;
            let end = args::int(nth(args, 3))?;
            if start < 0 && end < 0 && start > end {
                ctx.out.int(0);
                return Ok(());
            }
            let is_bit = args.len() == 5 && bit_unit(nth(args, 4))?;
            resolve_range(s.len(), start, end, is_bit)
        }
        2 => BitRange {
            start: 0,
            end: s.len() as i64 - 1,
            first_mask: 0,
            last_mask: 0,
        },
        _ => return Err(CmdError::Syntax),
    };
    if r.start > r.end {
        ctx.out.int(0);
        return Ok(());
    }
    let (from, to) = (r.start as usize, r.end as usize);
    let mut count = popcount(s.get(from..=to).unwrap_or_default());
    let first = s.get(from).copied().unwrap_or(0) & r.first_mask;
    let last = s.get(to).copied().unwrap_or(0) & r.last_mask;
    count -= u64::from(first.count_ones() + last.count_ones());
    ctx.out.int(count as i64);
    Ok(())
}

fn bitpos(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let bit = args::int(nth(args, 2))?;
    if bit != 0 && bit != 1 {
        return Err(CmdError::err("The bit argument must be 1 or 0."));
    }
    let bit = bit == 1;
    let mut g = ctx.lock_one(key)?;
    let Some(s) = read_string(ctx, &mut g, key)? else {
        ctx.out.int(if bit { -1 } else { 0 });
        return Ok(());
    };
    let mut end_given = false;
    let r = match args.len() {
        4..=6 => {
            let start = args::int(nth(args, 3))?;
            let is_bit = args.len() == 6 && bit_unit(nth(args, 5))?;
            let end = if args.len() >= 5 {
                end_given = true;
                args::int(nth(args, 4))?
            } else if is_bit {
                ((s.len() as i64) << 3) + 7
            } else {
                s.len() as i64 - 1
            };
            resolve_range(s.len(), start, end, is_bit)
        }
        3 => BitRange {
            start: 0,
            end: s.len() as i64 - 1,
            first_mask: 0,
            last_mask: 0,
        },
        _ => return Err(CmdError::Syntax),
    };
    if r.start > r.end {
        ctx.out.int(-1);
        return Ok(());
    }
    let pos = bitpos_in(s, bit, &r, end_given);
    ctx.out.int(pos);
    Ok(())
}

/// The search part of Redis's `bitposCommand`, over a non-empty range.
fn bitpos_in(s: &[u8], bit: bool, r: &BitRange, end_given: bool) -> i64 {
    let byte = |i: i64| s.get(i as usize).copied().unwrap_or(0);
    // Bits outside the range are forced to the value not searched for.
    let masked = |b: u8, mask: u8| if bit { b & !mask } else { b | mask };
    let mut start = r.start;
    let mut bytes = r.end - r.start + 1;
    let pos = 'found: {
        if r.first_mask != 0 {
            let mut c = masked(byte(start), r.first_mask);
            if r.last_mask != 0 && bytes == 1 {
                c = masked(c, r.last_mask);
            }
            let pos = first_bit(&[c], bit);
            if bytes == 1 || (pos != -1 && pos != 8) {
                break 'found pos;
            }
            start += 1;
            bytes -= 1;
        }
        let cur = bytes - i64::from(r.last_mask != 0);
        if cur > 0 {
            let from = start as usize;
            let slice = s.get(from..from + cur as usize).unwrap_or_default();
            let pos = first_bit(slice, bit);
            if bytes == cur || (pos != -1 && pos != cur << 3) {
                break 'found pos;
            }
            start += cur;
            bytes -= cur;
        }
        first_bit(&[masked(byte(r.end), r.last_mask)], bit)
    };
    if end_given && !bit && pos == bytes << 3 {
        return -1;
    }
    if pos != -1 {
        pos + (start << 3)
    } else {
        pos
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

fn bitop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let name = nth(args, 1);
    let op = if is_c(name, "and") {
        BitOp::And
    } else if is_c(name, "or") {
        BitOp::Or
    } else if is_c(name, "xor") {
        BitOp::Xor
    } else if is_c(name, "not") {
        BitOp::Not
    } else {
        return Err(CmdError::Syntax);
    };
    if op == BitOp::Not && args.len() != 4 {
        return Err(CmdError::err(
            "BITOP NOT must be called with a single source key.",
        ));
    }
    let dest = nth(args, 2);
    let sources = args.get(3..).unwrap_or_default();
    let mut g = ctx.lock(args.get(2..).unwrap_or_default().iter().copied())?;
    // Fold the sources one at a time; a missing byte reads as zero.
    let mut res: Vec<u8> = Vec::new();
    for (i, &key) in sources.iter().enumerate() {
        let src = read_string(ctx, &mut g, key)?.unwrap_or_default();
        if i == 0 {
            res.extend_from_slice(src);
            if op == BitOp::Not {
                res.iter_mut().for_each(|b| *b = !*b);
            }
            continue;
        }
        if res.len() < src.len() {
            res.resize(src.len(), 0);
        }
        let (head, tail) = res.split_at_mut(src.len());
        match op {
            BitOp::And => {
                head.iter_mut().zip(src).for_each(|(r, s)| *r &= s);
                tail.fill(0);
            }
            BitOp::Or => head.iter_mut().zip(src).for_each(|(r, s)| *r |= s),
            BitOp::Xor => head.iter_mut().zip(src).for_each(|(r, s)| *r ^= s),
            BitOp::Not => {}
        }
    }
    let len = res.len();
    if len > 0 {
        g.set(dest, raw_string(res), SetExpiry::Persist)?;
        ctx.notify(notify::STRING, "set", dest);
    } else if g.delete_key(dest) {
        ctx.notify(notify::GENERIC, "del", dest);
    }
    ctx.out.int(len as i64);
    Ok(())
}

/// What BITFIELD does when a value does not fit its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Wrap around (modular arithmetic), the default.
    Wrap,
    /// Saturate at the type's minimum or maximum.
    Sat,
    /// Do nothing and answer nil.
    Fail,
}

/// A bitfield integer type: `i1`..`i64` or `u1`..`u63`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldType {
    /// Signed (`i`) or unsigned (`u`).
    pub signed: bool,
    /// Width in bits.
    pub bits: u32,
}

impl FieldType {
    /// Parses like Redis's `getBitfieldTypeFromArgument`.
    pub fn parse(arg: &[u8]) -> Result<Self, CmdError> {
        const ERR: &str = "Invalid bitfield type. Use something like i16 u8. \
                           Note that u64 is not supported but i64 is.";
        let bad = || CmdError::err(ERR);
        let signed = match arg.first() {
            Some(b'i') => true,
            Some(b'u') => false,
            _ => return Err(bad()),
        };
        // The width is read with strlen, so it ends at a NUL.
        let bits = args::parse_i64(c_str(arg.get(1..).unwrap_or_default())).ok_or_else(bad)?;
        if bits < 1 || bits > if signed { 64 } else { 63 } {
            return Err(bad());
        }
        Ok(FieldType {
            signed,
            bits: bits as u32,
        })
    }
}

/// Reads `bits` bits at bit `offset` as an unsigned integer (missing bytes
/// read as zero).
pub fn get_unsigned(p: &[u8], offset: u64, bits: u32) -> u64 {
    let mut value = 0u64;
    for j in 0..u64::from(bits) {
        let o = offset + j;
        let byte = p.get((o >> 3) as usize).copied().unwrap_or(0);
        let bit = (byte >> (7 - (o & 7))) & 1;
        value = (value << 1) | u64::from(bit);
    }
    value
}

/// Reads `bits` bits at bit `offset` as a two's complement integer.
pub fn get_signed(p: &[u8], offset: u64, bits: u32) -> i64 {
    let mut v = get_unsigned(p, offset, bits);
    if bits < 64 && v & (1u64 << (bits - 1)) != 0 {
        v |= u64::MAX << bits;
    }
    v as i64
}

/// Writes the low `bits` bits of `value` at bit `offset` (bytes beyond the
/// slice are skipped; callers grow the string first).
pub fn set_bits(p: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..u64::from(bits) {
        let bitval = (value >> (u64::from(bits) - 1 - j)) & 1 != 0;
        let o = offset + j;
        if let Some(byte) = p.get_mut((o >> 3) as usize) {
            let mask = 1u8 << (7 - (o & 7));
            if bitval {
                *byte |= mask;
            } else {
                *byte &= !mask;
            }
        }
    }
}

/// Redis's `checkUnsignedBitfieldOverflow`: whether `value + incr` leaves
/// the range of a `bits`-wide unsigned integer, and the value to store
/// instead (`None` for FAIL).
pub fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> Option<Option<u64>> {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let max_incr = max.wrapping_sub(value) as i64;
    let min_incr = value.wrapping_neg() as i64;
    let wrap = || value.wrapping_add(incr as u64) & !(u64::MAX.checked_shl(bits).unwrap_or(0));
    let limit = |sat: u64| match ow {
        Overflow::Wrap => Some(wrap()),
        Overflow::Sat => Some(sat),
        Overflow::Fail => None,
    };
    if value > max || (incr > 0 && incr > max_incr) {
        Some(limit(max))
    } else if incr < 0 && incr < min_incr {
        Some(limit(0))
    } else {
        None
    }
}

/// Redis's `checkSignedBitfieldOverflow`, same contract as
/// [`unsigned_overflow`].
pub fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> Option<Option<i64>> {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1u64 << (bits - 1)) != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    let limit = |sat: i64| match ow {
        Overflow::Wrap => Some(wrap()),
        Overflow::Sat => Some(sat),
        Overflow::Fail => None,
    };
    if value > max || (bits != 64 && incr > max_incr) || (value >= 0 && incr > 0 && incr > max_incr)
    {
        Some(limit(max))
    } else if value < min
        || (bits != 64 && incr < min_incr)
        || (value < 0 && incr < 0 && incr < min_incr)
    {
        Some(limit(min))
    } else {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldOp {
    Get,
    Set(i64),
    IncrBy(i64),
}

#[derive(Debug, Clone, Copy)]
struct Field {
    op: FieldOp,
    ty: FieldType,
    offset: u64,
    overflow: Overflow,
}

/// One SET or INCRBY applied: the reply and whether the field's value
/// changed.
struct Written {
    reply: i64,
    changed: bool,
}

/// Applies one SET or INCRBY to `p` (long enough): `None` for a FAIL
/// overflow (nothing written).
fn apply_write(p: &mut [u8], f: &Field) -> Option<Written> {
    let (bits, offset) = (f.ty.bits, f.offset);
    if f.ty.signed {
        let old = get_signed(p, offset, bits);
        let (new, reply) = match f.op {
            FieldOp::IncrBy(incr) => match signed_overflow(old, incr, bits, f.overflow) {
                None => {
                    let v = old.wrapping_add(incr);
                    (v, v)
                }
                Some(limit) => {
                    let v = limit?;
                    (v, v)
                }
            },
            FieldOp::Set(v) => match signed_overflow(v, 0, bits, f.overflow) {
                None => (v, old),
                Some(limit) => (limit?, old),
            },
            FieldOp::Get => {
                return Some(Written {
                    reply: old,
                    changed: false,
                })
            }
        };
        set_bits(p, offset, bits, new as u64);
        Some(Written {
            reply,
            changed: new != old,
        })
    } else {
        let old = get_unsigned(p, offset, bits);
        let (new, reply) = match f.op {
            FieldOp::IncrBy(incr) => match unsigned_overflow(old, incr, bits, f.overflow) {
                None => {
                    let v = old.wrapping_add(incr as u64);
                    (v, v)
                }
                Some(limit) => {
                    let v = limit?;
                    (v, v)
                }
            },
            FieldOp::Set(v) => match unsigned_overflow(v as u64, 0, bits, f.overflow) {
                None => (v as u64, old),
                Some(limit) => (limit?, old),
            },
            FieldOp::Get => {
                return Some(Written {
                    reply: old as i64,
                    changed: false,
                })
            }
        };
        set_bits(p, offset, bits, new);
        Some(Written {
            reply: reply as i64,
            changed: new != old,
        })
    }
}

/// A GET on a possibly absent string.
fn field_get(p: &[u8], f: &Field) -> i64 {
    if f.ty.signed {
        get_signed(p, f.offset, f.ty.bits)
    } else {
        get_unsigned(p, f.offset, f.ty.bits) as i64
    }
}

fn parse_fields(ctx: &Ctx<'_>, args: &[&[u8]]) -> Result<Vec<Field>, CmdError> {
    let mut fields = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < args.len() {
        let rem = args.len() - j - 1;
        let sub = nth(args, j);
        let get = is_c(sub, "get") && rem >= 2;
        let set = is_c(sub, "set") && rem >= 3;
        let incr = is_c(sub, "incrby") && rem >= 3;
        if !(get || set || incr) {
            if is_c(sub, "overflow") && rem >= 1 {
                let kind = nth(args, j + 1);
                overflow = if is_c(kind, "wrap") {
                    Overflow::Wrap
                } else if is_c(kind, "sat") {
                    Overflow::Sat
                } else if is_c(kind, "fail") {
                    Overflow::Fail
                } else {
                    return Err(CmdError::err("Invalid OVERFLOW type specified"));
                };
                j += 2;
                continue;
            }
            return Err(CmdError::Syntax);
        }
        let ty = FieldType::parse(nth(args, j + 1))?;
        let offset = bit_offset(ctx, nth(args, j + 2), Some(ty.bits))?;
        let op = if get {
            FieldOp::Get
        } else {
            let v = args::int(nth(args, j + 3))?;
            if set {
                FieldOp::Set(v)
            } else {
                FieldOp::IncrBy(v)
            }
        };
        fields.push(Field {
            op,
            ty,
            offset,
            overflow,
        });
        j += if get { 3 } else { 4 };
    }
    Ok(fields)
}

fn bitfield_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], read_only_cmd: bool) -> CmdResult {
    let key = nth(args, 1);
    let fields = parse_fields(ctx, args)?;
    let highest_write = fields
        .iter()
        .filter(|f| f.op != FieldOp::Get)
        .map(|f| f.offset + u64::from(f.ty.bits) - 1)
        .max();
    let mut g = ctx.lock_one(key)?;
    let Some(highest) = highest_write else {
        let s = read_string(ctx, &mut g, key)?.unwrap_or_default();
        ctx.out.array(fields.len());
        for f in &fields {
            ctx.out.int(field_get(s, f));
        }
        return Ok(());
    };
    if read_only_cmd {
        return Err(CmdError::err(
            "BITFIELD_RO only supports the GET subcommand",
        ));
    }
    let (bytes, created_or_grown) = string_for_bits(&mut g, key, highest)?;
    ctx.out.array(fields.len());
    // As Redis counts `changes`: writes that changed a value, or any write
    // to a string this command created or grew.
    let mut changes = 0;
    for f in &fields {
        match f.op {
            FieldOp::Get => ctx.out.int(field_get(bytes, f)),
            _ => match apply_write(bytes, f) {
                Some(w) => {
                    if created_or_grown || w.changed {
                        changes += 1;
                    }
                    ctx.out.int(w.reply)
                }
                None => ctx.out.null(),
            },
        }
    }
    if changes > 0 {
        ctx.notify(notify::STRING, "setbit", key);
    } else if !created_or_grown {
        // Only FAIL overflows or rewrites of the same values. (A string
        // created by writes that all failed stays a change here, where
        // Redis counts none: the key exists, so it must reach the arena
        // and the replicas.)
        g.unchanged(key);
    }
    Ok(())
}

fn bitfield(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    bitfield_generic(ctx, args, false)
}

fn bitfield_ro(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    bitfield_generic(ctx, args, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitfield_layout_matches_redis_doc() {
        // "setting a 5 bits unsigned integer to value 23 at offset 7"
        let mut p = [0u8; 2];
        set_bits(&mut p, 7, 5, 23);
        assert_eq!(p, [0b0000_0001, 0b0111_0000]);
        assert_eq!(get_unsigned(&p, 7, 5), 23);
        assert_eq!(get_signed(&p, 7, 5), 23 - 32);
        assert_eq!(get_signed(&[0xff; 9], 3, 64), -1);
        assert_eq!(get_unsigned(&[], 100, 8), 0);
    }

    #[test]
    fn overflow_rules() {
        use Overflow::*;
        // u8: 250 + 10 wraps to 4, saturates at 255, fails.
        assert_eq!(unsigned_overflow(250, 10, 8, Wrap), Some(Some(4)));
        assert_eq!(unsigned_overflow(250, 10, 8, Sat), Some(Some(255)));
        assert_eq!(unsigned_overflow(250, 10, 8, Fail), Some(None));
        assert_eq!(unsigned_overflow(5, -10, 8, Sat), Some(Some(0)));
        assert_eq!(unsigned_overflow(5, -10, 8, Wrap), Some(Some(251)));
        assert_eq!(unsigned_overflow(5, 3, 8, Wrap), None);
        // SET u8 -1: the value itself is out of range.
        assert_eq!(unsigned_overflow(u64::MAX, 0, 8, Wrap), Some(Some(255)));
        assert_eq!(unsigned_overflow(u64::MAX, 0, 8, Sat), Some(Some(255)));
        // i8: 120 + 10 wraps to -126; -120 - 10 saturates at -128.
        assert_eq!(signed_overflow(120, 10, 8, Wrap), Some(Some(-126)));
        assert_eq!(signed_overflow(120, 10, 8, Sat), Some(Some(127)));
        assert_eq!(signed_overflow(-120, -10, 8, Sat), Some(Some(-128)));
        assert_eq!(signed_overflow(-120, -10, 8, Wrap), Some(Some(126)));
        assert_eq!(signed_overflow(i64::MAX, 1, 64, Wrap), Some(Some(i64::MIN)));
        assert_eq!(signed_overflow(i64::MIN, -1, 64, Sat), Some(Some(i64::MIN)));
        assert_eq!(signed_overflow(1, i64::MAX - 1, 64, Sat), None);
        assert_eq!(signed_overflow(200, 0, 8, Wrap), Some(Some(-56)));
    }

    #[test]
    fn types_and_positions() {
        assert_eq!(
            FieldType::parse(b"i64"),
            Ok(FieldType {
                signed: true,
                bits: 64
            })
        );
        assert!(FieldType::parse(b"u64").is_err());
        assert!(FieldType::parse(b"i0").is_err());
        assert!(FieldType::parse(b"x8").is_err());
        assert!(FieldType::parse(b"u8\0zz").is_ok());
        assert_eq!(first_bit(&[0, 0x10], true), 11);
        assert_eq!(first_bit(&[0xff, 0xff], false), 16);
        assert_eq!(first_bit(&[0, 0], true), -1);
        assert_eq!(popcount(b"foobar"), 26);
        assert_eq!(popcount(&[0xff; 13]), 104);
    }
}
