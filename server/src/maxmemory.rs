//! What `maxmemory` means in Amber, and when it is checked.
//!
//! Redis compares `maxmemory` with `used_memory` (its heap in use, never 0)
//! minus its replication and AOF buffers. Amber's data lives in two places,
//! so its equivalent is the process heap in use (INFO `used_memory`:
//! jemalloc's `stats.allocated`, hot values and the index of every key
//! included) plus the live bytes of the arena (INFO `arena_bytes_used`).
//! `maxmemory` thus caps the whole data set, DRAM and persistent memory,
//! while `dram-budget` only decides which part of it stays in DRAM.
//!
//! Whether memory is full is recomputed by the background task every 10 ms
//! ([`refresh`]) and at once when `CONFIG SET` changes `maxmemory`,
//! `maxmemory-policy` or `replica-ignore-maxmemory`: a write after
//! `CONFIG SET maxmemory 1` is refused (or makes room) at once, as on
//! Redis. The check on the hot path is one atomic load
//! (`Tiers::is_full`). Under an evicting policy the background task also
//! evicts while memory is full ([`evict_while_full`]), as Redis's
//! eviction timer does, so keys go even when no write comes.

use std::time::{Duration, Instant};

use amber_storage::EvictionPolicy;

use crate::state::ServerState;

/// Keys evicted per call of the keyspace's evictor.
const EVICT_BATCH: usize = 16;

/// Evictor calls in a row that found nothing after which a pass stops.
const MAX_MISSES: u32 = 64;

/// The process heap in use (jemalloc `stats.allocated`, refreshed first).
pub fn heap_in_use() -> u64 {
    use tikv_jemalloc_ctl::{epoch, stats};
    let _ = epoch::advance();
    stats::allocated::read().unwrap_or(0) as u64
}

/// The `maxmemory` that makes memory "full" (then `maxmemory-policy`
/// evicts, or writes get `-OOM`): none on a replica with
/// `replica-ignore-maxmemory yes` (Redis's default), which stays an exact
/// copy of its master and lets the master's `DEL`s remove keys (Redis's
/// `isSafeToPerformEvictions`). Only `maxmemory` is ignored: the arena's
/// own space still counts (`Tiers::refresh_pressure`), and the DRAM
/// budget's demotion, which moves values without removing any, goes on.
pub fn eviction_limit(srv: &ServerState) -> u64 {
    if srv.replication.is_replica() && srv.config.get_bool("replica-ignore-maxmemory") {
        return 0;
    }
    srv.config.get_i64("maxmemory").max(0) as u64
}

/// Recomputes whether memory is full; returns it.
pub fn refresh(srv: &ServerState) -> bool {
    let limit = eviction_limit(srv);
    // Reading the heap costs a jemalloc epoch; without a limit only the
    // arena's free space matters.
    let heap = if limit > 0 { heap_in_use() } else { 0 };
    srv.keyspace.tiers.refresh_pressure(limit, heap)
}

/// The configured `maxmemory-policy`.
pub fn policy(srv: &ServerState) -> EvictionPolicy {
    srv.config
        .get("maxmemory-policy")
        .and_then(|p| p.parse().ok())
        .unwrap_or(EvictionPolicy::NoEviction)
}

/// Evicts a few keys under `maxmemory-policy`; false when none went (the
/// policy is `noeviction`, or no candidate was found).
pub fn evict_some(srv: &ServerState) -> bool {
    let policy = policy(srv);
    if policy == EvictionPolicy::NoEviction {
        return false;
    }
    // The evicted keys' DELs must not overtake a write still on its way
    // to the replicas (`replication::order`).
    srv.master
        .evict_in_order(|| srv.keyspace.evict(policy, EVICT_BATCH))
        > 0
}

/// Evicts while memory is full, for at most `budget` (Redis's eviction
/// time proc, which runs while a write-free server is over its limit).
/// Stops early when nothing is left to evict.
pub fn evict_while_full(srv: &ServerState, budget: Duration) {
    if policy(srv) == EvictionPolicy::NoEviction {
        return;
    }
    let start = Instant::now();
    let mut misses = 0;
    while refresh(srv) && start.elapsed() < budget {
        if evict_some(srv) {
            misses = 0;
            continue;
        }
        // The evictor samples random shards: a miss on a nearly empty
        // keyspace is no proof it is empty, so try again a few times, but
        // not for the whole budget when no key qualifies (a `volatile-*`
        // policy and no key with a TTL).
        misses += 1;
        if misses == 1 && (0..amber_storage::DB_COUNT).all(|db| srv.keyspace.dbsize(db) == 0) {
            return;
        }
        if misses > MAX_MISSES {
            return;
        }
    }
}
