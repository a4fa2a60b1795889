//! The `set` type: an unordered collection of distinct binary-safe members.
//!
//! Every collection type offers the same small interface to the keyspace:
//! `mem_usage` (DRAM accounting), `encoding` (`OBJECT ENCODING`),
//! `is_empty` (an emptied collection's key disappears), and `encode` /
//! `decode` (its arena record value; see `crate::codec`).
//!
//! # In DRAM
//!
//! Redis 7.0 keeps a set as an `intset` (a sorted array of integers) while
//! every member is a canonical 64-bit integer and there are at most
//! `set-max-intset-entries` of them, and as a `hashtable` otherwise (7.0 has
//! no listpack sets). `OBJECT ENCODING` and the order of `SMEMBERS` on an
//! intset (ascending) are observable, so Amber keeps the same two shapes:
//!
//! * [`SetValue`] in intset form is a sorted `Vec<i64>`: 8 bytes a member,
//!   binary search for membership, and ascending iteration for free.
//! * in hashtable form it is an [`Indexed`] table: the members in a `Vec`
//!   (one boxed slice each) plus a `hashbrown::HashTable<u32>` of positions
//!   into it. Removal swaps the last member into the hole, so positions stay
//!   dense; that gives O(1) uniform random picks (`SPOP`, `SRANDMEMBER`)
//!   and a scan cursor that survives removals (see [`Indexed::scan`]).
//!
//! The thresholds are the server's configuration: the methods that may
//! convert take them as arguments, so this module knows nothing of config.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use rand::Rng;

use super::journal::Journal;

/// Format version of the set record layout.
const VERSION: u8 = 1;
/// Record encoding byte: intset.
const ENC_INTSET: u8 = 0;
/// Record encoding byte: hashtable.
const ENC_TABLE: u8 = 1;

/// An element of an [`Indexed`] table: something with a byte-string key.
pub trait Keyed {
    /// The bytes the element is found by.
    fn key(&self) -> &[u8];
    /// Heap bytes the element owns.
    fn heap_bytes(&self) -> usize;
}

impl Keyed for Box<[u8]> {
    fn key(&self) -> &[u8] {
        self
    }
    fn heap_bytes(&self) -> usize {
        self.len()
    }
}

/// A member of a hashtable set or a field of a hashtable hash: up to
/// [`INLINE_KEY`] bytes inside the table's element itself, longer ones on
/// the heap. A lookup compares the key bytes after finding the element; a
/// boxed key put them on a cache line of their own, whose miss was 17% of
/// `SADD`'s samples on a 100k-member set. `redis-benchmark`'s members
/// (`element:000000012345`, 20 bytes) and most real ones (ids, short
/// names) fit, and the allocation per key is gone too.
pub type InlineKey = smallvec::SmallVec<[u8; INLINE_KEY]>;

/// Longest key an [`InlineKey`] holds without a heap allocation (the
/// element is then 32 bytes, where a `Box<[u8]>` is 16 plus the heap
/// block).
pub const INLINE_KEY: usize = 24;
const _: () = assert!(std::mem::size_of::<InlineKey>() == 32);

impl Keyed for InlineKey {
    fn key(&self) -> &[u8] {
        self
    }
    fn heap_bytes(&self) -> usize {
        if self.spilled() {
            self.capacity()
        } else {
            0
        }
    }
}

/// Elements in a dense `Vec` with a hash index of their positions: O(1)
/// lookup, insertion, removal (by swapping the last element into the hole)
/// and uniform random choice. Shared by the hashtable forms of sets and hashes.
#[derive(Clone, Default)]
pub struct Indexed<T> {
    items: Vec<T>,
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// Sum of the elements' `heap_bytes() + 8`, kept up to date by every
    /// change so that `heap_bytes` (called after each write for the DRAM
    /// budget) is O(1), not a walk over a big collection.
    element_bytes: usize,
}

impl<T: std::fmt::Debug> std::fmt::Debug for Indexed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.items.iter()).finish()
    }
}

