//! Records: what an append writes, 8-byte aligned inside a segment (or, for
//! a record larger than a segment, at the start of an extent of segments;
//! see `segment`).
//!
//! ```text
//! offset size field
//!      0    4 crc32        of (generation as 8 LE bytes) ++ bytes 4..40+klen+vlen
//!      4    1 version      2
//!      5    1 kind         type tag, opaque to the arena (the keyspace's encoding)
//!      6    1 flags        bit 0: tombstone (no value; the key is deleted)
//!                          bit 1: delta (changes to an earlier record of the key)
//!      7    1 db           database index (255: a metadata record, see `meta`)
//!      8    4 key length
//!     12    4 value length
//!     16    8 expire-at    absolute Unix ms, 0 = no deadline
//!     24    8 sequence     unique, increasing: the newest record of a key wins
//!     32    4 key crc32    of (generation as 8 LE bytes) ++ bytes 4..32 ++ key
//!     36    4 reserved     0
//!     40    . key, then value, then zero padding to a multiple of 8
//! ```
//!
//! # Delta records
//!
//! A delta record (flag bit 1) does not hold a whole value: it holds
//! changes to be applied, in order, on top of an earlier *base* record of
//! the same key (a large collection changed by one element is not
//! rewritten whole; see `docs/ARCHITECTURE.md`). Its value starts with a
//! 16-byte prefix, then the changes (opaque to the arena, like `kind`):
//!
//! ```text
//! offset size field
//!      0    8 base sequence  the sequence number of the base record
//!      8    4 position       1 for the first delta after the base, then 2, 3...
//!     12    4 reserved       0
//!     16    . the changes
//! ```
//!
//! Recovery keeps a delta only if its base is the key's newest full
//! record, and only the unbroken run of positions 1, 2, 3... (see
//! `recovery`). Its expire-at field is the key's deadline as of the delta.
//!
//! A record counts only when its checksum matches. Mixing the segment's
//! generation into the checksum means a record left over from an earlier use
//! of the same segment never validates, so a segment can be reused without
//! zeroing it.
//!
//! The key checksum (version 2) lets [`Arena::read_key`](super::Arena::read_key)
//! and [`Arena::read_head`](super::Arena::read_head) check the header and key,
//! generation included, without reading the value: hash-table equality checks
//! and deadline lookups stay cheap for large values. The full checksum at
//! offset 0 covers the key checksum too, so a record is still all or nothing.
//! Version 1 (a 32-byte header without the key checksum) is not read: an
//! arena with version-1 records has superblock format version 1 and is
//! refused at open (see `superblock`).

use super::Addr;

/// Bytes of the record header.
pub const HEADER_LEN: usize = 40;
/// The record format version this build writes and reads.
pub const RECORD_VERSION: u8 = 2;
/// Bytes of the header covered by the key checksum (after the crc word).
const KEY_CRC_AT: usize = 32;
/// Flag bit: the record is a tombstone.
pub const FLAG_TOMBSTONE: u8 = 1;
/// Flag bit: the record is a delta on an earlier record of its key.
pub const FLAG_DELTA: u8 = 2;
/// Bytes of a delta record's value before its changes.
pub const DELTA_PREFIX_LEN: usize = 16;

/// The prefix of a delta record's value: `(base sequence, position)`.
pub fn delta_prefix(base_seq: u64, pos: u32) -> [u8; DELTA_PREFIX_LEN] {
    let mut b = [0u8; DELTA_PREFIX_LEN];
    b[0..8].copy_from_slice(&base_seq.to_le_bytes());
    b[8..12].copy_from_slice(&pos.to_le_bytes());
    b
}

/// Splits a delta record's value into `(base sequence, position, changes)`;
/// `None` if it is too short or the reserved word is not zero.
pub fn parse_delta(value: &[u8]) -> Option<(u64, u32, &[u8])> {
    let (prefix, changes) = value.split_at_checked(DELTA_PREFIX_LEN)?;
    if super::superblock::u32_at(prefix, 12) != 0 {
        return None;
    }
    Some((
        super::superblock::u64_at(prefix, 0),
        super::superblock::u32_at(prefix, 8),
        changes,
    ))
}

