//! Delta records: writes to a large hot collection in `pmem` mode are
//! persisted as small records of the changed elements, and a reopen (after
//! a clean close or none at all) applies them and finds every collection
//! exactly as it was, element order, encoding and deadline included.

mod common;

use common::{crash_image, pmem_config};

use std::sync::atomic::Ordering;

use amber_storage::codec;
use amber_storage::types::hash::HashLimits;
use amber_storage::types::zset::{AddFlags, ListpackLimits};
use amber_storage::types::{HashValue, ListValue, SetValue, ZSetValue};
use amber_storage::{Keyspace, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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
                        b"hash" => Value::from(HashValue::default()),
                        b"list" => Value::from(ListValue::new()),
                        b"set" => Value::from(SetValue::new_for(member.as_bytes())),
                        _ => Value::from(ZSetValue::new()),
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

/// The four collections' encodings (order and encoding included). A sorted
/// set's record lists its elements in any order, so each value is decoded
/// and encoded again first: decoding inserts them sorted, and a fresh set
/// stores its nodes in that order.
fn snapshot(ks: &Keyspace) -> Vec<Vec<u8>> {
    KEYS.iter()
        .map(|key| {
            let mut g = ks.lock_one(0, key).expect("lock");
            let v = g.peek(key).expect("present");
            let (kind, bytes) = codec::encode(v);
            let canonical = codec::decode(kind, &bytes).expect("decodes");
            codec::encode(&canonical).1.into_owned()
        })
        .collect()
}

fn delta_writes(ks: &Keyspace) -> u64 {
    ks.tiers.stats.delta_writes.load(Ordering::Relaxed)
}

#[test]
fn writes_to_large_collections_are_deltas_and_survive_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ks = Keyspace::open(pmem_config(dir.path(), 64 << 20)).expect("open");
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
    let ks = Keyspace::open(pmem_config(dir.path(), 64 << 20)).expect("reopen");
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
    let ks = Keyspace::open(pmem_config(dir.path(), 64 << 20)).expect("reopen");
    assert_eq!(snapshot(&ks), after);
}

#[test]
fn compaction_folds_chains_and_reopen_still_applies_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ks = Keyspace::open(pmem_config(dir.path(), 64 << 20)).expect("open");
    build(&ks, 1500);
    churn(&ks, 4000, 11);
    let mut freed = 0;
    for _ in 0..40 {
        freed += ks.compact_step(0.0, 8);
    }
    assert!(freed > 0, "nothing compacted");
    // Every sealed segment could be freed: chains with records there were folded
    // (a delta left behind would pin its segment and its dead bytes).
    let st = ks.tiers.arena.as_ref().expect("arena").stats();
    assert!(st.dead_bytes < st.used_bytes / 4, "{st:?}");
    churn(&ks, 200, 12);
    let before = snapshot(&ks);
    let dir = crash_image(dir.path());
    drop(ks);
    let ks = Keyspace::open(pmem_config(dir.path(), 64 << 20)).expect("reopen");
    assert_eq!(snapshot(&ks), before);
}

#[test]
fn small_collections_and_no_hot_tier_write_whole_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ks = Keyspace::open(pmem_config(dir.path(), 64 << 20)).expect("open");
    build(&ks, 20);
    assert_eq!(
        delta_writes(&ks),
        0,
        "small collections are rewritten whole"
    );
    drop(ks);
    let dir = tempfile::tempdir().expect("tempdir");
    let ks = Keyspace::open(pmem_config(dir.path(), 0)).expect("open");
    build(&ks, 300);
    assert_eq!(delta_writes(&ks), 0, "cold keys are always one record");
    let before = snapshot(&ks);
    let dir = crash_image(dir.path());
    drop(ks);
    let ks = Keyspace::open(pmem_config(dir.path(), 0)).expect("reopen");
    assert_eq!(snapshot(&ks), before);
}

/// Recovery's chain rules on hand-made records: a delta counts only on its
/// key's newest whole record, in unbroken positions with rising sequence
/// numbers; the key's deadline is its last delta's.
#[test]
fn recovery_keeps_only_the_unbroken_chain_on_the_newest_base() {
    use amber_storage::{Addr, Arena, DeltaIn, RecordIn};
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = pmem_config(dir.path(), 0).arena.expect("arena config");
    let now = amber_storage::clock::now_ms();
    let far = now + 3_600_000;
    let delta = |a: &Arena, key: &[u8], base_seq: u64, pos: u32, ch: &[u8], exp: u64| {
        a.append_delta(
            0,
            DeltaIn {
                db: 0,
                kind: 1,
                key,
                base_seq,
                pos,
                changes: ch,
                expire_at: exp,
            },
        )
        .expect("delta")
        .0
    };
    let whole = |a: &Arena, key: &[u8], v: &[u8], exp: u64| {
        let (addr, _) = a
            .append(
                0,
                RecordIn {
                    db: 0,
                    kind: 1,
                    key,
                    value: &[v],
                    expire_at: exp,
                },
            )
            .expect("append");
        (addr, a.read_head(addr).expect("head").seq())
    };
    let recover = |a: &Arena| -> std::collections::HashMap<Vec<u8>, (Addr, Vec<Addr>)> {
        let bases = parking_lot::Mutex::new(Vec::new());
        let stats = a
            .recover(|r| bases.lock().push((r.addr, r.key.to_vec())))
            .expect("recover");
        let chains: std::collections::HashMap<Addr, Vec<Addr>> = stats.chains.into_iter().collect();
        bases
            .into_inner()
            .into_iter()
            .map(|(addr, k)| (k, (addr, chains.get(&addr).cloned().unwrap_or_default())))
            .collect()
    };
    let (a1, d1, d3_stale, d2_new, old_base_delta, expired_key_delta);
    {
        let a = Arena::open(&cfg).expect("open");
        recover(&a);
        // Key "k": base, delta 1, a delta at position 3 whose position 2
        // was lost, then (after a restart) a newer position 2.
        let (b, seq) = whole(&a, b"k", b"base", 0);
        a1 = b;
        d1 = delta(&a, b"k", seq, 1, b"+1", 0);
        d3_stale = delta(&a, b"k", seq, 3, b"+3", 0);
        d2_new = delta(&a, b"k", seq, 2, b"+2", far);
        // Key "old": a delta on a base that a newer whole record replaced.
        let (_, old_seq) = whole(&a, b"old", b"v1", 0);
        whole(&a, b"old", b"v2", 0);
        old_base_delta = delta(&a, b"old", old_seq, 1, b"+x", 0);
        // Key "gone": its base has already expired, its delta has not.
        let (_, gone_seq) = whole(&a, b"gone", b"g", now - 1);
        expired_key_delta = delta(&a, b"gone", gone_seq, 1, b"+g", far);
        a.sync().expect("sync");
    }
    let a = Arena::open(&cfg).expect("reopen");
    let found = recover(&a);
    assert_eq!(found.get(&b"k"[..]), Some(&(a1, vec![d1, d2_new])));
    assert!(!found[&b"k"[..]].1.contains(&d3_stale));
    let (old_base, old_chain) = &found[&b"old"[..]];
    assert!(old_chain.is_empty(), "{old_chain:?}");
    assert!(!old_chain.contains(&old_base_delta));
    assert_eq!(a.read(*old_base).expect("read").value, b"v2");
    // The delta's deadline is in the future: the key lives.
    assert_eq!(found[&b"gone"[..]].1, vec![expired_key_delta]);
    assert_eq!(a.read(d2_new).expect("read").expire_at(), far);
}