impl<T: Keyed> Indexed<T> {
    /// An empty table with room for `n` elements.
    pub fn with_capacity(n: usize) -> Self {
        Indexed {
            items: Vec::with_capacity(n),
            table: HashTable::with_capacity(n),
            hasher: DefaultHashBuilder::default(),
            element_bytes: 0,
        }
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The elements in position order.
    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// Position of the element with this key.
    pub fn position(&self, key: &[u8]) -> Option<usize> {
        let items = &self.items;
        self.table
            .find(self.hash(key), |&i| {
                items.get(i as usize).is_some_and(|e| e.key() == key)
            })
            .map(|&i| i as usize)
    }

    /// The element with this key.
    pub fn get(&self, key: &[u8]) -> Option<&T> {
        self.position(key).and_then(|i| self.items.get(i))
    }

    /// Replaces the element with `item`'s key by `item`; returns the old
    /// one, or gives `item` back when no element has its key.
    pub fn replace(&mut self, item: T) -> Result<T, T> {
        let Some(slot) = self
            .position(item.key())
            .and_then(|i| self.items.get_mut(i))
        else {
            return Err(item);
        };
        self.element_bytes = self.element_bytes - slot.heap_bytes() + item.heap_bytes();
        Ok(std::mem::replace(slot, item))
    }

    /// Adds an element whose key is known to be absent.
    pub fn push_new(&mut self, item: T) {
        let pos = self.items.len() as u32;
        let h = self.hash(item.key());
        let (items, hasher) = (&self.items, &self.hasher);
        self.table.insert_unique(h, pos, |&i| {
            items
                .get(i as usize)
                .map_or(0, |e| hasher.hash_one(e.key()))
        });
        self.element_bytes += item.heap_bytes() + 8;
        self.items.push(item);
    }

    /// Removes and returns the element with this key.
    pub fn remove(&mut self, key: &[u8]) -> Option<T> {
        let i = self.position(key)?;
        self.remove_at(i)
    }

    /// Removes and returns the element at position `i`; the last element
    /// takes its place.
    pub fn remove_at(&mut self, i: usize) -> Option<T> {
        let key_hash = self.hash(self.items.get(i)?.key());
        if let Ok(e) = self.table.find_entry(key_hash, |&p| p as usize == i) {
            e.remove();
        }
        let last = self.items.len() - 1;
        if i != last {
            let moved_hash = self.hash(self.items.get(last)?.key());
            if let Some(p) = self.table.find_mut(moved_hash, |&p| p as usize == last) {
                *p = i as u32;
            }
        }
        let item = self.items.swap_remove(i);
        self.element_bytes -= item.heap_bytes() + 8;
        if self.items.len() * 4 < self.items.capacity() && self.items.capacity() > 16 {
            self.items.shrink_to(self.items.len() * 2);
            let (items, hasher) = (&self.items, &self.hasher);
            self.table.shrink_to(items.len() * 2, |&p| {
                items
                    .get(p as usize)
                    .map_or(0, |e| hasher.hash_one(e.key()))
            });
        }
        Some(item)
    }

    /// A uniformly random element's position.
    pub fn random_position(&self, rng: &mut impl Rng) -> Option<usize> {
        (!self.items.is_empty()).then(|| rng.gen_range(0..self.items.len()))
    }

    /// One step of a scan. Positions are visited from the highest down, and
    /// the cursor is the number of positions still to visit (0 starts a new
    /// scan at the top, and a returned 0 ends it). Because removal moves the
    /// *last* element into the hole and additions append, an element present
    /// for the whole scan is always visited: it is either still below the
    /// cursor or was moved from the visited top into the unvisited bottom
    /// (then it is returned twice, which SCAN allows). Returns the next
    /// cursor and the positions visited, highest first.
    pub fn scan(&self, cursor: u64, count: usize) -> (u64, std::ops::Range<usize>) {
        let len = self.items.len();
        let top = if cursor == 0 {
            len
        } else {
            usize::try_from(cursor).map_or(len, |c| c.min(len))
        };
        let bottom = top.saturating_sub(count.max(1));
        (bottom as u64, bottom..top)
    }

    /// Bytes of the elements' own allocations, plus 8 per element: an upper
    /// bound of their length-prefixed encoding (varints of lengths below 2^56).
    pub fn element_bytes(&self) -> usize {
        self.element_bytes
    }

    /// Approximate heap bytes of the table.
    pub fn heap_bytes(&self) -> usize {
        self.items.capacity() * std::mem::size_of::<T>()
            + self.table.capacity() * (std::mem::size_of::<u32>() + 1)
            + self.element_bytes
    }
}

/// One member as stored: an integer of an intset or the bytes of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member<'a> {
    /// An intset member.
    Int(i64),
    /// A hashtable member.
    Bytes(&'a [u8]),
}

impl Member<'_> {
    /// The member's bytes (integers in decimal).
    pub fn to_vec(self) -> Vec<u8> {
        match self {
            Member::Int(i) => i.to_string().into_bytes(),
            Member::Bytes(b) => b.to_vec(),
        }
    }
}

