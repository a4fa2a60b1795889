//! The hot tier of one shard: entries in DRAM, addressed by slot number.

use crate::arena::Addr;
use crate::value::Value;

/// Fixed DRAM overhead counted per hot entry besides key and value bytes
/// (slab slot, handle, allocator rounding), for budget accounting.
pub(crate) const ENTRY_OVERHEAD: usize = 96;

/// A key whose value lives in DRAM.
#[derive(Debug)]
pub(crate) struct HotEntry {
    /// The key.
    pub key: Box<[u8]>,
    /// The value.
    pub value: Value,
    /// Absolute deadline in Unix ms, 0 = none.
    pub expire_at: u64,
    /// Last access, seconds on the keyspace clock (LRU).
    pub access: u32,
    /// Access counter for LFU (logarithmic, like Redis's).
    pub freq: u8,
    /// Short hash (as in the handle).
    pub short: u32,
    /// The arena record of this key, if any. When `dirty` is false it holds
    /// exactly this value and deadline (in `pmem` mode: the durable copy), so
    /// demotion is free; when true it is an older version, released once the
    /// new one is written.
    pub copy: Option<Addr>,
    /// Delta records written on top of `copy` (see `crate::writeback`);
    /// `copy` plus these, in order, hold the value when `dirty` is false.
    pub chain: Option<Box<Chain>>,
    /// Modified since `copy` was written.
    pub dirty: bool,
    /// DRAM bytes charged for this entry.
    pub charged: usize,
}

/// The delta records of a hot entry, in order.
#[derive(Debug, Default)]
pub(crate) struct Chain {
    /// Sequence number of the base record (the entry's `copy`).
    pub base_seq: u64,
    /// The delta records' addresses, oldest first.
    pub deltas: Vec<Addr>,
    /// Arena bytes of the delta records.
    pub bytes: u64,
    /// The deadline the last delta recorded.
    pub expire_at: u64,
}

impl HotEntry {
    /// A new entry accessed at `clock`, with the initial LFU counter and no
    /// chain, charged nothing yet (the caller charges [`HotEntry::footprint`]
    /// now, or the guard does when it drops); `dirty` when it differs from
    /// `copy`.
    pub(crate) fn new(
        key: Box<[u8]>,
        value: Value,
        expire_at: u64,
        clock: u32,
        short: u32,
        copy: Option<Addr>,
        dirty: bool,
    ) -> HotEntry {
        HotEntry {
            key,
            value,
            expire_at,
            access: clock,
            freq: 5,
            short,
            copy,
            chain: None,
            dirty,
            charged: 0,
        }
    }

    /// Bytes this entry should be charged now.
    pub(crate) fn footprint(&self) -> usize {
        ENTRY_OVERHEAD
            + self.key.len()
            + self.value.mem_usage()
            + self.chain.as_ref().map_or(0, |c| {
                std::mem::size_of::<Chain>() + c.deltas.capacity() * std::mem::size_of::<Addr>()
            })
    }
}

/// Slots of hot entries with a free list.
#[derive(Debug, Default)]
pub(crate) struct Slab {
    slots: Vec<Option<HotEntry>>,
    free: Vec<u32>,
    len: usize,
}

impl Slab {
    /// Stores an entry and returns its slot.
    pub(crate) fn insert(&mut self, e: HotEntry) -> u32 {
        self.len += 1;
        if let Some(i) = self.free.pop() {
            if let Some(s) = self.slots.get_mut(i as usize) {
                *s = Some(e);
                return i;
            }
        }
        self.slots.push(Some(e));
        (self.slots.len() - 1) as u32
    }

    /// Removes and returns the entry in `slot`.
    pub(crate) fn remove(&mut self, slot: u32) -> Option<HotEntry> {
        let e = self.slots.get_mut(slot as usize)?.take()?;
        self.len -= 1;
        self.free.push(slot);
        if self.len == 0 {
            self.slots.clear();
            self.free.clear();
        }
        Some(e)
    }

    /// The entry in `slot`.
    pub(crate) fn get(&self, slot: u32) -> Option<&HotEntry> {
        self.slots.get(slot as usize)?.as_ref()
    }

    /// The memory of `slot`, empty or not, without reading it (for a
    /// prefetch hint: see `crate::prefetch`).
    pub(crate) fn slot_ref(&self, slot: u32) -> Option<&Option<HotEntry>> {
        self.slots.get(slot as usize)
    }

    /// The entry in `slot`, mutably.
    pub(crate) fn get_mut(&mut self, slot: u32) -> Option<&mut HotEntry> {
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Number of slots (occupied or free), for sampling.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }
}
