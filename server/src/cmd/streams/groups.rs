//! XGROUP (CREATE SETID DESTROY CREATECONSUMER DELCONSUMER HELP), XACK,
//! XPENDING, XCLAIM, XAUTOCLAIM.

use amber_storage::types::stream::{StreamId, ENTRIES_READ_UNKNOWN};
use amber_storage::types::StreamValue;
use amber_storage::{Guard, SetExpiry, Value};

use super::range::bounds;
use super::{
    effects, id, peek_type, read_stream, reply_entry, reply_id, subcommand_syntax, write_stream,
};
use crate::blocking;
use crate::cmd::admin::reply_help;
use crate::cmd::args::{self, is_c, nth, text};
use crate::cmd::error::{CmdError, CmdResult};
use crate::cmd::Ctx;
use crate::notify;

/// `-NOGROUP No such consumer group '<g>' for key name '<k>'`.
fn no_such_group(group: &[u8], key: &[u8]) -> CmdError {
    CmdError::msg(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        text(args::c_str(group)),
        text(args::c_str(key))
    ))
}

/// `-NOGROUP No such key '<k>' or consumer group '<g>'`.
fn no_such_key_or_group(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::msg(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        text(args::c_str(key)),
        text(args::c_str(group))
    ))
}

/// An `ENTRIESREAD` value: a count or -1.
fn entries_read_arg(arg: &[u8]) -> Result<i64, CmdError> {
    let n = args::int(arg)?;
    if n < 0 && n != ENTRIES_READ_UNKNOWN {
        return Err(CmdError::err(
            "value for ENTRIESREAD must be positive or -1",
        ));
    }
    Ok(n)
}

/// The checks every XGROUP subcommand but HELP makes (`xgroupCommand`):
/// the key must hold a stream, and (for SETID, CREATECONSUMER and
/// DELCONSUMER) the group must exist.
fn check_group(g: &mut Guard<'_>, args: &[&[u8]], need_group: bool) -> Result<(), CmdError> {
    let (key, group) = (nth(args, 2), nth(args, 3));
    let Some(Value::Stream(s)) = g.peek(key) else {
        if g.peek(key).is_some() {
            return Err(CmdError::WrongType);
        }
        return Err(CmdError::err(
            "The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
        ));
    };
    if need_group && s.group(group).is_none() {
        return Err(no_such_group(group, key));
    }
    Ok(())
}

/// XGROUP CREATE key group id|$ [MKSTREAM] [ENTRIESREAD entries-read]
pub(super) fn create(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, group) = (nth(args, 2), nth(args, 3));
    let mut mkstream = false;
    let mut entries_read = ENTRIES_READ_UNKNOWN;
    let mut i = 5;
    while i < args.len() {
        if is_c(nth(args, i), "MKSTREAM") {
            mkstream = true;
            i += 1;
        } else if is_c(nth(args, i), "ENTRIESREAD") && i + 1 < args.len() {
            entries_read = entries_read_arg(nth(args, i + 1))?;
            i += 2;
        } else {
            return Err(subcommand_syntax(args));
        }
    }
    let mut g = ctx.lock_one(key)?;
    let exists = peek_type(&mut g, key)?;
    if !exists && !mkstream {
        check_group(&mut g, args, false)?;
    }
    if args.len() > 8 {
        return Err(subcommand_syntax(args));
    }
    let last = match g.peek(key) {
        Some(Value::Stream(s)) => s.last_id(),
        _ => StreamId::MIN,
    };
    let start = match nth(args, 4) {
        b"$" => last,
        other => id::parse_strict(other, 0)?,
    };
    if !exists {
        g.set(key, Value::from(StreamValue::new()), SetExpiry::Persist)?;
    }
    let s = write_stream(&mut g, key)?.ok_or(CmdError::WrongType)?;
    if s.group(group).is_some() {
        g.unchanged(key);
        return Err(CmdError::msg(
            "BUSYGROUP Consumer Group name already exists",
        ));
    }
    s.create_group(group, start, entries_read);
    if exists {
        // Group changes are not signaled to WATCH (a stream MKSTREAM
        // created is, by its creation).
        g.unsignaled(key);
    }
    drop(g);
    ctx.out.ok();
    ctx.notify(notify::STREAM, "xgroup-create", key);
    Ok(())
}

