//! Live snapshots (`amber_storage::snapshot`): a snapshot taken while
//! writers modify, delete, expire, evict, flush and create keys in every
//! shard holds exactly the keyspace of its start instant (compared with a
//! copy read under the exclusive gate at that instant), for every value
//! type, with values in DRAM, in the arena (`dram-budget 0`) and both.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use amber_storage::types::hash::HashLimits;
use amber_storage::types::stream::{NodeLimits, StreamId};
use amber_storage::types::zset::{AddFlags, ListpackLimits};
use amber_storage::types::{HashValue, ListValue, SetValue, StreamValue, ZSetValue};
use amber_storage::{
    EvictionPolicy, Keyspace, KeyspaceConfig, Persistence, SetExpiry, ShardEntries, SnapshotSink,
    Value, DB_COUNT,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Key (db, name) to value and deadline.
type Dataset = BTreeMap<(usize, Vec<u8>), (Value, Option<u64>)>;

/// Keeps every captured entry, and which shards were captured.
#[derive(Default)]
struct Collect {
    entries: Mutex<Dataset>,
    shards: Mutex<Vec<(usize, usize)>>,
}

impl SnapshotSink for Collect {
    fn capture(&self, db: usize, shard: usize, entries: &ShardEntries<'_>) {
        let mut out = self.entries.lock().expect("entries");
        let unreadable = entries.for_each(&mut |k, v, d| {
            let dup = out.insert((db, k.to_vec()), (v.clone(), d));
            assert!(dup.is_none(), "a key captured twice");
        });
        assert_eq!(unreadable, 0);
        self.shards.lock().expect("shards").push((db, shard));
    }
}

/// A value of kind `kind % 6`, shaped by `seed`.
fn value(kind: usize, seed: usize) -> Value {
    match kind % 6 {
        0 => Value::string(format!("string-{seed}-{}", "x".repeat(seed % 40))),
        1 => {
            let mut h = HashValue::default();
            for f in 0..(1 + seed % 5) {
                h.insert(
                    format!("f{f}").as_bytes(),
                    format!("v{seed}").as_bytes(),
                    HashLimits::default(),
                );
            }
            Value::from(h)
        }
        2 => {
            let mut l = ListValue::new();
            for e in 0..(1 + seed % 7) {
                l.push(e % 2 == 0, format!("e{e}-{seed}").as_bytes());
            }
            Value::from(l)
        }
        3 => {
            let mut s = SetValue::new_for(b"1");
            for e in 0..(1 + seed % 6) {
                s.add(format!("m{e}-{seed}").as_bytes(), 512);
            }
            Value::from(s)
        }
        4 => {
            let mut z = ZSetValue::new();
            for e in 0..(1 + seed % 6) {
                z.add(
                    format!("z{e}").as_bytes(),
                    (seed + e) as f64,
                    AddFlags::default(),
                    ListpackLimits::default(),
                );
            }
            Value::from(z)
        }
        _ => {
            let mut s = StreamValue::new();
            for e in 0..(1 + seed % 4) as u64 {
                let v = format!("{seed}");
                let fv: [&[u8]; 2] = [b"field", v.as_bytes()];
                s.append(StreamId::new(e + 1, 0), &fv, NodeLimits::default());
            }
            Value::from(s)
        }
    }
}

fn set(ks: &Keyspace, db: usize, key: &[u8], v: Value, expiry: SetExpiry) {
    let mut g = ks.lock_one(db, key).expect("lock");
    g.set(key, v, expiry).expect("set");
}

/// The live keys of every database as commands read them (no expiry, no
/// promotion): the reference copy, taken under the gate.
fn read_all(ks: &Keyspace) -> Dataset {
    let mut out = Dataset::new();
    for db in 0..DB_COUNT {
        for key in ks.keys(db, b"*") {
            let mut g = ks.lock_one(db, &key).expect("lock");
            let deadline = g.expire_at(&key).flatten();
            // (A deadline may pass between `keys` and here.)
            let Some(v) = g.peek(&key).cloned() else {
                continue;
            };
            out.insert((db, key), (v, deadline));
        }
    }
    out
}

/// The databases writers' commands touch.
const DBS: [usize; 3] = [0, 3, 9];

/// Databases only a flush and a `SWAPDB` change (so that no command
/// captures their shards first).
const QUIET: [usize; 2] = [12, 13];

fn populate(ks: &Keyspace) {
    for &db in DBS.iter().chain(&QUIET) {
        for i in 0..300 {
            let key = format!("key:{i}");
            // Some keys already expired at the start (not in the snapshot's
            // live set), most without a deadline.
            let expiry = match i % 13 {
                0 => SetExpiry::At(1),
                1 => SetExpiry::At(amber_storage::clock::now_ms() + 3_600_000),
                _ => SetExpiry::Persist,
            };
            set(ks, db, key.as_bytes(), value(i, i + db), expiry);
        }
    }
}

/// Writers' random changes: overwrites, in-place changes, deletes, new
/// keys, deadlines (past and soon), evictions, active expiry.
fn churn(ks: &Keyspace, seed: u64, stop: &AtomicBool, ops: &AtomicU64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) || n < 2_000 {
        n += 1;
        let db = DBS[rng.gen_range(0..DBS.len())];
        let i = rng.gen_range(0..400);
        let key = format!("key:{i}");
        let key = key.as_bytes();
        match rng.gen_range(0..10) {
            0 | 1 => set(
                ks,
                db,
                key,
                value(rng.gen(), rng.gen_range(0..100)),
                SetExpiry::Keep,
            ),
            2 => {
                let mut g = ks.lock_one(db, key).expect("lock");
                match g.get_mut(key) {
                    Some(Value::List(l)) => l.push(true, b"more"),
                    Some(Value::Str(s)) => s.bytes_mut().extend_from_slice(b"-more"),
                    Some(Value::Hash(h)) => {
                        h.insert(b"new", b"field", HashLimits::default());
                    }
                    _ => {}
                }
            }
            3 => {
                ks.lock_one(db, key).expect("lock").remove(key);
            }
            4 => {
                let mut g = ks.lock_one(db, key).expect("lock");
                if g.exists(key) {
                    g.set_expire_at(
                        key,
                        Some(amber_storage::clock::now_ms() + rng.gen_range(0..20)),
                    );
                }
            }
            5 => {
                let other = DBS[rng.gen_range(0..DBS.len())];
                let k = format!("new:{seed}:{n}");
                set(
                    ks,
                    other,
                    k.as_bytes(),
                    value(rng.gen(), 1),
                    SetExpiry::Persist,
                );
            }
            6 => {
                ks.evict(EvictionPolicy::AllKeysRandom, 1);
            }
            7 => {
                ks.expire_cycle(20);
            }
            _ => {
                let _ = ks.lock_one(db, key).expect("lock").get(key).is_some();
            }
        }
        ops.fetch_add(1, Ordering::Relaxed);
    }
}

