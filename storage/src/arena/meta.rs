//! Metadata records: named blobs of the server kept in the arena beside the
//! keys (the function libraries: see `docs/ARCHITECTURE.md`), so that state
//! which is not a key survives a restart, a crash or a power cut like any
//! acknowledged write.
//!
//! # Format
//!
//! A metadata record is an ordinary record (see `record`: its header has the
//! record version and its crc32 covers everything below) with
//!
//! ```text
//! db        255 (META_DB: outside the keyspace's databases 0..16)
//! kind      0x4D (META_KIND, 'M')
//! flags     0 (never a tombstone or a delta)
//! expire-at 0
//! key       the blob's name
//! value     offset size field
//!                0    1 version    1 (META_VERSION)
//!                1    7 reserved   0
//!                8    . the blob, opaque to the arena
//! ```
//!
//! # Newest wins
//!
//! [`Arena::put_meta`] appends a new record for the name, makes it durable
//! (whatever `arena-sync` says: these writes are rare), and only then
//! releases the previous record of the name. Recovery keeps the record with
//! the highest sequence number per `(db, key)` as for every key, so a power
//! cut at any persist point leaves the old blob (the new record is torn or
//! missing, and the old one was not yet released, let alone compacted away)
//! or the new one, never a mix: a record is all or nothing.
//!
//! # Finding them again
//!
//! * The recovery scan treats them as keys of database 255; its report
//!   phase gives the winners to this table instead of the caller's visitor,
//!   so the keyspace never sees them (no `DBSIZE`, `SCAN`, eviction...).
//! * The index checkpoint of a clean shutdown saves [`Arena::meta_addrs`];
//!   [`Arena::resume`] verifies each of those records (checksum, db, kind,
//!   version) before it accepts the checkpoint, so a bad entry means a scan,
//!   never a lost blob.
//!
//! # Compaction
//!
//! A metadata record is live like a key's record: its segment is freed only
//! once the compactor moved it with [`Arena::relocate_meta`] (same sequence
//! number, as [`Arena::relocate`]).

use std::collections::HashMap;

use super::record::{Header, RecordRef};
use super::{Addr, Arena, Persistence, Strategy};
use crate::{Error, Result};

/// The database index of metadata records (the keyspace has 16).
pub const META_DB: u8 = 255;
/// The kind byte of metadata records.
pub const META_KIND: u8 = 0x4D;
/// The metadata value format version this build writes and reads.
pub const META_VERSION: u8 = 1;
/// Bytes before the blob in a metadata record's value.
const PREFIX_LEN: usize = 8;

/// The blob of a metadata record, if the record is one this build reads.
fn blob_of<'a>(rec: &RecordRef<'a>) -> Option<&'a [u8]> {
    if rec.db() != META_DB || rec.kind() != META_KIND || rec.header.flags != 0 {
        return None;
    }
    let (prefix, blob) = rec.value.split_at_checked(PREFIX_LEN)?;
    (prefix.first() == Some(&META_VERSION)
        && prefix.get(1..).is_some_and(|r| r.iter().all(|b| *b == 0)))
    .then_some(blob)
}

/// The names of the newest metadata records and where they are.
pub(super) type MetaTable = HashMap<Vec<u8>, Addr>;

impl Arena {
    /// Stores `blob` as the metadata named `name`, replacing the previous
    /// one, durable when this returns (see the module docs). Only in
    /// `persistence pmem` mode ([`Error::BadArena`] otherwise).
    /// [`Error::ArenaFull`] / [`Error::RecordTooLarge`] leave the previous
    /// blob in place.
    pub fn put_meta(&self, name: &[u8], blob: &[u8]) -> Result<()> {
        let inner = &*self.inner;
        if inner.persistence != Persistence::Pmem {
            return Err(Error::BadArena(
                "metadata records need persistence pmem".into(),
            ));
        }
        let mut table = inner.meta.lock();
        let mut prefix = [0u8; PREFIX_LEN];
        prefix[0] = META_VERSION;
        let header = Header {
            kind: META_KIND,
            flags: 0,
            db: META_DB,
            key_len: 0,
            value_len: 0,
            expire_at: 0,
            seq: 0,
        };
        let (addr, _) = inner.append(0, header, name, &[&prefix, blob], None, false)?;
        // Durable before the old record is released (and could be
        // compacted away) and before the caller replies.
        let durable = match inner.strategy {
            Strategy::Group => inner.sync_all(),
            Strategy::Immediate | Strategy::Off => inner.check_poison(),
        };
        if let Err(e) = durable {
            let _ = inner.release(addr);
            return Err(e);
        }
        if let Some(old) = table.insert(name.to_vec(), addr) {
            if let Err(e) = inner.release(old) {
                tracing::warn!(%old, error = %e, "arena: release of an old metadata record failed");
            }
        }
        Ok(())
    }

