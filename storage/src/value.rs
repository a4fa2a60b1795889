//! Typed values as the keyspace stores them in DRAM.
//!
//! Strings live here; each collection type has its own module under
//! `crate::types`. Commands match on [`Value`] and answer `WRONGTYPE`
//! themselves.

use crate::types::journal::Journal;
use crate::types::{HashValue, ListValue, SetValue, StreamValue, ZSetValue};

/// A value stored under a key.
///
/// Collections are boxed: every hot entry holds a `Value` inline, and an
/// inline sorted set (208 bytes) made each entry 280 bytes, a string key's
/// included; boxed, a `Value` is 40 bytes (the string's).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// A binary-safe string (Redis's `string` type, also used by the bit commands).
    Str(StrValue),
    /// A hash.
    Hash(Box<HashValue>),
    /// A list.
    List(Box<ListValue>),
    /// A set.
    Set(Box<SetValue>),
    /// A sorted set.
    ZSet(Box<ZSetValue>),
    /// A stream.
    Stream(Box<StreamValue>),
}

macro_rules! boxed_from {
    ($($t:ident => $v:ident),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Value {
                Value::$v(Box::new(v))
            }
        }
    )*};
}
boxed_from!(HashValue => Hash, ListValue => List, SetValue => Set, ZSetValue => ZSet, StreamValue => Stream);

/// The type name a value reports through `TYPE` and `SCAN ... TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// `string`
    String,
    /// `hash`
    Hash,
    /// `list`
    List,
    /// `set`
    Set,
    /// `zset`
    ZSet,
    /// `stream`
    Stream,
}

impl ValueType {
    /// The name Redis uses for this type.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Hash => "hash",
            ValueType::List => "list",
            ValueType::Set => "set",
            ValueType::ZSet => "zset",
            ValueType::Stream => "stream",
        }
    }
}

impl Value {
    /// Builds a string value from bytes.
    pub fn string(bytes: impl Into<Vec<u8>>) -> Self {
        Value::Str(StrValue::new(bytes.into()))
    }

    /// The value's type.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::Str(_) => ValueType::String,
            Value::Hash(_) => ValueType::Hash,
            Value::List(_) => ValueType::List,
            Value::Set(_) => ValueType::Set,
            Value::ZSet(_) => ValueType::ZSet,
            Value::Stream(_) => ValueType::Stream,
        }
    }

    /// Approximate DRAM bytes used by the value (heap and inline), for
    /// `MEMORY USAGE` and tier accounting.
    pub fn mem_usage(&self) -> usize {
        match self {
            Value::Str(s) => std::mem::size_of::<Value>() + s.bytes.capacity(),
            Value::Hash(v) => std::mem::size_of::<Value>() + v.mem_usage(),
            Value::List(v) => std::mem::size_of::<Value>() + v.mem_usage(),
            Value::Set(v) => std::mem::size_of::<Value>() + v.mem_usage(),
            Value::ZSet(v) => std::mem::size_of::<Value>() + v.mem_usage(),
            Value::Stream(v) => std::mem::size_of::<Value>() + v.mem_usage(),
        }
    }

    /// The Redis encoding name `OBJECT ENCODING` reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding(),
            Value::Hash(v) => v.encoding(),
            Value::List(v) => v.encoding(),
            Value::Set(v) => v.encoding(),
            Value::ZSet(v) => v.encoding(),
            Value::Stream(v) => v.encoding(),
        }
    }

    /// The change journal of a collection (`None` for a string, which is
    /// always written whole). See `crate::types::journal`.
    pub fn journal_mut(&mut self) -> Option<&mut Journal> {
        match self {
            Value::Str(_) => None,
            Value::Hash(v) => Some(&mut v.journal),
            Value::List(v) => Some(&mut v.journal),
            Value::Set(v) => Some(&mut v.journal),
            Value::ZSet(v) => Some(&mut v.journal),
            Value::Stream(v) => Some(&mut v.journal),
        }
    }

    /// Whether this is a collection with no elements left (its key must be
    /// removed, as Redis removes emptied keys).
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::Hash(v) => v.is_empty(),
            Value::List(v) => v.is_empty(),
            Value::Set(v) => v.is_empty(),
            Value::ZSet(v) => v.is_empty(),
            Value::Stream(v) => v.is_empty(),
        }
    }
}

