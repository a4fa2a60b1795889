//! Sorted-set commands, transcribed from Redis 7.0's `t_zset.c`: same
//! argument order of checks, same error texts, same replies in RESP2 and
//! RESP3.
//!
//! The blocking `BZPOPMIN`, `BZPOPMAX` and `BZMPOP` use the registry of
//! [`crate::blocking`]. As in Redis 7.0 (`signalKeyAsReady` in `dbAdd`),
//! their waiters are served only when a write *creates* a sorted set at a
//! waited key (`ZADD`, `ZINCRBY`, the `*STORE` commands onto a new key).

use crate::config::HotConfig;
use amber_storage::types::zset::{
    AddFlags, AddOutcome, LexItem, LexRange, ListpackLimits, ScoreRange, ZSetValue,
};
use amber_storage::types::SetValue;
use amber_storage::{glob, Guard, SetExpiry, Value};
use rand::Rng;
use std::time::Instant;

use super::args::{self, is};
use super::error::{CmdError, CmdResult};
use super::keys::parse_cursor;
use super::reply_limit::{self, ReplyLimit, MIN_PICK, MIN_PICK_WITH_VALUE};
use super::{Ctx, Handler};
use crate::blocking::{self, BlockedOp, Events, Outcome, PushGuard};
use crate::notify::{GENERIC, ZSET};
use crate::rdb::write::d2string;
use crate::resp::writer::format_double;
use crate::resp::{Protocol, ReplyWriter};

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("zadd", zadd),
    ("zincrby", zincrby),
    ("zrem", zrem),
    ("zcard", zcard),
    ("zscore", zscore),
    ("zmscore", zmscore),
    ("zrank", zrank),
    ("zrevrank", zrevrank),
    ("zcount", zcount),
    ("zlexcount", zlexcount),
    ("zrange", zrange),
    ("zrangestore", zrangestore),
    ("zrevrange", zrevrange),
    ("zrangebyscore", zrangebyscore),
    ("zrevrangebyscore", zrevrangebyscore),
    ("zrangebylex", zrangebylex),
    ("zrevrangebylex", zrevrangebylex),
    ("zremrangebyrank", zremrangebyrank),
    ("zremrangebyscore", zremrangebyscore),
    ("zremrangebylex", zremrangebylex),
    ("zpopmin", zpopmin),
    ("zpopmax", zpopmax),
    ("zmpop", zmpop),
    ("bzpopmin", bzpopmin),
    ("bzpopmax", bzpopmax),
    ("bzmpop", bzmpop),
    ("zunion", zunion),
    ("zinter", zinter),
    ("zdiff", zdiff),
    ("zunionstore", zunionstore),
    ("zinterstore", zinterstore),
    ("zdiffstore", zdiffstore),
    ("zintercard", zintercard),
    ("zrandmember", zrandmember),
    ("zscan", zscan),
];

const NAN_RESULT: &str = "ERR resulting score is not a number (NaN)";
const NOT_FLOAT_RANGE: &str = "ERR min or max is not a float";
const NOT_LEX_RANGE: &str = "ERR min or max not valid string range item";

/// The argument at `i` (empty when missing; the dispatcher checked arity).
fn arg<'a>(args: &[&'a [u8]], i: usize) -> &'a [u8] {
    args.get(i).copied().unwrap_or_default()
}

/// The listpack thresholds in force (Redis's defaults when unset).
pub(super) fn limits(ctx: &Ctx<'_>) -> ListpackLimits {
    let hot = &ctx.srv.config.hot;
    ListpackLimits {
        entries: HotConfig::count(&hot.zset_max_listpack_entries),
        value: HotConfig::count(&hot.zset_max_listpack_value),
    }
}

/// The sorted set at `key` for reading: `Ok(None)` when absent, `WRONGTYPE`
/// for another type. Counts a keyspace hit or miss.
pub(super) fn read<'g>(
    ctx: &Ctx<'_>,
    g: &'g mut Guard<'_>,
    key: &[u8],
) -> Result<Option<&'g ZSetValue>, CmdError> {
    let found = g.get(key);
    ctx.srv.stats.hit(found.is_some());
    match found {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(CmdError::WrongType),
    }
}

/// The sorted set at `key` for writing.
fn write<'g>(g: &'g mut Guard<'_>, key: &[u8]) -> Result<Option<&'g mut ZSetValue>, CmdError> {
    match g.get_mut(key) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(CmdError::WrongType),
    }
}

/// Checks the type of `key` without counting a lookup.
fn check_write_type(g: &mut Guard<'_>, key: &[u8]) -> Result<bool, CmdError> {
    match g.peek(key) {
        None => Ok(false),
        Some(Value::ZSet(_)) => Ok(true),
        Some(_) => Err(CmdError::WrongType),
    }
}

/// Removes `key` if its sorted set is empty; says whether it did.
fn drop_if_empty(g: &mut Guard<'_>, key: &[u8]) -> bool {
    matches!(g.peek(key), Some(Value::ZSet(z)) if z.is_empty()) && g.delete_key(key)
}

/// Stores a `*STORE` result at `dst` (an empty result deletes `dst`) and
/// sends Redis's notification: `event`, or `del` when an old `dst` went away.
/// A result stored at a new key wakes the clients blocked on it (`setKey`
/// calls `dbAdd`, which signals; overwriting does not).
pub(super) fn store_result(
    ctx: &mut Ctx<'_>,
    g: &mut PushGuard<'_>,
    dst: &[u8],
    result: ZSetValue,
    event: &'static str,
) -> Result<usize, CmdError> {
    let n = result.len();
    if n > 0 {
        let created = !g.exists(dst);
        g.set(dst, Value::from(result), SetExpiry::Persist)?;
        ctx.notify(ZSET, event, dst);
        if created {
            g.signal(ctx, dst);
        }
    } else if g.delete_key(dst) {
        ctx.notify(GENERIC, "del", dst);
    }
    Ok(n)
}

/// Writes elements as Redis's range replies do: members only, or with
/// scores flat (RESP2) or as `[member, score]` pairs (RESP3).
fn reply_elements<'a>(
    ctx: &mut Ctx<'_>,
    items: impl ExactSizeIterator<Item = (&'a [u8], f64)>,
    withscores: bool,
) {
    let resp3 = ctx.out.proto == Protocol::Resp3;
    let n = items.len();
    ctx.out.array(if withscores && !resp3 { n * 2 } else { n });
    for (m, s) in items {
        if withscores && resp3 {
            ctx.out.array(2);
        }
        ctx.out.bulk(m);
        if withscores {
            ctx.out.double(s);
        }
    }
}

