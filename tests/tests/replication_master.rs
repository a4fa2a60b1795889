//! Amber as a replication master: a real redis-server 7.0 started with
//! `replicaof` Amber gets a full copy of every type (`PSYNC` →
//! `+FULLRESYNC` and the RDB payload), then follows a random mixed
//! workload (rewritten commands, scripts, transactions, blocking pops
//! served by pushes, expiry, several databases) key for key. `WAIT`,
//! `ROLE` and `INFO replication` count the replica; a replica whose link
//! is cut continues from the backlog (`+CONTINUE`); Amber follows Amber.

use std::time::Duration;

use amber_tests::replication::{
    assert_same_data, dataset, field, flat, info, q, wait_failed_over, wait_synced, wait_until,
};
use amber_tests::{reply, RespClient, ServerProcess};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Runs a command that must not fail.
fn ok(c: &mut RespClient, args: &[&str]) -> Vec<u8> {
    let r = c.cmd(args);
    assert!(!r.starts_with(b"-"), "{args:?}: {}", reply::show(&r));
    r
}

/// Data of every type, in two databases, some keys with deadlines.
fn fill(c: &mut RespClient) {
    for db in ["0", "2"] {
        ok(c, &["SELECT", db]);
        ok(c, &["SET", "str", "hello"]);
        ok(c, &["SET", "num", "41"]);
        ok(c, &["SET", "ttl", "v", "EX", "500"]);
        ok(c, &["RPUSH", "list", "a", "b", "c", "d"]);
        ok(c, &["HSET", "hash", "f1", "v1", "f2", "2"]);
        ok(c, &["SADD", "set", "x", "y", "z", "w"]);
        ok(c, &["SADD", "ints", "1", "2", "3"]);
        ok(c, &["ZADD", "zset", "1", "a", "2.5", "b", "3", "c"]);
        ok(c, &["XADD", "stream", "1-1", "f", "v"]);
        ok(c, &["XADD", "stream", "*", "g", "w"]);
        ok(c, &["PEXPIRE", "hash", "400000"]);
    }
    ok(c, &["SELECT", "0"]);
    let big: String = (0..200).map(|i| format!("e{i},")).collect();
    ok(c, &["SET", "big", &big]);
}

/// A random mixed workload of `n` commands over a few keys, every family
/// and every rewrite the stream makes, reproducible from `seed`.
fn workload(c: &mut RespClient, seed: u64, n: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..n {
        let k = format!("k{}", rng.gen_range(0..6));
        let v = rng.gen_range(0..1000).to_string();
        let db = ["0", "0", "0", "2"][rng.gen_range(0..4)];
        c.cmd(&["SELECT", db]);
        // Errors (a key of another type) are part of the workload: a
        // failed command changes nothing and is not propagated.
        match rng.gen_range(0..34) {
            0 => c.cmd(&["SET", &k, &v]),
            1 => c.cmd(&["SET", &k, &v, "EX", "300"]),
            2 => c.cmd(&["SETEX", &k, "200", &v]),
            3 => c.cmd(&["INCRBYFLOAT", &format!("f{k}"), "1.25"]),
            4 => c.cmd(&["HINCRBYFLOAT", "hash", &k, "0.5"]),
            5 => c.cmd(&["EXPIRE", &k, "100"]),
            6 => c.cmd(&["PEXPIRE", &k, "1"]),
            7 => c.cmd(&["GETEX", &k, "PX", "250000"]),
            8 => c.cmd(&["GETDEL", &k]),
            9 => c.cmd(&["SADD", &format!("s{k}"), "a", "b", "c", &v]),
            10 => c.cmd(&["SPOP", &format!("s{k}")]),
            11 => c.cmd(&["SPOP", &format!("s{k}"), "2"]),
            12 => c.cmd(&["LPUSH", &format!("l{k}"), &v, "x"]),
            13 => c.cmd(&["RPOP", &format!("l{k}")]),
            14 => c.cmd(&["LMOVE", &format!("l{k}"), "list", "LEFT", "RIGHT"]),
            15 => c.cmd(&["ZINCRBY", "zset", "1.5", &k]),
            16 => c.cmd(&["ZPOPMIN", "zset"]),
            17 => c.cmd(&["XADD", "stream", "*", "f", &v]),
            18 => c.cmd(&["XADD", "stream", "MAXLEN", "~", "5", "*", "g", &v]),
            19 => c.cmd(&[
                "EVAL",
                "redis.call('incr', KEYS[1]); redis.call('sadd', KEYS[2], ARGV[1]); \
                 return redis.call('spop', KEYS[2])",
                "2",
                &format!("n{k}"),
                &format!("es{k}"),
                &v,
            ]),
            20 => {
                c.cmd(&["MULTI"]);
                c.cmd(&["INCR", "counter"]);
                c.cmd(&["SET", &k, &v, "PX", "90000"]);
                c.cmd(&["HSET", "hash", "m", &v]);
                c.cmd(&["EXEC"])
            }
            21 => c.cmd(&["DEL", &k]),
            22 => c.cmd(&["APPEND", "str", "!"]),
            23 => c.cmd(&["PERSIST", "hash"]),
            24 => c.cmd(&["HDEL", "hash", &k]),
            25 => c.cmd(&["COPY", "str", &format!("copy{k}"), "REPLACE"]),
            26 => c.cmd(&["RENAME", &format!("l{k}"), &format!("renamed{k}")]),
            27 => c.cmd(&["SREM", "set", "x"]),
            28 => c.cmd(&["ZADD", "zset", "NX", &v, &k]),
            29 => c.cmd(&["SWAPDB", "2", "3"]),
            30 => c.cmd(&["MOVE", &k, "4"]),
            31 => c.cmd(&[
                "BLMPOP", "0.01", "2", "nolist", "list", "RIGHT", "COUNT", "2",
            ]),
            32 => c.cmd(&["BZMPOP", "0.01", "1", "zset", "MAX", "COUNT", "2"]),
            _ => c.cmd(&["SET", &k, &v, "KEEPTTL"]),
        };
    }
    c.cmd(&["SELECT", "0"]);
}

