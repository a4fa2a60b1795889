//! The keyspace: 16 databases, each split into shards by key hash, over two
//! tiers (see [`crate::tier`]).

use std::borrow::Cow;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use foldhash::fast::FixedState;
use parking_lot::{Mutex, RwLock};
use rand::Rng;
use smallvec::SmallVec;

use crate::arena::{Addr, Arena, ArenaConfig, RecordIn};
use crate::clock::now_ms;
use crate::codec;
use crate::guard::Guard;
use crate::observer::{KeyObserver, Observers};
use crate::shard::{KeyHash, Shard};
use crate::tier::handle::{short_hash, Handle, Target, MAX_INDEXED_ARENA};
use crate::tier::slab::HotEntry;
use crate::tier::{note_ticket, EvictionPolicy, Tiers};
use crate::value::{Value, ValueType};
use crate::{Error, Result};

/// Seconds of idleness the LRU clock can express at start-up: Redis's
/// `LRU_CLOCK_MAX` (2^24 - 1 seconds, about 194 days), the longest idle
/// time its own 24-bit clock keeps.
pub const LRU_CLOCK_SPAN: u32 = (1 << 24) - 1;

/// Number of logical databases (`SELECT 0` .. `SELECT 15`), as Redis's default.
pub const DB_COUNT: usize = 16;

/// How the keyspace is laid out.
#[derive(Debug, Clone)]
pub struct KeyspaceConfig {
    /// Shards per database; rounded up to a power of two.
    pub shards_per_db: usize,
    /// DRAM budget of the hot tier in bytes (0: no hot tier).
    pub dram_budget: u64,
    /// The arena; `None` keeps everything in DRAM (no tiering).
    pub arena: Option<ArenaConfig>,
}

impl Default for KeyspaceConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        KeyspaceConfig {
            // Many small shards: a command with ten random keys (MSET) on
            // one core rarely meets one on another (measured with 32: the
            // two workers of a 2-core machine met on nearly every MSET and
            // spent a third of their time in sched_yield/futex).
            shards_per_db: (cores * 128).next_power_of_two().clamp(256, 4096),
            dram_budget: u64::MAX,
            arena: None,
        }
    }
}

/// One logical database.
pub(crate) struct Database {
    pub(crate) shards: Box<[Mutex<Shard>]>,
}

/// The arena records of a key taken out of the index, not yet dropped
/// (see [`Keyspace::unlink_handle`]).
#[derive(Debug, Default)]
pub(crate) struct Unlinked {
    /// The writer lane for its tombstone.
    lane: usize,
    /// Its whole record.
    record: Option<Addr>,
    /// Delta records on that record.
    chain: Option<Box<crate::tier::slab::Chain>>,
}

/// Counters the keyspace keeps for `INFO stats`.
#[derive(Debug, Default)]
pub struct KeyspaceStats {
    /// Keys removed because their deadline passed (lazily or actively).
    pub expired_keys: AtomicU64,
    /// Segments the compactor freed.
    pub compactions: AtomicU64,
    /// Milliseconds start-up recovery took.
    pub recovery_ms: AtomicU64,
    /// Keys start-up recovery found.
    pub recovered_keys: AtomicU64,
    /// Whether start-up loaded the index checkpoint of a clean shutdown
    /// instead of scanning the arena.
    pub from_checkpoint: std::sync::atomic::AtomicBool,
}

/// Per-database figures for `INFO keyspace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbInfo {
    /// Number of keys.
    pub keys: usize,
    /// Number of keys with a deadline.
    pub expires: usize,
    /// Average remaining TTL of volatile keys, ms (0 when there are none).
    pub avg_ttl: u64,
}

/// The contents of flushed databases, detached from the keyspace so that the
/// caller chooses where the DRAM is freed: dropping it frees every value
/// (`FLUSHALL ASYNC` drops it on a background thread, as Redis's lazyfree).
#[derive(Default)]
pub struct Flushed {
    shards: Vec<Shard>,
}

impl Flushed {
    /// Number of keys (live or expired) the flushed databases held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len()).sum()
    }

    /// Whether the flushed databases held no key at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for Flushed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flushed")
            .field("keys", &self.len())
            .finish()
    }
}

/// The whole data set of a server.
pub struct Keyspace {
    pub(crate) dbs: Box<[Database]>,
    /// Hashes keys (shard choice, index). Seeded at random at a fresh start,
    /// with the saved seed when the index checkpoint is loaded (its hashes
    /// must stay valid).
    pub(crate) hasher: FixedState,
    /// The hasher's seed.
    hash_seed: u64,
    shard_mask: u64,
    gate: crate::striped::Gate,
    /// Wall-clock ms at creation: the origin of the LRU clock.
    started_ms: u64,
    /// Statistics counters.
    pub stats: KeyspaceStats,
    /// The tiers.
    pub tiers: Tiers,
    /// Who hears of modified, expired and evicted keys (the server).
    pub(crate) observers: Observers,
    /// The index checkpoint's file (`persistence pmem` only; see
    /// `crate::checkpoint`).
    checkpoint_path: Option<std::path::PathBuf>,
    /// Background steps (demotion, compaction) hold it shared; `close`
    /// takes it exclusively, so none runs while the checkpoint is taken.
    maintenance: RwLock<bool>,
    /// The running snapshot, if any (see `crate::snapshot`).
    pub(crate) snapshot: crate::snapshot::SnapshotState,
}

/// A filter for [`Keyspace::scan`]: key and value type.
pub type ScanFilter<'f> = &'f dyn Fn(&[u8], ValueType) -> bool;

impl Keyspace {
    /// An empty DRAM-only keyspace (no arena).
    pub fn new(config: KeyspaceConfig) -> Self {
        Self::build(&config, None)
    }

    /// Opens the keyspace over its arena; in `persistence pmem` mode this
    /// recovers every key from the arena.
    pub fn open(config: KeyspaceConfig) -> Result<Self> {
        let arena = match &config.arena {
            Some(ac) => {
                if ac.size > MAX_INDEXED_ARENA {
                    return Err(Error::BadArena(format!(
                        "pmem-size {} is larger than the {} bytes Amber can index",
                        ac.size, MAX_INDEXED_ARENA
                    )));
                }
                Some(Arena::open(ac)?)
            }
            None => None,
        };
        let mut ks = Self::build(&config, arena);
        ks.checkpoint_path = config
            .arena
            .as_ref()
            .filter(|a| a.persistence == crate::arena::Persistence::Pmem)
            .map(|a| crate::checkpoint::path_for(&a.path));
        if let Some(seed) = ks
            .checkpoint_path
            .as_deref()
            .filter(|_| ks.tiers.arena.as_ref().is_some_and(Arena::was_clean))
            .and_then(crate::checkpoint::read_seed)
        {
            ks.hasher = FixedState::with_seed(seed);
            ks.hash_seed = seed;
        }
        ks.recover()?;
        Ok(ks)
    }

