//! Reading RDB values from a buffer: every length and offset is checked,
//! and a malformed input yields `None`, never a panic.

use amber_storage::types::hash::HashLimits;
use amber_storage::types::zset::ListpackLimits;
use amber_storage::types::{HashValue, ListValue, SetValue, ZSetValue};
use amber_storage::Value;

use super::{intset, kind, listpack, lzf, ziplist};

/// `RDB_ENC_INT8`, `RDB_ENC_INT16`, `RDB_ENC_INT32`, `RDB_ENC_LZF`.
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// A cursor over RDB bytes.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

/// A length, or the encoding of a specially encoded string.
pub enum Len {
    /// A plain length.
    Plain(u64),
    /// `RDB_ENCVAL`: a specially encoded string follows.
    Encoded(u8),
}

impl<'a> Reader<'a> {
    /// A reader at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Whether every byte has been read.
    pub fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// One byte.
    pub fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.bytes(N)?.try_into().ok()
    }

    /// `rdbLoadLenByRef`.
    pub fn len(&mut self) -> Option<Len> {
        let first = self.byte()?;
        Some(match first >> 6 {
            0 => Len::Plain(u64::from(first & 0x3f)),
            1 => Len::Plain(u64::from(first & 0x3f) << 8 | u64::from(self.byte()?)),
            3 => Len::Encoded(first & 0x3f),
            _ => match first {
                0x80 => Len::Plain(u64::from(u32::from_be_bytes(self.array()?))),
                0x81 => Len::Plain(u64::from_be_bytes(self.array()?)),
                _ => return None,
            },
        })
    }

    /// A plain length (`rdbLoadLen`), as a `usize`.
    pub fn plain_len(&mut self) -> Option<usize> {
        match self.len()? {
            Len::Plain(n) => usize::try_from(n).ok(),
            Len::Encoded(_) => None,
        }
    }

    /// `rdbGenericLoadStringObject`: the string's bytes (an integer
    /// encoding becomes its decimal digits).
    pub fn string(&mut self) -> Option<Vec<u8>> {
        match self.len()? {
            Len::Plain(n) => Some(self.bytes(usize::try_from(n).ok()?)?.to_vec()),
            Len::Encoded(ENC_INT8) => Some((self.byte()? as i8).to_string().into_bytes()),
            Len::Encoded(ENC_INT16) => {
                Some(i16::from_le_bytes(self.array()?).to_string().into_bytes())
            }
            Len::Encoded(ENC_INT32) => {
                Some(i32::from_le_bytes(self.array()?).to_string().into_bytes())
            }
            Len::Encoded(ENC_LZF) => {
                let compressed_len = self.plain_len()?;
                let len = self.plain_len()?;
                lzf::decompress(self.bytes(compressed_len)?, len)
            }
            Len::Encoded(_) => None,
        }
    }
}

/// The encoding thresholds a loaded value is shaped with, as Redis shapes
/// it with its configuration while loading.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// `hash-max-listpack-*`.
    pub hash: HashLimits,
    /// `zset-max-listpack-*`.
    pub zset: ListpackLimits,
    /// `set-max-intset-entries`.
    pub max_intset: usize,
}

impl Limits {
    /// Redis's defaults.
    pub fn default_redis() -> Self {
        Limits {
            hash: HashLimits::default(),
            zset: ListpackLimits::default(),
            max_intset: 512,
        }
    }
}

/// Why an object did not load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadError {
    /// Malformed, empty, or of a type Amber does not load (Redis answers
    /// `Bad data format` to all of them).
    BadFormat,
    /// A well-formed but empty collection (`RDB_LOAD_ERR_EMPTY_KEY`).
    EmptyKey,
}

type Loaded = Result<Value, LoadError>;

/// The elements of a ziplist (`ziplist`) or listpack string that holds
/// pairs: hash fields and values, sorted-set members and scores.
fn packed_pairs(r: &mut Reader<'_>, ziplist: bool) -> Result<Vec<Vec<u8>>, LoadError> {
    let blob = r.string().bad()?;
    let els = if ziplist {
        ziplist::elements(&blob)
    } else {
        listpack::elements(&blob)
    }
    .bad()?;
    if els.len() % 2 != 0 {
        return Err(LoadError::BadFormat);
    }
    Ok(els)
}

trait OrBad<T> {
    fn bad(self) -> Result<T, LoadError>;
}

impl<T> OrBad<T> for Option<T> {
    fn bad(self) -> Result<T, LoadError> {
        self.ok_or(LoadError::BadFormat)
    }
}

