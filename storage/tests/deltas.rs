//! Delta records: writes to a large hot collection in `pmem` mode are
//! persisted as small records of the changed elements, and a reopen (after
//! a clean close or none at all) applies them and finds every collection
//! exactly as it was, element order, encoding and deadline included.

use std::sync::atomic::Ordering;

use amber_storage::codec;
use amber_storage::types::hash::HashLimits;
use amber_storage::types::zset::{AddFlags, ListpackLimits};
use amber_storage::types::{HashValue, ListValue, SetValue, ZSetValue};
use amber_storage::{ArenaConfig, ArenaSync, Keyspace, KeyspaceConfig, Persistence, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn config(dir: &std::path::Path, budget: u64) -> KeyspaceConfig {
    let mut arena = ArenaConfig::new(dir.join("amber.arena"), 64 << 20);
    arena.segment_size = 64 << 10;
    arena.persistence = Persistence::Pmem;
    arena.sync = ArenaSync::No;
    KeyspaceConfig {
        shards_per_db: 4,
        dram_budget: budget,
        arena: Some(arena),
    }
}

const KEYS: [&[u8]; 4] = [b"hash", b"list", b"set", b"zset"];

/// Builds the four collections with `n` elements each, one command (guard)
/// per element, as clients would.
fn build(ks: &Keyspace, n: usize) {
    for i in 0..n {
        for key in KEYS {
            let mut g = ks.lock_one(0, key).expect("lock");
            let member = format!("member-{i:06}");
            match g.get_mut(key) {
                Some(v) => mutate(v, key, &member, i),
                None => {
                    let mut v = match key {
                        b"hash" => Value::Hash(HashValue::default()),
                        b"list" => Value::List(ListValue::new()),
                        b"set" => Value::Set(SetValue::new_for(member.as_bytes())),
                        _ => Value::ZSet(ZSetValue::new()),
                    };
                    mutate(&mut v, key, &member, i);
                    g.set(key, v, amber_storage::SetExpiry::Persist)
                        .expect("set");
                }
            }
        }
    }
}

/// One write command's worth of change to a collection.
fn mutate(v: &mut Value, key: &[u8], member: &str, i: usize) {
    let m = member.as_bytes();
    match (key, v) {
        (b"hash", Value::Hash(h)) => {
            h.insert(m, format!("value-{i}").as_bytes(), HashLimits::default());
        }
        (b"list", Value::List(l)) => l.push(!i.is_multiple_of(3), m),
        (b"set", Value::Set(s)) => {
            s.add(m, 512);
        }
        (b"zset", Value::ZSet(z)) => {
            let flags = AddFlags::default();
            z.add(m, (i % 97) as f64, flags, ListpackLimits::default());
        }
        _ => panic!("wrong type"),
    }
}

/// Random single-element changes of every kind the journal records.
fn churn(ks: &Keyspace, rounds: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for r in 0..rounds {
        let key = KEYS[rng.gen_range(0..KEYS.len())];
        let mut g = ks.lock_one(0, key).expect("lock");
        let v = g.get_mut(key).expect("present");
        let x: usize = rng.gen_range(0..3000);
        let m = format!("member-{x:06}");
        let m = m.as_bytes();
        match v {
            Value::Hash(h) => {
                if rng.gen_bool(0.3) {
                    h.remove(m);
                } else {
                    h.insert(m, format!("v{r}").as_bytes(), HashLimits::default());
                }
            }
            Value::List(l) => match rng.gen_range(0..6) {
                0 => l.push(true, m),
                1 => l.push(false, m),
                2 => {
                    l.pop(true);
                }
                3 => {
                    l.pop(false);
                }
                4 => {
                    let i = x % l.len().max(1);
                    l.set(i, m);
                }
                _ => {
                    let i = x % (l.len() + 1);
                    l.insert(i, m);
                }
            },
            Value::Set(s) => match rng.gen_range(0..3) {
                0 => {
                    s.add(m, 512);
                }
                1 => {
                    s.remove(m);
                }
                _ => {
                    s.pop_random(&mut rng);
                }
            },
            Value::ZSet(z) => {
                if rng.gen_bool(0.3) {
                    z.remove(m);
                } else {
                    let flags = AddFlags {
                        incr: rng.gen_bool(0.5),
                        ..AddFlags::default()
                    };
                    z.add(m, 1.5, flags, ListpackLimits::default());
                }
            }
            _ => panic!("a string"),
        }
    }
}

/// The four collections' encodings (order and encoding included).
fn snapshot(ks: &Keyspace) -> Vec<Vec<u8>> {
    KEYS.iter()
        .map(|key| {
            let mut g = ks.lock_one(0, key).expect("lock");
            let v = g.peek(key).expect("present");
            codec::encode(v).1.into_owned()
        })
        .collect()
}

/// What a restart after `kill -9` would find: the arena file as the page
/// cache holds it now, copied before the keyspace closes (the original
/// keeps its lock until then).
fn crash_image(dir: &std::path::Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().expect("tempdir");
    std::fs::copy(dir.join("amber.arena"), copy.path().join("amber.arena")).expect("copy");
    copy
}

fn delta_writes(ks: &Keyspace) -> u64 {
    ks.tiers.stats.delta_writes.load(Ordering::Relaxed)
}

#[test]
fn writes_to_large_collections_are_deltas_and_survive_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ks = Keyspace::open(config(dir.path(), 64 << 20)).expect("open");
    build(&ks, 2000);
    let arena = ks.tiers.arena.as_ref().expect("arena");
    let deltas = delta_writes(&ks);
    // Most of the 8000 writes went to collections past the delta threshold.
    assert!(deltas > 6000, "only {deltas} delta records");
    // Written bytes stay linear: whole rewrites would be ~2000²/2 × 4
    // elements × ~15 bytes ≈ 120 MB, more than the arena.
    let used = arena.stats().used_bytes;
    assert!(used < 8 << 20, "{used} bytes used for 8000 small writes");
    churn(&ks, 3000, 7);
    // A deadline change on a large collection is a delta too.
    let far = amber_storage::clock::now_ms() + 3_600_000;
    assert!(ks
        .lock_one(0, b"zset")
        .expect("lock")
        .set_expire_at(b"zset", Some(far)));
    let before = snapshot(&ks);
    // No clean close: the process dies here.
    let dir = crash_image(dir.path());
    drop(ks);
    let ks = Keyspace::open(config(dir.path(), 64 << 20)).expect("reopen");
    assert_eq!(snapshot(&ks), before);
    assert_eq!(
        ks.lock_one(0, b"zset").expect("lock").expire_at(b"zset"),
        Some(Some(far))
    );
    // The chains continue after the restart, and fold into whole records
    // on demotion; a second reopen sees the same.
    churn(&ks, 500, 8);
    let after = snapshot(&ks);
    let per_db = 4;
    for _ in 0..per_db {
        ks.demote_step(1000);
    }
    ks.close().expect("close");
    drop(ks);
    let ks = Keyspace::open(config(dir.path(), 64 << 20)).expect("reopen");
    assert_eq!(snapshot(&ks), after);
}