impl Member<'_> {
    /// An owned copy.
    pub fn to_buf(self) -> MemberBuf {
        match self {
            Member::Int(i) => MemberBuf::Int(i),
            Member::Bytes(b) => MemberBuf::Bytes(b.into()),
        }
    }
}

/// An owned [`Member`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberBuf {
    /// An integer.
    Int(i64),
    /// Bytes.
    Bytes(Box<[u8]>),
}

impl MemberBuf {
    /// The borrowed form.
    pub fn as_member(&self) -> Member<'_> {
        match self {
            MemberBuf::Int(i) => Member::Int(*i),
            MemberBuf::Bytes(b) => Member::Bytes(b),
        }
    }
}

/// Writes `i` in decimal into `buf`; returns the digits.
fn int_text(i: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut n = i.unsigned_abs();
    let mut at = buf.len();
    loop {
        at -= 1;
        if let Some(b) = buf.get_mut(at) {
            *b = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        at -= 1;
        if let Some(b) = buf.get_mut(at) {
            *b = b'-';
        }
    }
    buf.get(at..).unwrap_or_default()
}

#[derive(Clone)]
enum Repr {
    Intset(Vec<i64>),
    Table(Indexed<InlineKey>),
}

/// A `set` value.
#[derive(Clone)]
pub struct SetValue {
    repr: Repr,
    /// Changes since the last write-through (see `journal`).
    pub journal: Journal,
}

impl Default for SetValue {
    fn default() -> Self {
        SetValue {
            repr: Repr::Intset(Vec::new()),
            journal: Journal::default(),
        }
    }
}

impl std::fmt::Debug for SetValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.repr {
            Repr::Intset(v) => f.debug_tuple("Intset").field(v).finish(),
            Repr::Table(t) => f.debug_tuple("Table").field(t).finish(),
        }
    }
}

/// Sets are equal when they have the same encoding and the same members.
impl PartialEq for SetValue {
    fn eq(&self, other: &Self) -> bool {
        match (&self.repr, &other.repr) {
            (Repr::Intset(a), Repr::Intset(b)) => a == b,
            (Repr::Table(a), Repr::Table(b)) => {
                a.len() == b.len() && a.items().iter().all(|m| b.position(m).is_some())
            }
            _ => false,
        }
    }
}

