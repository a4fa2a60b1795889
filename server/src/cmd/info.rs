//! INFO: Redis 7.0's sections and field names, plus Amber's `tiering` section.
//!
//! Field names and formats follow Redis 7.0.15 (`redis_version:7.0.15` so
//! clients enable 7.0 features; `amber_version:` says what really answers).
//! Figures Amber does not have (forks, AOF, replication) read as Redis reads
//! when idle. The reply is a verbatim string in RESP3, as in Redis.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::connection::REDIS_VERSION;
use super::error::CmdResult;
use super::object::{memory_figures, MemoryFigures};
use super::{Ctx, Handler};
use crate::state::ServerState;

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[("info", info)];

/// Figures of the `tiering` section.
#[derive(Debug, Default, Clone)]
pub struct TieringStats {
    /// Keys whose value is in DRAM.
    pub hot_keys: u64,
    /// Keys whose value is in the arena.
    pub cold_keys: u64,
    /// DRAM used by the hot tier.
    pub dram_bytes: u64,
    /// `dram-budget`.
    pub dram_budget: u64,
    /// Live and dead record bytes in the arena.
    pub arena_bytes_used: u64,
    /// Arena bytes not yet used.
    pub arena_bytes_free: u64,
    /// Free arena bytes the file system under the arena has no space for
    /// (not counted in `arena_bytes_free`).
    pub arena_bytes_unbacked: u64,
    /// Bytes of overwritten or deleted records awaiting compaction.
    pub arena_bytes_dead: u64,
    /// Values moved from DRAM to the arena.
    pub demotions: u64,
    /// Values moved from the arena back to DRAM.
    pub promotions: u64,
    /// Segments compacted.
    pub compactions: u64,
    /// Records written to the arena.
    pub arena_writes: u64,
    /// Of those, delta records (element changes of a large collection).
    pub arena_delta_writes: u64,
    /// Persist operations (cache-line flush + fence, or msync).
    pub persist_calls: u64,
    /// How long start-up recovery took, ms.
    pub recovery_ms: u64,
}

/// The tiering engine's figures for INFO (and Prometheus).
///
/// Read from the keyspace's tier counters and the arena's statistics (the
/// arena's walk over its segment table is the only non-trivial cost), and
/// figures are zero.
pub fn tiering_stats(srv: &ServerState) -> TieringStats {
    use std::sync::atomic::Ordering::Relaxed;
    let tiers = &srv.keyspace.tiers;
    let st = &tiers.stats;
    let arena = tiers.arena.as_ref().map(|a| a.stats());
    TieringStats {
        hot_keys: st.hot_keys.load(Relaxed).max(0) as u64,
        cold_keys: st.cold_keys.load(Relaxed).max(0) as u64,
        dram_bytes: st.hot_bytes.load(Relaxed).max(0) as u64,
        dram_budget: tiers.budget.load(Relaxed),
        arena_bytes_used: arena.as_ref().map_or(0, |a| a.used_bytes),
        arena_bytes_free: arena.as_ref().map_or(0, |a| a.free_bytes),
        arena_bytes_unbacked: arena
            .as_ref()
            .map_or(0, |a| a.segments_unbacked * a.segment_size),
        arena_bytes_dead: arena.as_ref().map_or(0, |a| a.dead_bytes),
        demotions: st.demotions.load(Relaxed),
        promotions: st.promotions.load(Relaxed),
        compactions: srv.keyspace.stats.compactions.load(Relaxed),
        arena_writes: st.arena_writes.load(Relaxed),
        arena_delta_writes: st.delta_writes.load(Relaxed),
        persist_calls: arena.as_ref().map_or(0, |a| a.persist_calls),
        recovery_ms: srv.keyspace.stats.recovery_ms.load(Relaxed),
    }
}

/// The sections INFO prints with no argument (and `default`).
const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "module_list",
    "errorstats",
    "cluster",
    "keyspace",
    "tiering",
];

fn info(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let mut all = false;
    let mut wanted: Vec<String> = Vec::new();
    if args.len() == 1 {
        wanted.extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string()));
    }
    for a in args.iter().skip(1) {
        let s = String::from_utf8_lossy(a).to_ascii_lowercase();
        match s.as_str() {
            "default" => wanted.extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string())),
            "all" | "everything" => all = true,
            _ => wanted.push(s),
        }
    }
    let text = render(ctx, all, &wanted);
    ctx.out.verbatim("txt", text.as_bytes());
    Ok(())
}

