//! Point-in-time snapshots that do not stop the keyspace: shard-granular
//! copy on first touch.
//!
//! [`Keyspace::snapshot_begin`] runs under the exclusive gate (so that it
//! is one instant across every shard of every database) and only marks
//! every shard "not yet captured": it bumps the snapshot epoch, which every
//! shard's captured epoch is then behind. From then on, whoever locks a
//! shard first captures it, under that lock, before doing anything else:
//!
//! * the snapshot's own thread, shard by shard
//!   ([`Keyspace::snapshot_capture`]);
//! * a command (every [`crate::Guard`]: writes, lazy expiry, active expiry's
//!   deletions), eviction, a flush, `SWAPDB`.
//!
//! A capture hands the shard's entries, as they are, to the snapshot's
//! [`SnapshotSink`] (the server serializes them to RDB bytes) and records
//! the epoch in the shard's slot, so each shard is captured exactly once
//! and exactly as it was when the snapshot started. Moves between the
//! tiers (demotion, promotion, compaction) do not change what a key reads
//! as, so they need no capture. Cold values are read from the arena
//! without being promoted.
//!
//! While no snapshot runs, the cost on the lock path is one relaxed
//! atomic load ([`SnapshotState::active`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::keyspace::Keyspace;
use crate::shard::Shard;
use crate::tier::handle::Target;
use crate::value::Value;
use crate::{codec, Error, Result};

/// Receives each shard's entries as the shard is captured. Called under the
/// shard's lock, from the snapshot's thread or from any command's thread:
/// keep it short (serialize or copy, then return) and never lock a shard.
pub trait SnapshotSink: Send + Sync {
    /// Shard `shard` of database `db`, exactly as it was when the snapshot
    /// started. Called once per shard of every database.
    fn capture(&self, db: usize, shard: usize, entries: &ShardEntries<'_>);
}

/// What [`ShardEntries::for_each`] calls per key: the key, its value and
/// its deadline (Unix ms).
pub type EntryVisitor<'f> = dyn FnMut(&[u8], &Value, Option<u64>) + 'f;

/// The entries of one locked shard, handed to a [`SnapshotSink`].
pub struct ShardEntries<'a> {
    ks: &'a Keyspace,
    shard: &'a Shard,
}

impl ShardEntries<'_> {
    /// Number of keys (expired ones not yet collected included).
    pub fn len(&self) -> usize {
        self.shard.len()
    }

    /// Whether the shard holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` with every key, its value and its deadline (Unix ms).
    /// Keys whose deadline has passed are included, as Redis's `rdbSave`
    /// writes them (a loader skips them). Cold values are decoded from the
    /// arena without being promoted; a record that cannot be read is
    /// skipped and counted in the return value (0 when all were read).
    pub fn for_each(&self, f: &mut EntryVisitor<'_>) -> usize {
        let mut unreadable = 0;
        let deadline = |at: u64| (at != 0).then_some(at);
        for &h in self.shard.index.iter() {
            match h.target() {
                Target::Hot(slot) => match self.shard.hot.get(slot) {
                    Some(e) => f(&e.key, &e.value, deadline(e.expire_at)),
                    None => unreadable += 1,
                },
                Target::Cold(addr) => {
                    let read = self.ks.tiers.arena.as_ref().and_then(|a| {
                        let r = a.read(addr).ok()?;
                        let v = codec::decode(r.kind(), r.value)?;
                        f(r.key, &v, deadline(r.expire_at()));
                        Some(())
                    });
                    if read.is_none() {
                        unreadable += 1;
                    }
                }
            }
        }
        unreadable
    }
}

/// Sizes of one database when a snapshot started (for `RESIZEDB`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DbCounts {
    /// Keys (expired ones not yet collected included).
    pub keys: u64,
    /// Keys with a deadline.
    pub expires: u64,
}

/// A running snapshot, returned by [`Keyspace::snapshot_begin`]: pass it to
/// [`Keyspace::snapshot_capture`] and end it with
/// [`Keyspace::snapshot_end`].
#[derive(Debug)]
pub struct SnapshotTicket {
    epoch: u64,
    /// Per database, its sizes at the start.
    pub counts: Vec<DbCounts>,
}

