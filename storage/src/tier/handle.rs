//! [`Handle`]: the 8-byte entry of a shard's index.
//!
//! ```text
//! bit 63      1 = cold (arena record), 0 = hot (slab slot)
//! bits 37..62 26 bits of the key's hash (grow the table without reading keys)
//! bits 0..36  cold: arena address / 8 (addresses are 8-byte aligned, so
//!             arenas up to 1 TiB); hot: slab slot number
//! ```
//!
//! The table hash hashbrown sees is derived from the 26 stored bits only
//! ([`table_hash`]), so a resize never touches the arena. Lookups compare the
//! 26 bits first and read the key (from DRAM or the arena) only when they
//! match, which is almost always the key itself.

use crate::arena::Addr;

/// Largest arena Amber indexes (37 bits of 8-byte units).
pub const MAX_INDEXED_ARENA: u64 = 1 << 40;

const COLD: u64 = 1 << 63;
const HASH_SHIFT: u32 = 37;
/// Bits of hash kept in a handle.
pub const HASH_BITS: u32 = 26;
const HASH_MASK: u64 = (1 << HASH_BITS) - 1;
const LOW_MASK: u64 = (1 << HASH_SHIFT) - 1;

/// A hot or cold reference to a key's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Handle(u64);

/// Where a handle points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A slot of the shard's hot slab.
    Hot(u32),
    /// A record in the arena.
    Cold(Addr),
}

impl Handle {
    /// A handle to hot slot `slot` for a key whose short hash is `h`.
    pub(crate) fn hot(slot: u32, h: u32) -> Handle {
        Handle(((h as u64 & HASH_MASK) << HASH_SHIFT) | slot as u64)
    }

    /// A handle to the arena record at `addr`.
    pub(crate) fn cold(addr: Addr, h: u32) -> Handle {
        debug_assert!(addr.get().is_multiple_of(8) && addr.get() < MAX_INDEXED_ARENA);
        Handle(COLD | ((h as u64 & HASH_MASK) << HASH_SHIFT) | ((addr.get() >> 3) & LOW_MASK))
    }

    /// The handle's bits (the index checkpoint saves them).
    pub(crate) fn raw(self) -> u64 {
        self.0
    }

    /// A cold handle from [`Handle::raw`]'s bits; `None` unless it is cold
    /// and points inside an arena of `arena_size` bytes.
    pub(crate) fn cold_from_raw(bits: u64, arena_size: u64) -> Option<Handle> {
        let h = Handle(bits);
        match h.target() {
            Target::Cold(a) if a.get() < arena_size => Some(h),
            _ => None,
        }
    }

    /// The short hash stored in the handle.
    pub(crate) fn short_hash(self) -> u32 {
        ((self.0 >> HASH_SHIFT) & HASH_MASK) as u32
    }

    /// Where the handle points.
    pub(crate) fn target(self) -> Target {
        if self.0 & COLD != 0 {
            Target::Cold(Addr::new((self.0 & LOW_MASK) << 3))
        } else {
            Target::Hot((self.0 & LOW_MASK) as u32)
        }
    }
}

/// The short hash of a full key hash.
pub(crate) fn short_hash(full: u64) -> u32 {
    (full & HASH_MASK) as u32
}

/// The hash hashbrown uses for a short hash: an odd-constant multiply, a
/// bijection that spreads the 26 bits over the whole word (hashbrown takes
/// the bucket from the low bits and its 7-bit tag from the top bits).
pub(crate) fn table_hash(short: u32) -> u64 {
    ((short as u64) | (1 << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = Handle::hot(12345, 0x3FF_FFFF);
        assert_eq!(h.target(), Target::Hot(12345));
        assert_eq!(h.short_hash(), 0x3FF_FFFF);
        let a = Addr::new(MAX_INDEXED_ARENA - 8);
        let c = Handle::cold(a, 7);
        assert_eq!(c.target(), Target::Cold(a));
        assert_eq!(c.short_hash(), 7);
        assert_eq!(std::mem::size_of::<Handle>(), 8);
    }

    #[test]
    fn table_hash_is_injective_on_samples() {
        let mut seen = std::collections::HashSet::new();
        for s in (0..(1u32 << HASH_BITS)).step_by(997) {
            assert!(seen.insert(table_hash(s)));
        }
    }
}
