//! Compaction primitives. The caller owns the index, so it decides which
//! records are live; the arena decides which tombstones must be kept.
//!
//! A compaction round, as the keyspace runs it:
//!
//! ```text
//! for seg in arena.compaction_candidates(0.5, 4) {
//!     for rec in arena.segment_records(seg)? {
//!         if rec.is_tombstone() { continue }          // the arena handles these
//!         lock the shard of (rec.db(), rec.key);
//!         if the index still points at rec.addr {
//!             let new = arena.relocate(rec.addr)?;    // same sequence number
//!             point the index at new;
//!         }
//!     }
//!     arena.free_segment(seg)?;                       // refuses if anything is still live
//! }
//! ```
//!
//! # Relocation keeps the sequence number
//!
//! A relocated copy is the same version of the key, so it carries the same
//! sequence number. Recovery keeps the highest sequence number per key; a
//! crash between relocation and freeing leaves two identical copies, and
//! either one is correct. A relocated copy can never outrank a newer write.
//!
//! # Tombstone lifetime
//!
//! A tombstone with sequence `t` for key K matters only while some record of
//! K older than `t` may still be found by recovery. Every such record is dead
//! (released when K was deleted; [`Arena::delete`] releases *before* it
//! writes the tombstone, so the release is visible to a compactor that finds
//! the tombstone). Each segment tracks the smallest sequence number among its
//! dead records (`min_dead_seq`; recovery rebuilds it from superseded and
//! expired records). When freeing segment S, a tombstone in S is dropped
//! only if every *other* segment in use has `min_dead_seq > t`: then no
//! older record of any key, K included, can surface again. Otherwise it is
//! relocated like a live record. Freed segments have their header zeroed and
//! persisted, after relocated copies are made durable, so their records can
//! never be scanned again.
//!
//! Expired records: a key that expires must be removed with
//! [`Arena::delete`] like any other removal. Recovery, which drops expired
//! keys itself, writes a tombstone for an expired key that still has older
//! versions in the arena, for the same reason.

use std::sync::atomic::Ordering;

use super::record::{Invalid, RecordRef};
use super::segment::{SegmentId, State, SEGMENT_HEADER_LEN};
use super::{Addr, Arena, Inner, Strategy};
use crate::{Error, Result};

/// What [`Arena::free_segment`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FreeOutcome {
    /// Tombstones still needed, relocated.
    pub tombstones_kept: u64,
    /// Tombstones dropped.
    pub tombstones_dropped: u64,
}

/// Iterator over the valid records of one segment (or extent), in append
/// order. Stops at
/// the first position that holds no valid record (the end of the segment's
/// records, or a torn write after a crash).
pub struct SegmentRecords<'a> {
    inner: &'a Inner,
    gen: u64,
    pos: u64,
    end: u64,
    stopped: Option<Invalid>,
}

impl std::fmt::Debug for SegmentRecords<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentRecords")
            .field("gen", &self.gen)
            .field("pos", &self.pos)
            .field("end", &self.end)
            .finish()
    }
}

impl<'a> SegmentRecords<'a> {
    /// Why iteration stopped (after it did): `End` for a clean end,
    /// `Torn` when bytes were found that are not a valid record.
    pub fn stopped(&self) -> Option<Invalid> {
        self.stopped
    }

    /// Absolute offset just past the last valid record seen.
    pub fn position(&self) -> u64 {
        self.pos
    }
}

impl<'a> Iterator for SegmentRecords<'a> {
    type Item = RecordRef<'a>;

    fn next(&mut self) -> Option<RecordRef<'a>> {
        if self.stopped.is_some() {
            return None;
        }
        let inner: &'a Inner = self.inner;
        let Some(bytes) = inner.medium.read(self.pos, (self.end - self.pos) as usize) else {
            self.stopped = Some(Invalid::Torn);
            return None;
        };
        match RecordRef::decode(Addr(self.pos), self.gen, bytes) {
            Ok(rec) => {
                self.pos += rec.len();
                Some(rec)
            }
            Err(why) => {
                self.stopped = Some(why);
                None
            }
        }
    }
}

impl Inner {
    /// Iterates segment `seg` under its current generation, up to `limit`
    /// bytes of records (or the segment's end).
    pub(super) fn scan(&self, seg: u32, limit: Option<u64>) -> Result<SegmentRecords<'_>> {
        let meta = self.meta(seg)?;
        let base = self.seg_base(seg);
        let extent_end = self.extent_end(seg, meta);
        let end = match limit {
            Some(used) => (base + SEGMENT_HEADER_LEN + used).min(extent_end),
            None => extent_end,
        };
        Ok(SegmentRecords {
            inner: self,
            gen: meta.gen.load(Ordering::Acquire),
            pos: base + SEGMENT_HEADER_LEN,
            end,
            stopped: None,
        })
    }
}

impl Arena {
    /// Sealed segments (an extent counts as one, named by its first segment)
    /// whose dead fraction (dead records and tombstones over
    /// bytes used) is at least `min_dead_ratio`, most dead first, at most
    /// `max` of them.
    pub fn compaction_candidates(&self, min_dead_ratio: f64, max: usize) -> Vec<SegmentId> {
        let mut c: Vec<(f64, u32)> = self
            .inner
            .metas
            .iter()
            .enumerate()
            .filter(|(_, m)| m.state() == State::Sealed)
            .filter_map(|(i, m)| {
                let used = m.used.load(Ordering::Relaxed);
                let ratio = if used == 0 {
                    1.0
                } else {
                    m.dead() as f64 / used as f64
                };
                (ratio >= min_dead_ratio).then_some((ratio, i as u32))
            })
            .collect();
        c.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        c.into_iter().take(max).map(|(_, i)| SegmentId(i)).collect()
    }

