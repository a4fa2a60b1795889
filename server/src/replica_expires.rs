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

use std::collections::BTreeMap;
use std::ops::Bound;

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
    /// Ordered by name, so a pass resumes after the last name the previous
    /// one checked in O(log n), whatever was added or forgotten meanwhile
    /// (as Redis's dict scan resumes from its cursor).
    dbs: BTreeMap<Box<[u8]>, u64>,
    /// The last name the previous pass checked (`None`: start from the
    /// first), so a large set is checked a budget at a time, all of it in
    /// turn.
    cursor: Option<Box<[u8]>>,
}

impl Remembered {
    /// The next (at most) `budget` names and their bitmaps, after the
    /// cursor; the cursor moves past them, back to the start once the end
    /// is reached. Costs O(log n + budget).
    fn next_batch(&mut self, budget: usize) -> Vec<(Box<[u8]>, u64)> {
        let from = match &self.cursor {
            Some(last) => Bound::Excluded(&last[..]),
            None => Bound::Unbounded,
        };
        let batch: Vec<(Box<[u8]>, u64)> = self
            .dbs
            .range::<[u8], _>((from, Bound::Unbounded))
            .take(budget)
            .map(|(k, b)| (k.clone(), *b))
            .collect();
        self.cursor = if batch.len() < budget {
            None
        } else {
            batch.last().map(|(k, _)| k.clone())
        };
        batch
    }
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
        self.expire_some(srv, BUDGET);
    }

    /// [`ReplicaExpires::expire`] with `budget` names at most.
    fn expire_some(&self, srv: &ServerState, budget: usize) {
        let batch = {
            let mut r = self.keys.lock();
            if r.dbs.is_empty() {
                return;
            }
            r.next_batch(budget)
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

#[cfg(test)]
mod tests {
    use crate::test_support::{client, run, server};

    /// One cycle of passes (names / budget, rounded up) checks every
    /// name, even though the passes forget names as they go: those whose
    /// key is gone or has no deadline are forgotten, the others stay.
    #[test]
    fn a_cycle_of_passes_checks_every_name_and_forgets_the_gone_ones() {
        let srv = server();
        let mut c = client(&srv);
        let budget = 100;
        let (live, persistent, gone) = (250, 120, 330);
        for i in 0..live {
            assert_eq!(
                run(&srv, &mut c, &format!("SET live{i} v EX 1000")),
                "+OK\r\n"
            );
        }
        for i in 0..persistent {
            assert_eq!(
                run(&srv, &mut c, &format!("SET persistent{i} v")),
                "+OK\r\n"
            );
        }
        let re = &srv.replica_expires;
        // Interleaved names, so each pass forgets some and keeps some.
        for i in 0..gone.max(live).max(persistent) {
            for (prefix, limit) in [("gone", gone), ("live", live), ("persistent", persistent)] {
                if i < limit {
                    re.remember(0, format!("{prefix}{i}").as_bytes());
                }
            }
        }
        assert_eq!(re.len(), live + persistent + gone);
        let passes = (live + persistent + gone).div_ceil(budget);
        for _ in 0..passes {
            re.expire_some(&srv, budget);
        }
        assert_eq!(
            re.len(),
            live,
            "one cycle forgets every name without a deadline"
        );
        let kept = re.keys.lock();
        assert!((0..live).all(|i| kept.dbs.contains_key(format!("live{i}").as_bytes())));
    }

    /// A pass costs its budget: it resumes after the last name checked.
    #[test]
    fn a_pass_resumes_after_the_last_name_checked() {
        let mut r = super::Remembered::default();
        for i in 0..25u8 {
            r.dbs.insert(vec![i].into(), 1);
        }
        let names = |b: Vec<(Box<[u8]>, u64)>| b.into_iter().map(|(k, _)| k[0]).collect::<Vec<_>>();
        assert_eq!(names(r.next_batch(10)), (0..10).collect::<Vec<_>>());
        // A name forgotten behind the cursor shifts nothing.
        r.dbs.remove(&[3u8][..]);
        assert_eq!(names(r.next_batch(10)), (10..20).collect::<Vec<_>>());
        assert_eq!(names(r.next_batch(10)), (20..25).collect::<Vec<_>>());
        // The end reached, the next pass starts over.
        assert_eq!(names(r.next_batch(3)), vec![0, 1, 2]);
    }
}
