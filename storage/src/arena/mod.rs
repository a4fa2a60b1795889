//! The persistent-memory arena: one file of `pmem-size` bytes, mapped once,
//! holding the cold tier as an append-only log of checksummed records in
//! fixed-size segments.
//!
//! # On-arena format (format version 2, all integers little endian)
//!
//! ```text
//! 0 .. 4096                 superblock page (64 bytes used, see `superblock`)
//! 4096 + i*segment_size     segment i: 64-byte header (see `segment`), then
//!                           records from offset 64, each 8-byte aligned
//!                           (see `record`), then zeros / stale bytes
//!                           -- or the first segment of an extent: its header
//!                           says how many segments follow, and one large
//!                           record runs from offset 64 across all of them
//! ```
//!
//! * [`superblock`]: magic `AMBERARN`, format version, mode, arena size,
//!   segment size and count, data offset, crc32; then the clean-shutdown word
//!   outside the checksum.
//! * [`segment`]: magic `AMBERSEG`, version, index, generation, span
//!   (segments covered), crc32.
//! * [`record`]: crc32 (over the segment generation and the rest of the
//!   record), version, kind, flags (tombstone), db, key length, value
//!   length, expire-at ms, sequence number, key crc32 (over the generation,
//!   the header fields and the key); key; value; zero padding to 8.
//!
//! # Record sizes
//!
//! A record that fits in a segment (`segment_size - 64` bytes, header,
//! key, value and padding included) is appended to its lane's segment. A
//! larger one gets an **extent**: a run of contiguous free segments taken
//! off the free list at once (first fit, lowest numbers first), holding that
//! one record, sealed as soon as it is written; see [`segment`] for the
//! format and the crash rules. So a record can be as large as the free
//! space (key and value are each limited to `u32::MAX` bytes by the record
//! header; Redis's 512 MB `proto-max-bulk-len` fits).
//!
//! Fragmentation: an extent needs *contiguous* free segments. When enough
//! segments are free but no run of the needed length is,
//! [`Arena::append`] fails with [`Error::ArenaFull`] (nothing written is
//! affected); freeing more segments by compaction may or may not create a
//! run. There is no defragmentation. A record larger than the whole arena
//! is [`Error::RecordTooLarge`].
//!
//! # How it is used
//!
//! * Writers append through [`Arena::append`] / [`Arena::tombstone`] /
//!   [`Arena::delete`], passing a writer id (e.g. the shard number). Ids map
//!   onto [`ArenaConfig::lanes`] lanes; each lane owns one active segment
//!   behind its own small lock, so appends on different lanes never contend.
//!   Taking a fresh segment from the free list takes one more short lock.
//! * Each append returns the record's [`Addr`] and a [`Ticket`]. Before
//!   replying, a connection calls [`Arena::wait_durable`] once for the
//!   newest ticket of its pipelined batch; what that does depends on the
//!   medium and `arena-sync` (see [`ArenaSync`]).
//! * [`Arena::read`] verifies the checksum and borrows key and value from
//!   the mapping (one contiguous slice each, large records included). A
//!   borrow must not outlive the caller's lock on the index entry that led
//!   to the address: once the record is released and its segment compacted
//!   and reused, the bytes change.
//! * [`Arena::read_key`] / [`Arena::read_head`] check only the header and
//!   key (with the key checksum, which covers the generation), not the
//!   value: for hash-table equality checks and deadline lookups. See
//!   [`Arena::read_head`] for what they guarantee.
//! * Overwrites call [`Arena::release`] on the old address. In `pmem` mode
//!   every removal of a key (DEL, expiry, eviction, FLUSHDB) must go through
//!   [`Arena::delete`] (or [`Arena::tombstone`] + `release`) so a tombstone
//!   shadows the older versions until compaction proves them gone.
//! * Start-up in `pmem` mode: [`Arena::open`] validates the superblock, then
//!   [`Arena::recover`] rebuilds the caller's index; appends are refused
//!   until recovery ran.
//! * Compaction: see [`Arena::compaction_candidates`],
//!   [`Arena::segment_records`], [`Arena::relocate`],
//!   [`Arena::relocate_meta`], [`Arena::free_segment`].
//! * Server metadata (named blobs that are not keys: the function
//!   libraries): [`Arena::put_meta`] / [`Arena::meta`], records of the
//!   reserved database 255; see [`meta`].
//! * Space: a segment's file-system space is reserved before it takes
//!   data, ahead of time by a background thread; a segment the file system
//!   cannot back is set aside and [`Arena::retry_unbacked`] asks again
//!   later. See the `space` module.
//!
//! No unsafe code lives here: all raw memory access is in [`crate::persist`].

mod compaction;
pub mod config;
pub mod meta;
mod open;
pub mod record;
mod recovery;
pub mod resume;
pub mod segment;
mod space;
pub mod superblock;

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

pub use compaction::{FreeOutcome, SegmentRecords};
pub use config::{ArenaConfig, ArenaSync, Persistence, DATA_OFFSET, MAX_ARENA_SIZE};
pub use record::{RecordHead, RecordRef};
pub use recovery::{RecoveredRecord, RecoveryStats};
pub use resume::SegmentState;
pub use segment::SegmentId;

use crate::persist::{Medium, PersistMode};
use crate::{Error, Result};
use record::{Header, FLAG_TOMBSTONE, HEADER_LEN};
use segment::{SegmentMeta, State, SEGMENT_HEADER_LEN};

