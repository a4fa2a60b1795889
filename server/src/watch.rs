//! `WATCH`: which clients watch which keys, and marking them dirty when the
//! keys change (Redis's `multi.c` watched-keys half).
//!
//! Changes reach [`Watches`] from the storage layer, through the server's
//! [`amber_storage::KeyObserver`] ([`crate::observer`]): every write of every
//! command passes through a `Guard`, which reports the key while at least one
//! key is watched (and costs one atomic load when none is). Whole-database
//! changes (`FLUSHDB`, `FLUSHALL`, `SWAPDB`) arrive as
//! [`Watches::touch_db`]. A client whose watched key changed is *dirty*; its
//! next `EXEC` answers nil.
//!
//! As in Redis 7.0, a key that was already logically expired (but not yet
//! removed) when it was watched is remembered as such: its removal is no
//! change, and `EXEC` fails only if a watched key that was alive at `WATCH`
//! has expired since ([`ClientWatch::any_expired`]).
//!
//! A write that changes nothing (`SADD` of members already there, `ZADD NX`
//! of existing members, `HDEL`, `SREM`, `ZREM`, `LREM` of absent elements,
//! `LINSERT` without its pivot, an `SMOVE` destination that already has
//! the member) declares its key `Guard::unchanged`, and is not reported:
//! as in Redis, which signals a key only when a command changed it.
//!
//! Known difference: a command that takes a value for writing
//! (`Guard::get_mut`) and then fails without changing it (a type error
//! found after the lookup) still counts as a modification.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use amber_storage::Keyspace;
use parking_lot::Mutex;

/// One (client, key) watch.
#[derive(Debug)]
struct WatchedKey {
    /// The watching client's dirty flag.
    dirty: Arc<AtomicBool>,
    /// The key was logically expired (still present) when watched.
    expired: AtomicBool,
}

/// Every watched key of the server: (db, key) to its watchers, in the order
/// they started watching.
#[derive(Debug, Default)]
pub struct Watches {
    keys: Mutex<WatchMap>,
}

/// (db, key) to the watches on it.
type WatchMap = HashMap<(usize, Vec<u8>), Vec<Arc<WatchedKey>>>;

/// What one client watches.
#[derive(Debug, Default)]
pub struct ClientWatch {
    dirty: Arc<AtomicBool>,
    keys: Vec<(usize, Vec<u8>, Arc<WatchedKey>)>,
}

impl ClientWatch {
    /// Watches that report through `dirty` (shared with the client's
    /// handle, so `CLIENT LIST` shows flag `d`).
    pub fn with_flag(dirty: Arc<AtomicBool>) -> ClientWatch {
        ClientWatch {
            dirty,
            keys: Vec::new(),
        }
    }

    /// Whether a watched key changed since it was watched (`CLIENT_DIRTY_CAS`).
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::SeqCst)
    }

    /// Clears the dirty flag (`UNWATCH`, end of a transaction).
    pub fn clear_dirty(&self) {
        self.dirty.store(false, Ordering::SeqCst);
    }

    /// Number of watched keys (`CLIENT LIST`'s `watch=`).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is watched.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Redis's `isWatchedKeyExpired`: a watched key that was alive when
    /// watched is now past its deadline.
    pub fn any_expired(&self, ks: &Keyspace) -> bool {
        self.keys.iter().any(|(db, key, wk)| {
            !wk.expired.load(Ordering::SeqCst) && ks.presence(*db, key) == Some(true)
        })
    }
}

impl Watches {
    /// `WATCH key` in `db` for a client (a key watched twice counts once).
    pub fn watch(&self, ks: &Keyspace, cw: &mut ClientWatch, db: usize, key: &[u8]) {
        if cw.keys.iter().any(|(d, k, _)| *d == db && k == key) {
            return;
        }
        // Asked before taking our lock: a guard reports modifications while
        // holding a shard lock, so we never wait for a shard holding ours.
        let expired = ks.presence(db, key) == Some(true);
        let wk = Arc::new(WatchedKey {
            dirty: cw.dirty.clone(),
            expired: AtomicBool::new(expired),
        });
        let mut keys = self.keys.lock();
        keys.entry((db, key.to_vec())).or_default().push(wk.clone());
        ks.watch_modifications(true);
        drop(keys);
        cw.keys.push((db, key.to_vec(), wk));
    }

    /// Forgets every key a client watches (`UNWATCH`, `EXEC`, `DISCARD`,
    /// disconnection). The dirty flag is left to the caller.
    pub fn unwatch_all(&self, ks: &Keyspace, cw: &mut ClientWatch) {
        if cw.keys.is_empty() {
            return;
        }
        let mut keys = self.keys.lock();
        for (db, key, wk) in cw.keys.drain(..) {
            let id = (db, key);
            if let Some(list) = keys.get_mut(&id) {
                list.retain(|w| !Arc::ptr_eq(w, &wk));
                if list.is_empty() {
                    keys.remove(&id);
                }
            }
        }
        if keys.is_empty() {
            ks.watch_modifications(false);
        }
    }

    /// Redis's `touchWatchedKey`: `key` in `db` changed; `exists` says
    /// whether it exists afterwards.
    pub fn touch(&self, db: usize, key: &[u8], exists: bool) {
        let keys = self.keys.lock();
        if keys.is_empty() {
            return;
        }
        let Some(list) = keys.get(&(db, key.to_vec())) else {
            return;
        };
        for wk in list {
            if wk.expired.load(Ordering::SeqCst) {
                if !exists {
                    // An already expired key was deleted: no logical change.
                    wk.expired.store(false, Ordering::SeqCst);
                    continue;
                }
                // Redis 7.0.15 stops at the first such watcher (`break`).
                break;
            }
            wk.dirty.store(true, Ordering::SeqCst);
        }
    }

    /// Redis's `touchAllWatchedKeysInDb`: database `emptied` is being
    /// flushed, or swapped with `replaced_with`. Must be called with no
    /// shard locked (it looks keys up).
    pub fn touch_db(&self, ks: &Keyspace, emptied: usize, replaced_with: Option<usize>) {
        let watched: Vec<Vec<u8>> = {
            let keys = self.keys.lock();
            if keys.is_empty() {
                return;
            }
            keys.keys()
                .filter(|(db, _)| *db == emptied)
                .map(|(_, k)| k.clone())
                .collect()
        };
        for key in watched {
            let in_emptied = ks.presence(emptied, &key).is_some();
            let in_other = replaced_with.and_then(|o| ks.presence(o, &key));
            if !in_emptied && in_other.is_none() {
                continue;
            }
            let keys = self.keys.lock();
            let Some(list) = keys.get(&(emptied, key)) else {
                continue;
            };
            for wk in list {
                if wk.expired.load(Ordering::SeqCst) {
                    match in_other {
                        // Expired key now deleted: no logical change.
                        None => {
                            wk.expired.store(false, Ordering::SeqCst);
                            continue;
                        }
                        // Expired key remains expired.
                        Some(true) => continue,
                        Some(false) => {}
                    }
                } else if !in_emptied && in_other == Some(true) {
                    // A missing key replaced with an expired one.
                    wk.expired.store(true, Ordering::SeqCst);
                    continue;
                }
                wk.dirty.store(true, Ordering::SeqCst);
            }
        }
    }
}