/// XGROUP SETID key group id|$ [ENTRIESREAD entries-read]
pub(super) fn setid(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, group) = (nth(args, 2), nth(args, 3));
    let mut g = ctx.lock_one(key)?;
    peek_type(&mut g, key)?;
    check_group(&mut g, args, true)?;
    if args.len() != 5 && args.len() != 7 {
        return Err(subcommand_syntax(args));
    }
    let Some(Value::Stream(s)) = g.peek(key) else {
        return Err(CmdError::WrongType);
    };
    let last = match nth(args, 4) {
        b"$" => s.last_id(),
        other => id::parse(other, 0)?,
    };
    let mut entries_read = ENTRIES_READ_UNKNOWN;
    if args.len() == 7 {
        if !is_c(nth(args, 5), "ENTRIESREAD") {
            return Err(subcommand_syntax(args));
        }
        entries_read = entries_read_arg(nth(args, 6))?;
    }
    let s = write_stream(&mut g, key)?.ok_or(CmdError::WrongType)?;
    s.set_group_cursor(group, last, entries_read);
    g.unsignaled(key);
    drop(g);
    ctx.out.ok();
    ctx.notify(notify::STREAM, "xgroup-setid", key);
    Ok(())
}

/// XGROUP DESTROY key group
pub(super) fn destroy(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, group) = (nth(args, 2), nth(args, 3));
    let mut g = blocking::lock_for_push(ctx, &[key])?;
    peek_type(&mut g, key)?;
    check_group(&mut g, args, false)?;
    let has = matches!(g.peek(key), Some(Value::Stream(s)) if s.group(group).is_some());
    if !has {
        ctx.out.int(0);
        return Ok(());
    }
    if let Some(s) = write_stream(&mut g, key)? {
        s.destroy_group(group);
    }
    g.unsignaled(key);
    ctx.out.int(1);
    ctx.notify(notify::STREAM, "xgroup-destroy", key);
    // Clients blocked in XREADGROUP on this group get -NOGROUP.
    g.signal(ctx, key);
    g.finish(ctx);
    Ok(())
}

/// XGROUP CREATECONSUMER key group consumer
pub(super) fn createconsumer(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, group, consumer) = (nth(args, 2), nth(args, 3), nth(args, 4));
    let mut g = ctx.lock_one(key)?;
    peek_type(&mut g, key)?;
    check_group(&mut g, args, true)?;
    let exists = matches!(g.peek(key), Some(Value::Stream(s))
        if s.group(group).is_some_and(|grp| grp.consumers.contains_key(consumer)));
    if exists {
        ctx.out.int(0);
        return Ok(());
    }
    let now = g.now_ms();
    if let Some(s) = write_stream(&mut g, key)? {
        s.touch_consumer(group, consumer, now);
    }
    g.unsignaled(key);
    drop(g);
    ctx.out.int(1);
    ctx.notify(notify::STREAM, "xgroup-createconsumer", key);
    Ok(())
}

/// XGROUP DELCONSUMER key group consumer
pub(super) fn delconsumer(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, group, consumer) = (nth(args, 2), nth(args, 3), nth(args, 4));
    let mut g = ctx.lock_one(key)?;
    peek_type(&mut g, key)?;
    check_group(&mut g, args, true)?;
    let exists = matches!(g.peek(key), Some(Value::Stream(s))
        if s.group(group).is_some_and(|grp| grp.consumers.contains_key(consumer)));
    if !exists {
        ctx.out.int(0);
        return Ok(());
    }
    let pending = write_stream(&mut g, key)?
        .and_then(|s| s.delete_consumer(group, consumer))
        .unwrap_or(0);
    g.unsignaled(key);
    drop(g);
    ctx.out.int(pending as i64);
    ctx.notify(notify::STREAM, "xgroup-delconsumer", key);
    Ok(())
}

/// XGROUP HELP
pub(super) fn help(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    reply_help(
        ctx,
        args,
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    );
    Ok(())
}

/// XACK key group id [id ...]
pub(super) fn xack(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, group) = (nth(args, 1), nth(args, 2));
    let mut g = ctx.lock_one(key)?;
    let has = match read_stream(ctx, &mut g, key)? {
        Some(s) => s.group(group).is_some(),
        None => false,
    };
    if !has {
        ctx.out.int(0);
        return Ok(());
    }
    let ids = args
        .get(3..)
        .unwrap_or_default()
        .iter()
        .map(|a| id::parse_strict(a, 0))
        .collect::<Result<Vec<_>, _>>()?;
    let s = write_stream(&mut g, key)?.ok_or(CmdError::WrongType)?;
    let pending = s
        .group(group)
        .is_some_and(|grp| ids.iter().any(|id| grp.pel.contains_key(id)));
    if !pending {
        g.unchanged(key);
        ctx.out.int(0);
        return Ok(());
    }
    let acked = ids.iter().filter(|id| s.ack(group, **id)).count();
    g.unsignaled(key);
    ctx.out.int(acked as i64);
    Ok(())
}