/// The fixed fields of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Type tag.
    pub kind: u8,
    /// Flag bits.
    pub flags: u8,
    /// Database index.
    pub db: u8,
    /// Key length.
    pub key_len: u32,
    /// Value length.
    pub value_len: u32,
    /// Absolute deadline, Unix ms; 0 = none.
    pub expire_at: u64,
    /// Sequence number.
    pub seq: u64,
}

/// Total bytes a record with these lengths occupies (header + key + value,
/// rounded up to 8).
pub fn record_len(key_len: u64, value_len: u64) -> u64 {
    (HEADER_LEN as u64 + key_len + value_len + 7) & !7
}

impl Header {
    /// Bytes 4..40 of the header (everything but the checksum) for a record
    /// written under generation `gen` with key `key` (the key checksum).
    pub fn encode_tail(&self, gen: u64, key: &[u8]) -> [u8; HEADER_LEN - 4] {
        let mut b = self.encode_fields();
        let kcrc = key_checksum(gen, &b[..KEY_CRC_AT - 4], key);
        b[KEY_CRC_AT - 4..KEY_CRC_AT].copy_from_slice(&kcrc.to_le_bytes());
        b
    }

    /// Bytes 4..40 with the key checksum and reserved word zero.
    fn encode_fields(&self) -> [u8; HEADER_LEN - 4] {
        let mut b = [0u8; HEADER_LEN - 4];
        b[0] = RECORD_VERSION;
        b[1] = self.kind;
        b[2] = self.flags;
        b[3] = self.db;
        b[4..8].copy_from_slice(&self.key_len.to_le_bytes());
        b[8..12].copy_from_slice(&self.value_len.to_le_bytes());
        b[12..20].copy_from_slice(&self.expire_at.to_le_bytes());
        b[20..28].copy_from_slice(&self.seq.to_le_bytes());
        b
    }

    /// Parses the 40 header bytes: `(stored crc, header)`. `None` when the
    /// bytes cannot be a header of this version. Nothing is verified.
    pub fn parse(b: &[u8]) -> Option<(u32, Header)> {
        let b = b.get(..HEADER_LEN)?;
        if b.get(4) != Some(&RECORD_VERSION) {
            return None;
        }
        let crc = super::superblock::u32_at(b, 0);
        Some((
            crc,
            Header {
                kind: b[5],
                flags: b[6],
                db: b[7],
                key_len: super::superblock::u32_at(b, 8),
                value_len: super::superblock::u32_at(b, 12),
                expire_at: super::superblock::u64_at(b, 16),
                seq: super::superblock::u64_at(b, 24),
            },
        ))
    }

    /// Bytes this record occupies.
    pub fn len(&self) -> u64 {
        record_len(u64::from(self.key_len), u64::from(self.value_len))
    }

    /// Whether this is a tombstone.
    pub fn is_tombstone(&self) -> bool {
        self.flags & FLAG_TOMBSTONE != 0
    }

    /// Whether this is a delta record.
    pub fn is_delta(&self) -> bool {
        self.flags & FLAG_DELTA != 0
    }