// ---------------------------------------------------------------- ZADD

/// ZADD; GEOADD hands its arguments over as Redis's `geoaddCommand` does.
pub(super) fn zadd(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zadd_generic(ctx, args, false)
}

fn zincrby(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zadd_generic(ctx, args, true)
}

/// Redis's `zaddGenericCommand`: ZADD, and ZINCRBY (INCR preset).
fn zadd_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], incr: bool) -> CmdResult {
    let key = arg(args, 1);
    let mut flags = AddFlags {
        incr,
        ..Default::default()
    };
    let mut ch = false;
    let mut idx = 2;
    while idx < args.len() {
        let opt = arg(args, idx);
        if is(opt, "nx") {
            flags.nx = true;
        } else if is(opt, "xx") {
            flags.xx = true;
        } else if is(opt, "ch") {
            ch = true;
        } else if is(opt, "incr") {
            flags.incr = true;
        } else if is(opt, "gt") {
            flags.gt = true;
        } else if is(opt, "lt") {
            flags.lt = true;
        } else {
            break;
        }
        idx += 1;
    }
    let rest = args.get(idx..).unwrap_or_default();
    if rest.is_empty() || rest.len() % 2 != 0 {
        return Err(CmdError::Syntax);
    }
    if flags.nx && flags.xx {
        return Err(CmdError::err(
            "XX and NX options at the same time are not compatible",
        ));
    }
    if ((flags.gt || flags.lt) && flags.nx) || (flags.gt && flags.lt) {
        return Err(CmdError::err(
            "GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if flags.incr && rest.len() > 2 {
        return Err(CmdError::err(
            "INCR option supports a single increment-element pair",
        ));
    }
    let mut pairs = Vec::with_capacity(rest.len() / 2);
    for p in rest.chunks_exact(2) {
        let (s, m) = (
            p.first().copied().unwrap_or_default(),
            p.get(1).copied().unwrap_or_default(),
        );
        pairs.push((args::parse_score(s).ok_or(CmdError::NotFloat)?, m));
    }
    let lim = limits(ctx);
    let mut g = blocking::lock_for_push(ctx, &[key])?;
    let exists = check_write_type(&mut g, key)?;
    let (mut added, mut updated, mut processed) = (0i64, 0i64, 0i64);
    let mut last = 0.0;
    let mut nan = false;
    if exists || !flags.xx {
        if !exists {
            g.set(key, Value::from(ZSetValue::new()), SetExpiry::Persist)?;
        }
        if let Some(z) = write(&mut g, key)? {
            for &(score, member) in &pairs {
                match z.add(member, score, flags, lim) {
                    AddOutcome::Added(s) => {
                        added += 1;
                        processed += 1;
                        last = s;
                    }
                    AddOutcome::Updated(s) => {
                        updated += 1;
                        processed += 1;
                        last = s;
                    }
                    AddOutcome::Unchanged(s) => {
                        processed += 1;
                        last = s;
                    }
                    AddOutcome::Skipped => {}
                    AddOutcome::NotANumber => {
                        nan = true;
                        break;
                    }
                }
            }
        }
        drop_if_empty(&mut g, key);
    }
    if exists && added + updated == 0 {
        // Redis signals the key only when a member was added or updated.
        g.unchanged(key);
    }
    if added + updated > 0 {
        ctx.notify(ZSET, if flags.incr { "zincr" } else { "zadd" }, key);
    }
    // Redis signals blocked clients only when `dbAdd` creates the key.
    if !exists && g.exists(key) {
        g.signal(ctx, key);
    }
    g.finish(ctx);
    if nan {
        return Err(CmdError::msg(NAN_RESULT));
    }
    if flags.incr {
        if processed > 0 {
            ctx.out.double(last);
        } else {
            ctx.out.null();
        }
    } else {
        ctx.out.int(if ch { added + updated } else { added });
    }
    Ok(())
}

// ---------------------------------------------------------------- ZREM, reads

fn zrem(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = arg(args, 1);
    let mut g = ctx.lock_one(key)?;
    let mut deleted = 0i64;
    if let Some(z) = write(&mut g, key)? {
        for m in args.get(2..).unwrap_or_default() {
            if z.remove(m).is_some() {
                deleted += 1;
            }
            if z.is_empty() {
                break;
            }
        }
        let removed = drop_if_empty(&mut g, key);
        if deleted == 0 {
            g.unchanged(key);
        }
        if deleted > 0 {
            ctx.notify(ZSET, "zrem", key);
            if removed {
                ctx.notify(GENERIC, "del", key);
            }
        }
    }
    drop(g);
    ctx.out.int(deleted);
    Ok(())
}

fn zcard(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = arg(args, 1);
    let mut g = ctx.lock_one(key)?;
    let n = read(ctx, &mut g, key)?.map_or(0, |z| z.len());
    drop(g);
    ctx.out.int(n as i64);
    Ok(())
}

fn zscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = arg(args, 1);
    let mut g = ctx.lock_one(key)?;
    let s = read(ctx, &mut g, key)?.and_then(|z| z.score(arg(args, 2)));
    drop(g);
    match s {
        Some(s) => ctx.out.double(s),
        None => ctx.out.null(),
    }
    Ok(())
}

fn zmscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = arg(args, 1);
    let mut g = ctx.lock_one(key)?;
    let z = read(ctx, &mut g, key)?;
    let members = args.get(2..).unwrap_or_default();
    let scores: Vec<Option<f64>> = members.iter().map(|m| z.and_then(|z| z.score(m))).collect();
    drop(g);
    ctx.out.array(scores.len());
    for s in scores {
        match s {
            Some(s) => ctx.out.double(s),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

fn zrank(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zrank_generic(ctx, args, false)
}

fn zrevrank(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zrank_generic(ctx, args, true)
}

fn zrank_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], rev: bool) -> CmdResult {
    let key = arg(args, 1);
    let mut g = ctx.lock_one(key)?;
    let rank = read(ctx, &mut g, key)?.and_then(|z| {
        z.rank(arg(args, 2))
            .map(|r| if rev { z.len() - 1 - r } else { r })
    });
    drop(g);
    match rank {
        Some(r) => ctx.out.int(r as i64),
        None => ctx.out.null(),
    }
    Ok(())
}

// ---------------------------------------------------------------- ranges

/// Redis's `zslParseRange` for one end: `(` makes it exclusive, the rest is
/// read by `strtod` up to a NUL and must be consumed entirely.
fn parse_score_bound(a: &[u8]) -> Option<(f64, bool)> {
    let (ex, body) = match a.split_first() {
        Some((b'(', rest)) => (true, rest),
        _ => (false, a),
    };
    let c_len = body.iter().position(|&c| c == 0).unwrap_or(body.len());
    let (v, used, _) = args::strtod(body);
    (used == c_len && !v.is_nan()).then_some((v, ex))
}

fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, CmdError> {
    match (parse_score_bound(min), parse_score_bound(max)) {
        (Some((min, minex)), Some((max, maxex))) => Ok(ScoreRange {
            min,
            max,
            minex,
            maxex,
        }),
        _ => Err(CmdError::msg(NOT_FLOAT_RANGE)),
    }
}

/// Redis's `zslParseLexRangeItem`.
fn parse_lex_item(a: &[u8]) -> Option<(LexItem, bool)> {
    let second_is_end = a.get(1).is_none_or(|&c| c == 0);
    match a.split_first() {
        Some((b'+', _)) if second_is_end => Some((LexItem::Max, true)),
        Some((b'-', _)) if second_is_end => Some((LexItem::Min, true)),
        Some((b'(', rest)) => Some((LexItem::Str(rest.to_vec()), true)),
        Some((b'[', rest)) => Some((LexItem::Str(rest.to_vec()), false)),
        _ => None,
    }
}

fn parse_lex_range(min: &[u8], max: &[u8]) -> Result<LexRange, CmdError> {
    match (parse_lex_item(min), parse_lex_item(max)) {
        (Some((min, minex)), Some((max, maxex))) => Ok(LexRange {
            min,
            max,
            minex,
            maxex,
        }),
        _ => Err(CmdError::msg(NOT_LEX_RANGE)),
    }
}

fn zcount(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = arg(args, 1);
    let r = parse_score_range(arg(args, 2), arg(args, 3))?;
    let mut g = ctx.lock_one(key)?;
    let n = read(ctx, &mut g, key)?.map_or(0, |z| z.count_in_score_range(&r));
    drop(g);
    ctx.out.int(n as i64);
    Ok(())
}

fn zlexcount(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = arg(args, 1);
    let r = parse_lex_range(arg(args, 2), arg(args, 3))?;
    let mut g = ctx.lock_one(key)?;
    let n = read(ctx, &mut g, key)?.map_or(0, |z| z.count_in_lex_range(&r));
    drop(g);
    ctx.out.int(n as i64);
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}

/// A parsed range of any kind.
enum Range {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// Sanitizes `start..=end` ranks like Redis (negative from the end);
/// `None` when empty.
fn rank_bounds(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let llen = len as i64;
    let mut start = if start < 0 {
        llen.saturating_add(start)
    } else {
        start
    };
    let mut end = if end < 0 {
        llen.saturating_add(end)
    } else {
        end
    };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= llen {
        return None;
    }
    if end >= llen {
        end = llen - 1;
    }
    Some((start as usize, end as usize))
}

/// The elements a range selects, in reply order.
fn select<'z>(
    z: &'z ZSetValue,
    range: &Range,
    rev: bool,
    offset: i64,
    limit: i64,
) -> Vec<(&'z [u8], f64)> {
    // Redis walks `offset` steps (a negative offset walks off the end) and
    // then takes up to `limit` (negative: no limit) while in range.
    let take = |it: amber_storage::types::zset::Iter<'z>, inside: &dyn Fn(&[u8], f64) -> bool| {
        if offset < 0 {
            return Vec::new();
        }
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        it.skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(limit)
            .take_while(|(m, s)| inside(m, *s))
            .collect()
    };
    match range {
        Range::Rank(start, end) => {
            let Some((start, end)) = rank_bounds(*start, *end, z.len()) else {
                return Vec::new();
            };
            let first = if rev { z.len() - 1 - start } else { start };
            z.iter_from(first, rev).take(end - start + 1).collect()
        }
        Range::Score(r) => {
            if offset > 0 && offset as u64 >= z.len() as u64 {
                return Vec::new();
            }
            let first = if rev {
                z.last_in_score_range(r)
            } else {
                z.first_in_score_range(r)
            };
            match first {
                Some(i) if rev => take(z.iter_from(i, true), &|_, s| r.gte_min(s)),
                Some(i) => take(z.iter_from(i, false), &|_, s| r.lte_max(s)),
                None => Vec::new(),
            }
        }
        Range::Lex(r) => {
            let first = if rev {
                z.last_in_lex_range(r)
            } else {
                z.first_in_lex_range(r)
            };
            match first {
                Some(i) if rev => take(z.iter_from(i, true), &|m, _| r.gte_min(m)),
                Some(i) => take(z.iter_from(i, false), &|m, _| r.lte_max(m)),
                None => Vec::new(),
            }
        }
    }
}

