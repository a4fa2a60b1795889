//! Server administration: TIME LASTSAVE SAVE BGSAVE SHUTDOWN,
//! SLOWLOG and LATENCY (the logs themselves: [`crate::slowlog`],
//! [`crate::latency`]).
//!
//! Durability in Amber comes from the persistent-memory arena; SAVE, BGSAVE
//! and SHUTDOWN SAVE also write Redis's `dump.rdb` ([`crate::snapshot`])
//! and take a save point in the arena ([`crate::ServerState::save_point`]).

use std::sync::atomic::Ordering;

use super::args::{is, parse_i64, text};
use super::error::{CmdError, CmdResult};
use super::table::CommandTable;
use super::{Ctx, Handler};
use crate::snapshot;

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("time", time),
    ("lastsave", lastsave),
    ("save", save),
    ("bgsave", bgsave),
    ("bgrewriteaof", bgrewriteaof),
    ("shutdown", shutdown),
    ("slowlog|get", slowlog_get),
    ("slowlog|len", slowlog_len),
    ("slowlog|reset", slowlog_reset),
    ("slowlog|help", slowlog_help),
    ("latency|latest", latency_latest),
    ("latency|history", latency_history),
    ("latency|reset", latency_reset),
    ("latency|graph", latency_graph),
    ("latency|doctor", latency_doctor),
    ("latency|help", latency_help),
    ("latency|histogram", latency_histogram),
];

