//! `SWAPDB` in `persistence pmem` mode survives a crash: after the swap,
//! recovery by arena scan (what `kill -9` leaves) and by the clean-shutdown
//! checkpoint both find each key in its new database only, with its value
//! (a key that left a database must not come back there from its old
//! record), with every key hot and with every key in the arena.

mod common;

use common::{crash_image, pmem_config};

use amber_storage::{Keyspace, SetExpiry, Value};

fn set(ks: &Keyspace, db: usize, key: &str, value: &str) {
    ks.lock_one(db, key.as_bytes())
        .expect("lock")
        .set(key.as_bytes(), Value::string(value), SetExpiry::Persist)
        .expect("set");
}

/// The string value of `key` in `db`, if any.
fn get(ks: &Keyspace, db: usize, key: &str) -> Option<String> {
    let mut g = ks.lock_one(db, key.as_bytes()).expect("lock");
    match g.get(key.as_bytes()) {
        Some(Value::Str(s)) => Some(String::from_utf8_lossy(&s.bytes).into_owned()),
        _ => None,
    }
}

/// Keys of databases 0 and 1 after `SWAPDB 0 1` of the contents below.
fn check_swapped(ks: &Keyspace, how: &str) {
    let want = [
        (0, "a", None),
        (0, "b", Some("b1")),
        (0, "c", Some("c1")),
        (1, "a", Some("a0")),
        (1, "b", None),
        (1, "c", Some("c0")),
    ];
    for (db, key, value) in want {
        assert_eq!(
            get(ks, db, key).as_deref(),
            value,
            "db {db} key {key} after {how}"
        );
    }
    assert_eq!((ks.dbsize(0), ks.dbsize(1)), (2, 2), "sizes after {how}");
}

#[test]
fn swapped_databases_stay_swapped_after_a_crash_and_a_clean_restart() {
    // Budget 0: every key cold (rewritten from its record); 1 MiB: hot.
    for budget in [0, 1 << 20] {
        let dir = tempfile::tempdir().expect("tempdir");
        let ks = Keyspace::open(pmem_config(dir.path(), budget)).expect("open");
        set(&ks, 0, "a", "a0");
        set(&ks, 0, "c", "c0");
        set(&ks, 1, "b", "b1");
        set(&ks, 1, "c", "c1");
        ks.swap_db(0, 1).expect("swapdb");
        check_swapped(&ks, "the swap");
        let crashed = crash_image(dir.path());
        ks.close().expect("close");
        drop(ks);
        for (how, path) in [("a crash", crashed.path()), ("a clean restart", dir.path())] {
            let ks = Keyspace::open(pmem_config(path, budget)).expect("reopen");
            check_swapped(&ks, &format!("{how}, budget {budget}"));
        }
    }
}