/// Redis's `zrangeGenericCommand`: ZRANGE, ZRANGESTORE and the older
/// range commands. `src_idx` is the position of the source key; `store`
/// says whether `args[1]` is a destination.
fn zrange_generic(
    ctx: &mut Ctx<'_>,
    args: &[&[u8]],
    src_idx: usize,
    store: bool,
    mut rangetype: RangeType,
    mut rev: Option<bool>,
) -> CmdResult {
    let key = arg(args, src_idx);
    let (mut minidx, mut maxidx) = (src_idx + 1, src_idx + 2);
    let mut withscores = false;
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut j = src_idx + 3;
    while j < args.len() {
        let a = arg(args, j);
        let left = args.len() - j - 1;
        if !store && is(a, "withscores") {
            withscores = true;
        } else if is(a, "limit") && left >= 2 {
            offset = args::int(arg(args, j + 1))?;
            limit = args::int(arg(args, j + 2))?;
            j += 2;
        } else if rev.is_none() && is(a, "rev") {
            rev = Some(true);
        } else if rangetype == RangeType::Auto && is(a, "bylex") {
            rangetype = RangeType::Lex;
        } else if rangetype == RangeType::Auto && is(a, "byscore") {
            rangetype = RangeType::Score;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    if rangetype == RangeType::Auto {
        rangetype = RangeType::Rank;
    }
    if limit != -1 && rangetype == RangeType::Rank {
        return Err(CmdError::err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && rangetype == RangeType::Lex {
        return Err(CmdError::err(
            "syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    if rev && rangetype != RangeType::Rank {
        std::mem::swap(&mut minidx, &mut maxidx);
    }
    let (min, max) = (arg(args, minidx), arg(args, maxidx));
    let range = match rangetype {
        RangeType::Score => Range::Score(parse_score_range(min, max)?),
        RangeType::Lex => Range::Lex(parse_lex_range(min, max)?),
        _ => Range::Rank(args::int(min)?, args::int(max)?),
    };
    if store {
        let dst = arg(args, 1);
        let lim = limits(ctx);
        let mut g = blocking::lock_for_push(ctx, &[dst, key])?;
        let result = match read(ctx, &mut g, key)? {
            Some(z) => {
                let mut out = ZSetValue::new();
                for (m, s) in select(z, &range, rev, offset, limit) {
                    out.add(m, s, AddFlags::default(), lim);
                }
                out
            }
            None => ZSetValue::new(),
        };
        let n = store_result(ctx, &mut g, dst, result, "zrangestore")?;
        g.finish(ctx);
        ctx.out.int(n as i64);
        return Ok(());
    }
    let mut g = ctx.lock_one(key)?;
    let Some(z) = read(ctx, &mut g, key)? else {
        drop(g);
        ctx.out.array(0);
        return Ok(());
    };
    let items = select(z, &range, rev, offset, limit);
    reply_elements(ctx, items.into_iter(), withscores);
    Ok(())
}

fn zrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 1, false, RangeType::Auto, None)
}

fn zrangestore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 2, true, RangeType::Auto, None)
}

fn zrevrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 1, false, RangeType::Rank, Some(true))
}

