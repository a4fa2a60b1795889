//! `BGSAVE` without stopping the server, against the real binary: while a
//! slow save of a keyspace of every type runs (`rdb-key-save-delay`), other
//! clients' commands are answered (a write loop makes progress before
//! `rdb_bgsave_in_progress` goes back to 0), and the file, checked by
//! `redis-check-rdb` and loaded by a real redis-server, holds exactly the
//! data set of the `BGSAVE` instant although those writers changed,
//! deleted, expired and created keys during the save. A replica's full
//! sync (a live snapshot too) under concurrent writes ends identical, and
//! the writers are answered while its payload is written.

use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use amber_tests::replication::{dataset, field, parsed, wait_synced, Dataset};
use amber_tests::reply::show;
use amber_tests::tools::check_rdb;
use amber_tests::{RespClient, RestartableServer, ServerProcess};

/// Keys per database (databases 0 and 3).
const KEYS: usize = 3000;

fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("tempdir")
}

/// Sends `cmds` pipelined and checks no reply is an error.
fn pipeline(c: &mut RespClient, cmds: &[Vec<String>]) {
    for chunk in cmds.chunks(500) {
        for cmd in chunk {
            c.send(cmd).expect("send");
        }
        for _ in chunk {
            let r = c.read_reply().expect("reply");
            assert!(!r.starts_with(b"-"), "{}", show(&r));
        }
    }
}

fn words(s: &str) -> Vec<String> {
    s.split(' ').map(String::from).collect()
}

/// Every type, some keys with a deadline far away.
fn load(c: &mut RespClient) {
    for db in ["0", "3"] {
        c.cmd(&["SELECT", db]);
        let mut cmds = Vec::new();
        for i in 0..KEYS {
            cmds.push(match i % 6 {
                0 => words(&format!("SET k{i} value-{i}-{}", "x".repeat(i % 50))),
                1 => words(&format!("RPUSH k{i} a{i} b c{i}")),
                2 => words(&format!("HSET k{i} f1 v{i} f2 w")),
                3 => words(&format!("SADD k{i} m1 m{i} 7")),
                4 => words(&format!("ZADD k{i} 1 a 2.5 b{i}")),
                _ => words(&format!("XADD k{i} 1-{} f v{i}", i + 1)),
            });
            if i % 10 == 0 {
                cmds.push(words(&format!("EXPIRE k{i} 3600")));
            }
        }
        pipeline(c, &cmds);
    }
    c.cmd(&["SELECT", "0"]);
}

/// Same keys, types and contents; the same deadlines (the file's are
/// absolute: read later, the TTL is lower, by less than a minute).
fn same_data(before: &Dataset, saved: &Dataset) {
    let bk: Vec<_> = before.keys().collect();
    let sk: Vec<_> = saved.keys().collect();
    assert_eq!(bk, sk, "the key sets differ");
    for (k, (bt, bc, bttl)) in before {
        let (st, sc, sttl) = &saved[k];
        assert_eq!((bt, bc), (st, sc), "{k:?}");
        if *bttl < 0 || *sttl < 0 {
            assert_eq!(bttl, sttl, "TTL of {k:?}");
        } else {
            assert!(
                sttl <= bttl && bttl - sttl < 60_000,
                "TTL of {k:?}: {bttl} then {sttl}"
            );
        }
    }
}

#[test]
fn bgsave_serves_writers_and_saves_the_start_instant() {
    bgsave_live(&[]);
}

#[test]
fn bgsave_of_cold_values_serves_writers_and_saves_the_start_instant() {
    // No hot tier: every value is read from the arena, never promoted.
    bgsave_live(&["--dram-budget", "0"]);
}

/// The BGSAVE scenario (see the module docs) with `extra` arguments.
fn bgsave_live(extra: &[&str]) {
    let dir = tempdir("amber-bgsave-live-");
    // 6000 keys at 300 µs each: a save of about two seconds.
    let mut args = vec!["--rdb-key-save-delay", "300", "--shards", "64"];
    args.extend_from_slice(extra);
    let mut amber = RestartableServer::new(dir.path(), &args);
    amber.start();
    let mut a = amber.client();
    load(&mut a);
    let before = dataset(&mut a);
    assert_eq!(before.len(), 2 * KEYS);

    assert_eq!(a.cmd(&["BGSAVE"]), b"+Background saving started\r\n");
    // Writers on another connection while the save runs: every command
    // answered, and answered before the save ends.
    let mut w = amber.client();
    let started = Instant::now();
    let (mut answered_during, mut round) = (0u64, 0usize);
    loop {
        // Strings at i, lists at i + 1, hashes at i + 2.
        let i = (round * 42) % KEYS;
        let db = if round.is_multiple_of(2) { "0" } else { "3" };
        w.cmd(&["SELECT", db]);
        let k = format!("k{i}");
        let cmds: [Vec<String>; 6] = [
            words(&format!("DEL {k}")),
            words(&format!("SET {k} changed-{round}")),
            words(&format!("SET new-{round} fresh")),
            words(&format!("PEXPIRE k{} 1", i + 2)),
            words(&format!("LPUSH k{} pushed", i + 1)),
            words("PING"),
        ];
        pipeline(&mut w, &cmds);
        round += 1;
        if field(&mut a, "persistence", "rdb_bgsave_in_progress") == "1" {
            answered_during += cmds.len() as u64;
        } else {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "BGSAVE never finished"
        );
    }
    assert!(
        answered_during >= 60,
        "only {answered_during} commands were answered while BGSAVE ran"
    );
    assert_eq!(field(&mut a, "persistence", "rdb_last_bgsave_status"), "ok");
    // The writers changed the data set.
    assert_ne!(dataset(&mut a), before);

    let file = dir.path().join("dump.rdb");
    check_rdb(&file);
    let rdir = tempdir("redis-bgsave-live-");
    std::fs::copy(&file, rdir.path().join("dump.rdb")).expect("copy");
    let redis = ServerProcess::redis(&[
        "--dir",
        rdir.path().to_str().expect("path"),
        "--dbfilename",
        "dump.rdb",
    ]);
    let mut r = redis.client();
    let saved = dataset(&mut r);
    same_data(&before, &saved);
    let _ = parsed(&r.cmd(&["PING"]));
}

