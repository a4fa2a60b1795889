//! Recovery: rebuild the caller's index from the arena after a restart.
//!
//! 1. **Scan** (parallel over segments, `std::thread::scope`): every segment
//!    (or extent, as one segment) whose header validated at open is read
//!    record by record until the
//!    first invalid one (end of data or a torn write). Each valid record is
//!    hashed by `(db, key)` and appended as a 24-byte slot `(address +
//!    flags, sequence, hash)` to one of 256 partition lists of that worker
//!    (sequential writes only).
//! 2. **Merge** (parallel over partitions): a partition's slots from all
//!    workers go into one hash table sized exactly, small enough to stay in
//!    cache; on a key collision the higher sequence number wins, the loser
//!    is dead and lowers its segment's `min_dead_seq`. A winning tombstone
//!    or expired record is dropped (an expired key with older versions gets
//!    a tombstone written afterwards, see the compaction module); a live
//!    winner sets its bit in a bitmap with one bit per 32 bytes of arena
//!    (less than the smallest record, 40 bytes, so record starts never share
//!    a bit), i.e. arena size / 256 bytes of DRAM.
//! 3. **Report** (parallel over segments): each segment is walked again in
//!    address order (headers only, already verified) and every record whose
//!    bit is set counts as live and is passed to the visitor with its
//!    address, db, key, kind and deadline; a metadata record (database 255,
//!    see `meta`) goes to the arena's metadata table instead. The mapping
//!    is only ever read sequentially.
//! 4. **Resume**: the sequence counter restarts above every sequence number
//!    and generation seen; recovered segments stay sealed (new appends go to
//!    fresh segments with new generations, so bytes after a torn record can
//!    never be mistaken for new records); empty ones return to the free list
//!    (an empty extent, left by a crash in the middle of a large append, is
//!    zeroed first, see `segment`).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
    /// Delta records kept (applied on top of their key's newest record).
    pub deltas_kept: u64,
    /// Delta records dropped (their base was superseded, or the chain was
    /// broken before them).
    pub deltas_dropped: u64,
    /// Keys whose newest full record has delta records to apply: (address of
    /// the full record, addresses of its deltas in order). The visitor was
    /// called for the full record; the caller applies the deltas.
    pub chains: Vec<(Addr, Vec<Addr>)>,
    /// Valid records found per database (an upper bound of its live keys,
    /// known before any key is reported: the visitor's owner sizes its
    /// tables with it).
    pub records_per_db: Vec<u64>,
    /// Scan threads used.
    pub threads: usize,
    /// Metadata names found (see `meta`; not counted in `live_keys`).
    pub meta_records: u64,
    /// Wall time.
    pub duration: Duration,
}

const PARTITION_BITS: u32 = 8;
const PARTITIONS: usize = 1 << PARTITION_BITS;
const TOMB_BIT: u64 = 1 << 62;
const MULTI_BIT: u64 = 1 << 63;
const EXPIRED_BIT: u64 = 1 << 61;
const ADDR_MASK: u64 = (1 << 48) - 1;

/// A delta record found by the scan.
#[derive(Debug, Clone, Copy)]
struct DeltaSlot {
    addr: u64,
    seq: u64,
    hash: u64,
    base_seq: u64,
    pos: u32,
    expire_at: u64,
}

/// Per partition, what one scan worker found: full records and tombstones,
/// and delta records.
type Found = (Vec<Vec<Slot>>, Vec<Vec<DeltaSlot>>);

#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Address, plus TOMB_BIT and MULTI_BIT (the key has other records).
    word: u64,
    seq: u64,
    hash: u64,
}

#[derive(Debug)]
struct ScanTotals {
    segments: u64,
    records: u64,
    torn: u64,
    max_seq: u64,
    per_db: Vec<u64>,
}

impl Default for ScanTotals {
    fn default() -> Self {
        ScanTotals {
            segments: 0,
            records: 0,
            torn: 0,
            max_seq: 0,
            per_db: vec![0; 256],
        }
    }
}

