//! How values are written into arena records and read back.
//!
//! The record's `kind` byte says how its value bytes are encoded:
//!
//! | kind | value bytes |
//! |---|---|
//! | 1 `STRING` | the string's bytes |
//! | 2 `STRING_RAW` | the string's bytes; the string was edited in place (`OBJECT ENCODING` says `raw`) |
//!
//! Collections join this table with the data-types work; a kind this build
//! does not know is reported as corrupt rather than guessed at.

use crate::value::{StrValue, Value, ValueType};

/// A string.
pub const KIND_STRING: u8 = 1;
/// A string edited in place.
pub const KIND_STRING_RAW: u8 = 2;

/// The record kind and value parts for `value` (borrowed, no copy).
pub fn encode(value: &Value) -> (u8, [&[u8]; 1]) {
    match value {
        Value::Str(s) => (
            if s.raw { KIND_STRING_RAW } else { KIND_STRING },
            [s.bytes.as_slice()],
        ),
    }
}

/// Decodes a record's value; `None` for an unknown kind.
pub fn decode(kind: u8, bytes: &[u8]) -> Option<Value> {
    match kind {
        KIND_STRING => Some(Value::Str(StrValue {
            bytes: bytes.to_vec(),
            raw: false,
        })),
        KIND_STRING_RAW => Some(Value::Str(StrValue {
            bytes: bytes.to_vec(),
            raw: true,
        })),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for v in [
            Value::string(b"abc".to_vec()),
            Value::Str(StrValue {
                bytes: vec![0, 1],
                raw: true,
            }),
        ] {
            let (kind, parts) = encode(&v);
            assert_eq!(decode(kind, parts[0]), Some(v));
        }
        assert_eq!(decode(99, b""), None);
    }
}

/// The value type a record kind decodes to.
pub fn type_of(kind: u8) -> Option<ValueType> {
    match kind {
        KIND_STRING | KIND_STRING_RAW => Some(ValueType::String),
        _ => None,
    }
}
