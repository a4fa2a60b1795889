//! Recovery: rebuild the caller's index from the arena after a restart.
//!
//! 1. **Scan** (parallel over segments, `std::thread::scope`): every segment
//!    whose header validated at open is read record by record until the
//!    first invalid one (end of data or a torn write). Each valid record is
//!    hashed by `(db, key)` into one of 64 partitions, each a hash table of
//!    24-byte slots `(address + flags, sequence, hash)` behind its own
//!    mutex; records are batched per partition so a lock is taken once per
//!    few hundred records. On a key collision the higher sequence number
//!    wins; the loser is dead and lowers its segment's `min_dead_seq`.
//! 2. **Report** (parallel over partitions): each surviving slot is either a
//!    tombstone (dropped), expired (dropped; if older versions exist a
//!    tombstone is written for it afterwards, see the compaction module), or
//!    live: its bytes count as live in its segment and the visitor is called
//!    with its address, db, key, kind and deadline.
//! 3. **Resume**: the sequence counter restarts above every sequence number
//!    and generation seen; recovered segments stay sealed (new appends go to
//!    fresh segments with new generations, so bytes after a torn record can
//!    never be mistaken for new records); empty ones return to the free list.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hashbrown::{DefaultHashBuilder, HashTable};
use parking_lot::Mutex;

use super::record::{Header, Invalid, HEADER_LEN};
use super::segment::State;
use super::{Addr, Arena, Inner};
use crate::{Error, Result};

/// One key found by recovery, reported to the visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveredRecord<'a> {
    /// Address of its newest record.
    pub addr: Addr,
    /// Database index.
    pub db: u8,
    /// Type tag.
    pub kind: u8,
    /// The key (borrowed from the mapping).
    pub key: &'a [u8],
    /// Absolute deadline in Unix ms, 0 = none.
    pub expire_at: u64,
    /// Sequence number of the record.
    pub seq: u64,
    /// Value length in bytes.
    pub value_len: u32,
    /// Bytes the record occupies in the arena.
    pub record_len: u64,
}

/// What recovery found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryStats {
    /// Segments scanned.
    pub segments_scanned: u64,
    /// Valid records found.
    pub records_scanned: u64,
    /// Keys reported to the visitor.
    pub live_keys: u64,
    /// Bytes of the live keys' records.
    pub live_bytes: u64,
    /// Keys whose newest record is a tombstone.
    pub deleted_keys: u64,
    /// Keys whose newest record had expired.
    pub expired_keys: u64,
    /// Records superseded by a newer record of the same key.
    pub superseded: u64,
    /// Segments whose records ended in bytes that are not a valid record (a
    /// torn write at the crash).
    pub torn_segments: u64,
    /// Tombstones written for expired keys with older versions.
    pub tombstones_written: u64,
    /// Scan threads used.
    pub threads: usize,
    /// Wall time.
    pub duration: Duration,
}

const PARTITIONS: usize = 64;
const BATCH: usize = 256;
const TOMB_BIT: u64 = 1 << 62;
const MULTI_BIT: u64 = 1 << 63;
const ADDR_MASK: u64 = (1 << 48) - 1;

#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Address, plus TOMB_BIT and MULTI_BIT (the key has other records).
    word: u64,
    seq: u64,
    hash: u64,
}

#[derive(Debug, Default)]
struct ScanTotals {
    segments: u64,
    records: u64,
    superseded: u64,
    torn: u64,
    max_seq: u64,
}

