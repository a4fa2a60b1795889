//! Function libraries survive restarts, against the real binary: with
//! `persistence pmem` an acknowledged `FUNCTION LOAD`, `DELETE`, `FLUSH` or
//! `RESTORE` is found after `kill -9` (arena scan) and after `SHUTDOWN`
//! (index checkpoint); `FLUSHALL`, `FLUSHDB` and `SWAPDB` leave functions
//! alone, and no key command sees them; a full arena answers `-OOM` and
//! keeps the previous libraries; `INFO memory` counts functions and
//! libraries as redis-server does; with `persistence none` nothing is kept.

use std::path::Path;

use amber_tests::{RespClient, RestartableServer, ServerProcess};

const LIB1: &str = "#!lua name=lib1\n\
redis.register_function('one', function(keys, args) return 1 end)\n\
redis.register_function{function_name='echo', callback=function(keys, args) return args[1] end, \
flags={'no-writes'}, description='echoes'}\n";

const LIB2: &str = "#!lua name=lib2\n\
redis.register_function('setk', function(keys, args) return redis.call('set', keys[1], args[1]) end)\n";

const LIB2_V2: &str = "#!lua name=lib2\n\
redis.register_function('two', function(keys, args) return 2 end)\n";

/// A started server in `dir` with `extra` arguments.
fn start(dir: &Path, extra: &[&str]) -> RestartableServer {
    let mut s = RestartableServer::new(dir, extra);
    s.start();
    s
}

/// SIGKILL, then start again on the same arena.
fn kill9_restart(s: &mut RestartableServer) {
    s.kill9();
    s.start();
}

/// `SHUTDOWN` (a clean stop: index checkpoint), then start again.
fn shutdown_restart(s: &mut RestartableServer) {
    s.shutdown();
    s.start();
}

fn pmem(dir: &Path) -> RestartableServer {
    start(dir, &["--persistence", "pmem"])
}

/// The raw reply, as text.
fn cmd(c: &mut RespClient, args: &[&str]) -> String {
    String::from_utf8_lossy(&c.cmd(args)).into_owned()
}

fn list(c: &mut RespClient) -> String {
    cmd(c, &["FUNCTION", "LIST", "WITHCODE"])
}

/// `INFO memory`'s `number_of_functions` and `number_of_libraries`.
fn counts(c: &mut RespClient) -> (u64, u64) {
    let info = String::from_utf8_lossy(&c.cmd(&["INFO", "memory"])).into_owned();
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .unwrap_or_else(|| panic!("no {name} in INFO memory"))
            .trim()
            .parse::<u64>()
            .expect("a number")
    };
    (field("number_of_functions"), field("number_of_libraries"))
}

#[test]
fn loaded_functions_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = pmem(dir.path());
    let mut c = s.client();
    assert_eq!(cmd(&mut c, &["FUNCTION", "LOAD", LIB1]), "$4\r\nlib1\r\n");
    assert_eq!(cmd(&mut c, &["FUNCTION", "LOAD", LIB2]), "$4\r\nlib2\r\n");
    assert_eq!(cmd(&mut c, &["FCALL", "setk", "1", "k", "v"]), "+OK\r\n");
    let before = list(&mut c);
    assert!(before.contains("echoes"), "{before}");
    assert_eq!(counts(&mut c), (3, 2));
    drop(c);

    kill9_restart(&mut s);
    let mut c = s.client();
    assert_eq!(list(&mut c), before);
    assert_eq!(cmd(&mut c, &["FCALL", "one", "0"]), ":1\r\n");
    assert_eq!(
        cmd(&mut c, &["FCALL_RO", "echo", "0", "hi"]),
        "$2\r\nhi\r\n"
    );
    assert_eq!(cmd(&mut c, &["FCALL", "setk", "1", "k2", "v2"]), "+OK\r\n");
    assert_eq!(cmd(&mut c, &["GET", "k"]), "$1\r\nv\r\n");
    assert_eq!(counts(&mut c), (3, 2));
    // Loaded again after the restart: they are there, so no REPLACE, no load.
    assert!(cmd(&mut c, &["FUNCTION", "LOAD", LIB1]).contains("already exists"));
    assert!(s
        .log()
        .contains("loaded the function libraries saved in the arena"));
}