fn zrangebyscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 1, false, RangeType::Score, Some(false))
}

fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 1, false, RangeType::Score, Some(true))
}

fn zrangebylex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 1, false, RangeType::Lex, Some(false))
}

fn zrevrangebylex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 1, false, RangeType::Lex, Some(true))
}

// ---------------------------------------------------------------- ZREMRANGE*

fn zremrangebyrank(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let start = args::int(arg(args, 2))?;
    let end = args::int(arg(args, 3))?;
    zremrange_generic(ctx, args, Range::Rank(start, end), "zremrangebyrank")
}

fn zremrangebyscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let r = parse_score_range(arg(args, 2), arg(args, 3))?;
    zremrange_generic(ctx, args, Range::Score(r), "zremrangebyscore")
}

fn zremrangebylex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let r = parse_lex_range(arg(args, 2), arg(args, 3))?;
    zremrange_generic(ctx, args, Range::Lex(r), "zremrangebylex")
}

/// Redis's `zremrangeGenericCommand`; `event` is the notification it sends.
fn zremrange_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], range: Range, event: &str) -> CmdResult {
    let key = arg(args, 1);
    let mut g = ctx.lock_one(key)?;
    if !check_write_type(&mut g, key)? {
        drop(g);
        ctx.out.int(0);
        return Ok(());
    }
    let mut deleted = 0;
    if let Some(z) = write(&mut g, key)? {
        let span = match &range {
            Range::Rank(s, e) => rank_bounds(*s, *e, z.len()),
            _ => {
                let n = select(z, &range, false, 0, -1).len();
                let first = match &range {
                    Range::Score(r) => z.first_in_score_range(r),
                    Range::Lex(r) => z.first_in_lex_range(r),
                    Range::Rank(..) => None,
                };
                first.filter(|_| n > 0).map(|f| (f, f + n - 1))
            }
        };
        if let Some((s, e)) = span {
            deleted = z.remove_rank_range(s, e);
        }
        let removed = drop_if_empty(&mut g, key);
        if deleted == 0 {
            g.unchanged(key);
        }
        if deleted > 0 {
            ctx.notify(ZSET, event, key);
            if removed {
                ctx.notify(GENERIC, "del", key);
            }
        }
    }
    drop(g);
    ctx.out.int(deleted as i64);
    Ok(())
}

// ---------------------------------------------------------------- pops

fn zpopmin(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zpop_minmax(ctx, args, false)
}

fn zpopmax(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zpop_minmax(ctx, args, true)
}

fn zpop_minmax(ctx: &mut Ctx<'_>, args: &[&[u8]], max: bool) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = match args.get(2) {
        Some(a) => Some(args::int_in_range(
            a,
            0,
            i64::MAX,
            Some("ERR value is out of range, must be positive"),
        )?),
        None => None,
    };
    let shape = if ctx.out.proto == Protocol::Resp3 && count.is_some() {
        PopShape::Nested
    } else {
        PopShape::Flat
    };
    zpop_generic(ctx, args.get(1..2).unwrap_or_default(), max, count, shape)
}

/// How a pop reply is laid out (Redis's `emitkey` and `use_nested_array`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum PopShape {
    /// `ZPOPMIN` in RESP2, or without COUNT: `member, score, ...`.
    Flat,
    /// `ZPOPMIN key count` in RESP3: `[member, score], ...`.
    Nested,
    /// `ZMPOP`/`BZMPOP`: `key, [[member, score], ...]`.
    KeyNested,
    /// `BZPOPMIN`/`BZPOPMAX` (RESP2 and RESP3): `key, member, score`.
    KeyFlat,
}

/// Elements taken out of a sorted set, in reply order.
type Popped = Vec<(Vec<u8>, f64)>;

/// Pops up to `count` elements from the lowest (`max`: highest) end of the
/// non-empty sorted set at `key`, removing the key if it empties. Returns
/// the elements and whether the key went.
fn pop_from(
    g: &mut Guard<'_>,
    key: &[u8],
    max: bool,
    count: i64,
) -> Result<(Popped, bool), CmdError> {
    let mut popped = Vec::new();
    if let Some(z) = write(g, key)? {
        while (popped.len() as i64) < count {
            match z.pop(max) {
                Some(e) => popped.push(e),
                None => break,
            }
        }
    }
    let removed = drop_if_empty(g, key);
    Ok((popped, removed))
}

