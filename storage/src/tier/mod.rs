//! The two tiers: DRAM (hot) under a budget, and the arena (cold).
//!
//! [`Tiers`] holds what every shard shares: the arena, the DRAM budget and
//! its accounting, and the counters `INFO tiering` shows. The per-shard
//! parts (index of [`handle::Handle`]s, the hot [`slab::Slab`]) live in
//! `crate::shard`; moving entries between tiers happens under the shard's
//! lock, in `crate::guard` (writes, promotion, inline demotion) and in
//! `Keyspace::demote_step` (background demotion).

pub(crate) mod handle;
pub(crate) mod slab;

use std::cell::Cell;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use crate::arena::{Arena, Persistence, Ticket};

/// Counters and gauges for `INFO tiering` and metrics.
#[derive(Debug, Default)]
pub struct TierStats {
    /// Keys whose value is in DRAM.
    pub hot_keys: AtomicI64,
    /// Keys whose value is only in the arena.
    pub cold_keys: AtomicI64,
    /// DRAM bytes charged to hot entries.
    pub hot_bytes: AtomicI64,
    /// Entries moved from DRAM to the arena.
    pub demotions: AtomicU64,
    /// Entries moved from the arena to DRAM.
    pub promotions: AtomicU64,
    /// Writes demoted inline because DRAM passed budget + 10%.
    pub inline_demotions: AtomicU64,
    /// Records written to the arena.
    pub arena_writes: AtomicU64,
    /// Of those, delta records (changes to a large collection).
    pub delta_writes: AtomicU64,
    /// Writes that could not be persisted (arena full or I/O error).
    pub persist_failures: AtomicU64,
    /// Keys removed by `maxmemory-policy` to make room.
    pub evicted_keys: AtomicU64,
}

/// Redis's `maxmemory-policy`: what to do when memory (DRAM budget and arena)
/// is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictionPolicy {
    /// Refuse writes with `-OOM`.
    NoEviction,
    /// Evict any key, least recently used first.
    AllKeysLru,
    /// Evict any key, least frequently used first.
    AllKeysLfu,
    /// Evict any key.
    AllKeysRandom,
    /// Evict keys with a TTL, least recently used first.
    VolatileLru,
    /// Evict keys with a TTL, least frequently used first.
    VolatileLfu,
    /// Evict keys with a TTL.
    VolatileRandom,
    /// Evict keys with a TTL, nearest deadline first.
    VolatileTtl,
}

impl EvictionPolicy {
    /// Whether only keys with a TTL may be evicted.
    pub fn volatile_only(self) -> bool {
        matches!(
            self,
            Self::VolatileLru | Self::VolatileLfu | Self::VolatileRandom | Self::VolatileTtl
        )
    }
}

impl FromStr for EvictionPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "noeviction" => Self::NoEviction,
            "allkeys-lru" => Self::AllKeysLru,
            "allkeys-lfu" => Self::AllKeysLfu,
            "allkeys-random" => Self::AllKeysRandom,
            "volatile-lru" => Self::VolatileLru,
            "volatile-lfu" => Self::VolatileLfu,
            "volatile-random" => Self::VolatileRandom,
            "volatile-ttl" => Self::VolatileTtl,
            other => return Err(format!("unknown maxmemory-policy '{other}'")),
        })
    }
}

/// What the shards share about tiering.
#[derive(Debug)]
pub struct Tiers {
    /// The arena; `None` for a DRAM-only keyspace (unit tests).
    pub arena: Option<Arena>,
    /// DRAM budget of the hot tier in bytes; 0 = no hot tier.
    pub budget: AtomicU64,
    /// Counters.
    pub stats: TierStats,
    /// Set by [`Tiers::refresh_pressure`] when no more data fits: the arena is
    /// nearly out of free segments, or `maxmemory` is exceeded.
    pub memory_full: AtomicBool,
    /// `tiering-policy lfu`: demote the least frequently used hot entries
    /// first (ties: least recently used); otherwise least recently used.
    pub lfu: AtomicBool,
    /// Whether a reply must wait for its writes to become durable: only with
    /// `persistence pmem`, `arena-sync always`, on a medium that is not DAX
    /// (on DAX every append is flushed before it returns).
    must_wait: bool,
}

thread_local! {
    /// The newest durability ticket of writes made on this thread since the
    /// last [`take_ticket`]: a connection waits for it once per batch.
    static PENDING: Cell<Ticket> = const { Cell::new(Ticket::NONE) };
}

/// Records that this thread's current batch must wait for `t`.
pub(crate) fn note_ticket(t: Ticket) {
    PENDING.with(|p| {
        if t > p.get() {
            p.set(t);
        }
    });
}

/// Takes the newest ticket noted on this thread (and resets it).
pub fn take_ticket() -> Ticket {
    PENDING.with(|p| p.replace(Ticket::NONE))
}

