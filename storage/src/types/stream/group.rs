//! Consumer groups: a group's cursor, its pending entries list (PEL) and
//! its consumers, as Redis 7.0's `streamCG`, `streamNACK` and
//! `streamConsumer`.

use std::collections::{BTreeMap, BTreeSet};

use super::StreamId;

/// `entries-read` when it is unknown (`SCG_INVALID_ENTRIES_READ`).
pub const ENTRIES_READ_UNKNOWN: i64 = -1;

/// DRAM charged per pending entry (map node share, consumer name copy,
/// the consumer's index entry).
const PER_PENDING: usize = 96;

/// A consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    /// Last ID delivered to a consumer of the group.
    pub last_id: StreamId,
    /// Entries the group has read (a logical counter), or
    /// [`ENTRIES_READ_UNKNOWN`].
    pub entries_read: i64,
    /// Entries delivered and not yet acknowledged, by ID.
    pub pel: BTreeMap<StreamId, Pending>,
    /// The group's consumers by name (ordered like Redis's radix tree).
    pub consumers: BTreeMap<Box<[u8]>, Consumer>,
}

/// An entry delivered to a consumer and not acknowledged yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The consumer owning it.
    pub consumer: Box<[u8]>,
    /// Unix ms of its last delivery.
    pub delivery_time: u64,
    /// How many times it was delivered.
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Consumer {
    /// Unix ms the consumer was last seen (7.0's `seen-time`: any read or
    /// claim by it).
    pub seen_time: u64,
    /// IDs of its pending entries (the group's PEL holds the details).
    pub pel: BTreeSet<StreamId>,
}

impl Group {
    /// A group starting after `last_id`.
    pub fn new(last_id: StreamId, entries_read: i64) -> Self {
        Group {
            last_id,
            entries_read,
            ..Group::default()
        }
    }

    /// The consumer `name`, created (seen at `now`) if missing; the flag
    /// says whether it was created.
    pub(crate) fn consumer_or_create(&mut self, name: &[u8], now: u64) -> (&mut Consumer, bool) {
        let created = !self.consumers.contains_key(name);
        let c = self
            .consumers
            .entry(name.into())
            .or_insert_with(|| Consumer {
                seen_time: now,
                pel: BTreeSet::new(),
            });
        (c, created)
    }

    /// Removes the consumer `name` and its pending entries; the number of
    /// pending entries it had, `None` if there is no such consumer.
    pub(crate) fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        for id in &c.pel {
            self.pel.remove(id);
        }
        Some(c.pel.len())
    }

    /// Acknowledges `id`: removes it from the PEL and its consumer's;
    /// whether it was pending.
    pub(crate) fn ack(&mut self, id: StreamId) -> bool {
        let Some(p) = self.pel.remove(&id) else {
            return false;
        };
        if let Some(c) = self.consumers.get_mut(&p.consumer) {
            c.pel.remove(&id);
        }
        true
    }

    /// Makes `id` pending, owned by `consumer`, with this delivery time
    /// and count, moving it out of its previous owner's PEL.
    pub(crate) fn set_pending(&mut self, id: StreamId, consumer: &[u8], time: u64, count: u64) {
        let old = self.pel.insert(
            id,
            Pending {
                consumer: consumer.into(),
                delivery_time: time,
                delivery_count: count,
            },
        );
        if let Some(old) = old {
            if *old.consumer != *consumer {
                if let Some(c) = self.consumers.get_mut(&old.consumer) {
                    c.pel.remove(&id);
                }
            }
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }

    /// Approximate DRAM bytes used.
    pub fn mem_usage(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.pel.len() * PER_PENDING
            + self.consumers.keys().map(|n| 64 + n.len()).sum::<usize>()
    }
}