/// One writer's loop on its own keys until `stop`: overwrites, deletes,
/// pushes, deadlines that pass at once, new keys; counts its answers.
fn writer(c: &mut RespClient, t: usize, stop: &AtomicBool, answered: &AtomicU64) {
    let mut round = 0usize;
    while !stop.load(Ordering::Relaxed) {
        // Writer t owns the strings, lists and hashes of its residue.
        let i = ((round * 4 + t) * 6) % KEYS;
        let db = if round.is_multiple_of(2) { "0" } else { "3" };
        let cmds: [Vec<String>; 6] = [
            words(&format!("SELECT {db}")),
            words(&format!("SET k{i} w{t}-{round}")),
            words(&format!("DEL k{}", (i + 6) % KEYS)),
            words(&format!("LPUSH k{} p{round}", i + 1)),
            words(&format!("PEXPIRE k{} 1", i + 2)),
            words(&format!("SET new-{t}-{round} v")),
        ];
        pipeline(c, &cmds);
        answered.fetch_add(cmds.len() as u64, Ordering::Relaxed);
        round += 1;
    }
}

#[test]
fn a_full_sync_under_concurrent_writes_ends_identical() {
    let amber = ServerProcess::amber(&["--rdb-key-save-delay", "300", "--threads", "2"]);
    let mut a = amber.client();
    load(&mut a);
    let stop = AtomicBool::new(false);
    let answered = AtomicU64::new(0);
    let port = amber.port.to_string();
    let redis = std::thread::scope(|s| {
        let writers: Vec<_> = (0..2)
            .map(|t| {
                let mut c = amber.client();
                let (stop, answered) = (&stop, &answered);
                s.spawn(move || writer(&mut c, t, stop, answered))
            })
            .collect();
        let redis = ServerProcess::redis(&["--replicaof", "127.0.0.1", &port]);
        let mut r = redis.client();
        // The payload takes about two seconds to write: writers are
        // answered meanwhile.
        let mut during = 0;
        let mut asked = false;
        let started = Instant::now();
        while field(&mut r, "replication", "master_link_status") != "up" {
            assert!(started.elapsed() < Duration::from_secs(300), "never synced");
            let before = answered.load(Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(100));
            if field(&mut r, "replication", "master_sync_in_progress") == "1" {
                during += answered.load(Ordering::Relaxed) - before;
                if !asked {
                    // The sync produces its payload: Redis's answers
                    // while its RDB child for replication runs.
                    asked = true;
                    for cmd in [&["BGSAVE"][..], &["BGSAVE", "SCHEDULE"]] {
                        assert_eq!(
                            show(&a.cmd(cmd)),
                            "-ERR Background save already in progress\\r\\n"
                        );
                    }
                }
            }
        }
        assert!(
            during >= 30,
            "only {during} commands answered during the full sync"
        );
        // Writes go on after the sync too, then stop.
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().expect("writer");
        }
        redis
    });
    // The scheduled BGSAVE ran once the sync's snapshot ended.
    let started = Instant::now();
    while field(&mut a, "persistence", "rdb_saves") == "0"
        || field(&mut a, "persistence", "rdb_bgsave_in_progress") != "0"
    {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no scheduled BGSAVE"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(field(&mut a, "persistence", "rdb_last_bgsave_status"), "ok");
    let mut r = redis.client();
    wait_synced(&mut a, &mut r);
    // (Read one after the other: the replica's TTLs are lower.)
    same_data(&dataset(&mut a), &dataset(&mut r));
}

#[test]
fn bgsave_inside_exec_is_scheduled_and_runs_after_the_transaction() {
    let dir = tempdir("amber-bgsave-exec-");
    let mut amber = RestartableServer::new(dir.path(), &[]);
    amber.start();
    let mut a = amber.client();
    a.cmd(&["SET", "before", "1"]);
    let t0 = parsed(&a.cmd(&["LASTSAVE"])).integer().expect("int");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(a.cmd(&["MULTI"]), b"+OK\r\n");
    a.cmd(&["BGSAVE"]);
    a.cmd(&["SET", "inside", "1"]);
    let exec = a.cmd(&["EXEC"]);
    assert_eq!(
        show(&exec),
        show(b"*2\r\n+Background saving scheduled\r\n+OK\r\n")
    );
    let started = Instant::now();
    while parsed(&a.cmd(&["LASTSAVE"])).integer().expect("int") == t0
        || field(&mut a, "persistence", "rdb_bgsave_in_progress") != "0"
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the scheduled BGSAVE never ran"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // It ran after the whole transaction.
    let rdir = tempdir("redis-bgsave-exec-");
    std::fs::copy(dir.path().join("dump.rdb"), rdir.path().join("dump.rdb")).expect("copy");
    let redis = ServerProcess::redis(&["--dir", rdir.path().to_str().expect("path")]);
    let mut r = redis.client();
    assert_eq!(r.cmd(&["GET", "inside"]), b"$1\r\n1\r\n");
    assert_eq!(r.cmd(&["DBSIZE"]), b":2\r\n");
}