/// `rdbLoadObjectType` then `rdbLoadObject`: the value of the object at
/// the reader's position. Bytes after the object are not looked at (Redis
/// does not look either).
pub fn object(r: &mut Reader<'_>, limits: Limits) -> Loaded {
    let t = r.byte().bad()?;
    object_of_type(r, t, limits)
}

/// `rdbLoadObject` for an object of type `t` (the type byte already read:
/// in an RDB file the key's name sits between the two).
pub fn object_of_type(r: &mut Reader<'_>, t: u8, limits: Limits) -> Loaded {
    let value = match t {
        kind::STRING => Value::string(r.string().bad()?),
        kind::LIST => {
            let n = r.plain_len().bad()?;
            let mut l = ListValue::new();
            for _ in 0..n {
                l.push_back(&r.string().bad()?);
            }
            Value::from(l)
        }
        kind::SET => {
            let n = r.plain_len().bad()?;
            let mut s = SetValue::default();
            if n > limits.max_intset {
                s.convert_to_table();
            }
            for _ in 0..n {
                if !s.add(&r.string().bad()?, limits.max_intset) {
                    // "Duplicate set members detected".
                    return Err(LoadError::BadFormat);
                }
            }
            Value::from(s)
        }
        kind::ZSET | kind::ZSET_2 => {
            let n = r.plain_len().bad()?;
            let mut z = ZSetValue::new_skiplist();
            for _ in 0..n {
                let member = r.string().bad()?;
                let score = if t == kind::ZSET_2 {
                    f64::from_le_bytes(r.array().bad()?)
                } else {
                    text_double(r).bad()?
                };
                if score.is_nan() || !z.insert(&member, score) {
                    return Err(LoadError::BadFormat);
                }
            }
            // Converted after loading, as `rdbLoadObject` does.
            if z.len() <= limits.zset.entries && z.iter().all(|(m, _)| m.len() <= limits.zset.value)
            {
                z.set_listpack(true);
            }
            Value::from(z)
        }
        kind::HASH => {
            let n = r.plain_len().bad()?;
            let mut h = HashValue::default();
            if n > limits.hash.max_entries {
                h.convert_to_table();
            }
            for _ in 0..n {
                let (f, v) = (r.string().bad()?, r.string().bad()?);
                if !h.insert(&f, &v, limits.hash) {
                    return Err(LoadError::BadFormat);
                }
            }
            Value::from(h)
        }
        kind::HASH_ZIPMAP => {
            let pairs = ziplist::zipmap_pairs(&r.string().bad()?).bad()?;
            hash_of_pairs(pairs.into_iter(), limits)?
        }
        kind::HASH_ZIPLIST | kind::HASH_LISTPACK => {
            let els = packed_pairs(r, t == kind::HASH_ZIPLIST)?;
            let mut it = els.into_iter();
            let mut pairs = Vec::new();
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                pairs.push((f, v));
            }
            hash_of_pairs(pairs.into_iter(), limits)?
        }
        kind::LIST_ZIPLIST => {
            let els = ziplist::elements(&r.string().bad()?).bad()?;
            Value::from(els.iter().map(Vec::as_slice).collect::<ListValue>())
        }
        kind::SET_INTSET => {
            let ints = intset::decode(&r.string().bad()?).bad()?;
            let mut s = SetValue::default();
            if ints.len() > limits.max_intset {
                s.convert_to_table();
            }
            let mut buf = itoa::Buffer::new();
            for i in ints {
                if !s.add(buf.format(i).as_bytes(), usize::MAX) {
                    return Err(LoadError::BadFormat);
                }
            }
            Value::from(s)
        }
        kind::ZSET_ZIPLIST | kind::ZSET_LISTPACK => {
            let els = packed_pairs(r, t == kind::ZSET_ZIPLIST)?;
            let mut z = ZSetValue::new_skiplist();
            let mut it = els.into_iter();
            while let (Some(m), Some(s)) = (it.next(), it.next()) {
                let score = parse_score(&s).bad()?;
                if !z.insert(&m, score) {
                    return Err(LoadError::BadFormat);
                }
            }
            // Only the length decides here (`rdbLoadObject`).
            if z.len() <= limits.zset.entries {
                z.set_listpack(true);
            }
            Value::from(z)
        }
        kind::LIST_QUICKLIST | kind::LIST_QUICKLIST_2 => {
            let nodes = r.plain_len().bad()?;
            let mut l = ListValue::new();
            for _ in 0..nodes {
                let container = if t == kind::LIST_QUICKLIST_2 {
                    r.plain_len().bad()?
                } else {
                    2
                };
                let blob = r.string().bad()?;
                match container {
                    // QUICKLIST_NODE_CONTAINER_PLAIN: one element.
                    1 => l.push_back(&blob),
                    2 => {
                        let els = if t == kind::LIST_QUICKLIST {
                            ziplist::elements(&blob)
                        } else {
                            listpack::elements(&blob)
                        }
                        .bad()?;
                        for e in els {
                            l.push_back(&e);
                        }
                    }
                    _ => return Err(LoadError::BadFormat),
                }
            }
            Value::from(l)
        }
        kind::STREAM_LISTPACKS | kind::STREAM_LISTPACKS_2 => {
            Value::from(super::stream::read(r, t)?)
        }
        // 7.2's `RDB_TYPE_STREAM_LISTPACKS_3`, modules: Amber loads neither
        // (nor does Redis 7.0).
        _ => return Err(LoadError::BadFormat),
    };
    if value.is_empty_collection() {
        // `emptykey`: Redis refuses empty collections (`RESTORE`), or
        // skips them with a warning (loading a file).
        return Err(LoadError::EmptyKey);
    }
    Ok(value)
}