/// The notifications of a pop (`genericZpopCommand`).
fn notify_pop(ev: &mut dyn Events, key: &[u8], max: bool, popped: usize, removed: bool) {
    if popped > 0 {
        ev.notify(ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
    }
    if removed {
        ev.notify(GENERIC, "del", key);
    }
}

/// Writes a pop reply in `shape`.
fn reply_popped(out: &mut ReplyWriter, key: &[u8], popped: &[(Vec<u8>, f64)], shape: PopShape) {
    match shape {
        PopShape::Flat => out.array(popped.len() * 2),
        PopShape::Nested => out.array(popped.len()),
        PopShape::KeyNested => {
            out.array(2);
            out.bulk(key);
            out.array(popped.len());
        }
        PopShape::KeyFlat => {
            out.array(popped.len() * 2 + 1);
            out.bulk(key);
        }
    }
    let nested = matches!(shape, PopShape::Nested | PopShape::KeyNested);
    for (m, s) in popped {
        if nested {
            out.array(2);
        }
        out.bulk(m);
        out.double(*s);
    }
}

/// The first key of `keys` holding a sorted set, in order; `WRONGTYPE` if
/// a key before it holds another type (Redis's candidate search).
fn first_zset<'k>(g: &mut Guard<'_>, keys: &[&'k [u8]]) -> Result<Option<&'k [u8]>, CmdError> {
    for &k in keys {
        if check_write_type(g, k)? {
            return Ok(Some(k));
        }
    }
    Ok(None)
}

/// Redis's `genericZpopCommand`: pops from the first existing key of `keys`.
fn zpop_generic(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    max: bool,
    count: Option<i64>,
    shape: PopShape,
) -> CmdResult {
    let mut g = ctx.lock(keys.iter().copied())?;
    let Some(key) = first_zset(&mut g, keys)? else {
        drop(g);
        if shape == PopShape::KeyNested {
            ctx.out.null_array();
        } else {
            ctx.out.array(0);
        }
        return Ok(());
    };
    if count == Some(0) {
        drop(g);
        ctx.out.array(0);
        return Ok(());
    }
    let (popped, removed) = pop_from(&mut g, key, max, count.unwrap_or(1))?;
    notify_pop(ctx, key, max, popped.len(), removed);
    drop(g);
    reply_popped(&mut *ctx.out, key, &popped, shape);
    Ok(())
}

/// The arguments of `ZMPOP`/`BZMPOP` from `numkeys` (at `numkeys_idx`) on.
struct MPopArgs<'a> {
    keys: &'a [&'a [u8]],
    max: bool,
    count: i64,
}

/// Redis's `zmpopGenericCommand` argument parsing.
fn parse_mpop<'a>(args: &'a [&'a [u8]], numkeys_idx: usize) -> Result<MPopArgs<'a>, CmdError> {
    let numkeys = args::int_in_range(
        arg(args, numkeys_idx),
        1,
        i64::MAX,
        Some("ERR numkeys should be greater than 0"),
    )?;
    let where_idx = usize::try_from(numkeys)
        .ok()
        .and_then(|n| n.checked_add(numkeys_idx + 1))
        .filter(|&w| w < args.len())
        .ok_or(CmdError::Syntax)?;
    let w = arg(args, where_idx);
    let max = if is(w, "min") {
        false
    } else if is(w, "max") {
        true
    } else {
        return Err(CmdError::Syntax);
    };
    let mut count = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if count.is_none() && is(arg(args, j), "count") && more > 0 {
            j += 1;
            count = Some(args::int_in_range(
                arg(args, j),
                1,
                i64::MAX,
                Some("ERR count should be greater than 0"),
            )?);
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(MPopArgs {
        keys: args.get(numkeys_idx + 1..where_idx).unwrap_or_default(),
        max,
        count: count.unwrap_or(1),
    })
}

fn zmpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let p = parse_mpop(args, 1)?;
    zpop_generic(ctx, p.keys, p.max, Some(p.count), PopShape::KeyNested)
}

// ---------------------------------------------------------------- blocking pops

fn bzpopmin(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    bzpop(ctx, args, false)
}

fn bzpopmax(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    bzpop(ctx, args, true)
}

/// `BZPOPMIN|BZPOPMAX key... timeout`: the timeout is checked first.
fn bzpop(ctx: &mut Ctx<'_>, args: &[&[u8]], max: bool) -> CmdResult {
    let last = args.len().saturating_sub(1);
    let deadline = blocking::parse_timeout(arg(args, last))?;
    let keys = args.get(1..last).unwrap_or_default();
    blocking_zpop(ctx, keys, max, None, deadline)
}

/// `BZMPOP timeout numkeys key... MIN|MAX [COUNT count]`: the timeout is
/// checked after the other arguments, as in Redis's `zmpopGenericCommand`.
fn bzmpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let p = parse_mpop(args, 2)?;
    let deadline = blocking::parse_timeout(arg(args, 1))?;
    blocking_zpop(ctx, p.keys, p.max, Some(p.count), deadline)
}

/// Redis's `blockingGenericZpopCommand`: pops at once from the first key
/// holding a sorted set (`WRONGTYPE` if a key before it holds another
/// type), else blocks until a sorted set is created at one of the keys.
/// `count` is `Some` for BZMPOP (its reply shape).
fn blocking_zpop(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    max: bool,
    count: Option<i64>,
    deadline: Option<Instant>,
) -> CmdResult {
    let shape = if count.is_some() {
        PopShape::KeyNested
    } else {
        PopShape::KeyFlat
    };
    let mut g = ctx.lock(keys.iter().copied())?;
    if let Some(key) = first_zset(&mut g, keys)? {
        let (popped, removed) = pop_from(&mut g, key, max, count.unwrap_or(1))?;
        notify_pop(ctx, key, max, popped.len(), removed);
        drop(g);
        reply_popped(&mut *ctx.out, key, &popped, shape);
        return Ok(());
    }
    if ctx.client.block.blocking_denied() {
        // MULTI/EXEC, scripts: nothing to pop is a timeout, even with 0.
        drop(g);
        ctx.out.null_array();
        return Ok(());
    }
    let op = ZPopOp { max, count, shape };
    blocking::block(ctx, &g, keys, deadline, Box::new(op));
    Ok(())
}

