//! Set commands: SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD SPOP
//! SRANDMEMBER SMOVE SINTER SINTERCARD SINTERSTORE SUNION SUNIONSTORE SDIFF
//! SDIFFSTORE SSCAN.
//!
//! Semantics, reply shapes and error texts follow Redis 7.0's `t_set.c`,
//! including which encoding a computed set ends up in (results are built
//! the way Redis builds them: a fresh intset grown member by member), since
//! `OBJECT ENCODING` and the order of intset replies are observable.
//! Multi-key commands lock all their keys at once, so they are atomic.

use amber_storage::glob;
use amber_storage::types::set::{Member, MemberBuf};
use amber_storage::types::SetValue;
use amber_storage::{Guard, SetExpiry, Value};
use rand::seq::index;

use super::args;
use super::error::{CmdError, CmdResult};
use super::hashes::{empty_scan, scan_options, signed_count};
use super::reply_limit::{self, ReplyLimit, MIN_PICK};
use super::{Ctx, Handler};
use crate::config::HotConfig;
use crate::notify;
use crate::resp::ReplyWriter;

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("sadd", sadd),
    ("srem", srem),
    ("smembers", smembers),
    ("sismember", sismember),
    ("smismember", smismember),
    ("scard", scard),
    ("spop", spop),
    ("srandmember", srandmember),
    ("smove", smove),
    ("sinter", sinter),
    ("sintercard", sintercard),
    ("sinterstore", sinterstore),
    ("sunion", sunion),
    ("sunionstore", sunionstore),
    ("sdiff", sdiff),
    ("sdiffstore", sdiffstore),
    ("sscan", sscan),
];

/// The argument at `i` (empty when missing; the dispatcher checked arity).
fn arg<'a>(args: &[&'a [u8]], i: usize) -> &'a [u8] {
    args.get(i).copied().unwrap_or_default()
}

/// The current `set-max-intset-entries`.
fn max_intset(ctx: &Ctx<'_>) -> usize {
    HotConfig::count(&ctx.srv.config.hot.set_max_intset_entries)
}

/// Writes one member as a bulk string.
fn member(out: &mut ReplyWriter, m: Member<'_>) {
    match m {
        Member::Int(i) => out.bulk_int(i),
        Member::Bytes(b) => out.bulk(b),
    }
}

/// The set at `key` for a read: `Ok(None)` when absent, `WRONGTYPE` for
/// another type. Counts a keyspace hit or miss.
fn read_set<'g>(
    ctx: &Ctx<'_>,
    g: &'g mut Guard<'_>,
    key: &[u8],
) -> Result<Option<&'g SetValue>, CmdError> {
    let found = g.get(key);
    ctx.srv.stats.hit(found.is_some());
    match found {
        None => Ok(None),
        Some(Value::Set(s)) => Ok(Some(s)),
        Some(_) => Err(CmdError::WrongType),
    }
}

/// Stores a computed set under `dst` (dropping any TTL, as `setKey`), or
/// deletes `dst` when the set is empty, then sends Redis's notification:
/// `event` for a stored set, `del` when an empty result deleted a key.
/// Returns the stored size.
fn store(
    ctx: &mut Ctx<'_>,
    mut g: Guard<'_>,
    dst: &[u8],
    set: SetValue,
    event: &str,
) -> Result<usize, CmdError> {
    let n = set.len();
    if n == 0 {
        let deleted = g.delete_key(dst);
        drop(g);
        if deleted {
            ctx.notify(notify::GENERIC, "del", dst);
        }
    } else {
        g.set(dst, Value::from(set), SetExpiry::Persist)?;
        drop(g);
        ctx.notify(notify::SET, event, dst);
    }
    Ok(n)
}

fn sadd(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = arg(args, 1);
    let members = args.get(2..).unwrap_or_default();
    let max = max_intset(ctx);
    let mut g = ctx.lock_one(key)?;
    let added = match g.get_mut(key) {
        Some(Value::Set(s)) => {
            let n = members.iter().filter(|m| s.add(m, max)).count();
            if n == 0 {
                g.unchanged(key);
            }
            n
        }
        Some(_) => return Err(CmdError::WrongType),
        None => {
            let mut s = SetValue::new_for(arg(args, 2));
            let n = members.iter().filter(|m| s.add(m, max)).count();
            g.set(key, Value::from(s), SetExpiry::Persist)?;
            n
        }
    };
    drop(g);
    if added > 0 {
        ctx.notify(notify::SET, "sadd", key);
    }
    ctx.out.int(added as i64);
    Ok(())
}

