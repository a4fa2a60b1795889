//! [`KeyObserver`]: how the server learns that keys changed, without the
//! storage crate knowing anything of clients or sockets.
//!
//! The server installs one observer ([`crate::Keyspace::set_observer`]). The
//! keyspace then reports:
//! * every modification made through a [`crate::Guard`] (`modified`): only
//!   while the server has asked for it with
//!   [`crate::Keyspace::watch_modifications`] (some client `WATCH`es a key),
//!   so a write costs one relaxed atomic load when nobody watches;
//! * every key added (`created`), only while asked for with
//!   [`crate::Keyspace::report_creations`] (`notify-keyspace-events n`);
//! * every key removed because its deadline passed, lazily or by the active
//!   cycle (`expired`), and every key evicted for `maxmemory` (`evicted`):
//!   rare events, always reported once an observer is installed;
//! * a whole database about to be emptied or swapped (`replacing_db`), before
//!   any shard of it is touched (`FLUSHDB`, `FLUSHALL`, `SWAPDB`).
//!
//! Calls are made while the key's shard is locked (except `replacing_db`,
//! made with no lock held): an observer must not call back into the keyspace
//! from `modified`, `expired` or `evicted`, and must not block.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// Receives the keyspace's change reports. See the module documentation.
pub trait KeyObserver: Send + Sync {
    /// `key` in `db` was written, deleted or had its deadline changed;
    /// `exists` says whether it exists after the change. Reported only while
    /// [`crate::Keyspace::watch_modifications`] is on.
    fn modified(&self, db: usize, key: &[u8], exists: bool);
    /// `key` was added to `db` (it did not exist before the write). Reported
    /// only while [`crate::Keyspace::report_creations`] is on.
    fn created(&self, db: usize, key: &[u8]);
    /// `key` in `db` was removed because its deadline passed.
    fn expired(&self, db: usize, key: &[u8]);
    /// `key` in `db` was evicted to make room (`maxmemory-policy`).
    fn evicted(&self, db: usize, key: &[u8]);
    /// Database `emptied` is about to lose all its keys; with
    /// `replaced_with`, it is about to be swapped with that database. Called
    /// with no shard locked, so the observer may query the keyspace.
    fn replacing_db(&self, emptied: usize, replaced_with: Option<usize>);
}

/// The installed observer and the switch for modification reports.
#[derive(Default)]
pub(crate) struct Observers {
    watching: AtomicBool,
    creations: AtomicBool,
    observer: OnceLock<Arc<dyn KeyObserver>>,
}

impl Observers {
    /// Installs the observer (only the first call has an effect).
    pub(crate) fn install(&self, o: Arc<dyn KeyObserver>) {
        let _ = self.observer.set(o);
    }

    /// Turns modification reports on or off.
    pub(crate) fn set_watching(&self, on: bool) {
        self.watching.store(on, Ordering::SeqCst);
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

    /// Whether modifications are being reported (somebody watches a key).
    #[inline]
    pub(crate) fn watching(&self) -> bool {
        self.watching.load(Ordering::Relaxed)
    }

    /// Reports a modification if anybody asked for them.
    #[inline]
    pub(crate) fn modified(&self, db: usize, key: &[u8], exists: bool) {
        if self.watching.load(Ordering::Relaxed) {
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
