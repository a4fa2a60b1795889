//! `FUNCTION DUMP` / `FUNCTION RESTORE` payloads, in Redis 7.0's format
//! (`functionDumpCommand`, `verifyDumpPayload`, `rdb.c`): for each
//! library the RDB opcode `FUNCTION2` and its code as an RDB string, then
//! the RDB version (2 bytes, little-endian) and the CRC64 (Jones) of all
//! before it (8 bytes, little-endian).
//!
//! Amber writes the code uncompressed (Redis reads that); it reads
//! uncompressed, integer-encoded and LZF-compressed strings, so a payload
//! from Redis restores here.

/// `RDB_OPCODE_FUNCTION2`: a library's code follows.
const OPCODE_FUNCTION: u8 = 245;
/// `RDB_OPCODE_FUNCTION_PRE_GA`: the release candidates' format.
const OPCODE_FUNCTION_PRE_GA: u8 = 246;
/// Redis 7.0's `RDB_VERSION`.
const RDB_VERSION: u16 = 10;

/// Redis's text for a payload whose footer does not check.
pub const BAD_PAYLOAD: &str = "DUMP payload version or checksum are wrong";

/// `crc64` of Redis (Jones polynomial, reflected, no final xor).
pub fn crc64(data: &[u8]) -> u64 {
    const POLY: u64 = 0x95ac_9329_ac4b_c9b5;
    let mut crc = 0u64;
    for &byte in data {
        crc ^= u64::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// The payload of libraries whose codes are `codes`.
pub fn encode<'a>(codes: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(OPCODE_FUNCTION);
        write_len(&mut out, code.len() as u64);
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
    let mut reader = Reader { data: body, pos: 0 };
    let mut codes = Vec::new();
    while reader.pos < body.len() {
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

/// An RDB length (`rdbSaveLen`).
fn write_len(out: &mut Vec<u8>, len: u64) {
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

/// Reads RDB values from a buffer.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

/// A length, or the encoding of a specially encoded string.
enum Len {
    Plain(u64),
    Encoded(u8),
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// `rdbLoadLenByRef`.
    fn len(&mut self) -> Option<Len> {
        let first = self.byte()?;
        Some(match first >> 6 {
            0 => Len::Plain(u64::from(first & 0x3f)),
            1 => Len::Plain(u64::from(first & 0x3f) << 8 | u64::from(self.byte()?)),
            3 => Len::Encoded(first & 0x3f),
            _ => match first {
                0x80 => Len::Plain(u64::from(u32::from_be_bytes(
                    self.bytes(4)?.try_into().ok()?,
                ))),
                0x81 => Len::Plain(u64::from_be_bytes(self.bytes(8)?.try_into().ok()?)),
                _ => return None,
            },
        })
    }

    fn plain_len(&mut self) -> Option<usize> {
        match self.len()? {
            Len::Plain(n) => usize::try_from(n).ok(),
            Len::Encoded(_) => None,
        }
    }

    /// `rdbGenericLoadStringObject`.
    fn string(&mut self) -> Option<Vec<u8>> {
        match self.len()? {
            Len::Plain(n) => Some(self.bytes(usize::try_from(n).ok()?)?.to_vec()),
            Len::Encoded(0) => Some((self.byte()? as i8).to_string().into_bytes()),
            Len::Encoded(1) => {
                let n = i16::from_le_bytes(self.bytes(2)?.try_into().ok()?);
                Some(n.to_string().into_bytes())
            }
            Len::Encoded(2) => {
                let n = i32::from_le_bytes(self.bytes(4)?.try_into().ok()?);
                Some(n.to_string().into_bytes())
            }
            Len::Encoded(3) => {
                let compressed_len = self.plain_len()?;
                let len = self.plain_len()?;
                lzf_decompress(self.bytes(compressed_len)?, len)
            }
            Len::Encoded(_) => None,
        }
    }
}

/// `lzf_decompress` (liblzf), for output of exactly `len` bytes.
fn lzf_decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(len);
    let mut i = 0;
    while i < input.len() {
        let ctrl = usize::from(input[i]);
        i += 1;
        if ctrl < 32 {
            let run = input.get(i..i + ctrl + 1)?;
            out.extend_from_slice(run);
            i += ctrl + 1;
        } else {
            let mut run = ctrl >> 5;
            if run == 7 {
                run += usize::from(*input.get(i)?);
                i += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + usize::from(*input.get(i)?) + 1;
            i += 1;
            let mut from = out.len().checked_sub(back)?;
            for _ in 0..run + 2 {
                let b = *out.get(from)?;
                out.push(b);
                from += 1;
            }
        }
        if out.len() > len {
            return None;
        }
    }
    (out.len() == len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_is_redis_crc64() {
        // The check value of Redis's `crc64` test (`crc64Test`).
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

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

    #[test]
    fn reads_lzf_strings() {
        // "abcabcabc": a literal run of 3, then a back reference of 6.
        let compressed = [2, b'a', b'b', b'c', 0x80, 2];
        assert_eq!(lzf_decompress(&compressed, 9), Some(b"abcabcabc".to_vec()));
        assert_eq!(lzf_decompress(&[0x80, 2], 2), None);
    }
}
