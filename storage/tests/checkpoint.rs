//! The index checkpoint: after a clean close the next open loads the index
//! instead of scanning the arena, finds exactly what a scan would, and never
//! trusts a checkpoint that does not describe the arena it finds (stale,
//! after a crash, corrupt, other shard count): those fall back to the scan.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use amber_storage::types::list::ListValue;
use amber_storage::{
    ArenaConfig, ArenaSync, Keyspace, KeyspaceConfig, Persistence, SetExpiry, Value,
};

fn config(dir: &Path, shards: usize) -> KeyspaceConfig {
    let mut arena = ArenaConfig::new(dir.join("amber.arena"), 64 << 20);
    arena.segment_size = 64 << 10;
    arena.persistence = Persistence::Pmem;
    arena.sync = ArenaSync::No;
    KeyspaceConfig {
        shards_per_db: shards,
        dram_budget: 256 << 10,
        arena: Some(arena),
    }
}

fn index_file(dir: &Path) -> PathBuf {
    dir.join("amber.arena.index")
}

fn set(ks: &Keyspace, db: usize, key: &str, value: &str, expiry: SetExpiry) {
    ks.lock_one(db, key.as_bytes())
        .expect("lock")
        .set(key.as_bytes(), Value::string(value), expiry)
        .expect("set");
}

fn get(ks: &Keyspace, db: usize, key: &str) -> Option<Vec<u8>> {
    match ks
        .lock_one(db, key.as_bytes())
        .expect("lock")
        .get(key.as_bytes())
    {
        Some(Value::Str(s)) => Some(s.bytes.clone()),
        _ => None,
    }
}

/// Strings over three databases (some with a TTL, one expiring soon, some
/// deleted) and a list large enough for delta records; values tagged with
/// `round`.
fn fill(ks: &Keyspace, round: u32) {
    let far = amber_storage::clock::now_ms() + 3_600_000;
    for i in 0..3000u32 {
        let expiry = if i % 7 == 0 {
            SetExpiry::At(far)
        } else {
            SetExpiry::Persist
        };
        set(
            ks,
            (i % 3) as usize,
            &format!("k{i}"),
            &format!("v{i}-{round}"),
            expiry,
        );
    }
    for i in (0..3000u32).step_by(11) {
        ks.lock_one((i % 3) as usize, format!("k{i}").as_bytes())
            .expect("lock")
            .remove(format!("k{i}").as_bytes());
    }
    set(
        ks,
        0,
        "soon",
        "x",
        SetExpiry::At(amber_storage::clock::now_ms() + 50),
    );
    for i in 0..800u32 {
        let mut g = ks.lock_one(1, b"list").expect("lock");
        match g.get_mut(b"list") {
            Some(Value::List(l)) => l.push(false, format!("e{i}-{round}").as_bytes()),
            _ => {
                let mut l = ListValue::new();
                l.push(false, format!("e{i}-{round}").as_bytes());
                g.set(b"list", Value::from(l), SetExpiry::Persist)
                    .expect("set");
            }
        }
    }
}

/// Checks what `fill(round)` left (after its deadline, "soon" is gone).
fn check(ks: &Keyspace, round: u32, label: &str) {
    // "soon" expires 50 ms after `fill` set it: be sure that has passed.
    std::thread::sleep(std::time::Duration::from_millis(60));
    for i in 0..3000u32 {
        let want = (i % 11 != 0).then(|| format!("v{i}-{round}").into_bytes());
        assert_eq!(
            get(ks, (i % 3) as usize, &format!("k{i}")),
            want,
            "{label}: k{i}"
        );
        if i % 11 != 0 {
            let ttl = ks
                .lock_one((i % 3) as usize, format!("k{i}").as_bytes())
                .expect("lock")
                .expire_at(format!("k{i}").as_bytes());
            assert_eq!(
                ttl.expect("present").is_some(),
                i % 7 == 0,
                "{label}: TTL of k{i}"
            );
        }
    }
    assert_eq!(get(ks, 0, "soon"), None, "{label}: expired key");
    let mut g = ks.lock_one(1, b"list").expect("lock");
    let Some(Value::List(l)) = g.get(b"list") else {
        panic!("{label}: list missing");
    };
    assert_eq!(l.len(), 800 * round as usize, "{label}: list length");
    assert_eq!(
        l.get(l.len() - 1),
        Some(format!("e799-{round}").as_bytes()),
        "{label}"
    );
}