/// XPENDING key group [[IDLE min-idle-time] start end count [consumer]]
pub(super) fn xpending(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, group) = (nth(args, 1), nth(args, 2));
    let n = args.len();
    if n != 3 && !(6..=9).contains(&n) {
        return Err(CmdError::Syntax);
    }
    let mut range = None;
    let mut min_idle = 0i64;
    let mut consumer = None;
    if n >= 6 {
        let mut at = 3;
        if is_c(nth(args, 3), "IDLE") {
            min_idle = args::int(nth(args, 4))?;
            if n < 8 {
                return Err(CmdError::Syntax);
            }
            at += 2;
        }
        let count = args::int(nth(args, at + 2))?.max(0);
        let (start, end) = bounds(nth(args, at), nth(args, at + 1))?;
        if at + 3 < n {
            consumer = Some(nth(args, at + 3));
        }
        range = Some((start, end, count));
    }
    let mut g = ctx.lock_one(key)?;
    let now = g.now_ms();
    let s = read_stream(ctx, &mut g, key)?;
    let Some(grp) = s.and_then(|s| s.group(group)) else {
        return Err(no_such_key_or_group(key, group));
    };
    let Some((start, end, count)) = range else {
        ctx.out.array(4);
        ctx.out.int(grp.pel.len() as i64);
        match (grp.pel.keys().next(), grp.pel.keys().next_back()) {
            (Some(first), Some(last)) => {
                reply_id(ctx.out, *first);
                reply_id(ctx.out, *last);
                let owners: Vec<_> = grp
                    .consumers
                    .iter()
                    .filter(|(_, c)| !c.pel.is_empty())
                    .collect();
                ctx.out.array(owners.len());
                for (name, c) in owners {
                    ctx.out.array(2);
                    ctx.out.bulk(name);
                    ctx.out.bulk_int(c.pel.len() as i64);
                }
            }
            _ => {
                ctx.out.null();
                ctx.out.null();
                ctx.out.null_array();
            }
        }
        return Ok(());
    };
    let ids: Vec<StreamId> = match consumer {
        Some(name) => match grp.consumers.get(name) {
            Some(c) if start <= end => c.pel.range(start..=end).copied().collect(),
            Some(_) => Vec::new(),
            None => {
                ctx.out.array(0);
                return Ok(());
            }
        },
        None if start <= end => grp.pel.range(start..=end).map(|(id, _)| *id).collect(),
        None => Vec::new(),
    };
    let mut rows = Vec::new();
    for id in ids {
        if rows.len() as i64 >= count {
            break;
        }
        let Some(p) = grp.pel.get(&id) else { continue };
        let idle = (now as i64).wrapping_sub(p.delivery_time as i64);
        if min_idle != 0 && idle < min_idle {
            continue;
        }
        rows.push((id, p, idle.max(0)));
    }
    ctx.out.array(rows.len());
    for (id, p, idle) in rows {
        ctx.out.array(4);
        reply_id(ctx.out, id);
        ctx.out.bulk(&p.consumer);
        ctx.out.int(idle);
        ctx.out.int(p.delivery_count as i64);
    }
    Ok(())
}

/// What XCLAIM and XAUTOCLAIM claim an entry with.
struct Claim<'a> {
    consumer: &'a [u8],
    delivery_time: u64,
    retry_count: Option<u64>,
    justid: bool,
}

/// Claims the pending entry `id` (which exists in the stream, delivered
/// `prev_count` times so far) for `claim.consumer`, creating the consumer on
/// first use; writes its reply element. Returns whether the consumer was
/// created.
fn claim_one(
    s: &mut StreamValue,
    group: &[u8],
    id: StreamId,
    prev_count: u64,
    claim: &Claim<'_>,
    now: u64,
    out: &mut crate::resp::ReplyWriter,
) -> bool {
    let created = s.touch_consumer(group, claim.consumer, now) == Some(true);
    let count = match claim.retry_count {
        Some(n) => n,
        None if !claim.justid => prev_count.saturating_add(1),
        None => prev_count,
    };
    s.set_pending(group, id, claim.consumer, claim.delivery_time, count);
    if claim.justid {
        reply_id(out, id);
    } else {
        match s.get(id) {
            Some(f) => reply_entry(out, id, f),
            None => out.null(),
        }
    }
    created
}

/// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-milliseconds] [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]
pub(super) fn xclaim(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, group, consumer) = (nth(args, 1), nth(args, 2), nth(args, 3));
    let mut g = ctx.lock_one(key)?;
    let now = g.now_ms();
    let has = read_stream(ctx, &mut g, key)?.is_some_and(|s| s.group(group).is_some());
    if !has {
        return Err(no_such_key_or_group(key, group));
    }
    let min_idle = args::parse_i64(nth(args, 4))
        .ok_or_else(|| CmdError::err("Invalid min-idle-time argument for XCLAIM"))?
        .max(0);
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match id::parse_strict(nth(args, j), 0) {
            Ok(id) => ids.push((id, nth(args, j))),
            Err(_) => break,
        }
        j += 1;
    }
    let mut force = false;
    let mut justid = false;
    let mut delivery: Option<i64> = None;
    let mut retry: Option<i64> = None;
    let mut last_id = StreamId::MIN;
    let int_opt = |arg: &[u8], what: &str| {
        args::parse_i64(arg)
            .ok_or_else(|| CmdError::err(format!("Invalid {what} option argument for XCLAIM")))
    };
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = nth(args, j);
        if is_c(opt, "FORCE") {
            force = true;
        } else if is_c(opt, "JUSTID") {
            justid = true;
        } else if is_c(opt, "IDLE") && more > 0 {
            j += 1;
            delivery = Some((now as i64).wrapping_sub(int_opt(nth(args, j), "IDLE")?));
        } else if is_c(opt, "TIME") && more > 0 {
            j += 1;
            delivery = Some(int_opt(nth(args, j), "TIME")?);
        } else if is_c(opt, "RETRYCOUNT") && more > 0 {
            j += 1;
            retry = Some(int_opt(nth(args, j), "RETRYCOUNT")?);
        } else if is_c(opt, "LASTID") && more > 0 {
            j += 1;
            last_id = id::parse_strict(nth(args, j), 0)?;
        } else {
            return Err(CmdError::err(format!(
                "Unrecognized XCLAIM option '{}'",
                text(args::c_str(opt))
            )));
        }
        j += 1;
    }
    let delivery_time = match delivery {
        Some(t) if t >= 0 && t <= now as i64 => t as u64,
        _ => now,
    };
    let claim = Claim {
        consumer,
        delivery_time,
        // RETRYCOUNT -1 means "not given" in Redis.
        retry_count: retry.and_then(|r| u64::try_from(r).ok()),
        justid,
    };
    let s = write_stream(&mut g, key)?.ok_or(CmdError::WrongType)?;
    let mut moved = false;
    if let Some((last, read)) = s.group(group).map(|grp| (grp.last_id, grp.entries_read)) {
        if last_id > last {
            s.set_group_cursor(group, last_id, read);
            moved = true;
        }
    }
    let collecting = crate::replication::propagate::collecting();
    let mut effects = Vec::new();
    let mut out = crate::resp::ReplyWriter::default();
    out.proto = ctx.out.proto;
    let mut n = 0;
    let mut created = false;
    for (id, id_text) in ids {
        if s.get(id).is_none() {
            // The entry is gone: its pending entry goes too (propagated
            // as Redis does, as a claim of it as it was).
            if collecting {
                effects.extend(effects::xclaim(s, key, group, id, id_text));
            }
            s.ack(group, id);
            continue;
        }
        let pending = s
            .group(group)
            .and_then(|grp| grp.pel.get(&id))
            .map(|p| (p.delivery_time, p.delivery_count));
        // FORCE creates a pending entry (delivered once) and ignores the
        // minimum idle time.
        let (t, prev, forced) = match pending {
            Some((t, c)) => (t, c, false),
            None if force => (now, 1, true),
            None => continue,
        };
        if !forced && min_idle != 0 && (now as i64).wrapping_sub(t as i64) < min_idle {
            continue;
        }
        created |= claim_one(s, group, id, prev, &claim, now, &mut out);
        if collecting {
            effects.extend(effects::xclaim(s, key, group, id, id_text));
        }
        n += 1;
    }
    // A moved cursor goes with the claims, or alone.
    if collecting && moved && effects.is_empty() {
        effects.extend(effects::set_id(s, key, group));
    }
    crate::replication::propagate::instead(ctx.db(), effects);
    g.unsignaled(key);
    drop(g);
    ctx.out.array(n);
    ctx.out.raw(out.as_bytes());
    if created {
        ctx.notify(notify::STREAM, "xgroup-createconsumer", key);
    }
    Ok(())
}

