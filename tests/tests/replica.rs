//! Amber as a replica of a real redis-server 7.0 master (`REPLICAOF`), the
//! live-migration path: the full sync brings every key, type, database,
//! expiry and function library; live writes of the master follow; normal
//! clients' writes get Redis's `-READONLY`; `ROLE` and `INFO replication`
//! read as a real redis-server replica of the same master; a master
//! restart is followed by a new full sync; `REPLICAOF NO ONE` keeps the
//! data (across `kill -9` with `persistence pmem`) and allows writes.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use amber_tests::process::free_port;
use amber_tests::replication::{
    assert_same_data, dataset, field, flat, info, parsed, q, wait_failed_over, wait_synced,
    wait_until,
};
use amber_tests::reply;
use amber_tests::{RespClient, RestartableServer, ServerProcess};

const REDIS_SERVER: &str = "/usr/bin/redis-server";

const LIB: &str = "#!lua name=replib\n\
redis.register_function('setk', function(keys, args) return redis.call('set', keys[1], args[1]) end)\n\
redis.register_function{function_name='getk', callback=function(keys, args) return redis.call('get', keys[1]) end, flags={'no-writes'}}\n";

/// A redis-server master on a fixed port, which a test kills and starts
/// again on the same port.
struct Master {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    extra: Vec<String>,
}

impl Master {
    fn start(extra: &[&str]) -> Master {
        let mut m = Master {
            port: free_port(),
            dir: tempfile::tempdir().expect("tempdir"),
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        m.restart();
        m
    }

    /// Starts it (again) on its port, without persistence: it comes back empty.
    fn restart(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("redis.log")).expect("log");
        let child = Command::new(REDIS_SERVER)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--repl-diskless-sync-delay", "0"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        wait_until("the master answers", Duration::from_secs(20), || {
            RespClient::connect(self.port).is_ok_and(|mut c| {
                c.try_cmd(&["PING"])
                    .is_ok_and(|r| r.starts_with(b"+PONG") || r.starts_with(b"-NOAUTH"))
            })
        });
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn client(&self) -> RespClient {
        let c = RespClient::connect(self.port).expect("connect to the master");
        c.set_timeout(Duration::from_secs(30));
        c
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Prints a server's log when the test fails.
struct LogOnPanic<'a>(&'a ServerProcess);

impl Drop for LogOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("server log:\n{}", self.0.log_text());
        }
    }
}

/// Data of every type the RDB codec reads, in several databases, with
/// expiries and a function library.
fn fill(m: &mut RespClient) {
    for cmd in [
        "SET s1 hello",
        "SET n1 12345",
        "SET big 0123456789012345678901234567890123456789012345678901234567890123456789",
        "SET ttl1 v EX 500",
        "SETBIT bits 100 1",
        "PFADD hll a b c d",
        "RPUSH l1 a b c 1 2 3",
        "SADD si 1 2 3 4",
        "SADD ss a b c",
        "ZADD z1 1 a 2.5 b -3 c",
        "HSET h1 f1 v1 f2 v2",
        "GEOADD geo 13.361389 38.115556 Palermo",
        "XADD st0 1-1 f v",
        "XADD st0 2-1 f w g x",
        "XGROUP CREATE st0 grp 0",
        "XREADGROUP GROUP grp alice COUNT 1 STREAMS st0 >",
        "PEXPIRE l1 400000",
        "SELECT 2",
        "SET s2 in-db-2",
        "HSET h2 a 1",
        "EXPIRE h2 900",
        "SELECT 3",
        "LPUSH l3 x y",
        "SET gone v",
        "SELECT 0",
    ] {
        let r = m.cmd_str(cmd);
        assert!(!r.starts_with(b"-"), "{cmd}: {}", reply::show(&r));
    }
    // A big list and hash (not listpack-encoded on the master).
    let mut args: Vec<String> = vec!["RPUSH".into(), "biglist".into()];
    args.extend((0..300).map(|i| format!("element-{i}")));
    m.cmd(&args);
    let mut args: Vec<String> = vec!["HSET".into(), "bighash".into()];
    args.extend((0..300).flat_map(|i| [format!("f{i}"), format!("v{i}")]));
    m.cmd(&args);
    let r = m.cmd(&["FUNCTION", "LOAD", LIB]);
    assert_eq!(r, b"$6\r\nreplib\r\n");
}

