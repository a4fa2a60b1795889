//! The `zset` type: members ordered by score.
//!
//! # Layout in DRAM
//!
//! A [`ZSetValue`] is Redis's `skiplist` encoding in Rust: a skip list with
//! spans ordered by `(score, member)` (module `skiplist`) plus a
//! `hashbrown::HashTable<u32>` from member to skip-list node. The member
//! bytes are stored once, in the node; the table holds only node indices
//! and finds members by hashing them and comparing against the node.
//!
//! *Why a skip list with spans rather than an order-statistic B-tree:* every
//! sorted-set command is defined by Redis in terms of its skip list (first
//! and last node in a range, rank by summed spans, walking `forward` and
//! `backward`), including the lexicographic range commands, whose result on
//! members with *different* scores is whatever Redis's search does. A skip
//! list makes each command a direct transcription, with the same `O(log n)`
//! rank, rank-to-node and range-start costs, and `O(1)` steps to the
//! neighbouring element. Nodes are slots of one `Vec` (indices, not
//! pointers), so there is no `unsafe`; a node is one 64-byte cache line
//! holding its score, back link, first four levels (all of them for 99.6%
//! of nodes) and a pointer to its member bytes, so each step of a search
//! costs one cache miss.
//!
//! Small sets are not stored differently: the `listpack` flag only records
//! which encoding Redis would report (`OBJECT ENCODING`), following Redis's
//! conversion rules, and decides the one behaviour that depends on it
//! (lexicographic ranges over members with mixed scores, which Redis scans
//! linearly in a listpack). The flag is kept in the arena record.
//!
//! Every collection type offers the same small interface to the keyspace:
//! `mem_usage` (DRAM accounting), `encoding` (`OBJECT ENCODING`),
//! `is_empty` (an emptied collection's key disappears), and `encode` /
//! `decode` (its arena record value; see `crate::codec`).

mod skiplist;

use std::cmp::Ordering;
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::journal::Journal;
use skiplist::{SkipList, NIL};

/// The thresholds below which Redis keeps a sorted set as a listpack
/// (`zset-max-listpack-entries`, `zset-max-listpack-value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListpackLimits {
    /// Most elements a listpack holds.
    pub entries: usize,
    /// Longest member a listpack holds.
    pub value: usize,
}

impl Default for ListpackLimits {
    fn default() -> Self {
        ListpackLimits {
            entries: 128,
            value: 64,
        }
    }
}

/// A score interval (`ZRANGEBYSCORE` and friends); `minex`/`maxex` make an
/// end exclusive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRange {
    /// Lower end.
    pub min: f64,
    /// Upper end.
    pub max: f64,
    /// `(min`
    pub minex: bool,
    /// `(max`
    pub maxex: bool,
}

impl ScoreRange {
    /// Redis's `zslValueGteMin`.
    pub fn gte_min(&self, v: f64) -> bool {
        if self.minex {
            v > self.min
        } else {
            v >= self.min
        }
    }

    /// Redis's `zslValueLteMax`.
    pub fn lte_max(&self, v: f64) -> bool {
        if self.maxex {
            v < self.max
        } else {
            v <= self.max
        }
    }

    /// Whether no score can be inside.
    fn is_void(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.minex || self.maxex))
    }
}

/// One end of a lexicographic range: `-`, `+`, or a member (`[m`/`(m`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexItem {
    /// `-`: before every string.
    Min,
    /// `+`: after every string.
    Max,
    /// A string.
    Str(Vec<u8>),
}

impl LexItem {
    /// Redis's `sdscmplex`.
    fn cmp_value(&self, other: &LexItem) -> Ordering {
        match (self, other) {
            (LexItem::Min, LexItem::Min) | (LexItem::Max, LexItem::Max) => Ordering::Equal,
            (LexItem::Min, _) | (_, LexItem::Max) => Ordering::Less,
            (LexItem::Max, _) | (_, LexItem::Min) => Ordering::Greater,
            (LexItem::Str(a), LexItem::Str(b)) => a.cmp(b),
        }
    }

    /// Compares a member with this item (`member` on the left).
    fn cmp_member(&self, member: &[u8]) -> Ordering {
        match self {
            LexItem::Min => Ordering::Greater,
            LexItem::Max => Ordering::Less,
            LexItem::Str(s) => member.as_ref().cmp(s.as_slice()),
        }
    }
}

/// A lexicographic interval (`ZRANGEBYLEX` and friends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexRange {
    /// Lower end.
    pub min: LexItem,
    /// Upper end.
    pub max: LexItem,
    /// Lower end exclusive.
    pub minex: bool,
    /// Upper end exclusive.
    pub maxex: bool,
}

