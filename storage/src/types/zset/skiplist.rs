//! A skip list with spans, ordered by `(score, member)`: Redis's `zskiplist`
//! with node indices instead of pointers.
//!
//! Nodes live in one `Vec` (slot 0 is the header); freed slots are reused.
//! Every forward link carries its *span*, the number of level-0 steps it
//! jumps, so the rank of a node is the sum of the spans walked to reach it
//! and the node at a rank is found by walking spans: both `O(log n)`.
//! Ranks in this module's API are 0-based.

/// "No node".
pub(crate) const NIL: u32 = u32::MAX;
/// Index of the header node.
const HEAD: u32 = 0;
/// Redis's `ZSKIPLIST_MAXLEVEL`.
const MAX_LEVEL: usize = 32;

#[derive(Debug, Clone, Copy)]
struct Link {
    next: u32,
    span: u32,
}

/// "No next node".
const NO_LINK: Link = Link { next: NIL, span: 0 };

/// Levels stored in the node itself: 99.6% of nodes (each level has
/// probability 1/4) have no more.
const INLINE: usize = 4;

/// One element: exactly one cache line, so a step of a search (the next
/// node's score, then its link at this level) costs one cache miss, as in
/// Redis, where the node and its level array are one allocation. A node
/// taller than [`INLINE`] levels keeps the rest in [`SkipList::tall`].
#[derive(Debug, Clone)]
#[repr(align(64))]
struct Node {
    score: f64,
    back: u32,
    /// Index of this node's upper links in `SkipList::tall` (`NIL`: none).
    tall: u32,
    links: [Link; INLINE],
    member: Box<[u8]>,
}

/// Links of levels `INLINE..MAX_LEVEL` of a tall node.
type TallLinks = [Link; MAX_LEVEL - INLINE];

/// Whether `(a_score, a_member)` sorts before `(score, member)` in Redis's
/// order: scores as doubles (so `-0 == 0`), ties by member bytes.
pub(crate) fn less(a_score: f64, a_member: &[u8], score: f64, member: &[u8]) -> bool {
    a_score < score || (a_score == score && a_member < member)
}

/// DRAM bytes of one node slot (for memory accounting).
const NODE_BYTES: usize = std::mem::size_of::<Node>();
const _: () = assert!(NODE_BYTES == 64, "a node is one cache line");

/// The ordered half of a sorted set.
#[derive(Debug, Clone)]
pub(crate) struct SkipList {
    nodes: Vec<Node>,
    free: Vec<u32>,
    /// Upper links of the header (slot 0) and of tall nodes.
    tall: Vec<TallLinks>,
    tall_free: Vec<u32>,
    level: usize,
    len: usize,
    tail: u32,
    rng: u64,
}

impl Default for SkipList {
    fn default() -> Self {
        Self::new()
    }
}