/// Writes of every kind, as the master sends them to its replicas.
fn live_writes(m: &mut RespClient) {
    for cmd in [
        "SET live 1",
        "INCR n1",
        "LPUSH l1 front",
        "HSET h1 f3 v3",
        "ZADD z1 10 d",
        "XADD stream 1-1 field value",
        "XADD stream 2-0 f2 v2",
        "EXPIRE s1 600",
        "DEL ss",
        "SADD si 99",
        "SET vanishing x PX 1",
    ] {
        let r = m.cmd_str(cmd);
        assert!(!r.starts_with(b"-"), "{cmd}: {}", reply::show(&r));
    }
    m.cmd_str("MULTI");
    m.cmd_str("SET tx1 a");
    m.cmd_str("INCRBY tx2 5");
    assert_eq!(m.cmd_str("EXEC"), b"*2\r\n+OK\r\n:5\r\n");
    let r = m.cmd(&[
        "EVAL",
        "redis.call('set', KEYS[1], ARGV[1]); return redis.call('rpush', KEYS[2], ARGV[1])",
        "2",
        "evk",
        "evl",
        "from-lua",
    ]);
    assert_eq!(r, b":1\r\n");
    assert_eq!(m.cmd(&["FCALL", "setk", "1", "fk", "fv"]), b"+OK\r\n");
    // Another database, then a flush of a third.
    m.cmd_str("SELECT 5");
    assert_eq!(m.cmd_str("SET in5 five"), b"+OK\r\n");
    m.cmd_str("SELECT 3");
    assert_eq!(m.cmd_str("FLUSHDB"), b"+OK\r\n");
    m.cmd_str("SELECT 0");
}

#[test]
fn full_sync_of_every_type_then_live_writes() {
    let master = Master::start(&[]);
    let mut m = master.client();
    fill(&mut m);
    let amber = ServerProcess::amber(&[]);
    let mut a = amber.client();
    // Some data of its own, which the full sync replaces.
    a.cmd_str("SET mine 1");
    a.cmd(&[
        "FUNCTION",
        "LOAD",
        "#!lua name=own\nredis.register_function('own', function() return 1 end)",
    ]);
    let port = master.port.to_string();
    assert_eq!(a.cmd(&["REPLICAOF", "127.0.0.1", &port]), b"+OK\r\n");
    wait_synced(&mut m, &mut a);
    assert_same_data(&dataset(&mut m), &dataset(&mut a));
    // The same library (Redis lists a library's functions in hash order).
    let mut theirs = flat(&q(&mut m, &["FUNCTION", "LIST", "WITHCODE"]));
    let mut ours = flat(&q(&mut a, &["FUNCTION", "LIST", "WITHCODE"]));
    theirs.sort();
    ours.sort();
    assert_eq!(ours, theirs, "function libraries");
    assert_eq!(a.cmd_str("FCALL getk 1 s1"), b"$5\r\nhello\r\n");
    // The stream's consumer group and its pending entry came along.
    assert_eq!(a.cmd_str("XPENDING st0 grp"), m.cmd_str("XPENDING st0 grp"));
    // A client blocked on the replica is woken by the master's write
    // (XREAD: BLPOP is a write, refused on a read-only replica).
    let mut blocked = amber.client();
    blocked
        .send(&["XREAD", "BLOCK", "10000", "STREAMS", "wakeme", "$"])
        .expect("send");
    wait_until("BLPOP blocks", Duration::from_secs(10), || {
        field(&mut a, "clients", "blocked_clients") == "1"
    });
    live_writes(&mut m);
    m.cmd_str("XADD wakeme 5-0 f hello");
    let woken = flat(&parsed(&blocked.read_reply().expect("XREAD reply")));
    assert_eq!(woken, [&b"wakeme"[..], b"5-0", b"f", b"hello"]);
    wait_synced(&mut m, &mut a);
    let ours = dataset(&mut a);
    assert_same_data(&dataset(&mut m), &ours);
    assert!(ours.contains_key(&(5, b"in5".to_vec())));
    // The master sees Amber on its listening port, online; `WAIT` is
    // answered at once through `REPLCONF GETACK` (not the 1 s ACKs).
    let slave0 = field(&mut m, "replication", "slave0");
    assert!(
        slave0.starts_with(&format!("ip=127.0.0.1,port={},state=online,", amber.port)),
        "{slave0}"
    );
    for i in 0..5 {
        m.cmd(&["SET", "acked", &i.to_string()]);
        let started = Instant::now();
        assert_eq!(m.cmd_str("WAIT 1 5000"), b":1\r\n");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "WAIT took {:?}",
            started.elapsed()
        );
    }
    assert!(!ours.keys().any(|(db, _)| *db == 3), "FLUSHDB of db 3");
    assert!(!ours.contains_key(&(0, b"mine".to_vec())));
    // The stream's IDs came as the master's (XADD is replicated with its ID).
    assert_eq!(
        a.cmd_str("XLEN stream"),
        b":2\r\n",
        "live XADD reached the replica"
    );
}

