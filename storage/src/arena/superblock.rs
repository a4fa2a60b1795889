//! The superblock: the first 64 bytes of the arena (its page is reserved).
//!
//! ```text
//! offset size field
//!      0    8 magic            b"AMBERARN"
//!      8    4 format version   3 (little endian, like every integer here)
//!     12    4 mode             1 = pmem, 2 = none (capacity only)
//!     16    8 arena size       bytes, = file size
//!     24    8 segment size     bytes
//!     32    8 segment count
//!     40    8 data offset      first segment, 4096
//!     48    4 reserved         0
//!     52    4 crc32            of bytes 0..52
//!     56    8 clean word       CLEAN_MAGIC after a clean shutdown, else 0
//! ```
//!
//! Bytes 8..56 are written once, when the arena is formatted, and persisted;
//! only then is the magic word written and persisted. The magic is the
//! commit word of formatting: a zero magic means formatting never completed
//! (a crash while formatting), and the arena is formatted again. The clean word
//! is outside the checksum and is a single aligned 8-byte store, so flipping
//! it is failure-atomic and a crash while flipping cannot corrupt the
//! superblock.
//!
//! # Format versions
//!
//! * 1: 32-byte record headers; every segment header covers one segment.
//! * 2: 40-byte record headers with a key checksum (`record`), segment
//!   headers with a span (extents for records larger than a segment, see
//!   `segment`).
//!
//! * 3: delta records (record flag bit 1, see `record`). A version-2 build
//!   would take a delta for a whole value, so the version changes.
//!
//! This build reads version 3 only. An older arena is refused at open
//! with an error naming both versions (never reformatted): it has to be
//! emptied (`persistence none`, or a new file) and the data loaded again.

use super::config::{Persistence, DATA_OFFSET};
use crate::{Error, Result};

/// Magic bytes at offset 0.
pub const MAGIC: [u8; 8] = *b"AMBERARN";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 3;
/// Size of the superblock.
pub const SUPERBLOCK_LEN: usize = 64;
/// Offset of the clean-shutdown word.
pub const CLEAN_OFFSET: u64 = 56;
/// Value of the clean-shutdown word after a clean shutdown.
pub const CLEAN_MAGIC: u64 = 0x434c_4541_4e5f_5344; // "CLEAN_SD"

/// The decoded superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superblock {
    /// Whether the arena was formatted for persistence.
    pub mode: Persistence,
    /// Arena size in bytes.
    pub size: u64,
    /// Segment size in bytes.
    pub segment_size: u64,
    /// Number of segments.
    pub segment_count: u64,
    /// Whether the clean word was set.
    pub clean: bool,
}

/// What reading the superblock found.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// All zero: never formatted.
    Blank,
    /// A valid superblock.
    Valid(Superblock),
}

impl Superblock {
    /// A superblock for a fresh arena of `size` bytes.
    pub fn fresh(mode: Persistence, size: u64, segment_size: u64) -> Superblock {
        Superblock {
            mode,
            size,
            segment_size,
            segment_count: (size - DATA_OFFSET) / segment_size,
            clean: false,
        }
    }

