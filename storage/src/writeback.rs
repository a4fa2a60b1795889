//! Writing a hot entry back to the arena: a whole record, or for a large
//! collection changed by a few elements, a delta record.
//!
//! # Why deltas
//!
//! In `persistence pmem` every acknowledged write reaches the arena before
//! the reply. Rewriting a whole collection for each `LPUSH` or `HSET` costs
//! O(n) per write and O(n²) bytes for a collection built element by element:
//! `redis-benchmark -t lpush -n 1000000` onto one list wrote terabytes and
//! filled the arena with dead versions faster than compaction freed them.
//!
//! So a hot collection that already has an arena record (its *base*, the
//! entry's `copy`) is written back as the element operations the command
//! performed (its journal, `crate::types::journal`) in a small delta record
//! that names the base by sequence number and its own position in the chain
//! (see `crate::arena::record`). The chain is folded into a new whole record
//! once its records add up to the value's DRAM size (so the bytes written
//! stay proportional to the bytes changed, amortized: a fold writes the
//! encoded value, a quarter to a third of its DRAM size, for every DRAM size of
//! deltas, as Redis rewrites its AOF once it has doubled), when it
//! reaches [`MAX_CHAIN`] records, when the entry is demoted (a cold key is
//! always one whole record), when compaction empties a segment holding one
//! of its records, and whenever the journal cannot express a change (an
//! encoding conversion, a whole new value).
//!
//! Recovery applies a key's chain to its base (`Keyspace::recover`); the
//! key comes back hot, with the same chain, as if it had never stopped.

use std::sync::atomic::Ordering;

use crate::arena::record::{record_len, DELTA_PREFIX_LEN};
use crate::arena::{Addr, DeltaIn};
use crate::codec;
use crate::keyspace::Keyspace;
use crate::tier::note_ticket;
use crate::tier::slab::{Chain, HotEntry};
use crate::types::journal::Changes;
use crate::{Error, Result};

/// Collections charged fewer DRAM bytes than this are always written whole
/// (a small record costs about what a delta costs).
pub(crate) const DELTA_MIN_VALUE: usize = 4096;
/// Most delta records on one base before the chain is folded. The size
/// rule folds first for any value under about 70 MiB of DRAM; this bounds
/// the chain's address list (8 bytes a record) for bigger ones. (It was
/// 65 536, which folded a list of millions of short elements far more often
/// than the size rule: 46 elements re-encoded per `LPUSH` at 3 million.)
pub(crate) const MAX_CHAIN: usize = 1 << 20;

impl Keyspace {
    /// Whether writes of hot collections are journaled for deltas: there is
    /// a hot tier to keep chains in, and every write goes to the arena.
    pub(crate) fn deltas_enabled(&self) -> bool {
        self.tiers.write_through() && self.tiers.has_hot_tier()
    }

    /// Writes a dirty hot entry to the arena: a delta on its current record
    /// when `may_delta` and worthwhile, else a whole record (the old record
    /// and its chain are then released). On error the entry is unchanged
    /// but its journal overflows, so the next write is whole.
    pub(crate) fn write_back(
        &self,
        lane: usize,
        db: usize,
        e: &mut HotEntry,
        may_delta: bool,
    ) -> Result<()> {
        let changes = e.value.journal_mut().map(|j| j.take());
        if let (true, Some(base), Some(Changes::Ops(ops))) = (may_delta, e.copy, &changes) {
            match self.write_delta(lane, db, e, base, ops) {
                Ok(true) => {
                    if let (Some(Changes::Ops(ops)), Some(j)) = (changes, e.value.journal_mut()) {
                        j.recycle(ops);
                    }
                    return Ok(());
                }
                Ok(false) => {}
                Err(err) => {
                    if let Some(j) = e.value.journal_mut() {
                        j.overflow();
                    }
                    return Err(err);
                }
            }
        }
        match self.write_whole(lane, db, e) {
            Ok(()) => {
                e.dirty = false;
                if let Some(j) = e.value.journal_mut() {
                    if may_delta && self.deltas_enabled() {
                        j.start();
                    } else {
                        j.stop();
                    }
                }
                Ok(())
            }
            Err(err) => {
                if let Some(j) = e.value.journal_mut() {
                    j.overflow();
                }
                Err(err)
            }
        }
    }

    /// Appends `ops` as the next delta on `base` if that is worthwhile;
    /// `Ok(false)` when a whole record should be written instead.
    fn write_delta(
        &self,
        lane: usize,
        db: usize,
        e: &mut HotEntry,
        base: Addr,
        ops: &[u8],
    ) -> Result<bool> {
        let arena = self.tiers.arena.as_ref().ok_or(Error::OutOfMemory)?;
        let len = record_len(e.key.len() as u64, (DELTA_PREFIX_LEN + ops.len()) as u64);
        let (chained, chain_bytes) = e
            .chain
            .as_ref()
            .map_or((0, 0), |c| (c.deltas.len(), c.bytes));
        if e.charged < DELTA_MIN_VALUE
            || chained >= MAX_CHAIN
            // Folding at a quarter of the DRAM size (as before) wrote every
            // delta byte about twice more in folds: 9% of HSET's CPU on a
            // 100k-field hash went to encoding whole records.
            || chain_bytes + len > e.charged as u64
        {
            return Ok(false);
        }
        let (base_seq, last_expire) = match &e.chain {
            Some(c) => (c.base_seq, c.expire_at),
            None => {
                let h = arena.read_head(base)?;
                (h.seq(), h.expire_at())
            }
        };
        if ops.is_empty() && last_expire == e.expire_at {
            // Nothing changed since the last record (a command that looked
            // at the value mutably but left it as it was).
            e.dirty = false;
            return Ok(true);
        }
        let (addr, ticket) = arena.append_delta(
            lane,
            DeltaIn {
                db: db as u8,
                kind: codec::kind_of(&e.value),
                key: &e.key,
                base_seq,
                pos: chained as u32 + 1,
                changes: ops,
                expire_at: e.expire_at,
            },
        )?;
        note_ticket(ticket);
        let stats = &self.tiers.stats;
        stats.arena_writes.fetch_add(1, Ordering::Relaxed);
        stats.delta_writes.fetch_add(1, Ordering::Relaxed);
        let chain = e.chain.get_or_insert_with(|| {
            Box::new(Chain {
                base_seq,
                ..Chain::default()
            })
        });
        chain.deltas.push(addr);
        chain.bytes += len;
        chain.expire_at = e.expire_at;
        e.dirty = false;
        Ok(true)
    }