/// The most bytes of one record [`Arena::warm_record`] hints: a bigger value
/// is read sequentially, which the hardware prefetcher follows on its own.
pub const WARM_RECORD_MAX: usize = 4096;

/// Records up to this many bytes are assembled on the stack and written in
/// one piece (see `Inner::write_small_record`).
const SMALL_RECORD: usize = 256;
/// Bytes past a lane's append position hinted into the cache after each append.
const WRITE_AHEAD: u64 = 256;

/// The address of a record: its byte offset from the start of the arena
/// file.
///
/// Addresses are multiples of 8 and below the arena's size (a large record's
/// address is 64 bytes into the first segment of its extent; the whole
/// extent lies inside the arena), hence below 2^48 ([`MAX_ARENA_SIZE`]): a
/// caller packing an `Addr` into a `u64` handle has the **top 16 bits and the
/// low 3 bits free** for tags. The keyspace packs `Addr / 8` into 37 bits of
/// its index handle, so it needs addresses below 2^40 and refuses arenas
/// larger than 1 TiB (`tier::handle::MAX_INDEXED_ARENA`); every address the
/// arena hands out is below its size, so that check at open is enough.
/// Address 0 is never a record (it is the superblock), so it can mean
/// "none".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Addr(u64);

impl Addr {
    /// Bits an address can use.
    pub const BITS: u32 = 48;

    /// Wraps a raw offset (e.g. taken out of a tagged handle).
    pub const fn new(offset: u64) -> Addr {
        Addr(offset)
    }

    /// The raw offset.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// Durability ticket of an append: pass it to [`Arena::wait_durable`]. A
/// later ticket covers every earlier one, so a pipelined batch waits once,
/// for its largest ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ticket(u64);

impl Ticket {
    /// A ticket that is always durable (nothing was written).
    pub const NONE: Ticket = Ticket(0);

    /// The raw counter value (the append's position in the global write
    /// order).
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// One record to append.
#[derive(Debug, Clone, Copy)]
pub struct RecordIn<'a> {
    /// Database index.
    pub db: u8,
    /// Type tag (the keyspace's encoding; opaque to the arena).
    pub kind: u8,
    /// The key.
    pub key: &'a [u8],
    /// The value as parts, written back to back (saves a concat).
    pub value: &'a [&'a [u8]],
    /// Absolute deadline in Unix ms, 0 = none.
    pub expire_at: u64,
}

/// One delta record to append (see `record`, "Delta records").
#[derive(Debug, Clone, Copy)]
pub struct DeltaIn<'a> {
    /// Database index.
    pub db: u8,
    /// Type tag of the changes (opaque to the arena).
    pub kind: u8,
    /// The key.
    pub key: &'a [u8],
    /// Sequence number of the base record the changes apply to.
    pub base_seq: u64,
    /// Position in the chain of deltas on that base: 1, 2, 3...
    pub pos: u32,
    /// The changes.
    pub changes: &'a [u8],
    /// The key's deadline after the changes (absolute Unix ms, 0 = none).
    pub expire_at: u64,
}

/// Figures for `INFO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArenaStats {
    /// Arena size in bytes.
    pub size: u64,
    /// Segment size in bytes.
    pub segment_size: u64,
    /// Segments in the arena.
    pub segments_total: u64,
    /// Segments on the free list.
    pub segments_free: u64,
    /// Free segments the file system holding the arena had no space for
    /// (not counted in `segments_free`; see [`Arena::retry_unbacked`]).
    pub segments_unbacked: u64,
    /// Record bytes in segments in use.
    pub used_bytes: u64,
    /// Bytes of live data records.
    pub live_bytes: u64,
    /// `used_bytes - live_bytes`: dead records and tombstones, reclaimable by
    /// compaction.
    pub dead_bytes: u64,
    /// Bytes of free segments.
    pub free_bytes: u64,
    /// Persist operations issued (fences / msync batches).
    pub persist_calls: u64,
    /// `persistence`.
    pub persistence: Persistence,
    /// `arena-sync`.
    pub sync: ArenaSync,
    /// Medium name: `dax`, `msync` or `sim`.
    pub medium: &'static str,
    /// Whether a DAX (`MAP_SYNC`) mapping was obtained.
    pub dax: bool,
    /// Whether the arena had been shut down cleanly before this open.
    pub clean_shutdown_at_open: bool,
    /// Segments compacted (freed) since open.
    pub compactions: u64,
}

/// How appends become durable, fixed at open from the medium and mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    /// Each append is flushed and fenced before it returns (DAX, sim).
    Immediate,
    /// Appends collect dirty ranges; `sync_all` msyncs them (group commit).
    Group,
    /// `persistence none`: nothing is ever persisted.
    Off,
}

#[derive(Debug, Default)]
struct Lane {
    seg: Option<u32>,
    /// Next write offset inside the segment.
    pos: u64,
    /// Absolute ranges written but not yet synced (Group strategy).
    dirty: Vec<(u64, u64)>,
}

impl Lane {
    fn add_dirty(&mut self, off: u64, len: u64) {
        if let Some(last) = self.dirty.last_mut() {
            if last.0 + last.1 == off {
                last.1 += len;
                return;
            }
        }
        self.dirty.push((off, len));
    }
}

