//! Hash commands: HSET HSETNX HGET HMGET HMSET HDEL HLEN HSTRLEN HEXISTS
//! HGETALL HKEYS HVALS HINCRBY HINCRBYFLOAT HRANDFIELD HSCAN.
//!
//! Semantics, reply shapes and error texts follow Redis 7.0's `t_hash.c`.
//! Read commands count keyspace hits and misses; write lookups count nothing.
//! The listpack/hashtable thresholds are read from the configuration each
//! time a command may convert, so `CONFIG SET` applies at once.

use amber_storage::glob;
use amber_storage::types::hash::HashLimits;
use amber_storage::{Guard, SetExpiry, Value};
use rand::seq::index;

use super::args::{self, is};
use super::error::{CmdError, CmdResult};
use super::reply_limit::{self, ReplyLimit, MIN_PICK, MIN_PICK_WITH_VALUE};
use super::{Ctx, Handler};
use crate::config::HotConfig;
use crate::notify;
use crate::resp::Protocol;

use super::strings::long_double::{LongDouble, Parsed};

use amber_storage::types::HashValue;

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("hset", hset),
    ("hmset", hset),
    ("hsetnx", hsetnx),
    ("hget", hget),
    ("hmget", hmget),
    ("hdel", hdel),
    ("hlen", hlen),
    ("hstrlen", hstrlen),
    ("hexists", hexists),
    ("hgetall", hgetall),
    ("hkeys", hkeys),
    ("hvals", hvals),
    ("hincrby", hincrby),
    ("hincrbyfloat", hincrbyfloat),
    ("hrandfield", hrandfield),
    ("hscan", hscan),
];

/// The argument at `i` (empty when missing; the dispatcher checked arity).
fn arg<'a>(args: &[&'a [u8]], i: usize) -> &'a [u8] {
    args.get(i).copied().unwrap_or_default()
}

/// The current `hash-max-listpack-*` thresholds.
pub(super) fn limits(ctx: &Ctx<'_>) -> HashLimits {
    HashLimits {
        max_entries: HotConfig::count(&ctx.srv.config.hot.hash_max_listpack_entries),
        max_value: HotConfig::count(&ctx.srv.config.hot.hash_max_listpack_value),
    }
}

/// The hash at `key` for a read: `Ok(None)` when absent, `WRONGTYPE` for
/// another type. Counts a keyspace hit or miss.
fn read_hash<'g>(
    ctx: &Ctx<'_>,
    g: &'g mut Guard<'_>,
    key: &[u8],
) -> Result<Option<&'g HashValue>, CmdError> {
    let found = g.get(key);
    ctx.srv.stats.hit(found.is_some());
    match found {
        None => Ok(None),
        Some(Value::Hash(h)) => Ok(Some(h)),
        Some(_) => Err(CmdError::WrongType),
    }
}

/// Runs `f` on the hash at `key`, creating an empty one if the key is
/// absent (stored only if `f` left it non-empty). `WRONGTYPE` for another
/// type; `f`'s error leaves a created hash unstored.
fn with_hash_or_create<T>(
    g: &mut Guard<'_>,
    key: &[u8],
    f: impl FnOnce(&mut HashValue) -> Result<T, CmdError>,
) -> Result<T, CmdError> {
    match g.get_mut(key) {
        Some(Value::Hash(h)) => f(h),
        Some(_) => Err(CmdError::WrongType),
        None => {
            let mut h = HashValue::default();
            let r = f(&mut h)?;
            if !h.is_empty() {
                g.set(key, Value::from(h), SetExpiry::Persist)?;
            }
            Ok(r)
        }
    }
}

