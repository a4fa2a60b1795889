//! The calling thread's count of keyspace changes: the raw material of
//! Redis's `server.dirty`.
//!
//! A [`crate::Guard`] adds, when it drops, one per key its command really
//! changed: each entry written (set, taken with `get_mut` and not declared
//! [`crate::Guard::unchanged`], its deadline changed) and each key removed
//! (lazy expiry is not a change, as in Redis). The server reads the count
//! before and after a command: a difference of zero means the command
//! changed nothing, so it is not propagated to replicas. A plain
//! thread-local cell: no atomic operation on the write path.

use std::cell::Cell;

thread_local! {
    static CHANGES: Cell<u64> = const { Cell::new(0) };
}

/// Adds `n` changes made by the calling thread.
#[inline]
pub fn add(n: u64) {
    if n != 0 {
        CHANGES.with(|c| c.set(c.get().wrapping_add(n)));
    }
}

/// The calling thread's running count (compare two readings).
#[inline]
pub fn count() -> u64 {
    CHANGES.with(Cell::get)
}
