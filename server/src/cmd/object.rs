//! OBJECT and MEMORY: introspection of single keys and of the server's memory.
//!
//! Amber extension: `OBJECT TIER key` answers `hot` (DRAM) or `cold`
//! (arena), registered through [`extensions`].

use amber_storage::Value;

use super::admin::reply_help;
use super::args::{is, parse_i64};
use super::error::{CmdError, CmdResult};
use super::table::{Extension, Flags};
use super::{Ctx, Handler};
use crate::resp::Protocol;

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("object|encoding", object_encoding),
    ("object|freq", object_freq),
    ("object|idletime", object_idletime),
    ("object|refcount", object_refcount),
    ("object|help", object_help),
    ("memory|usage", memory_usage),
    ("memory|doctor", memory_doctor),
    ("memory|stats", memory_stats),
    ("memory|malloc-stats", memory_malloc_stats),
    ("memory|purge", memory_purge),
    ("memory|help", memory_help),
];

/// Amber's own OBJECT subcommand, for `cmd::all_extensions()`.
pub fn extensions() -> Vec<(Extension, Handler)> {
    vec![(
        Extension {
            name: "object|tier",
            arity: 3,
            flags: Flags::READONLY,
            summary: "Returns the tier holding a key's value: hot (DRAM) or cold (arena).",
        },
        object_tier as Handler,
    )]
}

/// Redis's `OBJ_SHARED_REFCOUNT`: shared integers report this refcount.
const SHARED_REFCOUNT: i64 = i32::MAX as i64;
/// Redis's `LFU_INIT_VAL`: the counter of a new key under an LFU policy.
const LFU_INIT_VAL: u8 = 5;

fn lfu_policy(ctx: &Ctx<'_>) -> bool {
    ctx.srv
        .config
        .get("maxmemory-policy")
        .is_some_and(|p| p.ends_with("lfu"))
}

/// Facts about a key's value, read under its shard lock.
struct Facts {
    encoding: &'static str,
    shared_int: bool,
    mem: usize,
    len: usize,
}

/// Looks a key up without touching it; None writes the null reply.
fn facts(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<(Facts, u32)>, CmdError> {
    let mut g = ctx.lock_one(key)?;
    let Some(v) = g.peek(key) else {
        return Ok(None);
    };
    let f = match v {
        Value::Str(s) => Facts {
            encoding: v.encoding(),
            shared_int: v.encoding() == "int"
                && parse_i64(&s.bytes).is_some_and(|n| (0..10_000).contains(&n)),
            mem: v.mem_usage(),
            len: s.bytes.len(),
        },
        #[allow(unreachable_patterns)]
        other => Facts {
            encoding: other.encoding(),
            shared_int: false,
            mem: other.mem_usage(),
            len: 0,
        },
    };
    let idle = g.idle_secs(key).unwrap_or(0);
    Ok(Some((f, idle)))
}

fn key_arg<'a>(args: &[&'a [u8]]) -> &'a [u8] {
    args.get(2).copied().unwrap_or_default()
}

fn object_encoding(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    match facts(ctx, key_arg(args))? {
        Some((f, _)) => ctx.out.bulk(f.encoding.as_bytes()),
        None => ctx.out.null(),
    }
    Ok(())
}

fn object_refcount(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let policy = ctx.srv.config.get("maxmemory-policy").unwrap_or_default();
    let no_shared = ctx.srv.config.get_u64("maxmemory") != 0
        && (policy.ends_with("lru") || policy.ends_with("lfu"));
    match facts(ctx, key_arg(args))? {
        Some((f, _)) => ctx.out.int(if f.shared_int && !no_shared {
            SHARED_REFCOUNT
        } else {
            1
        }),
        None => ctx.out.null(),
    }
    Ok(())
}

