//! Durability: the only code in Amber that flushes CPU caches, fences or
//! calls `msync`.
//!
//! Every byte the arena stores goes through a [`Medium`]: `write` copies bytes
//! into the mapped image, `flush` starts making a range durable, `fence`
//! orders and completes the flushes issued before it, and `read` hands out a
//! borrowed view. Three backends implement it:
//!
//! * [`MappedFile`] on a DAX file (`MAP_SHARED_VALIDATE | MAP_SYNC`): stores
//!   become durable once their cache lines are written back, so `flush` runs
//!   `clwb` (else `clflushopt`, else `clflush`) over the lines and `fence`
//!   runs `sfence` (aarch64: `dc cvap` then `dsb ish`). See [`flush`].
//! * [`MappedFile`] on anything else (ext4, tmpfs on `/dev/shm`): a plain
//!   shared mapping; `flush` is `msync(MS_SYNC)` of the covering pages and
//!   `fence` is a no-op. `MAP_SYNC` is tried first and the fallback is logged.
//! * [`SimMedium`]: an in-memory power-cut simulator for tests.
//!
//! # Rules the arena relies on
//!
//! 1. **8-byte failure atomicity.** An aligned 8-byte store either reaches
//!    the media whole or not at all; anything wider can be torn at 8-byte
//!    granularity, in any order. (This is what x86 and ARM pmem guarantee;
//!    the simulator tears at exactly this granularity.) The arena therefore
//!    never relies on a multi-word write being atomic: each record and header
//!    carries a checksum, and the clean-shutdown flag is a single word.
//! 2. **Flush, then fence, then publish.** A record is written, its range is
//!    flushed and fenced, and only then is its address handed out (or, with
//!    group commit, its ticket reported durable). Nothing durable ever points
//!    at something that is not yet durable.
//! 3. **Unflushed stores may or may not survive**, wholly or in part, in any
//!    order (the CPU can evict a dirty line at any time). Recovery therefore
//!    validates everything it reads and never trusts a byte because it was
//!    written "earlier".
//!
//! # Concurrency contract
//!
//! A medium is shared by many threads through `&self`. Callers must never
//! write a byte range while another thread reads or writes an overlapping
//! range; the arena guarantees this by giving each writer lane its own
//! segment and by handing out a record's address only after it is written.
//! This is the same assumption every memory-mapped store makes (the file can
//! be changed under a mapping by another process); see `storage/UNSAFE.md`.
#![allow(unsafe_code)]

pub mod flush;
mod mapping;
mod region;
pub mod sim;
pub mod warm;

use std::fmt;

pub use flush::FlushKind;
pub use mapping::MappedFile;
pub use sim::SimMedium;

use crate::Result;

/// How stores to a medium become durable; decides the arena's commit
/// strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersistMode {
    /// Cache-line flushes make stores durable (DAX, or the simulator in its
    /// default mode): cheap enough that every append is persisted before it
    /// returns.
    CacheFlush,
    /// Page write-back via `msync` makes stores durable (a normal shared
    /// mapping): expensive, so appends are committed in groups per
    /// `arena-sync`.
    Msync,
}

impl fmt::Display for PersistMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PersistMode::CacheFlush => f.write_str("cache-flush"),
            PersistMode::Msync => f.write_str("msync"),
        }
    }
}

/// Byte-addressable storage the arena lives on. See the module docs for the
/// durability rules and the concurrency contract.
pub trait Medium: Send + Sync + fmt::Debug {
    /// Size in bytes.
    fn len(&self) -> u64;

    /// True when the medium has no bytes at all.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How stores become durable.
    fn mode(&self) -> PersistMode;

    /// A short name for logs and `INFO` (`"dax"`, `"msync"`, `"sim"`).
    fn name(&self) -> &'static str;

    /// Copies `data` to `offset`. The bytes are visible to readers at once
    /// but durable only after [`flush`](Medium::flush) and
    /// [`fence`](Medium::fence) cover them.
    fn write(&self, offset: u64, data: &[u8]) -> Result<()>;

    /// Borrows `len` bytes at `offset`, or `None` when out of bounds.
    fn read(&self, offset: u64, len: usize) -> Option<&[u8]>;

    /// Starts write-back of the range (cache-line write-back, or a
    /// synchronous `msync` of the covering pages).
    fn flush(&self, offset: u64, len: u64) -> Result<()>;

    /// Orders and completes every flush issued before it. A range is durable
    /// once a fence follows its flush.
    fn fence(&self);

    /// `flush` then `fence`: makes one range durable.
    fn persist(&self, offset: u64, len: u64) -> Result<()> {
        self.flush(offset, len)?;
        self.fence();
        Ok(())
    }

    /// Whether the mapping is a real DAX (`MAP_SYNC`) mapping.
    fn is_dax(&self) -> bool {
        false
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`; false when out of
    /// bounds. Unlike [`read`](Medium::read) it need not go through the
    /// mapping: a file reads them with `pread`, so a hole stays a hole (on a
    /// tmpfs, a load through a shared mapping allocates the page, a 2 MiB
    /// one on a `huge=advise` mount). Opening the arena reads every segment
    /// header this way, so segments never used cost no memory.
    fn read_copy(&self, offset: u64, buf: &mut [u8]) -> bool {
        match self.read(offset, buf.len()) {
            Some(b) => {
                buf.copy_from_slice(b);
                true
            }
            None => false,
        }
    }

    /// Makes the file system set aside space for `len` bytes at `offset`,
    /// so that no later store there can fault for want of it. A sparse file
    /// mapped shared has no space behind its holes: when the file system
    /// (a full `/dev/shm`, a full disk) cannot back a page on the first
    /// store to it, the kernel kills the process with `SIGBUS`. The arena
    /// reserves each segment before its first append instead, and a refusal
    /// is [`Error::ArenaFull`](crate::Error::ArenaFull), a reply like any
    /// full arena's. Media without holes (memory, DAX devices, file systems
    /// without `fallocate`) have nothing to reserve: `Ok`.
    fn reserve(&self, offset: u64, len: u64) -> Result<()> {
        let _ = (offset, len);
        Ok(())
    }

    /// A hint that `len` bytes at `offset` are about to be read in full
    /// (recovery's scan): a mapping maps them in one go instead of taking
    /// a page fault per page. Never changes data; errors are ignored.
    fn prefetch(&self, offset: u64, len: u64) {
        let _ = (offset, len);
    }
}