    /// The segment holding `addr` (for a large record, the first segment of
    /// its extent).
    pub fn segment_of(&self, addr: Addr) -> Option<SegmentId> {
        self.inner.locate(addr).ok().map(SegmentId)
    }

    /// Whether no record of segment `seg` is live (counted by appends and
    /// releases): then no index entry points into it, and a compaction
    /// round can free it without reading its records.
    /// [`Arena::free_segment`] checks the count again under its lock.
    pub fn segment_is_dead(&self, seg: SegmentId) -> bool {
        self.inner
            .meta(seg.0)
            .is_ok_and(|m| m.live.load(Ordering::Acquire) == 0)
    }

    /// The valid records of a sealed segment, tombstones included (skip
    /// those: [`Arena::free_segment`] handles them).
    pub fn segment_records(&self, seg: SegmentId) -> Result<SegmentRecords<'_>> {
        let meta = self.inner.meta(seg.0)?;
        if meta.state() != State::Sealed {
            return Err(Error::SegmentInUse);
        }
        self.inner
            .scan(seg.0, Some(meta.used.load(Ordering::Acquire)))
    }

    /// Copies the record at `addr` (same sequence number, kind, deadline)
    /// into the compaction lane (a large record: into a new extent, which
    /// needs a run of free segments) and releases the original. Returns the new
    /// address; the copy is made durable by [`Arena::free_segment`] before
    /// the original's segment is freed.
    pub fn relocate(&self, addr: Addr) -> Result<Addr> {
        let rec = self.inner.read(addr)?;
        let lane = self.inner.compaction_lane();
        let (new, _) = self.inner.append(
            lane,
            rec.header,
            rec.key,
            &[rec.value],
            Some(rec.seq()),
            true,
        )?;
        self.inner.release(addr)?;
        Ok(new)
    }

    /// Frees a sealed segment (or a whole extent) whose live records were all
    /// relocated or released ([`Error::SegmentInUse`] otherwise): relocates
    /// the tombstones that are still needed, makes every relocated copy
    /// durable, zeroes and persists the segment header (for an extent: the
    /// first 64 bytes of each covered segment, then the header), and puts the
    /// segment(s) on the free list.
    pub fn free_segment(&self, seg: SegmentId) -> Result<FreeOutcome> {
        let inner = &*self.inner;
        let _one = inner.compacting.lock();
        let meta = inner.meta(seg.0)?;
        if meta.state() != State::Sealed || meta.live.load(Ordering::Acquire) != 0 {
            return Err(Error::SegmentInUse);
        }
        let min_dead_elsewhere = inner
            .metas
            .iter()
            .enumerate()
            .filter(|(i, m)| *i != seg.0 as usize && m.state() != State::Free)
            .map(|(_, m)| m.min_dead_seq.load(Ordering::Acquire))
            .min()
            .unwrap_or(u64::MAX);
        let mut out = FreeOutcome::default();
        // Tombstone bytes are counted as they are appended (and rebuilt by
        // recovery): a segment without any, such as one of a folded chain's
        // deltas, is freed without reading its records.
        let has_tombstones = meta.tomb.load(Ordering::Acquire) != 0;
        let tombstones: Vec<Addr> = if has_tombstones {
            self.segment_records(seg)?
                .filter(|r| r.is_tombstone())
                .filter_map(|r| {
                    if r.seq() > min_dead_elsewhere {
                        Some(r.addr)
                    } else {
                        out.tombstones_dropped += 1;
                        None
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        for addr in tombstones {
            self.relocate(addr)?;
            out.tombstones_kept += 1;
        }
        inner.sync_all()?;
        inner.free_extent(seg.0)?;
        inner.compactions.fetch_add(1, Ordering::Relaxed);
        Ok(out)
    }
}

impl Inner {
    /// Returns a segment, or every segment of an extent, to the free list:
    /// zeroes and persists the first 64 bytes of the segments the extent
    /// covers, then its header (rule 2 of `segment`), then resets the
    /// bookkeeping. The caller made sure nothing in it is needed.
    pub(super) fn free_extent(&self, seg: u32) -> Result<()> {
        let meta = self.meta(seg)?;
        let span = meta.span.load(Ordering::Acquire).max(1);
        let zero = [0u8; SEGMENT_HEADER_LEN as usize];
        let durable = self.strategy != Strategy::Off;
        if span > 1 {
            for k in 1..span {
                let base = self.seg_base(seg + k);
                self.medium.write(base, &zero)?;
                if durable {
                    if let Err(e) = self.medium.flush(base, SEGMENT_HEADER_LEN) {
                        self.poison(&e.to_string());
                        return Err(e);
                    }
                }
            }
            if durable {
                self.medium.fence();
                self.persist_calls.fetch_add(1, Ordering::Relaxed);
            }
        }
        let base = self.seg_base(seg);
        self.medium.write(base, &zero)?;
        if durable {
            self.persist_now(base, SEGMENT_HEADER_LEN)?;
        }
        for k in 0..span {
            self.meta(seg + k)?.reset();
        }
        self.free.lock().extend(seg..seg + span);
        Ok(())
    }
}
