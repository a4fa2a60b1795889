//! XRANGE XREVRANGE.

use amber_storage::types::stream::StreamId;

use super::{id, read_stream, reply_entry};
use crate::cmd::args::{is_c, nth};
use crate::cmd::error::{CmdError, CmdResult};
use crate::cmd::Ctx;

/// XRANGE key start end [COUNT count]
pub(super) fn xrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    range(ctx, args, false)
}

/// XREVRANGE key end start [COUNT count]
pub(super) fn xrevrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    range(ctx, args, true)
}

/// The bounds of a range: start (inclusive, `(` excludes) and end, as
/// `xrangeGenericCommand` parses them.
pub(super) fn bounds(start: &[u8], end: &[u8]) -> Result<(StreamId, StreamId), CmdError> {
    let (mut s, s_ex) = id::parse_interval(start, 0)?;
    if s_ex {
        s = s
            .next()
            .ok_or_else(|| CmdError::err("invalid start ID for the interval"))?;
    }
    let (mut e, e_ex) = id::parse_interval(end, u64::MAX)?;
    if e_ex {
        e = e
            .prev()
            .ok_or_else(|| CmdError::err("invalid end ID for the interval"))?;
    }
    Ok((s, e))
}

fn range(ctx: &mut Ctx<'_>, args: &[&[u8]], rev: bool) -> CmdResult {
    let key = nth(args, 1);
    let (start, end) = if rev {
        (nth(args, 3), nth(args, 2))
    } else {
        (nth(args, 2), nth(args, 3))
    };
    let (start, end) = bounds(start, end)?;
    let mut count: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        if is_c(nth(args, j), "COUNT") && j + 1 < args.len() {
            count = crate::cmd::args::int(nth(args, j + 1))?.max(0);
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let mut g = ctx.lock_one(key)?;
    let Some(s) = read_stream(ctx, &mut g, key)? else {
        ctx.out.array(0);
        return Ok(());
    };
    if count == 0 {
        ctx.out.null_array();
        return Ok(());
    }
    let limit = usize::try_from(count).unwrap_or(usize::MAX);
    let items: Vec<_> = if rev {
        s.range(start, end).rev().take(limit).collect()
    } else {
        s.range(start, end).take(limit).collect()
    };
    ctx.out.array(items.len());
    for (id, fields) in items {
        reply_entry(ctx.out, id, fields);
    }
    Ok(())
}
