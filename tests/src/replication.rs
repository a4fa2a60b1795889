//! Helpers for replication tests: waiting for a replica to catch up with
//! its master, and reading a whole dataset through commands to compare
//! two servers key by key (types, contents, TTLs).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::reply::{self, Reply};
use crate::RespClient;

/// Runs `scenario` against a redis-server and an Amber at the same time
/// (each on its own thread: a scenario that waits seconds costs its wait
/// once) and asserts both observed the same.
pub fn assert_same_side_by_side<T>(scenario: impl Fn(crate::Kind) -> T + Sync)
where
    T: Send + PartialEq + std::fmt::Debug,
{
    let (redis, amber) = std::thread::scope(|s| {
        let redis = s.spawn(|| scenario(crate::Kind::Redis));
        let amber = s.spawn(|| scenario(crate::Kind::Amber));
        (redis.join(), amber.join())
    });
    let (redis, amber) = (redis.expect("redis side"), amber.expect("amber side"));
    assert_eq!(amber, redis, "left: amber, right: redis");
}

/// Polls `ok` every 50 ms until it holds; panics after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One parsed reply (panics on bytes that are not one).
pub fn parsed(bytes: &[u8]) -> Reply {
    match reply::parse(bytes) {
        Ok(Some((r, _))) => r,
        other => panic!("unparsable reply {:?}: {other:?}", reply::show(bytes)),
    }
}

/// Runs a command and parses its reply.
pub fn q(c: &mut RespClient, args: &[&str]) -> Reply {
    parsed(&c.cmd(args))
}

/// The leaves of a reply, as bytes (nil as `<nil>`).
pub fn leaves(r: &Reply, out: &mut Vec<Vec<u8>>) {
    if r.items.is_empty() && matches!(r.kind, b'$' | b'+' | b':' | b'-' | b',' | b'_') {
        match (&r.data, r.kind) {
            (Some(d), _) => out.push(d.clone()),
            (None, b'$') | (None, b'_') => out.push(b"<nil>".to_vec()),
            (None, _) => out.push(r.head.clone()),
        }
    }
    for i in &r.items {
        leaves(i, out);
    }
}

/// The leaves of a reply ([`leaves`]) in a new vector.
pub fn flat(r: &Reply) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    leaves(r, &mut v);
    v
}