struct Inner {
    medium: Arc<dyn Medium>,
    persistence: Persistence,
    sync: ArenaSync,
    strategy: Strategy,
    size: u64,
    segment_size: u64,
    metas: Box<[SegmentMeta]>,
    free: Mutex<VecDeque<u32>>,
    /// Reserved and unbacked segments, and the reserver's controls (see
    /// `space`).
    space: space::Space,
    /// Free segments that ordinary appends leave for compaction.
    reserve: usize,
    /// `lanes` writer lanes, then one compaction lane.
    lanes: Box<[Mutex<Lane>]>,
    /// Dirty ranges of extents (large records) awaiting group commit. A
    /// large append takes its ticket under this lock when it notes its range,
    /// like a lane append under its lane's lock.
    extent_dirty: Mutex<Vec<(u64, u64)>>,
    /// Next sequence number / ticket / segment generation.
    seq: AtomicU64,
    /// Every ticket below this is durable.
    durable: AtomicU64,
    sync_lock: Mutex<()>,
    /// Serialises `free_segment`.
    compacting: Mutex<()>,
    /// The newest record of each metadata name (see `meta`); held across
    /// a metadata append and its sync, and across a relocation.
    meta: Mutex<meta::MetaTable>,
    /// Set once `recover` has run.
    recovery_done: AtomicBool,
    commit: Mutex<bool>,
    commit_cv: Condvar,
    poisoned: Mutex<Option<String>>,
    is_poisoned: AtomicBool,
    recovered: AtomicBool,
    closed: AtomicBool,
    persist_calls: AtomicU64,
    compactions: AtomicU64,
    clean_at_open: bool,
    flusher_stop: Mutex<bool>,
    flusher_cv: Condvar,
}

/// The arena. Share it behind an `Arc`; every method takes `&self`.
pub struct Arena {
    inner: Arc<Inner>,
    flusher: Mutex<Option<JoinHandle<()>>>,
    /// The reserver thread (see `space`).
    reserver: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena")
            .field("medium", &self.inner.medium.name())
            .field("size", &self.inner.size)
            .field("segment_size", &self.inner.segment_size)
            .field("persistence", &self.inner.persistence)
            .field("sync", &self.inner.sync)
            .finish()
    }
}

impl Arena {
    /// Appends a record in lane `writer % lanes`. Returns its address and
    /// durability ticket. A record larger than a segment gets an extent of
    /// contiguous segments of its own (see the module docs).
    /// [`Error::ArenaFull`] when no segment (or no run of free segments long
    /// enough) is free; nothing already written is affected.
    /// [`Error::RecordTooLarge`] when the record is larger than the whole
    /// arena, or its key or value is 4 GiB or more.
    pub fn append(&self, writer: usize, rec: RecordIn<'_>) -> Result<(Addr, Ticket)> {
        let lane = writer % self.writer_lanes();
        self.inner.append(
            lane,
            Header {
                kind: rec.kind,
                flags: 0,
                db: rec.db,
                key_len: 0,
                value_len: 0,
                expire_at: rec.expire_at,
                seq: 0,
            },
            rec.key,
            rec.value,
            None,
            false,
        )
    }

    /// Appends a delta record (changes on top of an earlier record of the
    /// key) in lane `writer % lanes`, like [`Arena::append`].
    pub fn append_delta(&self, writer: usize, d: DeltaIn<'_>) -> Result<(Addr, Ticket)> {
        let lane = writer % self.writer_lanes();
        let prefix = record::delta_prefix(d.base_seq, d.pos);
        self.inner.append(
            lane,
            Header {
                kind: d.kind,
                flags: record::FLAG_DELTA,
                db: d.db,
                key_len: 0,
                value_len: 0,
                expire_at: d.expire_at,
                seq: 0,
            },
            d.key,
            &[&prefix, d.changes],
            None,
            false,
        )
    }

    /// Writes a tombstone for `(db, key)` in `pmem` mode; in `none` mode
    /// writes nothing and returns [`Ticket::NONE`]. The caller never indexes
    /// a tombstone, so only the ticket is returned.
    pub fn tombstone(&self, writer: usize, db: u8, key: &[u8]) -> Result<Ticket> {
        if self.inner.persistence == Persistence::None {
            return Ok(Ticket::NONE);
        }
        let lane = writer % self.writer_lanes();
        let header = Header {
            kind: 0,
            flags: FLAG_TOMBSTONE,
            db,
            key_len: 0,
            value_len: 0,
            expire_at: 0,
            seq: 0,
        };
        self.inner
            .append(lane, header, key, &[], None, false)
            .map(|(_, t)| t)
    }

    /// Removes the key whose live record is at `addr`: writes its tombstone
    /// (in `pmem` mode) and releases the record. Use it for DEL, expiry and
    /// eviction of a cold key.
    ///
    /// The release comes first: a compactor that later sees the tombstone
    /// must also see that an older record of the key is dead (see the
    /// compaction module on tombstone lifetime). Callers pairing
    /// [`Arena::release`] and [`Arena::tombstone`] themselves must keep
    /// that order.
    pub fn delete(&self, writer: usize, addr: Addr) -> Result<Ticket> {
        let rec = self.read_head(addr)?;
        self.release(addr)?;
        self.tombstone(writer, rec.db(), rec.key)
    }

