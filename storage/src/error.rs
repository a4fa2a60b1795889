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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::OutOfMemory => f.write_str("out of memory"),
            Error::DbIndexOutOfRange => f.write_str("DB index is out of range"),
        }
    }
}

impl std::error::Error for Error {}

/// Result alias for the storage crate.
pub type Result<T> = std::result::Result<T, Error>;