/// Clients blocked in BLPOP, BZPOPMIN and BLMOVE on Amber, served by
/// pushes: the replica gets the push and the pop.
fn blocking_pops_served_by_pushes(amber: &ServerProcess, c: &mut RespClient) {
    let blocked: Vec<(RespClient, &[&str])> = vec![
        (amber.client(), &["BLPOP", "bl", "5"]),
        (amber.client(), &["BZPOPMIN", "bz", "5"]),
        (
            amber.client(),
            &["BLMOVE", "bm", "bmdst", "LEFT", "LEFT", "5"],
        ),
    ];
    let mut waiting = Vec::new();
    for (mut b, args) in blocked {
        b.send(args).expect("send a blocking command");
        waiting.push(b);
    }
    wait_until("three clients blocked", Duration::from_secs(5), || {
        field(c, "clients", "blocked_clients") == "3"
    });
    ok(c, &["RPUSH", "bl", "1", "2", "3"]);
    ok(c, &["ZADD", "bz", "1", "one", "2", "two"]);
    ok(c, &["RPUSH", "bm", "m1", "m2"]);
    for mut b in waiting {
        let r = b.read_reply().expect("the blocked client is served");
        assert!(!r.starts_with(b"*-1"), "{}", reply::show(&r));
    }
    // A pop that finds data at once is propagated as its plain form.
    ok(c, &["BRPOP", "bl", "1"]);
}

#[test]
fn a_redis_replica_follows_every_type_and_a_mixed_workload() {
    let amber = ServerProcess::amber(&[]);
    let mut a = amber.client();
    fill(&mut a);
    let port = amber.port.to_string();
    let redis = ServerProcess::redis(&["--replicaof", "127.0.0.1", &port]);
    let mut r = redis.client();
    wait_synced(&mut a, &mut r);
    assert_same_data(&dataset(&mut a), &dataset(&mut r));

    workload(&mut a, 7, 1500);
    blocking_pops_served_by_pushes(&amber, &mut a);
    // Another database emptied, keys that expire on the master (its DEL
    // reaches the replica), a function library.
    ok(&mut a, &["SELECT", "5"]);
    ok(&mut a, &["SET", "gone", "1"]);
    ok(&mut a, &["FLUSHDB"]);
    ok(&mut a, &["SET", "short", "1", "PX", "50"]);
    ok(&mut a, &["SELECT", "0"]);
    ok(
        &mut a,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=ml\nredis.register_function('bump', function(k) return redis.call('incr', k[1]) end)",
        ],
    );
    ok(&mut a, &["FCALL", "bump", "1", "fcalled"]);
    // MIGRATE reaches the replica as a DEL of the moved key, never as a
    // second migration; with COPY it changes nothing and is not sent.
    let target = ServerProcess::redis(&[]);
    let tp = target.port.to_string();
    ok(&mut a, &["SET", "moving", "m"]);
    ok(&mut a, &["SET", "copied", "c"]);
    assert_eq!(
        ok(
            &mut a,
            &["MIGRATE", "127.0.0.1", &tp, "moving", "0", "5000"]
        ),
        b"+OK\r\n"
    );
    let copy = ["MIGRATE", "127.0.0.1", &tp, "copied", "0", "5000", "COPY"];
    assert_eq!(ok(&mut a, &copy), b"+OK\r\n");
    std::thread::sleep(Duration::from_millis(300));
    workload(&mut a, 8, 300);
    wait_synced(&mut a, &mut r);
    assert_eq!(r.cmd_str("EXISTS moving copied"), b":1\r\n");
    let stats = String::from_utf8_lossy(&r.cmd_str("INFO commandstats")).into_owned();
    assert!(
        !stats.contains("cmdstat_migrate"),
        "the replica ran MIGRATE:\n{stats}"
    );
    let mut t = target.client();
    assert_eq!(
        t.cmd_str("MGET moving copied"),
        b"*2\r\n$1\r\nm\r\n$1\r\nc\r\n"
    );
    assert_eq!(t.cmd_str("DBSIZE"), b":2\r\n");
    // The expired key was deleted on Amber (active expiry) and by its DEL
    // on the replica.
    wait_until(
        "the short-lived key is gone",
        Duration::from_secs(5),
        || {
            ok(&mut r, &["SELECT", "5"]);
            let n = q(&mut r, &["DBSIZE"]).integer();
            ok(&mut r, &["SELECT", "0"]);
            n == Some(0)
        },
    );
    wait_synced(&mut a, &mut r);
    assert_same_data(&dataset(&mut a), &dataset(&mut r));
    assert_eq!(q(&mut r, &["FCALL_RO", "bump", "1", "x"]).is_error(), true);
    assert_eq!(
        flat(&q(&mut r, &["FUNCTION", "LIST"])).contains(&b"ml".to_vec()),
        true
    );
    let log = redis.log_text();
    assert!(!log.contains("Error"), "the replica logged errors:\n{log}");
}

