//! The arena record of a stream (`crate::codec` kind 8).
//!
//! Layout, version 1 (varint = LEB128, bytes = varint length + bytes, id =
//! varint ms + varint seq):
//!
//! ```text
//! version u8 = 1
//! last_id id, max_deleted id, entries_added varint
//! node count varint, then per node:
//!     first id, last id, valid varint, deleted varint, body varint,
//!     master field count varint, master fields (bytes each)
//! entry count varint, then per entry (ascending IDs):
//!     id, field-and-value count varint, fields and values (bytes each)
//! group count varint, then per group (ascending names):
//!     name bytes, last id, entries_read (i64 LE, 8 bytes),
//!     pending count varint, then per pending entry (ascending IDs):
//!         id, consumer bytes, delivery time varint, delivery count varint
//!     consumer count varint, then per consumer (ascending names):
//!         name bytes, seen time varint
//! ```
//!
//! A consumer's own PEL is rebuilt from the group's on decode. Decoding
//! refuses anything inconsistent (IDs out of order, a pending entry of an
//! unknown consumer, node counts that do not add up, trailing bytes).

use super::group::{Consumer, Group, Pending};
use super::listpack::Node;
use super::{StreamId, StreamValue};
use crate::types::set::{get_varint, put_varint};

const VERSION: u8 = 1;

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_id(out: &mut Vec<u8>, id: StreamId) {
    put_varint(out, id.ms);
    put_varint(out, id.seq);
}

/// A cursor over record bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let (v, rest) = get_varint(self.0)?;
        self.0 = rest;
        Some(v)
    }
    fn count(&mut self) -> Option<usize> {
        let n = usize::try_from(self.varint()?).ok()?;
        // Every element takes at least one byte: bound allocations.
        (n <= self.0.len()).then_some(n)
    }
    fn id(&mut self) -> Option<StreamId> {
        Some(StreamId::new(self.varint()?, self.varint()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.varint()?).ok()?;
        let (b, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(b)
    }
    fn i64(&mut self) -> Option<i64> {
        let (b, rest) = self.0.split_first_chunk::<8>()?;
        self.0 = rest;
        Some(i64::from_le_bytes(*b))
    }
}

impl StreamValue {
    /// The record value bytes (layout in this module's documentation).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.bytes + self.entries.len() * 8);
        out.push(VERSION);
        put_id(&mut out, self.last_id);
        put_id(&mut out, self.max_deleted);
        put_varint(&mut out, self.entries_added);
        put_varint(&mut out, self.nodes.len() as u64);
        for (first, n) in &self.nodes {
            put_id(&mut out, *first);
            put_id(&mut out, n.last);
            put_varint(&mut out, n.valid);
            put_varint(&mut out, n.deleted);
            put_varint(&mut out, n.body as u64);
            put_varint(&mut out, n.master_fields.len() as u64);
            for f in n.master_fields.iter() {
                put_bytes(&mut out, f);
            }
        }
        put_varint(&mut out, self.entries.len() as u64);
        for (id, fields) in &self.entries {
            put_id(&mut out, *id);
            put_varint(&mut out, fields.len() as u64);
            for f in fields.iter() {
                put_bytes(&mut out, f);
            }
        }
        put_varint(&mut out, self.groups.len() as u64);
        for (name, g) in &self.groups {
            put_bytes(&mut out, name);
            put_id(&mut out, g.last_id);
            out.extend_from_slice(&g.entries_read.to_le_bytes());
            put_varint(&mut out, g.pel.len() as u64);
            for (id, p) in &g.pel {
                put_id(&mut out, *id);
                put_bytes(&mut out, &p.consumer);
                put_varint(&mut out, p.delivery_time);
                put_varint(&mut out, p.delivery_count);
            }
            put_varint(&mut out, g.consumers.len() as u64);
            for (name, c) in &g.consumers {
                put_bytes(&mut out, name);
                put_varint(&mut out, c.seen_time);
            }
        }
        out
    }

    /// Decodes [`StreamValue::encode`]'s bytes; `None` if malformed.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let (&version, rest) = b.split_first()?;
        if version != VERSION {
            return None;
        }
        let mut r = Reader(rest);
        let mut s = StreamValue {
            last_id: r.id()?,
            max_deleted: r.id()?,
            entries_added: r.varint()?,
            ..StreamValue::default()
        };
        let mut valid_total = 0u64;
        for _ in 0..r.count()? {
            let first = r.id()?;
            let last = r.id()?;
            let valid = r.varint()?;
            let deleted = r.varint()?;
            let body = usize::try_from(r.varint()?).ok()?;
            let mut fields = Vec::new();
            for _ in 0..r.count()? {
                fields.push(Box::<[u8]>::from(r.bytes()?));
            }
            if s.nodes.keys().next_back().is_some_and(|p| *p >= first) || last < first {
                return None;
            }
            valid_total = valid_total.checked_add(valid)?;
            let node = Node {
                master_fields: fields.into(),
                last,
                valid,
                deleted,
                body,
            };
            s.nodes.insert(first, node);
        }
        for _ in 0..r.count()? {
            let id = r.id()?;
            let n = r.count()?;
            if n == 0 || n % 2 != 0 || s.entries.keys().next_back().is_some_and(|p| *p >= id) {
                return None;
            }
            let mut fields = Vec::with_capacity(n);
            for _ in 0..n {
                let f = r.bytes()?;
                s.bytes += f.len();
                fields.push(Box::<[u8]>::from(f));
            }
            s.fields += n;
            s.entries.insert(id, fields.into());
        }
        if valid_total != s.len()
            || s.last_id < s.entries.keys().next_back().copied().unwrap_or_default()
        {
            return None;
        }
        for _ in 0..r.count()? {
            let name = r.bytes()?;
            let mut g = Group::new(r.id()?, r.i64()?);
            let mut pel = Vec::new();
            for _ in 0..r.count()? {
                let id = r.id()?;
                let consumer = Box::<[u8]>::from(r.bytes()?);
                let p = Pending {
                    consumer,
                    delivery_time: r.varint()?,
                    delivery_count: r.varint()?,
                };
                pel.push((id, p));
            }
            for _ in 0..r.count()? {
                let name = r.bytes()?;
                let c = Consumer {
                    seen_time: r.varint()?,
                    pel: Default::default(),
                };
                g.consumers.insert(name.into(), c);
            }
            for (id, p) in pel {
                g.consumers.get_mut(&p.consumer)?.pel.insert(id);
                if g.pel.insert(id, p).is_some() {
                    return None;
                }
            }
            if s.groups.insert(name.into(), g).is_some() {
                return None;
            }
        }
        if !r.0.is_empty() {
            return None;
        }
        Some(s)
    }
}