fn check(ks: Keyspace) {
    let ks = Arc::new(ks);
    populate(&ks);
    let sink = Arc::new(Collect::default());
    let (reference, ticket, start) = {
        let _gate = ks.exclusive();
        let start = amber_storage::clock::now_ms();
        let reference = read_all(&ks);
        let ticket = ks.snapshot_begin(sink.clone()).expect("begin");
        // One at a time.
        assert!(ks.snapshot_begin(Arc::new(Collect::default())).is_err());
        (reference, ticket, start)
    };
    assert!(reference.len() > 800);
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (ks, stop, ops) = (ks.clone(), stop.clone(), ops.clone());
            std::thread::spawn(move || churn(&ks, w, &stop, &ops))
        })
        .collect();
    // A flush and a SWAPDB of databases no command touched yet.
    {
        let _gate = ks.exclusive();
        ks.flush_db(QUIET[0]);
        ks.swap_db(QUIET[1], 14).expect("swapdb");
    }
    // The snapshot's own walk, slowly, so writers reach shards first.
    let per_db = ks.shards_per_db();
    for db in 0..DB_COUNT {
        for shard in 0..per_db {
            ks.snapshot_capture(&ticket, db, shard);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    ks.snapshot_end(ticket);
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer");
    }
    assert!(ops.load(Ordering::Relaxed) >= 4_000);
    // Every shard exactly once.
    let shards = sink.shards.lock().expect("shards").clone();
    assert_eq!(shards.len(), DB_COUNT * per_db);
    assert_eq!(shards.iter().collect::<HashSet<_>>().len(), shards.len());
    // The captured keys live at the start are the reference copy.
    let captured: Dataset = std::mem::take(&mut *sink.entries.lock().expect("entries"))
        .into_iter()
        .filter(|(_, (_, d))| d.is_none_or(|d| d > start))
        .collect();
    assert_eq!(captured.len(), reference.len());
    for (k, v) in &reference {
        assert_eq!(captured.get(k), Some(v), "key {k:?}");
    }
    // The writers did change the keyspace.
    assert_ne!(read_all(&ks), reference);
    // A second snapshot can start once the first ended.
    let _gate = ks.exclusive();
    let t = ks
        .snapshot_begin(Arc::new(Collect::default()))
        .expect("again");
    ks.snapshot_end(t);
}

#[test]
fn snapshot_in_dram_is_the_start_instant() {
    check(Keyspace::new(KeyspaceConfig {
        shards_per_db: 4,
        ..Default::default()
    }));
}

#[test]
fn snapshot_in_the_arena_is_the_start_instant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ks = Keyspace::open(common::arena_config(
        dir.path(),
        64 << 20,
        0,
        Persistence::None,
    ))
    .expect("open");
    check(ks);
}

#[test]
fn snapshot_across_both_tiers_is_the_start_instant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ks = Keyspace::open(common::pmem_config(dir.path(), 32 << 10)).expect("open");
    check(ks);
}
