//! Replication commands. Amber follows a Redis master (`REPLICAOF`,
//! `SLAVEOF`; the link itself is `crate::replica`) and serves replicas
//! (`SYNC`/`PSYNC`/`REPLCONF` are in `crate::replication::sync`): ROLE
//! lists them and WAIT counts their acknowledgements. MONITOR is here
//! too: Redis makes a monitor a replica (`CLIENT_SLAVE|CLIENT_MONITOR`).

use std::sync::atomic::Ordering;

use amber_storage::Guard;

use super::args::{self, nth};
use super::error::{CmdError, CmdResult};
use super::{Ctx, Handler};
use crate::blocking::{self, BlockedOp, Events, Outcome};
use crate::resp::ReplyWriter;

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("failover", failover),
    ("monitor", monitor),
    ("replicaof", replicaof),
    ("role", role),
    ("slaveof", replicaof),
    ("wait", wait),
];

/// `FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms]`
/// (`failoverCommand`): checks as Redis does, then starts the failover
/// (`crate::replication::failover`): writes pause until a replica caught
/// up, which then takes over as master.
fn failover(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    use crate::replication::failover::State;
    let srv = ctx.srv;
    if args.len() == 2 && args::is(nth(args, 1), "abort") {
        if srv.master.failover.state() == State::None {
            return Err(CmdError::err("No failover in progress."));
        }
        srv.master.failover.abort(srv, "Failover manually aborted");
        ctx.out.ok();
        return Ok(());
    }
    let (mut timeout, mut to, mut force) = (0i64, None, false);
    let mut j = 1;
    while j < args.len() {
        let a = nth(args, j);
        if args::is(a, "timeout") && j + 1 < args.len() && timeout == 0 {
            timeout = args::int(nth(args, j + 1))?;
            if timeout <= 0 {
                return Err(CmdError::err("FAILOVER timeout must be greater than 0"));
            }
            j += 1;
        } else if args::is(a, "to") && j + 2 < args.len() && to.is_none() {
            let port = args::int(nth(args, j + 2))?;
            to = Some((String::from_utf8_lossy(nth(args, j + 1)).into_owned(), port));
            j += 2;
        } else if args::is(a, "force") && !force {
            force = true;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if srv.master.failover.state() != State::None {
        return Err(CmdError::err("FAILOVER already in progress."));
    }
    if srv.replication.is_replica() {
        return Err(CmdError::err(
            "FAILOVER is not valid when server is a replica.",
        ));
    }
    let replicas = srv.master.view().replicas;
    if replicas.is_empty() {
        return Err(CmdError::err("FAILOVER requires connected replicas."));
    }
    if force && (timeout == 0 || to.is_none()) {
        return Err(CmdError::err(
            "FAILOVER with force option requires both a timeout and target HOST and IP.",
        ));
    }
    let target = match to {
        Some((host, port)) => {
            let found = replicas
                .iter()
                .any(|r| r.ip.eq_ignore_ascii_case(&host) && i64::from(r.port) == port);
            if !found {
                return Err(CmdError::err(
                    "FAILOVER target HOST and PORT is not a replica.",
                ));
            }
            Some((host, u16::try_from(port).unwrap_or(0)))
        }
        None => None,
    };
    srv.master
        .failover
        .start(srv, target, timeout as u64, force);
    ctx.out.ok();
    Ok(())
}

/// REPLICAOF host port / REPLICAOF NO ONE (`replicaofCommand`).
fn replicaof(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let host = nth(args, 1);
    let port = nth(args, 2);
    let srv = ctx.srv;
    if srv.master.failover.state() != crate::replication::failover::State::None {
        return Err(CmdError::err("REPLICAOF not allowed while failing over."));
    }
    if host.eq_ignore_ascii_case(b"no") && port.eq_ignore_ascii_case(b"one") {
        srv.replication.promote(srv);
        set_directive(ctx, String::new());
        ctx.out.ok();
        return Ok(());
    }
    if ctx.client.monitoring {
        return Err(CmdError::err(
            "Command is not valid when client is a replica.",
        ));
    }
    let port = args::parse_i64(port)
        .filter(|p| (0..=65535).contains(p))
        .ok_or_else(|| CmdError::err("Invalid master port"))? as u16;
    let host = String::from_utf8_lossy(host).into_owned();
    if srv.replication.follows(&host, port) {
        tracing::info!("REPLICAOF would result into synchronization with the master we are already connected with. No operation performed.");
        ctx.out.simple("OK Already connected to specified master");
        return Ok(());
    }
    let Some(shared) = srv.shared() else {
        return Err(CmdError::err("the server is not running"));
    };
    crate::replica::Replication::set_master(&shared, &host, port);
    set_directive(ctx, format!("{host} {port}"));
    tracing::info!(host = %host, port, client = ctx.client.handle.id, "REPLICAOF enabled (user request)");
    ctx.out.ok();
    Ok(())
}

/// MONITOR: from now on the client receives a line per command any client
/// runs (`crate::monitor`). Ignored (no reply) when it already monitors, as
/// Redis ignores it for replicas; refused inside EXEC, where a client
/// expects one reply per command (`CLIENT_DENY_BLOCKING`).
fn monitor(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    if ctx.client.in_exec {
        return Err(CmdError::err(
            "MONITOR isn't allowed for DENY BLOCKING client",
        ));
    }
    if ctx.client.monitoring {
        return Ok(());
    }
    ctx.client.monitoring = true;
    ctx.client.handle.info.lock().monitor = true;
    ctx.srv.monitors.add(&ctx.client.subs.mailbox);
    ctx.out.ok();
    Ok(())
}

/// `RESET`'s share of MONITOR: the client stops monitoring.
pub fn stop_monitoring(ctx: &mut Ctx<'_>) {
    if ctx.client.monitoring {
        ctx.client.monitoring = false;
        ctx.client.handle.info.lock().monitor = false;
        ctx.srv.monitors.remove(ctx.client.handle.id);
    }
}

/// `CONFIG GET replicaof` shows the master followed, as Redis's.
fn set_directive(ctx: &Ctx<'_>, value: String) {
    if let Some(d) = crate::config::directive("replicaof") {
        ctx.srv.config.store(d, value);
    }
}

/// ROLE: a replica's master, link state and offset; otherwise a master
/// with its replication offset and its online replicas (address,
/// listening port and acknowledged offset, as bulk strings).
fn role(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    if let Some(v) = ctx.srv.replication.view() {
        ctx.out.array(5);
        ctx.out.bulk(b"slave");
        ctx.out.bulk(v.host.as_bytes());
        ctx.out.int(i64::from(v.port));
        ctx.out.bulk(v.state.name().as_bytes());
        ctx.out.int(ctx.srv.replication.role_offset());
        return Ok(());
    }
    let m = ctx.srv.master.view();
    ctx.out.array(3);
    ctx.out.bulk(b"master");
    ctx.out.int(m.offset as i64);
    // As Redis, only replicas past their full sync.
    let online: Vec<_> = m
        .replicas
        .iter()
        .filter(|r| r.state() == crate::replication::SyncState::Online)
        .collect();
    ctx.out.array(online.len());
    for r in online {
        ctx.out.array(3);
        ctx.out.bulk(r.ip.as_bytes());
        ctx.out.bulk(r.port.to_string().as_bytes());
        ctx.out
            .bulk(r.ack.load(Ordering::Relaxed).to_string().as_bytes());
    }
    Ok(())
}

/// WAIT numreplicas timeout (`waitCommand`): the number of replicas that
/// acknowledged the stream up to where it stood after the client's last
/// command (its own writes and everything before them). Redis answers
/// at once when that is enough or the client may not block (inside
/// MULTI); otherwise it asks the replicas for their offsets (`REPLCONF
/// GETACK *`) and blocks until enough acknowledged or the timeout
/// (milliseconds, 0 for ever), then answers the count.
fn wait(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    if ctx.srv.replication.is_replica() {
        return Err(CmdError::err(
            "WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.",
        ));
    }
    let numreplicas = args::int(nth(args, 1))?;
    let deadline = blocking::parse_deadline_ms(nth(args, 2))?;
    let srv = ctx.srv;
    let offset = ctx.client.repl_offset;
    // The dispatcher records the stream after this command as the
    // client's offset, as after any other; Redis sends WAIT's GETACK only
    // after that (in beforeSleep), so it is not part of what the client's
    // next WAIT waits for. Recorded here, before the GETACK, and kept.
    if let Some(now) = srv.master.woff() {
        ctx.client.repl_offset = now;
        ctx.client.keep_repl_offset = true;
    }
    let acknowledged = srv.master.acknowledged(offset);
    if acknowledged >= numreplicas || ctx.client.block.blocking_denied() {
        ctx.out.int(acknowledged);
        return Ok(());
    }
    let Some(shared) = srv.shared() else {
        ctx.out.int(acknowledged);
        return Ok(());
    };
    srv.master
        .add_waiter(ctx.client.handle.id, offset, numreplicas);
    srv.master.request_acks(srv);
    let op = WaitForReplicas {
        srv: std::sync::Arc::downgrade(&shared),
        offset,
    };
    blocking::block_without_keys(ctx, deadline, Box::new(op));
    Ok(())
}

/// A client blocked in WAIT: no key can serve it; it ends (on its
/// timeout, or when `crate::replication::Master::acked` finds enough
/// acknowledgements) with the number of replicas that acknowledged.
struct WaitForReplicas {
    srv: std::sync::Weak<crate::state::ServerState>,
    offset: u64,
}

impl BlockedOp for WaitForReplicas {
    fn serve(
        &self,
        _g: &mut Guard<'_>,
        _key: &[u8],
        _out: &mut ReplyWriter,
        _events: &mut dyn Events,
    ) -> Outcome {
        Outcome::Skip
    }

    fn timeout_reply(&self, out: &mut ReplyWriter) {
        let n = self
            .srv
            .upgrade()
            .map_or(0, |srv| srv.master.acknowledged(self.offset));
        out.int(n);
    }
}
