//! `dump.rdb` both ways, against the real binaries: a file written by
//! redis-server 7.0 (`SAVE`) loads into a fresh Amber (every type in both
//! encodings, several databases, expiries, a function library) and reads
//! back as redis-server answers; with `persistence pmem` it then lives in
//! the arena and is not loaded again. Amber's `SAVE` and `BGSAVE` write a
//! file `redis-check-rdb` accepts and redis-server loads. A corrupt,
//! truncated or foreign file stops Amber's start-up with a clear message
//! (and leaves no half-loaded keyspace); a non-empty arena wins over the
//! file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use amber_tests::process::{amber_base_args, free_port, run_amber_to_exit};
use amber_tests::reply::{parse, show, Reply};
use amber_tests::tools::check_rdb;
use amber_tests::{RespClient, RestartableServer, ServerProcess};

const LIB: &str = "#!lua name=rdblib\n\
redis.register_function('answer', function(keys, args) return 42 end)\n\
redis.register_function{function_name='echo', callback=function(keys, args) return args[1] end, \
flags={'no-writes'}, description='echoes'}\n";

/// A started server in `dir` with `extra` arguments.
fn start(dir: &Path, extra: &[&str]) -> RestartableServer {
    let mut s = RestartableServer::new(dir, extra);
    s.start();
    s
}

/// A temporary directory.
fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("tempdir")
}

fn parsed(bytes: &[u8]) -> Reply {
    match parse(bytes) {
        Ok(Some((r, _))) => r,
        other => panic!("unparsable reply {}: {other:?}", show(bytes)),
    }
}

/// `FUNCTION LIST WITHCODE` with each library's functions sorted (Redis
/// lists them in its dict's order, which its hash seed decides).
fn function_list(c: &mut RespClient) -> Vec<String> {
    let libs = parsed(&c.cmd(&["FUNCTION", "LIST", "WITHCODE"]));
    let mut out: Vec<String> = libs
        .items
        .iter()
        .map(|lib| {
            let fields: Vec<String> = lib
                .items
                .chunks(2)
                .map(|kv| {
                    let name = kv[0].text();
                    if name == "functions" {
                        let mut f: Vec<String> = kv[1].items.iter().map(|f| show(&f.raw)).collect();
                        f.sort();
                        format!("functions={}", f.join(";"))
                    } else {
                        format!("{name}={}", show(&kv[1].raw))
                    }
                })
                .collect();
            fields.join(" ")
        })
        .collect();
    out.sort();
    out
}

