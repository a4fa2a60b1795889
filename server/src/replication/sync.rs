//! `SYNC`, `PSYNC` and `REPLCONF`: how a replica attaches (Redis's
//! `syncCommand`, `masterTryPartialResynchronization`, `replconfCommand`).
//!
//! `PSYNC <replid> <offset>` with this server's replication id and an
//! offset the [`super::backlog`] still holds continues (`+CONTINUE
//! <replid>` and the missed bytes). Anything else is a full
//! resynchronization: `+FULLRESYNC <replid> <offset>`, then the RDB
//! payload as `$<len>\r\n<bytes>` (no trailing newline), then the stream.
//! Both commands run under the keyspace's exclusive gate, so the replica
//! is attached, and the snapshot started, between two commands: the stream
//! it receives starts exactly where the snapshot is. The payload is a live
//! snapshot (`crate::snapshot::live`) written by a thread while commands
//! go on (a newline every second keeps the replica waiting, as Redis
//! does); the stream waits in the replica's mailbox behind it. While a
//! `BGSAVE` holds the one live snapshot, the payload is written under the
//! gate instead (`crate::snapshot::to_bytes`), as `SAVE` writes. The
//! replid is the server's run id until a promotion, which keeps the former
//! master's id as a second one (`super::Master::take_over`); `PSYNC ...
//! FAILOVER` promotes this replica first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::Replica;
use crate::cmd::args::{self, nth};
use crate::cmd::{CmdError, CmdResult, Ctx, Handler};

/// This module's commands.
pub const COMMANDS: &[(&str, Handler)] =
    &[("psync", psync), ("replconf", replconf), ("sync", sync)];

/// `PSYNC replid offset [FAILOVER]`. With `FAILOVER` (a master failing
/// over to this replica of its) this server first becomes master,
/// continuing its master's history, when `replid` is that history's.
fn psync(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    if args.len() > 3 && args::is(nth(args, 3), "failover") {
        let srv = ctx.srv;
        let mine = srv
            .replication
            .master_replid()
            .unwrap_or_else(|| srv.master.replid(srv));
        if nth(args, 1) != mine.as_bytes() {
            return Err(CmdError::err("PSYNC FAILOVER replid must match my replid."));
        }
        if srv.replication.promote(srv) {
            let who = crate::cmd::clients::client_line(&ctx.client.handle, false);
            tracing::info!("MASTER MODE enabled (failover request from '{who}')");
        }
    }
    attach(ctx, Some((nth(args, 1), nth(args, 2))))
}

/// `SYNC`: the old full resynchronization, without `+FULLRESYNC`.
fn sync(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    attach(ctx, None)
}

