//! `FUNCTION DUMP` / `FUNCTION RESTORE` payloads, in Redis 7.0's format
//! (`functionDumpCommand`, `verifyDumpPayload`, `rdb.c`): for each
//! library the RDB opcode `FUNCTION2` and its code as an RDB string, then
//! the RDB version (2 bytes, little-endian) and the CRC64 (Jones) of all
//! before it (8 bytes, little-endian).
//!
//! Amber writes the code uncompressed (Redis reads that); it reads
//! uncompressed, integer-encoded and LZF-compressed strings, so a payload
//! from Redis restores here. The RDB pieces are `crate::rdb`'s.

use crate::rdb::read::Reader;
use crate::rdb::{self, crc64, RDB_VERSION};

/// `RDB_OPCODE_FUNCTION2`: a library's code follows.
const OPCODE_FUNCTION: u8 = 245;
/// `RDB_OPCODE_FUNCTION_PRE_GA`: the release candidates' format.
const OPCODE_FUNCTION_PRE_GA: u8 = 246;
/// Redis's text for a payload whose footer does not check.
pub const BAD_PAYLOAD: &str = "DUMP payload version or checksum are wrong";

/// The payload of libraries whose codes are `codes`.
pub fn encode<'a>(codes: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(OPCODE_FUNCTION);
        rdb::write::len(&mut out, code.len() as u64);
        out.extend_from_slice(code);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The library codes of a payload; the error is Redis's text.
pub fn decode(payload: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let Some(body_len) = payload.len().checked_sub(10) else {
        return Err(BAD_PAYLOAD.into());
    };
    let (body, footer) = payload.split_at(body_len);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&footer[2..]);
    let checked = payload.get(..payload.len() - 8).unwrap_or_default();
    if version > RDB_VERSION || u64::from_le_bytes(crc) != crc64(checked) {
        return Err(BAD_PAYLOAD.into());
    }
    let mut reader = Reader::new(body);
    let mut codes = Vec::new();
    while !reader.at_end() {
        match reader.byte() {
            Some(OPCODE_FUNCTION) => {}
            Some(OPCODE_FUNCTION_PRE_GA) => {
                return Err("Pre-GA function format not supported".into())
            }
            Some(_) => return Err("given type is not a function".into()),
            None => return Err("can not read data type".into()),
        }
        let code = reader
            .string()
            .ok_or_else(|| "Failed loading library payload".to_string())?;
        codes.push(code);
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_bad_payloads() {
        let code = b"#!lua name=x\nredis.register_function('f', function() return 1 end)";
        let long = vec![b'a'; 20_000];
        let payload = encode([&code[..], &long[..]]);
        assert_eq!(decode(&payload), Ok(vec![code.to_vec(), long.clone()]));
        // The empty payload of a server without libraries.
        assert_eq!(decode(&encode([])), Ok(vec![]));
        let mut bad = payload.clone();
        bad[3] ^= 1;
        assert_eq!(decode(&bad), Err(BAD_PAYLOAD.into()));
        assert_eq!(decode(b"short"), Err(BAD_PAYLOAD.into()));
    }
}
