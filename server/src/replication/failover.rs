//! `FAILOVER`: a master hands its role to one of its replicas (Redis
//! 7.0's `failoverCommand`, `updateFailoverStatus`, `abortFailover`).
//!
//! [`Failover::start`] pauses writes (`PAUSE_DURING_FAILOVER`) and waits
//! (`waiting-for-sync`) until the target replica, or with no target any
//! replica, acknowledged the whole stream. Then (`failover-in-progress`)
//! the server becomes that replica's replica, sending it `PSYNC <replid>
//! <offset> FAILOVER`: the replica turns master and continues this
//! server's history, so the link goes on with `+CONTINUE`. Its answer
//! ends the failover ([`Failover::psync_answered`]): the pause is lifted,
//! and the writes it held get `-READONLY`. A timeout aborts the wait, or
//! with `FORCE` fails over anyway; `FAILOVER ABORT` and a refused `PSYNC`
//! abort it, a server already following the target becoming master again.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::state::ServerState;

/// Where a failover stands (`master_failover_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    /// None (`no-failover`).
    #[default]
    None,
    /// Waiting for a replica to catch up (`waiting-for-sync`).
    WaitForSync,
    /// Following the chosen replica (`failover-in-progress`).
    InProgress,
}

impl State {
    /// `INFO replication`'s name for it.
    pub fn name(self) -> &'static str {
        match self {
            State::None => "no-failover",
            State::WaitForSync => "waiting-for-sync",
            State::InProgress => "failover-in-progress",
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    state: State,
    /// The replica to fail over to (chosen when it catches up, without
    /// `TO`).
    target: Option<(String, u16)>,
    /// Unix ms the wait ends (`TIMEOUT`), if any.
    end_ms: Option<u64>,
    force: bool,
}

/// The failover in progress, if any (see the module docs).
#[derive(Debug, Default)]
pub struct Failover {
    inner: Mutex<Inner>,
}

impl Failover {
    /// Where it stands.
    pub fn state(&self) -> State {
        self.inner.lock().state
    }

    /// Starts a failover (the command checked its arguments and the
    /// target): writes pause until it ends.
    pub fn start(
        &self,
        srv: &ServerState,
        target: Option<(String, u16)>,
        timeout_ms: u64,
        force: bool,
    ) {
        let mut f = self.inner.lock();
        match &target {
            Some((host, port)) => tracing::info!("FAILOVER requested to {host}:{port}."),
            None => tracing::info!("FAILOVER requested to any replica."),
        }
        *f = Inner {
            state: State::WaitForSync,
            target,
            end_ms: (timeout_ms > 0).then(|| amber_storage::clock::now_ms() + timeout_ms),
            force,
        };
        srv.pause.hold_for_failover(true);
    }

    /// `abortFailover`: back to no failover, writes resumed; a server
    /// already following the target becomes master again.
    pub fn abort(&self, srv: &ServerState, reason: &str) {
        let mut f = self.inner.lock();
        if f.state == State::None {
            return;
        }
        match &f.target {
            Some((host, port)) => tracing::info!("FAILOVER to {host}:{port} aborted: {reason}"),
            None => tracing::info!("FAILOVER to any replica aborted: {reason}"),
        }
        if f.state == State::InProgress {
            srv.replication.stop();
        }
        *f = Inner::default();
        srv.pause.hold_for_failover(false);
    }

    /// The target answered the `PSYNC ... FAILOVER`: accepted (it is
    /// master now) ends the failover, refused aborts it.
    pub fn psync_answered(&self, srv: &ServerState, accepted: bool) {
        if self.state() != State::InProgress {
            return;
        }
        if accepted {
            *self.inner.lock() = Inner::default();
            srv.pause.hold_for_failover(false);
        } else {
            self.abort(srv, "Failover target rejected psync request");
        }
    }

    /// `updateFailoverStatus`, run by the server's cron: the timeout, and
    /// whether the target (or some replica) acknowledged the whole stream.
    pub fn tick(&self, srv: &Arc<ServerState>) {
        let mut f = self.inner.lock();
        if f.state != State::WaitForSync {
            return;
        }
        if f.end_ms
            .is_some_and(|end| end <= amber_storage::clock::now_ms())
        {
            if f.force && f.target.is_some() {
                if let Some((host, port)) = f.target.clone() {
                    tracing::info!("FAILOVER to {host}:{port} time out exceeded, failing over.");
                    f.state = State::InProgress;
                    drop(f);
                    become_replica(srv, &host, port);
                }
            } else {
                drop(f);
                self.abort(srv, "Replica never caught up before timeout");
            }
            return;
        }
        let view = srv.master.view();
        let caught_up = view.replicas.iter().find(|r| {
            r.ack.load(Ordering::Relaxed) == view.offset
                && f.target
                    .as_ref()
                    .is_none_or(|(host, port)| r.ip.eq_ignore_ascii_case(host) && r.port == *port)
        });
        let Some(r) = caught_up else { return };
        let (host, port) = (r.ip.clone(), r.port);
        tracing::info!("Failover target {host}:{port} is synced, failing over.");
        f.target = Some((host.clone(), port));
        f.state = State::InProgress;
        drop(f);
        become_replica(srv, &host, port);
    }
}

/// `replicationSetMaster` of a master failing over: its replicas are
/// dropped (they resync with the new master), and it follows the target
/// from its own offset, asking it to take over.
fn become_replica(srv: &Arc<ServerState>, host: &str, port: u16) {
    srv.master.disconnect_replicas(srv);
    let offset = srv.master.offset();
    crate::replica::Replication::set_master_failing_over(srv, host, port, offset);
}
