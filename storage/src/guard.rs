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

    /// The one place every modification of a key passes through. The tiered
    /// engine persists here; WATCH and keyspace notifications hook in here.
    fn modified(&mut self, _key: &[u8]) {}
}
