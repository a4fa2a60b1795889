//! [`Backlog`]: the last `repl-backlog-size` bytes of the replication
//! stream, from which a reconnecting replica continues (`+CONTINUE`)
//! instead of loading a whole new copy.

use std::collections::VecDeque;

/// A ring of the stream's most recent bytes.
#[derive(Debug, Default)]
pub struct Backlog {
    bytes: VecDeque<u8>,
    /// Stream offset of the first byte held (0-based: the number of bytes
    /// the stream had before it).
    first: u64,
}

impl Backlog {
    /// Appends `data`, which starts at stream offset `at` (the offset
    /// before it), keeping at most `cap` bytes.
    pub fn push(&mut self, at: u64, data: &[u8], cap: usize) {
        if self.bytes.is_empty() {
            self.first = at;
        }
        self.bytes.extend(data);
        let excess = self.bytes.len().saturating_sub(cap.max(1));
        if excess > 0 {
            self.bytes.drain(..excess);
            self.first += excess as u64;
        }
    }

    /// Redis's `repl_backlog_first_byte_offset` (1-based; 0 when empty).
    pub fn first_byte_offset(&self) -> u64 {
        if self.bytes.is_empty() {
            0
        } else {
            self.first + 1
        }
    }

    /// Bytes held (`repl_backlog_histlen`).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The bytes from `psync_offset` (a replica's `PSYNC` offset: 1-based,
    /// the next byte it wants) to `end`, the stream's current offset;
    /// `None` when they are no longer (or not yet) all held.
    pub fn since(&self, psync_offset: u64, end: u64) -> Option<Vec<u8>> {
        let from = psync_offset.checked_sub(1)?;
        if from == end {
            return Some(Vec::new());
        }
        if self.bytes.is_empty() || from < self.first || from > end {
            return None;
        }
        let skip = usize::try_from(from - self.first).ok()?;
        Some(self.bytes.iter().skip(skip).copied().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::Backlog;

    #[test]
    fn keeps_the_last_bytes_and_answers_offsets() {
        let mut b = Backlog::default();
        b.push(0, b"abcdef", 4);
        assert_eq!(b.first_byte_offset(), 3);
        assert_eq!(b.len(), 4);
        assert_eq!(b.since(3, 6), Some(b"cdef".to_vec()));
        assert_eq!(b.since(5, 6), Some(b"ef".to_vec()));
        assert_eq!(b.since(7, 6), Some(Vec::new()));
        assert_eq!(b.since(2, 6), None);
        assert_eq!(b.since(9, 6), None);
        assert_eq!(b.since(0, 6), None);
    }
}