/// The keyspace's snapshot state (see the module docs).
pub(crate) struct SnapshotState {
    /// A snapshot runs: the one check on the lock path.
    active: AtomicBool,
    /// The running (or last) snapshot's epoch; a shard whose captured
    /// epoch is behind it is not yet captured.
    epoch: AtomicU64,
    /// Per shard (`db * shards_per_db + shard`), the epoch it was last
    /// captured for. Read and written only under the shard's lock.
    captured: Box<[AtomicU64]>,
    /// Where captured shards go.
    sink: RwLock<Option<Arc<dyn SnapshotSink>>>,
}

impl SnapshotState {
    pub(crate) fn new(shards: usize) -> Self {
        SnapshotState {
            active: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            captured: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            sink: RwLock::new(None),
        }
    }

    /// Whether a snapshot runs (one relaxed load: the lock path's check).
    #[inline]
    pub(crate) fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }
}

impl Keyspace {
    /// Starts a snapshot whose shards go to `sink`. The caller holds the
    /// exclusive gate ([`Keyspace::exclusive`]): the snapshot is the
    /// keyspace at this instant. Takes every shard's lock once in turn
    /// (counting its keys): any locker after that sees the snapshot
    /// running. [`Error::SnapshotRunning`] when a snapshot already runs.
    pub fn snapshot_begin(&self, sink: Arc<dyn SnapshotSink>) -> Result<SnapshotTicket> {
        let st = &self.snapshot;
        {
            let mut slot = st.sink.write();
            if st.active.load(Ordering::Acquire) || slot.is_some() {
                return Err(Error::SnapshotRunning);
            }
            *slot = Some(sink);
        }
        let epoch = st.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        st.active.store(true, Ordering::Release);
        let counts = self
            .dbs
            .iter()
            .map(|d| {
                let mut c = DbCounts::default();
                for m in d.shards.iter() {
                    // Lock and unlock: whoever takes this lock later is
                    // ordered after the flag above and captures first.
                    let s = m.lock();
                    c.keys += s.len() as u64;
                    c.expires += s.expiry.len() as u64;
                }
                c
            })
            .collect();
        Ok(SnapshotTicket { epoch, counts })
    }

    /// Captures shard `shard` of `db` for the running snapshot, unless
    /// somebody already did (the snapshot's thread walks every shard).
    pub fn snapshot_capture(&self, ticket: &SnapshotTicket, db: usize, shard: usize) {
        let Some(m) = self.dbs.get(db).and_then(|d| d.shards.get(shard)) else {
            return;
        };
        if self.snapshot.epoch.load(Ordering::Acquire) != ticket.epoch {
            return;
        }
        let mut s = m.lock();
        self.capture_locked(db, shard, &mut s);
    }

    /// Ends the snapshot: shards not captured by then never will be.
    pub fn snapshot_end(&self, ticket: SnapshotTicket) {
        let st = &self.snapshot;
        let mut slot = st.sink.write();
        if st.epoch.load(Ordering::Acquire) == ticket.epoch {
            st.active.store(false, Ordering::Release);
            *slot = None;
        }
    }

    /// Whether a snapshot runs.
    pub fn snapshot_running(&self) -> bool {
        self.snapshot.active()
    }

    /// The lock path's hook: with shard `shard` of `db` locked (`s`),
    /// captures it first if a running snapshot has not yet.
    #[inline]
    pub(crate) fn before_change(&self, db: usize, shard: usize, s: &mut Shard) {
        if self.snapshot.active() {
            self.capture_locked(db, shard, s);
        }
    }

    #[cold]
    fn capture_locked(&self, db: usize, shard: usize, s: &mut Shard) {
        let st = &self.snapshot;
        let Some(slot) = st.captured.get(db * self.shards_per_db() + shard) else {
            return;
        };
        let epoch = st.epoch.load(Ordering::Acquire);
        // Under the shard's lock: the lock orders these accesses.
        if slot.load(Ordering::Relaxed) >= epoch {
            return;
        }
        slot.store(epoch, Ordering::Relaxed);
        let sink = st.sink.read().clone();
        if let Some(sink) = sink {
            sink.capture(db, shard, &ShardEntries { ks: self, shard: s });
        }
    }
}