/// The replies a normal client gets from a replica, for `replica`.
fn replica_replies(c: &mut RespClient, master_port: u16) -> Vec<String> {
    let port = master_port.to_string();
    let mut out = Vec::new();
    let mut show = |r: Vec<u8>| out.push(reply::show(&r));
    show(c.cmd_str("SET k v"));
    show(c.cmd_str("INCR counter"));
    show(c.cmd_str("DEL live"));
    show(c.cmd_str("GET s1"));
    show(c.cmd_str("PUBLISH chan msg"));
    show(c.cmd_str("BLPOP somelist 1"));
    show(c.cmd(&["EVAL", "return redis.call('set', 'x', 'y')", "0"]));
    show(c.cmd(&["EVAL", "return redis.call('get', 's1')", "0"]));
    show(c.cmd(&["EVAL", "#!lua\nreturn 1", "0"]));
    show(c.cmd(&["EVAL", "#!lua flags=no-writes\nreturn 1", "0"]));
    show(c.cmd(&["FCALL", "setk", "1", "a", "b"]));
    show(c.cmd(&["FCALL", "getk", "1", "s1"]));
    show(c.cmd_str("MULTI"));
    show(c.cmd_str("SET a b"));
    show(c.cmd_str("GET a"));
    show(c.cmd_str("EXEC"));
    show(c.cmd(&["REPLICAOF", "127.0.0.1", "abc"]));
    show(c.cmd(&["REPLICAOF", "127.0.0.1", "70000"]));
    show(c.cmd(&["REPLICAOF", "127.0.0.1", "-1"]));
    show(c.cmd(&["SLAVEOF", "127.0.0.1"]));
    show(c.cmd(&["REPLICAOF", "127.0.0.1", &port]));
    show(c.cmd(&["CONFIG", "SET", "replicaof", "no one"]));
    show(c.cmd(&["CONFIG", "GET", "replicaof"]));
    out
}

/// `INFO replication` with the fields that depend on timing or on when
/// each replica synced normalised.
fn normalised_replication(c: &mut RespClient) -> Vec<(String, String)> {
    info(c, "replication")
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "master_last_io_seconds_ago" if v != "-1" => (k, "<secs>".into()),
            "master_link_down_since_seconds" if v != "-1" => (k, "<secs>".into()),
            "repl_backlog_first_byte_offset" | "repl_backlog_histlen" => (k, "<n>".into()),
            _ => (k, v),
        })
        .collect()
}