/// Largest `XAUTOCLAIM` COUNT served. Redis 7.0.15 allocates 16 bytes per
/// counted entry up front and answers `-ERR Insufficient memory...` when
/// that fails, which depends on its machine; Amber allocates nothing up
/// front and refuses the counts (above 2^36, a 1 TiB allocation) that no
/// Redis could allocate.
const AUTOCLAIM_MAX_COUNT: i64 = 1 << 36;

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
pub(super) fn xautoclaim(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, group, consumer) = (nth(args, 1), nth(args, 2), nth(args, 3));
    let min_idle = args::parse_i64(nth(args, 4))
        .ok_or_else(|| CmdError::err("Invalid min-idle-time argument for XAUTOCLAIM"))?
        .max(0);
    let (mut start, start_ex) = id::parse_interval(nth(args, 5), 0)?;
    if start_ex {
        start = start
            .next()
            .ok_or_else(|| CmdError::err("invalid start ID for the interval"))?;
    }
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = nth(args, j);
        if is_c(opt, "COUNT") && more > 0 {
            count = args::int_in_range(
                nth(args, j + 1),
                1,
                i64::MAX / 16,
                Some("ERR COUNT must be > 0"),
            )?;
            j += 1;
        } else if is_c(opt, "JUSTID") {
            justid = true;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let mut g = ctx.lock_one(key)?;
    let now = g.now_ms();
    let has = read_stream(ctx, &mut g, key)?.is_some_and(|s| s.group(group).is_some());
    if !has {
        return Err(no_such_key_or_group(key, group));
    }
    if count > AUTOCLAIM_MAX_COUNT {
        return Err(CmdError::err(
            "Insufficient memory, failed allocating transient memory, COUNT too high.",
        ));
    }
    let s = write_stream(&mut g, key)?.ok_or(CmdError::WrongType)?;
    let claim = Claim {
        consumer,
        delivery_time: now,
        retry_count: None,
        justid,
    };
    let mut attempts = count.saturating_mul(10);
    let mut out = crate::resp::ReplyWriter::default();
    out.proto = ctx.out.proto;
    let mut claimed = 0usize;
    let mut deleted = Vec::new();
    let mut created = false;
    let mut cursor = start;
    let mut next = StreamId::MIN;
    let collecting = crate::replication::propagate::collecting();
    let mut effects = Vec::new();
    let claim_of = |s: &StreamValue, id: StreamId| {
        effects::xclaim(s, key, group, id, id.to_string().as_bytes())
    };
    while let Some((id, t, prev)) = s.group(group).and_then(|grp| {
        grp.pel
            .range(cursor..)
            .next()
            .map(|(&id, p)| (id, p.delivery_time, p.delivery_count))
    }) {
        if attempts == 0 || count == 0 {
            next = id;
            break;
        }
        attempts -= 1;
        cursor = match id.next() {
            Some(c) => c,
            None => {
                // The largest ID: nothing can follow it.
                attempts = 0;
                id
            }
        };
        if s.get(id).is_none() {
            if collecting {
                effects.extend(claim_of(s, id));
            }
            s.ack(group, id);
            deleted.push(id);
            count -= 1;
        } else if min_idle == 0 || (now as i64).wrapping_sub(t as i64) >= min_idle {
            created |= claim_one(s, group, id, prev, &claim, now, &mut out);
            if collecting {
                effects.extend(claim_of(s, id));
            }
            claimed += 1;
            count -= 1;
        }
        if id == StreamId::MAX {
            break;
        }
    }
    crate::replication::propagate::instead(ctx.db(), effects);
    if claimed == 0 && deleted.is_empty() {
        g.unchanged(key);
    }
    g.unsignaled(key);
    drop(g);
    ctx.out.array(3);
    reply_id(ctx.out, next);
    ctx.out.array(claimed);
    ctx.out.raw(out.as_bytes());
    ctx.out.array(deleted.len());
    for id in deleted {
        reply_id(ctx.out, id);
    }
    if created {
        ctx.notify(notify::STREAM, "xgroup-createconsumer", key);
    }
    Ok(())
}