/// What a client blocked in BZPOPMIN/BZPOPMAX/BZMPOP does once a sorted set
/// appears at one of its keys (`serveClientsBlockedOnSortedSetKey`).
struct ZPopOp {
    max: bool,
    count: Option<i64>,
    shape: PopShape,
}

impl BlockedOp for ZPopOp {
    fn effect(&self, key: &[u8], popped: usize) -> Option<Vec<Vec<u8>>> {
        let pop = if self.max { "ZPOPMAX" } else { "ZPOPMIN" };
        let mut cmd = vec![pop.as_bytes().to_vec(), key.to_vec()];
        if self.count.is_some() {
            cmd.push(popped.to_string().into_bytes());
        }
        Some(cmd)
    }

    fn serve(
        &self,
        g: &mut Guard<'_>,
        key: &[u8],
        out: &mut ReplyWriter,
        events: &mut dyn Events,
    ) -> Outcome {
        match g.get(key) {
            Some(Value::ZSet(z)) if !z.is_empty() => {}
            Some(Value::ZSet(_)) | None => return Outcome::Stop,
            // A list waiter may share the key: only zset waiters serve here.
            Some(_) => return Outcome::Skip,
        }
        match pop_from(g, key, self.max, self.count.unwrap_or(1)) {
            Ok((popped, removed)) if !popped.is_empty() => {
                notify_pop(events, key, self.max, popped.len(), removed);
                reply_popped(out, key, &popped, self.shape);
                Outcome::Served {
                    pushed: None,
                    popped: popped.len(),
                }
            }
            _ => Outcome::Stop,
        }
    }
}

// ---------------------------------------------------------------- set algebra

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// Redis's `zunionInterAggregate`.
fn aggregate(target: &mut f64, val: f64, agg: Aggregate) {
    match agg {
        Aggregate::Sum => {
            *target += val;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if val < *target {
                *target = val;
            }
        }
        Aggregate::Max => {
            if val > *target {
                *target = val;
            }
        }
    }
}

/// The members of a set, for the sorted-set algebra (score 1 each).
fn set_members(s: &SetValue) -> Vec<Vec<u8>> {
    s.iter().map(|m| m.to_vec()).collect()
}

/// One input of the algebra: a copy of a sorted set (sets get score 1).
struct Source {
    z: ZSetValue,
    weight: f64,
}

fn zunion(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zsetop_generic(ctx, args, None, 1, SetOp::Union, false)
}

fn zinter(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zsetop_generic(ctx, args, None, 1, SetOp::Inter, false)
}

fn zdiff(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zsetop_generic(ctx, args, None, 1, SetOp::Diff, false)
}

fn zintercard(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zsetop_generic(ctx, args, None, 1, SetOp::Inter, true)
}

fn zunionstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zsetop_generic(ctx, args, Some(arg(args, 1)), 2, SetOp::Union, false)
}

fn zinterstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zsetop_generic(ctx, args, Some(arg(args, 1)), 2, SetOp::Inter, false)
}

fn zdiffstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zsetop_generic(ctx, args, Some(arg(args, 1)), 2, SetOp::Diff, false)
}