#[test]
fn readonly_role_and_info_match_a_redis_replica() {
    // A master with a password: both replicas use `masterauth`, and are
    // started with the `replicaof` directive.
    let master = Master::start(&["--requirepass", "s3cret"]);
    let mut m = master.client();
    assert_eq!(m.cmd_str("AUTH s3cret"), b"+OK\r\n");
    fill(&mut m);
    let port = master.port.to_string();
    let common = ["--replicaof", "127.0.0.1", &port, "--masterauth", "s3cret"];
    let redis = ServerProcess::redis(&common);
    let amber = ServerProcess::amber(&common);
    let (mut r, mut a) = (redis.client(), amber.client());
    wait_synced(&mut m, &mut r);
    wait_synced(&mut m, &mut a);
    live_writes(&mut m);
    wait_synced(&mut m, &mut r);
    wait_synced(&mut m, &mut a);
    assert_same_data(&dataset(&mut r), &dataset(&mut a));
    assert_eq!(
        replica_replies(&mut a, master.port),
        replica_replies(&mut r, master.port)
    );
    wait_synced(&mut m, &mut r);
    wait_synced(&mut m, &mut a);
    assert_eq!(a.cmd_str("ROLE"), r.cmd_str("ROLE"));
    assert_eq!(
        normalised_replication(&mut a),
        normalised_replication(&mut r)
    );
    // `CONFIG SET masterauth` is allowed, as in Redis.
    assert_eq!(
        a.cmd_str("CONFIG SET masterauth s3cret"),
        r.cmd_str("CONFIG SET masterauth s3cret")
    );
}