    /// Writes the entry's value as a new whole record, then releases its
    /// chain and its previous record. Besides write-back, it folds a clean
    /// entry's chain (compaction, when it finds one of the chain's records
    /// in a segment it empties: moving records one by one would mean a search
    /// of the chain per record; and the index checkpoint). The journal is not
    /// touched. On error nothing changes.
    pub(crate) fn write_whole(&self, lane: usize, db: usize, e: &mut HotEntry) -> Result<()> {
        let addr = self.write_record(lane, db, e)?;
        self.release_chain(e);
        if let Some(old) = e.copy.replace(addr) {
            self.release_record(old);
        }
        Ok(())
    }

    /// Releases the delta records of an entry (its base is the caller's).
    pub(crate) fn release_chain(&self, e: &mut HotEntry) {
        if let Some(c) = e.chain.take() {
            for a in c.deltas {
                self.release_record(a);
            }
        }
    }
}

impl Keyspace {
    /// After recovery: brings back hot each key whose newest record has
    /// delta records, by applying them in order (the key then continues
    /// its chain). A chain that does not apply cleanly (a corrupt change)
    /// keeps what applied, and a key whose chain cannot be kept (it broke,
    /// or there is no hot tier) is folded into one whole record at once.
    /// Returns how many keys were restored.
    pub(crate) fn restore_chains(&self, chains: Vec<(Addr, Vec<Addr>)>) -> usize {
        let mut restored = 0;
        for (base, deltas) in chains {
            match self.restore_chain(base, deltas) {
                Ok(()) => restored += 1,
                Err(err) => {
                    tracing::error!(%base, error = %err, "could not apply a key's delta records; its last whole record stands");
                }
            }
        }
        restored
    }

    fn restore_chain(&self, base: Addr, deltas: Vec<Addr>) -> Result<()> {
        let arena = self.tiers.arena.as_ref().ok_or(Error::OutOfMemory)?;
        let (db, key, mut value, mut expire_at, base_seq) = {
            let r = arena.read(base)?;
            let v = codec::decode(r.kind(), r.value)
                .ok_or_else(|| Error::Corrupt(format!("record at {base} does not decode")))?;
            (
                r.db() as usize,
                Box::<[u8]>::from(r.key),
                v,
                r.expire_at(),
                r.seq(),
            )
        };
        let base_expire = expire_at;
        let mut bytes = 0;
        let mut broken = false;
        for &d in &deltas {
            let applied = arena.read(d).ok().and_then(|r| {
                let (_, _, ops) = crate::arena::record::parse_delta(r.value)?;
                crate::types::journal::apply(&mut value, ops)?;
                Some((r.expire_at(), r.len()))
            });
            match applied {
                Some((t, len)) => {
                    expire_at = t;
                    bytes += len;
                }
                None => {
                    tracing::error!(%d, "a delta record does not apply; folding the key");
                    broken = true;
                    break;
                }
            }
        }
        let full = self.hash(&key);
        let short = crate::tier::handle::short_hash(full);
        let shard_i = self.shard_of(full);
        let m = self
            .dbs
            .get(db)
            .and_then(|d| d.shards.get(shard_i))
            .ok_or_else(|| Error::Corrupt(format!("record at {base} names db {db}")))?;
        let mut s = m.lock();
        let kh = crate::shard::KeyHash { short };
        let Some(h) = s.find(kh, &key, Some(arena)) else {
            return Err(Error::Corrupt(format!(
                "recovered key of {base} not indexed"
            )));
        };
        if h.target() != crate::tier::handle::Target::Cold(base) {
            return Err(Error::Corrupt(format!(
                "recovered key of {base} indexed elsewhere"
            )));
        }
        if expire_at != base_expire {
            if base_expire != 0 {
                s.expiry.remove(base_expire, short as u64);
            }
            if expire_at != 0 {
                s.expiry.insert(expire_at, short as u64);
            }
        }
        let journal = self.deltas_enabled() && !broken;
        if let Some(j) = value.journal_mut() {
            if journal {
                j.start();
            }
        }
        let clock = self.clock_secs();
        let mut e = HotEntry::new(key, value, expire_at, clock, short, Some(base), broken);
        e.chain = Some(Box::new(Chain {
            base_seq,
            deltas,
            bytes,
            expire_at,
        }));
        let slot = self.install_hot(&mut s, h, e);
        // Past the DRAM limit (many chained keys, a small budget), fold now
        // rather than wait for the demoter.
        if !journal || self.tiers.past_hard_limit() {
            let lane = db * self.shards_per_db() + shard_i;
            if !self.demote_slot(&mut s, lane, db, slot) {
                tracing::warn!(%base, "could not fold a recovered chain; the key stays in DRAM");
            }
        }
        Ok(())
    }
}