impl Arena {
    /// [`Arena::recover_at`] with the current time.
    pub fn recover<F>(&self, visitor: F) -> Result<RecoveryStats>
    where
        F: Fn(RecoveredRecord<'_>) + Sync,
    {
        self.recover_at(crate::clock::now_ms(), visitor)
    }

    /// Scans the arena and calls `visitor` once per surviving key (from
    /// several threads at once; records with a deadline at or before
    /// `now_ms` are dropped). Must run once, before the first append, in
    /// `pmem` mode; in `none` mode it finds nothing. See the module docs.
    pub fn recover_at<F>(&self, now_ms: u64, visitor: F) -> Result<RecoveryStats>
    where
        F: Fn(RecoveredRecord<'_>) + Sync,
    {
        let inner = &*self.inner;
        if inner.recovery_done.swap(true, Ordering::AcqRel) {
            return Err(Error::BadArena("Arena::recover runs only once".into()));
        }
        let start = Instant::now();
        let segs: Vec<u32> = inner
            .metas
            .iter()
            .enumerate()
            .filter(|(_, m)| m.state() == State::Sealed)
            .map(|(i, _)| i as u32)
            .collect();
        let threads = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 8)
            .min(segs.len().max(1));
        let hasher = DefaultHashBuilder::default();
        let tables: Vec<Mutex<HashTable<Slot>>> =
            (0..PARTITIONS).map(|_| Mutex::new(HashTable::new())).collect();

        // Phase 1: scan segments.
        let next = AtomicUsize::new(0);
        let totals: Vec<ScanTotals> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| s.spawn(|| inner.scan_worker(&segs, &next, &tables, &hasher)))
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_default())
                .collect()
        });
        let mut stats = RecoveryStats {
            threads,
            ..RecoveryStats::default()
        };
        let mut max_seq = 0;
        for t in &totals {
            stats.segments_scanned += t.segments;
            stats.records_scanned += t.records;
            stats.superseded += t.superseded;
            stats.torn_segments += t.torn;
            max_seq = max_seq.max(t.max_seq);
        }

        // Phase 2: report the winners.
        let next = AtomicUsize::new(0);
        let need_tombstone: Mutex<Vec<(u8, Vec<u8>)>> = Mutex::new(Vec::new());
        let counts: Vec<[u64; 4]> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut c = [0u64; 4];
                        loop {
                            let p = next.fetch_add(1, Ordering::Relaxed);
                            let Some(table) = tables.get(p) else { break };
                            let table = std::mem::take(&mut *table.lock());
                            for slot in table {
                                inner.report(slot, now_ms, &visitor, &need_tombstone, &mut c);
                            }
                        }
                        c
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_default())
                .collect()
        });
        for c in counts {
            stats.live_keys += c[0];
            stats.live_bytes += c[1];
            stats.deleted_keys += c[2];
            stats.expired_keys += c[3];
        }

        // Phase 3: resume.
        let resume = max_seq.max(inner.seq.load(Ordering::Acquire).saturating_sub(1)) + 1;
        inner.seq.store(resume, Ordering::Release);
        inner.durable.store(resume, Ordering::Release);
        {
            let mut free = inner.free.lock();
            for &seg in &segs {
                if let Ok(meta) = inner.meta(seg) {
                    if meta.used.load(Ordering::Relaxed) == 0 {
                        meta.reset();
                        free.push_back(seg);
                    }
                }
            }
        }
        inner.recovered.store(true, Ordering::Release);
        for (db, key) in need_tombstone.into_inner() {
            match self.tombstone(self.writer_lanes(), db, &key) {
                Ok(_) => stats.tombstones_written += 1,
                Err(e) => tracing::warn!("arena: could not write a tombstone for an expired key: {e}"),
            }
        }
        if stats.tombstones_written > 0 {
            self.sync()?;
        }
        stats.duration = start.elapsed();
        tracing::info!(
            "arena: recovered {} keys ({} bytes) from {} records in {} segments in {:.1} ms \
             ({} superseded, {} deleted, {} expired, {} torn segment tails, {} threads)",
            stats.live_keys,
            stats.live_bytes,
            stats.records_scanned,
            stats.segments_scanned,
            stats.duration.as_secs_f64() * 1000.0,
            stats.superseded,
            stats.deleted_keys,
            stats.expired_keys,
            stats.torn_segments,
            threads
        );
        Ok(stats)
    }
}

impl Inner {
    /// `(db, key)` of the record at `addr`, without checksum (it was
    /// verified during the scan).
    fn key_at(&self, addr: u64) -> Option<(u8, &[u8])> {
        let head = self.medium.read(addr, HEADER_LEN)?;
        let (_, h) = Header::parse(head)?;
        let key = self
            .medium
            .read(addr + HEADER_LEN as u64, h.key_len as usize)?;
        Some((h.db, key))
    }

