//! Periodic background work: active expiry (Redis's `serverCron`, `hz` times
//! a second), demotion of hot entries while DRAM is over budget, and
//! compaction of mostly-dead arena segments.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::state::ServerState;

/// Keys removed per active-expiry pass at most, so one pass stays short.
const EXPIRE_BUDGET: usize = 2000;

/// Entries demoted per demoter pass at most (one pass holds each shard's
/// lock only for a few entries).
const DEMOTE_BATCH: usize = 4096;

/// The longest eviction pass of the tiering task (every 10 ms while
/// memory is full under an evicting policy).
const EVICT_BUDGET: Duration = Duration::from_millis(2);

/// Seconds between two background saves after a failed one (Redis's
/// `CONFIG_BGSAVE_RETRY_DELAY`).
const BGSAVE_RETRY_DELAY: u64 = 5;

/// Runs until the task is aborted at shutdown.
pub async fn run(srv: Arc<ServerState>) {
    tokio::spawn(tiering(srv.clone()));
    let mut last_ping = amber_storage::clock::now_ms();
    let mut last_bgsave_try = 0u64;
    loop {
        let hz = srv.config.get_i64("hz").clamp(1, 500) as u64;
        tokio::time::sleep(Duration::from_millis(1000 / hz)).await;
        srv.refresh_wall_clock();
        srv.master.failover.tick(&srv);
        // Streams expired or evicted by the background cycles unblock
        // their XREADGROUP clients (commands' own changes are looked at
        // after each command).
        srv.blocking.unblock_lost_streams(&srv);
        // The tracking table shrinks to `tracking-table-max-keys` even when
        // no command comes after a `CONFIG SET` lowered it (Redis's
        // `serverCron` does the same; commands do it before they run).
        if srv.tracking.active() {
            srv.tracking.limit(&srv);
        }
        let now_ms = amber_storage::clock::now_ms();
        // Replicas hear from their master every `repl-ping-replica-period`.
        let period = srv.config.get_u64("repl-ping-replica-period").max(1) * 1000;
        if now_ms.saturating_sub(last_ping) >= period {
            last_ping = now_ms;
            srv.master.ping(&srv);
            srv.master
                .expire_backlog(srv.config.get_u64("repl-backlog-ttl"));
        }
        // The `save` points: a background save once enough changes are
        // old enough (not while one runs; 5 s apart after a failure).
        let now = now_ms / 1000;
        let changes = srv.changes_since_save();
        // Not while a script runs past `busy-reply-threshold`: the save
        // cannot take the keyspace gate from it, and Redis's cron does not
        // run under a script either (it tried, and logged, every tick).
        let idle = !srv.rdb.bgsave_in_progress.load(Ordering::Relaxed)
            && crate::cmd::scripting::busy::long_running(&srv).is_none();
        if idle
            && srv.rdb.bgsave_scheduled.load(Ordering::Relaxed)
            && !srv.keyspace.snapshot_running()
        {
            // A scheduled BGSAVE (Redis's `rdb_bgsave_scheduled`). Taking
            // the gate blocks: off the async workers.
            let s = srv.clone();
            let _ = tokio::task::spawn_blocking(move || {
                crate::cmd::admin::start_bgsave(&s, true, false)
            })
            .await;
        } else if changes > 0 && idle {
            let since = now.saturating_sub(srv.last_save.load(Ordering::Relaxed));
            let retry_ok = srv.rdb.last_bgsave_ok.load(Ordering::Relaxed)
                || now.saturating_sub(last_bgsave_try) > BGSAVE_RETRY_DELAY;
            let save = srv.config.get("save").unwrap_or_default();
            if retry_ok && crate::snapshot::save_point_due(&save, changes, since) {
                tracing::info!(changes, seconds = since, "changes in seconds. Saving...");
                last_bgsave_try = now;
                let s = srv.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    crate::cmd::admin::start_bgsave(&s, false, false)
                })
                .await;
            }
        }
        // A writable replica expires the keys its own clients gave a
        // deadline (Redis's `expireSlaveKeys`): the master sends no DEL
        // for keys it never had.
        if srv.active_expire.load(Ordering::Relaxed)
            && srv.replication.is_replica()
            && !srv.replica_expires.is_empty()
        {
            let srv = srv.clone();
            let _ = tokio::task::spawn_blocking(move || srv.replica_expires.expire(&srv)).await;
        }
        // As in Redis, a `CLIENT PAUSE` stops active expiry: nothing is
        // deleted behind the paused clients' backs. A replica waits for its
        // master's DELs instead of expiring keys itself.
        if srv.active_expire.load(Ordering::Relaxed)
            && !srv.pause.is_paused()
            && !srv.replication.is_replica()
        {
            let srv = srv.clone();
            // Shard locks are sync; keep them off the async workers' hot loop.
            let _ = tokio::task::spawn_blocking(move || {
                // The latency monitor's `expire-cycle` event (Redis's
                // `activeExpireCycle`): the whole cycle, in ms.
                let started = std::time::Instant::now();
                loop {
                    // With replicas attached, an expired key's DEL must not
                    // overtake a write command whose effects are not in the
                    // stream yet: a SWAPDB that moved the key, then its DEL
                    // in the new database reached the replica before the
                    // SWAPDB and deleted the wrong key there. Write commands
                    // hold this lock until their effects are in the stream
                    // (`Master::order`); a cycle takes it as they do, before
                    // any shard lock, one budget at a time.
                    let _order = srv.master.active().then(|| srv.master.order());
                    if srv.keyspace.expire_cycle(EXPIRE_BUDGET) < EXPIRE_BUDGET {
                        break;
                    }
                }
                let elapsed_ms = started.elapsed().as_millis() as u64;
                srv.latency
                    .sample_if_needed(&srv, "expire-cycle", elapsed_ms);
                // BCAST invalidations of the keys that expired.
                if srv.tracking.active() {
                    srv.tracking.broadcast(&srv, None);
                }
            })
            .await;
        }
    }
}