#[test]
fn master_restart_is_followed_by_a_new_full_sync() {
    let mut master = Master::start(&[]);
    let mut m = master.client();
    fill(&mut m);
    let port = master.port.to_string();
    let replica_of = ["--replicaof", "127.0.0.1", &port];
    let redis = ServerProcess::redis(&replica_of);
    let amber = ServerProcess::amber(&[]);
    let _log = LogOnPanic(&amber);
    let (mut r, mut a) = (redis.client(), amber.client());
    assert_eq!(a.cmd(&["REPLICAOF", "127.0.0.1", &port]), b"+OK\r\n");
    wait_synced(&mut m, &mut r);
    wait_synced(&mut m, &mut a);
    drop(m);
    master.kill();
    for c in [&mut r, &mut a] {
        wait_until("the link is down", Duration::from_secs(10), || {
            field(c, "replication", "master_link_status") == "down"
        });
    }
    // Both retry every second: ROLE says `connect` (or `connecting`
    // during an attempt), with offset -1.
    wait_until("ROLE connect", Duration::from_secs(10), || {
        let role = a.cmd_str("ROLE");
        role.windows(7).any(|w| w == b"connect") && role.ends_with(b":-1\r\n")
    });
    let amber_role = a.cmd_str("ROLE");
    let redis_role = r.cmd_str("ROLE");
    assert!(
        amber_role == redis_role
            || reply::show(&redis_role).contains("connecting")
            || reply::show(&amber_role).contains("connecting"),
        "{} vs {}",
        reply::show(&amber_role),
        reply::show(&redis_role)
    );
    let down = |c: &mut RespClient| {
        normalised_replication(c)
            .into_iter()
            .map(|(k, v)| match k.as_str() {
                "master_link_down_since_seconds" => (k, "<secs>".into()),
                _ => (k, v),
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(down(&mut a), down(&mut r));
    // The master comes back empty, with other data: a full sync replaces
    // the replica's data.
    master.restart();
    let mut m = master.client();
    m.cmd_str("SET after-restart 1");
    m.cmd_str("SELECT 4");
    m.cmd_str("RPUSH l4 a b");
    m.cmd_str("SELECT 0");
    wait_synced(&mut m, &mut a);
    let ours = dataset(&mut a);
    assert_same_data(&dataset(&mut m), &ours);
    assert!(!ours.contains_key(&(0, b"s1".to_vec())), "old data is gone");
    m.cmd_str("INCR after-restart");
    wait_synced(&mut m, &mut a);
    assert_eq!(a.cmd_str("GET after-restart"), b"$1\r\n2\r\n");
}

fn start_restartable(dir: &Path) -> RestartableServer {
    let mut s = RestartableServer::new(dir, &["--persistence", "pmem"]);
    s.start();
    s
}

#[test]
fn replicaof_no_one_keeps_the_data_and_allows_writes_across_kill9() {
    let master = Master::start(&[]);
    let mut m = master.client();
    fill(&mut m);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut amber = start_restartable(dir.path());
    let mut a = amber.client();
    let port = master.port.to_string();
    assert_eq!(a.cmd(&["SLAVEOF", "127.0.0.1", &port]), b"+OK\r\n");
    wait_synced(&mut m, &mut a);
    live_writes(&mut m);
    wait_synced(&mut m, &mut a);
    let expected = dataset(&mut m);
    assert_eq!(
        a.cmd_str("SET refused 1"),
        b"-READONLY You can't write against a read only replica.\r\n"
    );
    let processed = field(&mut a, "replication", "slave_repl_offset");
    assert_eq!(a.cmd_str("REPLICAOF NO ONE"), b"+OK\r\n");
    // As Redis: the promoted replica's stream continues its master's.
    assert_eq!(
        a.cmd_str("ROLE"),
        format!("*3\r\n$6\r\nmaster\r\n:{processed}\r\n*0\r\n").into_bytes()
    );
    assert_eq!(field(&mut a, "replication", "role"), "master");
    assert_eq!(
        a.cmd_str("CONFIG GET replicaof"),
        b"*2\r\n$9\r\nreplicaof\r\n$0\r\n\r\n"
    );
    assert_eq!(a.cmd_str("SET promoted yes"), b"+OK\r\n");
    // The master's writes no longer arrive.
    m.cmd_str("SET after-promotion 1");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(a.cmd_str("EXISTS after-promotion"), b":0\r\n");
    assert_eq!(a.cmd_str("REPLICAOF NO ONE"), b"+OK\r\n");
    assert_eq!(a.cmd_str("FCALL getk 1 s1"), b"$5\r\nhello\r\n");
    drop(a);
    amber.kill9();
    amber.start();
    let mut a = amber.client();
    let mut ours = dataset(&mut a);
    assert_eq!(
        ours.remove(&(0, b"promoted".to_vec())).map(|(_, c, _)| c),
        Some(vec![b"yes".to_vec()])
    );
    assert_same_data(&expected, &ours);
    assert_eq!(
        a.cmd_str("FCALL getk 1 s1"),
        b"$5\r\nhello\r\n",
        "the library survived"
    );
}

#[test]
fn a_cut_link_continues_with_a_partial_resync() {
    let master = Master::start(&[]);
    let mut m = master.client();
    fill(&mut m);
    let port = master.port.to_string();
    let amber = ServerProcess::amber(&["--replicaof", "127.0.0.1", &port]);
    let mut a = amber.client();
    wait_synced(&mut m, &mut a);
    // The stream is in database 3 when the link is cut, and goes on there.
    m.cmd_str("SELECT 3");
    m.cmd_str("SET before 1");
    wait_synced(&mut m, &mut a);
    assert_eq!(m.cmd_str("CLIENT KILL TYPE replica"), b":1\r\n");
    m.cmd_str("SET after 1");
    live_writes(&mut m);
    wait_synced(&mut m, &mut a);
    assert_same_data(&dataset(&mut m), &dataset(&mut a));
    assert_eq!(field(&mut m, "stats", "sync_partial_ok"), "1");
    assert_eq!(field(&mut m, "stats", "sync_full"), "1");
}

/// What a normal client of a replica sees of keys past their deadline
/// that the master has not expired yet (`expired` and `hexp`), sorted
/// where the order is the server's.
fn expiry_view(c: &mut RespClient) -> Vec<String> {
    let mut out = Vec::new();
    let mut show = |r: Vec<u8>| out.push(reply::show(&r));
    for cmd in [
        "GET expired",
        "EXISTS expired hexp plain",
        "TTL expired",
        "PTTL hexp",
        "TYPE hexp",
        "HGETALL hexp",
        "STRLEN expired",
        "DBSIZE",
        "OBJECT ENCODING expired",
        "DUMP expired",
    ] {
        show(c.cmd_str(cmd));
    }
    let mut keys = flat(&q(c, &["KEYS", "*"]));
    keys.sort();
    out.push(format!("KEYS {keys:?}"));
    let mut scanned = flat(&q(c, &["SCAN", "0", "COUNT", "1000"]));
    scanned.sort();
    out.push(format!("SCAN {scanned:?}"));
    let db0 = field(c, "keyspace", "db0");
    out.push(db0.split(",avg_ttl").next().unwrap_or_default().to_string());
    out.push(field(c, "stats", "expired_keys"));
    out
}

#[test]
fn expired_keys_wait_for_the_masters_del() {
    // The master expires keys only when they are read.
    let master = Master::start(&["--enable-debug-command", "yes"]);
    let mut m = master.client();
    assert_eq!(m.cmd_str("DEBUG SET-ACTIVE-EXPIRE 0"), b"+OK\r\n");
    m.cmd_str("SET plain 1");
    m.cmd_str("SET expired v PX 300");
    m.cmd_str("HSET hexp f v");
    m.cmd_str("PEXPIRE hexp 300");
    let port = master.port.to_string();
    let common = ["--replicaof", "127.0.0.1", &port];
    let redis = ServerProcess::redis(&common);
    let amber = ServerProcess::amber(&common);
    let _log = LogOnPanic(&amber);
    let (mut r, mut a) = (redis.client(), amber.client());
    wait_synced(&mut m, &mut r);
    wait_synced(&mut m, &mut a);
    std::thread::sleep(Duration::from_millis(500));
    // A full sync after the deadlines keeps the keys too.
    let late = ServerProcess::amber(&common);
    let mut l = late.client();
    wait_synced(&mut m, &mut l);
    assert_eq!(l.cmd_str("DBSIZE"), b":3\r\n");
    assert_eq!(l.cmd_str("GET expired"), b"$-1\r\n");
    // Missing to reads, still counted by DBSIZE, never deleted by the
    // replica: twice, so a read that deleted would show.
    let seen = expiry_view(&mut r);
    assert!(
        seen.iter().any(|l| l.starts_with(":3")),
        "DBSIZE counts them: {seen:?}"
    );
    assert_eq!(expiry_view(&mut a), seen);
    assert_eq!(expiry_view(&mut a), expiry_view(&mut r));
    // The master's reads expire them: its DELs reach the replicas.
    assert_eq!(m.cmd_str("EXISTS expired hexp"), b":0\r\n");
    wait_synced(&mut m, &mut r);
    wait_synced(&mut m, &mut a);
    assert_eq!(a.cmd_str("DBSIZE"), b":1\r\n");
    assert_eq!(expiry_view(&mut a), expiry_view(&mut r));
}

#[test]
fn stale_data_refused_while_the_link_is_down_and_the_master_client() {
    let mut master = Master::start(&[]);
    let mut m = master.client();
    m.cmd_str("SET plain 1");
    let port = master.port.to_string();
    let common = [
        "--replicaof",
        "127.0.0.1",
        &port,
        "--replica-serve-stale-data",
        "no",
    ];
    let redis = ServerProcess::redis(&common);
    let amber = ServerProcess::amber(&common);
    let _log = LogOnPanic(&amber);
    let (mut r, mut a) = (redis.client(), amber.client());
    wait_synced(&mut m, &mut r);
    wait_synced(&mut m, &mut a);
    // The master's link is a client of type master, flag `M`.
    for c in [&mut r, &mut a] {
        let list = q(c, &["CLIENT", "LIST", "TYPE", "master"]).text();
        assert_eq!(list.lines().count(), 1, "{list}");
        assert!(list.contains(" flags=M "), "{list}");
        assert!(list.contains(" user=(superuser) "), "{list}");
        assert!(!q(c, &["CLIENT", "LIST", "TYPE", "normal"])
            .text()
            .contains("flags=M"));
    }
    let served = |c: &mut RespClient| {
        let mut out = Vec::new();
        for cmd in [
            "GET plain",
            "PING",
            "DBSIZE",
            "ECHO hi",
            "SELECT 0",
            "MULTI",
            "GET plain",
            "EXEC",
            "MULTI",
            "ECHO x",
            "EXEC",
            "CONFIG GET replica-serve-stale-data",
            "ROLE",
        ] {
            out.push(reply::show(&c.cmd_str(cmd)));
        }
        for script in [
            "return 1",
            "#!lua\nreturn 1",
            "#!lua flags=no-writes\nreturn 1",
            "#!lua flags=allow-stale,no-writes\nreturn 1",
            "#!lua flags=allow-stale,no-writes\nreturn redis.call('get', 'plain')",
            "#!lua flags=allow-stale,no-writes\nreturn redis.call('echo', 'e')",
        ] {
            out.push(reply::show(&c.cmd(&["EVAL", script, "0"])));
        }
        out
    };
    // While the link is up everything is served.
    assert_eq!(served(&mut a), served(&mut r));
    master.kill();
    for c in [&mut r, &mut a] {
        wait_until("the link is down", Duration::from_secs(20), || {
            field(c, "replication", "master_link_status") == "down"
        });
    }
    let ours = served(&mut a);
    assert!(
        ours.iter().any(|l| l.contains("MASTERDOWN")),
        "refused: {ours:?}"
    );
    let normalise = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .map(|l| {
                if l.contains("connect") {
                    "<role>".into()
                } else {
                    l
                }
            })
            .collect()
    };
    assert_eq!(normalise(ours), normalise(served(&mut r)));
}

#[test]
fn a_redis_master_fails_over_to_amber() {
    let master = Master::start(&[]);
    let mut m = master.client();
    fill(&mut m);
    let port = master.port.to_string();
    let amber = ServerProcess::amber(&["--replicaof", "127.0.0.1", &port]);
    let _log = LogOnPanic(&amber);
    let mut a = amber.client();
    wait_synced(&mut m, &mut a);
    live_writes(&mut m);
    wait_synced(&mut m, &mut a);
    let before = dataset(&mut m);
    let old_replid = field(&mut m, "replication", "master_replid");
    assert_eq!(m.cmd_str("FAILOVER"), b"+OK\r\n");
    wait_failed_over(&mut m, "the master follows Amber");
    assert_eq!(
        field(&mut m, "replication", "master_port"),
        amber.port.to_string()
    );
    // Amber took over the master's history: the master continued.
    let ours = info(&mut a, "replication");
    let get = |k: &str| {
        ours.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(get("role"), "master");
    assert_eq!(get("master_replid2"), old_replid);
    assert_ne!(get("master_replid"), old_replid);
    assert_eq!(field(&mut a, "stats", "sync_partial_ok"), "1");
    assert_eq!(field(&mut a, "stats", "sync_full"), "0");
    assert_same_data(&before, &dataset(&mut a));
    // Amber's writes reach its new replica.
    assert_eq!(a.cmd_str("SET promoted yes"), b"+OK\r\n");
    wait_synced(&mut a, &mut m);
    assert_eq!(m.cmd_str("GET promoted"), b"$3\r\nyes\r\n");
    assert_same_data(&dataset(&mut a), &dataset(&mut m));
}

/// What a client blocked on `server` gets when it becomes a replica of
/// `master_port`, and whether its connection is closed after.
fn blocked_when_becoming_replica(server: &ServerProcess, master_port: u16) -> (String, bool) {
    let mut c = server.client();
    let mut blocked = server.client();
    blocked.send(&["BLPOP", "nothing", "0"]).expect("send");
    wait_until("BLPOP blocks", Duration::from_secs(10), || {
        field(&mut c, "clients", "blocked_clients") == "1"
    });
    let port = master_port.to_string();
    assert_eq!(c.cmd(&["REPLICAOF", "127.0.0.1", &port]), b"+OK\r\n");
    let reply = reply::show(&blocked.read_reply().expect("the unblocking error"));
    let closed = blocked.try_cmd(&["PING"]).is_err();
    (reply, closed)
}

#[test]
fn blocked_clients_are_disconnected_when_a_master_becomes_a_replica() {
    let master = Master::start(&[]);
    let amber = ServerProcess::amber(&[]);
    let _log = LogOnPanic(&amber);
    let redis = ServerProcess::redis(&[]);
    let ours = blocked_when_becoming_replica(&amber, master.port);
    assert_eq!(ours, blocked_when_becoming_replica(&redis, master.port));
    assert!(ours.0.contains("UNBLOCKED") && ours.1, "{ours:?}");
}
