//! `DUMP` of either server restores into the other, for every type in
//! both of its encodings: the restored key reads back as the original on
//! the source server (hashtable hashes and sets, whose `DUMP` bytes follow
//! each server's own dict order, are covered here rather than byte for
//! byte in `conformance/dump.redis`).

use amber_tests::reply::show;
use amber_tests::{Pair, RespClient};

/// The bulk string of a reply.
fn bulk_of(reply: &[u8]) -> Vec<u8> {
    assert_eq!(
        reply.first(),
        Some(&b'$'),
        "not a bulk string: {}",
        show(reply)
    );
    let end = reply
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("a bulk header");
    let len: usize = std::str::from_utf8(&reply[1..end])
        .expect("length")
        .parse()
        .expect("length");
    reply[end + 2..end + 2 + len].to_vec()
}

/// Commands that build each test key (one key per entry).
fn fixtures() -> Vec<(&'static str, Vec<Vec<String>>)> {
    let words = |n: usize, f: &dyn Fn(usize) -> String| (0..n).map(f).collect::<Vec<_>>();
    let cmd = |head: &[&str], tail: Vec<String>| {
        head.iter()
            .map(|s| s.to_string())
            .chain(tail)
            .collect::<Vec<_>>()
    };
    vec![
        (
            "str-int",
            vec![cmd(&["SET", "str-int"], vec!["-123456".into()])],
        ),
        (
            "str-raw",
            vec![cmd(&["SET", "str-raw"], vec!["x".repeat(5000)])],
        ),
        (
            "list-small",
            vec![cmd(
                &["RPUSH", "list-small"],
                words(5, &|i| format!("{}", i * 1000)),
            )],
        ),
        (
            "list-big",
            vec![cmd(
                &["LPUSH", "list-big"],
                words(5000, &|i| format!("e{i}")),
            )],
        ),
        (
            "hash-small",
            vec![cmd(
                &["HSET", "hash-small"],
                words(10, &|i| format!("f{}", i / 2)),
            )],
        ),
        (
            "hash-big",
            vec![cmd(
                &["HSET", "hash-big"],
                words(2000, &|i| format!("f{i}")),
            )],
        ),
        (
            "set-int",
            vec![cmd(
                &["SADD", "set-int"],
                words(100, &|i| format!("{}", i * 99991)),
            )],
        ),
        (
            "set-big",
            vec![cmd(&["SADD", "set-big"], words(1000, &|i| format!("m{i}")))],
        ),
        (
            "zset-small",
            vec![cmd(
                &["ZADD", "zset-small"],
                words(20, &|i| {
                    if i % 2 == 0 {
                        format!("{}.5", i)
                    } else {
                        format!("m{i}")
                    }
                }),
            )],
        ),
        (
            "zset-big",
            vec![cmd(
                &["ZADD", "zset-big"],
                words(1000, &|i| {
                    if i % 2 == 0 {
                        format!("{}", i as f64 / 7.0)
                    } else {
                        format!("m{i}")
                    }
                }),
            )],
        ),
    ]
}

/// Reads a key whole, in a server-independent order.
fn read(c: &mut RespClient, key: &str) -> Vec<String> {
    let ty = show(&c.cmd(&["TYPE", key]));
    let mut out = vec![ty.clone(), show(&c.cmd(&["OBJECT", "ENCODING", key]))];
    let body = match ty.as_str() {
        t if t.contains("string") => vec![show(&c.cmd(&["GET", key]))],
        t if t.contains("list") => vec![show(&c.cmd(&["LRANGE", key, "0", "-1"]))],
        t if t.contains("zset") => vec![show(&c.cmd(&["ZRANGE", key, "0", "-1", "WITHSCORES"]))],
        t if t.contains("hash") => {
            let mut fields: Vec<String> = (0..2000).map(|i| format!("f{i}")).collect();
            fields.insert(0, key.to_string());
            fields.insert(0, "HMGET".to_string());
            vec![show(&c.cmd(&fields)), show(&c.cmd(&["HLEN", key]))]
        }
        _ => {
            let mut probe: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
            probe.extend((0..100).map(|i| format!("{}", i * 99991)));
            probe.insert(0, key.to_string());
            probe.insert(0, "SMISMEMBER".to_string());
            vec![show(&c.cmd(&probe)), show(&c.cmd(&["SCARD", key]))]
        }
    };
    out.extend(body);
    out
}

/// Builds every fixture on `src`, restores its DUMP on `dst` under
/// another name, and compares the two.
fn cross(src: &mut RespClient, dst: &mut RespClient, direction: &str) {
    src.cmd(&["FLUSHALL"]);
    dst.cmd(&["FLUSHALL"]);
    for (key, cmds) in fixtures() {
        for c in &cmds {
            src.cmd(c);
        }
        let payload = bulk_of(&src.cmd(&["DUMP", key]));
        let copy = format!("{key}-copy");
        let restore: [&[u8]; 4] = [b"RESTORE", copy.as_bytes(), b"0", &payload];
        assert_eq!(show(&dst.cmd(&restore)), "+OK\\r\\n", "{direction} {key}");
        assert_eq!(read(dst, &copy), read(src, key), "{direction}: {key}");
    }
}

#[test]
fn dumps_restore_across_redis_and_amber() {
    let pair = Pair::start(&[], &[]);
    let mut redis = pair.redis.client();
    let mut amber = pair.amber.client();
    cross(&mut redis, &mut amber, "redis -> amber");
    cross(&mut amber, &mut redis, "amber -> redis");
    let mut amber2 = pair.amber.client();
    cross(&mut amber, &mut amber2, "amber -> amber");
}

#[test]
fn dumps_restore_with_a_cold_tier() {
    let pair = Pair::start(&[], &["--dram-budget", "0"]);
    let mut redis = pair.redis.client();
    let mut amber = pair.amber.client();
    cross(&mut redis, &mut amber, "redis -> amber (dram-budget 0)");
    cross(&mut amber, &mut redis, "amber -> redis (dram-budget 0)");
}