#[test]
fn wait_role_info_and_a_partial_resync_after_a_cut_link() {
    let amber = ServerProcess::amber(&[]);
    let mut a = amber.client();
    assert_eq!(a.cmd_str("WAIT 0 0"), b":0\r\n");
    assert_eq!(a.cmd_str("WAIT 1 100"), b":0\r\n");
    let port = amber.port.to_string();
    let redis = ServerProcess::redis(&["--replicaof", "127.0.0.1", &port]);
    let mut r = redis.client();
    wait_synced(&mut a, &mut r);
    ok(&mut a, &["SET", "k", "v"]);
    assert_eq!(a.cmd_str("WAIT 1 5000"), b":1\r\n");
    // More replicas than there are: the timeout's count.
    assert_eq!(a.cmd_str("WAIT 2 200"), b":1\r\n");
    assert_eq!(r.cmd_str("GET k"), b"$1\r\nv\r\n");

    let offset = field(&mut a, "replication", "master_repl_offset");
    let fields = info(&mut a, "replication");
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(get("role"), "master");
    assert_eq!(get("connected_slaves"), "1");
    assert_eq!(get("repl_backlog_active"), "1");
    assert_eq!(
        get("master_replid"),
        field(&mut r, "replication", "master_replid")
    );
    let slave0 = get("slave0");
    assert!(
        slave0.starts_with(&format!(
            "ip=127.0.0.1,port={},state=online,offset=",
            redis.port
        )),
        "{slave0}"
    );
    let role = flat(&q(&mut a, &["ROLE"]));
    assert_eq!(role[0], b"master");
    assert_eq!(role[1], offset.as_bytes());
    assert_eq!(role[2], b"127.0.0.1");
    assert_eq!(role[3], redis.port.to_string().as_bytes());
    let list = String::from_utf8(a.cmd_str("CLIENT LIST TYPE replica")).expect("utf-8");
    assert!(list.contains("flags=S"), "{list}");

    // The link is cut; writes go on; the replica continues from the
    // backlog instead of a new full copy.
    assert_eq!(a.cmd_str("CLIENT KILL TYPE replica"), b":1\r\n");
    ok(&mut a, &["SET", "during", "cut"]);
    ok(&mut a, &["LPUSH", "l", "1", "2"]);
    wait_synced(&mut a, &mut r);
    assert_eq!(r.cmd_str("GET during"), b"$3\r\ncut\r\n");
    assert_same_data(&dataset(&mut a), &dataset(&mut r));
    let log = redis.log_text();
    assert!(
        log.contains("Successful partial resynchronization with master"),
        "{log}"
    );
    assert_eq!(field(&mut a, "stats", "sync_full"), "1");
    assert_eq!(field(&mut a, "stats", "sync_partial_ok"), "1");
    let sent: u64 = field(&mut a, "stats", "total_net_repl_output_bytes")
        .parse()
        .expect("a number");
    assert!(sent > 0);

    // A replica started anew gets a full copy again.
    drop(r);
    drop(redis);
    let redis = ServerProcess::redis(&["--replicaof", "127.0.0.1", &port]);
    let mut r = redis.client();
    wait_synced(&mut a, &mut r);
    assert_same_data(&dataset(&mut a), &dataset(&mut r));
    wait_until("one replica listed", Duration::from_secs(5), || {
        field(&mut a, "replication", "connected_slaves") == "1"
    });
}

