//! Keys of every type in both encodings, built with ordinary commands and
//! read back in a server-independent order: what the `DUMP`/`RESTORE` and
//! `MIGRATE` tests move between Redis and Amber.

use crate::reply::show;
use crate::RespClient;

/// The bulk string of a reply.
pub fn bulk_of(reply: &[u8]) -> Vec<u8> {
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
pub fn fixtures() -> Vec<(&'static str, Vec<Vec<String>>)> {
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
pub fn read(c: &mut RespClient, key: &str) -> Vec<String> {
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

/// Builds a stream on `c`: nodes of 3 entries, differing fields, a group
/// with pending entries of two consumers (one acknowledged, one claimed),
/// a second group, and, when `deletes`, entries deleted by `XDEL` (one a
/// node's first) and by an exact trim.
pub fn build_stream(c: &mut RespClient, key: &str, deletes: bool) {
    let ok = |r: Vec<u8>| assert!(!r.starts_with(b"-"), "{}", show(&r));
    ok(c.cmd(&["CONFIG", "SET", "stream-node-max-entries", "3"]));
    for i in 1..=10 {
        let id = format!("{i}-{}", i % 3);
        let f = if i % 4 == 0 { "other" } else { "f" };
        ok(c.cmd(&["XADD", key, &id, f, &format!("v{i}"), "n", "-70000"]));
    }
    ok(c.cmd(&["CONFIG", "SET", "stream-node-max-entries", "100"]));
    if deletes {
        ok(c.cmd(&["XDEL", key, "4-1", "5-2"]));
        ok(c.cmd(&["XTRIM", key, "MAXLEN", "7"]));
    }
    ok(c.cmd(&["XGROUP", "CREATE", key, "g", "0"]));
    ok(c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "alice",
        "COUNT",
        "3",
        "STREAMS",
        key,
        ">",
    ]));
    ok(c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "bob",
        "COUNT",
        "2",
        "STREAMS",
        key,
        ">",
    ]));
    ok(c.cmd(&["XACK", key, "g", "6-0"]));
    ok(c.cmd(&["XCLAIM", key, "g", "bob", "0", "7-1"]));
    ok(c.cmd(&["XGROUP", "CREATE", key, "h", "$"]));
    ok(c.cmd(&["XGROUP", "CREATECONSUMER", key, "h", "carol"]));
}

/// How a stream reads: everything `XINFO STREAM FULL` says (delivery and
/// seen times are the stored ones, carried by the payload), its entries
/// and each group's pending summary.
pub fn read_stream(c: &mut RespClient, key: &str) -> Vec<String> {
    let mut out = vec![
        show(&c.cmd(&["XINFO", "STREAM", key, "FULL"])),
        show(&c.cmd(&["XRANGE", key, "-", "+"])),
        show(&c.cmd(&["XLEN", key])),
    ];
    for g in ["g", "h"] {
        out.push(show(&c.cmd(&["XPENDING", key, g])));
    }
    out
}
