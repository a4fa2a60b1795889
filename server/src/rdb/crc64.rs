//! Redis's `crc64` (Jones polynomial, reflected, no final xor): the
//! checksum at the end of a `DUMP` payload and of an RDB file.

/// Redis's crc64 (`CRC_64_REDIS` in the `crc` catalog), with a
/// slice-by-16 table: an RDB file of gigabytes is checksummed as it is
/// written and read.
const REDIS: crc::Crc<u64, crc::Table<16>> =
    crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_REDIS);

/// The checksum of `data`.
pub fn crc64(data: &[u8]) -> u64 {
    REDIS.checksum(data)
}

/// A checksum summed as the bytes go by (an RDB file's, computed as it is
/// written).
pub fn running() -> crc::Digest<'static, u64, crc::Table<16>> {
    REDIS.digest()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_is_redis_crc64() {
        // The check value of Redis's `crc64` test (`crc64Test`).
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
        let mut d = running();
        d.update(b"1234");
        d.update(b"56789");
        assert_eq!(d.finalize(), 0xe9c6_d914_c4b8_d9ca);
    }
}
