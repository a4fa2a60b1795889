//! Server administration: TIME LASTSAVE SAVE BGSAVE SHUTDOWN,
//! SLOWLOG and LATENCY.
//!
//! Durability in Amber comes from the persistent-memory arena, not from RDB
//! snapshots: SAVE and BGSAVE ask the storage engine for a save point
//! ([`crate::ServerState::save_point`]) and answer as Redis does.

use std::sync::atomic::Ordering;

use super::args::{is, parse_i64, text};
use super::error::{CmdError, CmdResult};
use super::{Ctx, Handler};

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("time", time),
    ("lastsave", lastsave),
    ("save", save),
    ("bgsave", bgsave),
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

fn save(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    match ctx.srv.save_point() {
        Ok(()) => {
            ctx.out.ok();
            Ok(())
        }
        Err(e) => {
            tracing::warn!(error = %e, "SAVE failed");
            Err(CmdError::msg("ERR"))
        }
    }
}

fn bgsave(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    match args {
        [_] => {}
        [_, opt] if is(opt, "schedule") => {}
        _ => return Err(CmdError::Syntax),
    }
    match ctx.srv.save_point() {
        Ok(()) => {
            ctx.out.simple("Background saving started");
            Ok(())
        }
        Err(e) => {
            tracing::warn!(error = %e, "BGSAVE failed");
            Err(CmdError::msg("ERR"))
        }
    }
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
    let wants_save =
        save || (!nosave && !ctx.srv.config.get("save").unwrap_or_default().is_empty());
    if wants_save {
        if let Err(e) = ctx.srv.save_point() {
            tracing::warn!(error = %e, "save point before shutdown failed");
            if !other {
                return Err(CmdError::err("Errors trying to SHUTDOWN. Check logs."));
            }
        }
    }
    tracing::warn!("User requested shutdown...");
    ctx.srv.request_shutdown();
    // Like Redis, no reply: the connection just closes.
    ctx.client.close_after_reply = true;
    Ok(())
}

// SLOWLOG: Amber does not record slow commands yet; the log is always empty.

fn slowlog_get(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
            text(args.get(1).copied().unwrap_or_default())
        )));
    }
    if let Some(c) = args.get(2) {
        match parse_i64(c) {
            Some(n) if n >= -1 => {}
            _ => return Err(CmdError::err("count should be greater than or equal to -1")),
        }
    }
    ctx.out.array(0);
    Ok(())
}

fn slowlog_len(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    ctx.out.int(0);
    Ok(())
}

fn slowlog_reset(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
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

// LATENCY: Amber does not sample latency events yet (latency-monitor-threshold
// is stored only), so there is never an event to report.

fn latency_latest(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    ctx.out.array(0);
    Ok(())
}

fn latency_history(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    ctx.out.array(0);
    Ok(())
}

fn latency_reset(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    ctx.out.int(0);
    Ok(())
}

fn latency_graph(_ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    Err(CmdError::err(format!(
        "No samples available for event '{}'",
        text(args.get(2).copied().unwrap_or_default())
    )))
}

fn latency_doctor(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let report = if ctx.srv.config.get_i64("latency-monitor-threshold") == 0 {
        "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n"
    } else {
        "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n"
    };
    ctx.out.verbatim("txt", report.as_bytes());
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
