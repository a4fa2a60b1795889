//! The shape of Redis's stream nodes, without their bytes.
//!
//! Redis stores a stream as a radix tree of listpacks ("nodes"), each
//! holding up to `stream-node-max-entries` entries (deleted ones included)
//! and about `stream-node-max-bytes` bytes. Clients see the node boundaries
//! through approximate trimming (`MAXLEN ~`, `MINID ~`), which only drops
//! whole nodes. Amber keeps its entries in one ordered map and models each
//! node with a [`Node`]: where it starts, how many entries it has (valid
//! and deleted) and exactly how many bytes Redis's listpack would hold, so
//! the same commands trim the same entries as Redis 7.0.

/// Largest listpack Redis lets a stream node grow to
/// (`STREAM_LISTPACK_MAX_SIZE`).
const LISTPACK_MAX_SIZE: usize = 1 << 30;

/// Listpack header (total bytes, element count) plus the end byte.
const LISTPACK_OVERHEAD: usize = 6 + 1;

/// The `stream-node-max-*` directives that decide when a new node starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLimits {
    /// `stream-node-max-bytes` (0: no limit but the listpack's own).
    pub max_bytes: usize,
    /// `stream-node-max-entries` (0: no limit).
    pub max_entries: u64,
}

impl Default for NodeLimits {
    /// Redis's defaults: 4096 bytes, 100 entries.
    fn default() -> Self {
        NodeLimits {
            max_bytes: 4096,
            max_entries: 100,
        }
    }
}

/// One modelled listpack node (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The master entry's field names (the first entry's fields).
    pub master_fields: Box<[Box<[u8]>]>,
    /// ID of the last entry appended to the node, deleted or not.
    pub last: super::StreamId,
    /// Entries not deleted.
    pub valid: u64,
    /// Entries marked deleted (their bytes stay in the listpack).
    pub deleted: u64,
    /// Bytes of every listpack element except the two master counters.
    pub body: usize,
}

impl Node {
    /// The listpack's size in bytes (`lpBytes`).
    pub fn bytes(&self) -> usize {
        LISTPACK_OVERHEAD + body_int(self.valid as i64) + body_int(self.deleted as i64) + self.body
    }

    /// A node whose master entry takes `fields` (before any entry is added).
    pub fn new(fields: &[&[u8]], first: super::StreamId) -> Node {
        let body = body_int(fields.len() as i64)
            + fields.iter().map(|f| element(f)).sum::<usize>()
            + body_int(0);
        Node {
            master_fields: fields.iter().map(|f| Box::<[u8]>::from(*f)).collect(),
            last: first,
            valid: 0,
            deleted: 0,
            body,
        }
    }

    /// Whether Redis would start a new node rather than append an entry of
    /// `fields_and_values` to this one (the checks of `streamAppendItem`).
    pub fn is_full(&self, fields_and_values: &[&[u8]], limits: NodeLimits) -> bool {
        let max_bytes = match limits.max_bytes {
            0 => LISTPACK_MAX_SIZE,
            n => n.min(LISTPACK_MAX_SIZE),
        };
        let total: usize = fields_and_values.iter().map(|b| b.len()).sum();
        if self.bytes().saturating_add(total) >= max_bytes {
            return true;
        }
        limits.max_entries != 0 && self.valid + self.deleted >= limits.max_entries
    }

    /// Whether an entry with these field names would be stored with the
    /// `SAMEFIELDS` flag (only its values written).
    fn same_fields(&self, fields: &[&[u8]]) -> bool {
        self.master_fields.len() == fields.len()
            && self
                .master_fields
                .iter()
                .zip(fields)
                .all(|(a, b)| **a == **b)
    }

    /// Accounts an entry appended with `id` relative to `master`.
    pub fn add(
        &mut self,
        master: super::StreamId,
        id: super::StreamId,
        fields_and_values: &[&[u8]],
    ) {
        let fields: Vec<&[u8]> = fields_and_values.iter().step_by(2).copied().collect();
        let n = fields.len() as i64;
        let same = self.same_fields(&fields);
        let ms_diff = id.ms.wrapping_sub(master.ms) as i64;
        let seq_diff = id.seq.wrapping_sub(master.seq) as i64;
        let mut bytes = body_int(if same { 2 } else { 0 }) + body_int(ms_diff) + body_int(seq_diff);
        let lp_count = if same {
            bytes += fields_and_values
                .iter()
                .skip(1)
                .step_by(2)
                .map(|v| element(v))
                .sum::<usize>();
            n + 3
        } else {
            bytes += body_int(n) + fields_and_values.iter().map(|v| element(v)).sum::<usize>();
            n + 3 + n + 1
        };
        bytes += body_int(lp_count);
        self.body += bytes;
        self.valid += 1;
        self.last = id;
    }
}

/// Bytes of a listpack integer element (encoding plus back-length).
pub fn body_int(v: i64) -> usize {
    let enc = if (0..=127).contains(&v) {
        1
    } else if (-4096..=4095).contains(&v) {
        2
    } else if (-32768..=32767).contains(&v) {
        3
    } else if (-8_388_608..=8_388_607).contains(&v) {
        4
    } else if i32::try_from(v).is_ok() {
        5
    } else {
        9
    };
    enc + 1
}

/// Bytes of a listpack element holding `b` (stored as an integer when it
/// reads as one, as `lpAppend` does).
pub fn element(b: &[u8]) -> usize {
    if let Some(v) = crate::types::set::parse_int(b) {
        return body_int(v);
    }
    let len = b.len();
    let enc = if len < 64 {
        1 + len
    } else if len < 4096 {
        2 + len
    } else {
        5 + len
    };
    let back = if enc <= 127 {
        1
    } else if enc < 16383 {
        2
    } else if enc < 2_097_151 {
        3
    } else if enc < 268_435_455 {
        4
    } else {
        5
    };
    enc + back
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_sizes() {
        assert_eq!(element(b"1"), 2);
        assert_eq!(element(b"200"), 3);
        assert_eq!(element(b"abc"), 5);
        assert_eq!(element(&[b'a'; 63]), 65);
        assert_eq!(element(&[b'a'; 64]), 67);
        assert_eq!(element(&[b'a'; 200]), 204);
        assert_eq!(body_int(-1), 3);
        assert_eq!(body_int(i64::MAX), 10);
    }
}