thread_local! {
    /// Set when a write made on this thread could not be persisted (the
    /// arena, or the file system holding it, is full): the command that made
    /// it must not be acknowledged.
    static PERSIST_FAILED: Cell<bool> = const { Cell::new(false) };
}

/// Records that a write of this thread's current command was not persisted.
pub(crate) fn note_persist_failure() {
    PERSIST_FAILED.with(|f| f.set(true));
}

/// Whether a write made on this thread since the last call could not be
/// persisted (and resets it). The server asks after each command: in
/// `persistence pmem` such a command is answered with `-OOM`, never `+OK`,
/// because its write would not survive a restart. (Its change stays in
/// DRAM and is written when the entry is demoted or written again, as
/// Redis keeps its in-memory change when its AOF write fails.)
pub fn take_persist_failure() -> bool {
    PERSIST_FAILED.with(|f| f.replace(false))
}

impl Tiers {
    /// Tiers over `arena` with a DRAM budget.
    pub fn new(arena: Option<Arena>, budget: u64) -> Self {
        let must_wait = arena.as_ref().is_some_and(|a| {
            let st = a.stats();
            st.persistence == Persistence::Pmem
                && st.sync == crate::arena::ArenaSync::Always
                && !st.dax
        });
        Tiers {
            must_wait,
            arena,
            budget: AtomicU64::new(budget),
            stats: TierStats::default(),
            memory_full: AtomicBool::new(false),
            lfu: AtomicBool::new(false),
        }
    }

    /// Whether writes are persisted before their reply (`persistence pmem`).
    pub fn write_through(&self) -> bool {
        self.arena
            .as_ref()
            .is_some_and(|a| a.persistence() == Persistence::Pmem)
    }

    /// Whether there is a hot tier at all (`dram-budget` > 0, or no arena).
    pub fn has_hot_tier(&self) -> bool {
        self.arena.is_none() || self.budget.load(Ordering::Relaxed) > 0
    }

    /// DRAM bytes above the budget (0 when within).
    pub fn over_budget(&self) -> u64 {
        if self.arena.is_none() {
            return 0;
        }
        let used = self.stats.hot_bytes.load(Ordering::Relaxed).max(0) as u64;
        used.saturating_sub(self.budget.load(Ordering::Relaxed))
    }

    /// Whether DRAM passed budget + 10%: writers must demote inline.
    pub fn past_hard_limit(&self) -> bool {
        let budget = self.budget.load(Ordering::Relaxed);
        self.arena.is_some() && self.over_budget() > budget / 10
    }

    /// Recomputes [`Tiers::memory_full`] (by the server's background task
    /// every few ms and when `maxmemory` changes, not per command: it walks
    /// the segment table). Memory is full when the arena's free segments fall
    /// under 5% of it (at least four segments; the arena itself keeps one or
    /// two more for the compactor), or when `maxmemory` (if not 0) is below
    /// `dram_in_use` plus the live arena bytes. `dram_in_use` is the caller's
    /// measure of DRAM (the server passes its heap in use, Redis's
    /// `used_memory`, which is never 0); this crate knows only its own data's
    /// share of it ([`TierStats::hot_bytes`]).
    pub fn refresh_pressure(&self, maxmemory: u64, dram_in_use: u64) -> bool {
        let full = match &self.arena {
            Some(a) => {
                a.retry_unbacked();
                let st = a.stats();
                let reserve = (st.size / 20).max(4 * st.segment_size);
                st.free_bytes < reserve
                    || (maxmemory > 0 && dram_in_use.saturating_add(st.live_bytes) > maxmemory)
            }
            None => maxmemory > 0 && dram_in_use > maxmemory,
        };
        self.memory_full.store(full, Ordering::Relaxed);
        full
    }

    /// Whether no more data fits (see [`Tiers::refresh_pressure`]).
    pub fn is_full(&self) -> bool {
        self.memory_full.load(Ordering::Relaxed)
    }

    /// Whether replies must wait for durability (see [`Tiers::wait_durable`]);
    /// when false, a batch's ticket can be dropped without a call.
    pub fn must_wait(&self) -> bool {
        self.must_wait
    }

    /// Waits until `ticket` is durable (no-op without write-through).
    pub fn wait_durable(&self, ticket: Ticket) -> crate::Result<()> {
        match &self.arena {
            Some(a) if ticket != Ticket::NONE => a.wait_durable(ticket),
            _ => Ok(()),
        }
    }
}

/// Redis's logarithmic LFU counter increment (`LFULogIncr`, `lfu-log-factor`
/// 10): the higher the counter, the less likely an access raises it, so 255
/// means about a million accesses rather than 255.
pub(crate) fn lfu_bump(counter: u8) -> u8 {
    const LOG_FACTOR: f64 = 10.0;
    if counter == u8::MAX {
        return counter;
    }
    let base = (counter as f64 - 5.0).max(0.0);
    let p = 1.0 / (base * LOG_FACTOR + 1.0);
    if rand::random::<f64>() < p {
        counter + 1
    } else {
        counter
    }
}