/// `connected_slaves`, `min_slaves_good_slaves` (while
/// `min-replicas-to-write` is on) and one `slaveN:` line per replica,
/// attached or waiting for its full sync, with its state.
fn replicas_lines(srv: &ServerState, m: &crate::replication::MasterView) -> String {
    let now = amber_storage::clock::now_ms();
    let mut s = format!(
        "connected_slaves:{}\r\n",
        m.replicas.len() + m.waiting.len()
    );
    if let Some(good) = srv.master.min_replicas_good(srv) {
        let _ = write!(s, "min_slaves_good_slaves:{good}\r\n");
    }
    for (i, r) in m.replicas.iter().chain(&m.waiting).enumerate() {
        let lag = now.saturating_sub(r.ack_ms.load(Ordering::Relaxed)) / 1000;
        let _ = write!(
            s,
            "slave{i}:ip={},port={},state={},offset={},lag={lag}\r\n",
            r.ip,
            r.port,
            r.state().name(),
            r.ack.load(Ordering::Relaxed)
        );
    }
    s
}

/// `INFO replication`: a master and its replicas, or a replica's link
/// (the fields a Redis 7.0 replica prints).
fn replication_section(srv: &ServerState) -> String {
    let backlog = srv.config.get_u64("repl-backlog-size");
    let m = srv.master.view();
    let failover = srv.master.failover.state().name();
    let (replid2, second) = match srv.master.replid2() {
        Some((id, until)) => (id, until as i64),
        None => ("0".repeat(40), -1),
    };
    let Some(v) = srv.replication.view() else {
        return format!(
            "# Replication\r\nrole:master\r\n{}master_failover_state:{failover}\r\nmaster_replid:{}\r\nmaster_replid2:{replid2}\r\nmaster_repl_offset:{}\r\nsecond_repl_offset:{second}\r\nrepl_backlog_active:{}\r\nrepl_backlog_size:{backlog}\r\nrepl_backlog_first_byte_offset:{}\r\nrepl_backlog_histlen:{}\r\n",
            replicas_lines(srv, &m),
            srv.master.replid(srv),
            m.offset,
            u8::from(m.backlog_active),
            m.backlog_first,
            m.backlog_len,
        );
    };
    let up = v.state == crate::replica::LinkState::Connected;
    let mut s = format!(
        "# Replication\r\nrole:slave\r\nmaster_host:{}\r\nmaster_port:{}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{}\r\nslave_repl_offset:{}\r\n",
        v.host,
        v.port,
        if up { "up" } else { "down" },
        v.last_io_secs,
        u8::from(v.state == crate::replica::LinkState::Sync),
        v.read_offset,
        v.offset,
    );
    if !up {
        let _ = write!(
            s,
            "master_link_down_since_seconds:{}\r\n",
            v.down_since_secs
        );
    }
    // Amber keeps no backlog of its own; while synced, the stream it
    // applied is what a Redis replica's backlog would hold.
    let synced = v.replid.is_some();
    let _ = write!(
        s,
        "slave_priority:{}\r\nslave_read_only:{}\r\nreplica_announced:{}\r\n{}master_failover_state:{failover}\r\nmaster_replid:{}\r\nmaster_replid2:{replid2}\r\nmaster_repl_offset:{}\r\nsecond_repl_offset:{second}\r\nrepl_backlog_active:{}\r\nrepl_backlog_size:{backlog}\r\nrepl_backlog_first_byte_offset:{}\r\nrepl_backlog_histlen:{}\r\n",
        srv.config.get_i64("replica-priority"),
        u8::from(srv.config.get_bool("replica-read-only")),
        u8::from(srv.config.get_bool("replica-announced")),
        replicas_lines(srv, &m),
        v.replid.unwrap_or_else(|| srv.master.replid(srv)),
        v.offset,
        u8::from(synced),
        if synced { v.sync_offset + 1 } else { 0 },
        if synced { v.offset - v.sync_offset } else { 0 },
    );
    s
}

