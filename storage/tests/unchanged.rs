//! `Guard::unchanged`: a command that took a value for writing and changed
//! nothing (an `SADD` of a member already there) neither tells the key's
//! watchers nor writes the value to the arena again, and the key keeps its
//! tier; a command that did change it does both, as before.

mod common;

use common::pmem_config;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use amber_storage::types::SetValue;
use amber_storage::{KeyObserver, Keyspace, SetExpiry, Value};

/// Counts modification reports (what `WATCH` is built on).
#[derive(Default)]
struct Reports(AtomicUsize);

impl KeyObserver for Reports {
    fn modified(&self, _db: usize, _key: &[u8], _exists: bool) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn created(&self, _db: usize, _key: &[u8]) {}
    fn expired(&self, _db: usize, _key: &[u8]) {}
    fn evicted(&self, _db: usize, _key: &[u8]) {}
    fn replacing_db(&self, _emptied: usize, _replaced_with: Option<usize>) {}
}

fn open_with_reports(dir: &std::path::Path, budget: u64) -> (Keyspace, Arc<Reports>) {
    let ks = Keyspace::open(pmem_config(dir, budget)).expect("open");
    let reports = Arc::new(Reports::default());
    ks.set_observer(reports.clone());
    ks.watch_modifications(true);
    (ks, reports)
}

fn used_bytes(ks: &Keyspace) -> u64 {
    ks.tiers.arena.as_ref().expect("arena").stats().used_bytes
}

fn hot_keys(ks: &Keyspace) -> i64 {
    ks.tiers.stats.hot_keys.load(Ordering::Relaxed)
}

/// `SADD key member` as the server runs it: adds, and declares the key
/// unchanged when the member was already there. Returns whether it added.
fn sadd(ks: &Keyspace, key: &[u8], member: &[u8]) -> bool {
    let mut g = ks.lock_one(0, key).expect("lock");
    match g.get_mut(key) {
        Some(Value::Set(s)) => {
            let added = s.add(member, 512);
            if !added {
                g.unchanged(key);
            }
            added
        }
        Some(_) => panic!("not a set"),
        None => {
            let mut s = SetValue::new_for(member);
            s.add(member, 512);
            g.set(key, Value::from(s), SetExpiry::Persist).expect("set");
            true
        }
    }
}

fn members(ks: &Keyspace, key: &[u8]) -> Vec<Vec<u8>> {
    let mut g = ks.lock_one(0, key).expect("lock");
    let Some(Value::Set(s)) = g.get(key) else {
        panic!("no set at {key:?}");
    };
    let mut m: Vec<Vec<u8>> = s.iter().map(|m| m.to_vec()).collect();
    m.sort();
    m
}

#[test]
fn a_write_that_changes_nothing_is_neither_reported_nor_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ks, reports) = open_with_reports(dir.path(), 64 << 20);
    for i in 0..100 {
        sadd(&ks, b"s", format!("m{i}").as_bytes());
    }
    let (used, reported) = (used_bytes(&ks), reports.0.load(Ordering::SeqCst));
    for i in 0..100 {
        assert!(!sadd(&ks, b"s", format!("m{i}").as_bytes()));
    }
    assert_eq!(used_bytes(&ks), used, "no-op writes appended records");
    assert_eq!(
        reports.0.load(Ordering::SeqCst),
        reported,
        "no-op writes were reported"
    );
    // A real change still is both (so the two checks above can fail).
    assert!(sadd(&ks, b"s", b"new"));
    assert!(used_bytes(&ks) > used, "a change was not written");
    assert_eq!(reports.0.load(Ordering::SeqCst), reported + 1);
    // The arena holds the set as it is, with no close (a crash).
    let want = members(&ks, b"s");
    let copy = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        dir.path().join("amber.arena"),
        copy.path().join("amber.arena"),
    )
    .expect("copy");
    drop(ks);
    let ks = Keyspace::open(pmem_config(copy.path(), 64 << 20)).expect("reopen");
    assert_eq!(members(&ks, b"s"), want);
    assert_eq!(want.len(), 101);
}

#[test]
fn an_unchanged_cold_value_goes_back_to_the_arena_without_a_write() {
    // No hot tier: every value lives in the arena, and a command's value is
    // promoted only for the command's duration.
    let dir = tempfile::tempdir().expect("tempdir");
    let (ks, reports) = open_with_reports(dir.path(), 0);
    for i in 0..50 {
        sadd(&ks, b"cold", format!("m{i}").as_bytes());
    }
    assert_eq!(hot_keys(&ks), 0);
    let (used, reported) = (used_bytes(&ks), reports.0.load(Ordering::SeqCst));
    assert!(!sadd(&ks, b"cold", b"m7"));
    assert_eq!(hot_keys(&ks), 0, "the unchanged value stayed in DRAM");
    assert_eq!(used_bytes(&ks), used);
    assert_eq!(reports.0.load(Ordering::SeqCst), reported);
    assert!(sadd(&ks, b"cold", b"m50"));
    assert_eq!(hot_keys(&ks), 0);
    assert!(used_bytes(&ks) > used);
    assert_eq!(members(&ks, b"cold").len(), 51);
}

#[test]
fn unchanged_names_only_its_own_key() {
    // One guard over two keys: one changed, one not (SMOVE onto a set that
    // already has the member). Only the changed one is reported.
    let dir = tempfile::tempdir().expect("tempdir");
    let (ks, reports) = open_with_reports(dir.path(), 64 << 20);
    sadd(&ks, b"src", b"a");
    sadd(&ks, b"src", b"b");
    sadd(&ks, b"dst", b"a");
    let reported = reports.0.load(Ordering::SeqCst);
    {
        let mut g = ks.lock(0, [&b"src"[..], &b"dst"[..]]).expect("lock");
        let Some(Value::Set(s)) = g.get_mut(b"src") else {
            panic!("src");
        };
        assert!(s.remove(b"a"));
        let Some(Value::Set(d)) = g.get_mut(b"dst") else {
            panic!("dst");
        };
        assert!(!d.add(b"a", 512));
        g.unchanged(b"dst");
    }
    assert_eq!(reports.0.load(Ordering::SeqCst), reported + 1);
    assert_eq!(members(&ks, b"src"), vec![b"b".to_vec()]);
    assert_eq!(members(&ks, b"dst"), vec![b"a".to_vec()]);
}