    fn scan_worker(
        &self,
        segs: &[u32],
        next: &AtomicUsize,
        tables: &[Mutex<HashTable<Slot>>],
        hasher: &DefaultHashBuilder,
    ) -> ScanTotals {
        let mut t = ScanTotals::default();
        let mut batches: Vec<Vec<Slot>> = (0..PARTITIONS).map(|_| Vec::with_capacity(BATCH)).collect();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(&seg) = segs.get(i) else { break };
            let Ok(meta) = self.meta(seg) else { continue };
            let Ok(mut iter) = self.scan(seg, None) else { continue };
            t.segments += 1;
            t.max_seq = t.max_seq.max(meta.gen.load(Ordering::Relaxed));
            let base = self.seg_base(seg);
            let mut tomb = 0;
            for rec in iter.by_ref() {
                t.records += 1;
                t.max_seq = t.max_seq.max(rec.seq());
                let mut word = rec.addr.0;
                if rec.is_tombstone() {
                    word |= TOMB_BIT;
                    tomb += rec.len();
                }
                let hash = hasher.hash_one((rec.db(), rec.key));
                let p = (hash >> 58) as usize % PARTITIONS;
                if let Some(batch) = batches.get_mut(p) {
                    batch.push(Slot {
                        word,
                        seq: rec.seq(),
                        hash,
                    });
                    if batch.len() >= BATCH {
                        self.merge(tables, p, batch, &mut t);
                    }
                }
            }
            if iter.stopped() == Some(Invalid::Torn) {
                t.torn += 1;
            }
            let used = iter.position() - base - super::SEGMENT_HEADER_LEN;
            meta.used.store(used, Ordering::Relaxed);
            meta.tomb.store(tomb, Ordering::Relaxed);
            meta.live.store(0, Ordering::Relaxed);
        }
        for p in 0..PARTITIONS {
            if let Some(batch) = batches.get_mut(p) {
                if !batch.is_empty() {
                    self.merge(tables, p, batch, &mut t);
                }
            }
        }
        t
    }

    /// Merges a batch into partition `p`: newest sequence number per key.
    fn merge(
        &self,
        tables: &[Mutex<HashTable<Slot>>],
        p: usize,
        batch: &mut Vec<Slot>,
        t: &mut ScanTotals,
    ) {
        let Some(table) = tables.get(p) else { return };
        let mut table = table.lock();
        for slot in batch.drain(..) {
            let Some((db, key)) = self.key_at(slot.word & ADDR_MASK) else {
                continue;
            };
            let same = |s: &Slot| {
                s.hash == slot.hash && self.key_at(s.word & ADDR_MASK) == Some((db, key))
            };
            match table.find_mut(slot.hash, same) {
                Some(old) => {
                    t.superseded += 1;
                    let newer = slot.seq > old.seq
                        || (slot.seq == old.seq && slot.word & ADDR_MASK > old.word & ADDR_MASK);
                    let loser = if newer {
                        let l = *old;
                        *old = Slot {
                            word: slot.word | MULTI_BIT,
                            ..slot
                        };
                        l
                    } else {
                        old.word |= MULTI_BIT;
                        slot
                    };
                    self.mark_dead(loser.word & ADDR_MASK, loser.seq);
                }
                None => {
                    table.insert_unique(slot.hash, slot, |s| s.hash);
                }
            }
        }
    }

    fn mark_dead(&self, addr: u64, seq: u64) {
        if let Ok(seg) = self.locate(Addr(addr)) {
            if let Ok(meta) = self.meta(seg) {
                meta.min_dead_seq.fetch_min(seq, Ordering::AcqRel);
            }
        }
    }

    fn report<F>(
        &self,
        slot: Slot,
        now_ms: u64,
        visitor: &F,
        need_tombstone: &Mutex<Vec<(u8, Vec<u8>)>>,
        c: &mut [u64; 4],
    ) where
        F: Fn(RecoveredRecord<'_>) + Sync,
    {
        let addr = slot.word & ADDR_MASK;
        if slot.word & TOMB_BIT != 0 {
            c[2] += 1;
            return;
        }
        let Some(head) = self.medium.read(addr, HEADER_LEN) else { return };
        let Some((_, h)) = Header::parse(head) else { return };
        let Some(key) = self.medium.read(addr + HEADER_LEN as u64, h.key_len as usize) else {
            return;
        };
        if h.expire_at != 0 && h.expire_at <= now_ms {
            c[3] += 1;
            self.mark_dead(addr, h.seq);
            if slot.word & MULTI_BIT != 0 {
                need_tombstone.lock().push((h.db, key.to_vec()));
            }
            return;
        }
        let len = h.len();
        if let Ok(seg) = self.locate(Addr(addr)) {
            if let Ok(meta) = self.meta(seg) {
                meta.live.fetch_add(len, Ordering::Relaxed);
            }
        }
        c[0] += 1;
        c[1] += len;
        visitor(RecoveredRecord {
            addr: Addr(addr),
            db: h.db,
            kind: h.kind,
            key,
            expire_at: h.expire_at,
            seq: h.seq,
            value_len: h.value_len,
            record_len: len,
        });
    }
}
