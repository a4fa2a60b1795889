//! `XREADGROUP` clients whose stream goes away (Redis 7.0's
//! `unblockDeletedStreamReadgroupClients` and `scanDatabaseForDeletedStreams`).
//!
//! A client blocked in `XREADGROUP` depends on its key *and* its group:
//! once the key is deleted, expired, evicted, overwritten by another type,
//! flushed or swapped away, no `XADD` can serve it (a new stream has no
//! group). Redis then unblocks it at once with
//! `-UNBLOCKED the stream key no longer exists`, and applications rely on
//! that error to recreate their stream and group. A plain `XREAD` stays
//! blocked: a new stream under the key serves it.
//!
//! # How changes arrive
//!
//! While at least one such client waits, the keyspace reports every
//! modified key to the server's observer (one more reason beside `WATCH`
//! and client tracking, so a write without such clients still costs one
//! load). The report comes under the key's shard lock, where the new
//! value's type cannot be read, so a key that has group waiters is only
//! *noted*; after the command that changed it ([`Blocking::unblock_lost_streams`],
//! from `cmd::execute`, hence after a whole `EXEC` or script, as Redis's
//! `handleClientsBlockedOnKeys`), the noted keys are looked at, and those
//! that are no stream any more unblock their group waiters. Expiry and
//! eviction by the background cycles are picked up by the server's
//! periodic task. `FLUSHDB`, `FLUSHALL` and `SWAPDB` compare the databases
//! before they change ([`Blocking::db_replaced`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use amber_storage::ValueType;
use parking_lot::Mutex;

use super::{writer, Blocking, Waiter};
use crate::state::ServerState;

/// Redis's reply to a blocked `XREADGROUP` whose stream went away.
pub const STREAM_GONE: &str = "UNBLOCKED the stream key no longer exists";

/// The blocked `XREADGROUP`s' bookkeeping.
#[derive(Debug, Default)]
pub(super) struct GroupWaiters {
    /// `XREADGROUP` clients blocked now.
    count: AtomicUsize,
    /// Serializes switching the keyspace's reports on and off with a
    /// look at `count`, so a switch-off cannot overtake a new waiter's
    /// switch-on.
    switch: Mutex<()>,
    /// The keyspace's reports for them are on (changed under `switch`).
    reporting: AtomicBool,
    /// Keys with group waiters modified since the last look: (db, key).
    noted: Mutex<Vec<(usize, Vec<u8>)>>,
    /// `noted` is not empty (one load per command otherwise).
    any_noted: AtomicBool,
}

impl GroupWaiters {
    /// A waiter left the registry.
    pub(super) fn removed(&self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Blocking {
    /// An `XREADGROUP` client is being registered (under its keys' shard
    /// locks: a later change of those keys is reported).
    pub(super) fn group_waiter_added(&self, srv: &ServerState) {
        let _switch = self.groups.switch.lock();
        if self.groups.count.fetch_add(1, Ordering::Relaxed) == 0 {
            srv.keyspace.report_stream_group_changes(true);
            self.groups.reporting.store(true, Ordering::Relaxed);
        }
    }

    /// Whether some client is blocked in `XREADGROUP`.
    pub fn has_group_waiters(&self) -> bool {
        self.groups.count.load(Ordering::Relaxed) > 0
    }

    /// `key` of `db` was modified, expired or evicted (called under its
    /// shard lock): notes it if group waiters wait on it. With no group
    /// waiter left, switches the keyspace's reports for them off.
    pub fn note_change(&self, srv: &ServerState, db: usize, key: &[u8]) {
        if !self.has_group_waiters() {
            // Expiries and evictions are reported whatever the switch says:
            // those cost one more load.
            if self.groups.reporting.load(Ordering::Relaxed) {
                let _switch = self.groups.switch.lock();
                if !self.has_group_waiters() {
                    srv.keyspace.report_stream_group_changes(false);
                    self.groups.reporting.store(false, Ordering::Relaxed);
                }
            }
            return;
        }
        let waited = self
            .registry
            .lock()
            .queue(db, key)
            .is_some_and(|q| q.iter().any(|w| w.op.waits_on_group()));
        if waited {
            let mut noted = self.groups.noted.lock();
            if !noted.iter().any(|(d, k)| *d == db && k.as_slice() == key) {
                noted.push((db, key.to_vec()));
            }
            self.groups.any_noted.store(true, Ordering::Release);
        }
    }

    /// Unblocks the group waiters of the noted keys that are no stream
    /// any more. Called with no shard lock and no keyspace gate held; it
    /// takes the gate shared only if that needs no wait (else a later call,
    /// at the latest the periodic task's, looks).
    pub fn unblock_lost_streams(&self, srv: &ServerState) {
        if !self.groups.any_noted.load(Ordering::Acquire) {
            return;
        }
        let Some(_gate) = srv.keyspace.try_shared() else {
            return;
        };
        let noted = {
            let mut noted = self.groups.noted.lock();
            self.groups.any_noted.store(false, Ordering::Release);
            std::mem::take(&mut *noted)
        };
        for (db, key) in noted {
            if srv.keyspace.type_of(db, &key) != Some(ValueType::Stream) {
                self.unblock_group_waiters(srv, db, &key);
            }
        }
    }

    /// Database `emptied` is about to be flushed or, with `replaced_with`,
    /// swapped with that one (called with no shard lock held; the caller
    /// holds the keyspace gate): unblocks the group waiters of its streams
    /// that will be no stream afterwards.
    pub fn db_replaced(&self, srv: &ServerState, emptied: usize, replaced_with: Option<usize>) {
        if !self.has_group_waiters() {
            return;
        }
        let keys: Vec<Vec<u8>> = {
            let reg = self.registry.lock();
            reg.keys
                .get(emptied)
                .map(|m| {
                    m.iter()
                        .filter(|(_, q)| q.iter().any(|w| w.op.waits_on_group()))
                        .map(|(k, _)| k.clone())
                        .collect()
                })
                .unwrap_or_default()
        };
        let is_stream =
            |db: usize, key: &[u8]| srv.keyspace.type_of(db, key) == Some(ValueType::Stream);
        for key in keys {
            let stays = replaced_with.is_some_and(|other| is_stream(other, &key));
            if is_stream(emptied, &key) && !stays {
                self.unblock_group_waiters(srv, emptied, &key);
            }
        }
    }

    /// Answers every `XREADGROUP` client blocked on `key` of `db` with
    /// [`STREAM_GONE`], first blocked first.
    fn unblock_group_waiters(&self, srv: &ServerState, db: usize, key: &[u8]) {
        let mut replies = Vec::new();
        {
            let mut reg = self.registry.lock();
            let waiters: Vec<Arc<Waiter>> = reg
                .queue(db, key)
                .map(|q| {
                    q.iter()
                        .filter(|w| w.op.waits_on_group())
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            for w in waiters {
                if let Some(tx) = self.unregister(&mut reg, &w) {
                    let mut out = writer(w.proto);
                    out.error(STREAM_GONE);
                    replies.push((tx, out.as_bytes().to_vec(), w));
                }
            }
        }
        for (tx, reply, w) in replies {
            // An error reply and a failed call, as Redis counts it.
            super::count_error(srv, &w, &reply);
            let _ = tx.send(reply);
        }
    }
}