    /// Reads and verifies the record at `addr` ([`Error::Corrupt`] when the
    /// checksum or bounds do not hold). Key and value borrow the mapping:
    /// one checksum pass, and the caller copies the value once.
    pub fn read(&self, addr: Addr) -> Result<RecordRef<'_>> {
        self.inner.read(addr)
    }

    /// The key of the record at `addr`, checked without reading the value:
    /// see [`Arena::read_head`] for the guarantee. Meant for hash-table
    /// equality checks.
    pub fn read_key(&self, addr: Addr) -> Result<&[u8]> {
        self.inner.read_head(addr).map(|h| h.key)
    }

    /// The header fields and key of the record at `addr`, without reading
    /// the value (cost: one crc32 over the 28 header bytes and the key,
    /// whatever the value's size).
    ///
    /// Guarantees: `addr` is at a record of a segment (or extent) in use,
    /// and the header fields and key bytes are exactly what was appended
    /// there under the segment's **current generation** (the key checksum
    /// covers the generation). So a torn header or key, or a stale address
    /// into a segment that was freed and reused, is [`Error::Corrupt`],
    /// like with [`Arena::read`].
    ///
    /// Not guaranteed: the value. A record whose value bytes are damaged (a
    /// media error; a torn append is never handed out) passes `read_head`
    /// but fails [`Arena::read`]. Use `read` before trusting the value.
    pub fn read_head(&self, addr: Addr) -> Result<RecordHead<'_>> {
        self.inner.read_head(addr)
    }

    /// A hint that the header of the record at `addr` will be read soon
    /// ([`Arena::release`] of an overwritten key's record): starts loading
    /// it into the cache. Never fails and changes nothing.
    pub fn warm_head(&self, addr: Addr) {
        if let Some(head) = self.inner.medium.read(addr.0, HEADER_LEN) {
            crate::persist::warm::warm(head);
        }
    }

    /// A hint that the whole record at `addr` (header, key, value; at most
    /// [`WARM_RECORD_MAX`] bytes) will be read soon. Reads the header's length
    /// field, so call it after [`Arena::warm_head`] had time to bring the
    /// header in (a pipelined batch's second pass). Never fails and changes
    /// nothing; a stale or torn address only wastes the hint.
    pub fn warm_record(&self, addr: Addr) {
        let Some(head) = self.inner.medium.read(addr.0, HEADER_LEN) else {
            return;
        };
        let len = Header::parse(head).map_or(0, |(_, h)| h.len());
        let len = usize::try_from(len).unwrap_or(0).min(WARM_RECORD_MAX);
        if let Some(bytes) = self.inner.medium.read(addr.0, len) {
            crate::persist::warm::warm(bytes);
        }
    }

    /// Marks the record at `addr` dead (overwritten or deleted): its bytes
    /// stop counting as live, and compaction may drop it.
    pub fn release(&self, addr: Addr) -> Result<()> {
        self.inner.release(addr)
    }

    /// Blocks until the append that returned `ticket` is durable, as far as
    /// the configuration promises durability before a reply:
    ///
    /// * DAX / cache-flush media: returns at once (every append was already
    ///   flushed and fenced).
    /// * msync media with `arena-sync always`: group commit. The first
    ///   waiter becomes the leader and msyncs every lane's dirty range; the
    ///   others sleep and are woken when a sync covering their ticket ends.
    /// * `everysec` / `no` / `persistence none`: returns at once (the
    ///   background flusher or the OS makes it durable later). Use
    ///   [`Arena::sync`] to force it.
    pub fn wait_durable(&self, ticket: Ticket) -> Result<()> {
        let inner = &self.inner;
        if inner.strategy != Strategy::Group || inner.sync != ArenaSync::Always {
            return inner.check_poison();
        }
        inner.wait_for(ticket)
    }

    /// Makes everything appended so far durable, whatever `arena-sync` says
    /// (SAVE, SHUTDOWN, tests).
    pub fn sync(&self) -> Result<()> {
        self.inner.sync_all()
    }

    /// Whether `ticket` is known durable.
    pub fn is_durable(&self, ticket: Ticket) -> bool {
        match self.inner.strategy {
            Strategy::Immediate => true,
            Strategy::Off => ticket == Ticket::NONE,
            Strategy::Group => self.inner.durable.load(Ordering::Acquire) > ticket.0,
        }
    }

    /// Number of writer lanes (writer ids are taken modulo this).
    pub fn writer_lanes(&self) -> usize {
        self.inner.lanes.len() - 1
    }

    /// The persistence mode.
    pub fn persistence(&self) -> Persistence {
        self.inner.persistence
    }

    /// Figures for `INFO`.
    pub fn stats(&self) -> ArenaStats {
        let inner = &self.inner;
        let mut used = 0;
        let mut live = 0;
        let mut free_segs = 0u64;
        for m in inner.metas.iter() {
            if m.state() == State::Free {
                free_segs += 1;
            } else {
                used += m.used.load(Ordering::Relaxed);
                live += m.live.load(Ordering::Relaxed);
            }
        }
        // Unbacked segments are free in their state but cannot take data.
        let unbacked = inner.space.unbacked_count() as u64;
        let free_segs = free_segs.saturating_sub(unbacked);
        ArenaStats {
            size: inner.size,
            segment_size: inner.segment_size,
            segments_total: inner.metas.len() as u64,
            segments_free: free_segs,
            segments_unbacked: unbacked,
            used_bytes: used,
            live_bytes: live,
            dead_bytes: used.saturating_sub(live),
            free_bytes: free_segs * inner.segment_size,
            persist_calls: inner.persist_calls.load(Ordering::Relaxed),
            persistence: inner.persistence,
            sync: inner.sync,
            medium: inner.medium.name(),
            dax: inner.medium.is_dax(),
            clean_shutdown_at_open: inner.clean_at_open,
            compactions: inner.compactions.load(Ordering::Relaxed),
        }
    }

    /// Makes everything durable and marks the clean-shutdown flag. Further
    /// appends are refused. Idempotent; also run by `Drop`.
    pub fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.stop_flusher();
        self.inner.space.stop();
        if let Some(h) = self.reserver.lock().take() {
            if h.join().is_err() {
                tracing::error!("arena: the reserver thread panicked");
            }
        }
        self.inner.mark_clean()
    }

    fn stop_flusher(&self) {
        *self.inner.flusher_stop.lock() = true;
        self.inner.flusher_cv.notify_all();
        if let Some(h) = self.flusher.lock().take() {
            if h.join().is_err() {
                tracing::error!("arena: the flusher thread panicked");
            }
        }
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!("arena: close on drop failed: {e}");
        }
    }
}