/// HSET and HMSET (`HMSET` replies `+OK` instead of the count of new fields).
fn hset(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    if args.len() % 2 == 1 {
        let name = String::from_utf8_lossy(arg(args, 0)).to_lowercase();
        return Err(CmdError::Arity(name));
    }
    let key = arg(args, 1);
    let pairs = args.get(2..).unwrap_or_default();
    let limits = limits(ctx);
    let mut g = ctx.lock_one(key)?;
    let created = with_hash_or_create(&mut g, key, |h| {
        h.convert_for_lengths(pairs.iter().copied(), limits.max_value);
        Ok(pairs
            .chunks_exact(2)
            .filter(|p| matches!(p, [f, v] if h.insert(f, v, limits)))
            .count())
    })?;
    drop(g);
    if arg(args, 0)
        .get(1)
        .is_some_and(|c| c.eq_ignore_ascii_case(&b's'))
    {
        ctx.out.int(created as i64);
    } else {
        ctx.out.ok();
    }
    ctx.notify(notify::HASH, "hset", key);
    Ok(())
}

fn hsetnx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, field, value) = (arg(args, 1), arg(args, 2), arg(args, 3));
    let limits = limits(ctx);
    let mut g = ctx.lock_one(key)?;
    let set = with_hash_or_create(&mut g, key, |h| {
        if h.contains(field) {
            return Ok(false);
        }
        h.convert_for_lengths([field, value], limits.max_value);
        h.insert(field, value, limits);
        Ok(true)
    })?;
    if !set {
        g.unchanged(key);
    }
    drop(g);
    ctx.out.int(i64::from(set));
    if set {
        ctx.notify(notify::HASH, "hset", key);
    }
    Ok(())
}

fn hget(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, field) = (arg(args, 1), arg(args, 2));
    let mut g = ctx.lock_one(key)?;
    match read_hash(ctx, &mut g, key)?.and_then(|h| h.get(field)) {
        Some(v) => ctx.out.bulk(v),
        None => ctx.out.null(),
    }
    Ok(())
}

fn hmget(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = arg(args, 1);
    let fields = args.get(2..).unwrap_or_default();
    let mut g = ctx.lock_one(key)?;
    let h = read_hash(ctx, &mut g, key)?;
    ctx.out.array(fields.len());
    for f in fields {
        match h.and_then(|h| h.get(f)) {
            Some(v) => ctx.out.bulk(v),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

fn hdel(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = arg(args, 1);
    let mut g = ctx.lock_one(key)?;
    let (deleted, emptied) = match g.get_mut(key) {
        None => (0, false),
        Some(Value::Hash(h)) => {
            let mut n = 0i64;
            for f in args.get(2..).unwrap_or_default() {
                if h.remove(f) {
                    n += 1;
                    if h.is_empty() {
                        break;
                    }
                }
            }
            (n, h.is_empty())
        }
        Some(_) => return Err(CmdError::WrongType),
    };
    if emptied {
        g.remove(key);
    } else if deleted == 0 {
        g.unchanged(key);
    }
    drop(g);
    if deleted > 0 {
        ctx.notify(notify::HASH, "hdel", key);
        if emptied {
            ctx.notify(notify::GENERIC, "del", key);
        }
    }
    ctx.out.int(deleted);
    Ok(())
}

fn hlen(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = arg(args, 1);
    let mut g = ctx.lock_one(key)?;
    let n = read_hash(ctx, &mut g, key)?.map_or(0, HashValue::len);
    ctx.out.int(n as i64);
    Ok(())
}

fn hstrlen(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, field) = (arg(args, 1), arg(args, 2));
    let mut g = ctx.lock_one(key)?;
    let n = read_hash(ctx, &mut g, key)?
        .and_then(|h| h.get(field))
        .map_or(0, <[u8]>::len);
    ctx.out.int(n as i64);
    Ok(())
}

fn hexists(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, field) = (arg(args, 1), arg(args, 2));
    let mut g = ctx.lock_one(key)?;
    let found = read_hash(ctx, &mut g, key)?.is_some_and(|h| h.contains(field));
    ctx.out.int(i64::from(found));
    Ok(())
}

/// What HGETALL, HKEYS and HVALS reply with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Parts {
    Both,
    Fields,
    Values,
}

