//! A writable replica expires the keys its own clients gave a deadline
//! (Redis's `rememberSlaveKeyWithExpire` and `expireSlaveKeys`).
//!
//! A replica runs no active expiry cycle: the master's `DEL`s remove the
//! keys that came from it. But with `replica-read-only no` its clients
//! may write keys the master never heard of, and nobody would ever send
//! their `DEL`. So, as Redis does, the replica remembers the names of the
//! keys its clients (not the master's stream) gave a deadline, with the
//! databases they were written in, and its background loop expires them
//! there once due. A name whose key is gone, or has no deadline any more,
//! is forgotten. Flushing a database forgets its names (Redis forgets
//! them only when every database is flushed, and says finer tracking is
//! "not worth it": a key of the master's stream with a remembered name
//! would be expired by the replica itself).

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::state::ServerState;

/// Names checked per background pass at most, so a pass stays short.
const BUDGET: usize = 1000;

/// The keys a writable replica's clients gave a deadline: name ->
/// bitmap of the databases (0 to 63, as Redis) they were written in.
#[derive(Debug, Default)]
pub struct ReplicaExpires {
    keys: Mutex<Remembered>,
}

#[derive(Debug, Default)]
struct Remembered {
    dbs: HashMap<Box<[u8]>, u64>,
    /// Where the next pass starts among `dbs`' names, so a large set is
    /// checked a budget at a time, all of it in turn.
    cursor: usize,
}

impl ReplicaExpires {
    /// Remembers that a client of this writable replica gave `key` in
    /// `db` a deadline. Called with the key's shard locked.
    pub fn remember(&self, db: usize, key: &[u8]) {
        let Some(bit) = bit(db) else { return };
        let mut r = self.keys.lock();
        match r.dbs.get_mut(key) {
            Some(bits) => *bits |= bit,
            None => {
                r.dbs.insert(key.into(), bit);
            }
        }
    }

    /// How many names are remembered (`INFO stats`'
    /// `slave_expires_tracked_keys`).
    pub fn len(&self) -> usize {
        self.keys.lock().dbs.len()
    }

    /// Whether no name is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Database `db` was emptied: its keys are gone, and a key of the same
    /// name the master writes there later is the master's to expire.
    pub fn forget_db(&self, db: usize) {
        let Some(bit) = bit(db) else { return };
        let mut r = self.keys.lock();
        if r.dbs.is_empty() {
            return;
        }
        r.dbs.retain(|_, bits| {
            *bits &= !bit;
            *bits != 0
        });
    }

    /// Forgets every name (the server is no longer a replica).
    pub fn clear(&self) {
        *self.keys.lock() = Remembered::default();
    }

    /// One background pass: expires the remembered keys past their
    /// deadline (their `expired` notifications and `expired_keys` count as
    /// any expiry's) and forgets those that no longer have a deadline.
    pub fn expire(&self, srv: &ServerState) {
        let batch: Vec<(Box<[u8]>, u64)> = {
            let mut r = self.keys.lock();
            if r.dbs.is_empty() {
                return;
            }
            if r.cursor >= r.dbs.len() {
                r.cursor = 0;
            }
            let batch: Vec<_> = r
                .dbs
                .iter()
                .skip(r.cursor)
                .take(BUDGET)
                .map(|(k, b)| (k.clone(), *b))
                .collect();
            r.cursor += batch.len();
            batch
        };
        for (key, bits) in batch {
            for db in (0..64).filter(|db| bits & (1u64 << db) != 0) {
                let Ok(mut g) = srv.keyspace.lock_one(db, &key) else {
                    continue;
                };
                // The background thread's policy deletes a key past its
                // deadline (as `expire_cycle` does); one still due later
                // stays remembered.
                let due_later = matches!(g.expire_at(&key), Some(Some(_)));
                if !due_later {
                    // Under the key's shard lock, as `remember` is called:
                    // a client giving the key a deadline again meanwhile
                    // cannot have its bit cleared here.
                    self.forget(db, &key);
                }
                drop(g);
            }
        }
    }

    /// Clears `db`'s bit of `key`, and the name with its last bit.
    fn forget(&self, db: usize, key: &[u8]) {
        let Some(bit) = bit(db) else { return };
        let mut r = self.keys.lock();
        if let Some(bits) = r.dbs.get_mut(key) {
            *bits &= !bit;
            if *bits == 0 {
                r.dbs.remove(key);
            }
        }
    }
}

/// The bitmap bit of database `db`; none past 63 (not remembered, as
/// Redis).
fn bit(db: usize) -> Option<u64> {
    (db < 64).then(|| 1u64 << db)
}

/// Whether a deadline just given to a key is for this module to expire
/// later: this server is a writable replica and the write is a client's,
/// not the master's stream nor a full sync's load, which run under
/// [`amber_storage::lazy_expiry::Policy::Keep`] (see
/// `Replication::expiry_policy`).
pub fn remembers(srv: &ServerState) -> bool {
    srv.replication.is_replica()
        && amber_storage::lazy_expiry::current() != amber_storage::lazy_expiry::Policy::Keep
        && !srv.config.get_bool("replica-read-only")
}

/// Keeps the keyspace's deadline reports on exactly while this server is
/// a replica (they cost a relaxed load per write with a deadline), and
/// forgets the names when it stops being one.
pub fn follow_role(srv: &ServerState) {
    let replica = srv.replication.is_replica();
    srv.keyspace.report_deadlines(replica);
    if !replica {
        srv.replica_expires.clear();
    }
}
