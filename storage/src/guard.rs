//! [`Guard`]: the locked view of a few keys through which commands read and write.
//!
//! Every read and write of a command goes through a guard, which is what lets
//! the tiered engine hide where a value lives: a read may load a cold value, a
//! write may be refused for lack of memory, and every modification passes
//! through one place ([`Guard::modified`]) where write-through persistence,
//! `WATCH` and keyspace notifications hook in.

use parking_lot::MutexGuard;
use smallvec::SmallVec;

use crate::keyspace::Keyspace;
use crate::shard::{Entry, Shard};
use crate::value::Value;
use crate::Result;

/// What a write does to the key's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetExpiry {
    /// No deadline (a plain `SET` clears any TTL).
    Persist,
    /// Keep the existing deadline (`SET ... KEEPTTL`, `SETRANGE`, `APPEND`, ...).
    Keep,
    /// Expire at this absolute Unix time in ms.
    At(u64),
}

/// A key's value and metadata lifted out of the keyspace, to be stored again
/// under another name or in another database with [`Guard::put`] (`RENAME`,
/// `MOVE`, `COPY`). The deadline travels with the value, so a renamed or moved
/// key keeps its TTL, as in Redis.
#[derive(Debug, Clone, PartialEq)]
pub struct Detached {
    /// The value.
    pub value: Value,
    /// Absolute deadline in Unix ms, or `None` for a key without a TTL.
    pub expire_at: Option<u64>,
    /// Last access time (the keyspace's LRU clock), kept when the guard does
    /// not touch keys (`CLIENT NO-TOUCH`).
    access: u32,
}

