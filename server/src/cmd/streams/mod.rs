//! Stream commands, one module per family: `add` (XADD XTRIM XDEL XLEN
//! XSETID), `range` (XRANGE XREVRANGE), `read` (XREAD XREADGROUP and their
//! blocking), `groups` (XGROUP XACK XPENDING XCLAIM XAUTOCLAIM), `info`
//! (XINFO), `id` (ID arguments).
//!
//! Semantics, reply shapes and error texts follow Redis 7.0.15's
//! `t_stream.c`; the value type is `amber_storage::types::stream`.

mod add;
mod effects;
mod groups;
pub mod id;
mod info;
mod range;
mod read;

use amber_storage::types::stream::{Fields, NodeLimits, StreamId};
use amber_storage::types::StreamValue;
use amber_storage::{Guard, Value};

use super::error::CmdError;
use super::{Ctx, Handler};
use crate::config::HotConfig;
use crate::resp::ReplyWriter;

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("xadd", add::xadd),
    ("xtrim", add::xtrim),
    ("xdel", add::xdel),
    ("xlen", add::xlen),
    ("xsetid", add::xsetid),
    ("xrange", range::xrange),
    ("xrevrange", range::xrevrange),
    ("xread", read::xread),
    ("xreadgroup", read::xreadgroup),
    ("xgroup|create", groups::create),
    ("xgroup|setid", groups::setid),
    ("xgroup|destroy", groups::destroy),
    ("xgroup|createconsumer", groups::createconsumer),
    ("xgroup|delconsumer", groups::delconsumer),
    ("xgroup|help", groups::help),
    ("xack", groups::xack),
    ("xpending", groups::xpending),
    ("xclaim", groups::xclaim),
    ("xautoclaim", groups::xautoclaim),
    ("xinfo|stream", info::stream),
    ("xinfo|groups", info::groups),
    ("xinfo|consumers", info::consumers),
    ("xinfo|help", info::help),
];

/// The current `stream-node-max-*` directives.
fn node_limits(ctx: &Ctx<'_>) -> NodeLimits {
    let hot = &ctx.srv.config.hot;
    NodeLimits {
        max_bytes: HotConfig::count(&hot.stream_node_max_bytes),
        max_entries: HotConfig::count(&hot.stream_node_max_entries) as u64,
    }
}

/// The stream at `key` for reading: `Ok(None)` when absent, `WRONGTYPE` for
/// another type. Counts a keyspace hit or miss.
fn read_stream<'g>(
    ctx: &Ctx<'_>,
    g: &'g mut Guard<'_>,
    key: &[u8],
) -> Result<Option<&'g StreamValue>, CmdError> {
    let found = g.get(key);
    ctx.srv.stats.hit(found.is_some());
    match found {
        None => Ok(None),
        Some(Value::Stream(s)) => Ok(Some(s)),
        Some(_) => Err(CmdError::WrongType),
    }
}

/// The stream at `key` for writing (`WRONGTYPE` for another type, which
/// is not taken for writing). The caller declares it `unchanged` if it
/// changes nothing.
fn write_stream<'g>(
    g: &'g mut Guard<'_>,
    key: &[u8],
) -> Result<Option<&'g mut StreamValue>, CmdError> {
    if !peek_type(g, key)? {
        return Ok(None);
    }
    match g.get_mut(key) {
        Some(Value::Stream(s)) => Ok(Some(s)),
        _ => Ok(None),
    }
}

/// Whether `key` holds a stream (`WRONGTYPE` for another type), without
/// counting a lookup or taking it for writing.
fn peek_type(g: &mut Guard<'_>, key: &[u8]) -> Result<bool, CmdError> {
    match g.peek(key) {
        None => Ok(false),
        Some(Value::Stream(_)) => Ok(true),
        Some(_) => Err(CmdError::WrongType),
    }
}

/// Writes an entry: `[id, [field, value, ...]]`.
fn reply_entry(out: &mut ReplyWriter, id: StreamId, fields: &Fields) {
    out.array(2);
    out.bulk(id.to_string().as_bytes());
    out.array(fields.len());
    for f in fields.iter() {
        out.bulk(f);
    }
}

/// Writes a bulk ID.
fn reply_id(out: &mut ReplyWriter, id: StreamId) {
    out.bulk(id.to_string().as_bytes());
}

/// `-ERR unknown subcommand or wrong number of arguments for '<sub>'. Try
/// <COMMAND> HELP.` (Redis's `addReplySubcommandSyntaxError`).
fn subcommand_syntax(args: &[&[u8]]) -> CmdError {
    use super::args::{c_str, nth, text};
    CmdError::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        text(c_str(nth(args, 1))),
        text(nth(args, 0)).to_uppercase()
    ))
}