fn srem(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = arg(args, 1);
    let mut g = ctx.lock_one(key)?;
    let (removed, emptied) = match g.get_mut(key) {
        None => (0, false),
        Some(Value::Set(s)) => {
            let mut n = 0i64;
            for m in args.get(2..).unwrap_or_default() {
                if s.remove(m) {
                    n += 1;
                    if s.is_empty() {
                        break;
                    }
                }
            }
            (n, s.is_empty())
        }
        Some(_) => return Err(CmdError::WrongType),
    };
    if emptied {
        g.remove(key);
    } else if removed == 0 {
        g.unchanged(key);
    }
    drop(g);
    if removed > 0 {
        ctx.notify(notify::SET, "srem", key);
        if emptied {
            ctx.notify(notify::GENERIC, "del", key);
        }
    }
    ctx.out.int(removed);
    Ok(())
}

fn smembers(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    sinter(ctx, args)
}

fn sismember(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = arg(args, 1);
    let mut g = ctx.lock_one(key)?;
    let found = read_set(ctx, &mut g, key)?.is_some_and(|s| s.contains(arg(args, 2)));
    ctx.out.int(i64::from(found));
    Ok(())
}

fn smismember(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = arg(args, 1);
    let members = args.get(2..).unwrap_or_default();
    let mut g = ctx.lock_one(key)?;
    let s = read_set(ctx, &mut g, key)?;
    ctx.out.array(members.len());
    for m in members {
        ctx.out.int(i64::from(s.is_some_and(|s| s.contains(m))));
    }
    Ok(())
}

fn scard(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = arg(args, 1);
    let mut g = ctx.lock_one(key)?;
    let n = read_set(ctx, &mut g, key)?.map_or(0, SetValue::len);
    ctx.out.int(n as i64);
    Ok(())
}

/// `SPOP_MOVE_STRATEGY_MUL`: when few members would remain, Redis builds a
/// new set from the survivors instead of removing the popped ones.
const SPOP_MOVE_STRATEGY_MUL: usize = 5;

fn spop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = arg(args, 1);
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = match args.get(2) {
        None => None,
        Some(a) => Some(
            args::parse_i64(a)
                .filter(|&c| c >= 0)
                .ok_or_else(|| CmdError::err("value is out of range, must be positive"))?,
        ),
    };
    let max = max_intset(ctx);
    let mut g = ctx.lock_one(key)?;
    let rng = &mut rand::thread_rng();
    let s = match g.get_mut(key) {
        Some(Value::Set(s)) => s,
        Some(_) => return Err(CmdError::WrongType),
        None => {
            match count {
                None => ctx.out.null(),
                Some(_) => ctx.out.set(0),
            }
            return Ok(());
        }
    };
    let Some(count) = count else {
        match s.pop_random(rng) {
            Some(m) => ctx.out.bulk(&m),
            None => ctx.out.null(),
        }
        let emptied = s.is_empty();
        if emptied {
            g.remove(key);
        }
        drop(g);
        ctx.notify(notify::SET, "spop", key);
        if emptied {
            ctx.notify(notify::GENERIC, "del", key);
        }
        return Ok(());
    };
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    if count == 0 {
        ctx.out.set(0);
        return Ok(());
    }
    let size = s.len();
    ctx.notify(notify::SET, "spop", key);
    if count >= size {
        // The whole set, as a fresh union of it (Redis replies through
        // SUNION, so an all-integer hashtable answers in intset order).
        let mut all = SetValue::default();
        for m in s.iter() {
            all.add_member(m, max);
        }
        ctx.out.set(all.len());
        for m in all.iter() {
            member(ctx.out, m);
        }
        g.remove(key);
        drop(g);
        ctx.notify(notify::GENERIC, "del", key);
        return Ok(());
    }
    ctx.out.set(count);
    let remaining = size - count;
    if remaining.saturating_mul(SPOP_MOVE_STRATEGY_MUL) > count {
        for _ in 0..count {
            if let Some(m) = s.pop_random(rng) {
                ctx.out.bulk(&m);
            }
        }
    } else {
        // Keep `remaining` random members in a new set (which may take the
        // intset encoding again), reply with the others in set order.
        let keep = index::sample(rng, size, remaining).into_vec();
        let mut kept = vec![false; size];
        let mut new = SetValue::default();
        for (n, &i) in keep.iter().enumerate() {
            if let Some(m) = s.at(i) {
                if n == 0 {
                    new = SetValue::new_for(&m.to_vec());
                }
                new.add_member(m, max);
            }
            if let Some(k) = kept.get_mut(i) {
                *k = true;
            }
        }
        for (i, m) in s.iter().enumerate() {
            if !kept.get(i).copied().unwrap_or(true) {
                member(ctx.out, m);
            }
        }
        **s = new;
    }
    Ok(())
}

