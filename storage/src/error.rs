//! The storage crate's one error type.

use std::fmt;

/// Everything the storage layer can refuse.
///
/// The server maps each variant to a Redis error reply; storage never formats
/// protocol text itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// No room left for the write under the configured memory limits
    /// (Redis answers `-OOM command not allowed when used memory > 'maxmemory'.`).
    OutOfMemory,
    /// The database index is outside `0..DB_COUNT`.
    DbIndexOutOfRange,
    /// The persistent-memory arena has no free segment left for the write
    /// (for a record larger than a segment: no run of contiguous free
    /// segments long enough, even if enough segments are free in total).
    ArenaFull,
    /// A record in the arena failed its checksum or bounds check.
    Corrupt(String),
    /// An I/O call (open, mmap, msync, ...) failed; the text says which.
    Io(String),
    /// The arena file cannot be used as configured (wrong magic, version or
    /// size, truncated, ...): a start-up error, never a silent wipe.
    BadArena(String),
    /// A record (header + key + value) is larger than the whole arena, or
    /// its key or value is 4 GiB or more. (Records larger than a segment are
    /// stored in extents of contiguous segments.)
    RecordTooLarge,
    /// An arena segment still holds live records and cannot be freed.
    SegmentInUse,
    /// A snapshot already runs (one at a time: see `crate::snapshot`).
    SnapshotRunning,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::OutOfMemory => f.write_str("out of memory"),
            Error::DbIndexOutOfRange => f.write_str("DB index is out of range"),
            Error::ArenaFull => f.write_str("arena full"),
            Error::Corrupt(what) => write!(f, "arena corrupt: {what}"),
            Error::Io(what) => write!(f, "arena I/O error: {what}"),
            Error::BadArena(what) => write!(f, "unusable arena: {what}"),
            Error::RecordTooLarge => f.write_str("record larger than the arena"),
            Error::SegmentInUse => f.write_str("arena segment still holds live records"),
            Error::SnapshotRunning => f.write_str("a snapshot is already running"),
        }
    }
}

impl std::error::Error for Error {}

/// Result alias for the storage crate.
pub type Result<T> = std::result::Result<T, Error>;
