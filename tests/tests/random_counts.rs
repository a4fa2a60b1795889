//! `HRANDFIELD`, `SRANDMEMBER` and `ZRANDMEMBER` with huge negative counts
//! on existing keys (that many picks, repetition allowed).
//!
//! Redis 7.0 builds such a reply whole in the client's output buffer. With
//! `client-output-buffer-limit normal <hard>` set it closes the client once
//! the buffer passes the limit: the client gets no byte, not even the
//! replies pipelined before, and a transaction still runs to its end
//! (`tests/unit/obuf-limits.tcl`). Without a limit (the default) it grows
//! until the machine runs out of memory and the kernel kills it, so that
//! case runs on Amber only: Amber closes the client the same way, before
//! allocating anything. The error replies (range checks, missing keys,
//! other types) are in the conformance corpus.

use std::time::{Duration, Instant};

use amber_tests::connect;
use amber_tests::reply::show;
use amber_tests::{RespClient, ServerProcess};

/// A hard limit for the `normal` class small enough to test quickly.
const LIMIT: &str = "normal 1000000 0 0";

/// Sends `PING before`, `args`, `PING after` in one write and returns what
/// arrives until the server closes the connection (and whether it did).
fn pipelined(port: u16, args: &[&str]) -> (String, bool) {
    let mut c = connect(port);
    let mut req = amber_tests::reply::encode(&["PING", "before"]);
    req.extend(amber_tests::reply::encode(args));
    req.extend(amber_tests::reply::encode(&["PING", "after"]));
    c.send_raw(&req).expect("send");
    let (bytes, closed) = c.read_until_close(Duration::from_secs(20));
    (show(&bytes[..bytes.len().min(200)]), closed)
}

fn fill(c: &mut RespClient) {
    c.cmd(&["HSET", "h", "f", "v"]);
    c.cmd(&["SADD", "s", "m"]);
    c.cmd(&["SADD", "si", "1", "2", "3"]);
    c.cmd(&["ZADD", "z", "1.5", "m"]);
    let big = "x".repeat(100);
    c.cmd(&["SADD", "big", &big]);
    c.cmd(&["HSET", "bigh", &big, &big]);
    c.cmd(&["ZADD", "bigz", "1", &big]);
}

/// Counts that cannot fit, counts whose picks pass the limit on the way,
/// and counts that fit, with `LIMIT` set.
fn with_limit(port: u16) -> Vec<String> {
    let mut c = connect(port);
    let mut out = vec![show(&c.cmd(&[
        "CONFIG",
        "SET",
        "client-output-buffer-limit",
        LIMIT,
    ]))];
    fill(&mut c);
    let closing: &[&[&str]] = &[
        &["HRANDFIELD", "h", "-999999999"],
        &["HRANDFIELD", "h", "-1000000000000", "WITHVALUES"],
        &["HRANDFIELD", "h", "-4611686018427387903", "WITHVALUES"],
        &["HRANDFIELD", "h", "-9223372036854775807"],
        &["SRANDMEMBER", "s", "-1000000000000"],
        &["SRANDMEMBER", "si", "-9223372036854775807"],
        &["ZRANDMEMBER", "z", "-1000000000000"],
        &["ZRANDMEMBER", "z", "-4611686018427387903", "WITHSCORES"],
        &["SRANDMEMBER", "s", "-200000"],
        // Passing the limit mid-way (100-byte members).
        &["SRANDMEMBER", "big", "-100000"],
        &["HRANDFIELD", "bigh", "-50000", "WITHVALUES"],
        &["ZRANDMEMBER", "bigz", "-100000"],
        &["ZRANDMEMBER", "bigz", "-50000", "WITHSCORES"],
    ];
    for args in closing {
        let (bytes, closed) = pipelined(port, args);
        out.push(format!("{}: {bytes:?} closed={closed}", args.join(" ")));
    }
    // Replies that fit are whole (one member: the bytes are known).
    for args in [
        &["SRANDMEMBER", "s", "-100000"][..],
        &["HRANDFIELD", "h", "-30000", "WITHVALUES"],
        &["ZRANDMEMBER", "z", "-30000", "WITHSCORES"],
        &["SRANDMEMBER", "big", "-5000"],
    ] {
        let r = c.cmd(args);
        out.push(format!(
            "{}: {} bytes, starts {}",
            args.join(" "),
            r.len(),
            show(&r[..r.len().min(40)])
        ));
    }
    // A transaction runs to its end although its client is closed.
    let mut t = connect(port);
    out.push(show(&t.cmd(&["MULTI"])));
    out.push(show(&t.cmd(&["SET", "k1", "v1"])));
    out.push(show(&t.cmd(&["SRANDMEMBER", "s", "-1000000000000"])));
    out.push(show(&t.cmd(&["SET", "k2", "v2"])));
    t.send(&["EXEC"]).expect("send");
    let (bytes, closed) = t.read_until_close(Duration::from_secs(20));
    out.push(format!("EXEC: {:?} closed={closed}", show(&bytes)));
    out.push(show(&c.cmd(&["MGET", "k1", "k2"])));
    out.push(show(&c.cmd(&[
        "CONFIG",
        "SET",
        "client-output-buffer-limit",
        "normal 0 0 0",
    ])));
    out.push(show(&c.cmd(&["PING"])));
    out
}

#[test]
fn huge_counts_close_the_client_at_the_output_limit_like_redis() {
    let amber = ServerProcess::amber_with_env_args(&[]);
    let got = with_limit(amber.port);
    let redis = ServerProcess::redis(&[]);
    let want = with_limit(redis.port);
    assert_eq!(got, want, "amber (left) vs redis (right)");
}

/// With no limit configured (the default), Amber closes the client before
/// building a reply that cannot fit its own cap, at once and without
/// allocating it; the server and other clients carry on. (Not run on
/// Redis: it would be killed for lack of memory.)
#[test]
fn huge_counts_without_a_limit_close_the_client_at_once() {
    let mut amber = ServerProcess::amber_with_env_args(&[]);
    let mut c = connect(amber.port);
    fill(&mut c);
    for args in [
        &["HRANDFIELD", "h", "-1000000000000"][..],
        &["HRANDFIELD", "h", "-4611686018427387903", "WITHVALUES"],
        &["SRANDMEMBER", "s", "-9223372036854775807"],
        &["SRANDMEMBER", "si", "-1000000000000"],
        &["ZRANDMEMBER", "z", "-9223372036854775807"],
        &["ZRANDMEMBER", "z", "-4611686018427387903", "WITHSCORES"],
    ] {
        let start = Instant::now();
        let (bytes, closed) = pipelined(amber.port, args);
        assert!(
            closed && bytes.is_empty(),
            "{args:?}: {bytes:?} closed={closed}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{args:?} took {:?}",
            start.elapsed()
        );
        assert_eq!(show(&c.cmd(&["PING"])), "+PONG\\r\\n");
    }
    assert!(amber.is_running());
    if let Some(rss) = amber.rss_kib() {
        assert!(rss < 512 * 1024, "RSS grew to {rss} KiB");
    }
    // The other client's connection is intact and the data untouched.
    assert_eq!(show(&c.cmd(&["HLEN", "h"])), ":1\\r\\n");
}