/// Locks held on the shards of the keys a command touches.
pub struct Guard<'a> {
    ks: &'a Keyspace,
    db: usize,
    locks: SmallVec<[(usize, MutexGuard<'a, Shard>); 2]>,
    now: u64,
    clock: u32,
    touch: bool,
}

impl<'a> Guard<'a> {
    pub(crate) fn new(
        ks: &'a Keyspace,
        db: usize,
        locks: SmallVec<[(usize, MutexGuard<'a, Shard>); 2]>,
        now: u64,
    ) -> Self {
        Guard {
            ks,
            db,
            locks,
            now,
            clock: ks.clock_secs(),
            touch: true,
        }
    }

    /// The database this guard works in.
    pub fn db(&self) -> usize {
        self.db
    }

    /// The command's notion of "now" in Unix ms (fixed for the guard's life,
    /// as Redis fixes it per command).
    pub fn now_ms(&self) -> u64 {
        self.now
    }

    /// Whether reads update the access time (`CLIENT NO-TOUCH` turns it off).
    pub fn set_touch(&mut self, touch: bool) {
        self.touch = touch;
    }

    /// The locked shard for `hash`. A key whose shard is not locked is a bug in
    /// the caller; it is reported as absent rather than crashing the server.
    fn shard(&mut self, hash: u64) -> Option<&mut Shard> {
        let want = self.ks.shard_of(hash);
        let found = self
            .locks
            .iter_mut()
            .find(|(i, _)| *i == want)
            .map(|(_, s)| &mut **s);
        debug_assert!(found.is_some(), "key's shard was not locked by this guard");
        found
    }

    /// The live entry for `key`, expiring it lazily if its deadline has passed.
    fn live(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let hash = self.ks.hash(key);
        let now = self.now;
        let shard = self.shard(hash)?;
        let expired = match shard.find(hash, key) {
            None => return None,
            Some(e) => e.expire_at != 0 && e.expire_at <= now,
        };
        if expired {
            shard.remove(hash, key);
            self.ks
                .stats
                .expired_keys
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return None;
        }
        self.shard(hash)?.find_mut(hash, key)
    }

    /// Reads `key`, updating its access time.
    pub fn get(&mut self, key: &[u8]) -> Option<&Value> {
        let (touch, clock) = (self.touch, self.clock);
        let e = self.live(key)?;
        if touch {
            e.access = clock;
        }
        Some(&e.value)
    }

    /// Reads `key` without updating its access time (`TYPE`, `OBJECT`, ...).
    pub fn peek(&mut self, key: &[u8]) -> Option<&Value> {
        self.live(key).map(|e| &e.value)
    }

    /// Does `key` exist (and is it unexpired)?
    pub fn exists(&mut self, key: &[u8]) -> bool {
        self.live(key).is_some()
    }

    /// Mutable access to the value of `key`. The caller is about to modify it;
    /// if it empties a collection it must [`Guard::remove`] the key.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Value> {
        let clock = self.clock;
        self.live(key)?;
        self.modified(key);
        let e = self.live(key)?;
        e.access = clock;
        Some(&mut e.value)
    }

    /// Stores `value` under `key`.
    pub fn set(&mut self, key: &[u8], value: Value, expiry: SetExpiry) -> Result<()> {
        let hash = self.ks.hash(key);
        let (clock, ks) = (self.clock, self.ks);
        let mut value = Some(value);
        let keep = match self.live(key) {
            Some(e) => {
                let deadline = match expiry {
                    SetExpiry::Keep => e.expire_at,
                    SetExpiry::Persist => 0,
                    SetExpiry::At(t) => t,
                };
                if let Some(v) = value.take() {
                    e.value = v;
                }
                e.access = clock;
                Some(deadline)
            }
            None => None,
        };
        match keep {
            Some(deadline) => {
                if let Some(s) = self.shard(hash) {
                    s.set_deadline(hash, key, deadline);
                }
            }
            None => {
                let Some(value) = value else { return Ok(()) };
                let expire_at = match expiry {
                    SetExpiry::At(t) => t,
                    _ => 0,
                };
                let entry = Entry {
                    key: key.into(),
                    value,
                    expire_at,
                    access: clock,
                };
                if let Some(s) = self.shard(hash) {
                    s.insert_new(hash, entry, |k| ks.hash(k));
                }
            }
        }
        self.modified(key);
        Ok(())
    }

    /// Removes `key`, returning its value if it was live.
    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        self.live(key)?;
        let hash = self.ks.hash(key);
        let e = self.shard(hash)?.remove(hash, key)?;
        self.modified(key);
        Some(e.value)
    }

    /// The deadline of `key`: `None` if the key is absent, `Some(None)` if it
    /// has no TTL.
    pub fn expire_at(&mut self, key: &[u8]) -> Option<Option<u64>> {
        self.live(key)
            .map(|e| (e.expire_at != 0).then_some(e.expire_at))
    }

    /// Sets (or with `None` clears) the deadline of `key`. Returns false if the
    /// key is absent.
    pub fn set_expire_at(&mut self, key: &[u8], deadline: Option<u64>) -> bool {
        if self.live(key).is_none() {
            return false;
        }
        let hash = self.ks.hash(key);
        let ok = self
            .shard(hash)
            .is_some_and(|s| s.set_deadline(hash, key, deadline.unwrap_or(0)));
        if ok {
            self.modified(key);
        }
        ok
    }

    /// Seconds since `key` was last accessed (`OBJECT IDLETIME`).
    pub fn idle_secs(&mut self, key: &[u8]) -> Option<u32> {
        let clock = self.clock;
        self.live(key).map(|e| clock.saturating_sub(e.access))
    }

    /// Marks `key` as accessed (`TOUCH`).
    pub fn touch_key(&mut self, key: &[u8]) -> bool {
        let clock = self.clock;
        match self.live(key) {
            Some(e) => {
                e.access = clock;
                true
            }
            None => false,
        }
    }

    /// Removes `key` and returns its value with its deadline, ready to be
    /// [`Guard::put`] elsewhere (`RENAME`, `MOVE`). `None` if the key is absent
    /// or expired.
    pub fn take(&mut self, key: &[u8]) -> Option<Detached> {
        self.live(key)?;
        let hash = self.ks.hash(key);
        let e = self.shard(hash)?.remove(hash, key)?;
        self.modified(key);
        Some(Detached {
            value: e.value,
            expire_at: (e.expire_at != 0).then_some(e.expire_at),
            access: e.access,
        })
    }

    /// A copy of the value of `key` with its deadline (`COPY`), without
    /// changing the key. Counts as an access (the copy is a fresh object
    /// whose access time is now, as Redis's duplicated object).
    pub fn duplicate(&mut self, key: &[u8]) -> Option<Detached> {
        let (touch, clock) = (self.touch, self.clock);
        let e = self.live(key)?;
        if touch {
            e.access = clock;
        }
        Some(Detached {
            value: e.value.clone(),
            expire_at: (e.expire_at != 0).then_some(e.expire_at),
            access: clock,
        })
    }

    /// Stores a detached value under `key` with its deadline, replacing
    /// whatever `key` held (live or expired). The access time becomes now
    /// unless the guard does not touch keys, in which case the detached
    /// entry's own access time is kept.
    pub fn put(&mut self, key: &[u8], d: Detached) -> Result<()> {
        let hash = self.ks.hash(key);
        let (touch, clock, ks) = (self.touch, self.clock, self.ks);
        let Some(shard) = self.shard(hash) else {
            return Ok(());
        };
        // Any previous entry goes, whether or not its deadline has passed.
        shard.remove(hash, key);
        let entry = Entry {
            key: key.into(),
            value: d.value,
            expire_at: d.expire_at.unwrap_or(0),
            access: if touch { clock } else { d.access },
        };
        shard.insert_new(hash, entry, |k| ks.hash(k));
        self.modified(key);
        Ok(())
    }

    /// The one place every modification of a key passes through. The tiered
    /// engine persists here; WATCH and keyspace notifications hook in here.
    fn modified(&mut self, _key: &[u8]) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::KeyspaceConfig;
    use crate::ValueType;

    fn ks() -> Keyspace {
        Keyspace::new(KeyspaceConfig { shards_per_db: 4 })
    }

    fn string_of(g: &mut Guard<'_>, key: &[u8]) -> Option<Vec<u8>> {
        match g.get(key)? {
            Value::Str(s) => Some(s.bytes.clone()),
        }
    }

    #[test]
    fn take_then_put_renames_with_ttl() {
        let ks = ks();
        let far = crate::clock::now_ms() + 100_000;
        let mut g = ks.lock(0, [&b"a"[..], b"b"]).expect("db 0");
        g.set(b"a", Value::string("1"), SetExpiry::At(far))
            .expect("set");
        let d = g.take(b"a").expect("a is live");
        assert_eq!(d.expire_at, Some(far));
        assert!(!g.exists(b"a"));
        g.put(b"b", d).expect("put");
        assert_eq!(string_of(&mut g, b"b"), Some(b"1".to_vec()));
        assert_eq!(g.expire_at(b"b"), Some(Some(far)));
        assert_eq!(g.take(b"a"), None);
        drop(g);
        // The expiry index follows the key: one volatile key in db 0.
        assert_eq!(ks.db_info(0).expires, 1);
        assert_eq!(ks.db_info(0).keys, 1);
    }

    #[test]
    fn put_replaces_value_and_deadline() {
        let ks = ks();
        let far = crate::clock::now_ms() + 100_000;
        let mut g = ks.lock(0, [&b"src"[..], b"dst"]).expect("db 0");
        g.set(b"src", Value::string("new"), SetExpiry::Persist)
            .expect("set");
        g.set(b"dst", Value::string("old"), SetExpiry::At(far))
            .expect("set");
        let d = g.take(b"src").expect("src");
        g.put(b"dst", d).expect("put");
        assert_eq!(string_of(&mut g, b"dst"), Some(b"new".to_vec()));
        assert_eq!(g.expire_at(b"dst"), Some(None));
        drop(g);
        let info = ks.db_info(0);
        assert_eq!((info.keys, info.expires), (1, 0));
    }

    #[test]
    fn put_over_an_expired_key() {
        let ks = ks();
        let mut g = ks.lock(0, [&b"x"[..], b"y"]).expect("db 0");
        g.set(b"x", Value::string("v"), SetExpiry::Persist)
            .expect("set");
        // A deadline already in the past: the entry is still stored until
        // someone looks, and `put` must replace it cleanly.
        g.set(b"y", Value::string("gone"), SetExpiry::At(1))
            .expect("set");
        let d = g.take(b"x").expect("x");
        g.put(b"y", d).expect("put");
        assert_eq!(string_of(&mut g, b"y"), Some(b"v".to_vec()));
        drop(g);
        let info = ks.db_info(0);
        assert_eq!((info.keys, info.expires), (1, 0));
    }

    #[test]
    fn duplicate_leaves_the_source() {
        let ks = ks();
        let far = crate::clock::now_ms() + 100_000;
        let mut g = ks.lock(0, [&b"a"[..], b"b", b"missing"]).expect("db 0");
        g.set(b"a", Value::string("v"), SetExpiry::At(far))
            .expect("set");
        let d = g.duplicate(b"a").expect("a");
        g.put(b"b", d).expect("put");
        assert_eq!(string_of(&mut g, b"a"), Some(b"v".to_vec()));
        assert_eq!(string_of(&mut g, b"b"), Some(b"v".to_vec()));
        assert_eq!(g.expire_at(b"b"), Some(Some(far)));
        assert_eq!(g.duplicate(b"missing"), None);
        drop(g);
        assert_eq!(ks.db_info(0).expires, 2);
    }

    #[test]
    fn move_between_databases() {
        let ks = ks();
        let mut src = ks.lock_one(0, b"k").expect("db 0");
        src.set(b"k", Value::string("v"), SetExpiry::Persist)
            .expect("set");
        let mut dst = ks.lock_one(3, b"k").expect("db 3");
        let d = src.take(b"k").expect("k");
        dst.put(b"k", d).expect("put");
        drop((src, dst));
        assert_eq!(ks.type_of(0, b"k"), None);
        assert_eq!(ks.type_of(3, b"k"), Some(ValueType::String));
        assert_eq!(ks.dbsize(0), 0);
        assert_eq!(ks.dbsize(3), 1);
    }

    #[test]
    fn expired_keys_cannot_be_taken() {
        let ks = ks();
        let mut g = ks.lock_one(0, b"k").expect("db 0");
        g.set(b"k", Value::string("v"), SetExpiry::At(1))
            .expect("set");
        assert_eq!(g.take(b"k"), None);
        assert_eq!(g.duplicate(b"k"), None);
        drop(g);
        assert_eq!(ks.dbsize(0), 0);
    }
}
