//! What a replica removes on its own, side by side with a redis-server 7.0
//! replica of the same master configured the same way:
//! * a writable replica (`replica-read-only no`) expires the keys its own
//!   clients gave a deadline (Redis's `expireSlaveKeys`), while a key with
//!   a deadline that came from the master waits for the master's `DEL`;
//! * `replica-ignore-maxmemory` (default `yes`): a replica past its
//!   `maxmemory` evicts nothing (the master's `DEL`s do), unless it is `no`.

use std::time::Duration;

use amber_tests::replication::{field, wait_synced, wait_until};
use amber_tests::{RespClient, ServerProcess};

/// Prints a server's log when the test fails.
struct LogOnPanic<'a>(&'a ServerProcess);

impl Drop for LogOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("amber's log:\n{}", self.0.log_text());
        }
    }
}

/// A redis-server master and two replicas of it started with `replica`
/// arguments: a redis-server one and an Amber one, both synced.
fn replicas_of_one_master(
    master: &[&str],
    replica: &[&str],
) -> (ServerProcess, ServerProcess, ServerProcess) {
    let m = ServerProcess::redis(master);
    let port = m.port.to_string();
    let mut args = vec!["--replicaof", "127.0.0.1", &port];
    args.extend_from_slice(replica);
    let redis = ServerProcess::redis(&args);
    let amber = ServerProcess::amber(&args);
    let mut mc = m.client();
    wait_synced(&mut mc, &mut redis.client());
    wait_synced(&mut mc, &mut amber.client());
    (m, redis, amber)
}

fn int(c: &mut RespClient, line: &str) -> i64 {
    let r = c.cmd_str(line);
    std::str::from_utf8(&r)
        .ok()
        .and_then(|t| t.strip_prefix(':'))
        .and_then(|t| t.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("{line}: {:?}", String::from_utf8_lossy(&r)))
}

/// What a replica shows of its keys: DBSIZE, which exist, the `db0` line
/// of `INFO keyspace` (without `avg_ttl`) and the names it tracks.
fn view(c: &mut RespClient) -> Vec<String> {
    let mut out = vec![
        format!("DBSIZE {}", int(c, "DBSIZE")),
        format!("EXISTS {}", int(c, "EXISTS mine later master plain")),
    ];
    let db0 = field(c, "keyspace", "db0");
    out.push(db0.split(",avg_ttl").next().unwrap_or_default().to_string());
    out.push(field(c, "stats", "slave_expires_tracked_keys"));
    out
}

#[test]
fn a_writable_replica_expires_its_own_keys_and_waits_for_the_masters() {
    let (master, redis, amber) = replicas_of_one_master(
        &["--enable-debug-command", "yes"],
        &["--replica-read-only", "no"],
    );
    let _log = LogOnPanic(&amber);
    let mut m = master.client();
    // The master expires its key only when it is read: its DEL comes when
    // the test asks for it.
    assert_eq!(m.cmd_str("DEBUG SET-ACTIVE-EXPIRE 0"), b"+OK\r\n");
    assert_eq!(m.cmd_str("SET master v PX 100"), b"+OK\r\n");
    let (mut r, mut a) = (redis.client(), amber.client());
    wait_synced(&mut m, &mut r);
    wait_synced(&mut m, &mut a);
    for c in [&mut r, &mut a] {
        assert_eq!(c.cmd_str("SET mine v PX 100"), b"+OK\r\n");
        assert_eq!(c.cmd_str("SET plain v"), b"+OK\r\n");
        // Due after the master's key: once the replica removed it, it had
        // the chance to remove the master's key too, had it been its own.
        assert_eq!(c.cmd_str("SET later v"), b"+OK\r\n");
        assert_eq!(c.cmd_str("PEXPIRE later 400"), b":1\r\n");
    }
    for c in [&mut r, &mut a] {
        wait_until(
            "the replica removes its own keys",
            Duration::from_secs(10),
            || int(c, "DBSIZE") == 2,
        );
    }
    let seen = view(&mut r);
    assert_eq!(
        seen,
        ["DBSIZE 2", "EXISTS 1", "keys=2,expires=1", "0"],
        "redis-server: the master's key, hidden, still counted"
    );
    assert_eq!(view(&mut a), seen);
    // The master's read expires its key: its DEL removes it everywhere.
    assert_eq!(m.cmd_str("EXISTS master"), b":0\r\n");
    wait_synced(&mut m, &mut r);
    wait_synced(&mut m, &mut a);
    let seen = view(&mut r);
    assert_eq!(seen[0], "DBSIZE 1");
    assert_eq!(view(&mut a), seen);
}