/// The demoter and the compactor: demote whenever DRAM is over budget (checked
/// every 10 ms), compact segments more than half dead (every 100 ms, or
/// every 10 ms while less than a quarter of the arena is free).
async fn tiering(srv: Arc<ServerState>) {
    let mut tick = 0u64;
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        tick += 1;
        // `CONFIG SET dram-budget` takes effect here.
        let budget = srv.config.get_i64("dram-budget").max(0) as u64;
        srv.keyspace
            .tiers
            .budget
            .store(budget, std::sync::atomic::Ordering::Relaxed);
        // `CONFIG SET tiering-policy` too.
        let lfu = srv.config.get("tiering-policy").as_deref() == Some("lfu");
        srv.keyspace
            .tiers
            .lfu
            .store(lfu, std::sync::atomic::Ordering::Relaxed);
        // `maxmemory`: full memory refuses writes or, under an evicting
        // policy, evicts here too (as Redis's eviction timer does).
        let evict = crate::maxmemory::refresh(&srv)
            && crate::maxmemory::policy(&srv) != amber_storage::EvictionPolicy::NoEviction;
        let over = srv.keyspace.tiers.over_budget() > 0;
        // Under space pressure (less than a quarter of the arena free) the
        // compactor runs every tick instead of every tenth, so rewrites of
        // big values do not fill the arena with dead versions faster than
        // it reclaims them.
        let low_space = srv.keyspace.tiers.arena.as_ref().is_some_and(|a| {
            let st = a.stats();
            st.free_bytes < st.size / 4 && st.dead_bytes > 0
        });
        let compact = tick.is_multiple_of(10) || low_space;
        if !over && !compact && !evict {
            continue;
        }
        let srv = srv.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if evict {
                crate::maxmemory::evict_while_full(&srv, EVICT_BUDGET);
            }
            let ks = &srv.keyspace;
            while ks.tiers.over_budget() > 0 && ks.demote_step(DEMOTE_BATCH) > 0 {}
            if compact {
                ks.compact_step(0.5, 2);
            }
        })
        .await;
    }
}