/// Redis's `bytesToHuman`.
pub fn human(n: u64) -> String {
    let d = n as f64;
    const K: f64 = 1024.0;
    if n < 1024 {
        format!("{n}B")
    } else if d < K * K {
        format!("{:.2}K", d / K)
    } else if d < K * K * K {
        format!("{:.2}M", d / (K * K))
    } else if d < K * K * K * K {
        format!("{:.2}G", d / (K * K * K))
    } else if d < K * K * K * K * K {
        format!("{:.2}T", d / (K * K * K * K))
    } else if d < K * K * K * K * K * K {
        format!("{:.2}P", d / (K * K * K * K * K))
    } else {
        format!("{n}B")
    }
}

fn rusage(who: i32) -> ((i64, i64), (i64, i64)) {
    // SAFETY: getrusage only writes the struct we pass, which is zeroed and
    // large enough; `who` is one of the RUSAGE_* constants.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return ((0, 0), (0, 0));
    }
    (
        (ru.ru_stime.tv_sec, ru.ru_stime.tv_usec),
        (ru.ru_utime.tv_sec, ru.ru_utime.tv_usec),
    )
}

fn uname() -> String {
    let read = |f: &str| {
        std::fs::read_to_string(format!("/proc/sys/kernel/{f}"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    format!(
        "{} {} {}",
        read("ostype"),
        read("osrelease"),
        std::env::consts::ARCH
    )
}

fn render(ctx: &Ctx<'_>, all: bool, wanted: &[String]) -> String {
    let srv = ctx.srv;
    let want = |s: &str| all || wanted.iter().any(|w| w == s);
    let mut sections: Vec<String> = Vec::new();
    let now_us = amber_storage::clock::now_us();
    let uptime = srv.started.elapsed().as_secs();
    let hz = srv.config.get_i64("hz").clamp(1, 500);
    let mem: MemoryFigures = memory_figures();
    let cfg = &srv.config;

    if want("server") {
        let mut s = String::from("# Server\r\n");
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let config_file = cfg
            .file
            .as_ref()
            .map(|p| crate::config::value::absolute(&p.display().to_string()))
            .unwrap_or_default();
        let _ = write!(
            s,
            "redis_version:{REDIS_VERSION}\r\namber_version:{}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nos:{}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{now_us}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\nhz:{hz}\r\nconfigured_hz:{}\r\nlru_clock:{}\r\nexecutable:{exe}\r\nconfig_file:{config_file}\r\nio_threads_active:0\r\n",
            env!("CARGO_PKG_VERSION"),
            uname(),
            std::process::id(),
            srv.run_id,
            srv.port.load(Ordering::Relaxed),
            uptime / 86400,
            cfg.get_i64("hz"),
            (now_us / 1_000_000) & ((1 << 24) - 1),
        );
        sections.push(s);
    }
    if want("clients") {
        let _ = &ctx.client;
        sections.push(format!(
            "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:{}\r\ntracking_clients:{}\r\nclients_in_timeout_table:0\r\n",
            srv.clients.len(),
            cfg.get_u64("maxclients"),
            srv.blocking.blocked_clients() + srv.pause.postponed_clients(),
            srv.tracking.clients(),
        ));
    }
    if want("memory") {
        let maxmemory = cfg.get_u64("maxmemory");
        let scripts = srv.scripting.memory();
        let total_system = crate::cmd::object::proc_meminfo_total();
        let frag = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        sections.push(format!(
            "# Memory\r\nused_memory:{u}\r\nused_memory_human:{uh}\r\nused_memory_rss:{r}\r\nused_memory_rss_human:{rh}\r\nused_memory_peak:{u}\r\nused_memory_peak_human:{uh}\r\nused_memory_peak_perc:100.00%\r\nused_memory_overhead:0\r\nused_memory_startup:0\r\nused_memory_dataset:{u}\r\nused_memory_dataset_perc:100.00%\r\nallocator_allocated:{u}\r\nallocator_active:{a}\r\nallocator_resident:{res}\r\ntotal_system_memory:{ts}\r\ntotal_system_memory_human:{tsh}\r\nused_memory_lua:{lua}\r\nused_memory_vm_eval:{lua}\r\nused_memory_lua_human:{luah}\r\nused_memory_scripts_eval:{sb}\r\nnumber_of_cached_scripts:{ns}\r\nnumber_of_functions:{nf}\r\nnumber_of_libraries:{nl}\r\nused_memory_vm_functions:0\r\nused_memory_vm_total:{lua}\r\nused_memory_vm_total_human:{luah}\r\nused_memory_functions:0\r\nused_memory_scripts:{sb}\r\nused_memory_scripts_human:{sbh}\r\nmaxmemory:{mm}\r\nmaxmemory_human:{mmh}\r\nmaxmemory_policy:{pol}\r\nallocator_frag_ratio:{af:.2}\r\nallocator_frag_bytes:{afb}\r\nallocator_rss_ratio:{ar:.2}\r\nallocator_rss_bytes:{arb}\r\nrss_overhead_ratio:{ro:.2}\r\nrss_overhead_bytes:{rob}\r\nmem_fragmentation_ratio:{mf:.2}\r\nmem_fragmentation_bytes:{mfb}\r\nmem_not_counted_for_evict:0\r\nmem_replication_backlog:0\r\nmem_total_replication_buffers:0\r\nmem_clients_slaves:0\r\nmem_clients_normal:0\r\nmem_cluster_links:0\r\nmem_aof_buffer:0\r\nmem_allocator:jemalloc-5.3.0\r\nactive_defrag_running:0\r\nlazyfree_pending_objects:{lfp}\r\nlazyfreed_objects:{lff}\r\n",
            u = mem.allocated,
            uh = human(mem.allocated),
            lua = scripts.lua_bytes,
            luah = human(scripts.lua_bytes),
            sb = scripts.script_bytes,
            sbh = human(scripts.script_bytes),
            ns = scripts.cached_scripts,
            nf = srv.scripting.functions.function_count(),
            nl = srv.scripting.functions.library_count(),
            lfp = srv.lazyfree.pending(),
            lff = srv.lazyfree.freed(),
            r = mem.rss,
            rh = human(mem.rss),
            a = mem.active,
            res = mem.resident,
            ts = total_system,
            tsh = human(total_system),
            mm = maxmemory,
            mmh = human(maxmemory),
            pol = cfg.get("maxmemory-policy").unwrap_or_default(),
            af = frag(mem.active, mem.allocated),
            afb = mem.active as i64 - mem.allocated as i64,
            ar = frag(mem.resident, mem.active),
            arb = mem.resident as i64 - mem.active as i64,
            ro = frag(mem.rss, mem.resident),
            rob = mem.rss as i64 - mem.resident as i64,
            mf = frag(mem.rss, mem.allocated),
            mfb = mem.rss as i64 - mem.allocated as i64,
        ));
    }
    if want("persistence") {
        let rdb = &srv.rdb;
        sections.push(format!(
            "# Persistence\r\nloading:0\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:0.00\r\ncurrent_save_keys_processed:0\r\ncurrent_save_keys_total:0\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{}\r\nrdb_saves:{}\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\naof_enabled:{}\r\naof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0\r\naof_last_rewrite_time_sec:-1\r\naof_current_rewrite_time_sec:-1\r\naof_last_bgrewrite_status:ok\r\naof_rewrites:0\r\naof_rewrites_consecutive_failures:0\r\naof_last_write_status:ok\r\naof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n",
            srv.changes_since_save(),
            u8::from(rdb.child_running()),
            srv.last_save.load(Ordering::Relaxed),
            if rdb.last_bgsave_ok.load(Ordering::Relaxed) { "ok" } else { "err" },
            rdb.last_bgsave_secs.load(Ordering::Relaxed),
            match rdb.bgsave_started.load(Ordering::Relaxed) {
                0 => -1,
                t => (amber_storage::clock::now_ms() / 1000).saturating_sub(t) as i64,
            },
            srv.stats.saves.load(Ordering::Relaxed),
            rdb.keys_expired.load(Ordering::Relaxed),
            rdb.keys_loaded.load(Ordering::Relaxed),
            u8::from(cfg.get_bool("appendonly")),
        ));
    }
    if want("stats") {
        let st = &srv.stats;
        let total_errors = st.total_errors.load(Ordering::Relaxed);
        let pubsub_channels = srv.pubsub.len(crate::pubsub::Kind::Channel);
        let pubsub_patterns = srv.pubsub.len(crate::pubsub::Kind::Pattern);
        let pubsub_shard = srv.pubsub.len(crate::pubsub::Kind::Shard);
        let migrate_sockets = srv.migrate_sockets.len();
        let (tracking_keys, tracking_items, tracking_prefixes) = srv.tracking.totals();
        let replica_expires = srv.replica_expires.len();
        sections.push(format!(
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:0\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ntotal_net_repl_input_bytes:0\r\ntotal_net_repl_output_bytes:{}\r\ninstantaneous_input_kbps:0.00\r\ninstantaneous_output_kbps:0.00\r\ninstantaneous_input_repl_kbps:0.00\r\ninstantaneous_output_repl_kbps:0.00\r\nrejected_connections:{}\r\nsync_full:{}\r\nsync_partial_ok:{}\r\nsync_partial_err:{}\r\nexpired_keys:{}\r\nexpired_stale_perc:0.00\r\nexpired_time_cap_reached_count:0\r\nexpire_cycle_cpu_milliseconds:0\r\nevicted_keys:{}\r\nevicted_clients:0\r\ntotal_eviction_exceeded_time:0\r\ncurrent_eviction_exceeded_time:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{pubsub_channels}\r\npubsub_patterns:{pubsub_patterns}\r\npubsubshard_channels:{pubsub_shard}\r\nlatest_fork_usec:0\r\ntotal_forks:0\r\nmigrate_cached_sockets:{migrate_sockets}\r\nslave_expires_tracked_keys:{replica_expires}\r\nactive_defrag_hits:0\r\nactive_defrag_misses:0\r\nactive_defrag_key_hits:0\r\nactive_defrag_key_misses:0\r\ntotal_active_defrag_time:0\r\ncurrent_active_defrag_time:0\r\ntracking_total_keys:{tracking_keys}\r\ntracking_total_items:{tracking_items}\r\ntracking_total_prefixes:{tracking_prefixes}\r\nunexpected_error_replies:0\r\ntotal_error_replies:{total_errors}\r\ndump_payload_sanitizations:0\r\ntotal_reads_processed:0\r\ntotal_writes_processed:0\r\nio_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\nreply_buffer_shrinks:0\r\nreply_buffer_expands:0\r\nconnection_moves:{}\r\n",
            st.connections.load(Ordering::Relaxed),
            st.commands.get(),
            st.net_input_bytes.get(),
            st.net_output_bytes.get(),
            srv.master.output_bytes.load(Ordering::Relaxed),
            st.rejected_connections.load(Ordering::Relaxed),
            srv.master.sync_full.load(Ordering::Relaxed),
            srv.master.sync_partial_ok.load(Ordering::Relaxed),
            srv.master.sync_partial_err.load(Ordering::Relaxed),
            srv.keyspace.stats.expired_keys.load(Ordering::Relaxed),
            srv.keyspace.tiers.stats.evicted_keys.load(Ordering::Relaxed),
            st.keyspace_hits.get(),
            st.keyspace_misses.get(),
            st.connection_moves.load(Ordering::Relaxed),
        ));
    }
    if want("replication") {
        sections.push(replication_section(srv));
    }
    if want("cpu") {
        let ((ss, sus), (us, uus)) = rusage(libc::RUSAGE_SELF);
        let ((cs, cus), (cu, cuu)) = rusage(libc::RUSAGE_CHILDREN);
        let ((ts, tus), (tu, tuu)) = rusage(libc::RUSAGE_THREAD);
        sections.push(format!(
            "# CPU\r\nused_cpu_sys:{ss}.{sus:06}\r\nused_cpu_user:{us}.{uus:06}\r\nused_cpu_sys_children:{cs}.{cus:06}\r\nused_cpu_user_children:{cu}.{cuu:06}\r\nused_cpu_sys_main_thread:{ts}.{tus:06}\r\nused_cpu_user_main_thread:{tu}.{tuu:06}\r\n"
        ));
    }
    if want("module_list") || want("modules") {
        sections.push("# Modules\r\n".into());
    }
    if want("commandstats") {
        let mut s = String::from("# Commandstats\r\n");
        {
            for d in srv.commands.all_with_subcommands() {
                let calls = d.stats.calls();
                let usec = d.stats.usec();
                let rejected = d.stats.rejected();
                let failed = d.stats.failed();
                if calls == 0 && rejected == 0 && failed == 0 {
                    continue;
                }
                let per = if calls == 0 {
                    0.0
                } else {
                    usec as f32 / calls as f32
                };
                let _ = write!(
                    s,
                    "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per:.2},rejected_calls={rejected},failed_calls={failed}\r\n",
                    d.name
                );
            }
        }
        sections.push(s);
    }
    if want("errorstats") {
        let mut s = String::from("# Errorstats\r\n");
        let mut errors: Vec<(String, u64)> = srv
            .stats
            .errors
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        errors.sort();
        for (code, n) in errors {
            let safe: String = code
                .chars()
                .map(|c| {
                    if c == ':' || c == '\r' || c == '\n' {
                        '_'
                    } else {
                        c
                    }
                })
                .collect();
            let _ = write!(s, "errorstat_{safe}:count={n}\r\n");
        }
        sections.push(s);
    }
    if want("latencystats") {
        sections.push(latencystats(srv));
    }
    if want("cluster") {
        sections.push("# Cluster\r\ncluster_enabled:0\r\n".into());
    }
    if want("keyspace") {
        let mut s = String::from("# Keyspace\r\n");
        for db in 0..amber_storage::DB_COUNT {
            let i = srv.keyspace.db_info(db);
            if i.keys > 0 || i.expires > 0 {
                let _ = write!(
                    s,
                    "db{db}:keys={},expires={},avg_ttl={}\r\n",
                    i.keys, i.expires, i.avg_ttl
                );
            }
        }
        sections.push(s);
    }
    if want("tiering") {
        let t = tiering_stats(srv);
        let keys = t.hot_keys + t.cold_keys;
        let per_key = if keys == 0 {
            0.0
        } else {
            t.dram_bytes as f64 / keys as f64
        };
        sections.push(format!(
            "# Tiering\r\nhot_keys:{}\r\ncold_keys:{}\r\ndram_bytes:{}\r\ndram_budget:{}\r\narena_bytes_used:{}\r\narena_bytes_free:{}\r\narena_bytes_unbacked:{}\r\narena_bytes_dead:{}\r\ndemotions:{}\r\npromotions:{}\r\ncompactions:{}\r\narena_writes:{}\r\narena_delta_writes:{}\r\npersist_calls:{}\r\npersistence:{}\r\narena_sync:{}\r\nrecovery_ms:{}\r\ndram_bytes_per_key:{per_key:.2}\r\n",
            t.hot_keys,
            t.cold_keys,
            t.dram_bytes,
            t.dram_budget,
            t.arena_bytes_used,
            t.arena_bytes_free,
            t.arena_bytes_unbacked,
            t.arena_bytes_dead,
            t.demotions,
            t.promotions,
            t.compactions,
            t.arena_writes,
            t.arena_delta_writes,
            t.persist_calls,
            cfg.get("persistence").unwrap_or_default(),
            cfg.get("arena-sync").unwrap_or_default(),
            t.recovery_ms,
        ));
    }
    sections.join("\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_like_redis() {
        assert_eq!(human(0), "0B");
        assert_eq!(human(1023), "1023B");
        assert_eq!(human(940920), "918.87K");
        assert_eq!(human(12480512), "11.90M");
        assert_eq!(human(25276510208), "23.54G");
    }
}

/// `INFO latencystats`: each command's latency percentiles
/// (`latency-tracking-info-percentiles`), as Redis 7.0 prints them (see
/// `cmd::histogram` for their resolution).
fn latencystats(srv: &ServerState) -> String {
    let mut s = String::from("# Latencystats\r\n");
    let percentiles: Vec<f64> = srv
        .config
        .get("latency-tracking-info-percentiles")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    for d in srv.commands.all_with_subcommands() {
        let Some(values) = d.stats.latency.percentiles(&percentiles) else {
            continue;
        };
        let fields: Vec<String> = percentiles
            .iter()
            .zip(values)
            .map(|(p, v)| format!("p{p}={v:.3}"))
            .collect();
        let _ = write!(
            s,
            "latency_percentiles_usec_{}:{}\r\n",
            d.name,
            fields.join(",")
        );
    }
    s
}