#[test]
fn delete_flush_restore_and_replace_persist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = pmem(dir.path());
    let mut c = s.client();
    cmd(&mut c, &["FUNCTION", "LOAD", LIB1]);
    cmd(&mut c, &["FUNCTION", "LOAD", LIB2]);
    let dump = c.cmd(&["FUNCTION", "DUMP"]);
    let (reply, _) = amber_tests::reply::parse(&dump)
        .expect("reply")
        .expect("complete");
    let payload = reply.data.expect("bulk");
    let both = list(&mut c);
    assert_eq!(cmd(&mut c, &["FUNCTION", "DELETE", "lib1"]), "+OK\r\n");
    let only2 = list(&mut c);
    drop(c);

    kill9_restart(&mut s);
    let mut c = s.client();
    assert_eq!(list(&mut c), only2, "FUNCTION DELETE lost");
    assert!(cmd(&mut c, &["FCALL", "one", "0"]).contains("Function not found"));
    assert_eq!(cmd(&mut c, &["FUNCTION", "FLUSH"]), "+OK\r\n");
    drop(c);

    kill9_restart(&mut s);
    let mut c = s.client();
    assert_eq!(list(&mut c), "*0\r\n", "FUNCTION FLUSH lost");
    assert_eq!(counts(&mut c), (0, 0));
    let restore: [&[u8]; 3] = [b"FUNCTION", b"RESTORE", &payload];
    assert_eq!(c.cmd(&restore), b"+OK\r\n");
    drop(c);

    kill9_restart(&mut s);
    let mut c = s.client();
    assert_eq!(list(&mut c), both, "FUNCTION RESTORE lost");
    assert_eq!(
        cmd(&mut c, &["FUNCTION", "LOAD", "REPLACE", LIB2_V2]),
        "$4\r\nlib2\r\n"
    );
    drop(c);

    kill9_restart(&mut s);
    let mut c = s.client();
    assert_eq!(cmd(&mut c, &["FCALL", "two", "0"]), ":2\r\n");
    assert!(cmd(&mut c, &["FCALL", "setk", "1", "k", "v"]).contains("Function not found"));
    assert_eq!(counts(&mut c), (3, 2));
}

#[test]
fn flushall_flushdb_and_swapdb_keep_functions_and_keys_never_see_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = pmem(dir.path());
    let mut c = s.client();
    cmd(&mut c, &["FUNCTION", "LOAD", LIB1]);
    cmd(&mut c, &["SET", "a", "1"]);
    assert_eq!(cmd(&mut c, &["FLUSHALL"]), "+OK\r\n");
    assert_eq!(cmd(&mut c, &["FLUSHDB"]), "+OK\r\n");
    assert_eq!(cmd(&mut c, &["SWAPDB", "0", "1"]), "+OK\r\n");
    assert_eq!(cmd(&mut c, &["FLUSHALL", "ASYNC"]), "+OK\r\n");
    let before = list(&mut c);
    assert!(before.contains("lib1"), "{before}");
    drop(c);

    kill9_restart(&mut s);
    let mut c = s.client();
    assert_eq!(list(&mut c), before);
    for db in ["0", "1", "15"] {
        assert_eq!(cmd(&mut c, &["SELECT", db]), "+OK\r\n");
        assert_eq!(cmd(&mut c, &["DBSIZE"]), ":0\r\n", "db {db}");
        assert_eq!(cmd(&mut c, &["KEYS", "*"]), "*0\r\n", "db {db}");
        assert_eq!(cmd(&mut c, &["RANDOMKEY"]), "$-1\r\n", "db {db}");
        assert_eq!(
            cmd(&mut c, &["SCAN", "0", "COUNT", "1000"]),
            "*2\r\n$1\r\n0\r\n*0\r\n",
            "db {db}"
        );
    }
    let keyspace = String::from_utf8_lossy(&c.cmd(&["INFO", "keyspace"])).into_owned();
    assert!(!keyspace.contains("keys="), "{keyspace}");
}