#[test]
fn dirty_counts_changes_until_a_save() {
    let amber = ServerProcess::amber(&[]);
    let mut a = amber.client();
    let changes = |a: &mut RespClient| {
        field(a, "persistence", "rdb_changes_since_last_save")
            .parse::<u64>()
            .expect("a number")
    };
    assert_eq!(changes(&mut a), 0);
    ok(&mut a, &["SADD", "s", "a"]);
    let after_one = changes(&mut a);
    assert!(after_one > 0);
    // Changes nothing: not counted.
    ok(&mut a, &["SADD", "s", "a"]);
    ok(&mut a, &["DEL", "missing"]);
    ok(&mut a, &["GET", "s2"]);
    assert_eq!(changes(&mut a), after_one);
    ok(&mut a, &["SAVE"]);
    assert_eq!(changes(&mut a), 0);
    // A save point of 1 change in 1 second: the cron saves by itself.
    ok(&mut a, &["CONFIG", "SET", "save", "1 1"]);
    let before = q(&mut a, &["LASTSAVE"]).integer().expect("LASTSAVE");
    std::thread::sleep(Duration::from_millis(1100));
    ok(&mut a, &["SET", "x", "1"]);
    wait_until("a timed background save", Duration::from_secs(10), || {
        q(&mut a, &["LASTSAVE"]).integer().expect("LASTSAVE") > before && changes(&mut a) == 0
    });
    assert!(amber.dir().join("dump.rdb").exists());
}

#[test]
fn amber_follows_amber() {
    let master = ServerProcess::amber(&[]);
    let mut m = master.client();
    fill(&mut m);
    let port = master.port.to_string();
    let replica = ServerProcess::amber(&["--replicaof", "127.0.0.1", &port]);
    let mut r = replica.client();
    wait_synced(&mut m, &mut r);
    workload(&mut m, 11, 400);
    wait_synced(&mut m, &mut r);
    assert_same_data(&dataset(&mut m), &dataset(&mut r));
    // A cut link: the Amber replica continues from the backlog, in the
    // database the stream had selected.
    ok(&mut m, &["SELECT", "2"]);
    ok(&mut m, &["SET", "before-cut", "1"]);
    wait_synced(&mut m, &mut r);
    assert_eq!(m.cmd_str("CLIENT KILL TYPE replica"), b":1\r\n");
    ok(&mut m, &["SET", "after-cut", "1"]);
    workload(&mut m, 12, 100);
    wait_synced(&mut m, &mut r);
    assert_same_data(&dataset(&mut m), &dataset(&mut r));
    assert_eq!(field(&mut m, "stats", "sync_partial_ok"), "1");
    assert_eq!(field(&mut m, "stats", "sync_full"), "1");
}

#[test]
fn a_replica_past_its_output_buffer_limit_is_dropped_and_resyncs() {
    let amber = ServerProcess::amber(&["--client-output-buffer-limit", "replica 1mb 0 0"]);
    let mut a = amber.client();
    let port = amber.port.to_string();
    let redis = ServerProcess::redis(&["--replicaof", "127.0.0.1", &port]);
    let mut r = redis.client();
    wait_synced(&mut a, &mut r);
    // The replica stops reading; its share of the stream piles up.
    redis.signal(libc::SIGSTOP);
    let value = "x".repeat(100_000);
    for i in 0..200 {
        ok(&mut a, &["SET", &format!("big{i}"), &value]);
    }
    wait_until("the replica is dropped", Duration::from_secs(10), || {
        field(&mut a, "replication", "connected_slaves") == "0"
    });
    redis.signal(libc::SIGCONT);
    // More than the backlog holds went by: a full copy again.
    wait_synced(&mut a, &mut r);
    assert_same_data(&dataset(&mut a), &dataset(&mut r));
}

#[test]
fn concurrent_writers_keep_the_replica_identical() {
    // Several connections (on Amber's several threads) write the same
    // keys at once: the stream must follow the order the keys changed in.
    let amber = ServerProcess::amber(&["--threads", "2"]);
    let mut a = amber.client();
    fill(&mut a);
    let port = amber.port.to_string();
    let redis = ServerProcess::redis(&["--replicaof", "127.0.0.1", &port]);
    let mut r = redis.client();
    wait_synced(&mut a, &mut r);
    std::thread::scope(|s| {
        for seed in 0..4u64 {
            let mut c = amber.client();
            s.spawn(move || workload(&mut c, 100 + seed, 600));
        }
        // Pipelined writes of two keys whose result depends on the order.
        for t in 0..4u64 {
            let mut c = amber.client();
            s.spawn(move || {
                let mut batch = Vec::new();
                for i in 0..500 {
                    let v = format!("{t}-{i}");
                    batch.extend(reply::encode(&["RPUSH", "order", &v]));
                    batch.extend(reply::encode(&["SET", "last", &v]));
                }
                c.send_raw(&batch).expect("send a pipeline");
                for _ in 0..1000 {
                    c.read_reply().expect("a reply");
                }
            });
        }
    });
    wait_synced(&mut a, &mut r);
    assert_same_data(&dataset(&mut a), &dataset(&mut r));
}