/// `INFO <section>` as field -> value, in order.
pub fn info(c: &mut RespClient, section: &str) -> Vec<(String, String)> {
    let text = q(c, &["INFO", section]).text();
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// One field of `INFO <section>` (empty when absent).
pub fn field(c: &mut RespClient, section: &str, name: &str) -> String {
    info(c, section)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .unwrap_or_default()
}

/// Waits until `replica`'s link is up and it processed everything the
/// master sent so far.
pub fn wait_synced(master: &mut RespClient, replica: &mut RespClient) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let target = field(master, "replication", "master_repl_offset");
        let ours = info(replica, "replication");
        let get = |name: &str| {
            ours.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_default()
        };
        if get("master_link_status") == "up" && get("slave_repl_offset") == target {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the replica did not catch up with the master's offset {target}: {ours:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One key as read through commands: type, contents (order-free types
/// sorted), PTTL.
pub type Dataset = BTreeMap<(usize, Vec<u8>), (String, Vec<Vec<u8>>, i64)>;

/// Waits until the server behind `c`, a master that ran `FAILOVER`, is
/// the new master's replica with its link up and the failover over.
pub fn wait_failed_over(c: &mut RespClient, what: &str) {
    wait_until(what, Duration::from_secs(20), || {
        field(c, "replication", "master_link_status") == "up"
            && field(c, "replication", "master_failover_state") == "no-failover"
    });
}

/// Every key of every database, read with type-specific commands.
pub fn dataset(c: &mut RespClient) -> Dataset {
    let mut out = Dataset::new();
    for db in 0..16usize {
        let n = db.to_string();
        q(c, &["SELECT", &n]);
        let mut keys = flat(&q(c, &["KEYS", "*"]));
        keys.sort();
        for key in keys {
            let k = String::from_utf8(key.clone()).expect("utf-8 test keys");
            let kind = q(c, &["TYPE", &k]).text();
            if kind == "none" {
                // Listed, but logically expired (a replica waits for the
                // master's DEL).
                continue;
            }
            let contents = match kind.as_str() {
                "string" => flat(&q(c, &["GET", &k])),
                "list" => flat(&q(c, &["LRANGE", &k, "0", "-1"])),
                "set" => {
                    let mut v = flat(&q(c, &["SMEMBERS", &k]));
                    v.sort();
                    v
                }
                "zset" => flat(&q(c, &["ZRANGE", &k, "0", "-1", "WITHSCORES"])),
                "hash" => {
                    let v = flat(&q(c, &["HGETALL", &k]));
                    let mut pairs: Vec<Vec<u8>> =
                        v.chunks(2).map(|p| p.concat()).collect::<Vec<_>>();
                    pairs.sort();
                    pairs
                }
                "stream" => flat(&q(c, &["XRANGE", &k, "-", "+"])),
                other => panic!("unexpected type {other}"),
            };
            let pttl = q(c, &["PTTL", &k]).integer().expect("PTTL");
            out.insert((db, key), (kind, contents, pttl));
        }
    }
    q(c, &["SELECT", "0"]);
    out
}

/// Same keys, types and contents; TTLs within 3 s of each other.
pub fn assert_same_data(master: &Dataset, replica: &Dataset) {
    let mk: Vec<_> = master.keys().collect();
    let rk: Vec<_> = replica.keys().collect();
    if mk != rk {
        // What the side that has a key says of it (type, PTTL): a key
        // about to expire reads differently from a lost write.
        let only = |a: &Dataset, b: &Dataset| -> Vec<String> {
            a.iter()
                .filter(|(k, _)| !b.contains_key(*k))
                .map(|((db, key), (kind, _, pttl))| {
                    format!(
                        "db {db} {:?} ({kind}, pttl {pttl})",
                        String::from_utf8_lossy(key)
                    )
                })
                .collect()
        };
        panic!(
            "the key sets differ: only on the master {:?}, only on the replica {:?}",
            only(master, replica),
            only(replica, master)
        );
    }
    for (k, (mt, mc, mttl)) in master {
        let (rt, rc, rttl) = &replica[k];
        assert_eq!(mt, rt, "type of {k:?}");
        assert_eq!(mc, rc, "contents of {k:?}");
        if *mttl < 0 || *rttl < 0 {
            assert_eq!(mttl, rttl, "TTL of {k:?}");
        } else {
            assert!((mttl - rttl).abs() < 3000, "TTL of {k:?}: {mttl} vs {rttl}");
        }
    }
}

/// What a replica made by hand receives after `SYNC`.
pub struct HandMadeReplica {
    /// The connection, to read the stream from.
    pub stream: std::net::TcpStream,
    /// The RDB payload.
    pub payload: Vec<u8>,
    /// Stream bytes read along with the payload.
    pub rest: Vec<u8>,
}

/// Sends `SYNC` on `c` and reads the `$<len>` header (skipping the newlines
/// Redis sends while it prepares the payload) and the RDB payload.
pub fn hand_made_replica(c: &mut RespClient) -> HandMadeReplica {
    use std::io::Read;
    c.send(&["SYNC"]).expect("send SYNC");
    let mut s = c.stream().try_clone().expect("clone");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        while !got.windows(2).any(|w| w == b"\r\n") {
            let n = s.read(&mut buf).expect("read the header");
            got.extend_from_slice(&buf[..n]);
        }
        if got.first() == Some(&b'\n') {
            got.remove(0);
            continue;
        }
        break;
    }
    let end = got.windows(2).position(|w| w == b"\r\n").expect("header");
    let len: usize = std::str::from_utf8(&got[1..end])
        .expect("utf-8")
        .parse()
        .expect("length");
    while got.len() < end + 2 + len {
        let n = s.read(&mut buf).expect("read the payload");
        got.extend_from_slice(&buf[..n]);
    }
    let rest = got.split_off(end + 2 + len);
    HandMadeReplica {
        stream: s,
        payload: got.split_off(end + 2),
        rest,
    }
}