/// Redis's `addReplyHelp`: the header, the lines, then HELP's own entry.
pub fn reply_help(ctx: &mut Ctx<'_>, args: &[&[u8]], lines: &[&str]) {
    let name = text(args.first().copied().unwrap_or_default()).to_uppercase();
    ctx.out.array(lines.len() + 3);
    ctx.out.simple(&format!(
        "{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ));
    for l in lines {
        ctx.out.simple(l);
    }
    ctx.out.simple("HELP");
    ctx.out.simple("    Prints this help.");
}

fn time(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let us = amber_storage::clock::now_us();
    ctx.out.array(2);
    ctx.out.bulk_int((us / 1_000_000) as i64);
    ctx.out.bulk_int((us % 1_000_000) as i64);
    Ok(())
}

fn lastsave(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    ctx.out
        .int(ctx.srv.last_save.load(Ordering::Relaxed) as i64);
    Ok(())
}

/// Redis's text when a `BGSAVE` runs.
const BGSAVE_RUNNING: &str = "Background save already in progress";

/// `SAVE`: writes `dump.rdb` under the exclusive gate (a point-in-time
/// snapshot; every other command waits), then takes a save point.
fn save(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    if ctx.srv.rdb.child_running() {
        return Err(CmdError::err(BGSAVE_RUNNING));
    }
    match snapshot::save_and_sync(ctx.srv) {
        Ok(_) => {
            ctx.out.ok();
            Ok(())
        }
        Err(_) => Err(CmdError::msg("ERR")),
    }
}

/// `BGSAVE [SCHEDULE]`: Amber cannot fork; the snapshot is a live one
/// (see `crate::snapshot::live`): it starts under the exclusive gate, the
/// instant of this command, and a background thread writes the file while
/// every command keeps running. The reply comes at once. Inside `EXEC`
/// (which holds the gate) it is scheduled, as in Redis, and started by the
/// background cron after the transaction. While a replica's full sync
/// produces its payload (Redis's RDB child for replication) it answers
/// `Background save already in progress`, `SCHEDULE` or not, as Redis; in
/// the instant between that snapshot's start and its production, it is
/// scheduled (`SCHEDULE`) or refused with Redis's "Another child" text.
/// `BGSAVE` and `LASTSAVE` run without the gate.
fn bgsave(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let schedule = match args {
        [_] => false,
        [_, opt] if is(opt, "schedule") => true,
        _ => return Err(CmdError::Syntax),
    };
    match start_bgsave(ctx.srv, schedule, ctx.client.in_exec)? {
        Bgsave::Started => ctx.out.simple("Background saving started"),
        Bgsave::Scheduled => ctx.out.simple("Background saving scheduled"),
    }
    Ok(())
}

/// What [`start_bgsave`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bgsave {
    /// The snapshot started; a thread writes the file.
    Started,
    /// It starts later (`rdb_bgsave_scheduled`; see `crate::background`).
    Scheduled,
}

/// Redis's text when another snapshot (a replica's full sync about to
/// produce its payload) runs.
const SNAPSHOT_BUSY: &str = "Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.";

/// Starts a background save (`BGSAVE`, the `save` points' timed saves, a
/// scheduled one): takes the exclusive gate briefly to start a live
/// snapshot, then a thread writes the file. Redis's error when one
/// already runs. `schedule`: schedule it when another snapshot runs;
/// `in_exec`: the caller holds the gate (`EXEC`), so it is scheduled.
pub fn start_bgsave(
    srv: &crate::state::ServerState,
    schedule: bool,
    in_exec: bool,
) -> Result<Bgsave, CmdError> {
    let rdb = &srv.rdb;
    if srv.rdb.child_running() {
        return Err(CmdError::err(BGSAVE_RUNNING));
    }
    let scheduled = || {
        rdb.bgsave_scheduled.store(true, Ordering::Relaxed);
        Ok(Bgsave::Scheduled)
    };
    if in_exec {
        return scheduled();
    }
    let busy = || {
        if schedule {
            scheduled()
        } else {
            Err(CmdError::err(SNAPSHOT_BUSY))
        }
    };
    if srv.keyspace.snapshot_running() {
        return busy();
    }
    let Some(shared) = srv.shared() else {
        return Err(CmdError::msg("ERR"));
    };
    if rdb.bgsave_in_progress.swap(true, Ordering::AcqRel) {
        return Err(CmdError::err(BGSAVE_RUNNING));
    }
    let t = std::time::Instant::now();
    rdb.bgsave_started
        .store(amber_storage::clock::now_ms() / 1000, Ordering::Relaxed);
    // Not past a script's `busy-reply-threshold`: a `BGSAVE` that came
    // while the script runs gets Redis's `-BUSY` then, and a timed save
    // tries again later (Redis's `serverCron` waits for the script).
    let long_script = || crate::cmd::scripting::busy::long_running(srv);
    let gate = loop {
        let waited = srv
            .keyspace
            .exclusive_unless(crate::cmd::GATE_SLICE, || long_script().is_some());
        if let Some(gate) = waited {
            break gate;
        }
        if let Some(busy) = long_script() {
            rdb.bgsave_started.store(0, Ordering::Relaxed);
            rdb.bgsave_in_progress.store(false, Ordering::Release);
            return Err(busy);
        }
    };
    let snap = snapshot::live::LiveSnapshot::begin(shared.clone());
    drop(gate);
    let snap = match snap {
        Ok(s) => s,
        Err(e) => {
            // A full sync's snapshot started in between.
            tracing::debug!(error = %e, "BGSAVE: no snapshot");
            rdb.bgsave_started.store(0, Ordering::Relaxed);
            rdb.bgsave_in_progress.store(false, Ordering::Release);
            return busy();
        }
    };
    rdb.bgsave_scheduled.store(false, Ordering::Relaxed);
    let spawned = std::thread::Builder::new()
        .name("amber-bgsave".into())
        .spawn(move || {
            let ok = snapshot::save_live(snap).is_ok();
            let rdb = &shared.rdb;
            rdb.last_bgsave_ok.store(ok, Ordering::Relaxed);
            rdb.last_bgsave_secs
                .store(t.elapsed().as_secs() as i64, Ordering::Relaxed);
            rdb.bgsave_started.store(0, Ordering::Relaxed);
            rdb.bgsave_in_progress.store(false, Ordering::Release);
        });
    match spawned {
        Ok(_) => {
            tracing::info!("Background saving started");
            Ok(Bgsave::Started)
        }
        Err(e) => {
            // The snapshot moved into the closure was dropped: it ended.
            tracing::warn!(error = %e, "cannot start the background save thread");
            rdb.last_bgsave_ok.store(false, Ordering::Relaxed);
            rdb.bgsave_started.store(0, Ordering::Relaxed);
            rdb.bgsave_in_progress.store(false, Ordering::Release);
            Err(CmdError::msg("ERR"))
        }
    }
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`. `SAVE` writes
/// `dump.rdb` (and takes a save point). Without `SAVE` or `NOSAVE`, when
/// `save` points are configured: with `persistence pmem` the arena is the
/// durable copy and a save point is taken (no file: the next start
/// recovers the arena and would ignore it); without it, `dump.rdb` is
/// written, as Redis does, since nothing else survives the restart.
/// `BGREWRITEAOF`: Amber has no append-only file to rewrite; its arena
/// is compacted in the background all the time. Scripts and operators
/// that call it get Redis's reply, after a save point (everything
/// acknowledged is synced to the arena, as `SAVE` does).
fn bgrewriteaof(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    ctx.srv.save_point().map_err(|e| {
        tracing::warn!(error = %e, "BGREWRITEAOF: the save point failed");
        CmdError::err(
            "Can't execute an AOF background rewriting. Please check the server logs for more information.",
        )
    })?;
    ctx.out
        .simple("Background append only file rewriting started");
    Ok(())
}

fn shutdown(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (mut nosave, mut save, mut abort, mut other) = (false, false, false, false);
    for a in args.iter().skip(1) {
        if is(a, "nosave") {
            nosave = true;
        } else if is(a, "save") {
            save = true;
        } else if is(a, "now") || is(a, "force") {
            other = true;
        } else if is(a, "abort") {
            abort = true;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if (abort && (nosave || save || other)) || (nosave && save) {
        return Err(CmdError::Syntax);
    }
    if abort {
        // Amber shuts down at once: there is never a shutdown to abort.
        return Err(CmdError::err("No shutdown in progress."));
    }
    let srv = ctx.srv;
    // A script running long: only `NOSAVE` shuts down (and stops it), as
    // Redis's `shutdownCommand`; it runs without the gate the script holds
    // (`scripting::busy::check`).
    let script_running = match crate::cmd::scripting::busy::long_running(srv) {
        Some(busy) if !nosave => return Err(busy),
        Some(_) => true,
        None => false,
    };
    let save_points = !srv.config.get("save").unwrap_or_default().is_empty();
    let pmem = srv.config.get("persistence").as_deref() == Some("pmem");
    let result = if save || (!nosave && save_points && !pmem) {
        snapshot::save_and_sync(srv).map(|_| ())
    } else if !nosave && save_points {
        srv.save_point()
    } else {
        Ok(())
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "saving before shutdown failed");
        if !other {
            return Err(CmdError::err("Errors trying to SHUTDOWN. Check logs."));
        }
    }
    srv.rdb.shutdown_saved.store(true, Ordering::Relaxed);
    tracing::warn!("User requested shutdown...");
    srv.request_shutdown();
    if script_running {
        // Stopped once the shutdown is seen, so its client gets no reply
        // (Redis exits under the script).
        srv.scripting.busy.abort();
    }
    // Like Redis, no reply: the connection just closes.
    ctx.client.close_after_reply = true;
    Ok(())
}

/// `SLOWLOG GET [count]`: the newest `count` entries (10 by default, all
/// with -1), newest first, as Redis's `slowlogCommand`.
fn slowlog_get(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
            text(args.get(1).copied().unwrap_or_default())
        )));
    }
    let count = match args.get(2) {
        None => Some(10),
        Some(c) => match parse_i64(c) {
            Some(-1) => None,
            Some(n) if n >= 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            _ => return Err(CmdError::err("count should be greater than or equal to -1")),
        },
    };
    let entries = ctx.srv.slowlog.newest(count);
    ctx.out.array(entries.len());
    for e in entries {
        ctx.out.array(6);
        ctx.out.int(e.id as i64);
        ctx.out.int(e.time as i64);
        ctx.out.int(e.duration_us as i64);
        ctx.out.array(e.args.len());
        for a in &e.args {
            ctx.out.bulk(a);
        }
        ctx.out.bulk(e.peer.as_bytes());
        ctx.out.bulk(&e.name);
    }
    Ok(())
}

fn slowlog_len(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    ctx.out.int(ctx.srv.slowlog.len() as i64);
    Ok(())
}

fn slowlog_reset(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    ctx.srv.slowlog.reset();
    ctx.out.ok();
    Ok(())
}

fn slowlog_help(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    reply_help(
        ctx,
        args,
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    );
    Ok(())
}

/// `LATENCY LATEST`: each event's newest sample and worst ever, as
/// `[event, time, latency, max]`.
fn latency_latest(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let events = ctx.srv.latency.all();
    ctx.out.array(events.len());
    for (name, series) in events {
        let last = series.latest();
        ctx.out.array(4);
        ctx.out.bulk(name.as_bytes());
        ctx.out.int(last.time as i64);
        ctx.out.int(last.latency as i64);
        ctx.out.int(series.max as i64);
    }
    Ok(())
}

/// `LATENCY HISTORY event`: its samples, oldest first, as `[time, latency]`.
fn latency_history(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let event = args.get(2).copied().unwrap_or_default();
    let samples = ctx
        .srv
        .latency
        .get(event)
        .map(|s| s.history())
        .unwrap_or_default();
    ctx.out.array(samples.len());
    for s in samples {
        ctx.out.array(2);
        ctx.out.int(s.time as i64);
        ctx.out.int(s.latency as i64);
    }
    Ok(())
}

/// `LATENCY RESET [event ...]`: forgets the events named (all of them
/// without a name); replies how many were forgotten.
fn latency_reset(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let latency = &ctx.srv.latency;
    let resets = match args.get(2..) {
        Some(names) if !names.is_empty() => names.iter().map(|n| latency.reset(Some(n))).sum(),
        _ => latency.reset(None),
    };
    ctx.out.int(resets as i64);
    Ok(())
}

/// `LATENCY GRAPH event`: an ASCII graph of its samples.
fn latency_graph(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let event = args.get(2).copied().unwrap_or_default();
    let Some(series) = ctx.srv.latency.get(event) else {
        return Err(CmdError::err(format!(
            "No samples available for event '{}'",
            text(event)
        )));
    };
    let now = amber_storage::clock::now_ms() / 1000;
    let graph = crate::latency::graph(&text(event), &series, now);
    ctx.out.verbatim("txt", graph.as_bytes());
    Ok(())
}

/// `LATENCY DOCTOR`: Redis's human-readable report.
fn latency_doctor(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let now = amber_storage::clock::now_ms() / 1000;
    let report = crate::latency::doctor(ctx.srv, now);
    ctx.out.verbatim("txt", report.as_bytes());
    Ok(())
}

/// `LATENCY HISTOGRAM [command ...]`: for each command that has run (all
/// of them, or those named, with their subcommands), its calls and
/// cumulative latency distribution (`cmd::histogram`), as Redis 7.0's
/// `latencyAllCommandsFillCDF`/`latencySpecificCommandsFillCDF`. Unknown
/// names are skipped, as in Redis.
fn latency_histogram(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let table = &ctx.srv.commands;
    let defs = match args.get(2..) {
        Some(names) if !names.is_empty() => names
            .iter()
            .filter_map(|n| table.by_full_name(n))
            .flat_map(CommandTable::with_subcommands)
            .collect(),
        _ => table.all_with_subcommands(),
    };
    let with_data: Vec<_> = defs
        .iter()
        .map(|d| (&d.name, d.stats.latency.cdf()))
        .filter(|(_, (calls, _))| *calls > 0)
        .collect();
    ctx.out.map(with_data.len());
    for (name, (calls, cdf)) in with_data {
        ctx.out.bulk(name.as_bytes());
        ctx.out.map(2);
        ctx.out.bulk(b"calls");
        ctx.out.int(calls as i64);
        ctx.out.bulk(b"histogram_usec");
        ctx.out.map(cdf.len());
        for (usec, count) in cdf {
            ctx.out.int(usec as i64);
            ctx.out.int(count as i64);
        }
    }
    Ok(())
}

fn latency_help(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    reply_help(
        ctx,
        args,
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    );
    Ok(())
}
