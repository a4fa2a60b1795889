//! The RDB object codec: Redis's serialization of values, as in `DUMP`
//! payloads and `dump.rdb` files (Redis 7.0, `RDB_VERSION` 10; `rdb.c`).
//!
//! Independent of commands: [`crc64`], [`lzf`], the packed encodings
//! ([`listpack`], [`ziplist`] and zipmaps, [`intset`]), and objects:
//! [`write`] saves a value as Redis 7.0's `rdbSaveObject` does, [`read`]
//! loads every object type Redis 7.0 loads (`rdbLoadObject`), converting
//! encodings with the server's thresholds as Redis does.
//!
//! # Byte equality with Redis
//!
//! Strings, listpacks, intsets, quicklists and skiplists are written byte
//! for byte as Redis 7.0.15 writes them (LZF included). A hashtable-encoded
//! hash or set is written in Amber's table order: Redis writes its dict's
//! order, which depends on its hash seed and history, so those bytes can
//! never match; the contents do. The other known differences, all about
//! history Amber does not keep: a list's quicklist nodes are cut as if the
//! list had been built by `RPUSH` (a list grown at the head, or edited in
//! the middle, may be cut differently in Redis), nodes are never written
//! LZF-compressed (`list-compress-depth` above 0), an intset whose
//! widest members were removed is written in the narrower width, and a
//! stream node with deleted entries is written without them (see
//! [`stream`]).

pub mod crc64;
pub mod file;
#[cfg(test)]
mod fuzz;
pub mod intset;
pub mod listpack;
pub mod lzf;
pub mod read;
pub mod stream;
pub mod write;
pub mod ziplist;

pub use crc64::crc64;

/// Redis 7.0's `RDB_VERSION`.
pub const RDB_VERSION: u16 = 10;

/// RDB object type bytes (`rdb.h`).
pub mod kind {
    /// `RDB_TYPE_STRING`.
    pub const STRING: u8 = 0;
    /// `RDB_TYPE_LIST` (linked list of strings, before 3.2).
    pub const LIST: u8 = 1;
    /// `RDB_TYPE_SET`.
    pub const SET: u8 = 2;
    /// `RDB_TYPE_ZSET` (scores as text).
    pub const ZSET: u8 = 3;
    /// `RDB_TYPE_HASH`.
    pub const HASH: u8 = 4;
    /// `RDB_TYPE_ZSET_2` (binary scores).
    pub const ZSET_2: u8 = 5;
    /// `RDB_TYPE_MODULE`.
    pub const MODULE: u8 = 6;
    /// `RDB_TYPE_MODULE_2`.
    pub const MODULE_2: u8 = 7;
    /// `RDB_TYPE_HASH_ZIPMAP`.
    pub const HASH_ZIPMAP: u8 = 9;
    /// `RDB_TYPE_LIST_ZIPLIST`.
    pub const LIST_ZIPLIST: u8 = 10;
    /// `RDB_TYPE_SET_INTSET`.
    pub const SET_INTSET: u8 = 11;
    /// `RDB_TYPE_ZSET_ZIPLIST`.
    pub const ZSET_ZIPLIST: u8 = 12;
    /// `RDB_TYPE_HASH_ZIPLIST`.
    pub const HASH_ZIPLIST: u8 = 13;
    /// `RDB_TYPE_LIST_QUICKLIST` (ziplist nodes).
    pub const LIST_QUICKLIST: u8 = 14;
    /// `RDB_TYPE_STREAM_LISTPACKS`.
    pub const STREAM_LISTPACKS: u8 = 15;
    /// `RDB_TYPE_HASH_LISTPACK`.
    pub const HASH_LISTPACK: u8 = 16;
    /// `RDB_TYPE_ZSET_LISTPACK`.
    pub const ZSET_LISTPACK: u8 = 17;
    /// `RDB_TYPE_LIST_QUICKLIST_2` (listpack or plain nodes).
    pub const LIST_QUICKLIST_2: u8 = 18;
    /// `RDB_TYPE_STREAM_LISTPACKS_2`.
    pub const STREAM_LISTPACKS_2: u8 = 19;
    /// `RDB_TYPE_STREAM_LISTPACKS_3` (Redis 7.2: consumers' active time;
    /// Redis 7.0 does not load it, nor does Amber).
    pub const STREAM_LISTPACKS_3: u8 = 21;
}

/// A `DUMP` payload: the object, the RDB version and the CRC64 of both
/// (`createDumpPayload`).
pub fn seal(mut object: Vec<u8>) -> Vec<u8> {
    object.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&object);
    object.extend_from_slice(&crc.to_le_bytes());
    object
}

/// The object bytes of a payload whose footer checks (`verifyDumpPayload`:
/// at least 10 bytes, a version Redis 7.0 knows, the CRC64).
pub fn unseal(payload: &[u8]) -> Option<&[u8]> {
    let body_len = payload.len().checked_sub(10)?;
    let (body, footer) = payload.split_at(body_len);
    let version = u16::from_le_bytes(footer.get(..2)?.try_into().ok()?);
    let crc = u64::from_le_bytes(footer.get(2..)?.try_into().ok()?);
    let checked = payload.get(..payload.len() - 8)?;
    (version <= RDB_VERSION && crc == crc64(checked)).then_some(body)
}