    fn build(config: &KeyspaceConfig, arena: Option<Arena>) -> Self {
        let shards = config.shards_per_db.max(1).next_power_of_two();
        let dbs = (0..DB_COUNT)
            .map(|_| Database {
                shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            })
            .collect();
        let budget = if arena.is_some() {
            config.dram_budget
        } else {
            u64::MAX
        };
        let seed = rand::random::<u64>();
        Keyspace {
            observers: Observers::default(),
            checkpoint_path: None,
            maintenance: RwLock::new(false),
            snapshot: crate::snapshot::SnapshotState::new(DB_COUNT * shards),
            dbs,
            hasher: FixedState::with_seed(seed),
            hash_seed: seed,
            shard_mask: shards as u64 - 1,
            gate: crate::striped::Gate::default(),
            started_ms: now_ms(),
            stats: KeyspaceStats::default(),
            tiers: Tiers::new(arena, budget),
        }
    }

    /// Rebuilds the index from the arena (every key cold): from the index
    /// checkpoint after a clean shutdown, else by recovery.
    fn recover(&self) -> Result<()> {
        let Some(arena) = &self.tiers.arena else {
            return Ok(());
        };
        let start = Instant::now();
        if let Some(path) = &self.checkpoint_path {
            if path.exists() {
                let loaded = if arena.was_clean() {
                    self.load_checkpoint(arena, path)
                } else {
                    Err(Error::BadArena("the last shutdown was not clean".into()))
                };
                // Used or not, it describes the past from now on.
                if let Err(e) = std::fs::remove_file(path) {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove the index checkpoint");
                }
                match loaded {
                    Ok(keys) => {
                        let ms = start.elapsed().as_millis() as u64;
                        self.stats.recovery_ms.store(ms, Ordering::Relaxed);
                        self.stats
                            .recovered_keys
                            .store(keys as u64, Ordering::Relaxed);
                        self.stats.from_checkpoint.store(true, Ordering::Relaxed);
                        tracing::info!(
                            keys,
                            ms,
                            "loaded the index checkpoint of the clean shutdown (no arena scan)"
                        );
                        return Ok(());
                    }
                    Err(e) => {
                        tracing::info!(reason = %e, "index checkpoint not used; recovering from the arena")
                    }
                }
            }
        }
        let per_db = self.shards_per_db() as u64;
        let reserve = |records: &[u64]| {
            // Size every index once (records per db is an upper bound of its
            // keys: superseded records and tombstones count too).
            for (d, &n) in self.dbs.iter().zip(records) {
                if n == 0 {
                    continue;
                }
                let each = (n / per_db + n / per_db / 16 + 16) as usize;
                for shard in d.shards.iter() {
                    shard.lock().reserve(each);
                }
            }
        };
        let stats = arena.recover_reserving(reserve, |rec| {
            let Some(db) = self.dbs.get(rec.db as usize) else {
                return;
            };
            let full = self.hash(rec.key);
            let short = short_hash(full);
            let Some(shard) = db.shards.get(self.shard_of(full)) else {
                return;
            };
            let mut s = shard.lock();
            s.index_new(Handle::cold(rec.addr, short));
            if rec.expire_at != 0 {
                s.expiry.insert(rec.expire_at, short as u64);
            }
        })?;
        let keys = self
            .dbs
            .iter()
            .flat_map(|d| d.shards.iter())
            .map(|s| s.lock().len())
            .sum::<usize>();
        self.tiers
            .stats
            .cold_keys
            .store(keys as i64, Ordering::Relaxed);
        let mut stats = stats;
        let chained = self.restore_chains(std::mem::take(&mut stats.chains));
        let ms = start.elapsed().as_millis() as u64;
        self.stats.recovery_ms.store(ms, Ordering::Relaxed);
        self.stats
            .recovered_keys
            .store(keys as u64, Ordering::Relaxed);
        tracing::info!(
            keys,
            ms,
            chained,
            ?stats,
            "recovered the keyspace from the arena"
        );
        Ok(())
    }

    /// Number of shards in each database.
    pub fn shards_per_db(&self) -> usize {
        self.shard_mask as usize + 1
    }

    /// The seed of the key hasher.
    pub(crate) fn hash_seed(&self) -> u64 {
        self.hash_seed
    }

    /// The hash of a key (stable for the life of the process).
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Which of a database's shards holds `key` (`0..shards_per_db()`):
    /// commands on keys of one shard take turns on its lock.
    pub fn shard_index(&self, key: &[u8]) -> usize {
        self.shard_of(self.hash(key))
    }

    pub(crate) fn shard_of(&self, hash: u64) -> usize {
        ((hash >> 40) & self.shard_mask) as usize
    }

    /// Puts a hot entry in place of a key's cold handle `cold` (a
    /// promotion, a whole-value write over a cold key, a recovered delta
    /// chain): charges it, points the index at its slot and counts the key
    /// hot. Returns the slot.
    pub(crate) fn install_hot(&self, shard: &mut Shard, cold: Handle, mut e: HotEntry) -> u32 {
        e.charged = e.footprint();
        let charged = e.charged as i64;
        let slot = shard.hot.insert(e);
        shard.replace_handle(cold, Handle::hot(slot, cold.short_hash()));
        let stats = &self.tiers.stats;
        stats.hot_keys.fetch_add(1, Ordering::Relaxed);
        stats.cold_keys.fetch_sub(1, Ordering::Relaxed);
        stats.hot_bytes.fetch_add(charged, Ordering::Relaxed);
        slot
    }

    /// The LRU clock now: seconds since the keyspace was created, plus
    /// [`LRU_CLOCK_SPAN`].
    pub(crate) fn clock_secs(&self) -> u32 {
        self.clock_at(now_ms())
    }

