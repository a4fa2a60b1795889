//! The `stream` type: an append-only log of entries (field-value pairs)
//! keyed by [`StreamId`], with consumer groups.
//!
//! # Layout in DRAM
//!
//! Entries live in one `BTreeMap<StreamId, fields>`, not in Redis's radix
//! tree of listpacks. Why a B-tree:
//! * every stream command is an ordered walk from a start ID (`XRANGE`,
//!   `XREAD`, `XREADGROUP`, trimming from the head), which a B-tree gives in
//!   O(log n) plus the walk, in both directions;
//! * appends (`XADD`, by far the most common write) land at the right edge,
//!   amortized O(log n) with no element moves; a sorted `Vec` would be as
//!   good for appends and reads but `XDEL` and trimming from the head would
//!   shift every later entry (O(n) per command);
//! * deletions free their entry at once, where Redis's listpacks keep
//!   deleted entries' bytes until their whole node goes.
//!
//! Redis's nodes are still visible to clients (approximate trimming drops
//! whole nodes only), so their shape is modelled beside the entries: a
//! second, much smaller map from each node's first ID to a
//! `listpack::Node` (see that module), kept in step by every append,
//! deletion and trim.
//!
//! Consumer groups are a `BTreeMap` by name (Redis's radix tree order), each
//! with its PEL and consumers (see `group`).
//!
//! # Journal
//!
//! Every change is a journal op: an append, an `XDEL` of one entry, a
//! trim, an `XSETID`, and the consumer-group changes (create, destroy,
//! cursor, consumer seen or created, consumer deleted, entry pending,
//! entry acknowledged). So a long stream growing by `XADD` and read by a
//! group is written as small delta records, never rewritten whole.

mod group;
mod id;
pub mod listpack;
mod rax;
mod record;

use std::collections::{btree_map, BTreeMap};
use std::ops::Bound;

pub use group::{Consumer, Group, Pending, ENTRIES_READ_UNKNOWN};
pub use id::StreamId;
pub use listpack::NodeLimits;

use super::journal::Journal;
use listpack::Node;

/// An entry's fields and values, alternating (`f1 v1 f2 v2 ...`).
pub type Fields = Box<[Box<[u8]>]>;

/// DRAM charged per entry besides its bytes: the B-tree slot (key and
/// pointer), the boxed slice of fields and one box header per field.
const PER_ENTRY: usize = 48;
/// DRAM charged per field or value besides its bytes.
const PER_FIELD: usize = 24;

/// A node as a serialization holds it: its master ID, its shape and its
/// valid entries (see [`StreamValue::from_parts`]).
pub type NodeParts = (StreamId, Node, Vec<(StreamId, Fields)>);

/// How `XTRIM` / `XADD`'s trimming options select the entries to drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trim {
    /// `MAXLEN n`: keep at most `n` entries.
    MaxLen(u64),
    /// `MINID id`: drop entries below `id`.
    MinId(StreamId),
}

/// A `stream` value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StreamValue {
    entries: BTreeMap<StreamId, Fields>,
    nodes: BTreeMap<StreamId, Node>,
    last_id: StreamId,
    max_deleted: StreamId,
    entries_added: u64,
    groups: BTreeMap<Box<[u8]>, Group>,
    /// Sum of the entries' field and value lengths.
    bytes: usize,
    /// Number of fields and values in all entries.
    fields: usize,
    /// Changes since the last write-through (see `journal`).
    pub journal: Journal,
}

impl StreamValue {
    /// An empty stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Approximate DRAM bytes used (O(groups + consumers): called after
    /// every write for DRAM accounting).
    pub fn mem_usage(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.entries.len() * PER_ENTRY
            + self.bytes
            + self.fields * PER_FIELD
            + self.nodes.len() * (std::mem::size_of::<Node>() + 32)
            + self
                .groups
                .iter()
                .map(|(n, g)| n.len() + g.mem_usage())
                .sum::<usize>()
    }

