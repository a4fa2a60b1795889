//! Server metadata in the keyspace (`Keyspace::put_meta` / `meta`): a blob
//! survives a clean restart (the index checkpoint path, no arena scan) and a
//! crash (the arena scan), the newest blob wins, compaction moves its record
//! out of a segment it empties, it is not a key (no database, flush, swap or
//! count sees it), a full arena refuses a new blob and keeps the old one,
//! and without `persistence pmem` nothing is kept.

mod common;

use common::{arena_config, crash_image, pmem_config};

use std::path::Path;
use std::sync::atomic::Ordering;

use amber_storage::{Error, Keyspace, KeyspaceConfig, Persistence, SetExpiry, Value, DB_COUNT};

fn pmem(dir: &Path) -> KeyspaceConfig {
    pmem_config(dir, 256 << 10)
}

fn set(ks: &Keyspace, db: usize, key: &str, value: &[u8]) -> amber_storage::Result<()> {
    ks.lock_one(db, key.as_bytes()).expect("lock").set(
        key.as_bytes(),
        Value::string(value),
        SetExpiry::Persist,
    )
}

fn keys(ks: &Keyspace) -> usize {
    (0..DB_COUNT).map(|db| ks.dbsize(db)).sum()
}

fn from_checkpoint(ks: &Keyspace) -> bool {
    ks.stats.from_checkpoint.load(Ordering::Relaxed)
}

#[test]
fn meta_survives_a_clean_restart_from_the_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ks = Keyspace::open(pmem(dir.path())).expect("open");
    assert_eq!(ks.meta(b"functions").expect("meta"), None);
    ks.put_meta(b"functions", b"v1").expect("put");
    for i in 0..500 {
        set(&ks, i % 3, &format!("k{i}"), b"value").expect("set");
    }
    ks.put_meta(b"functions", b"v2").expect("put");
    ks.put_meta(b"other", b"").expect("put");
    ks.close().expect("close");
    drop(ks);

    let ks = Keyspace::open(pmem(dir.path())).expect("reopen");
    assert!(from_checkpoint(&ks), "the checkpoint was not used");
    assert_eq!(
        ks.meta(b"functions").expect("meta").as_deref(),
        Some(&b"v2"[..])
    );
    assert_eq!(ks.meta(b"other").expect("meta").as_deref(), Some(&b""[..]));
    assert_eq!(ks.meta(b"none").expect("meta"), None);
    assert_eq!(keys(&ks), 500, "metadata counted as keys");
    // And once more, after a write since the checkpoint (a crash now: scan).
    ks.put_meta(b"functions", b"v3").expect("put");
    let crashed = crash_image(dir.path());
    drop(ks);
    let ks = Keyspace::open(pmem(crashed.path())).expect("reopen");
    assert!(!from_checkpoint(&ks));
    assert_eq!(
        ks.meta(b"functions").expect("meta").as_deref(),
        Some(&b"v3"[..])
    );
}

#[test]
fn meta_survives_a_crash_and_the_newest_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ks = Keyspace::open(pmem(dir.path())).expect("open");
    let big = vec![b'x'; 200 << 10]; // larger than a segment: an extent
    for round in 0..20u32 {
        let blob = if round == 7 {
            big.clone()
        } else {
            format!("blob {round}").into_bytes()
        };
        ks.put_meta(b"functions", &blob).expect("put");
        set(&ks, 0, &format!("k{round}"), b"v").expect("set");
    }
    ks.put_meta(b"big", &big).expect("put");
    // No clean close: the process dies here.
    let crashed = crash_image(dir.path());
    drop(ks);
    let ks = Keyspace::open(pmem(crashed.path())).expect("reopen");
    assert!(!from_checkpoint(&ks));
    assert_eq!(
        ks.meta(b"functions").expect("meta").as_deref(),
        Some(&b"blob 19"[..])
    );
    assert_eq!(ks.meta(b"big").expect("meta"), Some(big));
    assert_eq!(keys(&ks), 20);
}