/// Redis's `zunionInterDiffGenericCommand`.
fn zsetop_generic(
    ctx: &mut Ctx<'_>,
    args: &[&[u8]],
    dst: Option<&[u8]>,
    numkeys_idx: usize,
    op: SetOp,
    card_only: bool,
) -> CmdResult {
    let setnum = args::int(arg(args, numkeys_idx))?;
    if setnum < 1 {
        let name = String::from_utf8_lossy(arg(args, 0)).to_lowercase();
        return Err(CmdError::err(format!(
            "at least 1 input key is needed for '{name}' command"
        )));
    }
    let first = numkeys_idx + 1;
    if setnum as u64 > args.len().saturating_sub(first) as u64 {
        return Err(CmdError::Syntax);
    }
    let setnum = setnum as usize;
    let keys = args.get(first..first + setnum).unwrap_or_default();
    let lim = limits(ctx);
    let locked: Vec<&[u8]> = keys.iter().copied().chain(dst).collect();
    let mut g = blocking::lock_for_push(ctx, &locked)?;
    let mut src = Vec::with_capacity(setnum);
    for k in keys {
        let v = g.get(k);
        ctx.srv.stats.hit(v.is_some());
        let z = match v {
            None => ZSetValue::new(),
            Some(Value::ZSet(z)) => (**z).clone(),
            Some(Value::Set(s)) => {
                let mut z = ZSetValue::new();
                for m in set_members(s) {
                    z.insert(&m, 1.0);
                }
                z
            }
            Some(_) => return Err(CmdError::WrongType),
        };
        src.push(Source { z, weight: 1.0 });
    }
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0i64;
    let mut j = first + setnum;
    while j < args.len() {
        let remaining = args.len() - j;
        let a = arg(args, j);
        if op != SetOp::Diff && !card_only && remaining > setnum && is(a, "weights") {
            j += 1;
            for s in src.iter_mut() {
                s.weight = args::parse_score(arg(args, j))
                    .ok_or_else(|| CmdError::err("weight value is not a float"))?;
                j += 1;
            }
        } else if op != SetOp::Diff && !card_only && remaining >= 2 && is(a, "aggregate") {
            let v = arg(args, j + 1);
            agg = if is(v, "sum") {
                Aggregate::Sum
            } else if is(v, "min") {
                Aggregate::Min
            } else if is(v, "max") {
                Aggregate::Max
            } else {
                return Err(CmdError::Syntax);
            };
            j += 2;
        } else if dst.is_none() && !card_only && is(a, "withscores") {
            withscores = true;
            j += 1;
        } else if card_only && remaining >= 2 && is(a, "limit") {
            limit = args::int_in_range(
                arg(args, j + 1),
                0,
                i64::MAX,
                Some("ERR LIMIT can't be negative"),
            )?;
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if op != SetOp::Diff {
        // Smallest first (a stable sort, like glibc's merge-sorting qsort).
        src.sort_by_key(|s| s.z.len());
    }
    let mut result = ZSetValue::new_skiplist();
    let mut cardinality = 0i64;
    let src0_len = src.first().map_or(0, |s| s.z.len());
    match op {
        SetOp::Inter if src0_len > 0 => {
            let (head, rest) = src.split_at(1);
            if let Some(s0) = head.first() {
                for (m, s) in s0.z.iter() {
                    let mut score = s0.weight * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    let mut everywhere = true;
                    for other in rest {
                        match other.z.score(m) {
                            Some(v) => aggregate(&mut score, v * other.weight, agg),
                            None => {
                                everywhere = false;
                                break;
                            }
                        }
                    }
                    if !everywhere {
                        continue;
                    }
                    if card_only {
                        cardinality += 1;
                        if limit > 0 && cardinality >= limit {
                            break;
                        }
                    } else {
                        result.insert(m, score);
                    }
                }
            }
        }
        SetOp::Union => {
            let mut acc: hashbrown::HashMap<&[u8], f64> = hashbrown::HashMap::new();
            for s in &src {
                for (m, v) in s.z.iter() {
                    let mut score = s.weight * v;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    match acc.get_mut(m) {
                        Some(t) => aggregate(t, score, agg),
                        None => {
                            acc.insert(m, score);
                        }
                    }
                }
            }
            for (m, s) in acc {
                result.insert(m, s);
            }
        }
        SetOp::Diff if src0_len > 0 => {
            let (head, rest) = src.split_at(1);
            if let Some(s0) = head.first() {
                for (m, s) in s0.z.iter() {
                    if !rest.iter().any(|o| o.z.contains(m)) {
                        result.insert(m, s);
                    }
                }
            }
        }
        _ => {}
    }
    if let Some(dst) = dst {
        result.fit_encoding(lim);
        let event = match op {
            SetOp::Union => "zunionstore",
            SetOp::Inter => "zinterstore",
            SetOp::Diff => "zdiffstore",
        };
        let n = store_result(ctx, &mut g, dst, result, event)?;
        g.finish(ctx);
        ctx.out.int(n as i64);
    } else if card_only {
        drop(g);
        ctx.out.int(cardinality);
    } else {
        drop(g);
        reply_elements(
            ctx,
            result.iter().collect::<Vec<_>>().into_iter(),
            withscores,
        );
    }
    Ok(())
}

// ---------------------------------------------------------------- ZRANDMEMBER, ZSCAN

fn zrandmember(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = arg(args, 1);
    if args.len() >= 3 {
        let l = args::int_in_range(arg(args, 2), -i64::MAX, i64::MAX, None)?;
        let withscores = if args.len() > 4 || (args.len() == 4 && !is(arg(args, 3), "withscores")) {
            return Err(CmdError::Syntax);
        } else {
            args.len() == 4
        };
        if withscores && !(-i64::MAX / 2..=i64::MAX / 2).contains(&l) {
            return Err(CmdError::err("value is out of range"));
        }
        return zrandmember_count(ctx, key, l, withscores);
    }
    let mut g = ctx.lock_one(key)?;
    let Some(z) = read(ctx, &mut g, key)? else {
        drop(g);
        ctx.out.null();
        return Ok(());
    };
    let i = rand::thread_rng().gen_range(0..z.len().max(1));
    match z.get(i) {
        Some((m, _)) => ctx.out.bulk(m),
        None => ctx.out.null(),
    }
    Ok(())
}

fn zrandmember_count(ctx: &mut Ctx<'_>, key: &[u8], l: i64, withscores: bool) -> CmdResult {
    let mut g = ctx.lock_one(key)?;
    let Some(z) = read(ctx, &mut g, key)? else {
        drop(g);
        ctx.out.array(0);
        return Ok(());
    };
    let size = z.len();
    let count = l.unsigned_abs();
    if count == 0 || size == 0 {
        drop(g);
        ctx.out.array(0);
        return Ok(());
    }
    let mut rng = rand::thread_rng();
    if l < 0 || count == 1 {
        // With repetition, in random order, written as picked: any count is
        // allowed here, the output limit decides.
        let limit = ReplyLimit::of(ctx);
        let min_pick = if withscores {
            MIN_PICK_WITH_VALUE
        } else {
            MIN_PICK
        };
        if !limit.may_fit(ctx.out, count, min_pick) {
            drop(g);
            reply_limit::close_client(ctx);
            return Ok(());
        }
        let resp3 = ctx.out.proto == Protocol::Resp3;
        let n = usize::try_from(count).unwrap_or(usize::MAX);
        ctx.out.array(if withscores && !resp3 {
            n.saturating_mul(2)
        } else {
            n
        });
        for _ in 0..count {
            if let Some((m, s)) = z.get(rng.gen_range(0..size)) {
                if withscores && resp3 {
                    ctx.out.array(2);
                }
                ctx.out.bulk(m);
                if withscores {
                    ctx.out.double(s);
                }
            }
            if limit.exceeded(ctx.out) {
                drop(g);
                reply_limit::close_client(ctx);
                return Ok(());
            }
        }
        return Ok(());
    }
    let picks: Vec<(&[u8], f64)> = if count >= size as u64 {
        // The whole set, from the highest rank down (Redis's set-operation
        // iterator walks sorted sets from the tail).
        z.iter_from(size - 1, true).collect()
    } else {
        let count = count as usize;
        let mut chosen = rand::seq::index::sample(&mut rng, size, count).into_vec();
        if count * 3 > size {
            // Redis answers from a dict it thinned out: an order unrelated to ranks.
            chosen.sort_unstable();
        }
        chosen.into_iter().filter_map(|i| z.get(i)).collect()
    };
    reply_elements(ctx, picks.into_iter(), withscores);
    Ok(())
}

fn zscan(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = arg(args, 1);
    let cursor = parse_cursor(arg(args, 2)).ok_or_else(|| CmdError::err("invalid cursor"))?;
    let mut g = ctx.lock_one(key)?;
    let Some(z) = read(ctx, &mut g, key)? else {
        drop(g);
        ctx.out.array(2);
        ctx.out.bulk(b"0");
        ctx.out.array(0);
        return Ok(());
    };
    let mut count: i64 = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 3;
    while i < args.len() {
        let (opt, more) = (arg(args, i), args.len() - i >= 2);
        if is(opt, "count") && more {
            count = args::int(arg(args, i + 1))?;
            if count < 1 {
                return Err(CmdError::Syntax);
            }
        } else if is(opt, "match") && more {
            let p = arg(args, i + 1);
            pattern = (p != b"*").then_some(p);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let (next, items) = if z.is_listpack() {
        (0, z.iter().collect())
    } else {
        scan_step(z, cursor, usize::try_from(count).unwrap_or(usize::MAX))
    };
    let listpack = z.is_listpack();
    let items: Vec<(&[u8], String)> = items
        .into_iter()
        .filter(|(m, _)| pattern.is_none_or(|p| glob::matches(p, m, false)))
        .map(|(m, s)| {
            (
                m,
                if listpack {
                    d2string(s)
                } else {
                    format_g17_or_inf(s)
                },
            )
        })
        .collect();
    ctx.out.array(2);
    ctx.out.bulk(itoa::Buffer::new().format(next).as_bytes());
    ctx.out.array(items.len() * 2);
    for (m, s) in &items {
        ctx.out.bulk(m);
        ctx.out.bulk(s.as_bytes());
    }
    Ok(())
}

/// A score as a cursor: an order-preserving map of the doubles onto `u64`
/// (`-0` as `0`). No score maps to 0, the cursor that starts a scan.
fn score_cursor(s: f64) -> u64 {
    let bits = if s == 0.0 { 0 } else { s.to_bits() };
    if bits >> 63 == 0 {
        bits | 1 << 63
    } else {
        !bits
    }
}

/// The inverse of [`score_cursor`]: `None` for cursors past `+inf`; a
/// cursor below `-inf` (0 among them) starts from the lowest score.
fn cursor_score(c: u64) -> Option<f64> {
    let bits = if c >> 63 == 1 { c & !(1 << 63) } else { !c };
    let s = f64::from_bits(bits);
    if !s.is_nan() {
        Some(s)
    } else if c < score_cursor(f64::NEG_INFINITY) {
        Some(f64::NEG_INFINITY)
    } else {
        None
    }
}

/// One `ZSCAN` step over a skiplist-encoded set: the cursor is the lowest
/// score not yet returned. A step returns `count` elements from there, plus
/// every further element sharing the score of the last one, so the next
/// step starts at a strictly higher score. Elements present for the whole
/// scan are returned at least once however the set changes in between
/// (Redis's guarantee; a rank cursor would skip elements after a removal),
/// and each step costs `O(log n + count + ties)`.
fn scan_step(z: &ZSetValue, cursor: u64, count: usize) -> (u64, Vec<(&[u8], f64)>) {
    let Some(min) = cursor_score(cursor) else {
        return (0, Vec::new());
    };
    let r = ScoreRange {
        min,
        max: f64::INFINITY,
        minex: false,
        maxex: false,
    };
    let Some(first) = z.first_in_score_range(&r) else {
        return (0, Vec::new());
    };
    let mut items: Vec<(&[u8], f64)> = Vec::new();
    for (m, s) in z.iter_from(first, false) {
        if items.len() >= count.max(1) && items.last().is_some_and(|&(_, l)| l != s) {
            return (score_cursor(s), items);
        }
        items.push((m, s));
    }
    (0, items)
}

/// `%.17Lg` of a score with `inf`/`-inf` (Redis's `ld2string`).
fn format_g17_or_inf(d: f64) -> String {
    format_double(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_cursor_survives_removals() {
        let mut z = ZSetValue::new_skiplist();
        for i in 0..100 {
            z.insert(format!("m{i:03}").as_bytes(), f64::from(i / 3));
        }
        z.insert(b"neg", -0.0);
        z.insert(b"ninf", f64::NEG_INFINITY);
        z.insert(b"pinf", f64::INFINITY);
        let all: Vec<Vec<u8>> = z.iter().map(|(m, _)| m.to_vec()).collect();
        let mut seen = Vec::new();
        let mut cursor = 0;
        let mut steps = 0;
        loop {
            let (next, items) = scan_step(&z, cursor, 7);
            let got: Vec<Vec<u8>> = items.iter().map(|(m, _)| m.to_vec()).collect();
            seen.extend(got.iter().cloned());
            // Remove what was returned and a few never returned ones, as
            // a client trimming the set during the scan would.
            for m in got.iter().take(3) {
                z.remove(m);
            }
            steps += 1;
            if next == 0 {
                break;
            }
            assert!(next > cursor || cursor == 0);
            cursor = next;
        }
        assert!(steps > 5);
        for m in &all {
            if z.contains(m) {
                assert!(seen.contains(m), "{m:?} skipped");
            }
        }
        assert_eq!(cursor_score(0), Some(f64::NEG_INFINITY));
        assert_eq!(cursor_score(score_cursor(2.5)), Some(2.5));
        assert_eq!(cursor_score(score_cursor(-0.0)), Some(0.0));
        assert_eq!(cursor_score(u64::MAX), None);
        assert!(score_cursor(-1.0) < score_cursor(0.0));
        assert!(score_cursor(f64::NEG_INFINITY) > 0);
    }

    #[test]
    fn score_bounds_like_zslparserange() {
        assert_eq!(parse_score_bound(b"(1.5"), Some((1.5, true)));
        assert_eq!(parse_score_bound(b"-inf"), Some((f64::NEG_INFINITY, false)));
        assert_eq!(parse_score_bound(b""), Some((0.0, false)));
        assert_eq!(parse_score_bound(b"("), Some((0.0, true)));
        assert_eq!(parse_score_bound(b" 1"), Some((1.0, false)));
        assert_eq!(parse_score_bound(b"1e400"), Some((f64::INFINITY, false)));
        assert_eq!(parse_score_bound(b"nan"), None);
        assert_eq!(parse_score_bound(b"1x"), None);
        assert_eq!(parse_score_bound(b"1 "), None);
    }

    #[test]
    fn lex_items() {
        assert_eq!(parse_lex_item(b"+"), Some((LexItem::Max, true)));
        assert_eq!(parse_lex_item(b"-"), Some((LexItem::Min, true)));
        assert_eq!(
            parse_lex_item(b"[a"),
            Some((LexItem::Str(b"a".to_vec()), false))
        );
        assert_eq!(parse_lex_item(b"("), Some((LexItem::Str(vec![]), true)));
        assert_eq!(parse_lex_item(b"+a"), None);
        assert_eq!(parse_lex_item(b"a"), None);
        assert_eq!(parse_lex_item(b""), None);
    }

    #[test]
    fn listpack_score_text() {
        assert_eq!(d2string(1e18), "1000000000000000000");
        assert_eq!(d2string(1e20), "1e+20");
        assert_eq!(d2string(1.5), "1.5");
        assert_eq!(d2string(-0.0), "-0");
        assert_eq!(d2string(f64::INFINITY), "inf");
    }
}