/// Builds the data set: (db, command) pairs; every type in both of its
/// encodings, keys in databases 0, 2 and 15, deadlines.
fn fixtures() -> Vec<(usize, Vec<String>)> {
    let mut out: Vec<(usize, Vec<String>)> = Vec::new();
    let mut add = |db: usize, head: &[&str], tail: Vec<String>| {
        out.push((db, head.iter().map(|s| s.to_string()).chain(tail).collect()));
    };
    let n = |k: usize, f: &dyn Fn(usize) -> String| (0..k).map(f).collect::<Vec<_>>();
    add(0, &["SET", "str-int", "-123456"], vec![]);
    add(0, &["SET", "str-emb", "hello"], vec![]);
    add(0, &["SET", "str-raw"], vec!["x".repeat(5000)]);
    add(0, &["SET", "str-lzf"], vec!["abc".repeat(100)]);
    add(
        0,
        &["RPUSH", "list-small"],
        n(5, &|i| format!("{}", i * 1000)),
    );
    add(
        0,
        &["RPUSH", "list-big"],
        n(3000, &|i| format!("element-{i}")),
    );
    add(0, &["SADD", "set-int"], n(20, &|i| format!("{}", i * 7)));
    add(0, &["SADD", "set-big-int"], n(600, &|i| format!("{i}")));
    add(0, &["SADD", "set-str"], n(30, &|i| format!("m{i}")));
    add(
        0,
        &["ZADD", "zset-small"],
        n(10, &|i| format!("{}.5 z{i}", i))
            .join(" ")
            .split(' ')
            .map(String::from)
            .collect(),
    );
    add(
        0,
        &["ZADD", "zset-big"],
        n(300, &|i| format!("{i} member-{i}"))
            .join(" ")
            .split(' ')
            .map(String::from)
            .collect(),
    );
    add(
        0,
        &["HSET", "hash-small"],
        n(8, &|i| format!("f{i} v{i}"))
            .join(" ")
            .split(' ')
            .map(String::from)
            .collect(),
    );
    add(
        0,
        &["HSET", "hash-big"],
        n(700, &|i| format!("field{i} value{i}"))
            .join(" ")
            .split(' ')
            .map(String::from)
            .collect(),
    );
    add(0, &["SET", "ttl-str", "v", "EX", "1000"], vec![]);
    add(0, &["RPUSH", "ttl-list", "a", "b"], vec![]);
    add(0, &["EXPIRE", "ttl-list", "5000"], vec![]);
    add(2, &["SET", "db2-str", "two"], vec![]);
    add(2, &["HSET", "db2-hash", "a", "1", "b", "2"], vec![]);
    add(2, &["PEXPIRE", "db2-hash", "900000"], vec![]);
    add(15, &["ZADD", "db15-zset", "1", "a", "2", "b"], vec![]);
    add(15, &["SET", "db15-ttl", "x", "EX", "2000"], vec![]);
    // Streams: several nodes, deleted entries (one a node's first),
    // differing fields, groups with consumers and pending entries, and
    // one stream emptied of its entries.
    add(
        0,
        &["CONFIG", "SET", "stream-node-max-entries", "4"],
        vec![],
    );
    for i in 1..=11 {
        let (f, v) = (if i % 5 == 0 { "other" } else { "f" }, format!("v{i}"));
        add(
            0,
            &["XADD", "stream-nodes", &format!("{i}-{i}"), f, &v, "n", "7"],
            vec![],
        );
    }
    add(0, &["XDEL", "stream-nodes", "5-5", "6-6", "10-10"], vec![]);
    add(0, &["XGROUP", "CREATE", "stream-nodes", "g", "0"], vec![]);
    add(
        0,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "alice",
            "COUNT",
            "3",
            "STREAMS",
            "stream-nodes",
            ">",
        ],
        vec![],
    );
    add(
        0,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "bob",
            "COUNT",
            "2",
            "STREAMS",
            "stream-nodes",
            ">",
        ],
        vec![],
    );
    add(0, &["XACK", "stream-nodes", "g", "2-2"], vec![]);
    add(
        0,
        &[
            "XGROUP",
            "CREATE",
            "stream-nodes",
            "h",
            "$",
            "ENTRIESREAD",
            "11",
        ],
        vec![],
    );
    add(
        0,
        &["XGROUP", "CREATECONSUMER", "stream-nodes", "h", "carol"],
        vec![],
    );
    add(
        0,
        &["CONFIG", "SET", "stream-node-max-entries", "100"],
        vec![],
    );
    add(2, &["XADD", "db2-stream-empty", "7-1", "f", "v"], vec![]);
    add(2, &["XDEL", "db2-stream-empty", "7-1"], vec![]);
    add(
        2,
        &["XGROUP", "CREATE", "db2-stream-empty", "g", "$"],
        vec![],
    );
    out
}

/// The keys [`fixtures`] leaves, by database.
const KEYS: &[(usize, &[&str])] = &[
    (
        0,
        &[
            "str-int",
            "str-emb",
            "str-raw",
            "str-lzf",
            "list-small",
            "list-big",
            "set-int",
            "set-big-int",
            "set-str",
            "zset-small",
            "zset-big",
            "hash-small",
            "hash-big",
            "ttl-str",
            "ttl-list",
            "stream-nodes",
        ],
    ),
    (2, &["db2-str", "db2-hash", "db2-stream-empty"]),
    (15, &["db15-zset", "db15-ttl"]),
];

fn build(c: &mut RespClient) {
    for (db, cmd) in fixtures() {
        let r = c.cmd(&["SELECT", &db.to_string()]);
        assert_eq!(r, b"+OK\r\n");
        let r = c.cmd(&cmd);
        assert!(!r.starts_with(b"-"), "{cmd:?}: {}", show(&r));
    }
    let r = c.cmd(&["FUNCTION", "LOAD", LIB]);
    assert!(!r.starts_with(b"-"), "{}", show(&r));
    c.cmd(&["SELECT", "0"]);
}