impl Inner {
    fn seg_base(&self, seg: u32) -> u64 {
        DATA_OFFSET + u64::from(seg) * self.segment_size
    }

    fn meta(&self, seg: u32) -> Result<&SegmentMeta> {
        self.metas
            .get(seg as usize)
            .ok_or_else(|| Error::Corrupt(format!("segment {seg} out of range")))
    }

    /// Segment of an address, checking it can be a record address.
    fn locate(&self, addr: Addr) -> Result<u32> {
        let a = addr.0;
        let bad = || Error::Corrupt(format!("{addr} is not a record address"));
        if a < DATA_OFFSET || !a.is_multiple_of(8) {
            return Err(bad());
        }
        let seg = (a - DATA_OFFSET) / self.segment_size;
        let within = (a - DATA_OFFSET) % self.segment_size;
        if seg >= self.metas.len() as u64 || within < SEGMENT_HEADER_LEN {
            return Err(bad());
        }
        Ok(seg as u32)
    }

    /// Segment of a record address, checking that the segment is in use and
    /// the address is not inside a large record; with the segment's meta.
    fn in_use(&self, addr: Addr) -> Result<(u32, &SegmentMeta)> {
        let seg = self.locate(addr)?;
        let meta = self.meta(seg)?;
        match meta.state() {
            State::Active | State::Sealed => Ok((seg, meta)),
            State::Free => Err(Error::Corrupt(format!("{addr} is in a free segment"))),
            State::Continued => Err(Error::Corrupt(format!(
                "{addr} is inside a large record, not at a record"
            ))),
        }
    }

    /// End of the segment or extent that starts at segment `seg`.
    fn extent_end(&self, seg: u32, meta: &SegmentMeta) -> u64 {
        let span = u64::from(meta.span.load(Ordering::Acquire).max(1));
        self.seg_base(seg) + span * self.segment_size
    }

