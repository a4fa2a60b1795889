//! The `list` type: a sequence of binary-safe elements.
//!
//! Every collection type offers the same small interface to the keyspace:
//! `mem_usage` (DRAM accounting), `encoding` (`OBJECT ENCODING`),
//! `is_empty` (an emptied collection's key disappears), and `encode` /
//! `decode` (its arena record value; see `crate::codec`).
//!
//! # Layout in DRAM
//!
//! A `VecDeque<Box<[u8]>>`: one 16-byte handle per element in a ring buffer,
//! each element its own exact-size allocation. Why this and not a chunked
//! deque (Redis's quicklist of listpacks):
//! * every list command Redis makes O(1) at the ends stays O(1) here
//!   (push/pop at both ends, amortized), and `LINDEX`/`LSET`/`LRANGE`'s
//!   start are O(1) instead of a walk over nodes;
//! * inserting or removing in the middle (`LINSERT`, `LREM`) moves 16-byte
//!   handles, never element bytes (quicklist moves bytes inside a node);
//! * the cost is one allocation (and its allocator rounding) per element,
//!   which is what the tiered engine is for: a large cold list lives in the
//!   arena in the compact form below, and is only expanded when promoted.
//!
//! The sum of the elements' lengths is kept up to date so `mem_usage` (called
//! after every write for DRAM accounting) is O(1) whatever the list's size.
//!
//! # Encoding name
//!
//! Redis 7.0 stores every list as a quicklist (the `listpack` encoding for
//! small lists only arrived in 7.2), so `OBJECT ENCODING` answers `quicklist`
//! for every list, whatever `list-max-listpack-size` says; that directive only
//! shapes the nodes inside the quicklist. Checked against redis-server
//! 7.0.15: `RPUSH x a` then `OBJECT ENCODING x` is `quicklist`.

use std::collections::VecDeque;

use super::journal::Journal;

/// Version byte of the arena record layout written by [`ListValue::encode`].
const RECORD_VERSION: u8 = 1;

/// Allocation overhead counted per element on top of its bytes: the
/// 16-byte handle in the ring plus the allocator's typical rounding.
const PER_ELEMENT: usize = 16 + 8;

/// A `list` value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListValue {
    items: VecDeque<Box<[u8]>>,
    /// Sum of the elements' lengths.
    bytes: usize,
    /// Changes since the last write-through (see `journal`).
    pub journal: Journal,
}

impl ListValue {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Approximate DRAM bytes used (O(1)).
    pub fn mem_usage(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.items.capacity() * std::mem::size_of::<Box<[u8]>>()
            + self.bytes
            + self.items.len() * (PER_ELEMENT - 16)
    }

    /// The encoding name `OBJECT ENCODING` reports (always `quicklist` in
    /// Redis 7.0; see the module documentation).
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    /// Whether the collection has no elements (its key must then be removed).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Appends at the head (`LPUSH`).
    pub fn push_front(&mut self, v: &[u8]) {
        self.journal.list_push(true, v);
        self.bytes += v.len();
        self.items.push_front(v.into());
    }

    /// Appends at the tail (`RPUSH`).
    pub fn push_back(&mut self, v: &[u8]) {
        self.journal.list_push(false, v);
        self.bytes += v.len();
        self.items.push_back(v.into());
    }

    /// Pushes at the head (`left`) or tail.
    pub fn push(&mut self, left: bool, v: &[u8]) {
        if left {
            self.push_front(v)
        } else {
            self.push_back(v)
        }
    }

    /// Removes the head element.
    pub fn pop_front(&mut self) -> Option<Box<[u8]>> {
        let v = self.items.pop_front()?;
        self.journal.list_pop(true);
        self.bytes -= v.len();
        Some(v)
    }

    /// Removes the tail element.
    pub fn pop_back(&mut self) -> Option<Box<[u8]>> {
        let v = self.items.pop_back()?;
        self.journal.list_pop(false);
        self.bytes -= v.len();
        Some(v)
    }

    /// Pops at the head (`left`) or tail.
    pub fn pop(&mut self, left: bool) -> Option<Box<[u8]>> {
        if left {
            self.pop_front()
        } else {
            self.pop_back()
        }
    }