/// How a key reads: type, encoding and contents (members of unordered
/// types sorted); its TTL apart.
fn view(c: &mut RespClient, db: usize, key: &str) -> (String, i64) {
    c.cmd(&["SELECT", &db.to_string()]);
    let t = parsed(&c.cmd(&["TYPE", key])).text();
    let enc = parsed(&c.cmd(&["OBJECT", "ENCODING", key])).text();
    let items = |r: Reply| -> Vec<String> { r.items.iter().map(Reply::text).collect() };
    let contents = match t.as_str() {
        "string" => vec![parsed(&c.cmd(&["GET", key])).text()],
        "list" => items(parsed(&c.cmd(&["LRANGE", key, "0", "-1"]))),
        "set" => {
            let mut m = items(parsed(&c.cmd(&["SMEMBERS", key])));
            m.sort();
            m
        }
        "zset" => items(parsed(&c.cmd(&["ZRANGE", key, "0", "-1", "WITHSCORES"]))),
        "hash" => {
            let flat = items(parsed(&c.cmd(&["HGETALL", key])));
            let mut pairs: Vec<String> = flat.chunks(2).map(|p| p.join("=")).collect();
            pairs.sort();
            pairs
        }
        // Times are the stored seen and delivery times: equal on both.
        "stream" => vec![show(&c.cmd(&["XINFO", "STREAM", key, "FULL"]))],
        "none" => vec![],
        other => panic!("unexpected type {other} for {key}"),
    };
    let ttl = parsed(&c.cmd(&["TTL", key])).integer().expect("TTL");
    c.cmd(&["SELECT", "0"]);
    (format!("{t} {enc} {}", contents.join(",")), ttl)
}

/// Every key of [`KEYS`] and the functions read the same on both.
fn assert_same_reads(expected: &mut RespClient, actual: &mut RespClient) {
    for (db, keys) in KEYS {
        for key in *keys {
            let (e, e_ttl) = view(expected, *db, key);
            let (a, a_ttl) = view(actual, *db, key);
            assert_eq!(a, e, "key {key} in db {db} (left: under test)");
            assert!(
                (a_ttl - e_ttl).abs() <= 3,
                "TTL of {key}: {a_ttl} vs {e_ttl}"
            );
        }
        actual.cmd(&["SELECT", &db.to_string()]);
        expected.cmd(&["SELECT", &db.to_string()]);
        assert_eq!(
            parsed(&actual.cmd(&["DBSIZE"])).integer(),
            parsed(&expected.cmd(&["DBSIZE"])).integer(),
            "DBSIZE of db {db}"
        );
    }
    actual.cmd(&["SELECT", "0"]);
    expected.cmd(&["SELECT", "0"]);
    let functions = function_list(expected);
    assert_eq!(functions.len(), 1, "{functions:?}");
    assert_eq!(function_list(actual), functions);
    assert_eq!(actual.cmd(&["FCALL", "answer", "0"]), b":42\r\n");
    assert_eq!(
        actual.cmd(&["FCALL_RO", "echo", "0", "hi"]),
        expected.cmd(&["FCALL_RO", "echo", "0", "hi"])
    );
}

/// An `INFO` field.
fn info_field(c: &mut RespClient, section: &str, name: &str) -> String {
    let info = parsed(&c.cmd(&["INFO", section])).text();
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in INFO {section}"))
        .trim()
        .to_string()
}

/// redis-server with the fixtures, plus a key that expires between its
/// `SAVE` and Amber's start; returns it and its `dump.rdb`.
fn redis_with_dump() -> (ServerProcess, PathBuf) {
    let redis = ServerProcess::redis(&[]);
    let mut r = redis.client();
    build(&mut r);
    assert_eq!(r.cmd(&["SET", "soon-gone", "x", "PX", "400"]), b"+OK\r\n");
    assert_eq!(r.cmd(&["SAVE"]), b"+OK\r\n");
    let file = redis.dir().join("dump.rdb");
    assert!(file.exists());
    std::thread::sleep(Duration::from_millis(600));
    (redis, file)
}

#[test]
fn redis_dump_loads_into_amber_and_stays_in_the_arena() {
    let (redis, file) = redis_with_dump();
    let dir = tempdir("amber-rdb-load-");
    std::fs::copy(&file, dir.path().join("dump.rdb")).expect("copy");
    let mut amber = start(dir.path(), &["--persistence", "pmem"]);
    let log = amber.log();
    assert!(log.contains("DB loaded from the RDB file"), "{log}");
    let (mut r, mut a) = (redis.client(), amber.client());
    assert_same_reads(&mut r, &mut a);
    // The key that expired after the SAVE was skipped, as a master does.
    assert_eq!(a.cmd(&["EXISTS", "soon-gone"]), b":0\r\n");
    let loaded: usize = KEYS.iter().map(|(_, k)| k.len()).sum();
    assert_eq!(
        info_field(&mut a, "persistence", "rdb_last_load_keys_loaded"),
        loaded.to_string()
    );
    assert_eq!(
        info_field(&mut a, "persistence", "rdb_last_load_keys_expired"),
        "1"
    );
    // A key deleted in Amber stays deleted after a crash: the arena holds
    // the data and the file is not loaded a second time.
    assert_eq!(a.cmd(&["DEL", "str-emb"]), b":1\r\n");
    assert_eq!(r.cmd(&["DEL", "str-emb"]), b":1\r\n");
    drop(a);
    amber.kill9();
    amber.start();
    let mut a = amber.client();
    assert_eq!(a.cmd(&["EXISTS", "str-emb"]), b":0\r\n");
    assert_same_reads(&mut r, &mut a);
    assert_eq!(
        info_field(&mut a, "persistence", "rdb_last_load_keys_loaded"),
        "0"
    );
    let log = amber.log();
    assert_eq!(
        log.matches("DB loaded from the RDB file").count(),
        1,
        "{log}"
    );
    assert!(log.contains("the RDB file is ignored"), "{log}");
}

