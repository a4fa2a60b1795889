//! `CLIENT PAUSE` / `CLIENT UNPAUSE`: the server-wide pause (Redis 7.0's
//! `pauseClients`), and the rule that says which commands wait for its end.
//!
//! A paused command is *postponed*: its connection stops before running it
//! (the request stays in the input buffer, unparsed as far as the client can
//! tell) and waits in `connection.rs` until the pause ends or is lifted,
//! then runs it and what follows, in order, as Redis's `BLOCKED_POSTPONE`.
//! With no pause in place the check is one relaxed load per command.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use smallvec::SmallVec;
use tokio::sync::Notify;

use crate::client::Client;
use crate::cmd::CommandDef;
use crate::state::ServerState;

/// What a pause holds back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    /// Commands that may change the keyspace or be replicated (`WRITE`).
    Write,
    /// Every command (`ALL`, the default).
    All,
}

/// The server's pause state.
#[derive(Debug, Default)]
pub struct Pause {
    /// Whether a pause may be in place (the cheap check before [`Pause::current`]).
    active: AtomicBool,
    /// The pause in place: its mode and its end.
    state: Mutex<Option<(Mode, Instant)>>,
    /// Woken when the pause is lifted or replaced.
    changed: Notify,
    /// Writes held for a `FAILOVER` (Redis's `PAUSE_DURING_FAILOVER`, a
    /// pause of its own that `CLIENT UNPAUSE` does not lift).
    failover: AtomicBool,
    /// Clients waiting with a postponed command ([`Pause::hold`]).
    postponed: AtomicUsize,
}

/// A client counted as postponed while this lives (see [`Pause::hold`]).
#[derive(Debug)]
pub struct Held<'a>(&'a AtomicUsize);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Pause {
    /// `CLIENT PAUSE`: pauses until `end`. As in Redis, a pause already in
    /// place keeps the stricter mode and the later end of the two.
    pub fn pause(&self, mode: Mode, end: Instant) {
        let mut s = self.state.lock();
        *s = Some(match *s {
            Some((m, e)) => (m.max(mode), e.max(end)),
            None => (mode, end),
        });
        self.active.store(true, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// `CLIENT UNPAUSE`: lifts the pause; postponed clients go on.
    pub fn unpause(&self) {
        *self.state.lock() = None;
        self.active.store(false, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// Holds writes until a failover ends (`on` false lifts it).
    pub fn hold_for_failover(&self, on: bool) {
        self.failover.store(on, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// The pause in place now (an ended one is cleared on the way): the
    /// stricter of `CLIENT PAUSE`'s and a failover's, which lasts until
    /// it is lifted.
    pub fn current(&self) -> Option<(Mode, Instant)> {
        let failover = self.failover.load(Ordering::Acquire);
        if !self.active.load(Ordering::Acquire) && !failover {
            return None;
        }
        let client = {
            let mut s = self.state.lock();
            match *s {
                Some((_, end)) if end <= Instant::now() => {
                    *s = None;
                    self.active.store(false, Ordering::Release);
                    None
                }
                other => other,
            }
        };
        match (client, failover) {
            (Some((mode, end)), true) => Some((mode, end)),
            (None, true) => Some((
                Mode::Write,
                Instant::now() + std::time::Duration::from_secs(3600),
            )),
            (client, false) => client,
        }
    }

    /// Counts a client as postponed until the returned guard is dropped:
    /// Redis counts postponed clients in `INFO`'s `blocked_clients`
    /// (`BLOCKED_POSTPONE`), and so does Amber.
    pub fn hold(&self) -> Held<'_> {
        self.postponed.fetch_add(1, Ordering::Relaxed);
        Held(&self.postponed)
    }

    /// Clients waiting with a postponed command.
    pub fn postponed_clients(&self) -> usize {
        self.postponed.load(Ordering::Relaxed)
    }

    /// Whether any pause is in place (expiry and eviction stop meanwhile).
    pub fn is_paused(&self) -> bool {
        self.current().is_some()
    }

    /// Waits until the pause ends, is lifted or changes.
    pub async fn changed_or_ended(&self) {
        let notified = self.changed.notified();
        let Some((_, end)) = self.current() else {
            return;
        };
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(end)) => {}
        }
    }
}

/// Whether the command `args` (resolved to `def`) must wait for the end of
/// the pause, as Redis 7.0's `processCommand` decides: under `ALL` every
/// command; under `WRITE` a command flagged write or *may replicate*, and
/// `EXEC` of a transaction that queued one.
pub fn postpones(srv: &ServerState, client: &Client, args: &[&[u8]]) -> bool {
    let Some((mode, _)) = srv.pause.current() else {
        return false;
    };
    if mode == Mode::All {
        return true;
    }
    let Some(def) = resolved(srv, args) else {
        // Unknown commands and wrong arity are refused, not postponed.
        return false;
    };
    if def.name == "exec" {
        return client.multi.as_ref().is_some_and(|m| {
            m.queued().any(|q| {
                let q: SmallVec<[&[u8]; 8]> = q.iter().map(Vec::as_slice).collect();
                resolved(srv, &q).is_some_and(|d| crate::cmd::may_replicate(srv, d, &q))
            })
        });
    }
    crate::cmd::may_replicate(srv, def, args)
}

/// The command `args` names, if it exists with a valid arity.
fn resolved<'t>(srv: &'t ServerState, args: &[&[u8]]) -> Option<&'t CommandDef> {
    match crate::cmd::resolve(&srv.commands, args) {
        crate::cmd::Resolved::Found(def) => Some(def),
        crate::cmd::Resolved::Rejected(_) => None,
    }
}
