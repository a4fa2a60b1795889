//! The index checkpoint: a restart after a clean shutdown without a scan.
//!
//! Recovery reads every record of the arena to rebuild the index (one
//! checksum and one key hash per record, then a merge): seconds for tens of
//! millions of keys. After a clean shutdown nothing can be torn or half
//! written, so `Keyspace::close` saves what recovery would rebuild instead:
//! every shard's handles (8 bytes per key; every key is cold in the image,
//! pointing at its whole record) and expiry entries, the arena's segment
//! table and the addresses of its metadata records (`arena::meta`). The
//! next open loads that and reads no record but those metadata records.
//!
//! # Trust
//!
//! The file is used only when all of these hold, else the normal recovery
//! runs (and the file is removed):
//! * the arena's clean-shutdown word is set (it is cleared at every open and
//!   set at close only after this file is complete);
//! * the file's checksums match, and its version, database count and shards
//!   per database are this build's;
//! * every segment of the arena is in the state, generation and span the
//!   file says ([`Arena::resume`]): anything written after the checkpoint
//!   went to a newer segment, and a segment freed since is zeroed.
//!
//! The file is removed once loaded, and removed before a new one is written.
//!
//! # Layout (little-endian)
//!
//! ```text
//! header, 56 bytes:
//!      0    8 magic           b"AMBERIDX"
//!      8    4 version         2
//!     12    4 shards per db
//!     16    8 segment count
//!     24    8 next sequence number of the arena
//!     32    8 body length in bytes
//!     40    8 the keyspace hasher's seed (the saved hashes were made with it)
//!     48    4 crc32 of the body
//!     52    4 crc32 of bytes 0..52
//! body:
//!     per segment, 48 bytes: state u8, 3 zero bytes, span u32, generation,
//!         used, live, tombstone bytes, smallest dead sequence (u64 each)
//!     per database (16), per shard: handle count n, expiry entry count m
//!         (u64 each), n handles (u64), m × (deadline, short hash, count) (u64 each)
//!     metadata record count k (u64), k record addresses (u64 each; see
//!         `arena::meta`: checked by `Arena::resume` before it is trusted)
//! ```
//!
//! Version 1 (before metadata records) is refused like any other version:
//! the next start scans the arena, which finds the metadata records too.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use crate::arena::{Addr, Arena, SegmentState};
use crate::expiry::ExpiryIndex;
use crate::keyspace::{Keyspace, DB_COUNT};
use crate::tier::handle::{Handle, Target};
use crate::{Error, Result};

const MAGIC: [u8; 8] = *b"AMBERIDX";
const VERSION: u32 = 2;
const HEADER_LEN: usize = 56;
const SEGMENT_LEN: usize = 48;

/// Where the checkpoint of the arena at `arena_path` lives.
pub(crate) fn path_for(arena_path: &Path) -> PathBuf {
    let mut p = arena_path.as_os_str().to_owned();
    p.push(".index");
    PathBuf::from(p)
}