#[test]
fn compaction_moves_chains_and_reopen_still_applies_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ks = Keyspace::open(config(dir.path(), 64 << 20)).expect("open");
    build(&ks, 1500);
    churn(&ks, 4000, 11);
    let mut freed = 0;
    for _ in 0..40 {
        freed += ks.compact_step(0.0, 8);
    }
    assert!(freed > 0, "nothing compacted");
    // Every sealed segment could be freed: live delta records were moved
    // (a delta left behind would pin its segment and its dead bytes).
    let st = ks.tiers.arena.as_ref().expect("arena").stats();
    assert!(st.dead_bytes < st.used_bytes / 4, "{st:?}");
    churn(&ks, 200, 12);
    let before = snapshot(&ks);
    let dir = crash_image(dir.path());
    drop(ks);
    let ks = Keyspace::open(config(dir.path(), 64 << 20)).expect("reopen");
    assert_eq!(snapshot(&ks), before);
}

#[test]
fn small_collections_and_no_hot_tier_write_whole_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ks = Keyspace::open(config(dir.path(), 64 << 20)).expect("open");
    build(&ks, 20);
    assert_eq!(
        delta_writes(&ks),
        0,
        "small collections are rewritten whole"
    );
    drop(ks);
    let dir = tempfile::tempdir().expect("tempdir");
    let ks = Keyspace::open(config(dir.path(), 0)).expect("open");
    build(&ks, 300);
    assert_eq!(delta_writes(&ks), 0, "cold keys are always one record");
    let before = snapshot(&ks);
    let dir = crash_image(dir.path());
    drop(ks);
    let ks = Keyspace::open(config(dir.path(), 0)).expect("reopen");
    assert_eq!(snapshot(&ks), before);
}