#[test]
fn functions_survive_a_clean_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = pmem(dir.path());
    let mut c = s.client();
    cmd(&mut c, &["FUNCTION", "LOAD", LIB1]);
    cmd(&mut c, &["SET", "k", "v"]);
    let before = list(&mut c);
    drop(c);
    shutdown_restart(&mut s);
    assert!(
        s.log().contains("no arena scan"),
        "the restart did not use the index checkpoint:\n{}",
        s.log()
    );
    let mut c = s.client();
    assert_eq!(list(&mut c), before);
    assert_eq!(cmd(&mut c, &["FCALL", "one", "0"]), ":1\r\n");
    assert_eq!(cmd(&mut c, &["GET", "k"]), "$1\r\nv\r\n");
    // And once more, changed after that restart.
    cmd(&mut c, &["FUNCTION", "LOAD", LIB2]);
    let two = list(&mut c);
    drop(c);
    shutdown_restart(&mut s);
    let mut c = s.client();
    assert_eq!(list(&mut c), two);
}

#[test]
fn a_full_arena_answers_oom_and_keeps_the_previous_libraries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = start(
        dir.path(),
        &[
            "--persistence",
            "pmem",
            "--pmem-size",
            "32mb",
            "--dram-budget",
            "0",
        ],
    );
    let mut c = s.client();
    cmd(&mut c, &["FUNCTION", "LOAD", LIB1]);
    let before = list(&mut c);
    let value = "v".repeat(200_000);
    let mut full = false;
    for i in 0..1000 {
        let r = cmd(&mut c, &["SET", &format!("fill:{i}"), &value]);
        if r.starts_with("-OOM") {
            full = true;
            break;
        }
    }
    assert!(full, "the arena never filled");
    // A library larger than a segment's free space.
    let big = format!(
        "#!lua name=big\n-- {}\nredis.register_function('big', function() return 1 end)\n",
        "x".repeat(6 << 20)
    );
    let r = cmd(&mut c, &["FUNCTION", "LOAD", &big]);
    assert!(r.starts_with("-OOM"), "{r}");
    assert_eq!(list(&mut c), before);
    assert_eq!(counts(&mut c), (2, 1));
    drop(c);
    kill9_restart(&mut s);
    let mut c = s.client();
    assert_eq!(list(&mut c), before);
}

#[test]
fn info_memory_counts_functions_as_redis_does() {
    let amber = ServerProcess::amber(&[]);
    let redis = ServerProcess::redis(&[]);
    for server in [&amber, &redis] {
        let mut c = server.client();
        assert_eq!(counts(&mut c), (0, 0), "{}", server.kind.name());
        cmd(&mut c, &["FUNCTION", "LOAD", LIB1]);
        cmd(&mut c, &["FUNCTION", "LOAD", LIB2]);
        assert_eq!(counts(&mut c), (3, 2), "{}", server.kind.name());
        cmd(&mut c, &["FUNCTION", "DELETE", "lib1"]);
        assert_eq!(counts(&mut c), (1, 1), "{}", server.kind.name());
        cmd(&mut c, &["FLUSHALL"]);
        assert_eq!(counts(&mut c), (1, 1), "{}", server.kind.name());
        cmd(&mut c, &["FUNCTION", "FLUSH"]);
        assert_eq!(counts(&mut c), (0, 0), "{}", server.kind.name());
    }
}

#[test]
fn with_persistence_none_functions_live_in_dram_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = start(dir.path(), &["--persistence", "none"]);
    let mut c = s.client();
    assert_eq!(cmd(&mut c, &["FUNCTION", "LOAD", LIB1]), "$4\r\nlib1\r\n");
    assert_eq!(cmd(&mut c, &["FCALL", "one", "0"]), ":1\r\n");
    drop(c);
    kill9_restart(&mut s);
    let mut c = s.client();
    assert_eq!(list(&mut c), "*0\r\n");
}