fn attach(ctx: &mut Ctx<'_>, psync: Option<(&[u8], &[u8])>) -> CmdResult {
    // A replica's further SYNCs are ignored, as in Redis.
    if ctx.client.replica.is_some() {
        return Ok(());
    }
    let srv = ctx.srv;
    // Replicas wait for the end of a failover.
    if srv.master.failover.state() != super::failover::State::None {
        return Err(CmdError::msg("NOMASTERLINK Can't SYNC while failing over"));
    }
    if let Some(v) = srv.replication.view() {
        if v.state != crate::replica::LinkState::Connected {
            return Err(CmdError::msg(
                "NOMASTERLINK Can't SYNC while not connected with my master",
            ));
        }
    }
    let handle = ctx.client.handle.clone();
    let port = match ctx.client.repl_port {
        0 => handle.addr.port(),
        p => p,
    };
    let ip = ctx
        .client
        .repl_ip
        .clone()
        .unwrap_or_else(|| handle.addr.ip().to_string());
    let replica = Arc::new(Replica {
        id: handle.id,
        mailbox: ctx.client.subs.mailbox.clone(),
        ip,
        port,
        ack: AtomicU64::new(0),
        ack_ms: AtomicU64::new(amber_storage::clock::now_ms()),
    });
    let replid = srv.master.replid(srv);
    if let Some((id, offset)) = psync {
        let offset = args::parse_i64(offset).unwrap_or(-1);
        if offset > 0 && srv.master.continues(srv, id, offset as u64) {
            if let Some(missed) = srv.master.attach_continuing(replica.clone(), offset as u64) {
                ctx.out.raw(format!("+CONTINUE {replid}\r\n").as_bytes());
                ctx.out.raw(&missed);
                ctx.client.replica = Some(replica);
                handle.info.lock().replica = true;
                tracing::info!(
                    client = handle.id,
                    bytes = missed.len(),
                    "Partial resynchronization request from {} accepted. Sending {} bytes of backlog starting from offset {}.",
                    handle.addr, missed.len(), offset
                );
                srv.master.sync_partial_ok.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        }
        if id != b"?" {
            srv.master.sync_partial_err.fetch_add(1, Ordering::Relaxed);
        }
        tracing::info!(
            client = handle.id,
            "Full resync requested by replica {}",
            handle.addr
        );
    }
    // The payload is a live snapshot (`crate::snapshot::live`) started
    // here, under the gate, at the offset the replica is attached at; a
    // thread writes it while commands go on, and the stream the replica is
    // sent meanwhile waits in its mailbox, behind the payload.
    let mailbox = ctx.client.subs.mailbox.clone();
    mailbox.hold();
    let offset = srv.master.attach(replica.clone());
    let fullresync = format!("+FULLRESYNC {replid} {offset}\r\n");
    let live = srv.shared().map(crate::snapshot::live::LiveSnapshot::begin);
    ctx.client.replica = Some(replica);
    handle.info.lock().replica = true;
    match live {
        Some(Ok(snap)) => {
            if psync.is_some() {
                ctx.out.raw(fullresync.as_bytes());
            }
            let h = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("amber-fullsync".into())
                .spawn(move || {
                    let srv = snap.server().clone();
                    // Newlines while the payload is written, as Redis
                    // keeps a waiting replica's link alive.
                    let done = std::sync::atomic::AtomicBool::new(false);
                    let payload = std::thread::scope(|s| {
                        s.spawn(|| {
                            let mut ticks = 0u32;
                            while !done.load(Ordering::Relaxed) {
                                std::thread::sleep(std::time::Duration::from_millis(100));
                                ticks += 1;
                                if ticks.is_multiple_of(10) {
                                    mailbox.keepalive();
                                }
                            }
                        });
                        let payload = crate::snapshot::bytes_live(snap);
                        done.store(true, Ordering::Relaxed);
                        payload
                    });
                    match payload {
                        Ok(rdb) => {
                            let mut payload = format!("${}\r\n", rdb.len()).into_bytes();
                            payload.extend_from_slice(&rdb);
                            mailbox.release(&payload);
                            synced(&srv, h.id, &h.addr, rdb.len(), offset);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot produce the RDB for a replica");
                            srv.master.detach(h.id);
                            h.kill();
                            mailbox.release(b"");
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the full sync thread");
                srv.master.detach(handle.id);
                handle.kill();
                ctx.client.subs.mailbox.release(b"");
            }
        }
        _ => {
            // Another snapshot (a BGSAVE) runs: the payload is written here,
            // under the gate, as SAVE writes its file.
            let rdb = crate::snapshot::to_bytes(srv);
            mailbox.release(b"");
            let rdb = match rdb {
                Ok(b) => b,
                Err(e) => {
                    srv.master.detach(handle.id);
                    ctx.client.replica = None;
                    handle.info.lock().replica = false;
                    tracing::warn!(error = %e, "cannot produce the RDB for a replica");
                    return Err(CmdError::err(e));
                }
            };
            if psync.is_some() {
                ctx.out.raw(fullresync.as_bytes());
            }
            ctx.out.raw(format!("${}\r\n", rdb.len()).as_bytes());
            ctx.out.raw(&rdb);
            synced(srv, handle.id, &handle.addr, rdb.len(), offset);
        }
    }
    Ok(())
}

/// Counts and logs a full sync whose payload is on its way.
fn synced(
    srv: &crate::state::ServerState,
    id: u64,
    addr: &std::net::SocketAddr,
    bytes: usize,
    offset: u64,
) {
    srv.master.sync_full.fetch_add(1, Ordering::Relaxed);
    srv.master
        .output_bytes
        .fetch_add(bytes as u64, Ordering::Relaxed);
    tracing::info!(
        client = id,
        bytes,
        offset,
        "Synchronization with replica {} succeeded",
        addr
    );
}

/// `REPLCONF option value [option value ...]`: `listening-port`,
/// `ip-address`, `capa`, `rdb-only` answer `+OK`; `ACK <offset>` (from an
/// attached replica) and `GETACK` answer nothing.
fn replconf(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    let mut j = 1;
    while j + 1 < args.len() {
        let (opt, val) = (nth(args, j), nth(args, j + 1));
        if args::is(opt, "listening-port") {
            let port = args::int(val)?;
            ctx.client.repl_port = u16::try_from(port).unwrap_or(0);
        } else if args::is(opt, "ip-address") {
            ctx.client.repl_ip = Some(String::from_utf8_lossy(val).into_owned());
        } else if args::is(opt, "capa") || args::is(opt, "rdb-only") {
            // Amber sends `$<len>` payloads, which every replica reads.
        } else if args::is(opt, "ack") {
            // Acknowledgements come from replicas only, and get no reply.
            if let Some(r) = ctx.client.replica.clone() {
                if let Some(offset) = args::parse_i64(val).filter(|o| *o >= 0) {
                    ctx.srv.master.acked(ctx.srv, &r, offset as u64);
                }
            }
            return Ok(());
        } else if args::is(opt, "getack") {
            // Only a master asks; a replica answers on its master link.
            return Ok(());
        } else {
            return Err(CmdError::err(format!(
                "Unrecognized REPLCONF option: {}",
                String::from_utf8_lossy(opt)
            )));
        }
        j += 2;
    }
    ctx.out.ok();
    Ok(())
}
