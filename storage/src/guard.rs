//! [`Guard`]: the locked view of a few keys through which commands read and write.
//!
//! Every read and write of a command goes through a guard, which is what hides
//! the tiers from commands:
//! * a read of a cold key decodes the arena record (one checksum check, one
//!   copy); a cold key read twice in a short while is promoted to DRAM;
//! * `get_mut` and TTL changes promote a cold key first;
//! * every modified entry is recorded, and when the guard is dropped (the end
//!   of the command) it is written through to the arena in `persistence pmem`
//!   mode (or always, with no hot tier), its DRAM charge is updated, and if
//!   DRAM passed budget + 10% the writer demotes entries of its own shards
//!   inline (backpressure instead of running out of memory);
//! * every change is reported to the server's [`crate::KeyObserver`] (see
//!   [`crate::observer`]): key modifications only while some client
//!   `WATCH`es (one relaxed atomic load otherwise), new keys only while
//!   `notify-keyspace-events` asks for `n`, lazy expiry always.

use std::sync::atomic::Ordering;

use parking_lot::MutexGuard;
use smallvec::SmallVec;

use crate::codec;
use crate::keyspace::{Keyspace, Unlinked};
use crate::shard::{KeyHash, Shard};
use crate::tier::handle::{short_hash, Handle, Target};
use crate::tier::slab::HotEntry;
use crate::value::{Value, ValueType};
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
    touch: bool,
    /// A cold value decoded for a read that did not promote it (boxed: a
    /// guard is returned by value through every `lock`, and an inline
    /// `Value` made it a few hundred bytes to copy each time).
    scratch: Option<Box<Value>>,
    /// Hot entries modified by this command: (position in `locks`, slot,
    /// whether the entry was clean before this command).
    dirty: SmallVec<[(u32, u32, bool); 2]>,
    /// What few commands need (see [`Rare`]); `None` on the hot path.
    rare: Option<Box<Rare>>,
    /// Live keys this command removed (not lazily expired ones): changes
    /// for [`crate::changes`].
    removed: u32,
    /// Some key was found past its deadline and left in place (hidden:
    /// see [`Guard::live`]): a write of a missing key must then look for
    /// the stale entry to replace.
    hidden: bool,
}

/// The parts of a [`Guard`] most commands leave empty, boxed so the guard
/// stays small: it is returned by value through every lock and moved again
/// by its wrappers, and each move of a 176-byte guard was a `memcpy` call
/// (with the keys' boxes inline, 5% of a pipelined `LPUSH`'s CPU went to
/// `memmove`).
#[derive(Default)]
struct Rare {
    /// Keys taken with [`Guard::get_mut`] while modifications are watched:
    /// reported when the guard drops, unless the command declared them
    /// [`Guard::unchanged`] (only while somebody watches).
    touched: Vec<Box<[u8]>>,
    /// Arena records of keys this command removed, dropped after its writes
    /// (see [`Keyspace::unlink_handle`]), with the key.
    unlinked: Vec<(Box<[u8]>, Unlinked)>,
}

/// Where a read is served from (see `Guard::place`).
enum Place {
    /// A hot slot (the key was hot, or was just promoted).
    Hot(u32),
    /// An arena record.
    Cold(crate::arena::Addr),
}

/// Where a live key was found.
#[derive(Clone, Copy)]
struct Found {
    pos: usize,
    kh: KeyHash,
    handle: Handle,
    /// The key's deadline when it was found (0 = none), read with its key.
    deadline: u64,
}

