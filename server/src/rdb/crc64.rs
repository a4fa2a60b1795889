//! Redis's `crc64` (Jones polynomial, reflected, no final xor): the
//! checksum at the end of a `DUMP` payload and of an RDB file.

/// The reflected Jones polynomial.
const POLY: u64 = 0x95ac_9329_ac4b_c9b5;

/// One table entry per byte value, built at compile time.
const TABLE: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// The checksum of `data`.
pub fn crc64(data: &[u8]) -> u64 {
    crc64_update(0, data)
}

/// The checksum of the bytes summed into `crc` followed by `data` (an RDB
/// file's checksum, computed as it is written).
pub fn crc64_update(crc: u64, data: &[u8]) -> u64 {
    data.iter().fold(crc, |crc, &byte| {
        TABLE[((crc ^ u64::from(byte)) & 0xff) as usize] ^ (crc >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_is_redis_crc64() {
        // The check value of Redis's `crc64` test (`crc64Test`).
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }
}