    /// The element at a zero-based index from the head.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.items.get(i).map(|b| &**b)
    }

    /// The element at a Redis index (negative counts from the tail).
    pub fn get_signed(&self, i: i64) -> Option<&[u8]> {
        self.get(self.resolve(i)?)
    }

    /// A Redis index (negative from the tail) as a position, if in range.
    pub fn resolve(&self, i: i64) -> Option<usize> {
        let len = self.items.len() as i64;
        let i = if i < 0 { len.checked_add(i)? } else { i };
        (0..len).contains(&i).then_some(i as usize)
    }

    /// Replaces the element at position `i`; false when out of range.
    pub fn set(&mut self, i: usize, v: &[u8]) -> bool {
        match self.items.get_mut(i) {
            Some(slot) => {
                self.bytes = self.bytes - slot.len() + v.len();
                *slot = v.into();
                self.journal.list_set(i, v);
                true
            }
            None => false,
        }
    }

    /// Inserts `v` so that it ends at position `i` (`i == len` appends).
    pub fn insert(&mut self, i: usize, v: &[u8]) {
        let i = i.min(self.items.len());
        self.journal.list_insert(i, v);
        self.bytes += v.len();
        self.items.insert(i, v.into());
    }

    /// Removes the element at position `i`.
    pub fn remove(&mut self, i: usize) -> Option<Box<[u8]>> {
        let v = self.items.remove(i)?;
        self.journal.list_remove(i);
        self.bytes -= v.len();
        Some(v)
    }

    /// Iterates from head to tail.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + ExactSizeIterator + '_ {
        self.items.iter().map(|b| &**b)
    }

    /// Iterates over positions `start..=end` (clamped), head to tail.
    pub fn range(&self, start: usize, end: usize) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        let len = self.items.len();
        let (s, e) = if start > end || start >= len {
            (0, 0)
        } else {
            (start, end.min(len - 1) + 1)
        };
        self.items.range(s..e).map(|b| &**b)
    }

    /// Keeps only positions `start..=end` (`LTRIM`); an empty or
    /// out-of-range window empties the list.
    pub fn keep_range(&mut self, start: usize, end: usize) {
        let len = self.items.len();
        if start > end || start >= len {
            self.items.clear();
            self.bytes = 0;
            self.journal.overflow();
            return;
        }
        let end = end.min(len - 1);
        let tail = len - end - 1;
        for _ in 0..tail {
            self.pop_back();
        }
        for _ in 0..start {
            self.pop_front();
        }
    }

    /// Removes up to `count` elements equal to `v` (0: all), scanning from
    /// the head, or from the tail when `from_tail`. Returns how many went.
    pub fn remove_matching(&mut self, v: &[u8], count: usize, from_tail: bool) -> usize {
        let mut removed = 0;
        let before = self.items.len();
        if from_tail {
            let mut i = before;
            while i > 0 && (count == 0 || removed < count) {
                i -= 1;
                if self.items.get(i).is_some_and(|e| &**e == v) {
                    self.remove(i);
                    removed += 1;
                }
            }
        } else if count == 0 {
            self.journal.overflow();
            let bytes = &mut self.bytes;
            self.items.retain(|e| {
                let keep = &**e != v;
                if !keep {
                    *bytes -= e.len();
                }
                keep
            });
            removed = before - self.items.len();
        } else {
            let mut i = 0;
            while i < self.items.len() && removed < count {
                if self.items.get(i).is_some_and(|e| &**e == v) {
                    self.remove(i);
                    removed += 1;
                } else {
                    i += 1;
                }
            }
        }
        removed
    }

    /// The bytes of its arena record value, version 1. Integers are
    /// unsigned LEB128 varints (7 bits per byte, low first, high bit set
    /// on every byte but the last):
    ///
    /// | offset | size | field |
    /// |---|---|---|
    /// | 0 | 1 | version, `1` |
    /// | 1 | 1 | flags, `0` (reserved: encoding state of a later layout) |
    /// | 2 | varint | number of elements `n` |
    /// | .. | n × (varint `len` + `len` bytes) | the elements, head to tail |
    ///
    /// Nothing follows the last element. A list of three one-byte elements
    /// `a b c` is `01 00 03 01 61 01 62 01 63`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + self.bytes + self.items.len() * 2);
        out.push(RECORD_VERSION);
        out.push(0);
        put_varint(&mut out, self.items.len() as u64);
        for i in &self.items {
            put_varint(&mut out, i.len() as u64);
            out.extend_from_slice(i);
        }
        out
    }

    /// Decodes [`ListValue::encode`]'s bytes; `None` if malformed (unknown
    /// version or flags, truncated, trailing bytes, impossible counts).
    pub fn decode(b: &[u8]) -> Option<Self> {
        let (&version, b) = b.split_first()?;
        let (&flags, mut b) = b.split_first()?;
        if version != RECORD_VERSION || flags != 0 {
            return None;
        }
        let n = get_varint(&mut b)?;
        // Every element takes at least its one length byte: a count larger
        // than the bytes left is corrupt (and must not size an allocation).
        if n > b.len() as u64 {
            return None;
        }
        let mut list = ListValue {
            items: VecDeque::with_capacity(n as usize),
            bytes: 0,
            journal: Journal::default(),
        };
        for _ in 0..n {
            let len = usize::try_from(get_varint(&mut b)?).ok()?;
            let (item, rest) = b.split_at_checked(len)?;
            list.push_back(item);
            b = rest;
        }
        b.is_empty().then_some(list)
    }
}

