//! HyperLogLog commands: PFADD PFCOUNT PFMERGE PFDEBUG PFSELFTEST, ported
//! from Redis 7.0's `hyperloglog.c`. A HyperLogLog is an ordinary string
//! in Redis's own format ([`sketch`]), so GET, APPEND, SETRANGE and the
//! tiers see plain bytes, and PF* check them before use.

mod estimate;
mod selftest;
mod sketch;

use amber_storage::{Guard, SetExpiry};

use super::args::{self, c_str, is_c, nth};
use super::error::{CmdError, CmdResult};
use super::strings::{existing_string_mut, raw_string, read_string, string_of};
use super::{Ctx, Handler};
use crate::notify;
use estimate::REGISTERS;
use sketch::Corrupted;

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("pfadd", pfadd),
    ("pfcount", pfcount),
    ("pfmerge", pfmerge),
    ("pfdebug", pfdebug),
    ("pfselftest", pfselftest),
];

impl From<Corrupted> for CmdError {
    fn from(_: Corrupted) -> Self {
        CmdError::msg("INVALIDOBJ Corrupted HLL object detected")
    }
}

/// `isHLLObjectOrReply`'s error for a string that is not a HyperLogLog.
fn check_hll(s: &[u8]) -> CmdResult {
    if sketch::is_valid(s) {
        Ok(())
    } else {
        Err(CmdError::msg(
            "WRONGTYPE Key is not a valid HyperLogLog string value.",
        ))
    }
}

/// The `hll-sparse-max-bytes` directive.
fn sparse_max_bytes(ctx: &Ctx<'_>) -> u64 {
    ctx.srv.config.get_i64("hll-sparse-max-bytes").max(0) as u64
}

/// PFADD key [element ...]: 1 if the key was created or a register
/// changed, else 0.
fn pfadd(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let raises: Vec<(usize, u8)> = args
        .get(2..)
        .unwrap_or_default()
        .iter()
        .map(|e| estimate::pattern(e))
        .collect();
    let max_bytes = sparse_max_bytes(ctx);
    let mut g = ctx.lock_one(key)?;
    // Redis looks the key up for writing, but signals a change only when a
    // register moved: the value is written only then.
    let must_write = match string_of(g.get(key))? {
        None => None,
        Some(s) => {
            check_hll(s)?;
            Some(raises.iter().any(|&(i, c)| sketch::would_raise(s, i, c)))
        }
    };
    let updated = match must_write {
        None => {
            let mut s = sketch::new_empty();
            for &(index, count) in &raises {
                sketch::raise(&mut s, index, count, max_bytes)?;
            }
            sketch::invalidate_cache(&mut s);
            g.set(key, raw_string(s), SetExpiry::Persist)?;
            true
        }
        Some(false) => false,
        Some(true) => {
            let s = existing_string_mut(&mut g, key)?.bytes_mut();
            let mut changed = false;
            for &(index, count) in &raises {
                changed |= sketch::raise(s, index, count, max_bytes)?;
            }
            if changed {
                sketch::invalidate_cache(s);
            }
            changed
        }
    };
    if updated {
        ctx.notify(notify::STRING, "pfadd", key);
    }
    ctx.out.int(i64::from(updated));
    Ok(())
}

/// PFCOUNT key [key ...]: the estimated cardinality of one HyperLogLog
/// (cached in its header) or of the union of several (nothing written).
fn pfcount(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let keys = args.get(1..).unwrap_or_default();
    if keys.len() > 1 {
        let mut g = ctx.lock(keys.iter().copied())?;
        let mut max = Box::new([0u8; REGISTERS]);
        for &key in keys {
            let Some(s) = read_string(ctx, &mut g, key)? else {
                continue;
            };
            check_hll(s)?;
            sketch::merge_into(&mut max, s)?;
        }
        ctx.out.int(sketch::count_raw(&max) as i64);
        return Ok(());
    }
    let key = nth(args, 1);
    let mut g = ctx.lock_one(key)?;
    let Some(s) = read_string(ctx, &mut g, key)? else {
        ctx.out.int(0);
        return Ok(());
    };
    check_hll(s)?;
    if let Some(card) = sketch::cached_cardinality(s) {
        ctx.out.int(card as i64);
        return Ok(());
    }
    let card = sketch::count(s)?;
    // Updating the cache changes the string: Redis signals the key.
    let s = existing_string_mut(&mut g, key)?.bytes_mut();
    sketch::set_cached_cardinality(s, card);
    ctx.out.int(card as i64);
    Ok(())
}