    /// Makes one range durable now; a failure poisons the arena.
    fn persist_now(&self, off: u64, len: u64) -> Result<()> {
        if let Err(e) = self.medium.persist(off, len) {
            self.poison(&e.to_string());
            return Err(e);
        }
        self.persist_calls.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn check_poison(&self) -> Result<()> {
        if self.is_poisoned.load(Ordering::Acquire) {
            let why = self.poisoned.lock().clone().unwrap_or_default();
            return Err(Error::Io(format!(
                "arena refuses writes after a failed persist: {why}"
            )));
        }
        Ok(())
    }

    fn poison(&self, why: &str) {
        tracing::error!("arena: persist failed, refusing further writes: {why}");
        *self.poisoned.lock() = Some(why.to_string());
        self.is_poisoned.store(true, Ordering::Release);
    }

    fn check_writable(&self) -> Result<()> {
        self.check_poison()?;
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::BadArena("the arena is closed".into()));
        }
        if !self.recovered.load(Ordering::Acquire) {
            return Err(Error::BadArena(
                "Arena::recover must run before the first append".into(),
            ));
        }
        Ok(())
    }

    fn compaction_lane(&self) -> usize {
        self.lanes.len() - 1
    }

    /// The append path shared by data records, tombstones and relocations
    /// (`keep_seq`: reuse that sequence number instead of a fresh one).
    #[allow(clippy::too_many_arguments)]
    fn append(
        &self,
        lane_idx: usize,
        mut header: Header,
        key: &[u8],
        value: &[&[u8]],
        keep_seq: Option<u64>,
        compaction: bool,
    ) -> Result<(Addr, Ticket)> {
        self.check_writable()?;
        let vlen: usize = value.iter().map(|p| p.len()).sum();
        let (Ok(klen32), Ok(vlen32)) = (u32::try_from(key.len()), u32::try_from(vlen)) else {
            return Err(Error::RecordTooLarge);
        };
        header.key_len = klen32;
        header.value_len = vlen32;
        let len = header.len();
        if len > self.segment_size - SEGMENT_HEADER_LEN {
            return self.append_extent(header, key, value, keep_seq, compaction);
        }
        let lane_lock = self
            .lanes
            .get(lane_idx)
            .ok_or_else(|| Error::Corrupt(format!("lane {lane_idx} out of range")))?;
        let mut lane = lane_lock.lock();
        if lane.seg.is_none() || lane.pos + len > self.segment_size {
            self.open_segment(&mut lane, compaction)?;
        }
        let seg = lane
            .seg
            .ok_or_else(|| Error::Corrupt("lane without a segment".into()))?;
        let meta = self.meta(seg)?;
        let addr = self.seg_base(seg) + lane.pos;
        let ticket = self.seq.fetch_add(1, Ordering::AcqRel);
        header.seq = keep_seq.unwrap_or(ticket);
        let gen = meta.gen.load(Ordering::Acquire);
        self.write_record(addr, gen, &header, key, value)?;
        let m = &*self.medium;
        lane.pos += len;
        // The lane's next records go right after this one: ask for their
        // lines now, so the next append's stores do not wait for them.
        let ahead = (self.segment_size - lane.pos).min(WRITE_AHEAD);
        if let Some(next) = m.read(addr + len, ahead as usize) {
            crate::persist::warm::warm(next);
        }
        meta.used.fetch_add(len, Ordering::Relaxed);
        if header.is_tombstone() {
            meta.tomb.fetch_add(len, Ordering::Relaxed);
        } else {
            meta.live.fetch_add(len, Ordering::Relaxed);
        }
        match self.strategy {
            Strategy::Immediate => {
                // Flush then fence, then publish (return the address).
                m.persist(addr, len)?;
                self.persist_calls.fetch_add(1, Ordering::Relaxed);
            }
            Strategy::Group => lane.add_dirty(addr, len),
            Strategy::Off => {}
        }
        Ok((Addr(addr), Ticket(ticket)))
    }

    /// Writes a whole record at `addr` under generation `gen` (`header`
    /// complete but for the checksums).
    fn write_record(
        &self,
        addr: u64,
        gen: u64,
        header: &Header,
        key: &[u8],
        value: &[&[u8]],
    ) -> Result<()> {
        let len = header.len();
        let tail = header.encode_tail(gen, key);
        if len <= SMALL_RECORD as u64 {
            return self.write_small_record(addr, gen, &tail, key, value, len as usize);
        }
        let crc = record::checksum(gen, &tail, key, value);
        let mut head = [0u8; HEADER_LEN];
        head[..4].copy_from_slice(&crc.to_le_bytes());
        head[4..].copy_from_slice(&tail);
        let m = &*self.medium;
        m.write(addr, &head)?;
        let mut at = addr + HEADER_LEN as u64;
        m.write(at, key)?;
        at += key.len() as u64;
        for part in value {
            m.write(at, part)?;
            at += part.len() as u64;
        }
        let pad = (addr + len - at) as usize;
        if pad > 0 {
            m.write(at, &[0u8; 8][..pad])?;
        }
        Ok(())
    }

    /// [`Inner::write_record`] for a record of at most [`SMALL_RECORD`]
    /// bytes (most deltas, tombstones and small strings): the record is
    /// assembled on the stack, its checksum taken in one pass over the
    /// bytes after the crc word (crc32fast pays a fixed cost per call,
    /// which dominated for a record written in five pieces) and stored with
    /// one write.
    fn write_small_record(
        &self,
        addr: u64,
        gen: u64,
        tail: &[u8; HEADER_LEN - 4],
        key: &[u8],
        value: &[&[u8]],
        len: usize,
    ) -> Result<()> {
        let mut buf = [0u8; SMALL_RECORD];
        let corrupt = || Error::Corrupt("record parts longer than its header says".into());
        // The record's `len` bytes: every piece must fit in them.
        let rec = buf.get_mut(..len).ok_or_else(corrupt)?;
        let mut at = 4;
        for part in std::iter::once(&tail[..])
            .chain(std::iter::once(key))
            .chain(value.iter().copied())
        {
            rec.get_mut(at..at + part.len())
                .ok_or_else(corrupt)?
                .copy_from_slice(part);
            at += part.len();
        }
        let crc = record::checksum(gen, &rec[4..at], &[], &[]);
        rec[..4].copy_from_slice(&crc.to_le_bytes());
        self.medium.write(addr, rec)
    }

    /// Appends a record too large for a segment into an extent of its own:
    /// takes a run of free segments, persists the extent header, then writes
    /// the record and persists it (or notes it for group commit), and seals
    /// the extent. See `segment` for why the header goes first.
    fn append_extent(
        &self,
        mut header: Header,
        key: &[u8],
        value: &[&[u8]],
        keep_seq: Option<u64>,
        compaction: bool,
    ) -> Result<(Addr, Ticket)> {
        let len = header.len();
        let span64 = (SEGMENT_HEADER_LEN + len).div_ceil(self.segment_size);
        if span64 > self.metas.len() as u64 {
            return Err(Error::RecordTooLarge);
        }
        let span = span64 as u32;
        let first = self.take_run(span, compaction)?;
        let meta = self.meta(first)?;
        let gen = self.seq.fetch_add(1, Ordering::AcqRel);
        meta.used.store(0, Ordering::Relaxed);
        meta.live.store(0, Ordering::Relaxed);
        meta.tomb.store(0, Ordering::Relaxed);
        meta.min_dead_seq.store(u64::MAX, Ordering::Relaxed);
        meta.span.store(span, Ordering::Relaxed);
        meta.gen.store(gen, Ordering::Release);
        meta.set_state(State::Active);
        for m in self
            .metas
            .iter()
            .skip(first as usize + 1)
            .take(span as usize - 1)
        {
            m.set_state(State::Continued);
        }
        let base = self.seg_base(first);
        let written = (|| {
            self.medium
                .write(base, &segment::encode_header(first, gen, span))?;
            if self.strategy != Strategy::Off {
                // Rule 1 of `segment`: the header is durable before any
                // record byte is written into the extent.
                self.persist_now(base, SEGMENT_HEADER_LEN)?;
            }
            let addr = base + SEGMENT_HEADER_LEN;
            header.seq = match keep_seq {
                Some(s) => s,
                None => self.seq.fetch_add(1, Ordering::AcqRel),
            };
            self.write_record(addr, gen, &header, key, value)?;
            if self.strategy == Strategy::Immediate {
                self.persist_now(addr, len)?;
            }
            Ok::<u64, Error>(addr)
        })();
        let addr = match written {
            Ok(a) => a,
            Err(e) => {
                // Nothing was handed out; sealed and empty, the extent is a
                // compaction candidate that `free_segment` reclaims.
                meta.set_state(State::Sealed);
                return Err(e);
            }
        };
        meta.used.store(len, Ordering::Relaxed);
        if header.is_tombstone() {
            meta.tomb.store(len, Ordering::Relaxed);
        } else {
            meta.live.store(len, Ordering::Relaxed);
        }
        let ticket = {
            let mut dirty = self.extent_dirty.lock();
            if self.strategy == Strategy::Group {
                dirty.push((addr, len));
            }
            self.seq.fetch_add(1, Ordering::AcqRel)
        };
        meta.set_state(State::Sealed);
        Ok((Addr(addr), Ticket(ticket)))
    }

    /// Takes the first run of `span` contiguous free segments off the free
    /// list (leaving the compaction reserve unless `compaction`).
    fn take_run(&self, span: u32, compaction: bool) -> Result<u32> {
        let mut free = self.free.lock();
        let keep = if compaction { 0 } else { self.reserve };
        if free.len() < span as usize + keep {
            return Err(Error::ArenaFull);
        }
        let mut sorted: Vec<u32> = free.iter().copied().collect();
        sorted.sort_unstable();
        let mut run = (0u32, 0u32); // (start, length)
        let mut found = None;
        for &s in &sorted {
            if run.1 > 0 && run.0 + run.1 == s {
                run.1 += 1;
            } else {
                run = (s, 1);
            }
            if run.1 == span {
                found = Some(run.0);
                break;
            }
        }
        let first = found.ok_or(Error::ArenaFull)?;
        free.retain(|s| *s < first || *s >= first + span);
        drop(free);
        self.reserve_run(first, span)?;
        Ok(first)
    }

    /// Seals the lane's segment (if any) and gives it a fresh one.
    fn open_segment(&self, lane: &mut Lane, compaction: bool) -> Result<()> {
        let seg = self.take_segment(compaction)?;
        if let Some(old) = lane.seg.take() {
            self.meta(old)?.set_state(State::Sealed);
        }
        let meta = self.meta(seg)?;
        let gen = self.seq.fetch_add(1, Ordering::AcqRel);
        meta.used.store(0, Ordering::Relaxed);
        meta.live.store(0, Ordering::Relaxed);
        meta.tomb.store(0, Ordering::Relaxed);
        meta.min_dead_seq.store(u64::MAX, Ordering::Relaxed);
        meta.span.store(1, Ordering::Relaxed);
        meta.gen.store(gen, Ordering::Release);
        meta.set_state(State::Active);
        let base = self.seg_base(seg);
        self.medium
            .write(base, &segment::encode_header(seg, gen, 1))?;
        match self.strategy {
            Strategy::Immediate => {
                self.medium.persist(base, SEGMENT_HEADER_LEN)?;
                self.persist_calls.fetch_add(1, Ordering::Relaxed);
            }
            Strategy::Group => lane.add_dirty(base, SEGMENT_HEADER_LEN),
            Strategy::Off => {}
        }
        lane.seg = Some(seg);
        lane.pos = SEGMENT_HEADER_LEN;
        Ok(())
    }

    /// The generation and parsed header of the record at `addr`, with its
    /// 40 header bytes; bounds checked against the segment or extent (no
    /// checksum yet). Borrows only the header, never bytes past the record.
    fn head_at(&self, addr: Addr) -> Result<(u64, Header, &[u8])> {
        let (seg, meta) = self.in_use(addr)?;
        let gen = meta.gen.load(Ordering::Acquire);
        let end = self.extent_end(seg, meta);
        let bad = || Error::Corrupt(format!("no valid record header at {addr}"));
        let head = self
            .medium
            .read(addr.0, HEADER_LEN)
            .filter(|_| addr.0 + HEADER_LEN as u64 <= end)
            .ok_or_else(bad)?;
        let (_, header) = Header::parse(head).ok_or_else(bad)?;
        if header.len() > end - addr.0 {
            return Err(Error::Corrupt(format!(
                "record at {addr} runs past the end of its segment"
            )));
        }
        Ok((gen, header, head))
    }

    fn read(&self, addr: Addr) -> Result<RecordRef<'_>> {
        let (gen, header, _) = self.head_at(addr)?;
        // Exactly the record's bytes: never bytes a lane may be writing.
        let bytes = usize::try_from(header.len())
            .ok()
            .and_then(|n| self.medium.read(addr.0, n))
            .ok_or_else(|| Error::Corrupt(format!("{addr} past the end")))?;
        RecordRef::decode(addr, gen, bytes)
            .map_err(|_| Error::Corrupt(format!("record at {addr} failed its checksum")))
    }

    fn read_head(&self, addr: Addr) -> Result<RecordHead<'_>> {
        let (gen, header, head) = self.head_at(addr)?;
        let key = self
            .medium
            .read(addr.0 + HEADER_LEN as u64, header.key_len as usize)
            .ok_or_else(|| Error::Corrupt(format!("{addr} past the end")))?;
        if !record::key_is_valid(gen, head, key) {
            return Err(Error::Corrupt(format!(
                "record at {addr} failed its key checksum"
            )));
        }
        Ok(RecordHead { addr, header, key })
    }

    fn release(&self, addr: Addr) -> Result<()> {
        let (_, header, _) = self.head_at(addr)?;
        let (_, meta) = self.in_use(addr)?;
        if !header.is_tombstone() {
            let len = header.len();
            let _ = meta
                .live
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                    Some(v.saturating_sub(len))
                });
        }
        meta.min_dead_seq.fetch_min(header.seq, Ordering::AcqRel);
        Ok(())
    }

    /// Group commit: makes every append that took a ticket so far durable.
    /// One caller at a time; the others wait in `wait_for`.
    fn sync_all(&self) -> Result<()> {
        self.check_poison()?;
        if self.strategy != Strategy::Group {
            return Ok(());
        }
        let _one = self.sync_lock.lock();
        // Every ticket below `target` was taken under some lane's lock,
        // together with writing its bytes and noting its dirty range; taking
        // each lane's lock below therefore waits for any of them still in
        // flight, so the ranges collected cover all of them.
        let target = self.seq.load(Ordering::Acquire);
        let mut ranges = Vec::new();
        for lane in self.lanes.iter() {
            ranges.append(&mut lane.lock().dirty);
        }
        ranges.append(&mut self.extent_dirty.lock());
        if !ranges.is_empty() {
            ranges.sort_unstable();
            let page = 4096u64;
            let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
            for (off, len) in ranges {
                match merged.last_mut() {
                    Some(last) if off <= (last.0 + last.1).div_ceil(page) * page => {
                        let end = (last.0 + last.1).max(off + len);
                        last.1 = end - last.0;
                    }
                    _ => merged.push((off, len)),
                }
            }
            for (off, len) in merged {
                if let Err(e) = self.medium.flush(off, len) {
                    self.poison(&e.to_string());
                    return Err(e);
                }
            }
            self.medium.fence();
            self.persist_calls.fetch_add(1, Ordering::Relaxed);
        }
        self.durable.fetch_max(target, Ordering::AcqRel);
        Ok(())
    }

    /// Leader/follower wait for `ticket`.
    fn wait_for(&self, ticket: Ticket) -> Result<()> {
        loop {
            self.check_poison()?;
            if self.durable.load(Ordering::Acquire) > ticket.0 {
                return Ok(());
            }
            let mut leading = self.commit.lock();
            if self.durable.load(Ordering::Acquire) > ticket.0 {
                return Ok(());
            }
            if *leading {
                // A sync is running; it may or may not cover us. Wait for it
                // to end, then look again.
                self.commit_cv.wait(&mut leading);
                continue;
            }
            *leading = true;
            drop(leading);
            let result = self.sync_all();
            *self.commit.lock() = false;
            self.commit_cv.notify_all();
            result?;
        }
    }

    /// Final persist and clean-shutdown flag.
    fn mark_clean(&self) -> Result<()> {
        if self.persistence == Persistence::None {
            return Ok(());
        }
        self.sync_all()?;
        let word = superblock::CLEAN_MAGIC.to_le_bytes();
        self.medium.write(superblock::CLEAN_OFFSET, &word)?;
        self.medium.persist(superblock::CLEAN_OFFSET, 8)?;
        self.persist_calls.fetch_add(1, Ordering::Relaxed);
        tracing::info!("arena: clean shutdown recorded");
        Ok(())
    }

    fn flusher_loop(self: Arc<Inner>) {
        let mut stop = self.flusher_stop.lock();
        loop {
            let _ = self
                .flusher_cv
                .wait_for(&mut stop, std::time::Duration::from_secs(1));
            if *stop {
                return;
            }
            drop(stop);
            if self.durable.load(Ordering::Acquire) < self.seq.load(Ordering::Acquire) {
                if let Err(e) = self.sync_all() {
                    tracing::error!("arena: everysec flush failed: {e}");
                }
            }
            stop = self.flusher_stop.lock();
        }
    }
}

fn strategy_for(mode: PersistMode, persistence: Persistence) -> Strategy {
    match (persistence, mode) {
        (Persistence::None, _) => Strategy::Off,
        (Persistence::Pmem, PersistMode::CacheFlush) => Strategy::Immediate,
        (Persistence::Pmem, PersistMode::Msync) => Strategy::Group,
    }
}