/// The hasher seed saved in the checkpoint at `path`, if its header is
/// valid (the keyspace adopts it before loading the checkpoint).
pub(crate) fn read_seed(path: &Path) -> Option<u64> {
    use std::io::Read;
    let mut head = [0u8; HEADER_LEN];
    std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    (head[..8] == MAGIC && u32_at(&head, 52) == Some(crc32fast::hash(&head[..52])))
        .then(|| u64_at(&head, 40))
        .flatten()
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Appends little-endian u64s.
fn put(out: &mut Vec<u8>, words: &[u64]) {
    for w in words {
        out.extend_from_slice(&w.to_le_bytes());
    }
}

impl Keyspace {
    /// Writes the index checkpoint of a keyspace whose clients are gone
    /// (`Keyspace::close`): folds every delta chain into a whole record,
    /// makes the arena durable, then writes the file (to a temporary name,
    /// synced, then renamed). Returns the number of keys saved.
    pub(crate) fn write_checkpoint(&self, arena: &Arena, path: &Path) -> Result<usize> {
        // 1. Every key must be one whole, durable record.
        let per_db = self.shards_per_db();
        for (db, d) in self.dbs.iter().enumerate() {
            for (i, m) in d.shards.iter().enumerate() {
                let mut s = m.lock();
                let slots: Vec<u32> = s
                    .index
                    .iter()
                    .filter_map(|h| match h.target() {
                        Target::Hot(slot) => Some(slot),
                        Target::Cold(_) => None,
                    })
                    .collect();
                for slot in slots {
                    let Some(e) = s.hot.get_mut(slot) else {
                        continue;
                    };
                    if e.dirty || e.copy.is_none() {
                        return Err(Error::Corrupt("a hot entry without its record".into()));
                    }
                    if e.chain.is_some() {
                        self.write_whole(db * per_db + i, db, e)?;
                    }
                }
            }
        }
        arena.sync()?;
        let (segments, next_seq) = arena.segment_table();

        // 2. The image.
        let mut body = Vec::with_capacity(segments.len() * SEGMENT_LEN + 64);
        for t in &segments {
            body.push(t.state);
            body.extend_from_slice(&[0; 3]);
            body.extend_from_slice(&t.span.to_le_bytes());
            put(&mut body, &[t.gen, t.used, t.live, t.tomb, t.min_dead_seq]);
        }
        let mut keys = 0;
        for d in self.dbs.iter() {
            for m in d.shards.iter() {
                let s = m.lock();
                let expiry: Vec<(u64, u64, u32)> = s.expiry.entries().collect();
                put(&mut body, &[s.index.len() as u64, expiry.len() as u64]);
                for h in s.index.iter() {
                    let cold = match h.target() {
                        Target::Cold(_) => *h,
                        Target::Hot(slot) => match s.hot.get(slot).and_then(|e| e.copy) {
                            Some(addr) => Handle::cold(addr, h.short_hash()),
                            None => {
                                return Err(Error::Corrupt("a hot entry without its record".into()))
                            }
                        },
                    };
                    put(&mut body, &[cold.raw()]);
                    keys += 1;
                }
                for (deadline, hash, n) in expiry {
                    put(&mut body, &[deadline, hash, u64::from(n)]);
                }
            }
        }
        let meta = arena.meta_addrs();
        put(&mut body, &[meta.len() as u64]);
        for addr in meta {
            put(&mut body, &[addr.get()]);
        }
        let mut head = Vec::with_capacity(HEADER_LEN);
        head.extend_from_slice(&MAGIC);
        head.extend_from_slice(&VERSION.to_le_bytes());
        head.extend_from_slice(&(per_db as u32).to_le_bytes());
        put(
            &mut head,
            &[
                segments.len() as u64,
                next_seq,
                body.len() as u64,
                self.hash_seed(),
            ],
        );
        head.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        let crc = crc32fast::hash(&head);
        head.extend_from_slice(&crc.to_le_bytes());

        // 3. The file.
        let io = |e: std::io::Error| Error::Io(format!("{}: {e}", path.display()));
        let tmp = path.with_extension("index.tmp");
        {
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&head).map_err(io)?;
            f.write_all(&body).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(keys)
    }

    /// Loads the index checkpoint instead of recovering (see the module
    /// docs). `Ok(keys)` when it was used; an error says why not, and
    /// nothing has changed then.
    pub(crate) fn load_checkpoint(&self, arena: &Arena, path: &Path) -> Result<usize> {
        let bad =
            |why: &str| Error::BadArena(format!("index checkpoint {}: {why}", path.display()));
        let file = std::fs::read(path)
            .map_err(|e| Error::Io(format!("index checkpoint {}: {e}", path.display())))?;
        let head = file.get(..HEADER_LEN).ok_or_else(|| bad("too short"))?;
        let field = |at| u64_at(head, at).ok_or_else(|| bad("too short"));
        if head.get(..8) != Some(&MAGIC[..]) {
            return Err(bad("bad magic"));
        }
        if u32_at(head, 52) != Some(crc32fast::hash(&head[..52])) {
            return Err(bad("header checksum mismatch"));
        }
        if u32_at(head, 8) != Some(VERSION) {
            return Err(bad("another version"));
        }
        let per_db = self.shards_per_db();
        if u32_at(head, 12) != Some(per_db as u32) {
            return Err(bad("written with another number of shards"));
        }
        let (count, next_seq, body_len) = (field(16)?, field(24)?, field(32)?);
        let body = file
            .get(HEADER_LEN..)
            .filter(|b| b.len() as u64 == body_len)
            .ok_or_else(|| bad("truncated"))?;
        if u64_at(head, 40) != Some(self.hash_seed()) {
            return Err(bad("saved with another hash seed"));
        }
        if u32_at(head, 48) != Some(crc32fast::hash(body)) {
            return Err(bad("body checksum mismatch"));
        }

        // Parse everything before changing anything.
        let seg_bytes = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(SEGMENT_LEN))
            .ok_or_else(|| bad("impossible segment count"))?;
        let (segs, mut rest) = body
            .split_at_checked(seg_bytes)
            .ok_or_else(|| bad("truncated"))?;
        let segments: Vec<SegmentState> = segs
            .chunks_exact(SEGMENT_LEN)
            .map(|c| SegmentState {
                state: c[0],
                span: u32_at(c, 4).unwrap_or(0),
                gen: u64_at(c, 8).unwrap_or(0),
                used: u64_at(c, 16).unwrap_or(0),
                live: u64_at(c, 24).unwrap_or(0),
                tomb: u64_at(c, 32).unwrap_or(0),
                min_dead_seq: u64_at(c, 40).unwrap_or(u64::MAX),
            })
            .collect();
        let size = arena.stats().size;
        let mut shards: Vec<(&[u8], &[u8])> = Vec::with_capacity(DB_COUNT * per_db);
        for _ in 0..DB_COUNT * per_db {
            let n = u64_at(rest, 0).ok_or_else(|| bad("truncated"))?;
            let m = u64_at(rest, 8).ok_or_else(|| bad("truncated"))?;
            let hb = usize::try_from(n).ok().and_then(|n| n.checked_mul(8));
            let eb = usize::try_from(m).ok().and_then(|m| m.checked_mul(24));
            let (Some(hb), Some(eb)) = (hb, eb) else {
                return Err(bad("impossible counts"));
            };
            let r = rest.get(16..).ok_or_else(|| bad("truncated"))?;
            let (handles, r) = r.split_at_checked(hb).ok_or_else(|| bad("truncated"))?;
            let (expiry, r) = r.split_at_checked(eb).ok_or_else(|| bad("truncated"))?;
            if handles
                .chunks_exact(8)
                .any(|c| Handle::cold_from_raw(u64_at(c, 0).unwrap_or(0), size).is_none())
            {
                return Err(bad("a handle outside the arena"));
            }
            shards.push((handles, expiry));
            rest = r;
        }
        let k = u64_at(rest, 0).ok_or_else(|| bad("truncated"))?;
        let meta_bytes = usize::try_from(k)
            .ok()
            .and_then(|k| k.checked_mul(8))
            .ok_or_else(|| bad("impossible metadata count"))?;
        let meta: Vec<Addr> = rest
            .get(8..)
            .filter(|m| m.len() == meta_bytes)
            .ok_or_else(|| bad("truncated or trailing bytes"))?
            .chunks_exact(8)
            .map(|c| Addr::new(u64_at(c, 0).unwrap_or(0)))
            .collect();

        // The arena takes the segment table and the metadata records (or
        // refuses: nothing changed).
        arena.resume(&segments, next_seq, &meta)?;
        let mut keys = 0;
        let mut it = shards.into_iter();
        for d in self.dbs.iter() {
            for m in d.shards.iter() {
                let Some((handles, expiry)) = it.next() else {
                    break;
                };
                let mut s = m.lock();
                s.reserve(handles.len() / 8);
                for c in handles.chunks_exact(8) {
                    if let Some(h) = Handle::cold_from_raw(u64_at(c, 0).unwrap_or(0), size) {
                        s.index_new(h);
                        keys += 1;
                    }
                }
                s.expiry = ExpiryIndex::from_entries(expiry.chunks_exact(24).map(|c| {
                    (
                        u64_at(c, 0).unwrap_or(0),
                        u64_at(c, 8).unwrap_or(0),
                        u64_at(c, 16).unwrap_or(0) as u32,
                    )
                }));
            }
        }
        self.tiers
            .stats
            .cold_keys
            .store(keys as i64, Ordering::Relaxed);
        Ok(keys)
    }
}