impl<'a> FromIterator<&'a [u8]> for ListValue {
    fn from_iter<T: IntoIterator<Item = &'a [u8]>>(iter: T) -> Self {
        let mut l = ListValue::new();
        for v in iter {
            l.push_back(v);
        }
        l
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn get_varint(b: &mut &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        let bits = u64::from(byte & 0x7f);
        if shift == 63 && bits > 1 {
            return None;
        }
        v |= bits << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn list(items: &[&str]) -> ListValue {
        items.iter().map(|s| s.as_bytes()).collect()
    }

    fn items(l: &ListValue) -> Vec<String> {
        l.iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    #[test]
    fn documented_layout() {
        assert_eq!(
            list(&["a", "b", "c"]).encode(),
            [1, 0, 3, 1, b'a', 1, b'b', 1, b'c']
        );
        assert_eq!(ListValue::new().encode(), [1, 0, 0]);
        let big = ListValue::from_iter([&[7u8; 300][..]]);
        let e = big.encode();
        assert_eq!(e.get(..5), Some(&[1, 0, 1, 0xac, 0x02][..]));
    }

    #[test]
    fn malformed_records_are_refused() {
        for bad in [
            &[][..],
            &[1],
            &[2, 0, 0],
            &[1, 1, 0],
            &[1, 0, 1],
            &[1, 0, 1, 2, b'a'],
            &[1, 0, 0, 0],
            &[
                1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ],
            &[1, 0, 200, 1],
        ] {
            assert_eq!(ListValue::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn edits_keep_the_byte_count() {
        let mut l = list(&["aa", "b", "aa", "ccc", "aa"]);
        assert_eq!(l.remove_matching(b"aa", 1, true), 1);
        assert_eq!(items(&l), ["aa", "b", "aa", "ccc"]);
        assert_eq!(l.remove_matching(b"aa", 0, false), 2);
        assert_eq!(items(&l), ["b", "ccc"]);
        l.insert(1, b"x");
        l.set(0, b"yyyy");
        assert_eq!(items(&l), ["yyyy", "x", "ccc"]);
        assert_eq!(l.bytes, 8);
        l.keep_range(1, 100);
        assert_eq!(items(&l), ["x", "ccc"]);
        assert_eq!(l.bytes, 4);
        l.keep_range(5, 1);
        assert!(l.is_empty());
        assert_eq!(l.bytes, 0);
    }

    #[test]
    fn signed_indexes() {
        let l = list(&["a", "b", "c"]);
        assert_eq!(l.get_signed(-1), Some(&b"c"[..]));
        assert_eq!(l.get_signed(-3), Some(&b"a"[..]));
        assert_eq!(l.get_signed(-4), None);
        assert_eq!(l.get_signed(3), None);
        assert_eq!(l.get_signed(i64::MIN), None);
        assert_eq!(l.range(1, 99).count(), 2);
        assert_eq!(l.range(2, 1).count(), 0);
    }

    proptest! {
        #[test]
        fn round_trip(v in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..60)) {
            let l: ListValue = v.iter().map(|e| e.as_slice()).collect();
            let d = ListValue::decode(&l.encode()).expect("decodes");
            prop_assert_eq!(&d, &l);
            prop_assert_eq!(d.bytes, v.iter().map(Vec::len).sum::<usize>());
        }

        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = ListValue::decode(&b);
        }
    }
}