#[test]
fn amber_save_is_accepted_by_redis_check_rdb_and_loads_into_redis() {
    // No hot tier: every value is read from the arena for the file.
    let dir = tempdir("amber-rdb-save-");
    let amber = start(dir.path(), &["--persistence", "pmem", "--dram-budget", "0"]);
    let mut a = amber.client();
    build(&mut a);
    let before = parsed(&a.cmd(&["LASTSAVE"])).integer().expect("int");
    assert_eq!(a.cmd(&["SAVE"]), b"+OK\r\n");
    let file = dir.path().join("dump.rdb");
    check_rdb(&file);
    assert!(parsed(&a.cmd(&["LASTSAVE"])).integer().expect("int") >= before);
    let rdir = tempdir("redis-rdb-load-");
    std::fs::copy(&file, rdir.path().join("dump.rdb")).expect("copy");
    let redis = ServerProcess::redis(&["--dir", rdir.path().to_str().expect("path")]);
    let mut r = redis.client();
    assert_same_reads(&mut a, &mut r);
    // And back: the file Amber wrote loads into a fresh Amber too.
    let dir2 = tempdir("amber-rdb-reload-");
    std::fs::copy(&file, dir2.path().join("dump.rdb")).expect("copy");
    let amber2 = start(dir2.path(), &["--persistence", "none"]);
    let mut a2 = amber2.client();
    assert_same_reads(&mut r, &mut a2);
}