    /// Always false: a record has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The key checksum: over the generation, header bytes 4..32 and the key.
pub fn key_checksum(gen: u64, fields: &[u8], key: &[u8]) -> u32 {
    // Every cold lookup and every append takes this checksum; crc32fast
    // pays a fixed cost per call, so a short key is hashed in one piece.
    const SHORT: usize = 128;
    let n = 8 + fields.len() + key.len();
    if n <= SHORT {
        let mut buf = [0u8; SHORT];
        buf[..8].copy_from_slice(&gen.to_le_bytes());
        buf[8..8 + fields.len()].copy_from_slice(fields);
        buf[8 + fields.len()..n].copy_from_slice(key);
        return crc32fast::hash(&buf[..n]);
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&gen.to_le_bytes());
    h.update(fields);
    h.update(key);
    h.finalize()
}

/// Checks the header and key of a record (`head`: its 40 header bytes)
/// against the key checksum under generation `gen`.
pub fn key_is_valid(gen: u64, head: &[u8], key: &[u8]) -> bool {
    let (Some(fields), Some(stored)) = (
        head.get(4..KEY_CRC_AT),
        head.get(KEY_CRC_AT..KEY_CRC_AT + 4),
    ) else {
        return false;
    };
    key_checksum(gen, fields, key).to_le_bytes() == stored
}

/// The checksum of a record: over the segment generation, header bytes
/// 4..40, key and value parts.
pub fn checksum(gen: u64, tail: &[u8], key: &[u8], value: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&gen.to_le_bytes());
    h.update(tail);
    h.update(key);
    for part in value {
        h.update(part);
    }
    h.finalize()
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Zero bytes: nothing was ever written here (the end of the segment's
    /// records).
    End,
    /// Something is here but it is not a complete, valid record: a torn
    /// write, stale bytes of an earlier generation, or corruption.
    Torn,
}

/// The header and key of a record, checked without its value (see
/// [`Arena::read_head`](super::Arena::read_head)); the key borrows the
/// mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHead<'a> {
    /// Where it is.
    pub addr: Addr,
    /// Its fixed fields.
    pub header: Header,
    /// The key.
    pub key: &'a [u8],
}

impl RecordHead<'_> {
    /// Type tag given at append.
    pub fn kind(&self) -> u8 {
        self.header.kind
    }
    /// Database index.
    pub fn db(&self) -> u8 {
        self.header.db
    }
    /// Absolute deadline in Unix ms, 0 = none.
    pub fn expire_at(&self) -> u64 {
        self.header.expire_at
    }
    /// Sequence number.
    pub fn seq(&self) -> u64 {
        self.header.seq
    }
    /// Whether this is a tombstone.
    pub fn is_tombstone(&self) -> bool {
        self.header.is_tombstone()
    }
    /// Whether this is a delta record.
    pub fn is_delta(&self) -> bool {
        self.header.is_delta()
    }
    /// Value length in bytes.
    pub fn value_len(&self) -> u32 {
        self.header.value_len
    }
}

/// A record read from the arena; the key and value borrow the mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Where it is.
    pub addr: Addr,
    /// Its fixed fields.
    pub header: Header,
    /// The key.
    pub key: &'a [u8],
    /// The value (empty for a tombstone).
    pub value: &'a [u8],
}

