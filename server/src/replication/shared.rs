//! A diskless full sync shared by the replicas that wait together (Redis's
//! `rdbSaveToSlavesSockets`: one RDB child feeds every replica waiting for
//! a transfer when it starts).
//!
//! Each diskless replica's thread waits `repl-diskless-sync-delay` seconds
//! (or until `repl-diskless-sync-max-replicas` wait). The first whose wait
//! ends takes in every diskless replica still waiting
//! ([`super::Master::claim_diskless`]); their own threads stop. It then
//! attaches them all at one snapshot's instant (one offset), sends each its
//! `+FULLRESYNC`, and writes the one RDB to all of them
//! ([`FanOut`]): the slowest paces it, as Redis's pipe waits for every
//! socket. A replica that leaves or stalls for `repl-timeout` is dropped
//! alone; the others go on.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::transfer::{begin, closed, failed, stall, KeepAlive, PayloadSink, Producing, TICK};
use super::{Replica, SyncState};
use crate::state::ServerState;

/// The diskless full sync of `me`, and of the replicas waiting with it when
/// its wait ends; nothing when another replica's transfer took it in.
pub(super) fn run(srv: &Arc<ServerState>, me: &Arc<Replica>) {
    let stall = stall(srv);
    let mut alive = KeepAlive::new(stall);
    match wait_for_more_replicas(srv, me, &mut alive) {
        Ok(true) => {}
        // Another transfer serves it.
        Ok(false) => return,
        Err(e) => {
            // Not claimed by another transfer either: claim it to stop one.
            if srv.master.claim_diskless_alone(me) {
                failed(srv, me, &e);
            }
            return;
        }
    }
    let Some(group) = srv.master.claim_diskless(me) else {
        return;
    };
    let Some((snap, offset, group)) = begin(srv, group, &mut alive) else {
        return;
    };
    let producing = Producing::new(&srv.rdb.replica_snapshots);
    tracing::info!(
        replicas = group.len(),
        target = "replicas sockets",
        "Starting BGSAVE for SYNC"
    );
    let replid = srv.master.replid(srv);
    let fullresync = format!("+FULLRESYNC {replid} {offset}\r\n");
    let mut out = FanOut::new(srv, &group, stall);
    out.each(|r, sink| {
        if r.psync.load(Ordering::Relaxed) {
            sink.write_all(fullresync.as_bytes())?;
        }
        Ok(())
    });
    let mark: String = (0..40)
        .map(|_| char::from(b"0123456789abcdef"[rand::random::<usize>() % 16]))
        .collect();
    // The replicas learn at once that the transfer started.
    out.each(|_, sink| {
        sink.write_all(format!("$EOF:{mark}\r\n").as_bytes())?;
        sink.flush()
    });
    let written = snap.write_to(out);
    drop(producing);
    let Ok((_, mut out)) = written else {
        // Every replica failed (each dropped as it failed).
        return;
    };
    out.each(|r, sink| {
        // Before the mark leaves: the replica's ACK may follow it at once.
        r.stream_on_ack.store(true, Ordering::SeqCst);
        r.set_state(SyncState::Online);
        sink.write_all(mark.as_bytes())?;
        sink.flush()
    });
    for (r, sink) in &out.sinks {
        srv.master
            .output_bytes
            .fetch_add(sink.sent, Ordering::Relaxed);
        tracing::info!(
            client = r.id,
            bytes = sink.sent,
            offset,
            "Synchronization with replica succeeded"
        );
    }
}

/// Redis's `repl-diskless-sync-delay`: waits for more replicas before the
/// transfer, unless `repl-diskless-sync-max-replicas` of them already wait
/// (both read again at every tick, as Redis's cron does). Returns false
/// once another replica's transfer took `me` in.
fn wait_for_more_replicas(
    srv: &ServerState,
    me: &Replica,
    alive: &mut KeepAlive,
) -> std::io::Result<bool> {
    let since = Instant::now();
    loop {
        {
            // Under the claim's lock: no newline after the transfer's
            // first bytes.
            let claimed = me.claimed.lock();
            if *claimed {
                return Ok(false);
            }
            alive.tick(&me.mailbox)?;
        }
        let delay = srv.config.get_i64("repl-diskless-sync-delay").max(0) as u64;
        let max = srv.config.get_i64("repl-diskless-sync-max-replicas").max(0) as usize;
        if since.elapsed() >= Duration::from_secs(delay)
            || (max > 0 && srv.master.waiting_for_sync() >= max)
        {
            return Ok(true);
        }
        std::thread::sleep(TICK);
    }
}

/// The payload's writer for a group: every byte to every replica's
/// [`PayloadSink`]. A replica whose write fails (it left, or read nothing
/// for `repl-timeout`) is dropped alone; the writer fails once none is
/// left, which ends the snapshot.
struct FanOut<'a> {
    srv: &'a ServerState,
    sinks: Vec<(&'a Arc<Replica>, PayloadSink<'a>)>,
}

impl<'a> FanOut<'a> {
    fn new(srv: &'a ServerState, group: &'a [Arc<Replica>], stall: Duration) -> Self {
        FanOut {
            srv,
            sinks: group
                .iter()
                .map(|r| (r, PayloadSink::new(&r.mailbox, stall)))
                .collect(),
        }
    }

    /// Runs `f` for each replica; drops those for which it fails.
    fn each(&mut self, mut f: impl FnMut(&Replica, &mut PayloadSink<'a>) -> std::io::Result<()>) {
        let srv = self.srv;
        self.sinks.retain_mut(|(r, sink)| match f(r, sink) {
            Ok(()) => true,
            Err(e) => {
                failed(srv, r, &e);
                false
            }
        });
    }

    fn alive(&self) -> std::io::Result<()> {
        if self.sinks.is_empty() {
            Err(closed())
        } else {
            Ok(())
        }
    }
}

impl Write for FanOut<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.each(|_, sink| sink.write_all(data));
        self.alive()?;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.each(|_, sink| sink.flush());
        self.alive()
    }
}