fn hgetall_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], parts: Parts) -> CmdResult {
    let key = arg(args, 1);
    let mut g = ctx.lock_one(key)?;
    let h = read_hash(ctx, &mut g, key)?;
    let n = h.map_or(0, HashValue::len);
    if parts == Parts::Both {
        ctx.out.map(n);
    } else {
        ctx.out.array(n);
    }
    for (f, v) in h.into_iter().flat_map(HashValue::iter) {
        if parts != Parts::Values {
            ctx.out.bulk(f);
        }
        if parts != Parts::Fields {
            ctx.out.bulk(v);
        }
    }
    Ok(())
}

fn hgetall(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    hgetall_generic(ctx, args, Parts::Both)
}

fn hkeys(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    hgetall_generic(ctx, args, Parts::Fields)
}

fn hvals(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    hgetall_generic(ctx, args, Parts::Values)
}

fn hincrby(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, field) = (arg(args, 1), arg(args, 2));
    let by = args::int(arg(args, 3))?;
    let limits = limits(ctx);
    let mut g = ctx.lock_one(key)?;
    let value = with_hash_or_create(&mut g, key, |h| {
        let old = match h.get(field) {
            Some(v) => {
                args::parse_i64(v).ok_or_else(|| CmdError::err("hash value is not an integer"))?
            }
            None => 0,
        };
        let new = old
            .checked_add(by)
            .ok_or_else(|| CmdError::err("increment or decrement would overflow"))?;
        h.insert(field, itoa::Buffer::new().format(new).as_bytes(), limits);
        Ok(new)
    })?;
    drop(g);
    ctx.out.int(value);
    ctx.notify(notify::HASH, "hincrby", key);
    Ok(())
}

fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, field) = (arg(args, 1), arg(args, 2));
    let by = match LongDouble::parse(arg(args, 3)) {
        Some(Parsed::Finite(v)) => v,
        Some(Parsed::Infinite) => return Err(CmdError::err("value is NaN or Infinity")),
        None => return Err(CmdError::NotFloat),
    };
    let limits = limits(ctx);
    let mut g = ctx.lock_one(key)?;
    let text = with_hash_or_create(&mut g, key, |h| {
        let old = match h.get(field) {
            None => Some(LongDouble::from_i64(0)),
            Some(v) => match LongDouble::parse(v) {
                Some(Parsed::Finite(v)) => Some(v),
                Some(Parsed::Infinite) => None,
                None => return Err(CmdError::err("hash value is not a float")),
            },
        };
        let sum = old
            .and_then(|o| o.add(by))
            .ok_or_else(|| CmdError::err("increment would produce NaN or Infinity"))?;
        let text = sum.to_human();
        h.insert(field, text.as_bytes(), limits);
        Ok(text)
    })?;
    drop(g);
    ctx.out.bulk(text.as_bytes());
    ctx.notify(notify::HASH, "hincrbyfloat", key);
    Ok(())
}