    /// Encodes the 64 bytes.
    pub fn encode(&self) -> [u8; SUPERBLOCK_LEN] {
        let mut b = [0u8; SUPERBLOCK_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        let mode: u32 = match self.mode {
            Persistence::Pmem => 1,
            Persistence::None => 2,
        };
        b[12..16].copy_from_slice(&mode.to_le_bytes());
        b[16..24].copy_from_slice(&self.size.to_le_bytes());
        b[24..32].copy_from_slice(&self.segment_size.to_le_bytes());
        b[32..40].copy_from_slice(&self.segment_count.to_le_bytes());
        b[40..48].copy_from_slice(&DATA_OFFSET.to_le_bytes());
        let crc = crc32fast::hash(&b[0..52]);
        b[52..56].copy_from_slice(&crc.to_le_bytes());
        let clean = if self.clean { CLEAN_MAGIC } else { 0 };
        b[56..64].copy_from_slice(&clean.to_le_bytes());
        b
    }

    /// Decodes and validates; every failure is a clear error naming what is
    /// wrong.
    pub fn decode(b: &[u8]) -> Result<Found> {
        let b: &[u8; SUPERBLOCK_LEN] = b
            .get(..SUPERBLOCK_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| Error::BadArena("arena shorter than its superblock".into()))?;
        if b[0..8] == [0u8; 8] {
            // The magic word is written last when formatting, so a zero
            // magic means formatting never completed.
            return Ok(Found::Blank);
        }
        if b[0..8] != MAGIC {
            return Err(Error::BadArena(
                "not an Amber arena: bad magic in the superblock (refusing to overwrite it)".into(),
            ));
        }
        let version = u32_at(b, 8);
        if version != FORMAT_VERSION {
            let hint = if version < FORMAT_VERSION {
                " (written by an older Amber; it is not converted: start from an empty arena file)"
            } else {
                " (written by a newer Amber)"
            };
            return Err(Error::BadArena(format!(
                "arena format version {version}, this build reads version {FORMAT_VERSION}{hint}"
            )));
        }
        let crc = u32_at(b, 52);
        if crc != crc32fast::hash(&b[0..52]) {
            return Err(Error::BadArena("superblock checksum mismatch".into()));
        }
        let mode = match u32_at(b, 12) {
            1 => Persistence::Pmem,
            2 => Persistence::None,
            m => return Err(Error::BadArena(format!("unknown arena mode {m}"))),
        };
        let sb = Superblock {
            mode,
            size: u64_at(b, 16),
            segment_size: u64_at(b, 24),
            segment_count: u64_at(b, 32),
            clean: u64_at(b, 56) == CLEAN_MAGIC,
        };
        let data = u64_at(b, 40);
        if data != DATA_OFFSET
            || sb.segment_size < 4096
            || !sb.segment_size.is_multiple_of(4096)
            || sb
                .segment_count
                .checked_mul(sb.segment_size)
                .and_then(|n| n.checked_add(DATA_OFFSET))
                .is_none_or(|end| end > sb.size)
        {
            return Err(Error::BadArena(format!(
                "superblock geometry is inconsistent (size {}, segment size {}, {} segments)",
                sb.size, sb.segment_size, sb.segment_count
            )));
        }
        Ok(Found::Valid(sb))
    }
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    u32::from_le_bytes(w)
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        w.copy_from_slice(s);
    }
    u64::from_le_bytes(w)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_clean_flag() {
        let mut sb = Superblock::fresh(Persistence::Pmem, 64 << 20, 1 << 20);
        assert_eq!(sb.segment_count, 63);
        assert_eq!(Superblock::decode(&sb.encode()).unwrap(), Found::Valid(sb));
        sb.clean = true;
        assert_eq!(Superblock::decode(&sb.encode()).unwrap(), Found::Valid(sb));
        assert_eq!(Superblock::decode(&[0; 64]).unwrap(), Found::Blank);
        let mut half = sb.encode();
        half[0..8].fill(0);
        assert_eq!(Superblock::decode(&half).unwrap(), Found::Blank);
    }

    #[test]
    fn every_flipped_byte_is_an_error() {
        let good = Superblock::fresh(Persistence::Pmem, 64 << 20, 1 << 20).encode();
        for i in 0..56 {
            let mut b = good;
            b[i] ^= 0x40;
            assert!(Superblock::decode(&b).is_err(), "byte {i}");
        }
    }

    #[test]
    fn names_the_problem() {
        let mut b = Superblock::fresh(Persistence::Pmem, 64 << 20, 1 << 20).encode();
        b[0] = b'X';
        let e = Superblock::decode(&b).unwrap_err().to_string();
        assert!(e.contains("magic"), "{e}");
        let mut b = Superblock::fresh(Persistence::Pmem, 64 << 20, 1 << 20).encode();
        b[8] = 9;
        let e = Superblock::decode(&b).unwrap_err().to_string();
        assert!(e.contains("version 9"), "{e}");
        // A version-2 arena (before delta records).
        let mut b = Superblock::fresh(Persistence::Pmem, 64 << 20, 1 << 20).encode();
        b[8..12].copy_from_slice(&2u32.to_le_bytes());
        let crc = crc32fast::hash(&b[0..52]);
        b[52..56].copy_from_slice(&crc.to_le_bytes());
        let e = Superblock::decode(&b).unwrap_err().to_string();
        assert!(
            e.contains("version 2") && e.contains("reads version 3") && e.contains("older"),
            "{e}"
        );
    }
}
