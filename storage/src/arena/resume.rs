//! Resuming after a clean shutdown without a recovery scan.
//!
//! At a clean close the keyspace saves its index and the arena's segment
//! table in an *index checkpoint* (`crate::checkpoint`). At the next open,
//! if the arena was shut down cleanly, [`Arena::resume`] takes the segment
//! table back instead of scanning every record, and the keyspace loads its
//! index from the checkpoint: no record is read at all.
//!
//! The checkpoint is trusted only if it describes exactly the segments found
//! at open: every segment's state, generation and span must match. Anything
//! written after the checkpoint was taken went to a segment opened later,
//! with a generation no checkpointed segment has, and a segment freed since
//! has a zeroed header: either way the tables differ, [`Arena::resume`]
//! refuses, and the caller runs the normal recovery.

use std::sync::atomic::Ordering;

use super::segment::State;
use super::{Arena, Persistence};
use crate::{Error, Result};

/// One segment's bookkeeping as a checkpoint keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentState {
    /// 0 free, 2 in use (sealed or active at close), 3 covered by an extent.
    pub state: u8,
    /// Generation.
    pub gen: u64,
    /// Segments covered (1 unless it starts an extent).
    pub span: u32,
    /// Bytes of records appended.
    pub used: u64,
    /// Bytes of live records.
    pub live: u64,
    /// Bytes of tombstones.
    pub tomb: u64,
    /// Smallest sequence number of a dead record in it.
    pub min_dead_seq: u64,
}

/// How a segment's state is compared: a segment a lane was appending to at
/// close is sealed at the next open.
fn normalized(s: State) -> u8 {
    match s {
        State::Free => 0,
        State::Active | State::Sealed => 2,
        State::Continued => 3,
    }
}

impl Arena {
    /// Whether the arena had been shut down cleanly before this open.
    pub fn was_clean(&self) -> bool {
        self.inner.clean_at_open
    }

    /// The segment table and the next sequence number, for a checkpoint.
    /// Take it after the last append and sync.
    pub fn segment_table(&self) -> (Vec<SegmentState>, u64) {
        let table = self
            .inner
            .metas
            .iter()
            .map(|m| SegmentState {
                state: normalized(m.state()),
                gen: m.gen.load(Ordering::Acquire),
                span: m.span.load(Ordering::Acquire),
                used: m.used.load(Ordering::Acquire),
                live: m.live.load(Ordering::Acquire),
                tomb: m.tomb.load(Ordering::Acquire),
                min_dead_seq: m.min_dead_seq.load(Ordering::Acquire),
            })
            .collect();
        (table, self.inner.seq.load(Ordering::Acquire))
    }

    /// Takes the place of [`Arena::recover`] after a clean shutdown: adopts
    /// a checkpointed segment table (see the module docs). Refused, with
    /// nothing changed, when the arena was not shut down cleanly, recovery
    /// already ran, or the table does not describe the segments found at
    /// open; the caller then recovers normally.
    ///
    /// `meta` lists the metadata records in use at the checkpoint (see
    /// `meta`); each is read and checked first, and one that does not check
    /// refuses the checkpoint too.
    pub fn resume(
        &self,
        table: &[SegmentState],
        next_seq: u64,
        meta: &[super::Addr],
    ) -> Result<()> {
        let inner = &*self.inner;
        let refuse = |why: String| Err(Error::BadArena(format!("checkpoint refused: {why}")));
        if inner.persistence != Persistence::Pmem || !inner.clean_at_open {
            return refuse("the arena was not shut down cleanly".into());
        }
        if inner.recovery_done.load(Ordering::Acquire) {
            return refuse("recovery already ran".into());
        }
        if table.len() != inner.metas.len() {
            return refuse(format!(
                "{} segments, the arena has {}",
                table.len(),
                inner.metas.len()
            ));
        }
        for (i, (m, t)) in inner.metas.iter().zip(table).enumerate() {
            let state = normalized(m.state());
            let same = state == t.state
                && (state == 0
                    || (m.gen.load(Ordering::Acquire) == t.gen
                        && m.span.load(Ordering::Acquire) == t.span));
            if !same {
                return refuse(format!("segment {i} changed since the checkpoint"));
            }
            if state == 2 && t.used > inner.segment_size * u64::from(t.span.max(1)) {
                return refuse(format!("segment {i} has an impossible size"));
            }
        }
        let meta = match self.check_meta(meta) {
            Ok(m) => m,
            Err(e) => return refuse(format!("metadata: {e}")),
        };
        if inner.recovery_done.swap(true, Ordering::AcqRel) {
            return refuse("recovery already ran".into());
        }
        *inner.meta.lock() = meta;
        let mut max_gen = 0;
        for (i, (m, t)) in inner.metas.iter().zip(table).enumerate() {
            max_gen = max_gen.max(t.gen);
            if m.state() != State::Sealed {
                continue;
            }
            m.used.store(t.used, Ordering::Relaxed);
            m.live.store(t.live, Ordering::Relaxed);
            m.tomb.store(t.tomb, Ordering::Relaxed);
            m.min_dead_seq.store(t.min_dead_seq, Ordering::Relaxed);
            if t.used == 0 {
                // As recovery does with an empty sealed segment.
                if t.span > 1 {
                    inner.free_extent(i as u32)?;
                } else {
                    m.reset();
                    inner.free.lock().push_back(i as u32);
                }
            }
        }
        let resume = next_seq
            .max(max_gen + 1)
            .max(inner.seq.load(Ordering::Acquire));
        inner.seq.store(resume, Ordering::Release);
        inner.durable.store(resume, Ordering::Release);
        inner.recovered.store(true, Ordering::Release);
        Ok(())
    }
}