impl SkipList {
    pub(crate) fn new() -> Self {
        let head = Node {
            score: 0.0,
            back: NIL,
            tall: 0,
            links: [NO_LINK; INLINE],
            member: Box::default(),
        };
        SkipList {
            nodes: vec![head],
            free: Vec::new(),
            tall: vec![[NO_LINK; MAX_LEVEL - INLINE]],
            tall_free: Vec::new(),
            level: 1,
            len: 0,
            tail: NIL,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes allocated for nodes and their upper links (memory accounting).
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.nodes.capacity() * NODE_BYTES + self.tall.capacity() * std::mem::size_of::<TallLinks>()
    }

    fn node(&self, id: u32) -> Option<&Node> {
        self.nodes.get(id as usize)
    }

    /// A search standing on `x` at level `i` either steps to `x`'s next
    /// node on that level or drops a level and goes on from `x`'s next
    /// node one level down. Both are cache misses (the nodes are scattered
    /// over the whole `Vec`); hinting the second while the first is read
    /// makes the two overlap instead of following each other. A hint
    /// reads only `x`'s own line (already loaded) and never faults.
    fn hint_drop(&self, x: u32, i: usize) {
        if let Some(below) = i.checked_sub(1).filter(|&b| b < INLINE) {
            if let Some(n) = self.node(x).and_then(|n| n.links.get(below)) {
                if let Some(target) = self.node(n.next) {
                    crate::persist::warm::warm_object(target);
                }
            }
        }
    }

    fn link(&self, id: u32, level: usize) -> Link {
        let Some(n) = self.node(id) else {
            return NO_LINK;
        };
        match n.links.get(level) {
            Some(l) => *l,
            None => self
                .tall
                .get(n.tall as usize)
                .and_then(|t| t.get(level - INLINE))
                .copied()
                .unwrap_or(NO_LINK),
        }
    }

    fn set_link(&mut self, id: u32, level: usize, link: Link) {
        let Some(n) = self.nodes.get_mut(id as usize) else {
            return;
        };
        let slot = match level.checked_sub(INLINE) {
            None => n.links.get_mut(level),
            Some(up) => self
                .tall
                .get_mut(n.tall as usize)
                .and_then(|t| t.get_mut(up)),
        };
        if let Some(l) = slot {
            *l = link;
        }
    }

    /// A slot of upper links for a new tall node.
    fn alloc_tall(&mut self) -> u32 {
        match self.tall_free.pop() {
            Some(i) => {
                if let Some(t) = self.tall.get_mut(i as usize) {
                    *t = [NO_LINK; MAX_LEVEL - INLINE];
                }
                i
            }
            None => {
                self.tall.push([NO_LINK; MAX_LEVEL - INLINE]);
                (self.tall.len() - 1) as u32
            }
        }
    }

    /// Score of node `id`.
    pub(crate) fn score(&self, id: u32) -> f64 {
        self.node(id).map_or(0.0, |n| n.score)
    }

    /// Every element as `(member, score)`, in the order the nodes are
    /// stored, not in the list's order: a walk of the node array (and of
    /// members mostly allocated in the same order) instead of one cache
    /// miss per element, for writers that do not need the order.
    pub(crate) fn for_each_stored(&self, mut f: impl FnMut(&[u8], f64)) {
        let mut free = vec![false; self.nodes.len()];
        for &id in &self.free {
            if let Some(slot) = free.get_mut(id as usize) {
                *slot = true;
            }
        }
        for (n, _) in self
            .nodes
            .iter()
            .zip(free)
            .skip(HEAD as usize + 1)
            .filter(|(_, freed)| !freed)
        {
            f(&n.member, n.score);
        }
    }

    /// Member of node `id`.
    pub(crate) fn member(&self, id: u32) -> &[u8] {
        self.node(id).map_or(&[][..], |n| &n.member)
    }

    /// The node after `id` (or `NIL`).
    pub(crate) fn next(&self, id: u32) -> u32 {
        self.link(id, 0).next
    }

    /// The node before `id` (or `NIL`).
    pub(crate) fn prev(&self, id: u32) -> u32 {
        self.node(id).map_or(NIL, |n| n.back)
    }

    /// The first node (or `NIL`).
    pub(crate) fn first(&self) -> u32 {
        self.next(HEAD)
    }

    /// The last node (or `NIL`).
    pub(crate) fn last(&self) -> u32 {
        self.tail
    }

    /// Redis's `zslRandomLevel`: each level with probability 1/4.
    fn random_level(&mut self) -> usize {
        let mut level = 1;
        loop {
            // xorshift64*
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32;
            if (r & 0xFFFF) < 0x4000 && level < MAX_LEVEL {
                level += 1;
            } else {
                return level;
            }
        }
    }

    /// Inserts a member known to be absent; returns its node id.
    pub(crate) fn insert(&mut self, score: f64, member: Box<[u8]>) -> u32 {
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0u32; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            rank[i] = if i + 1 == self.level { 0 } else { rank[i + 1] };
            loop {
                let l = self.link(x, i);
                self.hint_drop(x, i);
                if l.next == NIL || !less(self.score(l.next), self.member(l.next), score, &member) {
                    break;
                }
                rank[i] += l.span;
                x = l.next;
            }
            update[i] = x;
        }
        let lvl = self.random_level();
        if lvl > self.level {
            for i in self.level..lvl {
                rank[i] = 0;
                update[i] = HEAD;
                self.set_link(
                    HEAD,
                    i,
                    Link {
                        next: NIL,
                        span: self.len as u32,
                    },
                );
            }
            self.level = lvl;
        }
        let node = Node {
            score,
            back: if update[0] == HEAD { NIL } else { update[0] },
            tall: if lvl > INLINE { self.alloc_tall() } else { NIL },
            links: [NO_LINK; INLINE],
            member,
        };
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(slot) = self.nodes.get_mut(id as usize) {
                    *slot = node;
                }
                id
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        for i in 0..lvl {
            let up = self.link(update[i], i);
            let before = rank[0] - rank[i];
            self.set_link(
                id,
                i,
                Link {
                    next: up.next,
                    span: up.span - before,
                },
            );
            self.set_link(
                update[i],
                i,
                Link {
                    next: id,
                    span: before + 1,
                },
            );
        }
        for (i, &u) in update.iter().enumerate().take(self.level).skip(lvl) {
            let mut l = self.link(u, i);
            l.span += 1;
            self.set_link(u, i, l);
        }
        let next = self.next(id);
        if next == NIL {
            self.tail = id;
        } else if let Some(n) = self.nodes.get_mut(next as usize) {
            n.back = id;
        }
        self.len += 1;
        id
    }