#[test]
fn a_hand_made_replica_reads_the_payload_then_the_stream_only() {
    let amber = ServerProcess::amber(&[]);
    let mut a = amber.client();
    ok(&mut a, &["SET", "k", "v"]);
    let mut fake = amber.client();
    assert_eq!(fake.cmd_str("REPLCONF listening-port 7"), b"+OK\r\n");
    assert!(fake
        .cmd_str("REPLCONF nosuch 1")
        .starts_with(b"-ERR Unrecognized REPLCONF option: nosuch"));
    assert!(fake
        .cmd_str("REPLCONF listening-port")
        .starts_with(b"-ERR syntax error"));
    // `$<len>\r\n` and the RDB bytes, no trailing newline.
    let amber_tests::replication::HandMadeReplica {
        stream: mut s,
        payload,
        rest,
    } = amber_tests::replication::hand_made_replica(&mut fake);
    assert!(payload.starts_with(b"REDIS0010"));
    // What it sends now gets no reply; the stream follows.
    fake.send(&["PING"]).expect("send");
    fake.send(&["REPLCONF", "ACK", "0"]).expect("send");
    ok(&mut a, &["SET", "after", "1"]);
    let mut stream = rest;
    let mut buf = [0u8; 4096];
    use std::io::Read;
    let want = reply::encode(&["SET", "after", "1"]);
    while !stream.windows(want.len()).any(|w| w == want) {
        let n = s.read(&mut buf).expect("read the stream");
        stream.extend_from_slice(&buf[..n]);
    }
    assert!(
        stream.starts_with(&reply::encode(&["SELECT", "0"])),
        "{}",
        reply::show(&stream)
    );
    assert_eq!(field(&mut a, "replication", "connected_slaves"), "1");
}

/// `XINFO STREAM key FULL` as leaves, the consumers' `seen-time`
/// (the replica's own clock) masked.
fn stream_full(c: &mut RespClient, key: &str) -> Vec<String> {
    let leaves = flat(&q(c, &["XINFO", "STREAM", key, "FULL"]));
    let mut out = Vec::new();
    let mut mask = false;
    for l in leaves {
        let text = String::from_utf8_lossy(&l).into_owned();
        out.push(if mask {
            "<t>".to_string()
        } else {
            text.clone()
        });
        mask = text == "seen-time";
    }
    out
}

#[test]
fn consumer_groups_reach_replicas_as_redis_rewrites_them() {
    let amber = ServerProcess::amber(&[]);
    let mut a = amber.client();
    let port = amber.port.to_string();
    let redis = ServerProcess::redis(&["--replicaof", "127.0.0.1", &port]);
    let twin = ServerProcess::amber(&["--replicaof", "127.0.0.1", &port]);
    let (mut r, mut t) = (redis.client(), twin.client());
    wait_synced(&mut a, &mut r);
    wait_synced(&mut a, &mut t);
    // A client blocked in XREADGROUP, served by an XADD.
    let mut blocked = amber.client();
    ok(&mut a, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    blocked
        .send(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "waiter",
            "BLOCK",
            "10000",
            "STREAMS",
            "s",
            ">",
        ])
        .expect("send");
    wait_until("XREADGROUP blocks", Duration::from_secs(10), || {
        field(&mut a, "clients", "blocked_clients") == "1"
    });
    for cmd in [
        "XADD s 1-1 f v",
        "XADD s 2-1 f v",
        "XADD s 3-1 f v",
        "XADD s 4-1 f v",
        "XGROUP SETID s g 0",
        "XREADGROUP GROUP g alice COUNT 2 STREAMS s >",
        "XREADGROUP GROUP g bob NOACK COUNT 1 STREAMS s >",
        "XREADGROUP GROUP g carol STREAMS s >",
        "XREADGROUP GROUP g alice STREAMS s 0",
        "XCLAIM s g dave 0 1-1",
        "XCLAIM s g dave 0 2 JUSTID LASTID 3-1",
        "XAUTOCLAIM s g erin 0 0 COUNT 1",
        "XAUTOCLAIM s g erin 0 0 JUSTID",
        "XDEL s 2-1",
        "XAUTOCLAIM s g frank 0 0",
        "XGROUP CREATECONSUMER s g zed",
        "XACK s g 1-1",
        "XGROUP SETID s g 3-1 ENTRIESREAD 3",
        "XADD s 5-1 f v",
        "XREADGROUP GROUP g nack2 NOACK STREAMS s >",
        "XGROUP DELCONSUMER s g zed",
        "XCLAIM s g gina 0 4-1 LASTID 9-9",
    ] {
        let args: Vec<&str> = cmd.split(' ').collect();
        ok(&mut a, &args);
    }
    assert!(!blocked.read_reply().expect("served").starts_with(b"-"));
    // A blocked NOACK read served by a push.
    blocked
        .send(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "late",
            "NOACK",
            "BLOCK",
            "10000",
            "STREAMS",
            "s",
            ">",
        ])
        .expect("send");
    wait_until("XREADGROUP blocks", Duration::from_secs(10), || {
        field(&mut a, "clients", "blocked_clients") == "1"
    });
    ok(&mut a, &["XADD", "s", "99-1", "f", "v"]);
    assert!(!blocked.read_reply().expect("served").starts_with(b"-"));
    wait_synced(&mut a, &mut r);
    wait_synced(&mut a, &mut t);
    let ours = stream_full(&mut a, "s");
    assert!(
        ours.iter().filter(|l| *l == "seen-time").count() >= 8,
        "{ours:?}"
    );
    assert_eq!(stream_full(&mut r, "s"), ours, "the redis-server replica");
    assert_eq!(stream_full(&mut t, "s"), ours, "the Amber replica");
    // Never sent as themselves.
    let stats = String::from_utf8_lossy(&r.cmd_str("INFO commandstats")).into_owned();
    assert!(!stats.contains("cmdstat_xreadgroup"), "{stats}");
    assert!(!stats.contains("cmdstat_xautoclaim"), "{stats}");
    assert!(stats.contains("cmdstat_xclaim"), "{stats}");
}