impl Arena {
    /// [`Arena::recover_at`] with the current time.
    pub fn recover<F>(&self, visitor: F) -> Result<RecoveryStats>
    where
        F: Fn(RecoveredRecord<'_>) + Sync,
    {
        self.recover_at(crate::clock::now_ms(), visitor)
    }

    /// [`Arena::recover`], calling `reserve` once with the number of valid
    /// records per database (indexed by db) before the first key is
    /// reported, so the caller can size its tables once instead of growing
    /// them key by key.
    pub fn recover_reserving<R, F>(&self, reserve: R, visitor: F) -> Result<RecoveryStats>
    where
        R: FnOnce(&[u64]),
        F: Fn(RecoveredRecord<'_>) + Sync,
    {
        self.recover_inner(crate::clock::now_ms(), reserve, visitor)
    }

    /// Scans the arena and calls `visitor` once per surviving key (from
    /// several threads at once; records with a deadline at or before
    /// `now_ms` are dropped). Must run once, before the first append, in
    /// `pmem` mode; in `none` mode it finds nothing. See the module docs.
    pub fn recover_at<F>(&self, now_ms: u64, visitor: F) -> Result<RecoveryStats>
    where
        F: Fn(RecoveredRecord<'_>) + Sync,
    {
        self.recover_inner(now_ms, |_| {}, visitor)
    }

    fn recover_inner<R, F>(&self, now_ms: u64, reserve: R, visitor: F) -> Result<RecoveryStats>
    where
        R: FnOnce(&[u64]),
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

        // Phase 1: scan segments into per-worker, per-partition slot lists.
        let next = AtomicUsize::new(0);
        let scanned: Vec<(ScanTotals, Found)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| s.spawn(|| inner.scan_worker(&segs, &next, &hasher, now_ms)))
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
        let scan_done = start.elapsed();
        let mut max_seq = 0;
        stats.records_per_db = vec![0; 256];
        for (t, _) in &scanned {
            for (sum, n) in stats.records_per_db.iter_mut().zip(&t.per_db) {
                *sum += n;
            }
            stats.segments_scanned += t.segments;
            stats.records_scanned += t.records;
            stats.torn_segments += t.torn;
            max_seq = max_seq.max(t.max_seq);
        }

        // Phase 2: per partition, keep the newest record per key in a
        // table sized exactly (small enough to stay in cache). Live winners
        // are marked in a bitmap with one bit per 32 bytes of arena (less
        // than the smallest record); tombstones and expired winners are settled here.
        let winners: Vec<AtomicU64> = (0..(inner.size / 32).div_ceil(64))
            .map(|_| AtomicU64::new(0))
            .collect();
        let next = AtomicUsize::new(0);
        let need_tombstone: Mutex<Vec<(u8, Vec<u8>)>> = Mutex::new(Vec::new());
        let chains: Mutex<Vec<(Addr, Vec<Addr>)>> = Mutex::new(Vec::new());
        let counts: Vec<[u64; 5]> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut c = [0u64; 5];
                        loop {
                            let p = next.fetch_add(1, Ordering::Relaxed);
                            if p >= PARTITIONS {
                                break;
                            }
                            let lists = scanned.iter().filter_map(|(_, (parts, _))| parts.get(p));
                            let total = lists.clone().map(Vec::len).sum();
                            let mut table = HashTable::with_capacity(total);
                            for list in lists {
                                c[2] += inner.merge(&mut table, list);
                            }
                            let deltas: Vec<DeltaSlot> = scanned
                                .iter()
                                .filter_map(|(_, (_, d))| d.get(p))
                                .flatten()
                                .copied()
                                .collect();
                            let mut own = if deltas.is_empty() {
                                HashMap::new()
                            } else {
                                inner.attach_deltas(&mut table, deltas, now_ms, &mut c)
                            };
                            for slot in table {
                                let live = inner.settle(slot, &winners, &need_tombstone, &mut c);
                                if own.is_empty() {
                                    continue;
                                }
                                let base = slot.word & ADDR_MASK;
                                let Some(chain) = own.remove(&base) else {
                                    continue;
                                };
                                for d in &chain {
                                    if live {
                                        set_bit(&winners, d.addr);
                                    } else {
                                        inner.mark_dead(d.addr, d.seq);
                                    }
                                }
                                if live {
                                    let addrs = chain.iter().map(|d| Addr(d.addr)).collect();
                                    chains.lock().push((Addr(base), addrs));
                                }
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
        drop(scanned);
        for c in counts {
            stats.deleted_keys += c[0];
            stats.expired_keys += c[1];
            stats.superseded += c[2];
            stats.deltas_kept += c[3];
            stats.deltas_dropped += c[4];
        }
        stats.chains = chains.into_inner();

        reserve(&stats.records_per_db);
        let merge_done = start.elapsed();
        // Phase 3: report the live winners, segment by segment in address
        // order (sequential reads of the mapping).
        let next = AtomicUsize::new(0);
        let live: Vec<(u64, u64)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut c = (0u64, 0u64);
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(&seg) = segs.get(i) else { break };
                            inner.report_segment(seg, &winners, &visitor, &mut c);
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
        for (keys, bytes) in live {
            stats.live_keys += keys;
            stats.live_bytes += bytes;
        }
        stats.meta_records = inner.meta.lock().len() as u64;

        tracing::debug!(
            scan_ms = scan_done.as_millis() as u64,
            merge_ms = (merge_done - scan_done).as_millis() as u64,
            report_ms = (start.elapsed() - merge_done).as_millis() as u64,
            "arena: recovery phases"
        );
        // Phase 4: resume.
        let resume = max_seq.max(inner.seq.load(Ordering::Acquire).saturating_sub(1)) + 1;
        inner.seq.store(resume, Ordering::Release);
        inner.durable.store(resume, Ordering::Release);
        for &seg in &segs {
            let Ok(meta) = inner.meta(seg) else { continue };
            if meta.used.load(Ordering::Relaxed) != 0 {
                continue;
            }
            if meta.span.load(Ordering::Relaxed) > 1 {
                // An extent whose record never completed (a crash in the
                // middle of a large append): its header still covers the
                // following segments, so it is zeroed before any of them
                // is reused (rule 3 of `segment`).
                inner.free_extent(seg)?;
            } else {
                meta.reset();
                inner.free.lock().push_back(seg);
            }
        }
        inner.recovered.store(true, Ordering::Release);
        for (db, key) in need_tombstone.into_inner() {
            match self.tombstone(self.writer_lanes(), db, &key) {
                Ok(_) => stats.tombstones_written += 1,
                Err(e) => {
                    tracing::warn!("arena: could not write a tombstone for an expired key: {e}")
                }
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

/// Sets the bitmap bit of the record at `addr`.
fn set_bit(winners: &[AtomicU64], addr: u64) {
    let bit = addr / 32;
    if let Some(w) = winners.get((bit / 64) as usize) {
        w.fetch_or(1 << (bit % 64), Ordering::Relaxed);
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
        hasher: &DefaultHashBuilder,
        now_ms: u64,
    ) -> (ScanTotals, Found) {
        let mut t = ScanTotals::default();
        let mut parts: Vec<Vec<Slot>> = (0..PARTITIONS).map(|_| Vec::new()).collect();
        let mut dparts: Vec<Vec<DeltaSlot>> = (0..PARTITIONS).map(|_| Vec::new()).collect();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(&seg) = segs.get(i) else { break };
            let Ok(meta) = self.meta(seg) else { continue };
            let Ok(mut iter) = self.scan(seg, None) else {
                continue;
            };
            t.segments += 1;
            t.max_seq = t.max_seq.max(meta.gen.load(Ordering::Relaxed));
            let base = self.seg_base(seg);
            let span = meta.span.load(Ordering::Relaxed).max(1) as u64;
            self.medium.prefetch(base, span * self.segment_size);
            let mut tomb = 0;
            for rec in iter.by_ref() {
                t.records += 1;
                if let Some(n) = t.per_db.get_mut(rec.db() as usize) {
                    *n += 1;
                }
                t.max_seq = t.max_seq.max(rec.seq());
                if rec.is_delta() {
                    let hash = hasher.hash_one((rec.db(), rec.key));
                    let p = (hash >> (64 - PARTITION_BITS)) as usize;
                    // A delta whose prefix does not parse gets position 0,
                    // which no chain accepts: it is dropped as dead.
                    let (base_seq, pos) = super::record::parse_delta(rec.value)
                        .map_or((0, 0), |(b, pos, _)| (b, pos));
                    if let Some(list) = dparts.get_mut(p) {
                        list.push(DeltaSlot {
                            addr: rec.addr.0,
                            seq: rec.seq(),
                            hash,
                            base_seq,
                            pos,
                            expire_at: rec.expire_at(),
                        });
                    }
                    continue;
                }
                let mut word = rec.addr.0;
                if rec.is_tombstone() {
                    word |= TOMB_BIT;
                    tomb += rec.len();
                } else if rec.expire_at() != 0 && rec.expire_at() <= now_ms {
                    word |= EXPIRED_BIT;
                }
                let hash = hasher.hash_one((rec.db(), rec.key));
                let p = (hash >> (64 - PARTITION_BITS)) as usize;
                if let Some(list) = parts.get_mut(p) {
                    list.push(Slot {
                        word,
                        seq: rec.seq(),
                        hash,
                    });
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
        (t, (parts, dparts))
    }

    /// Merges slots into a partition's table: newest sequence number per
    /// key. Returns how many records were superseded.
    fn merge(&self, table: &mut HashTable<Slot>, list: &[Slot]) -> u64 {
        let mut superseded = 0;
        for &slot in list {
            // The incoming key is read only when a stored hash matches (a
            // real duplicate, or a rare 64-bit collision).
            let mut incoming: Option<Option<(u8, &[u8])>> = None;
            let same = |s: &Slot| {
                s.hash == slot.hash && {
                    let mine = *incoming.get_or_insert_with(|| self.key_at(slot.word & ADDR_MASK));
                    mine.is_some() && self.key_at(s.word & ADDR_MASK) == mine
                }
            };
            match table.find_mut(slot.hash, same) {
                Some(old) => {
                    superseded += 1;
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
        superseded
    }

    fn mark_dead(&self, addr: u64, seq: u64) {
        if let Ok(seg) = self.locate(Addr(addr)) {
            if let Ok(meta) = self.meta(seg) {
                meta.min_dead_seq.fetch_min(seq, Ordering::AcqRel);
            }
        }
    }

    /// Settles one partition winner: tombstones and expired records are
    /// counted (and an expired key with older versions queued for a
    /// tombstone); live ones are marked in the bitmap.
    fn settle(
        &self,
        slot: Slot,
        winners: &[AtomicU64],
        need_tombstone: &Mutex<Vec<(u8, Vec<u8>)>>,
        c: &mut [u64; 5],
    ) -> bool {
        let addr = slot.word & ADDR_MASK;
        if slot.word & TOMB_BIT != 0 {
            c[0] += 1;
            false
        } else if slot.word & EXPIRED_BIT != 0 {
            c[1] += 1;
            self.mark_dead(addr, slot.seq);
            if slot.word & MULTI_BIT != 0 {
                if let Some((db, key)) = self.key_at(addr) {
                    need_tombstone.lock().push((db, key.to_vec()));
                }
            }
            false
        } else {
            set_bit(winners, addr);
            true
        }
    }

    /// Attaches a partition's delta records to their keys' newest full
    /// records in `table`. A delta is kept only if its base is that record
    /// and the positions before it are all there (1, 2, 3..., with rising
    /// sequence numbers: a chain with a gap keeps its prefix); the rest are
    /// dead. A key with deltas takes
    /// its deadline from its last delta. Returns each full record's chain
    /// (in order) by the full record's address.
    fn attach_deltas(
        &self,
        table: &mut HashTable<Slot>,
        mut deltas: Vec<DeltaSlot>,
        now_ms: u64,
        c: &mut [u64; 5],
    ) -> HashMap<u64, Vec<DeltaSlot>> {
        deltas.sort_unstable_by_key(|d| (d.hash, d.base_seq, d.pos, d.seq, d.addr));
        let mut out: HashMap<u64, Vec<DeltaSlot>> = HashMap::new();
        for group in deltas.chunk_by(|a, b| a.hash == b.hash && a.base_seq == b.base_seq) {
            let Some(first) = group.first() else { continue };
            let key = self.key_at(first.addr);
            let base = key.and_then(|k| {
                table.find_mut(first.hash, |s| {
                    s.hash == first.hash && self.key_at(s.word & ADDR_MASK) == Some(k)
                })
            });
            let mut chain: Vec<DeltaSlot> = Vec::new();
            if let Some(base) = base.filter(|b| b.word & TOMB_BIT == 0 && b.seq == first.base_seq) {
                for d in group {
                    // Positions run 1, 2, 3... and sequence numbers rise: a
                    // delta left over from before an earlier crash (its
                    // position re-used by a newer write) is older than the
                    // delta before it, and is not part of the chain.
                    let newer = chain.last().is_none_or(|p| d.seq > p.seq);
                    if d.pos as usize == chain.len() + 1 && newer && self.key_at(d.addr) == key {
                        chain.push(*d);
                    }
                }
                if let Some(last) = chain.last() {
                    base.word |= MULTI_BIT;
                    if last.expire_at != 0 && last.expire_at <= now_ms {
                        base.word |= EXPIRED_BIT;
                    } else {
                        base.word &= !EXPIRED_BIT;
                    }
                    out.insert(base.word & ADDR_MASK, chain.clone());
                }
            }
            for d in group {
                if chain.iter().any(|k| k.addr == d.addr) {
                    c[3] += 1;
                } else {
                    c[4] += 1;
                    self.mark_dead(d.addr, d.seq);
                }
            }
        }
        out
    }

    /// Visits the live winners of one segment (records were verified by
    /// the scan; here only headers are parsed).
    fn report_segment<F>(&self, seg: u32, winners: &[AtomicU64], visitor: &F, c: &mut (u64, u64))
    where
        F: Fn(RecoveredRecord<'_>) + Sync,
    {
        let Ok(meta) = self.meta(seg) else { return };
        let base = self.seg_base(seg);
        let end = base + super::SEGMENT_HEADER_LEN + meta.used.load(Ordering::Relaxed);
        let mut pos = base + super::SEGMENT_HEADER_LEN;
        let mut live = 0;
        while pos < end {
            let Some((_, h)) = self.medium.read(pos, HEADER_LEN).and_then(Header::parse) else {
                break;
            };
            let len = h.len();
            let bit = pos / 32;
            let won = winners
                .get((bit / 64) as usize)
                .is_some_and(|w| w.load(Ordering::Relaxed) & (1 << (bit % 64)) != 0);
            if won && h.is_delta() {
                // A kept delta: live bytes, but not a key of its own.
                live += len;
            } else if won && h.db == super::meta::META_DB {
                // The newest record of a metadata name: the arena's own
                // table takes it, the caller never sees it.
                let found = self
                    .medium
                    .read(pos + HEADER_LEN as u64, h.key_len as usize)
                    .filter(|_| h.kind == super::meta::META_KIND);
                match found {
                    Some(name) => {
                        live += len;
                        self.meta.lock().insert(name.to_vec(), Addr(pos));
                    }
                    None => tracing::warn!(
                        addr = pos,
                        kind = h.kind,
                        "arena: a record of the metadata database that is not metadata; ignored"
                    ),
                }
            } else if won {
                if let Some(key) = self
                    .medium
                    .read(pos + HEADER_LEN as u64, h.key_len as usize)
                {
                    live += len;
                    c.0 += 1;
                    c.1 += len;
                    visitor(RecoveredRecord {
                        addr: Addr(pos),
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
            pos += len;
        }
        meta.live.store(live, Ordering::Relaxed);
    }
}