impl LexRange {
    /// Redis's `zslLexValueGteMin`.
    pub fn gte_min(&self, m: &[u8]) -> bool {
        let c = self.min.cmp_member(m);
        if self.minex {
            c == Ordering::Greater
        } else {
            c != Ordering::Less
        }
    }

    /// Redis's `zslLexValueLteMax`.
    pub fn lte_max(&self, m: &[u8]) -> bool {
        let c = self.max.cmp_member(m);
        if self.maxex {
            c == Ordering::Less
        } else {
            c != Ordering::Greater
        }
    }

    fn is_void(&self) -> bool {
        let c = self.min.cmp_value(&self.max);
        c == Ordering::Greater || (c == Ordering::Equal && (self.minex || self.maxex))
    }
}

/// `ZADD` options for [`ZSetValue::add`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddFlags {
    /// Add `score` to the current score (0 when absent).
    pub incr: bool,
    /// Only add new members.
    pub nx: bool,
    /// Only update existing members.
    pub xx: bool,
    /// Only update when the new score is greater.
    pub gt: bool,
    /// Only update when the new score is less.
    pub lt: bool,
}

/// What [`ZSetValue::add`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AddOutcome {
    /// The member was new; its score.
    Added(f64),
    /// The member's score changed to this.
    Updated(f64),
    /// The member kept its score, which is this (same score, zero increment).
    Unchanged(f64),
    /// Nothing done because of NX, XX, GT or LT.
    Skipped,
    /// The score (or the incremented score) is NaN: nothing done.
    NotANumber,
}

/// A `zset` value.
#[derive(Clone, Default)]
pub struct ZSetValue {
    list: SkipList,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// Redis would report `listpack` (else `skiplist`).
    listpack: bool,
    /// Sum of member lengths.
    member_bytes: usize,
    /// Changes since the last write-through (see `journal`).
    pub journal: Journal,
}

impl std::fmt::Debug for ZSetValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZSetValue")
            .field("encoding", &self.encoding())
            .field(
                "items",
                &self
                    .iter()
                    .map(|(m, s)| (String::from_utf8_lossy(m).into_owned(), s))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl PartialEq for ZSetValue {
    fn eq(&self, other: &Self) -> bool {
        self.listpack == other.listpack
            && self.len() == other.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|((a, x), (b, y))| a == b && x.to_bits() == y.to_bits())
    }
}

/// Iterates elements from a node, forward or backward.
pub struct Iter<'a> {
    z: &'a ZSetValue,
    at: u32,
    rev: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.at == NIL {
            return None;
        }
        let id = self.at;
        let list = &self.z.list;
        self.at = if self.rev {
            list.prev(id)
        } else {
            list.next(id)
        };
        Some((list.member(id), list.score(id)))
    }
}

impl ZSetValue {
    /// An empty sorted set in the `listpack` encoding.
    pub fn new() -> Self {
        ZSetValue {
            listpack: true,
            ..Default::default()
        }
    }

    /// An empty sorted set that reports `skiplist`.
    pub fn new_skiplist() -> Self {
        ZSetValue::default()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether the collection has no elements (its key must then be removed).
    pub fn is_empty(&self) -> bool {
        self.list.len() == 0
    }

    /// Approximate DRAM bytes used.
    pub fn mem_usage(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.list.allocated_bytes()
            + self.index.capacity() * 9
            + self.member_bytes
    }

    /// The encoding name `OBJECT ENCODING` reports.
    pub fn encoding(&self) -> &'static str {
        if self.listpack {
            "listpack"
        } else {
            "skiplist"
        }
    }

    /// Whether Redis would hold this set as a listpack.
    pub fn is_listpack(&self) -> bool {
        self.listpack
    }

    /// Sets the reported encoding (Redis's `zsetConvert`).
    pub fn set_listpack(&mut self, listpack: bool) {
        if self.listpack != listpack {
            self.journal.overflow();
        }
        self.listpack = listpack;
        if listpack {
            self.normalize_zeros();
        }
    }

    /// A listpack stores an integral score as an integer, so `-0` reads
    /// back as `0`: converting to a listpack loses the sign of zeros.
    fn normalize_zeros(&mut self) {
        let negative: Vec<Vec<u8>> = self
            .iter()
            .filter(|(_, s)| *s == 0.0 && s.is_sign_negative())
            .map(|(m, _)| m.to_vec())
            .collect();
        for m in negative {
            self.remove(&m);
            self.insert_new(&m, 0.0);
        }
    }

