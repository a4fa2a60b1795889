//! Cache hints for the keys of a pipelined batch, before it runs.
//!
//! A read of a key that is not in the CPU cache is a chain of dependent
//! misses: the index's control bytes and bucket, then the slab entry or the
//! arena record head, then the value. One command at a time, each miss
//! waits for the one before it, and a batch of sixteen GETs waits for
//! sixteen chains in a row (at 8x the DRAM budget: the index probe, the
//! record head's first touch and the value's were a third of the server's
//! CPU). [`Keyspace::prefetch`] walks the batch's keys first and only
//! issues prefetches, two passes deep, so the misses of all the keys are in
//! flight together; the commands then find their lines in the cache.
//!
//! It changes nothing and answers nothing: a key whose shard is locked by
//! another thread is skipped (`try_lock`), and a wrong guess (a key that is
//! rewritten before its command runs) only wastes a hint.

use std::ops::Deref;

use smallvec::SmallVec;

use crate::keyspace::Keyspace;
use crate::persist::warm::{warm, warm_object};
use crate::shard::Shard;
use crate::tier::handle::{short_hash, table_hash, Handle, Target};
use crate::value::Value;

/// Most keys of one batch hinted: past this many, the first ones' lines
/// risk leaving the L1 cache before their commands run.
pub const PREFETCH_MAX_KEYS: usize = 32;

/// Most bytes of one hot value hinted (a bigger one is read sequentially,
/// which the hardware prefetcher follows on its own).
const WARM_VALUE_MAX: usize = 4096;

/// Where the first pass found a key, for the second pass.
#[derive(Clone, Copy)]
enum Seen {
    /// A hot entry: (index of its shard in the held list, slot).
    Hot(usize, u32),
    /// An arena record: (index of its shard in the held list, the handle
    /// that points at it).
    Cold(usize, Handle),
}

impl Keyspace {
    /// Hints the cache lines that commands on `keys` in database `db` are
    /// about to read (see the module comment). Call it with the keys of a
    /// pipelined batch before running it; at most [`PREFETCH_MAX_KEYS`] are
    /// used. Never blocks on a lock and never changes anything. Returns how
    /// many of the keys the index may hold (a short-hash match: the keys
    /// themselves are not compared), so a caller can stop hinting a stream
    /// of absent keys, where the hints only cost.
    pub fn prefetch<'k>(&self, db: usize, keys: impl IntoIterator<Item = &'k [u8]>) -> usize {
        match self.dbs.get(db) {
            Some(database) => hint_keys(self, keys, |n| {
                database.shards.get(n).and_then(|m| m.try_lock())
            }),
            None => 0,
        }
    }
}

/// The passes of [`Keyspace::prefetch`] over at most [`PREFETCH_MAX_KEYS`]
/// of `keys`; `shard(n)` lends shard `n` of the database, or `None` to skip
/// its keys. A [`crate::Guard`] passes the shards it holds, so a multi-key
/// command hints its own keys. Returns how many keys had at least one
/// candidate in the index.
///
/// Every shard of the batch is taken before the first probe and held until
/// the last hint. Taking a lock is a locked instruction, which waits for
/// the loads before it: locking between two probes made each key's index
/// misses (control bytes, then bucket) wait for the previous key's, so
/// pass 1 paid them one key at a time.
pub(crate) fn hint_keys<'k, S: Deref<Target = Shard>>(
    ks: &Keyspace,
    keys: impl IntoIterator<Item = &'k [u8]>,
    mut shard: impl FnMut(usize) -> Option<S>,
) -> usize {
    let mut found = 0;
    let arena = ks.tiers.arena.as_ref();
    // Pass 0: each key's hash and shard (no memory but the key's bytes),
    // then each distinct shard once.
    let mut wanted: SmallVec<[(u64, usize); PREFETCH_MAX_KEYS]> = SmallVec::new();
    let mut held: SmallVec<[(usize, Option<S>); PREFETCH_MAX_KEYS]> = SmallVec::new();
    for key in keys.into_iter().take(PREFETCH_MAX_KEYS) {
        let full = ks.hash(key);
        let shard_no = ks.shard_of(full);
        let at = match held.iter().position(|(n, _)| *n == shard_no) {
            Some(at) => at,
            None => {
                held.push((shard_no, shard(shard_no)));
                held.len() - 1
            }
        };
        wanted.push((full, at));
    }
    let mut seen: SmallVec<[Seen; PREFETCH_MAX_KEYS]> = SmallVec::new();
    // Pass 1: probe the index; prefetch each candidate's entry or record
    // head without reading it.
    for (full, at) in wanted {
        let Some(shard) = &held[at].1 else {
            continue;
        };
        let before = seen.len();
        probe(shard, short_hash(full), |h| match h.target() {
            Target::Hot(slot) => {
                if let Some(e) = shard.hot.slot_ref(slot) {
                    warm_object(e);
                    seen.push(Seen::Hot(at, slot));
                }
            }
            Target::Cold(addr) => {
                if let Some(a) = arena {
                    a.warm_head(addr);
                    seen.push(Seen::Cold(at, h));
                }
            }
        });
        if seen.len() > before {
            found += 1;
        }
    }
    // Pass 2: the entries and heads are (being) loaded; follow them to the
    // key and value bytes.
    for s in seen {
        match s {
            Seen::Hot(at, slot) => {
                let Some(shard) = &held[at].1 else {
                    continue;
                };
                if let Some(e) = shard.hot.get(slot) {
                    warm(&e.key);
                    if let Value::Str(s) = &e.value {
                        warm(s.bytes.get(..WARM_VALUE_MAX).unwrap_or(&s.bytes));
                    }
                }
            }
            // The record's length is read from its header: only under the
            // shard's lock and while the index still points at it, as any
            // read of a record (the shard has been held since pass 1, so
            // the record cannot have been released in between).
            Seen::Cold(at, handle) => {
                let Some(shard) = &held[at].1 else {
                    continue;
                };
                if let (Some(a), Target::Cold(addr)) = (arena, handle.target()) {
                    if shard.has_handle(handle) {
                        a.warm_record(addr);
                    }
                }
            }
        }
    }
    found
}

/// Calls `hint` with every handle in `shard` whose short hash is `short`
/// (the key itself is not compared: that would read the lines being
/// prefetched).
fn probe(shard: &Shard, short: u32, mut hint: impl FnMut(Handle)) {
    let _ = shard.index.find(table_hash(short), |h| {
        if h.short_hash() == short {
            hint(*h);
        }
        false
    });
}
