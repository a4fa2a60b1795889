//! The keyspace: 16 databases, each split into shards by key hash.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hashbrown::DefaultHashBuilder;
use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use rand::Rng;
use smallvec::SmallVec;

use crate::clock::now_ms;
use crate::guard::Guard;
use crate::shard::Shard;
use crate::value::{Value, ValueType};
use crate::{Error, Result};

/// Number of logical databases (`SELECT 0` .. `SELECT 15`), as Redis's default.
pub const DB_COUNT: usize = 16;

/// How the keyspace is laid out.
#[derive(Debug, Clone)]
pub struct KeyspaceConfig {
    /// Shards per database; rounded up to a power of two.
    pub shards_per_db: usize,
}

impl Default for KeyspaceConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        KeyspaceConfig {
            shards_per_db: (cores * 16).next_power_of_two().max(16),
        }
    }
}

/// One logical database.
pub(crate) struct Database {
    pub(crate) shards: Box<[Mutex<Shard>]>,
}

/// Counters the keyspace keeps for `INFO stats`.
#[derive(Debug, Default)]
pub struct KeyspaceStats {
    /// Keys removed because their deadline passed (lazily or actively).
    pub expired_keys: AtomicU64,
}

/// Per-database figures for `INFO keyspace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbInfo {
    /// Number of keys.
    pub keys: usize,
    /// Number of keys with a deadline.
    pub expires: usize,
    /// Average remaining TTL of volatile keys, ms (0 when there are none).
    pub avg_ttl: u64,
}

/// The contents of flushed databases, detached from the keyspace so that the
/// caller chooses where the memory is freed: dropping it frees every value
/// (`FLUSHALL ASYNC` drops it on a background thread, as Redis's lazyfree).
#[derive(Default)]
pub struct Flushed {
    shards: Vec<Shard>,
}

impl Flushed {
    /// Number of keys (live or expired) the flushed databases held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.table.len()).sum()
    }

    /// Whether the flushed databases held no key at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for Flushed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flushed")
            .field("keys", &self.len())
            .finish()
    }
}

/// The whole data set of a server.
pub struct Keyspace {
    pub(crate) dbs: Box<[Database]>,
    pub(crate) hasher: DefaultHashBuilder,
    shard_mask: u64,
    gate: RwLock<()>,
    started: Instant,
    /// Statistics counters.
    pub stats: KeyspaceStats,
}

/// A filter for [`Keyspace::scan`].
pub type ScanFilter<'f> = &'f dyn Fn(&[u8], &Value) -> bool;

impl Keyspace {
    /// An empty keyspace.
    pub fn new(config: KeyspaceConfig) -> Self {
        let shards = config.shards_per_db.max(1).next_power_of_two();
        let dbs = (0..DB_COUNT)
            .map(|_| Database {
                shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            })
            .collect();
        Keyspace {
            dbs,
            hasher: DefaultHashBuilder::default(),
            shard_mask: shards as u64 - 1,
            gate: RwLock::new(()),
            started: Instant::now(),
            stats: KeyspaceStats::default(),
        }
    }

    /// Number of shards in each database.
    pub fn shards_per_db(&self) -> usize {
        self.shard_mask as usize + 1
    }

    /// The hash of a key (stable for the life of the process).
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    pub(crate) fn shard_of(&self, hash: u64) -> usize {
        ((hash >> 40) & self.shard_mask) as usize
    }

    /// Seconds since the keyspace was created (the LRU clock).
    pub(crate) fn clock_secs(&self) -> u32 {
        self.started.elapsed().as_secs() as u32
    }