/// Waits until no `BGSAVE` runs.
fn wait_bgsave(c: &mut RespClient) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while info_field(c, "persistence", "rdb_bgsave_in_progress") != "0" {
        assert!(Instant::now() < deadline, "BGSAVE never finished");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn bgsave_writes_a_loadable_file_and_refuses_a_second_one_meanwhile() {
    let dir = tempdir("amber-rdb-bgsave-");
    // 100 keys at 20 ms each: a save that lasts about two seconds.
    let amber = start(dir.path(), &["--rdb-key-save-delay", "20000"]);
    let mut a = amber.client();
    for i in 0..100 {
        a.cmd(&["SET", &format!("k{i}"), &format!("v{i}")]);
    }
    let t0 = parsed(&a.cmd(&["LASTSAVE"])).integer().expect("int");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(a.cmd(&["BGSAVE"]), b"+Background saving started\r\n");
    let second = a.cmd(&["BGSAVE"]);
    assert_eq!(
        show(&second),
        show(b"-ERR Background save already in progress\r\n")
    );
    // LASTSAVE answers while the save runs.
    assert_eq!(parsed(&a.cmd(&["LASTSAVE"])).integer(), Some(t0));
    wait_bgsave(&mut a);
    assert!(parsed(&a.cmd(&["LASTSAVE"])).integer().expect("int") > t0);
    assert_eq!(
        info_field(&mut a, "persistence", "rdb_last_bgsave_status"),
        "ok"
    );
    let file = dir.path().join("dump.rdb");
    check_rdb(&file);
    let rdir = tempdir("redis-rdb-bg-");
    std::fs::copy(&file, rdir.path().join("dump.rdb")).expect("copy");
    let redis = ServerProcess::redis(&["--dir", rdir.path().to_str().expect("path")]);
    let mut r = redis.client();
    assert_eq!(r.cmd(&["DBSIZE"]), b":100\r\n");
    assert_eq!(r.cmd(&["GET", "k42"]), b"$3\r\nv42\r\n");
}

/// Starts Amber on `dir` expecting it to refuse; returns its output.
fn refused_start(dir: &Path) -> String {
    let port = free_port();
    let args = amber_base_args(port, dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_amber_to_exit(&args, dir, Duration::from_secs(60)).expect("exits");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "exit status; output:\n{all}");
    assert!(!all.contains("panicked"), "{all}");
    all
}

#[test]
fn corrupt_truncated_or_foreign_files_stop_startup() {
    let (_redis, file) = redis_with_dump();
    let good = std::fs::read(&file).expect("read");
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    let truncated = good[..good.len() - 300].to_vec();
    let mut magic = good.clone();
    magic[..5].copy_from_slice(b"RODIS");
    let mut version = good.clone();
    version[5..9].copy_from_slice(b"0011");
    let cases: [(&str, Vec<u8>, &[&str]); 4] = [
        ("flipped", flipped, &["Wrong RDB checksum"]),
        ("truncated", truncated, &["truncated", "Short read"]),
        ("magic", magic, &["Wrong signature"]),
        ("version", version, &["Can't handle RDB format version 11"]),
    ];
    for (name, bytes, wanted) in cases {
        let dir = tempdir("amber-rdb-bad-");
        let path = dir.path().join("dump.rdb");
        std::fs::write(&path, &bytes).expect("write");
        let out = refused_start(dir.path());
        assert!(
            out.contains(&path.display().to_string()),
            "{name}: the message names the file:\n{out}"
        );
        assert!(
            wanted.iter().any(|w| out.contains(w)),
            "{name}: wanted one of {wanted:?}:\n{out}"
        );
        // Nothing half-loaded stays in the arena: without the file the
        // server starts empty.
        std::fs::remove_file(&path).expect("remove");
        let amber = start(dir.path(), &["--persistence", "pmem"]);
        let mut a = amber.client();
        for db in [0, 2, 15] {
            a.cmd(&["SELECT", &db.to_string()]);
            assert_eq!(a.cmd(&["DBSIZE"]), b":0\r\n", "{name}: db {db}");
        }
        assert_eq!(a.cmd(&["FUNCTION", "LIST"]), b"*0\r\n", "{name}");
        // Rolled back by the failed start itself, not by this one.
        let log = amber.log();
        assert!(!log.contains("cut short"), "{name}: {log}");
    }
}

#[test]
fn a_non_empty_arena_wins_over_the_file() {
    let dir = tempdir("amber-rdb-arena-");
    let mut amber = start(dir.path(), &["--persistence", "pmem"]);
    let mut a = amber.client();
    assert_eq!(a.cmd(&["SET", "mine", "arena"]), b"+OK\r\n");
    drop(a);
    let (_redis, file) = redis_with_dump();
    std::fs::copy(&file, dir.path().join("dump.rdb")).expect("copy");
    amber.kill9();
    amber.start();
    let mut a = amber.client();
    assert_eq!(a.cmd(&["GET", "mine"]), b"$5\r\narena\r\n");
    assert_eq!(a.cmd(&["DBSIZE"]), b":1\r\n");
    assert_eq!(a.cmd(&["EXISTS", "str-int"]), b":0\r\n");
    assert_eq!(a.cmd(&["FUNCTION", "LIST"]), b"*0\r\n");
    let log = amber.log();
    assert!(
        log.contains("the arena wins, the RDB file is ignored"),
        "{log}"
    );
    assert!(!log.contains("DB loaded from the RDB file"), "{log}");
}

#[test]
fn text_of_refusals_is_not_a_panic_for_module_data() {
    // A file with MODULE_AUX (opcode 247) after the header.
    let dir = tempdir("amber-rdb-module-");
    let mut d = b"REDIS0010".to_vec();
    d.extend_from_slice(&[247, 0x81, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0xff]);
    d.extend_from_slice(&[0; 8]);
    std::fs::write(dir.path().join("dump.rdb"), &d).expect("write");
    let out = refused_start(dir.path());
    assert!(out.contains("module data"), "{out}");
}

#[test]
fn without_pmem_the_file_survives_a_restart_as_in_redis() {
    // `save` points (Redis's default) and no arena persistence: SIGTERM
    // writes dump.rdb, the next start loads it.
    let dir = tempdir("amber-rdb-none-");
    let mut amber = start(dir.path(), &["--persistence", "none"]);
    let mut a = amber.client();
    assert_eq!(a.cmd(&["SET", "kept", "yes", "EX", "1000"]), b"+OK\r\n");
    drop(a);
    amber.terminate();
    assert!(dir.path().join("dump.rdb").exists(), "{}", amber.log());
    amber.start();
    let mut a = amber.client();
    assert_eq!(a.cmd(&["GET", "kept"]), b"$3\r\nyes\r\n");
    let ttl = parsed(&a.cmd(&["TTL", "kept"])).integer().expect("int");
    assert!((990..=1000).contains(&ttl), "{ttl}");
    // With `--save ""` nothing is written.
    let dir2 = tempdir("amber-rdb-nosave-");
    let mut amber2 = start(dir2.path(), &["--persistence", "none", "--save", ""]);
    amber2.client().cmd(&["SET", "k", "v"]);
    amber2.terminate();
    assert!(!dir2.path().join("dump.rdb").exists());
}
