//! Database commands: DBSIZE FLUSHDB FLUSHALL SWAPDB. (SELECT lives with the
//! connection commands, MOVE and COPY with the key commands.)

use amber_storage::{Flushed, DB_COUNT};

use super::args::{self, is};
use super::error::{CmdError, CmdResult, DB_RANGE};
use super::{Ctx, Handler};

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("dbsize", dbsize),
    ("flushdb", flushdb),
    ("flushall", flushall),
    ("swapdb", swapdb),
];

/// Counts keys not yet collected after their deadline, as Redis does.
fn dbsize(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let n = ctx.srv.keyspace.dbsize(ctx.db());
    ctx.out.int(n as i64);
    Ok(())
}

/// Whether a FLUSHDB / FLUSHALL frees memory in the background: `ASYNC`,
/// `SYNC`, or with no argument the `lazyfree-lazy-user-flush` directive.
fn flush_is_async(ctx: &Ctx<'_>, args: &[&[u8]]) -> Result<bool, CmdError> {
    match args {
        [_] => Ok(ctx.srv.config.get_bool("lazyfree-lazy-user-flush")),
        [_, mode] if is(mode, "SYNC") => Ok(false),
        [_, mode] if is(mode, "ASYNC") => Ok(true),
        _ => Err(CmdError::Syntax),
    }
}

/// Frees flushed data: on the lazyfree thread for ASYNC (the databases
/// are already empty, only the memory release is deferred; see
/// `crate::lazyfree`), here otherwise.
fn release(srv: &crate::state::ServerState, flushed: Flushed, background: bool) {
    if background {
        srv.lazyfree.free_flushed(flushed);
    }
}

fn flushdb(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let background = flush_is_async(ctx, args)?;
    release(ctx.srv, ctx.srv.keyspace.detach_db(ctx.db()), background);
    ctx.srv.tracking.flushed(ctx.srv, ctx.client.handle.id);
    ctx.out.ok();
    Ok(())
}

fn flushall(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let background = flush_is_async(ctx, args)?;
    release(ctx.srv, ctx.srv.keyspace.detach_all(), background);
    ctx.srv.tracking.flushed(ctx.srv, ctx.client.handle.id);
    ctx.out.ok();
    Ok(())
}

/// A SWAPDB index: not an integer or outside C `int` gives `msg`; outside the
/// databases gives `DB index is out of range` (checked after both parse).
fn swap_index(a: &[u8], msg: &str) -> Result<i64, CmdError> {
    args::parse_i64(a)
        .filter(|v| (i32::MIN as i64..=i32::MAX as i64).contains(v))
        .ok_or_else(|| CmdError::err(msg))
}

/// SWAPDB runs alone (EXCLUSIVE): no command sees a half-swapped pair.
fn swapdb(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let a = swap_index(
        args.get(1).copied().unwrap_or_default(),
        "invalid first DB index",
    )?;
    let b = swap_index(
        args.get(2).copied().unwrap_or_default(),
        "invalid second DB index",
    )?;
    let in_range = |v: i64| v >= 0 && (v as usize) < DB_COUNT;
    if !in_range(a) || !in_range(b) {
        return Err(CmdError::msg(DB_RANGE));
    }
    let (a, b) = (a as usize, b as usize);
    ctx.srv.keyspace.swap_db(a, b)?;
    ctx.out.ok();
    if a != b {
        // Blocked clients stay in their database, whose keys changed under
        // them: serve every waited key that now holds data, as Redis's
        // `scanDatabaseForReadyKeys` on both databases.
        let waited_a = ctx.srv.blocking.waited_keys(a);
        let waited_b = ctx.srv.blocking.waited_keys(b);
        crate::blocking::signal_keys(ctx, a, waited_a);
        crate::blocking::signal_keys(ctx, b, waited_b);
    }
    Ok(())
}