    /// Takes the gate shared: ordinary commands run under it (one read lock
    /// per pipelined batch is enough).
    pub fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read()
    }

    /// Takes the gate exclusively: nothing else runs until it is dropped
    /// (`EXEC`, `SWAPDB`, `MOVE`, cross-database `COPY`).
    pub fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.gate.write()
    }

    fn database(&self, db: usize) -> Result<&Database> {
        self.dbs.get(db).ok_or(Error::DbIndexOutOfRange)
    }

    /// Locks the shards holding `keys` in database `db`, in ascending order.
    pub fn lock<'k>(
        &self,
        db: usize,
        keys: impl IntoIterator<Item = &'k [u8]>,
    ) -> Result<Guard<'_>> {
        let database = self.database(db)?;
        let mut wanted: SmallVec<[usize; 4]> = keys
            .into_iter()
            .map(|k| self.shard_of(self.hash(k)))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let locks = wanted
            .into_iter()
            .filter_map(|i| database.shards.get(i).map(|m| (i, m.lock())))
            .collect();
        Ok(Guard::new(self, db, locks, now_ms()))
    }

    /// Locks the shard of one key.
    pub fn lock_one(&self, db: usize, key: &[u8]) -> Result<Guard<'_>> {
        self.lock(db, std::iter::once(key))
    }

    /// Number of keys in `db` (including expired keys not yet collected, as Redis).
    pub fn dbsize(&self, db: usize) -> usize {
        self.dbs
            .get(db)
            .map_or(0, |d| d.shards.iter().map(|s| s.lock().table.len()).sum())
    }

    /// Figures for `INFO keyspace`.
    pub fn db_info(&self, db: usize) -> DbInfo {
        let now = now_ms();
        let (mut keys, mut expires, mut ttl_sum) = (0, 0, 0u128);
        if let Some(d) = self.dbs.get(db) {
            for s in d.shards.iter() {
                let s = s.lock();
                keys += s.table.len();
                let (sum, n) = s.expiry.ttl_sum(now);
                ttl_sum += sum;
                expires += n;
            }
        }
        let avg_ttl = if expires == 0 {
            0
        } else {
            (ttl_sum / expires as u128) as u64
        };
        DbInfo {
            keys,
            expires,
            avg_ttl,
        }
    }

    /// Removes every key of `db`.
    pub fn flush_db(&self, db: usize) {
        if let Some(d) = self.dbs.get(db) {
            for s in d.shards.iter() {
                // Swap the table out so its memory is freed outside the lock.
                let old = std::mem::take(&mut *s.lock());
                drop(old);
            }
        }
    }

    /// Removes every key of every database.
    pub fn flush_all(&self) {
        for db in 0..self.dbs.len() {
            self.flush_db(db);
        }
    }

    /// Empties `db` at once and hands its former contents to the caller,
    /// who frees them wherever it likes (`FLUSHDB ASYNC`). Each shard is
    /// swapped out under its lock, so the database is empty as soon as this
    /// returns; run it under [`Keyspace::exclusive`] for an atomic flush.
    pub fn detach_db(&self, db: usize) -> Flushed {
        let mut out = Flushed::default();
        if let Some(d) = self.dbs.get(db) {
            out.shards.reserve(d.shards.len());
            for s in d.shards.iter() {
                out.shards.push(std::mem::take(&mut *s.lock()));
            }
        }
        out
    }

    /// [`Keyspace::detach_db`] for every database (`FLUSHALL ASYNC`).
    pub fn detach_all(&self) -> Flushed {
        let mut out = Flushed::default();
        for db in 0..self.dbs.len() {
            out.shards.append(&mut self.detach_db(db).shards);
        }
        out
    }

    /// Swaps two databases. Run under [`Keyspace::exclusive`].
    pub fn swap_db(&self, a: usize, b: usize) -> Result<()> {
        let (da, db_) = (self.database(a)?, self.database(b)?);
        if a == b {
            return Ok(());
        }
        for (sa, sb) in da.shards.iter().zip(db_.shards.iter()) {
            let mut ga = sa.lock();
            let mut gb = sb.lock();
            std::mem::swap(&mut *ga, &mut *gb);
        }
        Ok(())
    }

    /// Every live key of `db` that matches `pattern` (`KEYS`).
    pub fn keys(&self, db: usize, pattern: &[u8]) -> Vec<Vec<u8>> {
        let now = now_ms();
        let all = pattern == b"*";
        let mut out = Vec::new();
        if let Some(d) = self.dbs.get(db) {
            for s in d.shards.iter() {
                let s = s.lock();
                for e in s.table.iter() {
                    if (e.expire_at == 0 || e.expire_at > now)
                        && (all || crate::glob::matches(pattern, &e.key, false))
                    {
                        out.push(e.key.to_vec());
                    }
                }
            }
        }
        out
    }

    /// One step of `SCAN`.
    ///
    /// The cursor is `shard << 32 | hash-position`: keys of a shard are visited
    /// in order of the low 32 bits of their hash, so every key present for the
    /// whole scan is returned at least once however the tables grow or shrink,
    /// which is Redis's guarantee. A step costs a pass over one shard. Returns
    /// the next cursor (0 when done) and the keys passing `filter`.
    pub fn scan(
        &self,
        db: usize,
        cursor: u64,
        count: usize,
        filter: ScanFilter<'_>,
    ) -> (u64, Vec<Vec<u8>>) {
        let Some(d) = self.dbs.get(db) else {
            return (0, Vec::new());
        };
        let now = now_ms();
        let shards = d.shards.len() as u64;
        let mut shard = cursor >> 32;
        let mut from = cursor & 0xFFFF_FFFF;
        let mut out = Vec::new();
        let mut visited = 0usize;
        let count = count.max(1);
        while shard < shards && visited < count {
            let Some(lock) = d.shards.get(shard as usize) else {
                break;
            };
            let s = lock.lock();
            // Candidates at or after the cursor position, in position order.
            let mut cands: Vec<(u64, &crate::shard::Entry)> = s
                .table
                .iter()
                .map(|e| (self.hash(&e.key) & 0xFFFF_FFFF, e))
                .filter(|(pos, _)| *pos >= from)
                .collect();
            let want = count - visited;
            let exhausted = cands.len() <= want;
            if !exhausted {
                cands.select_nth_unstable_by_key(want - 1, |(p, _)| *p);
                // Keep whole groups of equal positions together so a resumed
                // cursor never skips a key that shares the cut-off position.
                let cut = cands.get(want - 1).map_or(0, |c| c.0);
                cands.retain(|(p, _)| *p <= cut);
            }
            let last = cands.iter().map(|(p, _)| *p).max();
            for (_, e) in &cands {
                visited += 1;
                if (e.expire_at == 0 || e.expire_at > now) && filter(&e.key, &e.value) {
                    out.push(e.key.to_vec());
                }
            }
            match last {
                Some(l) if !exhausted && l < 0xFFFF_FFFF => from = l + 1,
                _ => {
                    shard += 1;
                    from = 0;
                }
            }
        }
        let next = if shard >= shards {
            0
        } else {
            (shard << 32) | from
        };
        (next, out)
    }

    /// A random live key of `db` (`RANDOMKEY`).
    pub fn random_key(&self, db: usize) -> Option<Vec<u8>> {
        let d = self.dbs.get(db)?;
        let now = now_ms();
        let mut rng = rand::thread_rng();
        let sizes: Vec<usize> = d.shards.iter().map(|s| s.lock().table.len()).collect();
        let total: usize = sizes.iter().sum();
        // A bounded number of tries: a database full of expired keys answers nil.
        for _ in 0..100 {
            if total == 0 {
                return None;
            }
            let mut pick = rng.gen_range(0..total);
            for (i, &n) in sizes.iter().enumerate() {
                if pick < n {
                    let s = d.shards.get(i)?.lock();
                    let e = s.table.iter().nth(pick)?;
                    if e.expire_at == 0 || e.expire_at > now {
                        return Some(e.key.to_vec());
                    }
                    break;
                }
                pick -= n;
            }
        }
        None
    }

    /// One active-expiry pass: removes up to `budget` due keys across all
    /// shards. Returns how many were removed.
    pub fn expire_cycle(&self, budget: usize) -> usize {
        let now = now_ms();
        let mut removed = 0;
        for d in self.dbs.iter() {
            for s in d.shards.iter() {
                if removed >= budget {
                    return removed;
                }
                let mut s = s.lock();
                if s.expiry.len() == 0 {
                    continue;
                }
                for (deadline, hash) in s.expiry.due(now, budget - removed) {
                    // Find one entry with this hash and deadline and remove it.
                    let key = s
                        .table
                        .find(hash, |e| {
                            e.expire_at == deadline && self.hash(&e.key) == hash
                        })
                        .map(|e| e.key.clone());
                    if let Some(key) = key {
                        s.remove(hash, &key);
                        removed += 1;
                    } else {
                        s.expiry.remove(deadline, hash);
                    }
                }
            }
        }
        self.stats
            .expired_keys
            .fetch_add(removed as u64, Ordering::Relaxed);
        removed
    }

    /// The type of `key` in `db` without touching its access time.
    pub fn type_of(&self, db: usize, key: &[u8]) -> Option<ValueType> {
        let mut g = self.lock_one(db, key).ok()?;
        g.peek(key).map(Value::value_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SetExpiry;

    fn filled(n: usize, db: usize) -> Keyspace {
        let ks = Keyspace::new(KeyspaceConfig { shards_per_db: 4 });
        for i in 0..n {
            let key = format!("key:{i}");
            let mut g = ks.lock_one(db, key.as_bytes()).expect("db");
            g.set(key.as_bytes(), Value::string("v"), SetExpiry::Persist)
                .expect("set");
        }
        ks
    }

    #[test]
    fn detach_db_empties_one_database() {
        let ks = filled(50, 2);
        let mut g = ks.lock_one(5, b"other").expect("db 5");
        g.set(b"other", Value::string("v"), SetExpiry::Persist)
            .expect("set");
        drop(g);
        let flushed = ks.detach_db(2);
        assert_eq!(flushed.len(), 50);
        assert!(!flushed.is_empty());
        assert_eq!(ks.dbsize(2), 0);
        assert_eq!(ks.dbsize(5), 1);
        // Freed on another thread, as FLUSHDB ASYNC does.
        std::thread::spawn(move || drop(flushed))
            .join()
            .expect("drop thread");
        assert!(ks.detach_db(99).is_empty());
    }

    #[test]
    fn detach_all_empties_everything() {
        let ks = filled(10, 0);
        let mut g = ks.lock_one(15, b"x").expect("db 15");
        g.set(b"x", Value::string("v"), SetExpiry::At(1))
            .expect("set");
        drop(g);
        let flushed = ks.detach_all();
        assert_eq!(flushed.len(), 11);
        assert!((0..DB_COUNT).all(|db| ks.dbsize(db) == 0));
        assert_eq!(ks.db_info(15).expires, 0);
    }

    #[test]
    fn full_scan_visits_every_live_key_once() {
        let ks = filled(200, 0);
        let mut g = ks.lock_one(0, b"dead").expect("db 0");
        g.set(b"dead", Value::string("v"), SetExpiry::At(1))
            .expect("set");
        drop(g);
        for count in [1, 7, 10, 1000] {
            let mut seen = Vec::new();
            let mut cursor = 0;
            loop {
                let (next, keys) = ks.scan(0, cursor, count, &|_, _| true);
                seen.extend(keys);
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
            seen.sort();
            let before = seen.len();
            seen.dedup();
            assert_eq!(before, seen.len(), "no duplicates without rehash");
            assert_eq!(seen.len(), 200, "count {count}");
            assert!(!seen.iter().any(|k| k == b"dead"));
        }
        let (_, keys) = ks.scan(0, 0, 1000, &|k, _| {
            crate::glob::matches(b"key:1?", k, false)
        });
        assert_eq!(keys.len(), 10);
    }
}