/// A hash of `pairs`, shaped as Redis shapes a loaded ziplist, listpack
/// or zipmap hash (a hashtable past either threshold). A repeated field
/// is refused.
fn hash_of_pairs(
    pairs: impl ExactSizeIterator<Item = (Vec<u8>, Vec<u8>)>,
    limits: Limits,
) -> Loaded {
    let mut h = HashValue::default();
    if pairs.len() > limits.hash.max_entries {
        h.convert_to_table();
    }
    for (f, v) in pairs {
        if !h.insert(&f, &v, limits.hash) {
            return Err(LoadError::BadFormat);
        }
    }
    Ok(Value::from(h))
}

/// `rdbLoadDoubleValue`: a length byte (253 nan, 254 +inf, 255 -inf) then
/// that many bytes of decimal text.
fn text_double(r: &mut Reader<'_>) -> Option<f64> {
    match r.byte()? {
        253 => Some(f64::NAN),
        254 => Some(f64::INFINITY),
        255 => Some(f64::NEG_INFINITY),
        n => parse_score(r.bytes(usize::from(n))?),
    }
}

/// A score as text (`strtod`), as stored in ziplists and listpacks.
fn parse_score(s: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(s).ok()?;
    let v = match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => s.parse().ok()?,
    };
    (!v.is_nan()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::write::{self, Options};

    fn round_trip(v: &Value) -> Value {
        let p = write::payload(v, Options::default()).expect("writable");
        let body = crate::rdb::unseal(&p).expect("sealed");
        object(&mut Reader::new(body), Limits::default_redis()).expect("loads")
    }

    #[test]
    fn every_type_round_trips() {
        assert_eq!(round_trip(&Value::string("12")), Value::string("12"));
        let long = vec![b'z'; 10_000];
        assert_eq!(
            round_trip(&Value::string(long.clone())),
            Value::string(long)
        );
        let l: ListValue = (0..3000)
            .map(|i| format!("e{i}"))
            .collect::<Vec<_>>()
            .iter()
            .map(|s| s.as_bytes())
            .collect();
        assert_eq!(round_trip(&Value::from(l.clone())), Value::from(l));
        let mut h = HashValue::default();
        h.insert(b"f", b"1", HashLimits::default());
        h.insert(b"g", b"-300", HashLimits::default());
        assert_eq!(round_trip(&Value::from(h.clone())), Value::from(h));
        let mut z = ZSetValue::new();
        z.insert(b"a", 1.5);
        z.insert(b"b", -2.0);
        z.insert(b"c", f64::INFINITY);
        assert_eq!(round_trip(&Value::from(z.clone())), Value::from(z));
        let mut s = SetValue::default();
        s.add(b"7", 512);
        s.add(b"-100000", 512);
        assert_eq!(round_trip(&Value::from(s.clone())), Value::from(s));
    }

    #[test]
    fn refuses_truncations() {
        let body = [kind::STREAM_LISTPACKS_2, 0];
        assert_eq!(
            object(&mut Reader::new(&body), Limits::default_redis()),
            Err(LoadError::BadFormat)
        );
        let p = write::payload(&Value::string("hello world"), Options::default()).expect("ok");
        for cut in 0..12 {
            let _ = object(&mut Reader::new(&p[..cut]), Limits::default_redis());
        }
    }
}