    /// Gives node `id` the score `score` where it stands, if its neighbours
    /// stay strictly below and above it (Redis's `zslUpdateScore` fast
    /// path: a small `ZINCRBY` moves nothing). Returns whether it did.
    pub(crate) fn rescore_in_place(&mut self, id: u32, score: f64) -> bool {
        let (prev, next) = (self.prev(id), self.next(id));
        let fits =
            (prev == NIL || self.score(prev) < score) && (next == NIL || self.score(next) > score);
        if fits {
            if let Some(n) = self.nodes.get_mut(id as usize) {
                n.score = score;
            }
        }
        fits
    }

    /// Removes node `id` and returns its member bytes (moved, not copied).
    pub(crate) fn remove_node(&mut self, id: u32) -> Option<Box<[u8]>> {
        let update = self.path_to(self.score(id), self.member(id));
        if self.next(update[0]) != id {
            return None;
        }
        self.unlink(&update, id)
    }

    /// The last node before `(score, member)` at every level.
    fn path_to(&self, score: f64, member: &[u8]) -> [u32; MAX_LEVEL] {
        let mut update = [HEAD; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let l = self.link(x, i);
                self.hint_drop(x, i);
                if l.next == NIL || !less(self.score(l.next), self.member(l.next), score, member) {
                    break;
                }
                x = l.next;
            }
            update[i] = x;
        }
        update
    }

    /// Unlinks node `x`, whose predecessors at every level are `update`.
    fn unlink(&mut self, update: &[u32; MAX_LEVEL], x: u32) -> Option<Box<[u8]>> {
        for (i, &u) in update.iter().enumerate().take(self.level) {
            let ul = self.link(u, i);
            if ul.next == x {
                let xl = self.link(x, i);
                self.set_link(
                    u,
                    i,
                    Link {
                        next: xl.next,
                        span: ul.span + xl.span - 1,
                    },
                );
            } else {
                self.set_link(
                    u,
                    i,
                    Link {
                        next: ul.next,
                        span: ul.span.saturating_sub(1),
                    },
                );
            }
        }
        let (next, back) = (self.next(x), self.prev(x));
        if next == NIL {
            self.tail = back;
        } else if let Some(n) = self.nodes.get_mut(next as usize) {
            n.back = back;
        }
        while self.level > 1 && self.link(HEAD, self.level - 1).next == NIL {
            self.level -= 1;
        }
        self.len -= 1;
        let taken = self.nodes.get_mut(x as usize).map(|n| {
            n.links = [NO_LINK; INLINE];
            if n.tall != NIL {
                self.tall_free.push(std::mem::replace(&mut n.tall, NIL));
            }
            std::mem::take(&mut n.member)
        });
        self.free.push(x);
        if self.len == 0 {
            // Give back every slot once empty (the header keeps its own).
            self.nodes.truncate(1);
            self.free.clear();
            self.tall.truncate(1);
            self.tall_free.clear();
        }
        taken
    }

    /// How many leading elements satisfy `pred` (which must hold for a
    /// prefix of the order): the rank of the first element that does not.
    pub(crate) fn partition(&self, mut pred: impl FnMut(f64, &[u8]) -> bool) -> usize {
        let mut x = HEAD;
        let mut rank = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = self.link(x, i);
                if l.next == NIL || !pred(self.score(l.next), self.member(l.next)) {
                    break;
                }
                rank += l.span as usize;
                x = l.next;
            }
        }
        rank
    }

    /// The node at 0-based `rank` (or `NIL`).
    pub(crate) fn at(&self, rank: usize) -> u32 {
        if rank >= self.len {
            return NIL;
        }
        let target = rank + 1;
        let mut x = HEAD;
        let mut traversed = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = self.link(x, i);
                if l.next == NIL || traversed + l.span as usize > target {
                    break;
                }
                traversed += l.span as usize;
                x = l.next;
            }
            if traversed == target {
                return x;
            }
        }
        NIL
    }
}