fn used_checkpoint(ks: &Keyspace) -> bool {
    ks.stats.from_checkpoint.load(Ordering::Relaxed)
}

#[test]
fn clean_restart_loads_the_checkpoint_and_finds_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ks = Keyspace::open(config(dir.path(), 4)).expect("open");
    fill(&ks, 1);
    assert!(ks.tiers.stats.delta_writes.load(Ordering::Relaxed) > 0);
    ks.close().expect("close");
    drop(ks);
    assert!(index_file(dir.path()).exists(), "no checkpoint written");
    std::thread::sleep(std::time::Duration::from_millis(60));
    let ks = Keyspace::open(config(dir.path(), 4)).expect("reopen");
    assert!(used_checkpoint(&ks), "the checkpoint was not used");
    assert!(
        !index_file(dir.path()).exists(),
        "a used checkpoint must be removed"
    );
    // Active expiry finds the key that expired while the server was down.
    while ks.expire_cycle(100) > 0 {}
    check(&ks, 1, "after the checkpoint");
    // The keyspace keeps working: writes, compaction, and another restart.
    fill(&ks, 2);
    for _ in 0..20 {
        ks.compact_step(0.3, 8);
    }
    ks.close().expect("close");
    drop(ks);
    let ks = Keyspace::open(config(dir.path(), 4)).expect("reopen");
    assert!(used_checkpoint(&ks));
    check(&ks, 2, "second checkpoint");
}

#[test]
fn a_checkpoint_that_does_not_describe_the_arena_is_not_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ks = Keyspace::open(config(dir.path(), 4)).expect("open");
    fill(&ks, 1);
    ks.close().expect("close");
    drop(ks);
    let old = std::fs::read(index_file(dir.path())).expect("checkpoint");

    // Stale: more writes and another clean close since.
    let ks = Keyspace::open(config(dir.path(), 4)).expect("reopen");
    fill(&ks, 2);
    ks.close().expect("close");
    drop(ks);
    std::fs::write(index_file(dir.path()), &old).expect("restore the old checkpoint");
    let ks = Keyspace::open(config(dir.path(), 4)).expect("reopen");
    assert!(!used_checkpoint(&ks), "a stale checkpoint was used");
    check(&ks, 2, "stale checkpoint");

    // After a crash: the arena's clean word is not set.
    fill(&ks, 3);
    let crashed = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        dir.path().join("amber.arena"),
        crashed.path().join("amber.arena"),
    )
    .expect("copy");
    drop(ks);
    std::fs::write(index_file(crashed.path()), &old).expect("plant a checkpoint");
    let ks = Keyspace::open(config(crashed.path(), 4)).expect("open the crash image");
    assert!(!used_checkpoint(&ks), "a checkpoint was used after a crash");
    check(&ks, 3, "after a crash");
    drop(ks);

    // Corrupt, and written with another shard count.
    for (label, shards, corrupt) in [("corrupt", 4, true), ("other shard count", 8, false)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let ks = Keyspace::open(config(dir.path(), 4)).expect("open");
        fill(&ks, 1);
        ks.close().expect("close");
        drop(ks);
        if corrupt {
            let mut b = std::fs::read(index_file(dir.path())).expect("checkpoint");
            let last = b.len() - 3;
            b[last] ^= 0x40;
            std::fs::write(index_file(dir.path()), &b).expect("write");
        }
        let ks = Keyspace::open(config(dir.path(), shards)).expect("reopen");
        assert!(!used_checkpoint(&ks), "{label}: used");
        while ks.expire_cycle(100) > 0 {}
        check(&ks, 1, label);
    }
}