    /// Redis's `zsetConvertToListpackIfNeeded` for a freshly computed result
    /// (`ZUNIONSTORE` ...): a listpack when it has at most `entries`
    /// elements and no member longer than `value`.
    pub fn fit_encoding(&mut self, limits: ListpackLimits) {
        let fits =
            self.len() <= limits.entries && self.iter().all(|(m, _)| m.len() <= limits.value);
        self.set_listpack(fits);
    }

    fn find(&self, member: &[u8]) -> Option<u32> {
        let h = self.hasher.hash_one(member);
        self.index
            .find(h, |&id| self.list.member(id) == member)
            .copied()
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.find(member).map(|id| self.list.score(id))
    }

    /// Whether `member` is present.
    pub fn contains(&self, member: &[u8]) -> bool {
        self.find(member).is_some()
    }

    /// Inserts a member known to be absent.
    fn insert_new(&mut self, member: &[u8], score: f64) {
        // In a listpack `-0` is stored as the integer 0 (see `normalize_zeros`).
        let score = if self.listpack && score == 0.0 {
            0.0
        } else {
            score
        };
        let id = self.list.insert(score, member.into());
        let h = self.hasher.hash_one(member);
        let (list, hasher) = (&self.list, &self.hasher);
        self.index
            .insert_unique(h, id, |&i| hasher.hash_one(list.member(i)));
        self.member_bytes += member.len();
        self.journal.zset_add(member, score);
    }

    /// Sets the score of `member`, adding it if absent, with no encoding
    /// change (building results). Returns whether it was new.
    pub fn insert(&mut self, member: &[u8], score: f64) -> bool {
        match self.find(member) {
            Some(id) => {
                let cur = self.list.score(id);
                if cur.to_bits() != score.to_bits()
                    && !(self.listpack && cur == 0.0 && score == 0.0)
                {
                    self.rescore(id, member, score);
                }
                false
            }
            None => {
                self.insert_new(member, score);
                true
            }
        }
    }

    /// Moves `member`, present as node `id`, to `score`:
    /// in place when its neighbours allow, else unlinked and linked again
    /// with the same member bytes, the index entry kept (the node id is
    /// reused; updated if not). No hash and no allocation, where a remove
    /// and an insert took two of each.
    fn rescore(&mut self, id: u32, member: &[u8], score: f64) {
        // In a listpack `-0` is stored as the integer 0 (see `normalize_zeros`).
        let score = if self.listpack && score == 0.0 {
            0.0
        } else {
            score
        };
        if !self.list.rescore_in_place(id, score) {
            let Some(bytes) = self.list.remove_node(id) else {
                return;
            };
            let moved = self.list.insert(score, bytes);
            if moved != id {
                let h = self.hasher.hash_one(member);
                if let Ok(mut e) = self.index.find_entry(h, |&i| i == id) {
                    *e.get_mut() = moved;
                }
            }
        }
        self.journal.zset_remove(member);
        self.journal.zset_add(member, score);
    }

