//! A bounds-checked view of raw memory (a mapping or a heap buffer) shared by
//! many threads. The owner (mapping or simulator) keeps the memory alive for
//! as long as the `Region` exists.

use std::ptr::NonNull;

use crate::{Error, Result};

/// Raw memory of fixed length. Not an owner: see the module docs.
#[derive(Debug)]
pub(crate) struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a `Region` is a pointer plus a length into memory that its owner
// keeps alive and never moves; sending it to another thread changes nothing
// about that. Concurrent access follows the medium's concurrency contract
// (disjoint ranges for concurrent writes; see persist/mod.rs and UNSAFE.md).
unsafe impl Send for Region {}
// SAFETY: as above; all access goes through bounds-checked methods, and
// overlapping concurrent writes are excluded by the arena's lane protocol.
unsafe impl Sync for Region {}

impl Region {
    /// Wraps `len` bytes at `ptr`.
    ///
    /// The caller (a module of `persist`) guarantees that `ptr..ptr+len` is
    /// valid for reads and writes for the lifetime of the region.
    pub(crate) fn new(ptr: NonNull<u8>, len: usize) -> Region {
        Region { ptr, len }
    }

    /// Base pointer (for cache-line flushes and msync).
    pub(crate) fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn check(&self, offset: u64, len: usize) -> Option<usize> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(len)?;
        (end <= self.len).then_some(start)
    }

    /// Copies `data` to `offset`.
    pub(crate) fn write(&self, offset: u64, data: &[u8]) -> Result<()> {
        let start = self.check(offset, data.len()).ok_or_else(|| {
            Error::Corrupt(format!(
                "write of {} bytes at {offset} past the end ({})",
                data.len(),
                self.len
            ))
        })?;
        // SAFETY: `check` proved `start + data.len() <= self.len`, and the
        // owner keeps `ptr..ptr+len` valid and writable. `data` is a separate
        // Rust borrow, so it cannot overlap memory we only reach through the
        // raw pointer... unless it was itself obtained from `read` on this
        // region; `copy` (memmove) is used so even that case is well-defined.
        unsafe {
            std::ptr::copy(data.as_ptr(), self.ptr.as_ptr().add(start), data.len());
        }
        Ok(())
    }

    /// Borrows `len` bytes at `offset`.
    pub(crate) fn read(&self, offset: u64, len: usize) -> Option<&[u8]> {
        let start = self.check(offset, len)?;
        // SAFETY: in bounds (checked above) and valid for the region's
        // lifetime, which bounds the returned borrow. Nobody writes the range
        // while the borrow lives: the arena only hands out addresses of
        // records it finished writing and never rewrites a segment until the
        // caller freed it (the concurrency contract in persist/mod.rs).
        Some(unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(start), len) })
    }

    /// Borrows `len` bytes at `offset` as a raw sub-slice for flushing.
    /// Same bounds and validity argument as `read`.
    pub(crate) fn span(&self, offset: u64, len: u64) -> Option<&[u8]> {
        let len = usize::try_from(len).ok()?;
        self.read(offset, len)
    }
}