#[test]
fn compaction_moves_the_meta_record_out_of_a_segment_it_empties() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ks =
        Keyspace::open(arena_config(dir.path(), 64 << 20, 0, Persistence::Pmem)).expect("open");
    let arena = ks.tiers.arena.as_ref().expect("arena");
    ks.put_meta(b"functions", b"the libraries").expect("put");
    let before = arena.meta_addr(b"functions").expect("addr");
    let seg = arena.segment_of(before).expect("segment");
    // Enough writes for every lane to leave its first segments, then
    // remove them all: the metadata record's segment is nearly all dead.
    let value = vec![b'v'; 1000];
    for i in 0..4000 {
        set(&ks, 0, &format!("k{i}"), &value).expect("set");
    }
    for i in 0..4000 {
        let k = format!("k{i}");
        ks.lock_one(0, k.as_bytes())
            .expect("lock")
            .remove(k.as_bytes());
    }
    let mut rounds = 0;
    while arena.meta_addr(b"functions") == Some(before) && rounds < 50 {
        ks.compact_step(0.5, 16);
        rounds += 1;
    }
    let after = arena.meta_addr(b"functions").expect("addr");
    assert_ne!(after, before, "compaction never moved the metadata record");
    assert_ne!(arena.segment_of(after), Some(seg));
    assert!(ks.stats.compactions.load(Ordering::Relaxed) > 0);
    // Its old segment is reused by new writes: the blob reads from the copy.
    for i in 0..4000 {
        set(&ks, 1, &format!("n{i}"), &value).expect("set");
    }
    assert_eq!(
        ks.meta(b"functions").expect("meta").as_deref(),
        Some(&b"the libraries"[..])
    );
    // Both restart paths find the moved record.
    let crashed = crash_image(dir.path());
    ks.close().expect("close");
    drop(ks);
    for (label, path) in [("checkpoint", dir.path()), ("scan", crashed.path())] {
        let ks =
            Keyspace::open(arena_config(path, 64 << 20, 0, Persistence::Pmem)).expect("reopen");
        assert_eq!(from_checkpoint(&ks), label == "checkpoint", "{label}");
        assert_eq!(
            ks.meta(b"functions").expect("meta").as_deref(),
            Some(&b"the libraries"[..]),
            "{label}"
        );
    }
}

#[test]
fn meta_is_not_a_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ks = Keyspace::open(pmem(dir.path())).expect("open");
    ks.put_meta(b"functions", b"libs").expect("put");
    assert_eq!(keys(&ks), 0);
    for db in 0..DB_COUNT {
        assert!(ks.keys(db, b"*").is_empty());
        assert_eq!(ks.random_key(db), None);
        assert_eq!(ks.db_info(db).keys, 0);
    }
    set(&ks, 0, "a", b"1").expect("set");
    set(&ks, 1, "b", b"1").expect("set");
    ks.flush_db(1);
    ks.flush_all();
    ks.swap_db(0, 1).expect("swapdb");
    assert_eq!(
        ks.meta(b"functions").expect("meta").as_deref(),
        Some(&b"libs"[..])
    );
    let crashed = crash_image(dir.path());
    drop(ks);
    let ks = Keyspace::open(pmem(crashed.path())).expect("reopen");
    assert_eq!(keys(&ks), 0);
    assert_eq!(
        ks.meta(b"functions").expect("meta").as_deref(),
        Some(&b"libs"[..])
    );
}

#[test]
fn a_full_arena_refuses_new_meta_and_keeps_the_old() {
    let dir = tempfile::tempdir().expect("tempdir");
    let size = 1 << 20;
    let ks = Keyspace::open(arena_config(dir.path(), size, 0, Persistence::Pmem)).expect("open");
    ks.put_meta(b"functions", b"old").expect("put");
    // Larger than the arena.
    let huge = vec![b'h'; 2 << 20];
    assert_eq!(ks.put_meta(b"functions", &huge), Err(Error::OutOfMemory));
    // Fill the arena with keys until it refuses one.
    let value = vec![b'v'; 4000];
    let mut i = 0;
    loop {
        let refused = set(&ks, 0, &format!("k{i}"), &value).is_err();
        // A write the arena could not take is answered -OOM too.
        if amber_storage::tier::take_persist_failure() || refused {
            break;
        }
        i += 1;
        assert!(i < 1000, "the arena never filled");
    }
    // Larger than a segment, so it needs free segments there are not.
    let big = vec![b'b'; 100 << 10];
    assert_eq!(ks.put_meta(b"functions", &big), Err(Error::OutOfMemory));
    assert_eq!(
        ks.meta(b"functions").expect("meta").as_deref(),
        Some(&b"old"[..])
    );
    let crashed = crash_image(dir.path());
    drop(ks);
    let ks =
        Keyspace::open(arena_config(crashed.path(), size, 0, Persistence::Pmem)).expect("reopen");
    assert_eq!(
        ks.meta(b"functions").expect("meta").as_deref(),
        Some(&b"old"[..])
    );
}

#[test]
fn without_pmem_persistence_nothing_is_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let none = || arena_config(dir.path(), 4 << 20, 0, Persistence::None);
    let ks = Keyspace::open(none()).expect("open");
    ks.put_meta(b"functions", b"libs")
        .expect("put does nothing");
    assert_eq!(ks.meta(b"functions").expect("meta"), None);
    drop(ks);
    let ks = Keyspace::open(none()).expect("reopen");
    assert_eq!(ks.meta(b"functions").expect("meta"), None);
    let dram = Keyspace::new(KeyspaceConfig::default());
    dram.put_meta(b"functions", b"libs")
        .expect("put does nothing");
    assert_eq!(dram.meta(b"functions").expect("meta"), None);
}