    /// Removes `member`; returns its score if it was present.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let h = self.hasher.hash_one(member);
        let list = &self.list;
        let entry = self
            .index
            .find_entry(h, |&id| list.member(id) == member)
            .ok()?;
        let (id, _) = entry.remove();
        let score = self.list.score(id);
        self.list.remove_node(id);
        self.forget(member);
        Some(score)
    }

    /// Accounting and journal of a member just removed from list and index.
    fn forget(&mut self, member: &[u8]) {
        self.member_bytes -= member.len();
        if self.list.len() == 0 {
            self.index = HashTable::new();
        }
        self.journal.zset_remove(member);
    }

    /// Redis's `zsetAdd`: adds or updates `member` under the ZADD `flags`.
    /// Adding a member to a listpack that would then exceed `limits`
    /// converts it to a skip list first, as Redis does.
    pub fn add(
        &mut self,
        member: &[u8],
        score: f64,
        flags: AddFlags,
        limits: ListpackLimits,
    ) -> AddOutcome {
        if score.is_nan() {
            return AddOutcome::NotANumber;
        }
        match self.find(member) {
            Some(id) => {
                let cur = self.list.score(id);
                if flags.nx {
                    return AddOutcome::Skipped;
                }
                let mut score = score;
                if flags.incr {
                    score += cur;
                    if score.is_nan() {
                        return AddOutcome::NotANumber;
                    }
                }
                if (flags.lt && score >= cur) || (flags.gt && score <= cur) {
                    return AddOutcome::Skipped;
                }
                if score != cur {
                    self.rescore(id, member, score);
                    AddOutcome::Updated(score)
                } else {
                    AddOutcome::Unchanged(score)
                }
            }
            None if flags.xx => AddOutcome::Skipped,
            None => {
                if self.listpack && (self.len() + 1 > limits.entries || member.len() > limits.value)
                {
                    self.set_listpack(false);
                }
                self.insert_new(member, score);
                AddOutcome::Added(score)
            }
        }
    }

    /// The 0-based rank of `member` in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        Some(
            self.list
                .partition(|s, m| skiplist::less(s, m, score, member)),
        )
    }

    /// The element at 0-based ascending `rank`.
    pub fn get(&self, rank: usize) -> Option<(&[u8], f64)> {
        let id = self.list.at(rank);
        (id != NIL).then(|| (self.list.member(id), self.list.score(id)))
    }

    /// Every element in ascending order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            z: self,
            at: self.list.first(),
            rev: false,
        }
    }

    /// Elements from ascending `rank` on, towards higher ranks (or lower
    /// ones when `rev`).
    pub fn iter_from(&self, rank: usize, rev: bool) -> Iter<'_> {
        let at = if rank == 0 && !rev {
            self.list.first()
        } else if rank.checked_add(1) == Some(self.len()) && rev {
            self.list.last()
        } else {
            self.list.at(rank)
        };
        Iter { z: self, at, rev }
    }

    /// Rank of the first element inside `r` (Redis's `zslFirstInRange`).
    pub fn first_in_score_range(&self, r: &ScoreRange) -> Option<usize> {
        if r.is_void() {
            return None;
        }
        let i = self.list.partition(|s, _| !r.gte_min(s));
        let (_, s) = self.get(i)?;
        r.lte_max(s).then_some(i)
    }

    /// Rank of the last element inside `r` (Redis's `zslLastInRange`).
    pub fn last_in_score_range(&self, r: &ScoreRange) -> Option<usize> {
        if r.is_void() {
            return None;
        }
        let i = self.list.partition(|s, _| r.lte_max(s)).checked_sub(1)?;
        let (_, s) = self.get(i)?;
        r.gte_min(s).then_some(i)
    }

    /// Number of elements inside `r`.
    pub fn count_in_score_range(&self, r: &ScoreRange) -> usize {
        match (self.first_in_score_range(r), self.last_in_score_range(r)) {
            (Some(a), Some(b)) if b >= a => b - a + 1,
            _ => 0,
        }
    }

    /// Redis's `zslIsInLexRange` / `zzlIsInLexRange`.
    fn may_hold_lex(&self, r: &LexRange) -> bool {
        if r.is_void() {
            return false;
        }
        match (self.get(self.len().wrapping_sub(1)), self.get(0)) {
            (Some((last, _)), Some((first, _))) => r.gte_min(last) && r.lte_max(first),
            _ => false,
        }
    }

    /// Rank of the first element inside `r` (`zslFirstInLexRange`; a
    /// listpack is scanned from the start, as Redis does).
    pub fn first_in_lex_range(&self, r: &LexRange) -> Option<usize> {
        if !self.may_hold_lex(r) {
            return None;
        }
        let i = if self.listpack {
            self.iter().position(|(m, _)| r.gte_min(m))?
        } else {
            self.list.partition(|_, m| !r.gte_min(m))
        };
        let (m, _) = self.get(i)?;
        r.lte_max(m).then_some(i)
    }

    /// Rank of the last element inside `r` (`zslLastInLexRange`).
    pub fn last_in_lex_range(&self, r: &LexRange) -> Option<usize> {
        if !self.may_hold_lex(r) {
            return None;
        }
        let i = if self.listpack {
            let from_end = self
                .iter_from(self.len().checked_sub(1)?, true)
                .position(|(m, _)| r.lte_max(m))?;
            self.len() - 1 - from_end
        } else {
            self.list.partition(|_, m| r.lte_max(m)).checked_sub(1)?
        };
        let (m, _) = self.get(i)?;
        r.gte_min(m).then_some(i)
    }

    /// Number of elements inside `r` (`ZLEXCOUNT`).
    pub fn count_in_lex_range(&self, r: &LexRange) -> usize {
        let Some(first) = self.first_in_lex_range(r) else {
            return 0;
        };
        if self.listpack {
            self.iter_from(first, false)
                .take_while(|(m, _)| r.lte_max(m))
                .count()
        } else {
            match self.last_in_lex_range(r) {
                Some(last) if last >= first => last - first + 1,
                _ => 0,
            }
        }
    }

    /// Removes the elements of ascending ranks `start..=end`; returns how
    /// many went.
    pub fn remove_rank_range(&mut self, start: usize, end: usize) -> usize {
        let mut removed = 0;
        for _ in start..=end {
            let Some((m, _)) = self.get(start) else { break };
            let m = m.to_vec();
            self.remove(&m);
            removed += 1;
        }
        removed
    }

    /// Removes and returns the lowest (or with `max` the highest) element.
    pub fn pop(&mut self, max: bool) -> Option<(Vec<u8>, f64)> {
        let id = if max {
            self.list.last()
        } else {
            self.list.first()
        };
        if id == NIL {
            return None;
        }
        // Unlink the node by its id (the index entry is found by id, so the
        // member is hashed but never compared) and keep its member bytes
        // for the reply instead of copying them.
        let score = self.list.score(id);
        let member = self.list.remove_node(id)?;
        let h = self.hasher.hash_one(&member[..]);
        if let Ok(entry) = self.index.find_entry(h, |&i| i == id) {
            entry.remove();
        }
        self.forget(&member);
        Some((Vec::from(member), score))
    }

    /// The bytes of its arena record value.
    ///
    /// Layout (all integers little-endian):
    ///
    /// | offset | size | field |
    /// |---|---|---|
    /// | 0 | 1 | format version, `1` |
    /// | 1 | 1 | flags: bit 0 set = `listpack` encoding, other bits 0 |
    /// | 2 | 4 | `n`, the number of elements (u32) |
    /// | 6 | ... | `n` elements, in any order |
    ///
    /// Each element: 8 bytes of score (IEEE-754 double bits, u64; never
    /// NaN, `-0` kept), 4 bytes of member length `len` (u32), then `len`
    /// member bytes. Nothing follows the last element.
    ///
    /// The elements are written in the order their nodes are stored (the
    /// writer of a large set then walks memory in order: in the list's
    /// order, one cache miss per element made the whole rewrites of a 100k
    /// set 10% of `ZADD`'s CPU). Records written before this were in
    /// ascending order, which is one of "any order": the format is
    /// unchanged, so its version too.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(6 + self.len() * 12 + self.member_bytes);
        out.push(ENCODE_VERSION);
        out.push(u8::from(self.listpack));
        out.extend_from_slice(&(self.len() as u32).to_le_bytes());
        self.list.for_each_stored(|m, s| {
            out.extend_from_slice(&s.to_bits().to_le_bytes());
            out.extend_from_slice(&(m.len() as u32).to_le_bytes());
            out.extend_from_slice(m);
        });
        out
    }

    /// Decodes [`ZSetValue::encode`]'s bytes; `None` if malformed (unknown
    /// version or flags, wrong count, NaN score, duplicate member, trailing
    /// bytes). The elements are sorted before they are inserted, so each
    /// insertion's search runs along the recently touched end of the list.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let (&version, rest) = b.split_first()?;
        let (&flags, rest) = rest.split_first()?;
        if version != ENCODE_VERSION || flags & !1 != 0 {
            return None;
        }
        let (n, mut rest) = rest.split_at_checked(4)?;
        let n = u32::from_le_bytes(n.try_into().ok()?) as usize;
        let mut z = ZSetValue {
            listpack: flags & 1 != 0,
            ..Default::default()
        };
        // At most one element per 12 bytes: a count past that is malformed
        // and must not size the buffer.
        let mut elements: Vec<(f64, &[u8])> = Vec::with_capacity(n.min(rest.len() / 12));
        for _ in 0..n {
            let (s, r) = rest.split_at_checked(8)?;
            let score = f64::from_bits(u64::from_le_bytes(s.try_into().ok()?));
            let (len, r) = r.split_at_checked(4)?;
            let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
            let (m, r) = r.split_at_checked(len)?;
            if score.is_nan() {
                return None;
            }
            elements.push((score, m));
            rest = r;
        }
        if !rest.is_empty() {
            return None;
        }
        // Scores are never NaN here, so `total_cmp` differs from the list's
        // order only on -0 against 0, whose relative order does not matter.
        elements.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        for (score, m) in elements {
            if z.contains(m) {
                return None;
            }
            z.insert_new(m, score);
        }
        Some(z)
    }
}

/// Version byte of [`ZSetValue::encode`]'s layout.
const ENCODE_VERSION: u8 = 1;

#[cfg(test)]
mod tests;
