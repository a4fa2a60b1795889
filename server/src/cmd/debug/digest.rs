//! `DEBUG DIGEST` and `DEBUG DIGEST-VALUE`: Redis 7.0's dataset digest
//! (`computeDatasetDigest`, `xorObjectDigest` in `debug.c`), so the same
//! data gives the same 40 hex digits on Amber and on `redis-server`.
//!
//! The digest is built from two SHA1 steps:
//! - *xor* (`xorDigest`): `d ^= SHA1(data)`, for unordered parts (set
//!   members, hash fields, sorted-set elements, the keys of a database), so
//!   their order does not matter;
//! - *mix* (`mixDigest`): `d = SHA1(d ^ SHA1(data))`, for ordered parts
//!   (list elements, stream entries, a key then its value).
//!
//! A key's digest mixes its name, then its type (as a big-endian `u32` of
//! Redis's `OBJ_*` number), then its logical content (never its encoding:
//! an intset member digests as its decimal text, a score as `%.17g`), and
//! xors in `"!!expire!!"` if it has a TTL (the deadline itself is left
//! out). A stream digests its entries only: IDs as `ms.seq`, then each
//! field and value; its consumer groups are not part of it. The dataset's
//! digest starts at zero and, per non-empty database in order, mixes the
//! database number and xors in every key's digest (hashed once more, as
//! *xor* hashes what it is given).

use amber_storage::types::set::Member;
use amber_storage::types::stream::StreamId;
use amber_storage::Value;

use crate::resp::writer::format_double;

/// A 20-byte SHA1-sized digest.
pub type Digest = [u8; 20];

/// `xorDigest`: `d ^= SHA1(data)`.
fn xor(d: &mut Digest, data: &[u8]) {
    let hash = sha1_smol::Sha1::from(data).digest().bytes();
    for (a, b) in d.iter_mut().zip(hash) {
        *a ^= b;
    }
}

/// `mixDigest`: `d = SHA1(d ^ SHA1(data))`.
fn mix(d: &mut Digest, data: &[u8]) {
    xor(d, data);
    *d = sha1_smol::Sha1::from(&d[..]).digest().bytes();
}

/// Redis's `OBJ_*` type numbers, which the digest mixes in.
fn type_number(v: &Value) -> u32 {
    match v {
        Value::Str(_) => 0,
        Value::List(_) => 1,
        Value::Set(_) => 2,
        Value::ZSet(_) => 3,
        Value::Hash(_) => 4,
        Value::Stream(_) => 6,
        // A type Redis does not have (`Value` is non-exhaustive): a number
        // no Redis type uses, so it never collides with one.
        _ => u32::MAX,
    }
}

/// `xorObjectDigest`: mixes `value`'s type and content into `d` (which the
/// caller may have seeded with the key's name), then xors in the expire
/// marker if the key has a TTL.
pub fn mix_value(d: &mut Digest, value: &Value, has_expire: bool) {
    mix(d, &type_number(value).to_be_bytes());
    match value {
        Value::Str(s) => mix(d, &s.bytes),
        Value::List(l) => l.iter().for_each(|e| mix(d, e)),
        Value::Set(s) => {
            for m in s.iter() {
                match m {
                    Member::Int(i) => xor(d, itoa::Buffer::new().format(i).as_bytes()),
                    Member::Bytes(b) => xor(d, b),
                }
            }
        }
        Value::ZSet(z) => {
            for (member, score) in z.iter() {
                let mut element = [0; 20];
                mix(&mut element, member);
                mix(&mut element, format_double(score).as_bytes());
                xor(d, &element);
            }
        }
        Value::Hash(h) => {
            for (field, val) in h.iter() {
                let mut element = [0; 20];
                mix(&mut element, field);
                mix(&mut element, val);
                xor(d, &element);
            }
        }
        Value::Stream(s) => {
            for (id, fields) in s.range(StreamId::MIN, StreamId::MAX) {
                mix(d, format!("{}.{}", id.ms, id.seq).as_bytes());
                // Field, value, field, value...: each mixed in order.
                fields.iter().for_each(|f| mix(d, f));
            }
        }
        // A type Redis does not have: only its type number is digested.
        _ => {}
    }
    if has_expire {
        xor(d, b"!!expire!!");
    }
}

/// The digest of one key as the dataset digest xors it in: the key's name
/// mixed in first, then [`mix_value`].
pub fn key_digest(key: &[u8], value: &Value, has_expire: bool) -> Digest {
    let mut d = [0; 20];
    mix(&mut d, key);
    mix_value(&mut d, value, has_expire);
    d
}

/// Builds a dataset digest one database at a time (`computeDatasetDigest`).
#[derive(Default)]
pub struct DatasetDigest {
    digest: Digest,
}

impl DatasetDigest {
    /// Starts a non-empty database: its number is mixed in, so the same
    /// keys in another database digest differently. Skip empty databases.
    pub fn begin_db(&mut self, db: usize) {
        mix(&mut self.digest, &(db as u32).to_be_bytes());
    }

    /// Adds one key of the current database (order does not matter).
    pub fn add_key(&mut self, key: &[u8], value: &Value, has_expire: bool) {
        // `xorDigest(final, digest, 20)`: the key's digest is hashed again.
        xor(&mut self.digest, &key_digest(key, value, has_expire));
    }

    /// The digest so far.
    pub fn finish(&self) -> Digest {
        self.digest
    }
}

/// A digest as Redis prints it: 40 lowercase hex digits.
pub fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_does_not_matter_but_list_order_does() {
        let (a, b) = (Value::string("1"), Value::string("2"));
        let mut x = DatasetDigest::default();
        x.begin_db(0);
        x.add_key(b"a", &a, false);
        x.add_key(b"b", &b, false);
        let mut y = DatasetDigest::default();
        y.begin_db(0);
        y.add_key(b"b", &b, false);
        y.add_key(b"a", &a, false);
        assert_eq!(x.finish(), y.finish());
        assert_ne!(x.finish(), [0; 20]);

        let mut l1 = amber_storage::types::ListValue::new();
        let mut l2 = amber_storage::types::ListValue::new();
        for v in [b"x", b"y"] {
            l1.push_back(v);
            l2.push_front(v);
        }
        assert_ne!(
            key_digest(b"l", &Value::from(l1), false),
            key_digest(b"l", &Value::from(l2), false)
        );
    }

    #[test]
    fn expire_marker_changes_the_digest() {
        let v = Value::string("v");
        assert_ne!(key_digest(b"k", &v, false), key_digest(b"k", &v, true));
        assert_eq!(hex(&[0; 20]), "0".repeat(40));
    }
}
