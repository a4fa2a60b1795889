//! The RDB object codec: Redis's serialization of values, as in `DUMP`
//! payloads and `dump.rdb` files (Redis 7.0, `RDB_VERSION` 10; `rdb.c`).
//!
//! Independent of commands: [`crc64`], [`lzf`], lengths and strings
//! ([`read`], [`write`]).

pub mod crc64;
pub mod lzf;
pub mod read;
pub mod write;

pub use crc64::crc64;

/// Redis 7.0's `RDB_VERSION`.
pub const RDB_VERSION: u16 = 10;
