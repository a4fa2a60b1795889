//! One shard of one database: a hash table of entries plus its expiry index.

use hashbrown::HashTable;

use crate::expiry::ExpiryIndex;
use crate::value::Value;

/// A stored key with its value and metadata.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The key's bytes (binary safe).
    pub key: Box<[u8]>,
    /// The value.
    pub value: Value,
    /// Absolute deadline in Unix ms; 0 means no expiry.
    pub expire_at: u64,
    /// Last access, in seconds since the keyspace started (for `OBJECT IDLETIME`
    /// and LRU sampling).
    pub access: u32,
}

/// One shard: the unit of locking.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    pub table: HashTable<Entry>,
    pub expiry: ExpiryIndex,
}

impl Shard {
    /// Finds the entry for `key`.
    pub(crate) fn find(&self, hash: u64, key: &[u8]) -> Option<&Entry> {
        self.table.find(hash, |e| &*e.key == key)
    }

    /// Finds the entry for `key`, mutably.
    pub(crate) fn find_mut(&mut self, hash: u64, key: &[u8]) -> Option<&mut Entry> {
        self.table.find_mut(hash, |e| &*e.key == key)
    }

    /// Removes and returns the entry for `key`, keeping the expiry index exact.
    pub(crate) fn remove(&mut self, hash: u64, key: &[u8]) -> Option<Entry> {
        let entry = self
            .table
            .find_entry(hash, |e| &*e.key == key)
            .ok()?
            .remove()
            .0;
        if entry.expire_at != 0 {
            self.expiry.remove(entry.expire_at, hash);
        }
        Some(entry)
    }

    /// Inserts a new entry; the caller guarantees the key is absent.
    pub(crate) fn insert_new(&mut self, hash: u64, entry: Entry, hasher: impl Fn(&[u8]) -> u64) {
        if entry.expire_at != 0 {
            self.expiry.insert(entry.expire_at, hash);
        }
        self.table.insert_unique(hash, entry, |e| hasher(&e.key));
    }

    /// Changes the deadline of the entry for `key`, keeping the index exact.
    /// Returns false when the key is absent.
    pub(crate) fn set_deadline(&mut self, hash: u64, key: &[u8], deadline: u64) -> bool {
        let Some(entry) = self.table.find_mut(hash, |e| &*e.key == key) else {
            return false;
        };
        let old = std::mem::replace(&mut entry.expire_at, deadline);
        if old != 0 {
            self.expiry.remove(old, hash);
        }
        if deadline != 0 {
            self.expiry.insert(deadline, hash);
        }
        true
    }
}
