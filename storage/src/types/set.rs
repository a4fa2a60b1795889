//! The `set` type: a set of members (being written with the data-types work).
//!
//! Every collection type offers the same small interface to the keyspace:
//! `mem_usage` (DRAM accounting), `encoding` (`OBJECT ENCODING`),
//! `is_empty` (an emptied collection's key disappears), and `encode` /
//! `decode` (its arena record value; see `crate::codec`).

/// A `set` value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SetValue {
    /// Elements in a placeholder layout until the type is implemented.
    pub items: Vec<Vec<u8>>,
}

impl SetValue {
    /// Approximate DRAM bytes used.
    pub fn mem_usage(&self) -> usize {
        std::mem::size_of::<Self>() + self.items.iter().map(|i| i.capacity() + 24).sum::<usize>()
    }

    /// The encoding name `OBJECT ENCODING` reports.
    pub fn encoding(&self) -> &'static str {
        "listpack"
    }

    /// Whether the collection has no elements (its key must then be removed).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The bytes of its arena record value: each item as a u32 length + bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for i in &self.items {
            out.extend_from_slice(&(i.len() as u32).to_le_bytes());
            out.extend_from_slice(i);
        }
        out
    }

    /// Decodes [`SetValue::encode`]'s bytes; `None` if malformed.
    pub fn decode(mut b: &[u8]) -> Option<Self> {
        let mut items = Vec::new();
        while !b.is_empty() {
            let (len, rest) = b.split_at_checked(4)?;
            let n = u32::from_le_bytes(len.try_into().ok()?) as usize;
            let (item, rest) = rest.split_at_checked(n)?;
            items.push(item.to_vec());
            b = rest;
        }
        Some(SetValue { items })
    }
}