impl<'a> RecordRef<'a> {
    /// Type tag given at append.
    pub fn kind(&self) -> u8 {
        self.header.kind
    }
    /// Database index.
    pub fn db(&self) -> u8 {
        self.header.db
    }
    /// Absolute deadline in Unix ms, 0 = none.
    pub fn expire_at(&self) -> u64 {
        self.header.expire_at
    }
    /// Sequence number.
    pub fn seq(&self) -> u64 {
        self.header.seq
    }
    /// Whether this is a tombstone.
    pub fn is_tombstone(&self) -> bool {
        self.header.is_tombstone()
    }
    /// Whether this is a delta record.
    pub fn is_delta(&self) -> bool {
        self.header.is_delta()
    }
    /// Bytes the record occupies in the arena.
    pub fn len(&self) -> u64 {
        self.header.len()
    }
    /// Always false: a record has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Decodes and verifies the record at the start of `bytes` (at least the
    /// record's bytes; it may run to the end of its segment or extent),
    /// written under segment generation `gen`.
    pub fn decode(addr: Addr, gen: u64, bytes: &'a [u8]) -> Result<RecordRef<'a>, Invalid> {
        let head = bytes.get(..HEADER_LEN).ok_or(Invalid::End)?;
        let Some((crc, header)) = Header::parse(head) else {
            return Err(if head.iter().all(|b| *b == 0) {
                Invalid::End
            } else {
                Invalid::Torn
            });
        };
        let klen = header.key_len as usize;
        let vlen = header.value_len as usize;
        let key_end = HEADER_LEN.checked_add(klen).ok_or(Invalid::Torn)?;
        let end = key_end.checked_add(vlen).ok_or(Invalid::Torn)?;
        if header.len() > bytes.len() as u64 {
            return Err(Invalid::Torn);
        }
        let key = bytes.get(HEADER_LEN..key_end).ok_or(Invalid::Torn)?;
        let value = bytes.get(key_end..end).ok_or(Invalid::Torn)?;
        let tail = head.get(4..).ok_or(Invalid::Torn)?;
        if checksum(gen, tail, key, &[value]) != crc {
            return Err(Invalid::Torn);
        }
        Ok(RecordRef {
            addr,
            header,
            key,
            value,
        })
    }
}

/// Encodes a whole record into a buffer (tests and relocation use it; the
/// append path writes the parts directly).
pub fn encode(gen: u64, header: &Header, key: &[u8], value: &[&[u8]]) -> Vec<u8> {
    let tail = header.encode_tail(gen, key);
    let crc = checksum(gen, &tail, key, value);
    let mut out = Vec::with_capacity(header.len() as usize);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&tail);
    out.extend_from_slice(key);
    for p in value {
        out.extend_from_slice(p);
    }
    out.resize(header.len() as usize, 0);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> (Header, Vec<u8>) {
        let h = Header {
            kind: 3,
            flags: 0,
            db: 7,
            key_len: 5,
            value_len: 11,
            expire_at: 1_700_000_000_123,
            seq: 42,
        };
        let bytes = encode(9, &h, b"hello", &[b"wor", b"ld value"]);
        (h, bytes)
    }

    #[test]
    fn round_trip_and_alignment() {
        let (h, bytes) = sample();
        assert_eq!(bytes.len(), 56); // 40 + 5 + 11 = 56
        assert_eq!(bytes.len() % 8, 0);
        let r = RecordRef::decode(Addr::new(4096 + 64), 9, &bytes).unwrap();
        assert_eq!(r.header, h);
        assert_eq!(r.key, b"hello");
        assert_eq!(r.value, b"world value");
        assert_eq!(record_len(1, 0), 48);
        assert_eq!(record_len(0, 0), 40);
        assert!(key_is_valid(9, &bytes[..HEADER_LEN], b"hello"));
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        let (_, bytes) = sample();
        for i in 0..bytes.len() {
            for bit in [0x01u8, 0x80] {
                let mut b = bytes.clone();
                b[i] ^= bit;
                let r = RecordRef::decode(Addr::new(0), 9, &b);
                // Padding bytes are not covered; there are none in this sample.
                assert!(r.is_err(), "byte {i} bit {bit:#x} not caught");
            }
        }
    }

    #[test]
    fn key_checksum_covers_header_and_key_but_not_value() {
        let (h, bytes) = sample();
        let key_end = HEADER_LEN + h.key_len as usize;
        for i in 4..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            let ok = key_is_valid(9, &b[..HEADER_LEN], &b[HEADER_LEN..key_end]);
            // Bytes 36..40 are reserved (zero; only the full checksum
            // covers them).
            if i < KEY_CRC_AT + 4 || (HEADER_LEN..key_end).contains(&i) {
                assert!(!ok, "byte {i} of header or key not caught");
            } else if i < HEADER_LEN {
                continue;
            } else {
                assert!(ok, "byte {i} of the value must not matter");
            }
        }
    }

    #[test]
    fn other_generation_and_zero_bytes() {
        let (_, bytes) = sample();
        assert_eq!(
            RecordRef::decode(Addr::new(0), 10, &bytes),
            Err(Invalid::Torn)
        );
        assert!(!key_is_valid(10, &bytes[..HEADER_LEN], b"hello"));
        assert_eq!(
            RecordRef::decode(Addr::new(0), 9, &[0u8; 64]),
            Err(Invalid::End)
        );
        // Truncated: the header promises more than the segment holds.
        assert_eq!(
            RecordRef::decode(Addr::new(0), 9, &bytes[..48]),
            Err(Invalid::Torn)
        );
    }
}