/// The pending entries of the one group of stream `s` with their delivery
/// times (`XINFO STREAM s FULL`'s group `pending`), as flat strings.
fn group_pel(c: &mut RespClient) -> Vec<String> {
    flat(&q(c, &["XINFO", "STREAM", "s", "FULL"]))
        .into_iter()
        .map(|l| String::from_utf8_lossy(&l).into_owned())
        .skip_while(|l| l != "pending")
        .take_while(|l| l != "consumers")
        .collect()
}

#[test]
fn a_replica_dates_a_batch_from_its_arrival_not_from_the_last_one() {
    // An XCLAIM reaches a replica as `XCLAIM ... TIME <master's ms>`, and a
    // TIME later than the replica's "now" is clamped to that now. A replica
    // that dated each batch from the end of the batch before (its link idle
    // meanwhile) clamped it to that past: a delivery time hundreds of ms
    // off the master's (and a flaky consumer-group test, off by 2-3 ms).
    let amber = ServerProcess::amber(&[]);
    let mut a = amber.client();
    let port = amber.port.to_string();
    let twin = ServerProcess::amber(&["--replicaof", "127.0.0.1", &port]);
    let mut t = twin.client();
    wait_synced(&mut a, &mut t);
    ok(&mut a, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    ok(&mut a, &["XADD", "s", "1-1", "f", "v"]);
    ok(
        &mut a,
        &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"],
    );
    wait_synced(&mut a, &mut t);
    std::thread::sleep(Duration::from_millis(400));
    ok(&mut a, &["XCLAIM", "s", "g", "bob", "0", "1-1"]);
    wait_synced(&mut a, &mut t);
    let ours = group_pel(&mut a);
    assert!(ours.iter().any(|l| l == "bob"), "{ours:?}");
    assert_eq!(group_pel(&mut t), ours);
}

/// The replies of a master under `min-replicas-to-write`.
fn min_replicas_replies(c: &mut RespClient) -> Vec<String> {
    let mut out = Vec::new();
    for cmd in [
        "SET k v",
        "GET k",
        "MULTI",
        "SET k w",
        "EXEC",
        "MULTI",
        "GET k",
        "EXEC",
        "CONFIG GET min-replicas-to-write",
        "CONFIG GET min-slaves-max-lag",
    ] {
        let args: Vec<&str> = cmd.split(' ').collect();
        out.push(reply::show(&c.cmd(&args)));
    }
    for script in [
        "return redis.call('set', 'k', 's')",
        "return redis.call('get', 'k')",
        "#!lua\nreturn redis.call('set', 'k', 's')",
        "#!lua flags=no-writes\nreturn 1",
    ] {
        out.push(reply::show(&c.cmd(&["EVAL", script, "0"])));
    }
    out.push(field(c, "replication", "min_slaves_good_slaves"));
    out
}

#[test]
fn min_replicas_to_write_refuses_writes_without_good_replicas() {
    let amber = ServerProcess::amber(&[]);
    let redis = ServerProcess::redis(&[]);
    let (mut a, mut r) = (amber.client(), redis.client());
    // Not set: no field, writes go.
    assert_eq!(field(&mut a, "replication", "min_slaves_good_slaves"), "");
    for c in [&mut a, &mut r] {
        ok(c, &["CONFIG", "SET", "min-replicas-to-write", "1"]);
        ok(c, &["CONFIG", "SET", "min-replicas-max-lag", "2"]);
    }
    let refused = min_replicas_replies(&mut a);
    assert!(refused[0].contains("NOREPLICAS"), "{refused:?}");
    assert_eq!(refused, min_replicas_replies(&mut r));
    // A replica acknowledging: writes go.
    let ours = ServerProcess::redis(&["--replicaof", "127.0.0.1", &amber.port.to_string()]);
    let theirs = ServerProcess::redis(&["--replicaof", "127.0.0.1", &redis.port.to_string()]);
    for c in [&mut a, &mut r] {
        wait_until("a good replica", Duration::from_secs(20), || {
            field(c, "replication", "min_slaves_good_slaves") == "1"
        });
    }
    let served = min_replicas_replies(&mut a);
    assert!(!served[0].contains("NOREPLICAS"), "{served:?}");
    assert_eq!(served, min_replicas_replies(&mut r));
    // The replica gone, its last acknowledgement ages past the lag.
    drop((ours, theirs));
    for c in [&mut a, &mut r] {
        wait_until("no good replica", Duration::from_secs(20), || {
            field(c, "replication", "min_slaves_good_slaves") == "0"
        });
    }
    assert_eq!(min_replicas_replies(&mut a), min_replicas_replies(&mut r));
}

/// `FAILOVER`'s refusals.
fn failover_errors(c: &mut RespClient) -> Vec<String> {
    [
        "FAILOVER ABORT",
        "FAILOVER TIMEOUT 0",
        "FAILOVER TIMEOUT x",
        "FAILOVER FORCE FORCE",
        "FAILOVER TO 127.0.0.1 1 FORCE",
        "FAILOVER TO 127.0.0.1 1",
        "FAILOVER TO 127.0.0.1 x",
    ]
    .iter()
    .map(|cmd| {
        let args: Vec<&str> = cmd.split(' ').collect();
        reply::show(&c.cmd(&args))
    })
    .collect()
}

#[test]
fn failover_hands_the_master_role_to_a_redis_replica() {
    let amber = ServerProcess::amber(&[]);
    let reference = ServerProcess::redis(&[]);
    let (mut a, mut x) = (amber.client(), reference.client());
    // Without replicas, then with one, the refusals are Redis's.
    assert_eq!(failover_errors(&mut a), failover_errors(&mut x));
    fill(&mut a);
    let redis = ServerProcess::redis(&["--replicaof", "127.0.0.1", &amber.port.to_string()]);
    let theirs = ServerProcess::redis(&["--replicaof", "127.0.0.1", &reference.port.to_string()]);
    let (mut r, mut tr) = (redis.client(), theirs.client());
    wait_synced(&mut a, &mut r);
    wait_synced(&mut x, &mut tr);
    assert_eq!(failover_errors(&mut a), failover_errors(&mut x));
    workload(&mut a, 21, 200);
    wait_synced(&mut a, &mut r);
    let before = dataset(&mut a);
    // A failover to the replica: writes wait, then are refused.
    assert_eq!(a.cmd_str("FAILOVER"), b"+OK\r\n");
    assert_eq!(
        reply::show(&a.cmd_str("FAILOVER")),
        "-ERR FAILOVER already in progress.\\r\\n"
    );
    let mut writer = amber.client();
    writer.send(&["SET", "held", "1"]).expect("send");
    wait_until(
        "Amber follows its former replica",
        Duration::from_secs(20),
        || {
            let i = info(&mut a, "replication");
            let get = |k: &str| i.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            get("role").as_deref() == Some("slave")
                && get("master_link_status").as_deref() == Some("up")
                && get("master_failover_state").as_deref() == Some("no-failover")
        },
    );
    assert_eq!(
        reply::show(&writer.read_reply().expect("the held write")),
        "-READONLY You can't write against a read only replica.\\r\\n"
    );
    assert_eq!(
        field(&mut a, "replication", "master_port"),
        redis.port.to_string()
    );
    assert_eq!(field(&mut r, "replication", "role"), "master");
    // The new master continued Amber's history: no full copy.
    assert_eq!(field(&mut r, "stats", "sync_partial_ok"), "1");
    assert_eq!(field(&mut r, "stats", "sync_full"), "0");
    assert_same_data(&before, &dataset(&mut r));
    ok(&mut r, &["SET", "after", "failover"]);
    wait_synced(&mut r, &mut a);
    assert_same_data(&dataset(&mut r), &dataset(&mut a));
    assert_eq!(
        reply::show(&a.cmd_str("FAILOVER")),
        "-ERR FAILOVER is not valid when server is a replica.\\r\\n"
    );
}

#[test]
fn failover_between_two_ambers() {
    let first = ServerProcess::amber(&[]);
    let mut a = first.client();
    fill(&mut a);
    let second = ServerProcess::amber(&["--replicaof", "127.0.0.1", &first.port.to_string()]);
    let mut b = second.client();
    wait_synced(&mut a, &mut b);
    workload(&mut a, 31, 200);
    wait_synced(&mut a, &mut b);
    let target = [
        "FAILOVER",
        "TO",
        "127.0.0.1",
        &second.port.to_string(),
        "TIMEOUT",
        "10000",
    ];
    assert_eq!(a.cmd(&target), b"+OK\r\n");
    wait_failed_over(&mut a, "the first follows the second");
    assert_eq!(field(&mut b, "replication", "role"), "master");
    assert_eq!(field(&mut b, "stats", "sync_partial_ok"), "1");
    workload(&mut b, 32, 200);
    wait_synced(&mut b, &mut a);
    assert_same_data(&dataset(&mut b), &dataset(&mut a));
    // And back.
    assert_eq!(b.cmd_str("FAILOVER"), b"+OK\r\n");
    wait_failed_over(&mut b, "the second follows the first");
    assert_eq!(field(&mut a, "replication", "role"), "master");
    assert_eq!(field(&mut a, "stats", "sync_partial_ok"), "1");
    ok(&mut a, &["SET", "back", "1"]);
    wait_synced(&mut a, &mut b);
    assert_same_data(&dataset(&mut a), &dataset(&mut b));
}

/// An Amber and a Redis master, each with a synced redis-server replica:
/// (amber, redis, amber's replica, redis's replica).
fn replicated_side_by_side() -> (ServerProcess, ServerProcess, ServerProcess, ServerProcess) {
    let amber = ServerProcess::amber(&[]);
    let redis = ServerProcess::redis(&[]);
    let ours = ServerProcess::redis(&["--replicaof", "127.0.0.1", &amber.port.to_string()]);
    let theirs = ServerProcess::redis(&["--replicaof", "127.0.0.1", &redis.port.to_string()]);
    wait_synced(&mut amber.client(), &mut ours.client());
    wait_synced(&mut redis.client(), &mut theirs.client());
    (amber, redis, ours, theirs)
}

/// `WAIT`s around another client's write a stopped replica never
/// acknowledges.
fn waits_with_a_stopped_replica(master: &ServerProcess, replica: &ServerProcess) -> Vec<String> {
    let (mut a, mut b, mut fresh) = (master.client(), master.client(), master.client());
    let mut out = Vec::new();
    let mut show = |r: Vec<u8>| out.push(reply::show(&r));
    show(a.cmd_str("SET a 1"));
    show(a.cmd_str("WAIT 1 5000"));
    replica.signal(libc::SIGSTOP);
    show(b.cmd_str("SET b 1"));
    // A client that never ran a command waits for nothing yet.
    show(fresh.cmd_str("WAIT 1 200"));
    // A read after B's write waits for it too (Redis's `woff`).
    show(a.cmd_str("GET a"));
    show(a.cmd_str("WAIT 1 200"));
    show(fresh.cmd_str("WAIT 1 200"));
    replica.signal(libc::SIGCONT);
    show(a.cmd_str("WAIT 1 5000"));
    out
}

#[test]
fn wait_counts_the_stream_as_it_stood_after_the_last_command() {
    let (amber, redis, ours, theirs) = replicated_side_by_side();
    let seen = waits_with_a_stopped_replica(&amber, &ours);
    assert_eq!(seen, waits_with_a_stopped_replica(&redis, &theirs));
    assert!(seen.contains(&":0\\r\\n".to_string()), "{seen:?}");
}

/// A failover whose replica never catches up (stopped), aborted by its
/// timeout, then by `FAILOVER ABORT`: what `master` answers.
fn failover_aborted(master: &ServerProcess, replica: &ServerProcess) -> Vec<String> {
    let (mut c, mut writer) = (master.client(), master.client());
    let mut out = Vec::new();
    replica.signal(libc::SIGSTOP);
    ok(&mut c, &["SET", "unacknowledged", "1"]);
    for round in ["TIMEOUT", "ABORT"] {
        let start: &[&str] = if round == "TIMEOUT" {
            &["FAILOVER", "TIMEOUT", "700"]
        } else {
            &["FAILOVER"]
        };
        out.push(reply::show(&c.cmd(start)));
        out.push(field(&mut c, "replication", "master_failover_state"));
        // A write waits for the end of the failover.
        writer.send(&["SET", "held", round]).expect("send");
        std::thread::sleep(Duration::from_millis(200));
        out.push(reply::show(&c.cmd_str("GET held")));
        if round == "ABORT" {
            out.push(reply::show(&c.cmd_str("FAILOVER ABORT")));
        }
        out.push(reply::show(&writer.read_reply().expect("the held write")));
        out.push(field(&mut c, "replication", "master_failover_state"));
        out.push(field(&mut c, "replication", "role"));
    }
    out.push(reply::show(&c.cmd_str("FAILOVER ABORT")));
    replica.signal(libc::SIGCONT);
    out
}

#[test]
fn a_failover_times_out_or_is_aborted_as_redis() {
    let (amber, redis, ours, theirs) = replicated_side_by_side();
    let seen = failover_aborted(&amber, &ours);
    assert_eq!(seen, failover_aborted(&redis, &theirs));
    assert!(seen.contains(&"waiting-for-sync".to_string()), "{seen:?}");
}