/// PFMERGE destkey [sourcekey ...]: the destination (itself one of the
/// inputs) becomes the union; it is dense if any input was.
fn pfmerge(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let keys = args.get(1..).unwrap_or_default();
    let dest = nth(args, 1);
    let max_bytes = sparse_max_bytes(ctx);
    let mut g = ctx.lock(keys.iter().copied())?;
    let mut max = Box::new([0u8; REGISTERS]);
    let mut use_dense = false;
    for &key in keys {
        let Some(s) = read_string(ctx, &mut g, key)? else {
            continue;
        };
        check_hll(s)?;
        use_dense |= sketch::encoding(s) == sketch::DENSE;
        sketch::merge_into(&mut max, s)?;
    }
    if string_of(g.get(dest))?.is_some() {
        let s = existing_string_mut(&mut g, dest)?.bytes_mut();
        store_union(s, &max, use_dense, max_bytes)?;
    } else {
        let mut s = sketch::new_empty();
        store_union(&mut s, &max, use_dense, max_bytes)?;
        g.set(dest, raw_string(s), SetExpiry::Persist)?;
    }
    // Redis sends `pfadd` for a merge: in effect a mass add.
    ctx.notify(notify::STRING, "pfadd", dest);
    ctx.out.ok();
    Ok(())
}

/// Raises the registers of `s` to the union `max`, register by register in
/// index order as Redis does (the sparse bytes depend on that order).
fn store_union(
    s: &mut Vec<u8>,
    max: &[u8; REGISTERS],
    use_dense: bool,
    max_bytes: u64,
) -> CmdResult {
    if use_dense {
        sketch::sparse_to_dense(s)?;
    }
    for (index, &count) in max.iter().enumerate() {
        if count != 0 {
            // The destination was validated as an input, so this cannot
            // fail; Redis ignores the result here too.
            let _ = sketch::raise(s, index, count, max_bytes);
        }
    }
    sketch::invalidate_cache(s);
    Ok(())
}

/// PFDEBUG GETREG|DECODE|ENCODING|TODENSE key. (Redis 7.0 neither signals
/// the key nor sends a keyspace event, even when it converts it.)
fn pfdebug(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let sub = nth(args, 1);
    let key = nth(args, 2);
    let mut g = ctx.lock_one(key)?;
    let Some(s) = string_of(g.get(key))? else {
        return Err(CmdError::err("The specified key does not exist"));
    };
    check_hll(s)?;
    // The command table fixes the arity at 3, so Redis's per-subcommand
    // argument count check cannot fail and is not repeated here.
    if is_c(sub, "getreg") {
        let registers = dense_registers(&mut g, key)?;
        ctx.out.array(registers.len());
        for r in registers {
            ctx.out.int(i64::from(r));
        }
    } else if is_c(sub, "decode") {
        if sketch::encoding(s) != sketch::SPARSE {
            return Err(CmdError::err("HLL encoding is not sparse"));
        }
        ctx.out.bulk(sketch::decode(s).as_bytes());
    } else if is_c(sub, "encoding") {
        let name = if sketch::encoding(s) == sketch::DENSE {
            "dense"
        } else {
            "sparse"
        };
        ctx.out.simple(name);
    } else if is_c(sub, "todense") {
        let converted = sketch::encoding(s) == sketch::SPARSE;
        if converted {
            sketch::sparse_to_dense(existing_string_mut(&mut g, key)?.bytes_mut())?;
        }
        ctx.out.int(i64::from(converted));
    } else {
        return Err(CmdError::err(format!(
            "Unknown PFDEBUG subcommand '{}'",
            args::text(c_str(sub))
        )));
    }
    Ok(())
}

/// The registers of the HyperLogLog at `key`, converting it to dense first
/// if it is sparse (as PFDEBUG GETREG does).
fn dense_registers(g: &mut Guard<'_>, key: &[u8]) -> Result<Vec<u8>, CmdError> {
    let is_sparse = string_of(g.get(key))?.is_some_and(|s| sketch::encoding(s) == sketch::SPARSE);
    if is_sparse {
        sketch::sparse_to_dense(existing_string_mut(g, key)?.bytes_mut())?;
    }
    let s = string_of(g.get(key))?.unwrap_or_default();
    let registers = s.get(sketch::HDR_SIZE..).unwrap_or_default();
    Ok((0..REGISTERS)
        .map(|i| sketch::dense_get(registers, i))
        .collect())
}

/// PFSELFTEST: +OK, or the first failed check.
fn pfselftest(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    selftest::run(sparse_max_bytes(ctx)).map_err(CmdError::msg)?;
    ctx.out.ok();
    Ok(())
}