    /// The LRU clock at wall-clock time `now` (ms): like Redis's
    /// `getLRUClock`, it follows the wall clock, so a command reads the time
    /// once for both its expiry checks and its access times.
    ///
    /// The clock starts at [`LRU_CLOCK_SPAN`] rather than 0, so that an
    /// access time up to that far in the past (`RESTORE ... IDLETIME`,
    /// Redis's whole 24-bit LRU range) is representable right after start-up.
    pub(crate) fn clock_at(&self, now: u64) -> u32 {
        ((now.saturating_sub(self.started_ms) / 1000) as u32).saturating_add(LRU_CLOCK_SPAN)
    }

    /// Takes the gate shared: ordinary commands run under it.
    pub fn shared(&self) -> crate::striped::SharedGate<'_> {
        self.gate.shared()
    }

    /// Takes the gate shared if no exclusive holder makes that wait.
    pub fn try_shared(&self) -> Option<crate::striped::SharedGate<'_>> {
        self.gate.try_shared()
    }

    /// Takes the gate shared, or `None` once `give_up` says so (asked
    /// every `slice` of waiting: see [`crate::striped::Gate::shared_unless`]).
    pub fn shared_unless(
        &self,
        slice: std::time::Duration,
        give_up: impl FnMut() -> bool,
    ) -> Option<crate::striped::SharedGate<'_>> {
        self.gate.shared_unless(slice, give_up)
    }

    /// Takes the gate exclusively, or `None` once `give_up` says so (see
    /// [`crate::striped::Gate::exclusive_unless`]).
    pub fn exclusive_unless(
        &self,
        slice: std::time::Duration,
        give_up: impl FnMut() -> bool,
    ) -> Option<crate::striped::ExclusiveGate<'_>> {
        self.gate.exclusive_unless(slice, give_up)
    }

    /// Takes the gate exclusively: nothing else runs until it is dropped
    /// (`EXEC`, `SWAPDB`, `MOVE`, `COPY`, `FLUSHALL`, `FLUSHDB`).
    pub fn exclusive(&self) -> crate::striped::ExclusiveGate<'_> {
        self.gate.exclusive()
    }

    /// Installs the observer told of modified, expired and evicted keys and
    /// of emptied databases (see [`crate::observer`]). Only the first call
    /// has an effect.
    pub fn set_observer(&self, observer: std::sync::Arc<dyn KeyObserver>) {
        self.observers.install(observer);
    }

    /// Turns the observer's `modified` reports on (some client watches a key)
    /// or off (nobody does: a write then costs one atomic load).
    pub fn watch_modifications(&self, on: bool) {
        self.observers.set_watching(on);
    }

    /// Turns the observer's `modified` reports on (some client tracks keys
    /// for client-side caching) or off; independent of
    /// [`Keyspace::watch_modifications`]: reports flow while either is on.
    pub fn track_modifications(&self, on: bool) {
        self.observers.set_tracking(on);
    }

    /// Turns the observer's `modified` reports on (some client is blocked
    /// in `XREADGROUP`) or off; independent of the two above.
    pub fn report_stream_group_changes(&self, on: bool) {
        self.observers.set_stream_groups(on);
    }

    /// Turns the observer's `created` reports on or off.
    pub fn report_creations(&self, on: bool) {
        self.observers.set_creations(on);
    }

    /// Turns the observer's `deadline_set` reports on or off.
    pub fn report_deadlines(&self, on: bool) {
        self.observers.set_deadlines(on);
    }

    /// Whether `key` is in `db` at all, and whether its deadline has passed,
    /// without expiring it or touching it: `None` when absent,
    /// `Some(expired)` when present (Redis's `dictFind` and `keyIsExpired`,
    /// which `WATCH` uses).
    pub fn presence(&self, db: usize, key: &[u8]) -> Option<bool> {
        let mut g = self.lock_one(db, key).ok()?;
        g.presence(key)
    }

    fn database(&self, db: usize) -> Result<&Database> {
        self.dbs.get(db).ok_or(Error::DbIndexOutOfRange)
    }

    /// Locks the shards holding `keys` in database `db`, in ascending order.
    pub fn lock<'k>(
        &self,
        db: usize,
        keys: impl IntoIterator<Item = &'k [u8]>,
    ) -> Result<Guard<'_>> {
        let database = self.database(db)?;
        let keys: SmallVec<[&[u8]; 4]> = keys.into_iter().collect();
        let mut wanted: SmallVec<[usize; 4]> =
            keys.iter().map(|k| self.shard_of(self.hash(k))).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let locks = wanted
            .into_iter()
            .filter_map(|i| database.shards.get(i).map(|m| (i, m.lock())))
            .collect();
        let guard = Guard::new(self, db, locks, crate::clock::command_now_ms());
        // A multi-key command (MSET, MGET, DEL, SUNION...) has its keys'
        // cache misses in flight together, as a pipelined batch has (see
        // `crate::prefetch`); one key has nothing to overlap with.
        if keys.len() > 1 {
            guard.prefetch(&keys);
        }
        Ok(guard)
    }

    /// Locks the shard of one key ([`Keyspace::lock`] without the sorting
    /// and de-duplication, which most commands, single-key ones, pay for
    /// nothing).
    pub fn lock_one(&self, db: usize, key: &[u8]) -> Result<Guard<'_>> {
        let database = self.database(db)?;
        let i = self.shard_of(self.hash(key));
        // A push, not `collect`: SmallVec's `extend` costs about 40
        // instructions more, on every single-key command.
        let mut locks = SmallVec::new();
        if let Some(m) = database.shards.get(i) {
            locks.push((i, m.lock()));
        }
        Ok(Guard::new(self, db, locks, crate::clock::command_now_ms()))
    }

    // ----- arena plumbing shared by guards, the demoter and the compactor -----

    /// Appends the record of a hot entry; notes the durability ticket.
    pub(crate) fn write_record(&self, lane: usize, db: usize, e: &HotEntry) -> Result<Addr> {
        let arena = self.tiers.arena.as_ref().ok_or(Error::OutOfMemory)?;
        let (kind, bytes) = codec::encode(&e.value);
        let parts: [&[u8]; 1] = [bytes.as_ref()];
        let (addr, ticket) = arena.append(
            lane,
            RecordIn {
                db: db as u8,
                kind,
                key: &e.key,
                value: &parts,
                expire_at: e.expire_at,
            },
        )?;
        self.tiers
            .stats
            .arena_writes
            .fetch_add(1, Ordering::Relaxed);
        note_ticket(ticket);
        Ok(addr)
    }

    /// The record at `addr` is superseded (by a newer version of the key).
    pub(crate) fn release_record(&self, addr: Addr) {
        if let Some(a) = &self.tiers.arena {
            if let Err(e) = a.release(addr) {
                tracing::warn!(%addr, error = %e, "release of an arena record failed");
            }
        }
    }

    /// The key of the record at `addr` is gone: in `pmem` mode a tombstone
    /// shadows older versions; otherwise the record is just released.
    pub(crate) fn drop_record(&self, lane: usize, addr: Addr) {
        let Some(a) = &self.tiers.arena else { return };
        if self.tiers.write_through() {
            match a.delete(lane, addr) {
                Ok(t) => note_ticket(t),
                Err(e) => {
                    self.tiers
                        .stats
                        .persist_failures
                        .fetch_add(1, Ordering::Relaxed);
                    crate::tier::note_persist_failure();
                    tracing::error!(%addr, error = %e, "could not write a tombstone");
                }
            }
        } else {
            self.release_record(addr);
        }
    }

    /// Moves the hot entry in `slot` to the arena. Returns false if it could
    /// not (arena full): it then stays in DRAM.
    pub(crate) fn demote_slot(&self, shard: &mut Shard, lane: usize, db: usize, slot: u32) -> bool {
        let Some(e) = shard.hot.get_mut(slot) else {
            return false;
        };
        let addr = match e.copy {
            Some(a) if !e.dirty && e.chain.is_none() => a,
            // A cold key is one whole record: fold any chain.
            _ => match self.write_back(lane, db, e, false) {
                Ok(()) => match e.copy {
                    Some(a) => a,
                    None => return false,
                },
                Err(err) => {
                    self.tiers
                        .stats
                        .persist_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %err, "demotion failed; the entry stays hot");
                    return false;
                }
            },
        };
        let short = e.short;
        let charged = e.charged as i64;
        shard.replace_handle(Handle::hot(slot, short), Handle::cold(addr, short));
        shard.hot.remove(slot);
        let s = &self.tiers.stats;
        s.hot_keys.fetch_sub(1, Ordering::Relaxed);
        s.cold_keys.fetch_add(1, Ordering::Relaxed);
        s.hot_bytes.fetch_sub(charged, Ordering::Relaxed);
        s.demotions.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Demotes up to `n` of the least recently used of a few sampled hot
    /// entries of a shard (Redis's eviction-pool idea, per shard). Returns how
    /// many were demoted.
    pub(crate) fn demote_sampled(
        &self,
        shard: &mut Shard,
        lane: usize,
        db: usize,
        n: usize,
    ) -> usize {
        let mut rng = rand::thread_rng();
        let lfu = self.tiers.lfu.load(Ordering::Relaxed);
        let mut done = 0;
        while done < n && shard.hot.len() > 0 {
            let cap = shard.hot.capacity() as u32;
            // The coldest of five sampled entries: by (frequency, last
            // access) with `tiering-policy lfu`, by last access otherwise.
            let mut best: Option<(u32, (u32, u32))> = None;
            let mut tries = 0;
            let mut seen = 0;
            while seen < 5 && tries < 64 {
                tries += 1;
                let slot = rng.gen_range(0..cap);
                if let Some(e) = shard.hot.get(slot) {
                    seen += 1;
                    let rank = if lfu {
                        (e.freq as u32, e.access)
                    } else {
                        (0, e.access)
                    };
                    if best.is_none_or(|(_, r)| rank < r) {
                        best = Some((slot, rank));
                    }
                }
            }
            let Some((slot, _)) = best else { break };
            if !self.demote_slot(shard, lane, db, slot) {
                break;
            }
            done += 1;
        }
        done
    }

    /// One pass of the background demoter: while DRAM is over budget, demote
    /// sampled entries shard by shard. Returns how many were demoted.
    pub fn demote_step(&self, max: usize) -> usize {
        let closed = self.maintenance.read();
        if *closed {
            return 0;
        }
        let mut done = 0;
        let per_db = self.shards_per_db();
        let mut rng = rand::thread_rng();
        let start = rng.gen_range(0..per_db);
        for (db, d) in self.dbs.iter().enumerate() {
            for k in 0..per_db {
                if done >= max || self.tiers.over_budget() == 0 {
                    return done;
                }
                let i = (start + k) % per_db;
                let Some(m) = d.shards.get(i) else { continue };
                let mut s = m.lock();
                if s.hot.len() == 0 {
                    continue;
                }
                done += self.demote_sampled(&mut s, db * per_db + i, db, 16);
            }
        }
        done
    }

    /// One pass of the compactor: rewrites the live records of up to `max`
    /// mostly-dead segments elsewhere and frees them. Requests go on in the
    /// meantime; each record is moved under its shard's lock.
    pub fn compact_step(&self, min_dead_ratio: f64, max: usize) -> usize {
        let closed = self.maintenance.read();
        if *closed {
            return 0;
        }
        let Some(arena) = &self.tiers.arena else {
            return 0;
        };
        let mut freed = 0;
        for seg in arena.compaction_candidates(min_dead_ratio, max) {
            // (address, db, key, for a delta record the base it applies to)
            type Rec = (Addr, u8, Vec<u8>, Option<u64>);
            // Nothing live (every record superseded, as a folded chain's
            // deltas are): no index entry points here, nothing to move.
            let records: Vec<Rec> = match arena.segment_records(seg) {
                Ok(_) if arena.segment_is_dead(seg) => Vec::new(),
                Ok(it) => it
                    .filter(|r| !r.is_tombstone())
                    .map(|r| {
                        let base = r
                            .is_delta()
                            .then(|| crate::arena::record::parse_delta(r.value).map(|d| d.0))
                            .map(|b| b.unwrap_or(u64::MAX));
                        (r.addr, r.db(), r.key.to_vec(), base)
                    })
                    .collect(),
                Err(_) => continue,
            };
            for (addr, db, key, delta_of) in records {
                if db == crate::arena::meta::META_DB {
                    // Server metadata, not a key: the arena's table says
                    // whether this record is still the newest of its name.
                    if let Err(e) = arena.relocate_meta(addr) {
                        tracing::debug!(error = %e, "could not move a metadata record");
                    }
                    continue;
                }
                let Some(d) = self.dbs.get(db as usize) else {
                    continue;
                };
                let full = self.hash(&key);
                let kh = KeyHash {
                    short: short_hash(full),
                };
                let Some(m) = d.shards.get(self.shard_of(full)) else {
                    continue;
                };
                let mut s = m.lock();
                let Some(h) = s.find(kh, &key, Some(arena)) else {
                    continue;
                };
                match h.target() {
                    Target::Cold(a) if a == addr => {
                        if let Ok(new) = arena.relocate(addr) {
                            s.replace_handle(h, Handle::cold(new, kh.short));
                        }
                    }
                    Target::Hot(slot) => {
                        let lane = db as usize * self.shards_per_db() + self.shard_of(full);
                        if let Some(e) = s.hot.get_mut(slot) {
                            if e.copy == Some(addr) && e.chain.is_none() {
                                if let Ok(new) = arena.relocate(addr) {
                                    e.copy = Some(new);
                                }
                            } else if e.copy == Some(addr)
                                || e.chain
                                    .as_ref()
                                    .is_some_and(|c| Some(c.base_seq) == delta_of)
                            {
                                // A chain member (a delta on the entry's
                                // base): fold the chain, so the other members
                                // in this segment are dead. Moving them one by
                                // one would search the chain for each.
                                if let Err(err) = self.write_whole(lane, db as usize, e) {
                                    tracing::debug!(error = %err, "could not fold a chain");
                                }
                            }
                        }
                    }
                    Target::Cold(_) => {}
                }
            }
            match arena.free_segment(seg) {
                Ok(_) => {
                    freed += 1;
                    self.stats.compactions.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::debug!(error = %e, "segment not freed yet"),
            }
        }
        freed
    }

    /// Removes the entry behind `h` from a locked shard: index, hot slab or
    /// arena record (tombstoned in `pmem` mode), expiry index and counters.
    /// Returns the hot entry if the key was hot. The caller has read whatever
    /// it needs from a cold record first.
    pub(crate) fn remove_handle(&self, s: &mut Shard, lane: usize, h: Handle) -> Option<HotEntry> {
        let (e, records) = self.unlink_handle(s, lane, h);
        self.drop_unlinked(records, true);
        e
    }

    /// [`Keyspace::remove_handle`] without touching the arena: returns the
    /// hot entry (without its arena records) and the key's arena records,
    /// to be dropped with [`Keyspace::drop_unlinked`] once whatever replaces
    /// them is written (a guard drops them at its end, after its writes:
    /// `RENAME` writes the new key before the old one's tombstone, so a
    /// crash in between cannot lose the value).
    pub(crate) fn unlink_handle(
        &self,
        s: &mut Shard,
        lane: usize,
        h: Handle,
    ) -> (Option<HotEntry>, Unlinked) {
        s.unindex_handle(h);
        let stats = &self.tiers.stats;
        match h.target() {
            Target::Hot(slot) => {
                let Some(mut e) = s.hot.remove(slot) else {
                    return (None, Unlinked::default());
                };
                if e.expire_at != 0 {
                    s.expiry.remove(e.expire_at, h.short_hash() as u64);
                }
                stats.hot_keys.fetch_sub(1, Ordering::Relaxed);
                stats
                    .hot_bytes
                    .fetch_sub(e.charged as i64, Ordering::Relaxed);
                let records = Unlinked {
                    lane,
                    record: e.copy.take(),
                    chain: e.chain.take(),
                };
                (Some(e), records)
            }
            Target::Cold(addr) => {
                let deadline = self
                    .tiers
                    .arena
                    .as_ref()
                    .and_then(|a| a.read_head(addr).ok())
                    .map_or(0, |r| r.expire_at());
                if deadline != 0 {
                    s.expiry.remove(deadline, h.short_hash() as u64);
                }
                stats.cold_keys.fetch_sub(1, Ordering::Relaxed);
                let records = Unlinked {
                    lane,
                    record: Some(addr),
                    chain: None,
                };
                (None, records)
            }
        }
    }

    /// Drops the arena records of an unlinked key: its delta records are
    /// released, then its record is tombstoned (`tombstone`, in `pmem` mode)
    /// or just released (the key has a newer record).
    pub(crate) fn drop_unlinked(&self, u: Unlinked, tombstone: bool) {
        if let Some(c) = u.chain {
            for a in c.deltas {
                self.release_record(a);
            }
        }
        if let Some(addr) = u.record {
            if tombstone {
                self.drop_record(u.lane, addr);
            } else {
                self.release_record(addr);
            }
        }
    }

    /// Evicts up to `want` keys under `policy` to make room (`maxmemory-policy`).
    ///
    /// Candidates are taken a few at a time from a random shard: for the
    /// volatile policies the keys with the nearest deadlines (the expiry
    /// index is ordered by deadline); otherwise the first handles of the
    /// shard's table (hash order, so effectively random), preferring cold
    /// keys (already judged cold by the demoter) and then the hot entry least
    /// recently (or, for LFU, least frequently) used. A shard without a
    /// candidate sends the search on to the next shards in turn, through
    /// every database: a sparse keyspace (a few keys, or a few with a
    /// deadline, among thousands of shards) still gives its keys up, as
    /// Redis's evictor, which samples the keys themselves, always does.
    /// Space in the arena comes back when the compactor rewrites the
    /// emptied segments. Returns how many keys were evicted.
    pub fn evict(&self, policy: EvictionPolicy, want: usize) -> usize {
        if policy == EvictionPolicy::NoEviction {
            return 0;
        }
        let per_db = self.shards_per_db();
        let shards = self.dbs.len() * per_db;
        let mut rng = rand::thread_rng();
        let mut evicted = 0;
        'victims: while evicted < want {
            let start = rng.gen_range(0..shards.max(1));
            for step in 0..shards {
                let at = (start + step) % shards;
                let (db, i) = (at / per_db, at % per_db);
                let Some(m) = self.dbs.get(db).and_then(|d| d.shards.get(i)) else {
                    continue;
                };
                let mut s = m.lock();
                let Some(h) = self.eviction_candidate(&s, policy) else {
                    continue;
                };
                self.before_change(db, i, &mut s);
                let observer = self.observers.get();
                let key = observer.and_then(|_| self.key_of(&s, h).map(|(k, _, _)| k.into_owned()));
                self.remove_handle(&mut s, db * per_db + i, h);
                if let (Some(o), Some(key)) = (observer, key) {
                    o.evicted(db, &key);
                }
                evicted += 1;
                continue 'victims;
            }
            // No shard has a candidate.
            break;
        }
        self.tiers
            .stats
            .evicted_keys
            .fetch_add(evicted as u64, Ordering::Relaxed);
        evicted
    }

    /// The key of shard `s` that `policy` evicts first, if it has one (see
    /// [`Keyspace::evict`]).
    fn eviction_candidate(&self, s: &Shard, policy: EvictionPolicy) -> Option<Handle> {
        let arena = self.tiers.arena.as_ref();
        if policy.volatile_only() {
            let &(deadline, short) = s.expiry.due(u64::MAX, 1).first()?;
            return s
                .index
                .iter_hash(crate::tier::handle::table_hash(short as u32))
                .find(|h| h.short_hash() as u64 == short && s.deadline_of(**h, arena) == deadline)
                .copied();
        }
        let lfu = policy == EvictionPolicy::AllKeysLfu;
        s.index
            .iter()
            .take(8)
            .copied()
            .min_by_key(|h| match h.target() {
                Target::Cold(_) => (0u8, 0u32),
                Target::Hot(slot) => s
                    .hot
                    .get(slot)
                    .map_or((1, 0), |e| (1, if lfu { e.freq as u32 } else { e.access })),
            })
    }

    // ----- whole-database operations -----

    /// The key and deadline of the entry a handle points to.
    fn key_of<'s>(
        &'s self,
        shard: &'s Shard,
        h: Handle,
    ) -> Option<(Cow<'s, [u8]>, u64, ValueType)> {
        match h.target() {
            Target::Hot(slot) => shard
                .hot
                .get(slot)
                .map(|e| (Cow::Borrowed(&*e.key), e.expire_at, e.value.value_type())),
            Target::Cold(addr) => {
                let r = self.tiers.arena.as_ref()?.read_head(addr).ok()?;
                let t = codec::type_of(r.kind())?;
                Some((Cow::Borrowed(r.key), r.expire_at(), t))
            }
        }
    }

    /// Number of keys in `db` (including expired keys not yet collected, as Redis).
    pub fn dbsize(&self, db: usize) -> usize {
        self.dbs
            .get(db)
            .map_or(0, |d| d.shards.iter().map(|s| s.lock().len()).sum())
    }

    /// Figures for `INFO keyspace`.
    pub fn db_info(&self, db: usize) -> DbInfo {
        let now = now_ms();
        let (mut keys, mut expires, mut ttl_sum) = (0, 0, 0u128);
        if let Some(d) = self.dbs.get(db) {
            for s in d.shards.iter() {
                let s = s.lock();
                keys += s.len();
                let (sum, n) = s.expiry.ttl_sum(now);
                ttl_sum += sum;
                expires += n;
            }
        }
        let avg_ttl = if expires == 0 {
            0
        } else {
            (ttl_sum / expires as u128) as u64
        };
        DbInfo {
            keys,
            expires,
            avg_ttl,
        }
    }

    /// Removes every key of `db`.
    pub fn flush_db(&self, db: usize) {
        drop(self.detach_db(db));
    }

    /// Empties `db` at once and hands its former DRAM contents to the caller,
    /// who frees them wherever it likes (`FLUSHDB ASYNC`). Each shard is
    /// swapped out under its lock, so the database is empty as soon as this
    /// returns; the arena records are released (tombstoned in `pmem` mode)
    /// before it returns, so a restart never resurrects flushed keys. Run it
    /// under [`Keyspace::exclusive`] for an atomic flush.
    pub fn detach_db(&self, db: usize) -> Flushed {
        if let Some(o) = self.observers.get() {
            o.replacing_db(db, None);
        }
        let mut out = Flushed::default();
        let per_db = self.shards_per_db();
        if let Some(d) = self.dbs.get(db) {
            out.shards.reserve(d.shards.len());
            for (i, m) in d.shards.iter().enumerate() {
                let mut s = m.lock();
                self.before_change(db, i, &mut s);
                let old = std::mem::take(&mut *s);
                self.forget_shard(&old, db * per_db + i);
                out.shards.push(old);
            }
        }
        out
    }

    /// [`Keyspace::detach_db`] for every database (`FLUSHALL ASYNC`).
    pub fn detach_all(&self) -> Flushed {
        let mut out = Flushed::default();
        for db in 0..self.dbs.len() {
            out.shards.append(&mut self.detach_db(db).shards);
        }
        out
    }

    /// Releases (or in `pmem` mode tombstones) every record of a shard's
    /// contents that were taken out of the keyspace.
    fn forget_shard(&self, old: &Shard, lane: usize) {
        let s = &self.tiers.stats;
        for h in old.index.iter() {
            match h.target() {
                Target::Hot(slot) => {
                    if let Some(e) = old.hot.get(slot) {
                        s.hot_keys.fetch_sub(1, Ordering::Relaxed);
                        s.hot_bytes.fetch_sub(e.charged as i64, Ordering::Relaxed);
                        if let Some(c) = &e.chain {
                            for &d in &c.deltas {
                                self.release_record(d);
                            }
                        }
                        if let Some(a) = e.copy {
                            self.drop_record(lane, a);
                        }
                    }
                }
                Target::Cold(a) => {
                    s.cold_keys.fetch_sub(1, Ordering::Relaxed);
                    self.drop_record(lane, a);
                }
            }
        }
    }

    /// Stores `blob` as the server metadata named `name` (state that is
    /// not a key, such as the function libraries), replacing the previous
    /// blob of that name; in `persistence pmem` mode it is in the arena and
    /// durable when this returns, and [`Keyspace::meta`] finds it after a
    /// restart, a crash or a power cut (see `arena::meta`). Without an
    /// arena, or with `persistence none`, nothing survives a restart
    /// anyway and this does nothing.
    ///
    /// Metadata is not a key: no database holds it, so flushes, `SWAPDB`,
    /// eviction, demotion, scans and counts never see it. An arena without
    /// room for it is [`Error::OutOfMemory`], and the previous blob stays.
    pub fn put_meta(&self, name: &[u8], blob: &[u8]) -> Result<()> {
        let closed = self.maintenance.read();
        let Some(arena) = self
            .tiers
            .arena
            .as_ref()
            .filter(|_| self.tiers.write_through())
        else {
            return Ok(());
        };
        if *closed {
            return Err(Error::BadArena("the keyspace is closed".into()));
        }
        arena.put_meta(name, blob).map_err(|e| match e {
            Error::ArenaFull | Error::RecordTooLarge => Error::OutOfMemory,
            other => other,
        })
    }

    /// The server metadata named `name` last stored with
    /// [`Keyspace::put_meta`] (before a restart too); `None` if there is
    /// none, or no `persistence pmem` arena. [`Error::Corrupt`] if its
    /// record no longer passes its checksum.
    pub fn meta(&self, name: &[u8]) -> Result<Option<Vec<u8>>> {
        match self
            .tiers
            .arena
            .as_ref()
            .filter(|_| self.tiers.write_through())
        {
            Some(arena) => arena.meta(name),
            None => Ok(None),
        }
    }

    /// Removes every key of every database.
    pub fn flush_all(&self) {
        drop(self.detach_all());
    }

    /// Swaps two databases. Run under [`Keyspace::exclusive`]. In `pmem` mode
    /// the records of both databases are rewritten with their new database
    /// number (O(keys)), so a restart sees the swap.
    pub fn swap_db(&self, a: usize, b: usize) -> Result<()> {
        let (da, db_) = (self.database(a)?, self.database(b)?);
        if a == b {
            return Ok(());
        }
        if let Some(o) = self.observers.get() {
            o.replacing_db(a, Some(b));
            o.replacing_db(b, Some(a));
        }
        for (i, (sa, sb)) in da.shards.iter().zip(db_.shards.iter()).enumerate() {
            let mut ga = sa.lock();
            let mut gb = sb.lock();
            self.before_change(a, i, &mut ga);
            self.before_change(b, i, &mut gb);
            std::mem::swap(&mut *ga, &mut *gb);
        }
        if self.tiers.write_through() {
            self.rewrite_db(a)?;
            self.rewrite_db(b)?;
            self.shadow_moved_out(b, a)?;
            self.shadow_moved_out(a, b)?;
        }
        Ok(())
    }

    /// After a swap in `pmem` mode: each key `db` now holds came from
    /// `left`, whose arena record of it (rewritten under `db`, and
    /// released) is still valid on the medium; unless `left` holds that key
    /// again (its new record is newer), a tombstone shadows the old one, or
    /// recovery after a crash would bring the key back in `left` too.
    fn shadow_moved_out(&self, db: usize, left: usize) -> Result<()> {
        let Some(arena) = &self.tiers.arena else {
            return Ok(());
        };
        let mut moved = Vec::new();
        for s in self.database(db)?.shards.iter() {
            let s = s.lock();
            moved.extend(
                s.index
                    .iter()
                    .filter_map(|&h| self.key_of(&s, h).map(|(k, _, _)| k.into_owned())),
            );
        }
        let per_db = self.shards_per_db();
        for key in moved {
            if self.presence(left, &key).is_none() {
                let lane = left * per_db + self.shard_index(&key);
                note_ticket(arena.tombstone(lane, left as u8, &key)?);
            }
        }
        Ok(())
    }

    /// Rewrites every record of `db` (new sequence numbers, this db number).
    fn rewrite_db(&self, db: usize) -> Result<()> {
        let Some(arena) = &self.tiers.arena else {
            return Ok(());
        };
        let d = self.database(db)?;
        let per_db = self.shards_per_db();
        for (i, m) in d.shards.iter().enumerate() {
            let lane = db * per_db + i;
            let mut s = m.lock();
            let handles: Vec<Handle> = s.index.iter().copied().collect();
            for h in handles {
                match h.target() {
                    Target::Hot(slot) => {
                        let Some(e) = s.hot.get_mut(slot) else {
                            continue;
                        };
                        self.write_back(lane, db, e, false)?;
                    }
                    Target::Cold(addr) => {
                        let (new, ticket) = {
                            let r = arena.read(addr)?;
                            arena.append(
                                lane,
                                RecordIn {
                                    db: db as u8,
                                    kind: r.kind(),
                                    key: r.key,
                                    value: &[r.value],
                                    expire_at: r.expire_at(),
                                },
                            )?
                        };
                        note_ticket(ticket);
                        self.release_record(addr);
                        s.replace_handle(h, Handle::cold(new, h.short_hash()));
                    }
                }
            }
        }
        Ok(())
    }

    /// Every live key of `db` that matches `pattern` (`KEYS`).
    pub fn keys(&self, db: usize, pattern: &[u8]) -> Vec<Vec<u8>> {
        let now = now_ms();
        let all = pattern == b"*";
        let mut out = Vec::new();
        if let Some(d) = self.dbs.get(db) {
            for s in d.shards.iter() {
                let s = s.lock();
                for &h in s.index.iter() {
                    if let Some((key, deadline, _)) = self.key_of(&s, h) {
                        if (deadline == 0 || deadline > now)
                            && (all || crate::glob::matches(pattern, &key, false))
                        {
                            out.push(key.into_owned());
                        }
                    }
                }
            }
        }
        out
    }

    /// One step of `SCAN`.
    ///
    /// The cursor is `shard << 32 | position`, where a key's position is its
    /// short hash (kept in its handle): keys of a shard are visited in
    /// position order, so every key present for the whole scan is returned at
    /// least once however the tables grow or shrink, which is Redis's
    /// guarantee. Keys sharing the cut-off position are returned together. A
    /// step costs a pass over one shard's handles (no key reads but the
    /// returned ones). Returns the next cursor (0 when done) and the keys
    /// passing `filter`.
    pub fn scan(
        &self,
        db: usize,
        cursor: u64,
        count: usize,
        filter: ScanFilter<'_>,
    ) -> (u64, Vec<Vec<u8>>) {
        let Some(d) = self.dbs.get(db) else {
            return (0, Vec::new());
        };
        let now = now_ms();
        let shards = d.shards.len() as u64;
        let mut shard = cursor >> 32;
        let mut from = cursor & 0xFFFF_FFFF;
        let mut out = Vec::new();
        let mut visited = 0usize;
        let count = count.max(1);
        while shard < shards && visited < count {
            let Some(lock) = d.shards.get(shard as usize) else {
                break;
            };
            let s = lock.lock();
            let mut cands: Vec<(u64, Handle)> = s
                .index
                .iter()
                .map(|h| (h.short_hash() as u64, *h))
                .filter(|(pos, _)| *pos >= from)
                .collect();
            let want = count - visited;
            let exhausted = cands.len() <= want;
            if !exhausted {
                cands.select_nth_unstable_by_key(want - 1, |(p, _)| *p);
                let cut = cands.get(want - 1).map_or(0, |c| c.0);
                cands.retain(|(p, _)| *p <= cut);
            }
            let last = cands.iter().map(|(p, _)| *p).max();
            for &(_, h) in &cands {
                visited += 1;
                if let Some((key, deadline, t)) = self.key_of(&s, h) {
                    if (deadline == 0 || deadline > now) && filter(&key, t) {
                        out.push(key.into_owned());
                    }
                }
            }
            match last {
                Some(l) if !exhausted => from = l + 1,
                _ => {
                    shard += 1;
                    from = 0;
                }
            }
        }
        let next = if shard >= shards {
            0
        } else {
            (shard << 32) | from
        };
        (next, out)
    }

    /// A random live key of `db` (`RANDOMKEY`).
    pub fn random_key(&self, db: usize) -> Option<Vec<u8>> {
        let d = self.dbs.get(db)?;
        let now = now_ms();
        let mut rng = rand::thread_rng();
        let sizes: Vec<usize> = d.shards.iter().map(|s| s.lock().len()).collect();
        let total: usize = sizes.iter().sum();
        // A bounded number of tries: a database full of expired keys answers nil.
        for _ in 0..100 {
            if total == 0 {
                return None;
            }
            let mut pick = rng.gen_range(0..total);
            for (i, &n) in sizes.iter().enumerate() {
                if pick < n {
                    let s = d.shards.get(i)?.lock();
                    let h = *s.index.iter().nth(pick)?;
                    if let Some((key, deadline, _)) = self.key_of(&s, h) {
                        if deadline == 0 || deadline > now {
                            return Some(key.into_owned());
                        }
                    }
                    break;
                }
                pick -= n;
            }
        }
        None
    }

    /// One active-expiry pass: removes up to `budget` due keys across all
    /// shards. Returns how many were removed.
    pub fn expire_cycle(&self, budget: usize) -> usize {
        let now = now_ms();
        let mut removed = 0;
        for (db, d) in self.dbs.iter().enumerate() {
            for m in d.shards.iter() {
                if removed >= budget {
                    break;
                }
                let mut s = m.lock();
                if s.expiry.len() == 0 {
                    continue;
                }
                for (deadline, short) in s.expiry.due(now, budget - removed) {
                    let key = {
                        let arena = self.tiers.arena.as_ref();
                        let found = s
                            .index
                            .iter_hash(crate::tier::handle::table_hash(short as u32))
                            .find(|h| {
                                h.short_hash() as u64 == short
                                    && s.deadline_of(**h, arena) == deadline
                            });
                        found
                            .and_then(|h| self.key_of(&s, *h))
                            .map(|(k, _, _)| k.into_owned())
                    };
                    match key {
                        Some(key) => {
                            drop(s);
                            if let Ok(mut g) = self.lock_one(db, &key) {
                                // The guard's lazy expiry removes it (and counts it).
                                g.exists(&key);
                            }
                            removed += 1;
                            s = m.lock();
                        }
                        None => s.expiry.remove(deadline, short),
                    }
                }
            }
        }
        removed
    }

    /// The type of `key` in `db` without touching its access time.
    pub fn type_of(&self, db: usize, key: &[u8]) -> Option<ValueType> {
        let mut g = self.lock_one(db, key).ok()?;
        g.peek(key).map(Value::value_type)
    }

    /// Marks a clean shutdown of the arena (after a final sync).
    ///
    /// In `persistence pmem` mode it first saves the index checkpoint, so
    /// the next start needs no arena scan (see `crate::checkpoint`); a
    /// failure to save it is logged and the next start recovers normally.
    /// Call it once the clients are gone: background steps stop here.
    pub fn close(&self) -> Result<()> {
        let Some(a) = &self.tiers.arena else {
            return Ok(());
        };
        let mut closed = self.maintenance.write();
        if *closed {
            return Ok(());
        }
        *closed = true;
        if let Some(path) = &self.checkpoint_path {
            let start = Instant::now();
            match self.write_checkpoint(a, path) {
                Ok(keys) => tracing::info!(
                    keys,
                    ms = start.elapsed().as_millis() as u64,
                    path = %path.display(),
                    "saved the index checkpoint"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "could not save the index checkpoint; the next start scans the arena");
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        a.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SetExpiry;

    fn filled(n: usize, db: usize) -> Keyspace {
        let ks = Keyspace::new(KeyspaceConfig {
            shards_per_db: 4,
            ..Default::default()
        });
        for i in 0..n {
            let key = format!("key:{i}");
            let mut g = ks.lock_one(db, key.as_bytes()).expect("db");
            g.set(key.as_bytes(), Value::string("v"), SetExpiry::Persist)
                .expect("set");
        }
        ks
    }

    #[test]
    fn detach_db_empties_one_database() {
        let ks = filled(50, 2);
        let mut g = ks.lock_one(5, b"other").expect("db 5");
        g.set(b"other", Value::string("v"), SetExpiry::Persist)
            .expect("set");
        drop(g);
        let flushed = ks.detach_db(2);
        assert_eq!(flushed.len(), 50);
        assert!(!flushed.is_empty());
        assert_eq!(ks.dbsize(2), 0);
        assert_eq!(ks.dbsize(5), 1);
        // Freed on another thread, as FLUSHDB ASYNC does.
        std::thread::spawn(move || drop(flushed))
            .join()
            .expect("drop thread");
        assert!(ks.detach_db(99).is_empty());
    }

    #[test]
    fn detach_all_empties_everything() {
        let ks = filled(10, 0);
        let mut g = ks.lock_one(15, b"x").expect("db 15");
        g.set(b"x", Value::string("v"), SetExpiry::At(1))
            .expect("set");
        drop(g);
        let flushed = ks.detach_all();
        assert_eq!(flushed.len(), 11);
        assert!((0..DB_COUNT).all(|db| ks.dbsize(db) == 0));
        assert_eq!(ks.db_info(15).expires, 0);
    }

    #[test]
    fn full_scan_visits_every_live_key_once() {
        let ks = filled(200, 0);
        let mut g = ks.lock_one(0, b"dead").expect("db 0");
        g.set(b"dead", Value::string("v"), SetExpiry::At(1))
            .expect("set");
        drop(g);
        for count in [1, 7, 10, 1000] {
            let mut seen = Vec::new();
            let mut cursor = 0;
            loop {
                let (next, keys) = ks.scan(0, cursor, count, &|_, _| true);
                seen.extend(keys);
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
            seen.sort();
            let before = seen.len();
            seen.dedup();
            assert_eq!(before, seen.len(), "no duplicates without rehash");
            assert_eq!(seen.len(), 200, "count {count}");
            assert!(!seen.iter().any(|k| k == b"dead"));
        }
        let (_, keys) = ks.scan(0, 0, 1000, &|k, _| {
            crate::glob::matches(b"key:1?", k, false)
        });
        assert_eq!(keys.len(), 10);
    }
}