    /// The encoding name `OBJECT ENCODING` reports.
    pub fn encoding(&self) -> &'static str {
        "stream"
    }

    /// Never true: Redis keeps an emptied stream (its IDs and groups stay).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Number of entries (`XLEN`).
    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Whether the stream has no entries.
    pub fn has_no_entries(&self) -> bool {
        self.entries.is_empty()
    }

    /// The last ID generated or set (`last-generated-id`).
    pub fn last_id(&self) -> StreamId {
        self.last_id
    }

    /// The largest ID deleted by `XDEL` (`max-deleted-entry-id`).
    pub fn max_deleted(&self) -> StreamId {
        self.max_deleted
    }

    /// Entries ever added (`entries-added`).
    pub fn entries_added(&self) -> u64 {
        self.entries_added
    }

    /// The first entry's ID, `0-0` when empty (`recorded-first-entry-id`).
    pub fn first_id(&self) -> StreamId {
        self.entries.keys().next().copied().unwrap_or_default()
    }

    /// The entry `id`.
    pub fn get(&self, id: StreamId) -> Option<&Fields> {
        self.entries.get(&id)
    }

    /// The first entry.
    pub fn first(&self) -> Option<(StreamId, &Fields)> {
        self.entries.iter().next().map(|(k, v)| (*k, v))
    }

    /// The last entry.
    pub fn last(&self) -> Option<(StreamId, &Fields)> {
        self.entries.iter().next_back().map(|(k, v)| (*k, v))
    }

    /// Entries with `start <= id <= end`, in ID order (empty when
    /// `start > end`); reverse it for `XREVRANGE`.
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
    ) -> impl DoubleEndedIterator<Item = (StreamId, &Fields)> + '_ {
        let r = if start <= end {
            Some(self.entries.range(start..=end))
        } else {
            None
        };
        r.into_iter().flatten().map(|(k, v)| (*k, v))
    }

    /// Number of modelled Redis nodes (`radix-tree-keys`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Nodes of the radix tree Redis would hold for this stream's node keys
    /// (`radix-tree-nodes`).
    pub fn rax_nodes(&self) -> usize {
        rax::node_count(self.nodes.keys().copied())
    }

    /// The modelled nodes in ID order, each with its master ID (the first
    /// ID it was created with, Redis's radix tree key) and its valid
    /// entries: what a writer of Redis's node layout needs (the RDB codec).
    /// Deleted entries are not there: Amber frees them at once.
    pub fn nodes(
        &self,
    ) -> impl Iterator<Item = (StreamId, &Node, btree_map::Range<'_, StreamId, Fields>)> + '_ {
        let mut it = self.nodes.iter().peekable();
        std::iter::from_fn(move || {
            let (&master, node) = it.next()?;
            let entries = match it.peek() {
                Some((&next, _)) => self.entries.range(master..next),
                None => self.entries.range(master..),
            };
            Some((master, node, entries))
        })
    }

    /// A stream rebuilt from Redis's serialized parts (the RDB codec's
    /// loader): `nodes` by ascending master ID, each with its shape and
    /// its valid entries in ID order, and the metadata. `None`
    /// when the parts do not fit together: nodes or entries out of order,
    /// an entry outside its node or above `last_id`, a node whose valid
    /// count is not its entry count, an entry with an odd or zero number
    /// of fields and values. The groups come next ([`Self::with_groups`]).
    pub fn from_parts(
        nodes: Vec<NodeParts>,
        last_id: StreamId,
        max_deleted: StreamId,
        entries_added: u64,
    ) -> Option<Self> {
        let mut s = StreamValue {
            last_id,
            max_deleted,
            entries_added,
            ..StreamValue::default()
        };
        // The last ID (deleted entries included) of the previous node.
        let mut prev_last: Option<StreamId> = None;
        for (master, node, entries) in nodes {
            if prev_last.is_some_and(|p| p >= master)
                || node.last < master
                || node.last > last_id
                || node.valid != entries.len() as u64
            {
                return None;
            }
            prev_last = Some(node.last);
            for (id, fields) in entries {
                if s.entries.keys().next_back().is_some_and(|p| *p >= id)
                    || id < master
                    || id > node.last
                    || fields.is_empty()
                    || fields.len() % 2 != 0
                {
                    return None;
                }
                s.bytes += fields.iter().map(|b| b.len()).sum::<usize>();
                s.fields += fields.len();
                s.entries.insert(id, fields);
            }
            s.nodes.insert(master, node);
        }
        Some(s)
    }

    /// Gives a stream rebuilt by [`Self::from_parts`] its consumer groups;
    /// `None` if a pending entry's consumer does not list it or a consumer
    /// lists an entry its group does not.
    pub fn with_groups(mut self, groups: BTreeMap<Box<[u8]>, Group>) -> Option<Self> {
        for g in groups.values() {
            let listed: usize = g.consumers.values().map(|c| c.pel.len()).sum();
            let owned = g.pel.iter().all(|(id, p)| {
                g.consumers
                    .get(&p.consumer)
                    .is_some_and(|c| c.pel.contains(id))
            });
            if listed != g.pel.len() || !owned {
                return None;
            }
        }
        self.groups = groups;
        Some(self)
    }

    /// Appends an entry with `id` (which must be above [`Self::last_id`]:
    /// false, nothing done, otherwise). `fields_and_values` alternate and
    /// are not empty. Starts a node where Redis would, under `limits`.
    pub fn append(
        &mut self,
        id: StreamId,
        fields_and_values: &[&[u8]],
        limits: NodeLimits,
    ) -> bool {
        if id <= self.last_id {
            return false;
        }
        let new_node = match self.nodes.iter().next_back() {
            Some((_, node)) => node.is_full(fields_and_values, limits),
            None => true,
        };
        self.journal.stream_append(id, new_node, fields_and_values);
        self.append_in(id, fields_and_values, new_node);
        true
    }

    /// [`Self::append`] once the node is decided (also the journal's replay).
    pub(crate) fn append_in(&mut self, id: StreamId, fields_and_values: &[&[u8]], new_node: bool) {
        let fields: Vec<&[u8]> = fields_and_values.iter().step_by(2).copied().collect();
        if new_node || self.nodes.is_empty() {
            self.nodes.insert(id, Node::new(&fields, id));
        }
        if let Some((master, node)) = self.nodes.iter_mut().next_back() {
            node.add(*master, id, fields_and_values);
        }
        self.bytes += fields_and_values.iter().map(|b| b.len()).sum::<usize>();
        self.fields += fields_and_values.len();
        let boxed: Fields = fields_and_values
            .iter()
            .map(|b| Box::<[u8]>::from(*b))
            .collect();
        self.entries.insert(id, boxed);
        self.last_id = id;
        self.entries_added = self.entries_added.saturating_add(1);
    }

    /// The node holding `id`, by its first ID.
    fn node_of(&self, id: StreamId) -> Option<StreamId> {
        self.nodes.range(..=id).next_back().map(|(k, _)| *k)
    }

    /// Removes entry `id` from the map and its node's valid count;
    /// `remove_empty_node` drops a node left with no valid entry (`XDEL`).
    fn remove_entry(&mut self, id: StreamId, remove_empty_node: bool) -> bool {
        let Some(fields) = self.entries.remove(&id) else {
            return false;
        };
        self.bytes = self
            .bytes
            .saturating_sub(fields.iter().map(|b| b.len()).sum::<usize>());
        self.fields = self.fields.saturating_sub(fields.len());
        if let Some(master) = self.node_of(id) {
            if let Some(node) = self.nodes.get_mut(&master) {
                node.valid = node.valid.saturating_sub(1);
                node.deleted += 1;
                if node.valid == 0 && remove_empty_node {
                    self.nodes.remove(&master);
                }
            }
        }
        true
    }

    /// `XDEL` of one entry: false if absent. Updates the max deleted ID.
    pub fn delete(&mut self, id: StreamId) -> bool {
        if !self.remove_entry(id, true) {
            return false;
        }
        self.journal.stream_delete(id);
        if id > self.max_deleted {
            self.max_deleted = id;
        }
        true
    }

    /// Trims as Redis's `streamTrim`: whole nodes from the head, then (unless
    /// `approx`) entries inside the next node; `limit` (0: none) bounds the
    /// entries removed by whole nodes. Returns the entries removed. A trim
    /// that removes only nodes whose entries were all deleted returns 0
    /// but still changes the value (its node count): see
    /// [`Self::node_count`].
    pub fn trim(&mut self, to: Trim, approx: bool, limit: u64) -> u64 {
        let nodes = self.nodes.len();
        let n = self.trim_in(to, approx, limit);
        if n > 0 || self.nodes.len() != nodes {
            self.journal.stream_trim(to, approx, limit);
        }
        n
    }

    /// [`Self::trim`] without journaling (also the journal's replay).
    pub(crate) fn trim_in(&mut self, to: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        loop {
            if let Trim::MaxLen(max) = to {
                if self.len() <= max {
                    break;
                }
            }
            let Some((&master, node)) = self.nodes.iter().next() else {
                break;
            };
            let valid = node.valid;
            if limit != 0 && deleted.saturating_add(valid) > limit {
                break;
            }
            let remove_node = match to {
                Trim::MaxLen(max) => self.len().saturating_sub(valid) >= max,
                Trim::MinId(min) => node.last < min,
            };
            let next = self
                .nodes
                .range((Bound::Excluded(master), Bound::Unbounded))
                .next()
                .map(|(k, _)| *k);
            if remove_node {
                let doomed: Vec<StreamId> = match next {
                    Some(n) => self.entries.range(master..n).map(|(k, _)| *k).collect(),
                    None => self.entries.range(master..).map(|(k, _)| *k).collect(),
                };
                for id in doomed {
                    if let Some(f) = self.entries.remove(&id) {
                        self.bytes = self
                            .bytes
                            .saturating_sub(f.iter().map(|b| b.len()).sum::<usize>());
                        self.fields = self.fields.saturating_sub(f.len());
                    }
                }
                self.nodes.remove(&master);
                deleted += valid;
                continue;
            }
            if approx {
                break;
            }
            let ids: Vec<StreamId> = match next {
                Some(n) => self.entries.range(master..n).map(|(k, _)| *k).collect(),
                None => self.entries.range(master..).map(|(k, _)| *k).collect(),
            };
            for id in ids {
                let stop = match to {
                    Trim::MaxLen(max) => self.len() <= max,
                    Trim::MinId(min) => id >= min,
                };
                if stop {
                    break;
                }
                self.remove_entry(id, false);
                deleted += 1;
            }
            break;
        }
        deleted
    }

    /// `XSETID`: the last ID, and optionally entries-added and the max
    /// deleted ID (the caller checked them).
    pub fn set_meta(
        &mut self,
        last_id: StreamId,
        entries_added: Option<u64>,
        max_deleted: Option<StreamId>,
    ) {
        self.last_id = last_id;
        if let Some(n) = entries_added {
            self.entries_added = n;
        }
        if let Some(m) = max_deleted {
            self.max_deleted = m;
        }
        self.journal
            .stream_meta(self.last_id, self.entries_added, self.max_deleted);
    }

    /// The consumer groups by name.
    pub fn groups(&self) -> &BTreeMap<Box<[u8]>, Group> {
        &self.groups
    }

    /// The consumer group `name`.
    pub fn group(&self, name: &[u8]) -> Option<&Group> {
        self.groups.get(name)
    }

    /// `XGROUP CREATE`: a group starting after `last_id`; false if the
    /// name is taken.
    pub fn create_group(&mut self, name: &[u8], last_id: StreamId, entries_read: i64) -> bool {
        if self.groups.contains_key(name) {
            return false;
        }
        self.journal.group_create(name, last_id, entries_read);
        self.groups
            .insert(name.into(), Group::new(last_id, entries_read));
        true
    }

    /// `XGROUP DESTROY`: false if there is no such group.
    pub fn destroy_group(&mut self, name: &[u8]) -> bool {
        if self.groups.remove(name).is_none() {
            return false;
        }
        self.journal.group_destroy(name);
        true
    }

    /// Sets a group's last delivered ID and read counter (`XGROUP SETID`,
    /// a read moving the group on, `XCLAIM ... LASTID`); false if there is
    /// no such group.
    pub fn set_group_cursor(&mut self, name: &[u8], last_id: StreamId, entries_read: i64) -> bool {
        let Some(g) = self.groups.get_mut(name) else {
            return false;
        };
        g.last_id = last_id;
        g.entries_read = entries_read;
        self.journal.group_cursor(name, last_id, entries_read);
        true
    }

    /// Creates the consumer if needed and marks it seen at `now`; `None`
    /// if there is no such group, else whether it was created.
    pub fn touch_consumer(&mut self, group: &[u8], consumer: &[u8], now: u64) -> Option<bool> {
        let g = self.groups.get_mut(group)?;
        let (c, created) = g.consumer_or_create(consumer, now);
        c.seen_time = now;
        self.journal.group_consumer(group, consumer, now);
        Some(created)
    }

    /// `XGROUP DELCONSUMER`: removes the consumer and its pending entries;
    /// how many it had, `None` if there is no such group or consumer.
    pub fn delete_consumer(&mut self, group: &[u8], consumer: &[u8]) -> Option<usize> {
        let n = self.groups.get_mut(group)?.delete_consumer(consumer)?;
        self.journal.group_delete_consumer(group, consumer);
        Some(n)
    }

    /// Makes `id` pending in `group`, owned by `consumer` (which must
    /// exist: false otherwise) with this delivery time and count, moving it
    /// from its previous owner (a delivery, a re-delivery, a claim).
    pub fn set_pending(
        &mut self,
        group: &[u8],
        id: StreamId,
        consumer: &[u8],
        delivery_time: u64,
        delivery_count: u64,
    ) -> bool {
        let Some(g) = self.groups.get_mut(group) else {
            return false;
        };
        if !g.consumers.contains_key(consumer) {
            return false;
        }
        g.set_pending(id, consumer, delivery_time, delivery_count);
        self.journal
            .group_pending(group, id, consumer, delivery_time, delivery_count);
        true
    }

    /// Acknowledges `id` in `group` (`XACK`, or a claim finding the entry
    /// deleted): whether it was pending.
    pub fn ack(&mut self, group: &[u8], id: StreamId) -> bool {
        let Some(g) = self.groups.get_mut(group) else {
            return false;
        };
        if !g.ack(id) {
            return false;
        }
        self.journal.group_ack(group, id);
        true
    }

    /// Redis 7.0.15's `streamEstimateDistanceFromFirstEverEntry`: the
    /// logical read counter of `id`, or [`ENTRIES_READ_UNKNOWN`]. (Later
    /// Redis versions also refuse an `id` below the last tombstone; 7.0.15
    /// does not, checked against redis-server.)
    pub fn estimate_distance(&self, id: StreamId) -> i64 {
        if self.entries_added == 0 {
            return 0;
        }
        let added = self.entries_added as i64;
        if self.entries.is_empty() && id <= self.last_id {
            return added;
        }
        if id == self.last_id {
            return added;
        } else if id > self.last_id {
            return ENTRIES_READ_UNKNOWN;
        }
        let first = self.first_id();
        if self.max_deleted.is_zero() || self.max_deleted < first {
            let len = self.len() as i64;
            if id < first {
                return added - len;
            } else if id == first {
                return added - len + 1;
            }
        }
        ENTRIES_READ_UNKNOWN
    }

    /// Whether an XDEL tombstone lies within `start..=end`
    /// (`streamRangeHasTombstones`).
    pub fn range_has_tombstones(&self, start: StreamId, end: StreamId) -> bool {
        if self.entries.is_empty()
            || self.max_deleted.is_zero()
            || self.first_id() > self.max_deleted
        {
            return false;
        }
        start <= self.max_deleted && self.max_deleted <= end
    }

    /// The lag of `group` (`XINFO GROUPS`' `lag`): `None` when unknown.
    pub fn group_lag(&self, group: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if group.entries_read != ENTRIES_READ_UNKNOWN
            && !self.range_has_tombstones(group.last_id, StreamId::MAX)
        {
            return Some(self.entries_added as i64 - group.entries_read);
        }
        let read = self.estimate_distance(group.last_id);
        if read != ENTRIES_READ_UNKNOWN {
            return Some(self.entries_added as i64 - read);
        }
        None
    }
}

#[cfg(test)]
mod tests;
