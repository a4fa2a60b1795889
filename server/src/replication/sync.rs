//! `SYNC`, `PSYNC` and `REPLCONF`: how a replica attaches (Redis's
//! `syncCommand`, `masterTryPartialResynchronization`, `replconfCommand`).
//!
//! `PSYNC <replid> <offset>` with this server's replication id and an
//! offset the [`super::backlog`] still holds continues (`+CONTINUE
//! <replid>` and the missed bytes). Anything else is a full
//! resynchronization, run by the replica's own thread
//! ([`super::transfer`]): after `repl-diskless-sync-delay` (diskless) and
//! once no other live snapshot runs, `+FULLRESYNC <replid> <offset>`
//! (`PSYNC` only), then the RDB payload, diskless (`$EOF:<mark>`, the
//! bytes, the mark) to a replica that announced `REPLCONF capa eof` while
//! `repl-diskless-sync` is `yes`, else `$<len>` and the bytes of a
//! temporary file; then the stream. The commands run under the keyspace's
//! exclusive gate; the thread takes it again to attach the replica and
//! start the snapshot together, so the stream it receives starts exactly
//! where the snapshot is. The replid is the server's run id until a
//! promotion, which keeps the former master's id as a second one
//! (`super::Master::take_over`); `PSYNC ... FAILOVER` promotes this
//! replica first.

use std::sync::atomic::Ordering;
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
    let replica = Arc::new(Replica::new(
        handle.id,
        ctx.client.subs.mailbox.clone(),
        ip,
        port,
    ));
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
    // Counted when requested, as Redis's `syncCommand` counts it.
    srv.master.sync_full.fetch_add(1, Ordering::Relaxed);
    // A full sync: the replica's thread (`super::transfer`) starts a live
    // snapshot when it is time, attaches the replica to the stream at
    // that instant and sends `+FULLRESYNC` and the payload; the stream
    // then waits in the replica's mailbox, behind the payload.
    replica.mailbox.hold();
    replica.set_state(super::SyncState::WaitBgsave);
    let Some(shared) = srv.shared() else {
        return Err(CmdError::err("the server is not running"));
    };
    let form = super::transfer::Form::for_replica(srv, ctx.client.repl_capa_eof);
    let waiting = srv.master.wait_for_sync(replica.clone());
    if form == super::transfer::Form::Diskless && waiting == 1 {
        tracing::info!(
            secs = srv.config.get_i64("repl-diskless-sync-delay"),
            "Delay next BGSAVE for diskless SYNC"
        );
    }
    ctx.client.replica = Some(replica.clone());
    handle.info.lock().replica = true;
    super::transfer::start(super::transfer::Job {
        srv: shared,
        replica,
        handle,
        psync: psync.is_some(),
        form,
    });
    Ok(())
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
        } else if args::is(opt, "capa") {
            // `eof`: the replica reads the diskless form; others (`psync2`)
            // change nothing here.
            if args::is(val, "eof") {
                ctx.client.repl_capa_eof = true;
            }
        } else if args::is(opt, "rdb-only") {
        } else if args::is(opt, "ack") {
            // Acknowledgements come from replicas only, and get no reply.
            if let Some(r) = ctx.client.replica.clone() {
                // The first one after a diskless payload starts the stream.
                if r.stream_on_ack.swap(false, Ordering::SeqCst) {
                    r.mailbox.release(b"");
                }
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
