//! How many nodes Redis's radix tree (`rax.c`) has for a stream's node
//! keys, for `XINFO STREAM`'s `radix-tree-nodes`.
//!
//! Keys are the 16-byte big-endian node IDs, all the same length, so no
//! key is a prefix of another. A rax then has a node at the root, at every
//! key (an empty leaf), at every prefix with two or more continuations (a
//! branching node) and at every child of a branching node (where a
//! compressed run or another branch starts).

use std::collections::{HashMap, HashSet};

use super::StreamId;

/// The rax node count for these keys (1 for none: the empty head node).
pub fn node_count(ids: impl Iterator<Item = StreamId>) -> usize {
    let keys: Vec<[u8; 16]> = ids
        .map(|id| {
            let mut k = [0u8; 16];
            k[..8].copy_from_slice(&id.ms.to_be_bytes());
            k[8..].copy_from_slice(&id.seq.to_be_bytes());
            k
        })
        .collect();
    if keys.is_empty() {
        return 1;
    }
    // Children (distinct next bytes) of every prefix.
    let mut children: HashMap<&[u8], HashSet<u8>> = HashMap::new();
    for k in &keys {
        for i in 0..16 {
            children.entry(&k[..i]).or_default().insert(k[i]);
        }
    }
    let branching = |p: &[u8]| children.get(p).is_some_and(|c| c.len() >= 2);
    let mut nodes: HashSet<&[u8]> = HashSet::new();
    nodes.insert(&[]);
    for k in &keys {
        nodes.insert(&k[..]);
        for i in 1..16 {
            if branching(&k[..i]) || branching(&k[..i - 1]) {
                nodes.insert(&k[..i]);
            }
        }
    }
    nodes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_trees() {
        assert_eq!(node_count(std::iter::empty()), 1);
        assert_eq!(node_count([StreamId::new(1, 0)].into_iter()), 2);
        assert_eq!(
            node_count([StreamId::new(1, 0), StreamId::new(1, 1)].into_iter()),
            4
        );
    }
}