fn object_idletime(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let Some((_, idle)) = facts(ctx, key_arg(args))? else {
        ctx.out.null();
        return Ok(());
    };
    if lfu_policy(ctx) {
        return Err(CmdError::err("An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
    }
    ctx.out.int(idle as i64);
    Ok(())
}

fn object_freq(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    if facts(ctx, key_arg(args))?.is_none() {
        ctx.out.null();
        return Ok(());
    }
    if !lfu_policy(ctx) {
        return Err(CmdError::err("An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
    }
    let key = key_arg(args);
    let (counter, idle) = ctx.lock_one(key)?.lfu(key).unwrap_or((LFU_INIT_VAL, 0));
    let decay = ctx.srv.config.get_u64("lfu-decay-time");
    ctx.out.int(lfu_decayed(counter, idle, decay) as i64);
    Ok(())
}

/// Redis's `LFUDecrAndReturn`: the counter less one per `decay_minutes`
/// elapsed since the key's last access (no decay when `decay_minutes` is
/// 0), never below 0.
fn lfu_decayed(counter: u8, idle_secs: u32, decay_minutes: u64) -> u8 {
    let periods = (idle_secs as u64 / 60)
        .checked_div(decay_minutes)
        .unwrap_or(0);
    counter.saturating_sub(periods.min(255) as u8)
}

/// `OBJECT TIER key`: `hot` when the value is in DRAM, `cold` when it lives
/// only in the arena, nil for a missing key. Asking does not promote the key.
fn object_tier(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = key_arg(args);
    let tier = ctx.lock_one(key)?.is_hot(key);
    match tier {
        None => ctx.out.null(),
        Some(true) => ctx.out.bulk(b"hot"),
        Some(false) => ctx.out.bulk(b"cold"),
    }
    Ok(())
}

fn object_help(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    reply_help(
        ctx,
        args,
        &[
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    );
    Ok(())
}

/// Bytes Redis's allocator would hand out for a request of `n` bytes
/// (jemalloc's small size classes), so MEMORY USAGE figures look like Redis's.
fn jemalloc_size(n: usize) -> usize {
    const CLASSES: &[usize] = &[
        8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512,
        640, 768, 896, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096,
    ];
    CLASSES
        .iter()
        .copied()
        .find(|&c| c >= n)
        .unwrap_or_else(|| n.div_ceil(4096) * 4096)
}

fn memory_usage(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let mut j = 3;
    while j < args.len() {
        let opt = args.get(j).copied().unwrap_or_default();
        if is(opt, "samples") && j + 1 < args.len() {
            let n = super::args::int(args.get(j + 1).copied().unwrap_or_default())?;
            if n < 0 {
                return Err(CmdError::Syntax);
            }
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let key = key_arg(args);
    match facts(ctx, key)? {
        Some((f, _)) => {
            // Redis: the value object (+ its string), the key's sds, the dict entry.
            let value = match f.encoding {
                "int" => 16,
                "embstr" => jemalloc_size(16 + 3 + f.len + 1),
                "raw" => 16 + jemalloc_size(f.len + 9),
                _ => f.mem,
            };
            let key_sds = jemalloc_size(key.len() + 4);
            ctx.out.int((value + key_sds + 24) as i64);
        }
        None => ctx.out.null(),
    }
    Ok(())
}

/// Process-wide memory figures.
pub struct MemoryFigures {
    /// Bytes allocated by the application (jemalloc `stats.allocated`).
    pub allocated: u64,
    /// Bytes in active pages (jemalloc `stats.active`).
    pub active: u64,
    /// Bytes resident in the allocator (jemalloc `stats.resident`).
    pub resident: u64,
    /// Resident set size of the process (`VmRSS`).
    pub rss: u64,
}

/// Reads jemalloc's statistics and the process's RSS.
pub fn memory_figures() -> MemoryFigures {
    use tikv_jemalloc_ctl::{epoch, stats};
    let _ = epoch::advance();
    let allocated = stats::allocated::read().unwrap_or(0) as u64;
    let active = stats::active::read().unwrap_or(0) as u64;
    let resident = stats::resident::read().unwrap_or(0) as u64;
    MemoryFigures {
        allocated,
        active,
        resident,
        rss: proc_status_kb("VmRSS:") * 1024,
    }
}

/// A `kB` field of /proc/self/status (0 when unavailable).
pub fn proc_status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn memory_doctor(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let m = memory_figures();
    let report = if m.allocated < 5 * 1024 * 1024 {
        "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n"
    } else {
        "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n"
    };
    ctx.out.verbatim("txt", report.as_bytes());
    Ok(())
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn memory_stats(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let m = memory_figures();
    let dbs: Vec<(usize, usize)> = (0..amber_storage::DB_COUNT)
        .map(|db| (db, ctx.srv.keyspace.dbsize(db)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let keys: usize = dbs.iter().map(|(_, n)| n).sum();
    let out = &mut *ctx.out;
    out.map(27 + dbs.len());
    let pairs_head: [(&str, u64); 10] = [
        ("peak.allocated", m.allocated),
        ("total.allocated", m.allocated),
        ("startup.allocated", 0),
        ("replication.backlog", 0),
        ("clients.slaves", 0),
        ("clients.normal", 0),
        ("cluster.links", 0),
        ("aof.buffer", 0),
        ("lua.caches", 0),
        ("functions.caches", 0),
    ];
    for (k, v) in pairs_head {
        out.bulk(k.as_bytes());
        out.int(v as i64);
    }
    for (db, _) in &dbs {
        out.bulk(format!("db.{db}").as_bytes());
        out.map(3);
        for k in [
            "overhead.hashtable.main",
            "overhead.hashtable.expires",
            "overhead.hashtable.slot-to-keys",
        ] {
            out.bulk(k.as_bytes());
            out.int(0);
        }
    }
    let per_key = if keys == 0 {
        0
    } else {
        m.allocated / keys as u64
    };
    out.bulk(b"overhead.total");
    out.int(0);
    out.bulk(b"keys.count");
    out.int(keys as i64);
    out.bulk(b"keys.bytes-per-key");
    out.int(per_key as i64);
    out.bulk(b"dataset.bytes");
    out.int(m.allocated as i64);
    out.bulk(b"dataset.percentage");
    out.double(100.0);
    out.bulk(b"peak.percentage");
    out.double(100.0);
    out.bulk(b"allocator.allocated");
    out.int(m.allocated as i64);
    out.bulk(b"allocator.active");
    out.int(m.active as i64);
    out.bulk(b"allocator.resident");
    out.int(m.resident as i64);
    out.bulk(b"allocator-fragmentation.ratio");
    out.double(ratio(m.active, m.allocated));
    out.bulk(b"allocator-fragmentation.bytes");
    out.int(m.active as i64 - m.allocated as i64);
    out.bulk(b"allocator-rss.ratio");
    out.double(ratio(m.resident, m.active));
    out.bulk(b"allocator-rss.bytes");
    out.int(m.resident as i64 - m.active as i64);
    out.bulk(b"rss-overhead.ratio");
    out.double(ratio(m.rss, m.resident));
    out.bulk(b"rss-overhead.bytes");
    out.int(m.rss as i64 - m.resident as i64);
    out.bulk(b"fragmentation");
    out.double(ratio(m.rss, m.allocated));
    out.bulk(b"fragmentation.bytes");
    out.int(m.rss as i64 - m.allocated as i64);
    Ok(())
}

fn memory_malloc_stats(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let m = memory_figures();
    let text = format!(
        "___ Begin jemalloc statistics ___\nAllocated: {}, active: {}, resident: {}\n--- End jemalloc statistics ---\n",
        m.allocated, m.active, m.resident
    );
    if ctx.out.proto == Protocol::Resp3 {
        ctx.out.verbatim("txt", text.as_bytes());
    } else {
        ctx.out.bulk(text.as_bytes());
    }
    Ok(())
}

fn memory_purge(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    ctx.out.ok();
    Ok(())
}

fn memory_help(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    reply_help(
        ctx,
        args,
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    );
    Ok(())
}

/// Total system memory from /proc/meminfo (`total_system_memory`), bytes.
pub fn proc_meminfo_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

#[cfg(test)]
mod tests {
    use super::lfu_decayed;

    #[test]
    fn lfu_counter_decays_one_per_period() {
        assert_eq!(lfu_decayed(100, 59, 1), 100);
        assert_eq!(lfu_decayed(100, 60 * 7, 1), 93);
        assert_eq!(lfu_decayed(100, 60 * 7, 2), 97);
        assert_eq!(lfu_decayed(3, 60 * 1000, 1), 0);
        // lfu-decay-time 0: never decays.
        assert_eq!(lfu_decayed(100, u32::MAX, 0), 100);
    }
}
