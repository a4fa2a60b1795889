//! How values are written into arena records and read back.
//!
//! The record's `kind` byte says how its value bytes are encoded:
//!
//! | kind | value bytes |
//! |---|---|
//! | 1 `STRING` | the string's bytes |
//! | 2 `STRING_RAW` | the string's bytes; the string was edited in place (`OBJECT ENCODING` says `raw`) |
//! | 3 `HASH` | `crate::types::hash`'s encoding |
//! | 4 `LIST` | `crate::types::list`'s encoding |
//! | 5 `SET` | `crate::types::set`'s encoding |
//! | 6 `ZSET` | `crate::types::zset`'s encoding |
//! | 7 `STRING_NO_INT` | the string's bytes; never reported `int` (`INCRBYFLOAT`'s result) |
//! | 8 `STREAM` | `crate::types::stream`'s encoding |
//!
//! Each collection type documents its own value layout next to its
//! `encode`. A kind this build does not know is reported as corrupt rather
//! than guessed at.

use std::borrow::Cow;

use crate::types::{HashValue, ListValue, SetValue, StreamValue, ZSetValue};
use crate::value::{StrValue, Value, ValueType};

/// A string.
pub const KIND_STRING: u8 = 1;
/// A string edited in place.
pub const KIND_STRING_RAW: u8 = 2;
/// A hash.
pub const KIND_HASH: u8 = 3;
/// A list.
pub const KIND_LIST: u8 = 4;
/// A set.
pub const KIND_SET: u8 = 5;
/// A sorted set.
pub const KIND_ZSET: u8 = 6;
/// A string that is never reported as `int`.
pub const KIND_STRING_NO_INT: u8 = 7;
/// A stream.
pub const KIND_STREAM: u8 = 8;

/// The record kind and value bytes for `value` (strings are borrowed).
pub fn encode(value: &Value) -> (u8, Cow<'_, [u8]>) {
    match value {
        Value::Str(s) => {
            let kind = kind_of(value);
            (kind, Cow::Borrowed(s.bytes.as_slice()))
        }
        Value::Hash(v) => (KIND_HASH, Cow::Owned(v.encode())),
        Value::List(v) => (KIND_LIST, Cow::Owned(v.encode())),
        Value::Set(v) => (KIND_SET, Cow::Owned(v.encode())),
        Value::ZSet(v) => (KIND_ZSET, Cow::Owned(v.encode())),
        Value::Stream(v) => (KIND_STREAM, Cow::Owned(v.encode())),
    }
}

/// The record kind `value` is written with.
pub fn kind_of(value: &Value) -> u8 {
    match value {
        Value::Str(s) if s.raw => KIND_STRING_RAW,
        Value::Str(s) if s.no_int => KIND_STRING_NO_INT,
        Value::Str(_) => KIND_STRING,
        Value::Hash(_) => KIND_HASH,
        Value::List(_) => KIND_LIST,
        Value::Set(_) => KIND_SET,
        Value::ZSet(_) => KIND_ZSET,
        Value::Stream(_) => KIND_STREAM,
    }
}

/// Decodes a record's value; `None` for an unknown kind or malformed bytes.
pub fn decode(kind: u8, bytes: &[u8]) -> Option<Value> {
    match kind {
        KIND_STRING => Some(Value::Str(StrValue::new(bytes.to_vec()))),
        KIND_STRING_RAW => Some(Value::Str(StrValue {
            bytes: bytes.to_vec(),
            raw: true,
            no_int: false,
        })),
        KIND_STRING_NO_INT => Some(Value::Str(StrValue::without_int(bytes.to_vec()))),
        KIND_HASH => HashValue::decode(bytes).map(Value::from),
        KIND_LIST => ListValue::decode(bytes).map(Value::from),
        KIND_SET => SetValue::decode(bytes).map(Value::from),
        KIND_ZSET => ZSetValue::decode(bytes).map(Value::from),
        KIND_STREAM => StreamValue::decode(bytes).map(Value::from),
        _ => None,
    }
}

/// The value type a record kind decodes to.
pub fn type_of(kind: u8) -> Option<ValueType> {
    match kind {
        KIND_STRING | KIND_STRING_RAW | KIND_STRING_NO_INT => Some(ValueType::String),
        KIND_HASH => Some(ValueType::Hash),
        KIND_LIST => Some(ValueType::List),
        KIND_SET => Some(ValueType::Set),
        KIND_ZSET => Some(ValueType::ZSet),
        KIND_STREAM => Some(ValueType::Stream),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let values = [
            Value::string(b"abc".to_vec()),
            Value::Str(StrValue {
                bytes: vec![0, 1],
                raw: true,
                no_int: false,
            }),
            Value::Str(StrValue::without_int(b"10".to_vec())),
            Value::from(StreamValue::new()),
        ];
        for v in values {
            let (kind, bytes) = encode(&v);
            assert_eq!(decode(kind, &bytes), Some(v.clone()));
            assert_eq!(type_of(kind), Some(v.value_type()));
        }
        assert_eq!(decode(99, b""), None);
    }
}