/// Parses a canonical signed 64-bit decimal the way Redis's `string2ll`
/// does (no sign `+`, no leading zeros, no spaces, `-0` refused): exactly the
/// strings an intset can hold.
pub fn parse_int(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let (neg, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    match digits {
        [] => return None,
        [b'0'] => return (!neg).then_some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        let d = i64::from(c - b'0');
        v = if neg {
            v.checked_mul(10)?.checked_sub(d)?
        } else {
            v.checked_mul(10)?.checked_add(d)?
        };
    }
    Some(v)
}

/// `set-max-intset-entries` as Redis applies it (capped at 2^30).
fn intset_cap(max_intset: usize) -> usize {
    max_intset.min(1 << 30)
}

impl SetValue {
    /// An empty set shaped for its first member, as Redis's `setTypeCreate`:
    /// an intset if `first` is an integer, a hashtable otherwise.
    pub fn new_for(first: &[u8]) -> Self {
        if parse_int(first).is_some() {
            SetValue::default()
        } else {
            SetValue {
                repr: Repr::Table(Indexed::with_capacity(1)),
                journal: Journal::default(),
            }
        }
    }

    /// Approximate DRAM bytes used.
    pub fn mem_usage(&self) -> usize {
        std::mem::size_of::<Self>()
            + match &self.repr {
                Repr::Intset(v) => v.capacity() * 8,
                Repr::Table(t) => t.heap_bytes(),
            }
    }

    /// The encoding name `OBJECT ENCODING` reports.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Intset(_) => "intset",
            Repr::Table(_) => "hashtable",
        }
    }

    /// Whether the set is in intset form.
    pub fn is_intset(&self) -> bool {
        matches!(self.repr, Repr::Intset(_))
    }

    /// Whether the collection has no elements (its key must then be removed).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Intset(v) => v.len(),
            Repr::Table(t) => t.len(),
        }
    }

    /// Whether `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.repr {
            Repr::Intset(v) => parse_int(member).is_some_and(|i| v.binary_search(&i).is_ok()),
            Repr::Table(t) => t.position(member).is_some(),
        }
    }

    /// Whether `m` is in the set (integers are compared as integers on an
    /// intset, as their decimal text on a hashtable).
    pub fn contains_member(&self, m: Member<'_>) -> bool {
        match (m, &self.repr) {
            (Member::Int(i), Repr::Intset(v)) => v.binary_search(&i).is_ok(),
            (Member::Int(i), Repr::Table(t)) => t.position(int_text(i, &mut [0; 20])).is_some(),
            (Member::Bytes(b), _) => self.contains(b),
        }
    }

    /// [`SetValue::add`] for a [`Member`].
    pub fn add_member(&mut self, m: Member<'_>, max_intset: usize) -> bool {
        match m {
            Member::Int(i) => self.add(int_text(i, &mut [0; 20]), max_intset),
            Member::Bytes(b) => self.add(b, max_intset),
        }
    }

    /// [`SetValue::remove`] for a [`Member`].
    pub fn remove_member(&mut self, m: Member<'_>) -> bool {
        match m {
            Member::Int(i) => self.remove(int_text(i, &mut [0; 20])),
            Member::Bytes(b) => self.remove(b),
        }
    }

    /// Converts to the hashtable form (never back, as Redis).
    pub fn convert_to_table(&mut self) {
        if let Repr::Intset(v) = &self.repr {
            let mut t = Indexed::with_capacity(v.len() + 1);
            for i in v {
                t.push_new(InlineKey::from_slice(i.to_string().as_bytes()));
            }
            self.repr = Repr::Table(t);
            self.journal.overflow();
        }
    }

    /// Adds `member`; true if it was not there. Converts an intset to a
    /// hashtable when `member` is not an integer or the intset would grow
    /// past `max_intset` members (`set-max-intset-entries`).
    pub fn add(&mut self, member: &[u8], max_intset: usize) -> bool {
        let added = self.add_unjournaled(member, max_intset);
        if added {
            self.journal.set_add(member);
        }
        added
    }

    fn add_unjournaled(&mut self, member: &[u8], max_intset: usize) -> bool {
        if let Repr::Intset(v) = &mut self.repr {
            match parse_int(member) {
                Some(i) => {
                    let Err(at) = v.binary_search(&i) else {
                        return false;
                    };
                    v.insert(at, i);
                    if v.len() > intset_cap(max_intset) {
                        self.convert_to_table();
                    }
                    return true;
                }
                None => self.convert_to_table(),
            }
        }
        match &mut self.repr {
            Repr::Table(t) => {
                if t.position(member).is_some() {
                    return false;
                }
                t.push_new(InlineKey::from_slice(member));
                true
            }
            Repr::Intset(_) => false,
        }
    }

    /// Removes `member`; true if it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        let removed = match &mut self.repr {
            Repr::Intset(v) => match parse_int(member).map(|i| v.binary_search(&i)) {
                Some(Ok(at)) => {
                    v.remove(at);
                    true
                }
                _ => false,
            },
            Repr::Table(t) => t.remove(member).is_some(),
        };
        if removed {
            self.journal.set_remove(member);
        }
        removed
    }

    /// The member at position `i` (intset: ascending order).
    pub fn at(&self, i: usize) -> Option<Member<'_>> {
        match &self.repr {
            Repr::Intset(v) => v.get(i).map(|&n| Member::Int(n)),
            Repr::Table(t) => t.items().get(i).map(|b| Member::Bytes(b)),
        }
    }

    /// The members in encoding order: ascending for an intset, the table's
    /// own order for a hashtable.
    pub fn iter(&self) -> impl Iterator<Item = Member<'_>> + '_ {
        (0..self.len()).filter_map(move |i| self.at(i))
    }

    /// A uniformly random member.
    pub fn random(&self, rng: &mut impl Rng) -> Option<Member<'_>> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        self.at(rng.gen_range(0..n))
    }

    /// Removes and returns a uniformly random member.
    pub fn pop_random(&mut self, rng: &mut impl Rng) -> Option<Vec<u8>> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        let i = rng.gen_range(0..n);
        let popped = match &mut self.repr {
            Repr::Intset(v) => Some(v.remove(i).to_string().into_bytes()),
            Repr::Table(t) => t.remove_at(i).map(InlineKey::into_vec),
        };
        if let Some(m) = &popped {
            self.journal.set_remove(m);
        }
        popped
    }

    /// One `SSCAN` step from `cursor`, visiting about `count` members: an
    /// intset returns everything at once with cursor 0 (as Redis does for
    /// its compact encodings); a hashtable is scanned by [`Indexed::scan`].
    pub fn scan(&self, cursor: u64, count: usize) -> (u64, Vec<Member<'_>>) {
        match &self.repr {
            Repr::Intset(v) => (0, v.iter().map(|&i| Member::Int(i)).collect()),
            Repr::Table(t) => {
                let (next, range) = t.scan(cursor, count);
                let items = t.items();
                let found = range
                    .rev()
                    .filter_map(|i| items.get(i).map(|b| Member::Bytes(b)))
                    .collect();
                (next, found)
            }
        }
    }

    /// The bytes of its arena record value.
    ///
    /// Layout (all integers little-endian):
    ///
    /// | offset | size | field |
    /// |---|---|---|
    /// | 0 | 1 | format version, `1` |
    /// | 1 | 1 | encoding: `0` intset, `1` hashtable |
    /// | 2 | 4 | member count `n` (u32) |
    /// | 6 | ... | intset: `n` × i64 in strictly ascending order; hashtable: `n` × (length as LEB128 varint, member bytes) in table order |
    ///
    /// Nothing follows the last member. The encoding byte keeps
    /// `OBJECT ENCODING` stable across demotion (a hashtable of integers
    /// stays a hashtable, as in Redis).
    pub fn encode(&self) -> Vec<u8> {
        let n = self.len();
        // Sized up front: a big set's encoding grown by doubling was copied
        // several times over.
        let body = match &self.repr {
            Repr::Intset(_) => n * 8,
            Repr::Table(t) => t.element_bytes(),
        };
        let mut out = Vec::with_capacity(6 + body);
        out.push(VERSION);
        match &self.repr {
            Repr::Intset(v) => {
                out.push(ENC_INTSET);
                out.extend_from_slice(&(n as u32).to_le_bytes());
                for i in v {
                    out.extend_from_slice(&i.to_le_bytes());
                }
            }
            Repr::Table(t) => {
                out.push(ENC_TABLE);
                out.extend_from_slice(&(n as u32).to_le_bytes());
                for m in t.items() {
                    put_varint(&mut out, m.len() as u64);
                    out.extend_from_slice(m);
                }
            }
        }
        out
    }

    /// Decodes [`SetValue::encode`]'s bytes; `None` if malformed (unknown
    /// version or encoding, truncated, trailing bytes, unsorted intset,
    /// duplicate members).
    pub fn decode(b: &[u8]) -> Option<Self> {
        let (&[version, enc], rest) = b.split_first_chunk::<2>()?;
        if version != VERSION {
            return None;
        }
        let (n, mut rest) = rest.split_first_chunk::<4>()?;
        let n = u32::from_le_bytes(*n) as usize;
        let repr = match enc {
            ENC_INTSET => {
                if rest.len() != n.checked_mul(8)? {
                    return None;
                }
                let v: Vec<i64> = rest
                    .chunks_exact(8)
                    .filter_map(|c| c.try_into().ok().map(i64::from_le_bytes))
                    .collect();
                if v.windows(2).any(|w| matches!(w, [a, b] if a >= b)) {
                    return None;
                }
                Repr::Intset(v)
            }
            ENC_TABLE => {
                // Every member costs at least one byte: bound the allocation.
                let mut t = Indexed::with_capacity(n.min(rest.len()));
                for _ in 0..n {
                    let (len, r) = get_varint(rest)?;
                    let (m, r) = r.split_at_checked(usize::try_from(len).ok()?)?;
                    if t.position(m).is_some() {
                        return None;
                    }
                    t.push_new(InlineKey::from_slice(m));
                    rest = r;
                }
                if !rest.is_empty() {
                    return None;
                }
                Repr::Table(t)
            }
            _ => return None,
        };
        Some(SetValue {
            repr,
            journal: Journal::default(),
        })
    }
}

