//! `Keyspace::prefetch`, the cache hints for a pipelined batch's keys: it
//! must change nothing (no value, no tier move, no access time that would
//! bend the demotion order) and never wait for a shard another command holds.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use amber_storage::{
    ArenaConfig, ArenaSync, Keyspace, KeyspaceConfig, Persistence, SetExpiry, Value,
};

fn keyspace(dir: &std::path::Path, budget: u64) -> Keyspace {
    let mut arena = ArenaConfig::new(dir.join("amber.arena"), 64 << 20);
    arena.segment_size = 1 << 20;
    arena.persistence = Persistence::Pmem;
    arena.sync = ArenaSync::No;
    Keyspace::open(KeyspaceConfig {
        shards_per_db: 16,
        dram_budget: budget,
        arena: Some(arena),
    })
    .expect("open")
}

fn key(i: usize) -> Vec<u8> {
    format!("key:{i}").into_bytes()
}

fn value(i: usize) -> Vec<u8> {
    format!("{i}:").repeat(60).into_bytes()
}

/// Every key's value, and the tier counters.
fn snapshot(ks: &Keyspace, n: usize) -> (Vec<Option<Vec<u8>>>, [u64; 4]) {
    let s = &ks.tiers.stats;
    let counters = [
        s.hot_keys.load(Ordering::Relaxed) as u64,
        s.cold_keys.load(Ordering::Relaxed) as u64,
        s.promotions.load(Ordering::Relaxed),
        s.demotions.load(Ordering::Relaxed),
    ];
    let hot: Vec<bool> = (0..n)
        .map(|i| {
            ks.lock_one(0, &key(i))
                .expect("lock")
                .is_hot(&key(i))
                .unwrap_or(false)
        })
        .collect();
    assert!(
        hot.iter().any(|&h| h) && hot.iter().any(|&h| !h),
        "want hot and cold keys"
    );
    let values = (0..n)
        .map(|i| {
            let mut g = ks.lock_one(0, &key(i)).expect("lock");
            g.set_touch(false);
            match g.get(&key(i)) {
                Some(Value::Str(s)) => Some(s.bytes.clone()),
                _ => None,
            }
        })
        .collect();
    (values, counters)
}

#[test]
fn prefetch_changes_nothing_and_skips_locked_shards() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ks = keyspace(dir.path(), 64 * 1024);
    let n = 2000;
    for i in 0..n {
        let mut g = ks.lock_one(0, &key(i)).expect("lock");
        g.set(&key(i), Value::string(value(i)), SetExpiry::Persist)
            .expect("set");
    }
    while ks.demote_step(10_000) > 0 {}
    let before = snapshot(&ks, n);

    // Present keys (hot and cold), absent keys, another database, a
    // database that does not exist, the same key many times.
    let absent: Vec<Vec<u8>> = (n..n + 50).map(key).collect();
    let present: Vec<Vec<u8>> = (0..n).map(key).collect();
    // It reports how many keys the index may hold (at most
    // PREFETCH_MAX_KEYS of a call), so a connection can stop hinting misses.
    for chunk in present.chunks(40) {
        let want = chunk.len().min(amber_storage::PREFETCH_MAX_KEYS);
        assert_eq!(ks.prefetch(0, chunk.iter().map(|k| k.as_slice())), want);
        assert_eq!(ks.prefetch(1, chunk.iter().map(|k| k.as_slice())), 0);
    }
    assert!(ks.prefetch(0, absent.iter().map(|k| k.as_slice())) <= 1);
    assert_eq!(ks.prefetch(99, present.iter().map(|k| k.as_slice())), 0);
    assert_eq!(
        ks.prefetch(0, std::iter::repeat_n(present[0].as_slice(), 100)),
        amber_storage::PREFETCH_MAX_KEYS
    );
    assert_eq!(snapshot(&ks, n), before, "prefetch changed the keyspace");

    // A shard held by a command is skipped, not waited for: the prefetch
    // runs while this thread holds the shard of its first key.
    std::thread::scope(|s| {
        let (done, finished) = mpsc::channel();
        let ks = &ks;
        let held = ks.lock_one(0, &key(7)).expect("lock");
        s.spawn(move || {
            ks.prefetch(0, [key(7).as_slice(), key(8).as_slice()]);
            let _ = done.send(());
        });
        let waited = finished.recv_timeout(Duration::from_secs(10));
        drop(held);
        waited.expect("prefetch waited for a locked shard");
    });
    assert_eq!(snapshot(&ks, n), before);
}
