//! XADD XTRIM XDEL XLEN XSETID: appending, trimming, deleting, and the
//! stream's IDs.

use amber_storage::types::stream::{StreamId, Trim};
use amber_storage::types::StreamValue;
use amber_storage::{SetExpiry, Value};

use super::id;
use super::{node_limits, peek_type, read_stream, reply_id, write_stream};
use crate::blocking;
use crate::cmd::args::{self, is_c, nth};
use crate::cmd::error::{CmdError, CmdResult};
use crate::cmd::Ctx;
use crate::config::HotConfig;
use crate::notify;

/// Trimming options of XADD and XTRIM (`streamAddTrimArgs`).
#[derive(Debug, Default)]
struct TrimArgs {
    trim: Option<Trim>,
    approx: bool,
    limit: u64,
    /// XADD: the explicit ID (ms, seq; `None` seq: `ms-*`).
    id: Option<(u64, Option<u64>)>,
    no_mkstream: bool,
}

/// `streamParseAddOrTrimArgsOrReply`: the options from `args[2]` on; for
/// XADD, returns the position of the ID argument too.
fn parse_trim_args(
    ctx: &Ctx<'_>,
    args: &[&[u8]],
    xadd: bool,
) -> Result<(TrimArgs, usize), CmdError> {
    let mut t = TrimArgs::default();
    let mut limit: Option<u64> = None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = nth(args, i);
        if xadd && opt == b"*" {
            break;
        } else if (is_c(opt, "maxlen") || is_c(opt, "minid")) && more > 0 {
            if t.trim.is_some() {
                return Err(CmdError::err(
                    "syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            t.approx = false;
            let next = nth(args, i + 1);
            if more >= 2 && c_is(next, b"~") {
                t.approx = true;
                i += 1;
            } else if more >= 2 && c_is(next, b"=") {
                i += 1;
            }
            let value = nth(args, i + 1);
            t.trim = Some(if is_c(opt, "maxlen") {
                let n = args::int(value)?;
                if n < 0 {
                    return Err(CmdError::err("The MAXLEN argument must be >= 0."));
                }
                Trim::MaxLen(n as u64)
            } else {
                Trim::MinId(id::parse_strict(value, 0)?)
            });
            i += 1;
        } else if is_c(opt, "limit") && more > 0 {
            let n = args::int(nth(args, i + 1))?;
            if n < 0 {
                return Err(CmdError::err("The LIMIT argument must be >= 0."));
            }
            limit = Some(n as u64);
            i += 1;
        } else if xadd && is_c(opt, "nomkstream") {
            t.no_mkstream = true;
        } else if xadd {
            t.id = Some(id::parse_for_add(opt)?);
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if limit.is_some_and(|l| l != 0) && t.trim.is_none() {
        return Err(CmdError::err(
            "syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && t.trim.is_none() {
        return Err(CmdError::err(
            "syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    t.limit = match limit {
        Some(_) if !t.approx => {
            return Err(CmdError::err(
                "syntax error, LIMIT cannot be used without the special ~ option",
            ))
        }
        Some(l) => l,
        None if t.approx => {
            let entries = HotConfig::count(&ctx.srv.config.hot.stream_node_max_entries) as u64;
            match entries.saturating_mul(100) {
                0 => 10_000,
                l if l > 10_000 => 10_000,
                l => l,
            }
        }
        None => 0,
    };
    Ok((t, i))
}

/// `arg` compared as C would after its first NUL.
fn c_is(arg: &[u8], what: &[u8]) -> bool {
    args::c_str(arg) == what
}

/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value [field value ...]
pub(super) fn xadd(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let (t, idpos) = parse_trim_args(ctx, args, true)?;
    let fields = args.get(idpos + 1..).unwrap_or_default();
    if fields.len() < 2 || fields.len() % 2 == 1 {
        return Err(CmdError::Arity("xadd".into()));
    }
    if let Some((0, Some(0))) = t.id {
        return Err(CmdError::err(
            "The ID specified in XADD must be greater than 0-0",
        ));
    }
    let limits = node_limits(ctx);
    let mut g = blocking::lock_for_push(ctx, &[key])?;
    let exists = peek_type(&mut g, key)?;
    if !exists {
        if t.no_mkstream {
            ctx.out.null();
            return Ok(());
        }
        g.set(key, Value::from(StreamValue::new()), SetExpiry::Persist)?;
    }
    let Some(s) = write_stream(&mut g, key)? else {
        return Err(CmdError::WrongType);
    };
    let last = s.last_id();
    if last == StreamId::MAX {
        if !exists {
            g.delete_key(key);
        }
        return Err(CmdError::err(
            "The stream has exhausted the last possible ID, unable to add more items",
        ));
    }
    let new_id = match t.id {
        Some((ms, Some(seq))) => Some(StreamId::new(ms, seq)),
        Some((ms, None)) if ms == last.ms && last.seq == u64::MAX => {
            // Redis 7.0.15 fails here without setting errno, so XADD
            // answers its other error (checked against redis-server).
            g.unchanged(key);
            return Err(CmdError::err("Elements are too large to be stored"));
        }
        Some((ms, None)) if ms == last.ms => Some(StreamId::new(ms, last.seq + 1)),
        Some((ms, None)) => Some(StreamId::new(ms, 0)),
        None => {
            let now = g.now_ms();
            let s = write_stream(&mut g, key)?.ok_or(CmdError::WrongType)?;
            let last = s.last_id();
            Some(if now > last.ms {
                StreamId::new(now, 0)
            } else {
                last.next().unwrap_or(StreamId::MAX)
            })
        }
    };
    let s = write_stream(&mut g, key)?.ok_or(CmdError::WrongType)?;
    let added = match new_id {
        Some(id) if id > s.last_id() => s.append(id, fields, limits).then_some(id),
        _ => None,
    };
    let Some(id) = added else {
        g.unchanged(key);
        return Err(CmdError::err(
            "The ID specified in XADD is equal or smaller than the target stream top item",
        ));
    };
    reply_id(ctx.out, id);
    ctx.notify(notify::STREAM, "xadd", key);
    if let Some(trim) = t.trim {
        let s = write_stream(&mut g, key)?.ok_or(CmdError::WrongType)?;
        if s.trim(trim, t.approx, t.limit) > 0 {
            ctx.notify(notify::STREAM, "xtrim", key);
        }
    }
    g.signal(ctx, key);
    g.finish(ctx);
    Ok(())
}

/// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]
pub(super) fn xtrim(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let mut g = ctx.lock_one(key)?;
    // Redis looks the key up before parsing the options.
    let exists = match g.get(key) {
        None => false,
        Some(Value::Stream(_)) => true,
        Some(_) => return Err(CmdError::WrongType),
    };
    let (t, _) = parse_trim_args(ctx, args, false)?;
    if !exists {
        ctx.out.int(0);
        return Ok(());
    }
    let s = write_stream(&mut g, key)?.ok_or(CmdError::WrongType)?;
    let trim = t.trim.ok_or(CmdError::Syntax)?;
    let nodes = s.node_count();
    let n = s.trim(trim, t.approx, t.limit);
    if n == 0 && s.node_count() == nodes {
        g.unchanged(key);
    } else if n == 0 {
        // Only nodes of deleted entries went: invisible to WATCH, as in
        // Redis, but the arena copy must lose them too.
        g.unsignaled(key);
    }
    drop(g);
    ctx.out.int(n as i64);
    if n > 0 {
        ctx.notify(notify::STREAM, "xtrim", key);
    }
    Ok(())
}

/// XDEL key id [id ...]
pub(super) fn xdel(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let mut g = ctx.lock_one(key)?;
    if !peek_type(&mut g, key)? {
        ctx.srv.stats.hit(false);
        ctx.out.int(0);
        return Ok(());
    }
    // Every ID is checked before anything is deleted.
    let ids = args
        .get(2..)
        .unwrap_or_default()
        .iter()
        .map(|a| id::parse_strict(a, 0))
        .collect::<Result<Vec<_>, _>>()?;
    let s = write_stream(&mut g, key)?.ok_or(CmdError::WrongType)?;
    let deleted = ids.into_iter().filter(|id| s.delete(*id)).count();
    if deleted == 0 {
        g.unchanged(key);
    }
    drop(g);
    ctx.out.int(deleted as i64);
    if deleted > 0 {
        ctx.notify(notify::STREAM, "xdel", key);
    }
    Ok(())
}

/// XLEN key
pub(super) fn xlen(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let mut g = ctx.lock_one(key)?;
    let n = read_stream(ctx, &mut g, key)?.map_or(0, StreamValue::len);
    ctx.out.int(n as i64);
    Ok(())
}

/// XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]
pub(super) fn xsetid(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let last = id::parse_strict(nth(args, 2), 0)?;
    let mut entries_added: Option<u64> = None;
    let mut max_deleted: Option<StreamId> = None;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = nth(args, i);
        if is_c(opt, "ENTRIESADDED") && more > 0 {
            let n = args::int(nth(args, i + 1))?;
            if n < 0 {
                return Err(CmdError::err("entries_added must be positive"));
            }
            entries_added = Some(n as u64);
        } else if is_c(opt, "MAXDELETEDID") && more > 0 {
            let m = id::parse_strict(nth(args, i + 1), 0)?;
            if last < m {
                return Err(CmdError::err(
                    "The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
            max_deleted = Some(m);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let mut g = ctx.lock_one(key)?;
    let Some(s) = write_stream(&mut g, key)? else {
        return Err(CmdError::err("no such key"));
    };
    let refusal = if !s.has_no_entries() && last < s.last().map(|(id, _)| id).unwrap_or_default() {
        Some("The ID specified in XSETID is smaller than the target stream top item")
    } else if !s.has_no_entries() && entries_added.is_some_and(|n| n < s.len()) {
        Some("The entries_added specified in XSETID is smaller than the target stream length")
    } else {
        None
    };
    if let Some(msg) = refusal {
        g.unchanged(key);
        return Err(CmdError::err(msg));
    }
    let max_deleted = max_deleted.filter(|m| !m.is_zero());
    s.set_meta(last, entries_added, max_deleted);
    // Redis 7.0.15 does not signal XSETID to WATCH.
    g.unsignaled(key);
    drop(g);
    ctx.out.ok();
    ctx.notify(notify::STREAM, "xsetid", key);
    Ok(())
}
