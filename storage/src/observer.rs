//! [`KeyObserver`]: how the server learns that keys changed, without the
//! storage crate knowing anything of clients or sockets.
//!
//! The server installs one observer ([`crate::Keyspace::set_observer`]). The
//! keyspace then reports:
//! * every modification made through a [`crate::Guard`] (`modified`): only
//!   while the server has asked for it with
//!   [`crate::Keyspace::watch_modifications`] (some client `WATCH`es a key)
//!   or [`crate::Keyspace::track_modifications`] (some client tracks keys
//!   for client-side caching), so a write costs one relaxed atomic load
//!   when nobody does either;
//! * every key added (`created`), only while asked for with
//!   [`crate::Keyspace::report_creations`] (`notify-keyspace-events n`);
//! * every key removed because its deadline passed, lazily or by the active
//!   cycle (`expired`), and every key evicted for `maxmemory` (`evicted`):
//!   rare events, always reported once an observer is installed;
//! * every deadline a write gives a key (`deadline_set`), only while asked
//!   for with [`crate::Keyspace::report_deadlines`] (a writable replica
//!   expires the keys its own clients gave one);
//! * a whole database about to be emptied or swapped (`replacing_db`), before
//!   any shard of it is touched (`FLUSHDB`, `FLUSHALL`, `SWAPDB`).
//!
//! Calls are made while the key's shard is locked (except `replacing_db`,
//! made with no lock held): an observer must not call back into the keyspace
//! from `modified`, `expired` or `evicted`, and must not block.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

/// Receives the keyspace's change reports. See the module documentation.
pub trait KeyObserver: Send + Sync {
    /// `key` in `db` was written, deleted or had its deadline changed;
    /// `exists` says whether it exists after the change. Reported only while
    /// [`crate::Keyspace::watch_modifications`],
    /// [`crate::Keyspace::track_modifications`] or
    /// [`crate::Keyspace::report_stream_group_changes`] is on.
    fn modified(&self, db: usize, key: &[u8], exists: bool);
    /// `key` was added to `db` (it did not exist before the write). Reported
    /// only while [`crate::Keyspace::report_creations`] is on.
    fn created(&self, db: usize, key: &[u8]);
    /// `key` in `db` was removed because its deadline passed.
    fn expired(&self, db: usize, key: &[u8]);
    /// A command met `key` of `db` past its deadline and would delete it
    /// (lazy expiry under [`crate::lazy_expiry::Policy::Delete`]): runs
    /// `expire` (the deletion, which reports [`KeyObserver::expired`])
    /// and returns true, or returns false without running it; the key is
    /// then missing to the command but left in place, as
    /// [`crate::lazy_expiry::Policy::Hide`] leaves it, for the active
    /// cycle or a later command. The server refuses while another
    /// command's effects are on their way to its replicas, so the key's
    /// `DEL` cannot overtake them. Must not block.
    fn expire_lazily(&self, _db: usize, _key: &[u8], expire: &mut dyn FnMut()) -> bool {
        expire();
        true
    }
    /// `key` in `db` was evicted to make room (`maxmemory-policy`).
    fn evicted(&self, db: usize, key: &[u8]);
    /// A write gave `key` in `db` a deadline (Redis's `setExpire`).
    /// Reported only while [`crate::Keyspace::report_deadlines`] is on.
    fn deadline_set(&self, _db: usize, _key: &[u8]) {}
    /// Database `emptied` is about to lose all its keys; with
    /// `replaced_with`, it is about to be swapped with that database. Called
    /// with no shard locked, so the observer may query the keyspace.
    fn replacing_db(&self, emptied: usize, replaced_with: Option<usize>);
}

/// Why modifications are reported: some client watches a key (`WATCH`).
const WATCHED: u8 = 1;
/// Why modifications are reported: some client tracks keys (`CLIENT TRACKING`).
const TRACKED: u8 = 2;
/// Why modifications are reported: some client is blocked in `XREADGROUP`
/// (its key deleted or overwritten must unblock it).
const STREAM_GROUPS: u8 = 4;

/// The installed observer and the switch for modification reports.
#[derive(Default)]
pub(crate) struct Observers {
    /// Reasons to report modifications ([`WATCHED`], [`TRACKED`],
    /// [`STREAM_GROUPS`]): one
    /// load tells a write whether to report.
    watching: AtomicU8,
    creations: AtomicBool,
    deadlines: AtomicBool,
    observer: OnceLock<Arc<dyn KeyObserver>>,
}

impl Observers {
    /// Installs the observer (only the first call has an effect).
    pub(crate) fn install(&self, o: Arc<dyn KeyObserver>) {
        let _ = self.observer.set(o);
    }

    /// Turns modification reports for `WATCH` on or off.
    pub(crate) fn set_watching(&self, on: bool) {
        self.set_reason(WATCHED, on);
    }

    /// Turns modification reports for client-side caching on or off.
    pub(crate) fn set_tracking(&self, on: bool) {
        self.set_reason(TRACKED, on);
    }

    /// Turns modification reports for blocked `XREADGROUP`s on or off.
    pub(crate) fn set_stream_groups(&self, on: bool) {
        self.set_reason(STREAM_GROUPS, on);
    }

    fn set_reason(&self, reason: u8, on: bool) {
        if on {
            self.watching.fetch_or(reason, Ordering::SeqCst);
        } else {
            self.watching.fetch_and(!reason, Ordering::SeqCst);
        }
    }

    /// Turns creation reports on or off.
    pub(crate) fn set_creations(&self, on: bool) {
        self.creations.store(on, Ordering::SeqCst);
    }

    /// Reports a new key if anybody asked for them.
    #[inline]
    pub(crate) fn created(&self, db: usize, key: &[u8]) {
        if self.creations.load(Ordering::Relaxed) {
            if let Some(o) = self.observer.get() {
                o.created(db, key);
            }
        }
    }

    /// Turns deadline reports on or off.
    pub(crate) fn set_deadlines(&self, on: bool) {
        self.deadlines.store(on, Ordering::SeqCst);
    }

    /// Reports a deadline given to a key if anybody asked for them.
    #[inline]
    pub(crate) fn deadline_set(&self, db: usize, key: &[u8]) {
        if self.deadlines.load(Ordering::Relaxed) {
            if let Some(o) = self.observer.get() {
                o.deadline_set(db, key);
            }
        }
    }

    /// Whether modifications are being reported (somebody watches or
    /// tracks a key).
    #[inline]
    pub(crate) fn watching(&self) -> bool {
        self.watching.load(Ordering::Relaxed) != 0
    }

    /// Reports a modification if anybody asked for them.
    #[inline]
    pub(crate) fn modified(&self, db: usize, key: &[u8], exists: bool) {
        if self.watching.load(Ordering::Relaxed) != 0 {
            if let Some(o) = self.observer.get() {
                o.modified(db, key, exists);
            }
        }
    }

    /// The observer, for the rare events reported unconditionally.
    pub(crate) fn get(&self) -> Option<&Arc<dyn KeyObserver>> {
        self.observer.get()
    }
}
