//! The per-shard index of keys with a deadline, for active expiry.
//!
//! Redis samples random volatile keys every 100 ms and so leaves some expired
//! keys around; Amber keeps volatile keys ordered by deadline, so the active
//! cycle removes exactly the keys that are due, oldest first. An entry is
//! `(deadline, key hash)`: 16 bytes plus tree overhead, only for keys that have
//! a TTL. Hash collisions are counted, so removal is exact.

use std::collections::BTreeMap;

/// Deadlines of the volatile keys of one shard.
#[derive(Debug, Default)]
pub(crate) struct ExpiryIndex {
    by_deadline: BTreeMap<(u64, u64), u32>,
    len: usize,
}

impl ExpiryIndex {
    /// Records that a key with `hash` expires at `deadline`.
    pub(crate) fn insert(&mut self, deadline: u64, hash: u64) {
        *self.by_deadline.entry((deadline, hash)).or_insert(0) += 1;
        self.len += 1;
    }

    /// Forgets one key with `hash` expiring at `deadline`.
    pub(crate) fn remove(&mut self, deadline: u64, hash: u64) {
        if let Some(count) = self.by_deadline.get_mut(&(deadline, hash)) {
            *count -= 1;
            if *count == 0 {
                self.by_deadline.remove(&(deadline, hash));
            }
            self.len -= 1;
        }
    }

    /// Number of volatile keys.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Every `(deadline, hash, count)` in order (the index checkpoint).
    pub(crate) fn entries(&self) -> impl Iterator<Item = (u64, u64, u32)> + '_ {
        self.by_deadline.iter().map(|(&(d, h), &n)| (d, h, n))
    }

    /// Rebuilds an index from [`ExpiryIndex::entries`] (in one pass).
    pub(crate) fn from_entries(entries: impl IntoIterator<Item = (u64, u64, u32)>) -> Self {
        let by_deadline: BTreeMap<(u64, u64), u32> = entries
            .into_iter()
            .filter(|e| e.2 > 0)
            .map(|(d, h, n)| ((d, h), n))
            .collect();
        let len = by_deadline.values().map(|&n| n as usize).sum();
        ExpiryIndex { by_deadline, len }
    }

    /// Up to `limit` (deadline, hash) pairs that are due at `now`, oldest first.
    pub(crate) fn due(&self, now: u64, limit: usize) -> Vec<(u64, u64)> {
        self.by_deadline
            .range(..(now.saturating_add(1), 0))
            .take(limit)
            .map(|(k, _)| *k)
            .collect()
    }

    /// Sum of the remaining time to live of all volatile keys and their count,
    /// for `INFO keyspace`'s `avg_ttl`.
    pub(crate) fn ttl_sum(&self, now: u64) -> (u128, usize) {
        let mut sum = 0u128;
        for (&(deadline, _), &n) in &self.by_deadline {
            sum += deadline.saturating_sub(now) as u128 * n as u128;
        }
        (sum, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_is_ordered_and_exact() {
        let mut ix = ExpiryIndex::default();
        ix.insert(30, 1);
        ix.insert(10, 2);
        ix.insert(10, 2);
        ix.insert(20, 3);
        assert_eq!(ix.len(), 4);
        assert_eq!(ix.due(20, 10), vec![(10, 2), (20, 3)]);
        ix.remove(10, 2);
        assert_eq!(ix.due(20, 10), vec![(10, 2), (20, 3)]);
        ix.remove(10, 2);
        assert_eq!(ix.due(20, 10), vec![(20, 3)]);
        ix.remove(99, 9);
        assert_eq!(ix.len(), 2);
    }
}
