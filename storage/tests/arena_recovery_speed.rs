//! Recovery speed. Ignored by default (it writes ~1 GB); run with
//!
//! ```text
//! cargo test --release -p amber-storage --test arena_recovery_speed -- --ignored --nocapture
//! ```
//!
//! `AMBER_RECOVERY_KEYS` (default 10,000,000) and `AMBER_RECOVERY_VALUE`
//! (value bytes, default 16) change the data set. The arena lives on
//! /dev/shm when it exists.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use amber_storage::arena::{ArenaConfig, ArenaSync, Persistence};
use amber_storage::{Arena, RecordIn};

/// CPU seconds (user + system) this process used so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
#[ignore = "writes ~1 GB; run in release with --ignored"]
fn recover_ten_million_small_records() {
    let keys = env("AMBER_RECOVERY_KEYS", 10_000_000);
    let vlen = env("AMBER_RECOVERY_VALUE", 16) as usize;
    let per = (40 + 16 + vlen as u64 + 7) & !7;
    let seg = 4u64 << 20;
    let size = 4096 + (keys * per / (seg - 64) + 8) * seg;
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    };
    let dir = tempfile::tempdir_in(base).expect("tempdir");
    let mut cfg = ArenaConfig::new(dir.path().join("speed.arena"), size);
    cfg.segment_size = seg;
    cfg.persistence = Persistence::Pmem;
    cfg.sync = ArenaSync::No;
    cfg.lanes = 2;
    let value = vec![b'v'; vlen];
    {
        let arena = Arena::open(&cfg).expect("open");
        arena.recover(|_| {}).expect("recover empty");
        let t = Instant::now();
        std::thread::scope(|s| {
            for w in 0..2u64 {
                let arena = &arena;
                let value = &value;
                s.spawn(move || {
                    for i in (w..keys).step_by(2) {
                        let key = format!("key:{i:012}");
                        arena
                            .append(
                                w as usize,
                                RecordIn {
                                    db: 0,
                                    kind: 0,
                                    key: key.as_bytes(),
                                    value: &[value],
                                    expire_at: 0,
                                },
                            )
                            .expect("append");
                    }
                });
            }
        });
        eprintln!(
            "loaded {keys} records of {per} bytes in {:?} (2 writers)",
            t.elapsed()
        );
        arena.close().expect("close");
    }
    let cpu = cpu_seconds();
    let t = Instant::now();
    let arena = Arena::open(&cfg).expect("reopen");
    let open = t.elapsed();
    let n = AtomicU64::new(0);
    let stats = arena
        .recover(|_| {
            n.fetch_add(1, Ordering::Relaxed);
        })
        .expect("recover");
    let cpu = cpu_seconds() - cpu;
    eprintln!(
        "open {:?}, recover {:?} wall, {cpu:.2} s CPU ({} threads): {} keys, {} records, {} segments",
        open, stats.duration, stats.threads, stats.live_keys, stats.records_scanned, stats.segments_scanned
    );
    assert_eq!(n.load(Ordering::Relaxed), keys);
    assert_eq!(stats.live_keys, keys);
}