    /// The metadata named `name`, if any was stored (and recovered).
    /// [`Error::Corrupt`] when its record no longer checks.
    pub fn meta(&self, name: &[u8]) -> Result<Option<Vec<u8>>> {
        let table = self.inner.meta.lock();
        let Some(&addr) = table.get(name) else {
            return Ok(None);
        };
        let rec = self.inner.read(addr)?;
        blob_of(&rec)
            .map(|b| Some(b.to_vec()))
            .ok_or_else(|| Error::Corrupt(format!("metadata record at {addr} is not one")))
    }

    /// Where the newest record of the metadata named `name` is.
    pub fn meta_addr(&self, name: &[u8]) -> Option<Addr> {
        self.inner.meta.lock().get(name).copied()
    }

    /// The addresses of every metadata record in use (for the index
    /// checkpoint).
    pub fn meta_addrs(&self) -> Vec<Addr> {
        let mut v: Vec<Addr> = self.inner.meta.lock().values().copied().collect();
        v.sort_unstable();
        v
    }

    /// Compaction: if `addr` is the record of some metadata in use, moves
    /// it (as [`Arena::relocate`]) and points the table at the copy.
    /// Returns whether it did.
    pub fn relocate_meta(&self, addr: Addr) -> Result<bool> {
        let mut table = self.inner.meta.lock();
        let Some(slot) = table.values_mut().find(|a| **a == addr) else {
            return Ok(false);
        };
        *slot = self.relocate(addr)?;
        Ok(true)
    }

    /// Reads and checks the metadata records a checkpoint lists: the table
    /// [`Arena::resume`] installs, or why the checkpoint must not be used.
    pub(super) fn check_meta(&self, addrs: &[Addr]) -> Result<MetaTable> {
        let mut table = MetaTable::with_capacity(addrs.len());
        for &addr in addrs {
            let rec = self.inner.read(addr)?;
            if blob_of(&rec).is_none() {
                return Err(Error::Corrupt(format!("{addr} is not a metadata record")));
            }
            if table.insert(rec.key.to_vec(), addr).is_some() {
                return Err(Error::Corrupt("two metadata records of one name".into()));
            }
        }
        Ok(table)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_version_1_metadata_records_have_a_blob() {
        let h = Header {
            kind: META_KIND,
            flags: 0,
            db: META_DB,
            key_len: 4,
            value_len: 11,
            expire_at: 0,
            seq: 7,
        };
        let value = [&[META_VERSION, 0, 0, 0, 0, 0, 0, 0][..], b"abc"];
        let bytes = super::super::record::encode(3, &h, b"name", &value);
        let rec = RecordRef::decode(Addr::new(4160), 3, &bytes).unwrap();
        assert_eq!(blob_of(&rec), Some(&b"abc"[..]));
        for (db, kind, version) in [(0, META_KIND, 1), (META_DB, 1, 1), (META_DB, META_KIND, 2)] {
            let h = Header { db, kind, ..h };
            let value = [&[version, 0, 0, 0, 0, 0, 0, 0][..], b"abc"];
            let bytes = super::super::record::encode(3, &h, b"name", &value);
            let rec = RecordRef::decode(Addr::new(4160), 3, &bytes).unwrap();
            assert_eq!(blob_of(&rec), None, "db {db} kind {kind} version {version}");
        }
    }
}
