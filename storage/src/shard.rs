//! One shard of one database: the index of handles, the hot slab and the
//! expiry index. The unit of locking.

use hashbrown::HashTable;

use crate::arena::Arena;
use crate::expiry::ExpiryIndex;
use crate::tier::handle::{table_hash, Handle, Target};
use crate::tier::slab::Slab;

/// A key's hashes: the full one (shard choice) and the short one kept in handles.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyHash {
    pub short: u32,
}

/// One shard.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    /// Handles of every key in the shard.
    pub index: HashTable<Handle>,
    /// Hot entries.
    pub hot: Slab,
    /// Volatile keys by deadline: `(deadline, short hash)`.
    pub expiry: ExpiryIndex,
    /// Short hashes of cold keys read recently (a key read twice is promoted).
    pub recent_cold: [u32; 8],
    /// Next slot of `recent_cold` to overwrite.
    pub recent_next: usize,
}

/// If the handle points at `key`, the key's deadline (0 = none), read with
/// the key. Compares short hashes first, then the key bytes, read from the
/// slab or the arena.
fn deadline_if_key(
    h: &Handle,
    short: u32,
    key: &[u8],
    hot: &Slab,
    arena: Option<&Arena>,
) -> Option<u64> {
    if h.short_hash() != short {
        return None;
    }
    match h.target() {
        Target::Hot(slot) => hot
            .get(slot)
            .filter(|e| &*e.key == key)
            .map(|e| e.expire_at),
        // Only the head is checksummed here (not the value): see `Arena::read_head`.
        Target::Cold(addr) => arena
            .and_then(|a| a.read_head(addr).ok())
            .filter(|r| r.key == key)
            .map(|r| r.expire_at()),
    }
}

impl Shard {
    /// The handle of `key`.
    pub(crate) fn find(&self, kh: KeyHash, key: &[u8], arena: Option<&Arena>) -> Option<Handle> {
        self.find_with_deadline(kh, key, arena).map(|(h, _)| h)
    }

    /// The handle of `key` and its deadline (0 = none), both from the one
    /// read of the entry (or record head) the key comparison makes.
    pub(crate) fn find_with_deadline(
        &self,
        kh: KeyHash,
        key: &[u8],
        arena: Option<&Arena>,
    ) -> Option<(Handle, u64)> {
        let hot = &self.hot;
        let mut deadline = 0;
        let h = self
            .index
            .find(table_hash(kh.short), |h| {
                deadline_if_key(h, kh.short, key, hot, arena)
                    .map(|d| deadline = d)
                    .is_some()
            })
            .copied()?;
        Some((h, deadline))
    }

    /// Replaces the handle equal to `old` (found by its short hash) with `new`.
    pub(crate) fn replace_handle(&mut self, old: Handle, new: Handle) -> bool {
        match self
            .index
            .find_mut(table_hash(old.short_hash()), |h| *h == old)
        {
            Some(h) => {
                *h = new;
                true
            }
            None => false,
        }
    }

    /// Whether the index holds exactly this handle.
    pub(crate) fn has_handle(&self, h: Handle) -> bool {
        self.index
            .find(table_hash(h.short_hash()), |x| *x == h)
            .is_some()
    }

    /// Removes exactly this handle from the index.
    pub(crate) fn unindex_handle(&mut self, h: Handle) -> bool {
        match self
            .index
            .find_entry(table_hash(h.short_hash()), |x| *x == h)
        {
            Ok(e) => {
                e.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Makes room for `n` more keys in the index (recovery sizes it once).
    pub(crate) fn reserve(&mut self, n: usize) {
        self.index.reserve(n, |x| table_hash(x.short_hash()));
    }

    /// Adds a handle for a key known to be absent.
    pub(crate) fn index_new(&mut self, h: Handle) {
        self.index
            .insert_unique(table_hash(h.short_hash()), h, |x| {
                table_hash(x.short_hash())
            });
    }

    /// Was this cold key read recently? Records it if not.
    pub(crate) fn read_twice(&mut self, short: u32) -> bool {
        if self.recent_cold.contains(&(short | 1 << 31)) {
            return true;
        }
        let n = self.recent_cold.len();
        if let Some(s) = self.recent_cold.get_mut(self.recent_next % n) {
            *s = short | 1 << 31;
        }
        self.recent_next = self.recent_next.wrapping_add(1);
        false
    }

    /// The deadline of the entry a handle points to (0 = none).
    pub(crate) fn deadline_of(&self, h: Handle, arena: Option<&Arena>) -> u64 {
        match h.target() {
            Target::Hot(slot) => self.hot.get(slot).map_or(0, |e| e.expire_at),
            Target::Cold(addr) => arena
                .and_then(|a| a.read_head(addr).ok())
                .map_or(0, |r| r.expire_at()),
        }
    }

    /// Number of keys.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }
}
