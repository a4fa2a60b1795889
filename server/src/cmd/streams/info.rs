//! XINFO STREAM / GROUPS / CONSUMERS / HELP.

use amber_storage::types::stream::{Group, StreamId, ENTRIES_READ_UNKNOWN};
use amber_storage::types::StreamValue;

use super::{read_stream, reply_entry, reply_id, subcommand_syntax};
use crate::cmd::admin::reply_help;
use crate::cmd::args::{self, is_c, nth, text};
use crate::cmd::error::{CmdError, CmdResult};
use crate::cmd::Ctx;
use crate::resp::ReplyWriter;

/// Runs `f` on the stream at `args[2]` (`ERR no such key` when absent).
fn with_stream(
    ctx: &mut Ctx<'_>,
    args: &[&[u8]],
    f: impl FnOnce(&mut ReplyWriter, &StreamValue, u64) -> CmdResult,
) -> CmdResult {
    let key = nth(args, 2);
    let mut g = ctx.lock_one(key)?;
    let now = g.now_ms();
    let Some(s) = read_stream(ctx, &mut g, key)? else {
        return Err(CmdError::err("no such key"));
    };
    f(ctx.out, s, now)
}

/// A group's `entries-read` (nil when unknown).
fn entries_read(out: &mut ReplyWriter, g: &Group) {
    if g.entries_read == ENTRIES_READ_UNKNOWN {
        out.null();
    } else {
        out.int(g.entries_read);
    }
}

/// A group's `lag` (nil when unknown).
fn lag(out: &mut ReplyWriter, s: &StreamValue, g: &Group) {
    match s.group_lag(g) {
        Some(l) => out.int(l),
        None => out.null(),
    }
}

/// XINFO STREAM key [FULL [COUNT count]]
pub(super) fn stream(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let opts = args.get(3..).unwrap_or_default();
    let mut full = false;
    let mut count: i64 = 10;
    if let Some(first) = opts.first() {
        if !is_c(first, "FULL") {
            return Err(subcommand_syntax(args));
        }
        full = true;
        if opts.len() > 1 {
            if opts.len() != 3 || !is_c(nth(opts, 1), "COUNT") {
                return Err(subcommand_syntax(args));
            }
            count = args::int(nth(opts, 2))?;
            if count < 0 {
                count = 10;
            }
        }
    }
    let limit = if count == 0 {
        usize::MAX
    } else {
        count as usize
    };
    with_stream(ctx, args, |out, s, _| {
        out.map(if full { 9 } else { 10 });
        out.bulk(b"length");
        out.int(s.len() as i64);
        out.bulk(b"radix-tree-keys");
        out.int(s.node_count() as i64);
        out.bulk(b"radix-tree-nodes");
        out.int(s.rax_nodes() as i64);
        out.bulk(b"last-generated-id");
        reply_id(out, s.last_id());
        out.bulk(b"max-deleted-entry-id");
        reply_id(out, s.max_deleted());
        out.bulk(b"entries-added");
        out.int(s.entries_added() as i64);
        out.bulk(b"recorded-first-entry-id");
        reply_id(out, s.first_id());
        if !full {
            out.bulk(b"groups");
            out.int(s.groups().len() as i64);
            out.bulk(b"first-entry");
            match s.first() {
                Some((id, f)) => reply_entry(out, id, f),
                None => out.null(),
            }
            out.bulk(b"last-entry");
            match s.last() {
                Some((id, f)) => reply_entry(out, id, f),
                None => out.null(),
            }
            return Ok(());
        }
        out.bulk(b"entries");
        let entries: Vec<_> = s.range(StreamId::MIN, StreamId::MAX).take(limit).collect();
        out.array(entries.len());
        for (id, f) in entries {
            reply_entry(out, id, f);
        }
        out.bulk(b"groups");
        out.array(s.groups().len());
        for (name, g) in s.groups() {
            out.map(7);
            out.bulk(b"name");
            out.bulk(name);
            out.bulk(b"last-delivered-id");
            reply_id(out, g.last_id);
            out.bulk(b"entries-read");
            entries_read(out, g);
            out.bulk(b"lag");
            lag(out, s, g);
            out.bulk(b"pel-count");
            out.int(g.pel.len() as i64);
            out.bulk(b"pending");
            let pel: Vec<_> = g.pel.iter().take(limit).collect();
            out.array(pel.len());
            for (id, p) in pel {
                out.array(4);
                reply_id(out, *id);
                out.bulk(&p.consumer);
                out.int(p.delivery_time as i64);
                out.int(p.delivery_count as i64);
            }
            out.bulk(b"consumers");
            out.array(g.consumers.len());
            for (cname, c) in &g.consumers {
                out.map(4);
                out.bulk(b"name");
                out.bulk(cname);
                out.bulk(b"seen-time");
                out.int(c.seen_time as i64);
                out.bulk(b"pel-count");
                out.int(c.pel.len() as i64);
                out.bulk(b"pending");
                let ids: Vec<_> = c.pel.iter().take(limit).collect();
                out.array(ids.len());
                for id in ids {
                    let p = g.pel.get(id);
                    out.array(3);
                    reply_id(out, *id);
                    out.int(p.map_or(0, |p| p.delivery_time as i64));
                    out.int(p.map_or(0, |p| p.delivery_count as i64));
                }
            }
        }
        Ok(())
    })
}

/// XINFO GROUPS key
pub(super) fn groups(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    with_stream(ctx, args, |out, s, _| {
        out.array(s.groups().len());
        for (name, g) in s.groups() {
            out.map(6);
            out.bulk(b"name");
            out.bulk(name);
            out.bulk(b"consumers");
            out.int(g.consumers.len() as i64);
            out.bulk(b"pending");
            out.int(g.pel.len() as i64);
            out.bulk(b"last-delivered-id");
            reply_id(out, g.last_id);
            out.bulk(b"entries-read");
            entries_read(out, g);
            out.bulk(b"lag");
            lag(out, s, g);
        }
        Ok(())
    })
}

/// XINFO CONSUMERS key group
pub(super) fn consumers(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, group) = (nth(args, 2), nth(args, 3));
    with_stream(ctx, args, |out, s, now| {
        let Some(g) = s.group(group) else {
            return Err(CmdError::msg(format!(
                "NOGROUP No such consumer group '{}' for key name '{}'",
                text(args::c_str(group)),
                text(args::c_str(key))
            )));
        };
        out.array(g.consumers.len());
        for (name, c) in &g.consumers {
            out.map(3);
            out.bulk(b"name");
            out.bulk(name);
            out.bulk(b"pending");
            out.int(c.pel.len() as i64);
            out.bulk(b"idle");
            out.int((now as i64).wrapping_sub(c.seen_time as i64).max(0));
        }
        Ok(())
    })
}

/// XINFO HELP
pub(super) fn help(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    reply_help(
        ctx,
        args,
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    );
    Ok(())
}
