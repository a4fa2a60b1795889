//! Segments: fixed-size slices of the arena after the superblock page.
//! Segment `i` starts at `4096 + i * segment_size`.
//!
//! Each segment in use starts with a 64-byte header, then records from
//! offset 64:
//!
//! ```text
//! offset size field
//!      0    8 magic        b"AMBERSEG"
//!      8    4 version      2
//!     12    4 index        the segment's own number (catches misplaced data)
//!     16    8 generation   unique, increasing: taken from the sequence counter
//!                          when the segment was opened; mixed into every
//!                          record checksum of this use of the segment
//!     24    4 span         segments covered by this header: 1 for an
//!                          ordinary segment, n >= 2 for an extent
//!     28    4 crc32        of bytes 0..28
//!     32   32 reserved     0
//! ```
//!
//! # Extents (large records)
//!
//! A record larger than a segment minus its header is written into an
//! **extent**: a run of `span` contiguous segments `i .. i+span` taken off
//! the free list together. Only segment `i` has a header (with the span); the
//! record starts at its offset 64 and runs contiguously through the following
//! segments (their first 64 bytes are record bytes, not headers), so the
//! record is one slice of the mapping. An extent holds exactly one record and
//! is sealed as soon as it is written; recovery, compaction and freeing treat
//! it as one segment.
//!
//! Opening an arena walks the headers in order and skips the segments an
//! extent covers, so record bytes are never read as a header. Three rules
//! keep that walk safe across crashes:
//!
//! 1. The extent header is persisted (flush, fence) **before** any record
//!    byte is written into the extent: record bytes that reach the media
//!    early are always covered by a durable header.
//! 2. Freeing an extent first zeroes and persists the first 64 bytes of
//!    every covered segment, and only then the header: no record bytes
//!    that could pass for a header are left behind an invalid one.
//! 3. An extent found empty by recovery (a crash in the middle of its
//!    append) is freed the same way before its segments are reused.
//!
//! A segment whose header does not validate (and that no extent covers) is
//! free. Freeing a segment zeroes its header and persists that before the
//! segment can be reused, so none of its old records can come back; reuse
//! writes a new header with a new generation, under which stale bytes never
//! validate.
//!
//! Version 1 headers (no span field) belong to format version 1 arenas,
//! which this build refuses at open (see `superblock`).

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use super::superblock::{u32_at, u64_at};

/// Bytes of the segment header; records start here.
pub const SEGMENT_HEADER_LEN: u64 = 64;
/// Magic of a segment header.
pub const SEGMENT_MAGIC: [u8; 8] = *b"AMBERSEG";
/// Segment format version.
pub const SEGMENT_VERSION: u32 = 2;

/// A segment's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId(pub u32);

/// Encodes a segment header (`span`: 1 for an ordinary segment, the number
/// of segments of an extent otherwise).
pub fn encode_header(index: u32, gen: u64, span: u32) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut b = [0u8; SEGMENT_HEADER_LEN as usize];
    b[0..8].copy_from_slice(&SEGMENT_MAGIC);
    b[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    b[12..16].copy_from_slice(&index.to_le_bytes());
    b[16..24].copy_from_slice(&gen.to_le_bytes());
    b[24..28].copy_from_slice(&span.to_le_bytes());
    let crc = crc32fast::hash(&b[0..28]);
    b[28..32].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Decodes a segment header: `(generation, span)`, or `None` when the
/// segment is free (zeroed, torn, or not this segment's header). The span is
/// at least 1; the caller checks that it fits in the arena.
pub fn decode_header(b: &[u8], index: u32) -> Option<(u64, u32)> {
    let b = b.get(..32)?;
    let span = u32_at(b, 24);
    if b.get(0..8)? != SEGMENT_MAGIC
        || u32_at(b, 8) != SEGMENT_VERSION
        || u32_at(b, 12) != index
        || u32_at(b, 28) != crc32fast::hash(b.get(0..28)?)
        || span == 0
    {
        return None;
    }
    Some((u64_at(b, 16), span))
}

/// Lifecycle of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// On the free list.
    Free = 0,
    /// A lane is appending to it.
    Active = 1,
    /// Full (or recovered): read-only until compaction frees it. The first
    /// segment of an extent is sealed as soon as its record is written.
    Sealed = 2,
    /// Covered by the extent starting at an earlier segment: holds record
    /// bytes, no header, no bookkeeping of its own.
    Continued = 3,
}

/// DRAM bookkeeping of one segment (all atomics: updated by appends,
/// releases and compaction without a global lock).
#[derive(Debug)]
pub struct SegmentMeta {
    state: AtomicU8,
    /// Generation of the current use.
    pub gen: AtomicU64,
    /// Segments covered: 1, or the length of the extent this segment starts
    /// (meaningful for `Active` and `Sealed` segments).
    pub span: AtomicU32,
    /// Bytes of records appended (header excluded).
    pub used: AtomicU64,
    /// Bytes of live data records (released ones subtracted).
    pub live: AtomicU64,
    /// Bytes of tombstones.
    pub tomb: AtomicU64,
    /// Smallest sequence number of a dead (released) record still in the
    /// segment, `u64::MAX` when none: decides whether tombstones elsewhere
    /// may be dropped (see the compaction module).
    pub min_dead_seq: AtomicU64,
}

impl SegmentMeta {
    /// A free segment.
    pub fn new() -> SegmentMeta {
        SegmentMeta {
            state: AtomicU8::new(State::Free as u8),
            gen: AtomicU64::new(0),
            span: AtomicU32::new(1),
            used: AtomicU64::new(0),
            live: AtomicU64::new(0),
            tomb: AtomicU64::new(0),
            min_dead_seq: AtomicU64::new(u64::MAX),
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        match self.state.load(Ordering::Acquire) {
            1 => State::Active,
            2 => State::Sealed,
            3 => State::Continued,
            _ => State::Free,
        }
    }

    /// Sets the state.
    pub fn set_state(&self, s: State) {
        self.state.store(s as u8, Ordering::Release);
    }

    /// Resets to free and empty.
    pub fn reset(&self) {
        self.used.store(0, Ordering::Relaxed);
        self.live.store(0, Ordering::Relaxed);
        self.tomb.store(0, Ordering::Relaxed);
        self.min_dead_seq.store(u64::MAX, Ordering::Relaxed);
        self.span.store(1, Ordering::Relaxed);
        self.set_state(State::Free);
    }

    /// Bytes appended but no longer live (dead data and tombstones).
    pub fn dead(&self) -> u64 {
        self.used
            .load(Ordering::Relaxed)
            .saturating_sub(self.live.load(Ordering::Relaxed))
    }
}

impl Default for SegmentMeta {
    fn default() -> Self {
        SegmentMeta::new()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_flips() {
        let h = encode_header(5, 77, 1);
        assert_eq!(decode_header(&h, 5), Some((77, 1)));
        assert_eq!(decode_header(&encode_header(5, 78, 9), 5), Some((78, 9)));
        assert_eq!(decode_header(&encode_header(5, 78, 0), 5), None);
        assert_eq!(decode_header(&h, 6), None);
        assert_eq!(decode_header(&[0; 64], 0), None);
        for i in 0..32 {
            let mut b = h;
            b[i] ^= 1;
            assert_eq!(decode_header(&b, 5), None, "byte {i}");
        }
    }
}