impl<'a> Guard<'a> {
    pub(crate) fn new(
        ks: &'a Keyspace,
        db: usize,
        mut locks: SmallVec<[(usize, MutexGuard<'a, Shard>); 2]>,
        now: u64,
    ) -> Self {
        // A running snapshot captures these shards before this command
        // changes them (one relaxed load when none runs).
        if ks.snapshot_running() {
            for (i, s) in locks.iter_mut() {
                ks.before_change(db, *i, s);
            }
        }
        Guard {
            ks,
            db,
            locks,
            now,
            touch: true,
            scratch: None,
            dirty: SmallVec::new(),
            rare: None,
            removed: 0,
            hidden: false,
        }
    }

    /// The rare parts, allocated on first use.
    fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// Forgets `key` among the keys to report as modified.
    fn untouch(&mut self, key: &[u8]) {
        if let Some(r) = self.rare.as_mut() {
            r.touched.retain(|k| &**k != key);
        }
    }

    /// The database this guard works in.
    pub fn db(&self) -> usize {
        self.db
    }

    /// The LRU clock of this command's time (derived, not stored: the
    /// guard is kept small, see [`Rare`]).
    fn clock(&self) -> u32 {
        self.ks.clock_at(self.now)
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

    /// Hints the cache lines of `keys` in the shards this guard holds (see
    /// `crate::prefetch`); keys of other shards are skipped.
    pub(crate) fn prefetch(&self, keys: &[&[u8]]) {
        crate::prefetch::hint_keys(self.ks, keys.iter().copied(), |n| {
            self.locks.iter().find(|(i, _)| *i == n).map(|(_, s)| &**s)
        });
    }

    /// Position in `locks` of the shard of `key`, and the key's hashes. A key
    /// whose shard is not locked is a bug in the caller; it is reported as
    /// absent rather than crashing the server.
    fn locate(&self, key: &[u8]) -> Option<(usize, KeyHash)> {
        let full = self.ks.hash(key);
        let want = self.ks.shard_of(full);
        let pos = self.locks.iter().position(|(i, _)| *i == want);
        debug_assert!(pos.is_some(), "key's shard was not locked by this guard");
        Some((
            pos?,
            KeyHash {
                short: short_hash(full),
            },
        ))
    }

    fn shard(&mut self, pos: usize) -> Option<&mut Shard> {
        self.locks.get_mut(pos).map(|(_, s)| &mut **s)
    }

    fn lane(&self, pos: usize) -> usize {
        let shard = self.locks.get(pos).map_or(0, |(i, _)| *i);
        self.db * self.ks.shards_per_db() + shard
    }

    /// Finds `key`, expiring it lazily if its deadline has passed (as
    /// the thread's [`crate::lazy_expiry`] policy says: on a replica it is
    /// only hidden, or, for the master's stream, still live; on a master
    /// the observer may still have it hidden, see
    /// [`crate::KeyObserver::expire_lazily`]).
    fn live(&mut self, key: &[u8]) -> Option<Found> {
        let (pos, kh) = self.locate(key)?;
        let arena = self.ks.tiers.arena.as_ref();
        let now = self.now;
        let shard = self.shard(pos)?;
        let (handle, deadline) = shard.find_with_deadline(kh, key, arena)?;
        let found = Found {
            pos,
            kh,
            handle,
            deadline,
        };
        if deadline == 0 || deadline > now {
            return Some(found);
        }
        match crate::lazy_expiry::current() {
            crate::lazy_expiry::Policy::Delete => {}
            crate::lazy_expiry::Policy::Hide => {
                self.hidden = true;
                return None;
            }
            crate::lazy_expiry::Policy::Keep => return Some(found),
        }
        let (ks, db) = (self.ks, self.db);
        let mut expire = || {
            self.delete(key, found, false);
            ks.stats.expired_keys.fetch_add(1, Ordering::Relaxed);
            if let Some(o) = ks.observers.get() {
                o.expired(db, key);
            }
        };
        let expired = match ks.observers.get() {
            Some(o) => o.expire_lazily(db, key, &mut expire),
            None => {
                expire();
                true
            }
        };
        if !expired {
            self.hidden = true;
        }
        None
    }

    /// Removes a found key from the index, its tier and the arena; returns
    /// its value (if it could be read), deadline and access time.
    /// A cold value is decoded only when `want_value` (DEL, expiry and
    /// overwrites read just the record's head).
    fn delete(
        &mut self,
        key: &[u8],
        f: Found,
        want_value: bool,
    ) -> Option<(Option<Value>, u64, u32)> {
        let lane = self.lane(f.pos);
        let ks = self.ks;
        let cold = match f.handle.target() {
            Target::Cold(addr) => {
                let arena = ks.tiers.arena.as_ref()?;
                Some(if want_value {
                    arena.read(addr).ok().map_or((None, 0), |r| {
                        (codec::decode(r.kind(), r.value), r.expire_at())
                    })
                } else {
                    (
                        None,
                        arena.read_head(addr).ok().map_or(0, |r| r.expire_at()),
                    )
                })
            }
            Target::Hot(_) => None,
        };
        let shard = self.shard(f.pos)?;
        let (hot, records) = ks.unlink_handle(shard, lane, f.handle);
        self.rare().unlinked.push((key.into(), records));
        match (hot, cold) {
            (Some(e), _) => Some((Some(e.value), e.expire_at, e.access)),
            (None, Some((value, deadline))) => Some((value, deadline, 0)),
            (None, None) => None,
        }
    }

    /// Moves a cold key into the hot slab; returns its slot.
    fn promote(&mut self, f: Found) -> Option<u32> {
        let Target::Cold(addr) = f.handle.target() else {
            return match f.handle.target() {
                Target::Hot(slot) => Some(slot),
                Target::Cold(_) => None,
            };
        };
        let arena = self.ks.tiers.arena.as_ref()?;
        let (key, value, expire_at) = {
            let r = arena.read(addr).ok()?;
            let Some(v) = codec::decode(r.kind(), r.value) else {
                tracing::error!(%addr, kind = r.kind(), "arena record of unknown kind");
                return None;
            };
            (Box::<[u8]>::from(r.key), v, r.expire_at())
        };
        let clock = self.clock();
        let ks = self.ks;
        let mut e = HotEntry::new(key, value, expire_at, clock, f.kh.short, Some(addr), false);
        if ks.deltas_enabled() {
            // The arena record is the base later writes are deltas on.
            if let Some(j) = e.value.journal_mut() {
                j.start();
            }
        }
        let slot = ks.install_hot(self.shard(f.pos)?, f.handle, e);
        ks.tiers.stats.promotions.fetch_add(1, Ordering::Relaxed);
        Some(slot)
    }

    /// Moves a cold key into the hot slab without reading its value, for a
    /// write that replaces the value whole (`SET` over a cold key): only the
    /// record's head (key and deadline) is read. The entry's value is an
    /// empty string until the caller stores the new one.
    fn adopt_cold(&mut self, f: Found, addr: crate::arena::Addr) -> Option<u32> {
        let arena = self.ks.tiers.arena.as_ref()?;
        let (key, expire_at) = {
            let h = arena.read_head(addr).ok()?;
            (Box::<[u8]>::from(h.key), h.expire_at())
        };
        let clock = self.clock();
        let ks = self.ks;
        let placeholder = Value::Str(crate::value::StrValue::default());
        let e = HotEntry::new(
            key,
            placeholder,
            expire_at,
            clock,
            f.kh.short,
            Some(addr),
            true,
        );
        Some(ks.install_hot(self.shard(f.pos)?, f.handle, e))
    }

    fn hot_entry(&mut self, pos: usize, slot: u32) -> Option<&mut HotEntry> {
        self.shard(pos)?.hot.get_mut(slot)
    }

    /// Where a read of a found key is served from: its hot entry (touched
    /// when `touch`), a promotion (a cold key read twice, when
    /// `may_promote`), or the arena.
    fn place(&mut self, f: Found, touch: bool, may_promote: bool) -> Option<Place> {
        match f.handle.target() {
            Target::Hot(slot) => {
                if touch {
                    let clock = self.clock();
                    let e = self.hot_entry(f.pos, slot)?;
                    e.access = clock;
                    e.freq = crate::tier::lfu_bump(e.freq);
                }
                Some(Place::Hot(slot))
            }
            Target::Cold(addr) => {
                let promote = may_promote
                    && self.ks.tiers.has_hot_tier()
                    && self.shard(f.pos)?.read_twice(f.kh.short);
                if promote {
                    self.promote(f).map(Place::Hot)
                } else {
                    Some(Place::Cold(addr))
                }
            }
        }
    }

    fn read(&mut self, key: &[u8], touch: bool, may_promote: bool) -> Option<&Value> {
        let f = self.live(key)?;
        match self.place(f, touch, may_promote)? {
            Place::Hot(slot) => self.hot_entry(f.pos, slot).map(|e| &e.value),
            Place::Cold(addr) => {
                let arena = self.ks.tiers.arena.as_ref()?;
                let r = arena.read(addr).ok()?;
                self.scratch = codec::decode(r.kind(), r.value).map(Box::new);
                self.scratch.as_deref()
            }
        }
    }

    /// Reads the string at `key` as [`Guard::get`] does, but borrows a cold
    /// string where it lies in the arena instead of decoding a copy (a GET
    /// of a cold key copies its bytes once, into the reply).
    /// `Some(Err(t))`: the key holds a value of type `t`.
    pub fn get_str(&mut self, key: &[u8]) -> Option<std::result::Result<&[u8], ValueType>> {
        let touch = self.touch;
        let f = self.live(key)?;
        match self.place(f, touch, touch)? {
            Place::Hot(slot) => match &self.hot_entry(f.pos, slot)?.value {
                Value::Str(s) => Some(Ok(&s.bytes)),
                v => Some(Err(v.value_type())),
            },
            Place::Cold(addr) => {
                let r = self.ks.tiers.arena.as_ref()?.read(addr).ok()?;
                match codec::type_of(r.kind())? {
                    ValueType::String => Some(Ok(r.value)),
                    t => Some(Err(t)),
                }
            }
        }
    }

    /// Reads `key`, updating its access time.
    pub fn get(&mut self, key: &[u8]) -> Option<&Value> {
        let touch = self.touch;
        self.read(key, touch, touch)
    }

    /// Reads `key` without updating its access time (`TYPE`, `OBJECT`, ...).
    pub fn peek(&mut self, key: &[u8]) -> Option<&Value> {
        self.read(key, false, false)
    }

    /// Does `key` exist (and is it unexpired)?
    pub fn exists(&mut self, key: &[u8]) -> bool {
        self.live(key).is_some()
    }

    /// Whether `key` is in DRAM (`Some(true)`), only in the arena
    /// (`Some(false)`), or absent (`OBJECT TIER`).
    pub fn is_hot(&mut self, key: &[u8]) -> Option<bool> {
        self.live(key)
            .map(|f| matches!(f.handle.target(), Target::Hot(_)))
    }

    /// Marks a hot slot as modified by this command.
    fn mark_dirty(&mut self, pos: usize, slot: u32) {
        let arena = self.ks.tiers.arena.as_ref();
        let mut was_clean = false;
        if let Some(e) = self.hot_entry(pos, slot) {
            if !e.dirty && e.chain.is_none() {
                // Its write-back will release this record: see
                // `persist::warm` (a collection with a chain writes a delta
                // and releases nothing).
                if let (Some(a), Some(arena)) = (e.copy, arena) {
                    arena.warm_head(a);
                }
            }
            was_clean = !e.dirty;
            e.dirty = true;
        }
        // A guard holds a handful of shards: a position fits in a u32.
        let pos = pos as u32;
        if !self.dirty.iter().any(|d| (d.0, d.1) == (pos, slot)) {
            self.dirty.push((pos, slot, was_clean));
        }
    }

    /// Mutable access to the value of `key`. The caller is about to modify it;
    /// if it empties a collection it must [`Guard::remove`] the key.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Value> {
        let f = self.live(key)?;
        let slot = self.promote(f)?;
        self.mark_dirty(f.pos, slot);
        if self.ks.observers.watching() {
            self.rare().touched.push(key.into());
        }
        let clock = self.clock();
        let e = self.hot_entry(f.pos, slot)?;
        e.access = clock;
        Some(&mut e.value)
    }

    /// Declares that the command left `key` as it found it, although it
    /// took it with [`Guard::get_mut`]: an `SADD` of members already there,
    /// a `ZADD NX` of existing members, an `HDEL` of absent fields. As in
    /// Redis, which signals a key only when a command changed it, its
    /// watchers are not told (their `EXEC` still runs), and the value is
    /// not written back to the arena (unless it was already waiting for a
    /// write before this command). The caller must not have changed the
    /// value in any way through this guard.
    pub fn unchanged(&mut self, key: &[u8]) {
        self.untouch(key);
        let Some(f) = self.live(key) else {
            return;
        };
        let Target::Hot(slot) = f.handle.target() else {
            return;
        };
        let pos = f.pos as u32;
        let Some(d) = self.dirty.iter_mut().find(|d| (d.0, d.1) == (pos, slot)) else {
            return;
        };
        if d.2 {
            if let Some(e) = self.hot_entry(f.pos, slot) {
                e.dirty = false;
            }
        }
    }

    /// Declares that the command changed `key` (taken with
    /// [`Guard::get_mut`]) in a way Redis does not signal to `WATCH`
    /// (consumer-group bookkeeping, `XSETID`): the value is written back as
    /// usual, but its watchers are not told (their `EXEC` still runs).
    pub fn unsignaled(&mut self, key: &[u8]) {
        self.untouch(key);
    }

    /// Stores `value` under `key`.
    pub fn set(&mut self, key: &[u8], value: Value, expiry: SetExpiry) -> Result<()> {
        let clock = self.clock();
        let (pos, slot) = match self.live(key) {
            Some(f) => {
                let slot = match f.handle.target() {
                    Target::Hot(slot) => slot,
                    // The old value is not needed (not even read): a hot
                    // entry takes the key's place and keeps its arena copy
                    // until the new version is written.
                    Target::Cold(addr) => match self.adopt_cold(f, addr) {
                        Some(s) => s,
                        None => return Ok(()),
                    },
                };
                let shard = self.shard(f.pos).ok_or(crate::Error::OutOfMemory)?;
                let Some(e) = shard.hot.get_mut(slot) else {
                    return Ok(());
                };
                let old_deadline = e.expire_at;
                let deadline = match expiry {
                    SetExpiry::Keep => old_deadline,
                    SetExpiry::Persist => 0,
                    SetExpiry::At(t) => t,
                };
                e.value = value;
                e.access = clock;
                e.expire_at = deadline;
                if old_deadline != deadline {
                    if old_deadline != 0 {
                        shard.expiry.remove(old_deadline, f.kh.short as u64);
                    }
                    if deadline != 0 {
                        shard.expiry.insert(deadline, f.kh.short as u64);
                    }
                }
                (f.pos, slot)
            }
            None => {
                // A key hidden past its deadline (a replica's client, or
                // an expiry the observer put off) is still in place: the
                // new value replaces it.
                if self.hidden {
                    if let Some(f) = self.find_any(key) {
                        self.delete(key, f, false);
                    }
                }
                let Some((pos, kh)) = self.locate(key) else {
                    return Ok(());
                };
                let expire_at = match expiry {
                    SetExpiry::At(t) => t,
                    _ => 0,
                };
                let e = HotEntry::new(key.into(), value, expire_at, clock, kh.short, None, true);
                let stats = &self.ks.tiers.stats;
                let shard = self.shard(pos).ok_or(crate::Error::OutOfMemory)?;
                let slot = shard.hot.insert(e);
                shard.index_new(Handle::hot(slot, kh.short));
                if expire_at != 0 {
                    shard.expiry.insert(expire_at, kh.short as u64);
                }
                stats.hot_keys.fetch_add(1, Ordering::Relaxed);
                self.ks.observers.created(self.db, key);
                (pos, slot)
            }
        };
        self.mark_dirty(pos, slot);
        self.ks.observers.modified(self.db, key, true);
        if matches!(expiry, SetExpiry::At(_)) {
            self.ks.observers.deadline_set(self.db, key);
        }
        Ok(())
    }

    /// Removes `key`, returning its value if it was live.
    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        let f = self.live(key)?;
        let removed = self.delete(key, f, true);
        self.removed += 1;
        self.ks.observers.modified(self.db, key, false);
        removed?.0
    }

    /// Removes `key` if it is live, without reading a cold value (`DEL`).
    pub fn delete_key(&mut self, key: &[u8]) -> bool {
        match self.live(key) {
            Some(f) => {
                let removed = self.delete(key, f, false).is_some();
                self.removed += 1;
                self.ks.observers.modified(self.db, key, false);
                removed
            }
            None => false,
        }
    }

    /// Removes `key` if it is live, as [`Guard::delete_key`], and hands back
    /// its value when it was in DRAM (`UNLINK`: the caller may free a big
    /// one elsewhere); a cold value is only unlinked from the arena.
    /// `None` when the key was not there.
    pub fn unlink_key(&mut self, key: &[u8]) -> Option<Option<Value>> {
        let f = self.live(key)?;
        let removed = self.delete(key, f, false);
        self.removed += 1;
        self.ks.observers.modified(self.db, key, false);
        removed.map(|(value, _, _)| value)
    }

    /// Removes `key` and returns its value with its deadline, ready to be
    /// [`Guard::put`] elsewhere (`RENAME`, `MOVE`). `None` if the key is absent
    /// or expired.
    pub fn take(&mut self, key: &[u8]) -> Option<Detached> {
        let f = self.live(key)?;
        let removed = self.delete(key, f, true);
        self.removed += 1;
        self.ks.observers.modified(self.db, key, false);
        let (value, deadline, access) = removed?;
        Some(Detached {
            value: value?,
            expire_at: (deadline != 0).then_some(deadline),
            access,
        })
    }

    /// A copy of the value of `key` with its deadline (`COPY`), without
    /// changing the key. Counts as an access (the copy is a fresh object
    /// whose access time is now, as Redis's duplicated object).
    pub fn duplicate(&mut self, key: &[u8]) -> Option<Detached> {
        let clock = self.clock();
        let value = self.get(key)?.clone();
        let deadline = self.expire_at(key)?;
        Some(Detached {
            value,
            expire_at: deadline,
            access: clock,
        })
    }

    /// Stores a detached value under `key` with its deadline, replacing
    /// whatever `key` held (live or expired). The access time becomes now
    /// unless the guard does not touch keys, in which case the detached
    /// entry's own access time is kept.
    pub fn put(&mut self, key: &[u8], d: Detached) -> Result<()> {
        let (touch, access) = (self.touch, d.access);
        // Any previous entry goes, whether or not its deadline has passed.
        if let Some(f) = self.find_any(key) {
            self.delete(key, f, false);
        }
        let expiry = match d.expire_at {
            Some(t) => SetExpiry::At(t),
            None => SetExpiry::Persist,
        };
        self.set(key, d.value, expiry)?;
        if !touch {
            if let Some(f) = self.find_any(key) {
                if let Target::Hot(slot) = f.handle.target() {
                    if let Some(e) = self.hot_entry(f.pos, slot) {
                        e.access = access;
                    }
                }
            }
        }
        Ok(())
    }

    /// Finds `key` whether or not its deadline has passed.
    fn find_any(&mut self, key: &[u8]) -> Option<Found> {
        let (pos, kh) = self.locate(key)?;
        let arena = self.ks.tiers.arena.as_ref();
        let (handle, deadline) = self.shard(pos)?.find_with_deadline(kh, key, arena)?;
        Some(Found {
            pos,
            kh,
            handle,
            deadline,
        })
    }

    /// Whether `key` is present at all (`None` if not) and whether its
    /// deadline has passed, without expiring it ([`Keyspace::presence`]).
    pub fn presence(&mut self, key: &[u8]) -> Option<bool> {
        let now = self.now;
        let d = self.find_any(key)?.deadline;
        Some(d != 0 && d <= now)
    }

    /// The deadline of `key`: `None` if the key is absent, `Some(None)` if it
    /// has no TTL.
    pub fn expire_at(&mut self, key: &[u8]) -> Option<Option<u64>> {
        let d = self.live(key)?.deadline;
        Some((d != 0).then_some(d))
    }

    /// Sets (or with `None` clears) the deadline of `key`. Returns false if the
    /// key is absent.
    pub fn set_expire_at(&mut self, key: &[u8], deadline: Option<u64>) -> bool {
        let Some(f) = self.live(key) else {
            return false;
        };
        let Some(slot) = self.promote(f) else {
            return false;
        };
        let deadline = deadline.unwrap_or(0);
        let Some(shard) = self.shard(f.pos) else {
            return false;
        };
        let Some(e) = shard.hot.get_mut(slot) else {
            return false;
        };
        let old = std::mem::replace(&mut e.expire_at, deadline);
        if old != deadline {
            if old != 0 {
                shard.expiry.remove(old, f.kh.short as u64);
            }
            if deadline != 0 {
                shard.expiry.insert(deadline, f.kh.short as u64);
            }
        }
        self.mark_dirty(f.pos, slot);
        self.ks.observers.modified(self.db, key, true);
        if deadline != 0 {
            self.ks.observers.deadline_set(self.db, key);
        }
        true
    }

    /// Seconds since `key` was last accessed (`OBJECT IDLETIME`). Cold keys
    /// keep no access time in DRAM; they report the time since start-up
    /// clock 0, i.e. "idle since they were demoted or recovered" is unknown
    /// and shown as 0.
    pub fn idle_secs(&mut self, key: &[u8]) -> Option<u32> {
        let f = self.live(key)?;
        let clock = self.clock();
        match f.handle.target() {
            Target::Hot(slot) => self
                .hot_entry(f.pos, slot)
                .map(|e| clock.saturating_sub(e.access)),
            Target::Cold(_) => Some(0),
        }
    }

    /// Makes `key` look idle for `secs` seconds (`RESTORE ... IDLETIME`):
    /// its access time goes back that far, at most to the clock's origin
    /// (uptime plus [`crate::keyspace::LRU_CLOCK_SPAN`] seconds ago, which
    /// covers Redis's 24-bit LRU range). Cold keys keep no access time.
    pub fn set_idle_secs(&mut self, key: &[u8], secs: u64) -> bool {
        let Some(f) = self.live(key) else {
            return false;
        };
        let clock = self.clock();
        if let Target::Hot(slot) = f.handle.target() {
            if let Some(e) = self.hot_entry(f.pos, slot) {
                e.access = clock.saturating_sub(u32::try_from(secs).unwrap_or(u32::MAX));
                return true;
            }
        }
        false
    }

    /// The LFU counter of `key` and the seconds since its last access (the
    /// counter's decay is counted from it, as Redis's `LFUDecrAndReturn`
    /// counts from its last decrement, which every access sets). A cold key
    /// keeps no counter: it reports Redis's initial one, 5, idle 0.
    pub fn lfu(&mut self, key: &[u8]) -> Option<(u8, u32)> {
        let f = self.live(key)?;
        let clock = self.clock();
        match f.handle.target() {
            Target::Hot(slot) => self
                .hot_entry(f.pos, slot)
                .map(|e| (e.freq, clock.saturating_sub(e.access))),
            Target::Cold(_) => Some((5, 0)),
        }
    }

    /// Sets the LFU counter of `key` (`RESTORE ... FREQ`), counting its decay
    /// from now. Returns false if the key is absent or cold (cold keys keep
    /// no counter).
    pub fn set_lfu(&mut self, key: &[u8], counter: u8) -> bool {
        let Some(f) = self.live(key) else {
            return false;
        };
        let clock = self.clock();
        if let Target::Hot(slot) = f.handle.target() {
            if let Some(e) = self.hot_entry(f.pos, slot) {
                e.freq = counter;
                e.access = clock;
                return true;
            }
        }
        false
    }

    /// Marks `key` as accessed (`TOUCH`).
    pub fn touch_key(&mut self, key: &[u8]) -> bool {
        let Some(f) = self.live(key) else {
            return false;
        };
        let clock = self.clock();
        if let Target::Hot(slot) = f.handle.target() {
            if let Some(e) = self.hot_entry(f.pos, slot) {
                e.access = clock;
            }
        }
        true
    }

    /// Writes modified entries through, updates DRAM accounting, and demotes
    /// inline when DRAM is past its hard limit. Runs when the guard drops.
    fn flush(&mut self) {
        let tiers = &self.ks.tiers;
        let write_through =
            tiers.write_through() || (tiers.arena.is_some() && !tiers.has_hot_tier());
        let may_delta = self.ks.deltas_enabled();
        let rare = self.rare.take().map(|r| *r).unwrap_or_default();
        for key in rare.touched {
            self.ks.observers.modified(self.db, &key, true);
        }
        let dirty = std::mem::take(&mut self.dirty);
        let mut changed = 0u64;
        for &(pos, slot, _) in &dirty {
            let pos = pos as usize;
            let lane = self.lane(pos);
            let db = self.db;
            let ks = self.ks;
            let Some(shard) = self.shard(pos) else {
                continue;
            };
            let Some(e) = shard.hot.get_mut(slot) else {
                continue;
            };
            let charge = e.footprint();
            ks.tiers
                .stats
                .hot_bytes
                .fetch_add(charge as i64 - e.charged as i64, Ordering::Relaxed);
            e.charged = charge;
            // Not dirty: declared unchanged by its command (see
            // `Guard::unchanged`); its arena copy is still current.
            if e.dirty {
                changed += 1;
                if write_through {
                    match ks.write_back(lane, db, e, may_delta) {
                        Ok(()) => {}
                        Err(err) => {
                            ks.tiers
                                .stats
                                .persist_failures
                                .fetch_add(1, Ordering::Relaxed);
                            crate::tier::note_persist_failure();
                            tracing::error!(error = %err, "could not persist a write; it stays in DRAM");
                        }
                    }
                } else if let Some(old) = e.copy.take() {
                    // The arena copy is stale and demotion will write a new one.
                    ks.release_chain(e);
                    ks.release_record(old);
                    e.dirty = false;
                } else {
                    e.dirty = false;
                }
            }
            if !ks.tiers.has_hot_tier() {
                ks.demote_slot(shard, lane, db, slot);
            }
        }
        crate::changes::add(changed);
        // Only now, after this command's writes: a key removed and written
        // elsewhere (RENAME, MOVE, SMOVE emptying its source...) must have its
        // new record before the old one's tombstone. A key written again under
        // the same name needs no tombstone: its new record is newer.
        for (key, records) in rare.unlinked {
            // Only a key this command wrote can have been written again.
            let recreated = !dirty.is_empty() && self.find_any(&key).is_some();
            self.ks.drop_unlinked(records, !recreated);
        }
        if self.ks.tiers.past_hard_limit() {
            let (ks, db) = (self.ks, self.db);
            for pos in 0..self.locks.len() {
                let lane = self.lane(pos);
                if let Some(shard) = self.shard(pos) {
                    let n = ks.demote_sampled(shard, lane, db, 8);
                    ks.tiers
                        .stats
                        .inline_demotions
                        .fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        }
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        crate::changes::add(u64::from(self.removed));
        if !self.dirty.is_empty() || self.rare.is_some() || self.ks.tiers.past_hard_limit() {
            self.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_guard_is_small_to_move() {
        // Returned by value from every lock: keep it a few cache lines (it
        // was 360 bytes with the scratch value inline, 176 with the rare
        // parts inline; 120 now, so that moves are inline copies).
        assert!(
            std::mem::size_of::<super::Guard<'_>>() <= 120,
            "{}",
            std::mem::size_of::<super::Guard<'_>>()
        );
    }

    use super::*;
    use crate::keyspace::KeyspaceConfig;
    use crate::ValueType;

    fn ks() -> Keyspace {
        Keyspace::new(KeyspaceConfig {
            shards_per_db: 4,
            ..Default::default()
        })
    }

    fn string_of(g: &mut Guard<'_>, key: &[u8]) -> Option<Vec<u8>> {
        match g.get(key)? {
            Value::Str(s) => Some(s.bytes.clone()),
            _ => None,
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

    #[test]
    fn a_replica_hides_expired_keys_and_its_master_still_sees_them() {
        use crate::lazy_expiry::{Policy, Scoped};
        let ks = ks();
        let mut g = ks.lock_one(0, b"k").expect("db 0");
        g.set(b"k", Value::string("v"), SetExpiry::At(1))
            .expect("set");
        {
            let _hide = Scoped::new(Policy::Hide);
            assert!(!g.exists(b"k"));
            assert_eq!(g.get(b"k"), None);
        }
        drop(g);
        assert_eq!(ks.dbsize(0), 1, "hidden, not deleted");
        let mut g = ks.lock_one(0, b"k").expect("db 0");
        {
            let _keep = Scoped::new(Policy::Keep);
            assert_eq!(g.get(b"k"), Some(&Value::string("v")));
            assert_eq!(g.expire_at(b"k"), Some(Some(1)));
        }
        {
            // A write of a hidden key replaces it (no second entry).
            let _hide = Scoped::new(Policy::Hide);
            g.set(b"k", Value::string("w"), SetExpiry::Persist)
                .expect("set");
            assert_eq!(g.get(b"k"), Some(&Value::string("w")));
        }
        drop(g);
        assert_eq!(ks.dbsize(0), 1);
        let mut g = ks.lock_one(0, b"k").expect("db 0");
        g.set(b"k", Value::string("v"), SetExpiry::At(1))
            .expect("set");
        assert!(!g.exists(b"k"), "a master deletes it");
        drop(g);
        assert_eq!(ks.dbsize(0), 0);
    }

    /// Refuses lazy expiries while `refuse` is set; counts `expired` reports.
    #[derive(Default)]
    struct Refusing {
        refuse: std::sync::atomic::AtomicBool,
        expired: std::sync::atomic::AtomicUsize,
    }

    impl crate::KeyObserver for Refusing {
        fn modified(&self, _db: usize, _key: &[u8], _exists: bool) {}
        fn created(&self, _db: usize, _key: &[u8]) {}
        fn expired(&self, _db: usize, _key: &[u8]) {
            self.expired.fetch_add(1, Ordering::SeqCst);
        }
        fn evicted(&self, _db: usize, _key: &[u8]) {}
        fn replacing_db(&self, _emptied: usize, _replaced_with: Option<usize>) {}
        fn expire_lazily(&self, _db: usize, _key: &[u8], expire: &mut dyn FnMut()) -> bool {
            if self.refuse.load(Ordering::SeqCst) {
                return false;
            }
            expire();
            true
        }
    }

    #[test]
    fn a_lazy_expiry_the_observer_refuses_hides_the_key_and_a_write_replaces_it() {
        let ks = ks();
        let observer = std::sync::Arc::new(Refusing::default());
        ks.set_observer(observer.clone());
        observer.refuse.store(true, Ordering::SeqCst);
        let mut g = ks.lock_one(0, b"k").expect("db 0");
        g.set(b"k", Value::string("v"), SetExpiry::At(1))
            .expect("set");
        assert!(!g.exists(b"k"));
        assert_eq!(g.get(b"k"), None);
        drop(g);
        assert_eq!(ks.dbsize(0), 1, "hidden, not deleted");
        assert_eq!(observer.expired.load(Ordering::SeqCst), 0, "no DEL to feed");
        assert_eq!(ks.stats.expired_keys.load(Ordering::Relaxed), 0);
        // A write of the hidden key replaces the stale entry: one key.
        let mut g = ks.lock_one(0, b"k").expect("db 0");
        assert_eq!(g.get(b"k"), None);
        g.set(b"k", Value::string("w"), SetExpiry::Persist)
            .expect("set");
        drop(g);
        assert_eq!(ks.dbsize(0), 1);
        assert_eq!(ks.type_of(0, b"k"), Some(ValueType::String));
        // Once the observer allows it, the key is deleted and reported.
        let mut g = ks.lock_one(0, b"k").expect("db 0");
        g.set(b"k", Value::string("v"), SetExpiry::At(1))
            .expect("set");
        drop(g);
        observer.refuse.store(false, Ordering::SeqCst);
        assert_eq!(ks.type_of(0, b"k"), None);
        assert_eq!(ks.dbsize(0), 0);
        assert_eq!(observer.expired.load(Ordering::SeqCst), 1);
    }
}