#[test]
fn a_writable_replica_tracks_the_names_its_clients_gave_a_deadline() {
    let (master, redis, amber) = replicas_of_one_master(&[], &["--replica-read-only", "no"]);
    let _log = LogOnPanic(&amber);
    let mut m = master.client();
    assert_eq!(m.cmd_str("SET frommaster v EX 1000"), b"+OK\r\n");
    let (mut r, mut a) = (redis.client(), amber.client());
    wait_synced(&mut m, &mut r);
    wait_synced(&mut m, &mut a);
    let mut tracked = Vec::new();
    for c in [&mut r, &mut a] {
        let mut counts = Vec::new();
        for line in [
            "SET a v EX 1000",
            "SET b v",
            "EXPIRE b 1000",
            "SELECT 3",
            "SET a v PX 100000",
            "SELECT 0",
        ] {
            c.cmd_str(line);
            counts.push(field(c, "stats", "slave_expires_tracked_keys"));
        }
        tracked.push(counts);
    }
    assert_eq!(tracked[0], ["1", "1", "2", "2", "2", "2"]);
    assert_eq!(tracked[1], tracked[0]);
}

/// Writes `batches` batches of 500 keys of 1 KiB on the master, pipelined,
/// each followed by the replicas' catching up (so their memory figures,
/// refreshed every few ms, see the earlier batches).
fn fill(m: &mut RespClient, replicas: &mut [RespClient], batches: usize) {
    let value = "x".repeat(1024);
    for b in 0..batches {
        let mut buf = Vec::new();
        for i in 0..500 {
            let key = format!("key:{b}:{i}");
            buf.extend(amber_tests::reply::encode(&["SET", key.as_str(), &value]));
        }
        m.send_raw(&buf).expect("send");
        for _ in 0..500 {
            assert_eq!(m.read_reply().expect("reply"), b"+OK\r\n");
        }
        for r in replicas.iter_mut() {
            wait_synced(m, r);
        }
    }
}

/// The keys a redis-server replica and an Amber replica (DRAM budget
/// 1 MiB) keep of a master's 4000 keys of 1 KiB, with `maxmemory 2mb`,
/// `allkeys-random` and `replica-ignore-maxmemory` set to `ignore`; and
/// whether Amber's replica moved values to its arena.
fn kept_with_maxmemory(ignore: &str) -> (i64, i64, bool) {
    let (master, redis, amber) = replicas_of_one_master(
        &[],
        &[
            "--maxmemory",
            "2mb",
            "--maxmemory-policy",
            "allkeys-random",
            "--replica-ignore-maxmemory",
            ignore,
        ],
    );
    let _log = LogOnPanic(&amber);
    let (mut m, mut r, mut a) = (master.client(), redis.client(), amber.client());
    assert_eq!(a.cmd_str("CONFIG SET dram-budget 1mb"), b"+OK\r\n");
    let mut replicas = [redis.client(), amber.client()];
    fill(&mut m, &mut replicas, 8);
    assert_eq!(int(&mut m, "DBSIZE"), 4000);
    let demoted = field(&mut a, "tiering", "demotions") != "0";
    (int(&mut r, "DBSIZE"), int(&mut a, "DBSIZE"), demoted)
}

#[test]
fn a_replica_ignores_maxmemory_unless_told_not_to() {
    // Default `yes`: exact copies of the master, past their maxmemory;
    // Amber's DRAM budget still demotes (that removes nothing).
    let (redis, amber, demoted) = kept_with_maxmemory("yes");
    assert_eq!(redis, 4000, "redis-server keeps every key");
    assert_eq!(amber, redis);
    assert!(demoted, "the DRAM budget demotes values on a replica too");
    // `no`: both evict down to their maxmemory.
    let (redis, amber, _) = kept_with_maxmemory("no");
    assert!(redis < 4000, "redis-server evicts: {redis}");
    assert!(amber < 4000, "amber evicts: {amber}");
}