/// Appends `v` as an LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads an LEB128 varint; `None` if truncated or longer than 10 bytes.
pub(crate) fn get_varint(b: &[u8]) -> Option<(u64, &[u8])> {
    let mut v: u64 = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return Some((v, b.get(i + 1..)?));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set_of(members: &[&[u8]], max: usize) -> SetValue {
        let mut s = SetValue::new_for(members.first().copied().unwrap_or(b"0"));
        for m in members {
            s.add(m, max);
        }
        s
    }

    #[test]
    fn intset_until_a_string_or_too_many() {
        let mut s = set_of(&[b"3", b"1", b"2"], 4);
        assert_eq!(s.encoding(), "intset");
        assert_eq!(
            s.iter().map(Member::to_vec).collect::<Vec<_>>(),
            [b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]
        );
        assert!(s.add(b"4", 4));
        assert_eq!(s.encoding(), "intset");
        assert!(!s.add(b"4", 4));
        assert!(s.add(b"5", 4));
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(s.len(), 5);
        assert!(s.contains(b"5") && s.contains(b"1"));
        // Never back.
        for m in [b"1", b"2", b"3", b"4"] {
            assert!(s.remove(m));
        }
        assert_eq!(s.encoding(), "hashtable");

        let mut s = set_of(&[b"1"], 512);
        assert!(s.add(b"01", 512));
        assert_eq!(s.encoding(), "hashtable");
        assert!(s.contains(b"01") && s.contains(b"1"));
        assert_eq!(set_of(&[b"a"], 512).encoding(), "hashtable");
        assert!(!set_of(&[b"1"], 512).contains(b"01"));
    }

    #[test]
    fn int_text_is_decimal() {
        for i in [0, 7, -7, 10, i64::MIN, i64::MAX, 1234567890] {
            assert_eq!(int_text(i, &mut [0; 20]), i.to_string().as_bytes());
        }
        let t = set_of(&[b"a", b"-5"], 512);
        assert!(t.contains_member(Member::Int(-5)));
        assert!(!t.contains_member(Member::Int(5)));
    }

    #[test]
    fn table_removal_keeps_index_consistent() {
        let members: Vec<Vec<u8>> = (0..100).map(|i| format!("m{i}").into_bytes()).collect();
        let mut s = SetValue::new_for(b"x");
        for m in &members {
            assert!(s.add(m, 512));
        }
        for m in members.iter().step_by(3) {
            assert!(s.remove(m));
        }
        for (i, m) in members.iter().enumerate() {
            assert_eq!(s.contains(m), i % 3 != 0);
        }
        let mut rng = rand::thread_rng();
        while let Some(m) = s.pop_random(&mut rng) {
            assert!(!s.contains(&m));
        }
        assert!(s.is_empty());
    }

    #[test]
    fn scan_visits_survivors_despite_removals() {
        let mut s = SetValue::new_for(b"x");
        for i in 0..50 {
            s.add(format!("k{i}").as_bytes(), 512);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut step = 0;
        loop {
            let (next, found) = s.scan(cursor, 7);
            seen.extend(found.into_iter().map(Member::to_vec));
            // Remove something already seen each step.
            s.remove(format!("k{}", 49 - step).as_bytes());
            step += 1;
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for i in 0..50 {
            let k = format!("k{i}").into_bytes();
            if s.contains(&k) {
                assert!(seen.contains(&k), "k{i} missed");
            }
        }
    }

    #[test]
    fn malformed_records_are_refused() {
        assert!(SetValue::decode(b"").is_none());
        assert!(SetValue::decode(&[2, 0, 0, 0, 0, 0]).is_none());
        assert!(SetValue::decode(&[1, 7, 0, 0, 0, 0]).is_none());
        let mut unsorted = vec![1, 0, 2, 0, 0, 0];
        unsorted.extend_from_slice(&5i64.to_le_bytes());
        unsorted.extend_from_slice(&5i64.to_le_bytes());
        assert!(SetValue::decode(&unsorted).is_none());
        let mut good = set_of(&[b"a", b"b"], 512).encode();
        good.push(0);
        assert!(SetValue::decode(&good).is_none());
        let huge = [1, 1, 0xff, 0xff, 0xff, 0xff, 1, b'a'];
        assert!(SetValue::decode(&huge).is_none());
    }

    proptest! {
        #[test]
        fn round_trip(members in proptest::collection::vec(
            prop_oneof![
                any::<i64>().prop_map(|i| i.to_string().into_bytes()),
                proptest::collection::vec(any::<u8>(), 0..20),
            ], 0..60), max in 0usize..40) {
            let mut s = SetValue::default();
            for m in &members {
                s.add(m, max);
            }
            let back = SetValue::decode(&s.encode()).expect("decodes");
            prop_assert_eq!(back.encoding(), s.encoding());
            prop_assert_eq!(back.iter().collect::<Vec<_>>(), s.iter().collect::<Vec<_>>());
            prop_assert_eq!(&back, &s);
            for m in &members {
                prop_assert!(back.contains(m));
            }
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = SetValue::decode(&bytes);
        }
    }
}