/// The longest string Redis stores in the `embstr` encoding.
const EMBSTR_MAX: usize = 44;

/// A string value with the facts needed to report Redis's encoding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StrValue {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Set once the string has been modified in place (APPEND, SETRANGE,
    /// SETBIT...): Redis reports such strings as `raw` whatever their length.
    pub raw: bool,
    /// Created as Redis's `createStringObject` creates it, without trying
    /// the `int` encoding (`INCRBYFLOAT`'s result): `embstr` up to 44 bytes,
    /// else `raw`, even when the bytes are an integer.
    pub no_int: bool,
}

impl StrValue {
    /// A freshly written string (as by `SET`).
    pub fn new(bytes: Vec<u8>) -> Self {
        StrValue {
            bytes,
            ..StrValue::default()
        }
    }

    /// A string Redis creates with `createStringObject` and never
    /// int-encodes (see [`StrValue::no_int`]).
    pub fn without_int(bytes: Vec<u8>) -> Self {
        StrValue {
            bytes,
            raw: false,
            no_int: true,
        }
    }

    /// The encoding Redis would report: `int`, `embstr` or `raw`.
    pub fn encoding(&self) -> &'static str {
        if !self.raw && !self.no_int && is_int_encodable(&self.bytes) {
            "int"
        } else if !self.raw && self.bytes.len() <= EMBSTR_MAX {
            "embstr"
        } else {
            "raw"
        }
    }

    /// Mutable access for in-place edits; marks the string `raw` as Redis does.
    pub fn bytes_mut(&mut self) -> &mut Vec<u8> {
        self.raw = true;
        &mut self.bytes
    }
}

/// Whether Redis would store these bytes with the `int` encoding: a canonical
/// signed 64-bit decimal (no leading zeros or `+`, at most 20 characters).
pub fn is_int_encodable(b: &[u8]) -> bool {
    if b.is_empty() || b.len() > 20 {
        return false;
    }
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .is_some_and(|v| v.to_string().as_bytes() == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_and_a_hot_entry_stay_small() {
        // Every hot key holds one `Value` inline in its slab slot: with the
        // collections inline the slot was 280 bytes, a string key's too.
        let (value, entry) = (
            std::mem::size_of::<Value>(),
            std::mem::size_of::<crate::tier::slab::HotEntry>(),
        );
        assert!(value <= 40, "Value is {value} bytes");
        assert!(entry <= 128, "HotEntry is {entry} bytes");
    }

    #[test]
    fn encodings() {
        assert_eq!(StrValue::new(b"123".to_vec()).encoding(), "int");
        assert_eq!(
            StrValue::new(b"-9223372036854775808".to_vec()).encoding(),
            "int"
        );
        assert_eq!(StrValue::new(b"0123".to_vec()).encoding(), "embstr");
        assert_eq!(StrValue::new(b"+1".to_vec()).encoding(), "embstr");
        assert_eq!(StrValue::new(vec![b'a'; 44]).encoding(), "embstr");
        assert_eq!(StrValue::new(vec![b'a'; 45]).encoding(), "raw");
        let mut s = StrValue::new(b"ab".to_vec());
        s.bytes_mut().push(b'c');
        assert_eq!(s.encoding(), "raw");
        // INCRBYFLOAT's result: never int.
        assert_eq!(StrValue::without_int(b"0".to_vec()).encoding(), "embstr");
        assert_eq!(StrValue::without_int(vec![b'1'; 45]).encoding(), "raw");
    }
}
