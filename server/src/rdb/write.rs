//! Writing RDB objects as Redis 7.0's `rdbSaveObject` does (see the
//! module documentation of `rdb` for where bytes can differ).

use amber_storage::types::set::Member;
use amber_storage::types::{HashValue, ListValue, SetValue, ZSetValue};
use amber_storage::Value;

use super::listpack::Listpack;
use super::{intset, kind, lzf};

/// What shapes the bytes besides the value.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// `rdbcompression`: LZF-compress strings longer than 20 bytes.
    pub compress: bool,
    /// `list-max-listpack-size`: how a list is cut into quicklist nodes.
    pub list_fill: i64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            compress: true,
            list_fill: -2,
        }
    }
}

/// An RDB length (`rdbSaveLen`).
pub fn len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if let Ok(len) = u32::try_from(len) {
        out.push(0x80);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// A string (`rdbSaveRawString`): an integer encoding when the bytes are
/// a canonical decimal of at most 11 characters that fits 32 bits, else
/// LZF when `compress` and longer than 20 bytes and it saves at least 4
/// bytes, else the length and the bytes.
pub fn string(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= 11 {
        if let Some(v) = canonical_int(s) {
            if let Ok(v) = i8::try_from(v) {
                out.extend_from_slice(&[0xc0, v as u8]);
                return;
            } else if let Ok(v) = i16::try_from(v) {
                out.push(0xc1);
                out.extend_from_slice(&v.to_le_bytes());
                return;
            } else if let Ok(v) = i32::try_from(v) {
                out.push(0xc2);
                out.extend_from_slice(&v.to_le_bytes());
                return;
            }
        }
    }
    if compress && s.len() > 20 {
        if let Some(c) = lzf::compress(s, s.len() - 4) {
            out.push(0xc3);
            len(out, c.len() as u64);
            len(out, s.len() as u64);
            out.extend_from_slice(&c);
            return;
        }
    }
    len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// `string2ll` followed by the `ll2string` round trip check.
fn canonical_int(s: &[u8]) -> Option<i64> {
    let v: i64 = std::str::from_utf8(s).ok()?.parse().ok()?;
    let mut buf = itoa::Buffer::new();
    (buf.format(v).as_bytes() == s).then_some(v)
}

/// A value type this codec does not know (`Value` is non-exhaustive: a
/// type added to the storage crate before the codec learns it). Every type
/// Amber has today is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported;

/// The type byte and the object (`rdbSaveObjectType`, `rdbSaveObject`).
pub fn object(out: &mut Vec<u8>, value: &Value, opts: Options) -> Result<(), Unsupported> {
    match value {
        Value::Str(s) => {
            out.push(kind::STRING);
            string(out, &s.bytes, opts.compress);
        }
        Value::List(l) => list(out, l, opts),
        Value::Set(s) => set(out, s, opts),
        Value::Hash(h) => hash(out, h, opts),
        Value::ZSet(z) => zset(out, z, opts),
        Value::Stream(s) => super::stream::write(out, s, opts.compress),
        _ => return Err(Unsupported),
    }
    Ok(())
}

/// `_quicklistNodeAllowInsert`: whether an element of `sz` bytes joins a
/// node of `node_sz` bytes holding `count` elements under fill `fill`.
fn node_allows(node_sz: usize, count: usize, sz: usize, fill: i64) -> bool {
    const LEVELS: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
    let new_sz = node_sz + sz + 8;
    if fill < 0 {
        if let Some(&limit) = usize::try_from(-fill - 1).ok().and_then(|i| LEVELS.get(i)) {
            if new_sz <= limit {
                return true;
            }
        }
    }
    if new_sz > 8192 {
        return false;
    }
    i64::try_from(count).is_ok_and(|c| c < fill)
}

/// `RDB_TYPE_LIST_QUICKLIST_2`: the node count, then per node its
/// container (2: packed) and its listpack as a string. Nodes are cut as
/// `quicklistPushTail` cuts them.
fn list(out: &mut Vec<u8>, l: &ListValue, opts: Options) {
    let fill = opts.list_fill.clamp(-5, 32767);
    let mut nodes = Vec::new();
    let mut node = Listpack::new();
    for e in l.iter() {
        if !node.is_empty() && !node_allows(node.bytes(), node.len(), e.len(), fill) {
            nodes.push(std::mem::take(&mut node).finish());
        }
        node.push(e);
    }
    if !node.is_empty() {
        nodes.push(node.finish());
    }
    out.push(kind::LIST_QUICKLIST_2);
    len(out, nodes.len() as u64);
    for n in nodes {
        len(out, 2);
        string(out, &n, opts.compress);
    }
}

/// `RDB_TYPE_SET_INTSET` (the intset as a string) or `RDB_TYPE_SET`.
fn set(out: &mut Vec<u8>, s: &SetValue, opts: Options) {
    if s.is_intset() {
        let ints: Vec<i64> = s
            .iter()
            .filter_map(|m| match m {
                Member::Int(i) => Some(i),
                Member::Bytes(_) => None,
            })
            .collect();
        out.push(kind::SET_INTSET);
        string(out, &intset::encode(&ints), opts.compress);
    } else {
        out.push(kind::SET);
        len(out, s.len() as u64);
        for m in s.iter() {
            match m {
                Member::Int(i) => string(out, i.to_string().as_bytes(), opts.compress),
                Member::Bytes(b) => string(out, b, opts.compress),
            }
        }
    }
}

/// `RDB_TYPE_HASH_LISTPACK` or `RDB_TYPE_HASH` (pairs of strings).
fn hash(out: &mut Vec<u8>, h: &HashValue, opts: Options) {
    if h.is_listpack() {
        let mut lp = Listpack::new();
        for (f, v) in h.iter() {
            lp.push(f);
            lp.push(v);
        }
        out.push(kind::HASH_LISTPACK);
        string(out, &lp.finish(), opts.compress);
    } else {
        out.push(kind::HASH);
        len(out, h.len() as u64);
        for (f, v) in h.iter() {
            string(out, f, opts.compress);
            string(out, v, opts.compress);
        }
    }
}

/// `RDB_TYPE_ZSET_LISTPACK` (member, score as `d2string`) or
/// `RDB_TYPE_ZSET_2`: the count, then from the highest rank down each
/// member and its score as a little-endian double.
fn zset(out: &mut Vec<u8>, z: &ZSetValue, opts: Options) {
    if z.is_listpack() {
        let mut lp = Listpack::new();
        for (m, s) in z.iter() {
            lp.push(m);
            lp.push(d2string(s).as_bytes());
        }
        out.push(kind::ZSET_LISTPACK);
        string(out, &lp.finish(), opts.compress);
    } else {
        out.push(kind::ZSET_2);
        len(out, z.len() as u64);
        let elements: Vec<(&[u8], f64)> = z.iter().collect();
        for (m, s) in elements.into_iter().rev() {
            string(out, m, opts.compress);
            out.extend_from_slice(&s.to_le_bytes());
        }
    }
}

/// Redis's `d2string`: how a listpack stores a score (integers without
/// exponent up to 2^62, else `%.17g`).
pub fn d2string(d: f64) -> String {
    use crate::resp::writer::{format_double, format_g17};
    if d.is_infinite() || d.is_nan() {
        return format_double(d);
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let bound = (i64::MAX / 2) as f64;
    if d >= -bound && d <= bound && d.fract() == 0.0 {
        return (d as i64).to_string();
    }
    format_g17(d)
}

/// The `DUMP` payload of `value`.
pub fn payload(value: &Value, opts: Options) -> Result<Vec<u8>, Unsupported> {
    let mut out = Vec::new();
    object(&mut out, value, opts)?;
    Ok(super::seal(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_as_redis() {
        // Payloads of redis-server 7.0.15 (`SET k v`, `DUMP k`).
        let p = payload(&Value::string("hello"), Options::default()).expect("string");
        assert_eq!(&p[..7], b"\x00\x05hello");
        assert_eq!(&p[7..9], b"\x0a\x00");
        let p = payload(&Value::string("-129"), Options::default()).expect("int");
        assert_eq!(&p[..4], b"\x00\xc1\x7f\xff");
        let p = payload(&Value::string(vec![b'a'; 50]), Options::default()).expect("lzf");
        assert_eq!(
            p,
            b"\x00\xc3\t2\x01aa\xe0%\x00\x01aa\n\x00\t\xacH\xb9\xab\x15\xfb\xc9"
        );
    }
}