fn srandmember(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = arg(args, 1);
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let rng = &mut rand::thread_rng();
    let Some(count_arg) = args.get(2) else {
        let mut g = ctx.lock_one(key)?;
        match read_set(ctx, &mut g, key)?.and_then(|s| s.random(rng)) {
            Some(m) => member(ctx.out, m),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    let l = signed_count(count_arg)?;
    let mut g = ctx.lock_one(key)?;
    let Some(s) = read_set(ctx, &mut g, key)? else {
        ctx.out.array(0);
        return Ok(());
    };
    let count = l.unsigned_abs();
    let size = s.len();
    let limit = ReplyLimit::of(ctx);
    let out = &mut *ctx.out;
    if count == 0 {
        out.array(0);
    } else if l < 0 || count == 1 {
        // Any count is allowed here: the output limit decides.
        if !limit.may_fit(out, count, MIN_PICK) {
            drop(g);
            reply_limit::close_client(ctx);
            return Ok(());
        }
        out.array(usize::try_from(count).unwrap_or(usize::MAX));
        for _ in 0..count {
            if let Some(m) = s.random(rng) {
                member(out, m);
            }
            if limit.exceeded(out) {
                drop(g);
                reply_limit::close_client(ctx);
                return Ok(());
            }
        }
    } else if count >= size as u64 {
        out.array(size);
        for m in s.iter() {
            member(out, m);
        }
    } else {
        out.array(count as usize);
        for i in index::sample(rng, size, count as usize) {
            if let Some(m) = s.at(i) {
                member(out, m);
            }
        }
    }
    Ok(())
}

fn smove(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (src, dst, m) = (arg(args, 1), arg(args, 2), arg(args, 3));
    let max = max_intset(ctx);
    let mut g = ctx.lock([src, dst])?;
    match g.get(src) {
        None => {
            ctx.out.int(0);
            return Ok(());
        }
        Some(Value::Set(_)) => {}
        Some(_) => return Err(CmdError::WrongType),
    }
    let dst_exists = match g.get(dst) {
        None => false,
        Some(Value::Set(_)) => true,
        Some(_) => return Err(CmdError::WrongType),
    };
    if src == dst {
        let found = matches!(g.get(src), Some(Value::Set(s)) if s.contains(m));
        ctx.out.int(i64::from(found));
        return Ok(());
    }
    let (removed, emptied) = match g.get_mut(src) {
        Some(Value::Set(s)) => (s.remove(m), s.is_empty()),
        _ => (false, false),
    };
    if !removed {
        g.unchanged(src);
        ctx.out.int(0);
        return Ok(());
    }
    if emptied {
        g.remove(src);
    }
    let added = if dst_exists {
        let added = match g.get_mut(dst) {
            Some(Value::Set(s)) => s.add(m, max),
            _ => false,
        };
        if !added {
            // Already a member: Redis signals only the source.
            g.unchanged(dst);
        }
        added
    } else {
        let mut s = SetValue::new_for(m);
        s.add(m, max);
        g.set(dst, Value::from(s), SetExpiry::Persist)?;
        true
    };
    drop(g);
    ctx.notify(notify::SET, "srem", src);
    if emptied {
        ctx.notify(notify::GENERIC, "del", src);
    }
    if added {
        ctx.notify(notify::SET, "sadd", dst);
    }
    ctx.out.int(1);
    Ok(())
}

/// Looks up every key as a set (missing keys are `None`), checking types in
/// key order as Redis does. Returns each key's cardinality.
fn cardinalities(
    ctx: &Ctx<'_>,
    g: &mut Guard<'_>,
    keys: &[&[u8]],
) -> Result<Vec<Option<usize>>, CmdError> {
    keys.iter()
        .map(|k| Ok(read_set(ctx, g, k)?.map(SetValue::len)))
        .collect()
}

/// The intersection of `keys` (all known to exist), in the iteration order
/// of the smallest set, stopping after `limit` members if non-zero.
fn intersect(g: &mut Guard<'_>, keys: &[&[u8]], sizes: &[usize], limit: usize) -> Vec<MemberBuf> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&i| sizes.get(i).copied().unwrap_or(0));
    let Some((&first, rest)) = order.split_first() else {
        return Vec::new();
    };
    let first_key = keys.get(first).copied().unwrap_or_default();
    let mut candidates: Vec<MemberBuf> = match g.get(first_key) {
        Some(Value::Set(s)) => s.iter().map(Member::to_buf).collect(),
        _ => Vec::new(),
    };
    let others: Vec<&[u8]> = rest
        .iter()
        .filter_map(|&i| keys.get(i).copied())
        .filter(|k| *k != first_key)
        .collect();
    // Filter set by set: each other set is looked up once (a cold set is
    // decoded once, not once per candidate), then the limit applies.
    for k in others {
        if candidates.is_empty() {
            break;
        }
        if let Some(Value::Set(s)) = g.get(k) {
            candidates.retain(|m| s.contains_member(m.as_member()));
        }
    }
    if limit > 0 {
        candidates.truncate(limit);
    }
    candidates
}

/// SINTER, SMEMBERS (`SMEMBERS k` is `SINTER k` in Redis 7.0).
fn sinter(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let keys = args.get(1..).unwrap_or_default();
    let mut g = ctx.lock(keys.iter().copied())?;
    let sizes = cardinalities(ctx, &mut g, keys)?;
    let Some(sizes) = sizes.into_iter().collect::<Option<Vec<_>>>() else {
        ctx.out.set(0);
        return Ok(());
    };
    if let [only] = keys {
        // One set: stream it without copying.
        if let Some(Value::Set(s)) = g.get(only) {
            ctx.out.set(s.len());
            for m in s.iter() {
                member(ctx.out, m);
            }
            return Ok(());
        }
    }
    let found = intersect(&mut g, keys, &sizes, 0);
    drop(g);
    ctx.out.set(found.len());
    for m in &found {
        member(ctx.out, m.as_member());
    }
    Ok(())
}

fn sintercard(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let numkeys = args::parse_i64(arg(args, 1))
        .filter(|&n| n >= 1)
        .ok_or_else(|| CmdError::err("numkeys should be greater than 0"))?;
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if numkeys > args.len() - 2 {
        return Err(CmdError::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    let keys = args.get(2..2 + numkeys).unwrap_or_default();
    let mut limit = 0usize;
    let mut j = 2 + numkeys;
    while j < args.len() {
        if args::is(arg(args, j), "LIMIT") && j + 1 < args.len() {
            j += 1;
            let l = args::parse_i64(arg(args, j))
                .filter(|&l| l >= 0)
                .ok_or_else(|| CmdError::err("LIMIT can't be negative"))?;
            limit = usize::try_from(l).unwrap_or(usize::MAX);
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let mut g = ctx.lock(keys.iter().copied())?;
    let sizes = cardinalities(ctx, &mut g, keys)?;
    let n = match sizes.into_iter().collect::<Option<Vec<_>>>() {
        None => 0,
        Some(sizes) => intersect(&mut g, keys, &sizes, limit).len(),
    };
    drop(g);
    ctx.out.int(n as i64);
    Ok(())
}

fn sinterstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let dst = arg(args, 1);
    let keys = args.get(2..).unwrap_or_default();
    let max = max_intset(ctx);
    let mut g = ctx.lock(args.get(1..).unwrap_or_default().iter().copied())?;
    let sizes = cardinalities(ctx, &mut g, keys)?;
    let mut result = SetValue::default();
    if let Some(sizes) = sizes.into_iter().collect::<Option<Vec<_>>>() {
        for m in intersect(&mut g, keys, &sizes, 0) {
            result.add_member(m.as_member(), max);
        }
    }
    let n = store(ctx, g, dst, result, "sinterstore")?;
    ctx.out.int(n as i64);
    Ok(())
}

/// Whether a set operation is a union or a difference.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Diff,
}

/// SUNION/SDIFF into a fresh set, the way Redis's
/// `sunionDiffGenericCommand` builds it (including its choice of
/// difference algorithm, which decides the result's encoding).
fn union_diff(
    ctx: &Ctx<'_>,
    g: &mut Guard<'_>,
    keys: &[&[u8]],
    op: Op,
) -> Result<SetValue, CmdError> {
    let max = max_intset(ctx);
    let sizes = cardinalities(ctx, g, keys)?;
    let mut result = SetValue::default();
    let first = keys.first().copied().unwrap_or_default();
    let first_size = sizes.first().copied().flatten();
    match op {
        Op::Union => {
            for (k, size) in keys.iter().zip(&sizes) {
                if size.is_none() {
                    continue;
                }
                if let Some(Value::Set(s)) = g.get(k) {
                    for m in s.iter() {
                        result.add_member(m, max);
                    }
                }
            }
        }
        Op::Diff => {
            let Some(first_size) = first_size else {
                return Ok(result);
            };
            let others: Vec<&[u8]> = keys
                .iter()
                .zip(&sizes)
                .skip(1)
                .filter(|(_, s)| s.is_some())
                .map(|(k, _)| *k)
                .collect();
            if others.contains(&first) {
                return Ok(result);
            }
            let present = 1 + others.len();
            let algo_one = (first_size as u64 * present as u64) / 2;
            let algo_two: u64 = sizes.iter().flatten().map(|&n| n as u64).sum();
            let members: Vec<MemberBuf> = match g.get(first) {
                Some(Value::Set(s)) => s.iter().map(Member::to_buf).collect(),
                _ => Vec::new(),
            };
            if algo_one <= algo_two {
                // Algorithm 1: add the members of the first set found in no other.
                let mut keep = vec![true; members.len()];
                for k in &others {
                    if let Some(Value::Set(s)) = g.get(k) {
                        for (m, keep) in members.iter().zip(keep.iter_mut()) {
                            if *keep && s.contains_member(m.as_member()) {
                                *keep = false;
                            }
                        }
                    }
                }
                for (m, keep) in members.iter().zip(keep) {
                    if keep {
                        result.add_member(m.as_member(), max);
                    }
                }
            } else {
                // Algorithm 2: add the first set, remove every other's members.
                for m in &members {
                    result.add_member(m.as_member(), max);
                }
                for k in &others {
                    if result.is_empty() {
                        break;
                    }
                    if let Some(Value::Set(s)) = g.get(k) {
                        for m in s.iter() {
                            result.remove_member(m);
                        }
                    }
                }
            }
        }
    }
    Ok(result)
}

fn union_diff_reply(ctx: &mut Ctx<'_>, args: &[&[u8]], op: Op) -> CmdResult {
    let keys = args.get(1..).unwrap_or_default();
    let mut g = ctx.lock(keys.iter().copied())?;
    let result = union_diff(ctx, &mut g, keys, op)?;
    drop(g);
    ctx.out.set(result.len());
    for m in result.iter() {
        member(ctx.out, m);
    }
    Ok(())
}

fn union_diff_store(ctx: &mut Ctx<'_>, args: &[&[u8]], op: Op) -> CmdResult {
    let dst = arg(args, 1);
    let keys = args.get(2..).unwrap_or_default();
    let mut g = ctx.lock(args.get(1..).unwrap_or_default().iter().copied())?;
    let result = union_diff(ctx, &mut g, keys, op)?;
    let event = match op {
        Op::Union => "sunionstore",
        Op::Diff => "sdiffstore",
    };
    let n = store(ctx, g, dst, result, event)?;
    ctx.out.int(n as i64);
    Ok(())
}

fn sunion(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    union_diff_reply(ctx, args, Op::Union)
}

fn sdiff(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    union_diff_reply(ctx, args, Op::Diff)
}

fn sunionstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    union_diff_store(ctx, args, Op::Union)
}

fn sdiffstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    union_diff_store(ctx, args, Op::Diff)
}

fn sscan(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = arg(args, 1);
    let cursor =
        super::keys::parse_cursor(arg(args, 2)).ok_or_else(|| CmdError::err("invalid cursor"))?;
    let mut g = ctx.lock_one(key)?;
    let Some(s) = read_set(ctx, &mut g, key)? else {
        empty_scan(ctx);
        return Ok(());
    };
    let (count, pattern) = scan_options(args.get(3..).unwrap_or_default())?;
    let (next, found) = s.scan(cursor, count);
    let kept: Vec<Member<'_>> = match pattern {
        None => found,
        Some(p) => found
            .into_iter()
            .filter(|m| match m {
                Member::Int(i) => {
                    glob::matches(p, itoa::Buffer::new().format(*i).as_bytes(), false)
                }
                Member::Bytes(b) => glob::matches(p, b, false),
            })
            .collect(),
    };
    ctx.out.array(2);
    ctx.out.bulk(itoa::Buffer::new().format(next).as_bytes());
    ctx.out.array(kept.len());
    for m in kept {
        member(ctx.out, m);
    }
    Ok(())
}