/// Redis's `getRangeLongFromObjectOrReply(-LONG_MAX, LONG_MAX)` for a count.
pub fn signed_count(a: &[u8]) -> Result<i64, CmdError> {
    let v = args::int(a)?;
    if v == i64::MIN {
        return Err(CmdError::err(format!(
            "value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        )));
    }
    Ok(v)
}

fn hrandfield(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = arg(args, 1);
    if args.len() < 3 {
        let mut g = ctx.lock_one(key)?;
        let h = read_hash(ctx, &mut g, key)?;
        match h.and_then(|h| h.random(&mut rand::thread_rng())) {
            Some((f, _)) => ctx.out.bulk(f),
            None => ctx.out.null(),
        }
        return Ok(());
    }
    let l = signed_count(arg(args, 2))?;
    let withvalues = match args.get(3) {
        None => false,
        Some(a) if args.len() == 4 && is(a, "withvalues") => true,
        Some(_) => return Err(CmdError::Syntax),
    };
    if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
        return Err(CmdError::err("value is out of range"));
    }
    let mut g = ctx.lock_one(key)?;
    let Some(h) = read_hash(ctx, &mut g, key)? else {
        ctx.out.array(0);
        return Ok(());
    };
    let count = l.unsigned_abs();
    if count == 0 {
        ctx.out.array(0);
        return Ok(());
    }
    let resp3 = ctx.out.proto == Protocol::Resp3;
    let limit = ReplyLimit::of(ctx);
    let out = &mut *ctx.out;
    let pair = |out: &mut crate::resp::ReplyWriter, f: &[u8], v: &[u8]| {
        if withvalues && resp3 {
            out.array(2);
        }
        out.bulk(f);
        if withvalues {
            out.bulk(v);
        }
    };
    let size = h.len();
    let rng = &mut rand::thread_rng();
    let header = |out: &mut crate::resp::ReplyWriter, n: u64| {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        out.array(if withvalues && !resp3 { n * 2 } else { n });
    };
    if l < 0 || count == 1 {
        // Any count is allowed here: the output limit decides.
        let min_pick = if withvalues {
            MIN_PICK_WITH_VALUE
        } else {
            MIN_PICK
        };
        if !limit.may_fit(out, count, min_pick) {
            drop(g);
            reply_limit::close_client(ctx);
            return Ok(());
        }
        header(out, count);
        for _ in 0..count {
            if let Some((f, v)) = h.random(rng) {
                pair(out, f, v);
            }
            if limit.exceeded(out) {
                drop(g);
                reply_limit::close_client(ctx);
                return Ok(());
            }
        }
    } else if count >= size as u64 {
        header(out, size as u64);
        for (f, v) in h.iter() {
            pair(out, f, v);
        }
    } else {
        header(out, count);
        for i in index::sample(rng, size, count as usize) {
            if let Some((f, v)) = h.at(i) {
                pair(out, f, v);
            }
        }
    }
    Ok(())
}

/// The options of HSCAN/SSCAN after the cursor: `(count, pattern)`, with
/// Redis's errors; `*` means no pattern.
pub fn scan_options<'a>(args: &[&'a [u8]]) -> Result<(usize, Option<&'a [u8]>), CmdError> {
    let mut count: i64 = 10;
    let mut pattern = None;
    let mut i = 0;
    while i < args.len() {
        let (opt, value) = (arg(args, i), args.get(i + 1).copied());
        match value {
            Some(v) if is(opt, "COUNT") => {
                count = args::int(v)?;
                if count < 1 {
                    return Err(CmdError::Syntax);
                }
            }
            Some(v) if is(opt, "MATCH") => pattern = (v != b"*").then_some(v),
            _ => return Err(CmdError::Syntax),
        }
        i += 2;
    }
    Ok((usize::try_from(count).unwrap_or(usize::MAX), pattern))
}

/// The empty scan reply, `["0", []]`.
pub fn empty_scan(ctx: &mut Ctx<'_>) {
    ctx.out.array(2);
    ctx.out.bulk(b"0");
    ctx.out.array(0);
}

fn hscan(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = arg(args, 1);
    let cursor =
        super::keys::parse_cursor(arg(args, 2)).ok_or_else(|| CmdError::err("invalid cursor"))?;
    let mut g = ctx.lock_one(key)?;
    let Some(h) = read_hash(ctx, &mut g, key)? else {
        empty_scan(ctx);
        return Ok(());
    };
    let (count, pattern) = scan_options(args.get(3..).unwrap_or_default())?;
    let (next, found) = h.scan(cursor, count);
    let kept: Vec<_> = found
        .into_iter()
        .filter(|(f, _)| pattern.is_none_or(|p| glob::matches(p, f, false)))
        .collect();
    ctx.out.array(2);
    ctx.out.bulk(itoa::Buffer::new().format(next).as_bytes());
    ctx.out.array(kept.len() * 2);
    for (f, v) in kept {
        ctx.out.bulk(f);
        ctx.out.bulk(v);
    }
    Ok(())
}
