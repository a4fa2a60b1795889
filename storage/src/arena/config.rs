//! Arena configuration: `pmem-path`, `pmem-size`, `persistence`,
//! `arena-sync` and the internal knobs.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::{Error, Result};

/// The largest arena supported: addresses must fit in 48 bits (see
/// [`Addr`](super::Addr)).
pub const MAX_ARENA_SIZE: u64 = 1 << 48;

/// Offset of the first segment: the superblock owns the first page.
pub const DATA_OFFSET: u64 = 4096;

/// `persistence`: what the arena is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Extra capacity only: wiped at start, never recovered, deletes write
    /// nothing.
    None,
    /// Write-through persistence: every write is made durable per
    /// [`ArenaSync`] and start-up recovers the keyspace.
    Pmem,
}

impl FromStr for Persistence {
    type Err = Error;
    fn from_str(s: &str) -> Result<Persistence> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Persistence::None),
            "pmem" => Ok(Persistence::Pmem),
            _ => Err(Error::BadArena(format!(
                "persistence must be 'none' or 'pmem', not '{s}'"
            ))),
        }
    }
}

impl fmt::Display for Persistence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Persistence::None => "none",
            Persistence::Pmem => "pmem",
        })
    }
}

/// `arena-sync`: when appends on a non-DAX (msync) mapping become durable,
/// like Redis's `appendfsync`. On a DAX mapping every append is persisted
/// before it returns, whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArenaSync {
    /// Before the reply: [`Arena::wait_durable`](super::Arena::wait_durable)
    /// blocks until the ticket is durable (group commit: one `msync` covers
    /// every waiting writer).
    Always,
    /// A background flusher makes everything durable once a second.
    EverySec,
    /// Never explicitly; the OS writes pages back when it likes.
    No,
}

impl FromStr for ArenaSync {
    type Err = Error;
    fn from_str(s: &str) -> Result<ArenaSync> {
        match s.to_ascii_lowercase().as_str() {
            "always" => Ok(ArenaSync::Always),
            "everysec" => Ok(ArenaSync::EverySec),
            "no" => Ok(ArenaSync::No),
            _ => Err(Error::BadArena(format!(
                "arena-sync must be 'always', 'everysec' or 'no', not '{s}'"
            ))),
        }
    }
}

impl fmt::Display for ArenaSync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArenaSync::Always => "always",
            ArenaSync::EverySec => "everysec",
            ArenaSync::No => "no",
        })
    }
}

/// Everything [`Arena::open`](super::Arena::open) needs.
#[derive(Debug, Clone)]
pub struct ArenaConfig {
    /// `pmem-path`: the arena file (created sparse, with parent
    /// directories, if missing).
    pub path: PathBuf,
    /// `pmem-size`: the arena's size in bytes (superblock page included).
    pub size: u64,
    /// Segment size in bytes: a multiple of 4096, at least 4096. A record up
    /// to a segment minus its 64-byte header goes into a lane's segment; a
    /// larger one gets an extent of contiguous segments of its own. An
    /// existing arena keeps the segment size it was formatted with.
    pub segment_size: u64,
    /// `persistence`.
    pub persistence: Persistence,
    /// `arena-sync`.
    pub sync: ArenaSync,
    /// Writer lanes: each lane has its own active segment, so appends in
    /// different lanes never contend. Writer ids are mapped onto lanes
    /// modulo this number.
    pub lanes: usize,
}

impl ArenaConfig {
    /// Defaults for everything but the path and size: 4 MiB segments,
    /// `persistence pmem`, `arena-sync everysec`, two lanes per core.
    pub fn new(path: impl Into<PathBuf>, size: u64) -> ArenaConfig {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        ArenaConfig {
            path: path.into(),
            size,
            segment_size: 4 << 20,
            persistence: Persistence::Pmem,
            sync: ArenaSync::EverySec,
            lanes: (cores * 2).clamp(2, 64),
        }
    }

    /// Checks the numbers before anything touches the file.
    pub fn validate(&self) -> Result<()> {
        if self.segment_size < 4096 || !self.segment_size.is_multiple_of(4096) {
            return Err(Error::BadArena(format!(
                "segment size {} must be a multiple of 4096",
                self.segment_size
            )));
        }
        if self.size > MAX_ARENA_SIZE {
            return Err(Error::BadArena(format!(
                "pmem-size {} exceeds the 256 TiB limit",
                self.size
            )));
        }
        if self.size < DATA_OFFSET + 4 * self.segment_size {
            return Err(Error::BadArena(format!(
                "pmem-size {} is too small: it must hold the superblock page and at least 4 segments of {} bytes",
                self.size, self.segment_size
            )));
        }
        if self.lanes == 0 {
            return Err(Error::BadArena("at least one writer lane is needed".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_modes() {
        assert_eq!("none".parse::<Persistence>(), Ok(Persistence::None));
        assert_eq!("PMEM".parse::<Persistence>(), Ok(Persistence::Pmem));
        assert!("disk".parse::<Persistence>().is_err());
        assert_eq!("always".parse::<ArenaSync>(), Ok(ArenaSync::Always));
        assert_eq!("everysec".parse::<ArenaSync>(), Ok(ArenaSync::EverySec));
        assert_eq!("no".parse::<ArenaSync>(), Ok(ArenaSync::No));
        assert!("sometimes".parse::<ArenaSync>().is_err());
        assert_eq!(ArenaSync::EverySec.to_string(), "everysec");
        assert_eq!(Persistence::Pmem.to_string(), "pmem");
    }

    #[test]
    fn validates_sizes() {
        let mut c = ArenaConfig::new("/tmp/x", 64 << 20);
        assert!(c.validate().is_ok());
        c.segment_size = 5000;
        assert!(c.validate().is_err());
        c.segment_size = 4096;
        c.size = 4096 * 4;
        assert!(c.validate().is_err());
    }
}
