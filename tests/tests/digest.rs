//! `DEBUG DIGEST` and `DEBUG DIGEST-VALUE` side by side with redis-server:
//! the same dataset (every type in both encodings, integers, inf scores,
//! streams with consumer groups, TTLs, several databases) gives the same
//! digests byte for byte, also with every Amber value in the arena.

use amber_tests::reply::show;
use amber_tests::values::{build_stream, fixtures};
use amber_tests::{Pair, RespClient};

/// Both servers need DEBUG.
const COMMON: &[&str] = &["--enable-debug-command", "yes"];

fn ok(r: Vec<u8>) {
    assert!(!r.starts_with(b"-"), "{}", show(&r));
}

/// Builds the dataset on `c`; returns the keys of each database used.
fn build(c: &mut RespClient) -> Vec<(usize, Vec<String>)> {
    ok(c.cmd(&["FLUSHALL"]));
    let mut db0 = Vec::new();
    for (key, cmds) in fixtures() {
        for cmd in &cmds {
            ok(c.cmd(cmd));
        }
        db0.push(key.to_string());
    }
    build_stream(c, "stream-groups", false);
    build_stream(c, "stream-deletes", true);
    let extra: &[&[&str]] = &[
        &[
            "ZADD", "zinf", "-inf", "lo", "inf", "hi", "0.1", "tenth", "1e300", "big",
        ],
        &["ZADD", "zinf", "-3.5", "12", "0", "zero"],
        &[
            "SADD",
            "negints",
            "-1",
            "0",
            "9223372036854775807",
            "-9223372036854775808",
        ],
        &["SET", "empty", ""],
        &["SET", "ttl-str", "v"],
        &["EXPIRE", "ttl-str", "1000"],
        &["RPUSH", "ttl-list", "1", "2", "3"],
        &["PEXPIRE", "ttl-list", "900000"],
        &["HSET", "h-ints", "1", "2", "-3", "4"],
    ];
    for cmd in extra {
        ok(c.cmd(cmd));
    }
    db0.extend(
        [
            "stream-groups",
            "stream-deletes",
            "zinf",
            "negints",
            "empty",
            "ttl-str",
            "ttl-list",
            "h-ints",
        ]
        .map(String::from),
    );
    // Database 3: a key of the same name and value as one in database 0.
    ok(c.cmd(&["SELECT", "3"]));
    ok(c.cmd(&["SET", "empty", ""]));
    ok(c.cmd(&["SET", "n", "42"]));
    ok(c.cmd(&["EXPIRE", "n", "500"]));
    ok(c.cmd(&["SELECT", "0"]));
    vec![(0, db0), (3, vec!["empty".into(), "n".into()])]
}

/// DEBUG DIGEST, then per database DEBUG DIGEST-VALUE of every key and of a
/// missing one.
fn digests(c: &mut RespClient, dbs: &[(usize, Vec<String>)]) -> Vec<String> {
    let mut out = vec![show(&c.cmd(&["DEBUG", "DIGEST"]))];
    for (db, keys) in dbs {
        ok(c.cmd(&["SELECT", &db.to_string()]));
        let mut cmd = vec!["DEBUG", "DIGEST-VALUE", "no-such-key"];
        cmd.extend(keys.iter().map(String::as_str));
        out.push(show(&c.cmd(&cmd)));
    }
    ok(c.cmd(&["SELECT", "0"]));
    out
}

fn same_digests(amber_extra: &[&str]) {
    let pair = Pair::start(COMMON, amber_extra);
    let (mut redis, mut amber) = pair.clients();
    // An empty dataset: 40 zeros on both.
    let zeros = format!("+{}\\r\\n", "0".repeat(40));
    assert_eq!(show(&redis.cmd(&["DEBUG", "DIGEST"])), zeros);
    assert_eq!(show(&amber.cmd(&["DEBUG", "DIGEST"])), zeros);

    let dbs = build(&mut redis);
    assert_eq!(build(&mut amber), dbs);
    if amber_extra.contains(&"--dram-budget") {
        // The digest must read the values from the arena, not from DRAM.
        for key in &dbs[0].1 {
            let tier = show(&amber.cmd(&["OBJECT", "TIER", key]));
            assert_eq!(tier, "$4\\r\\ncold\\r\\n", "{key}");
        }
    }
    let want = digests(&mut redis, &dbs);
    assert_ne!(want[0], zeros);
    assert_eq!(digests(&mut amber, &dbs), want, "left: amber, right: redis");
    // DIGEST-VALUE without keys: an empty array.
    assert_eq!(
        show(&amber.cmd(&["DEBUG", "DIGEST-VALUE"])),
        show(&redis.cmd(&["DEBUG", "DIGEST-VALUE"]))
    );
}

#[test]
fn digests_match_redis() {
    same_digests(&[]);
}

#[test]
fn digests_match_redis_with_values_in_the_arena() {
    same_digests(&["--dram-budget", "0"]);
}

#[test]
fn digest_follows_changes() {
    let pair = Pair::start(COMMON, &[]);
    let (mut redis, mut amber) = pair.clients();
    let steps: &[&[&str]] = &[
        &["RPUSH", "l", "a", "b"],
        &["LPUSH", "l", "c"],
        &["SET", "s", "1"],
        &["EXPIRE", "s", "100"],
        &["PERSIST", "s"],
        &["MOVE", "s", "1"],
        &["XADD", "x", "5-1", "f", "v"],
        // Consumer groups are not part of a stream's digest.
        &["XGROUP", "CREATE", "x", "g", "0"],
        &["DEL", "l"],
    ];
    for step in steps {
        ok(redis.cmd(step));
        ok(amber.cmd(step));
        let (r, a) = (
            redis.cmd(&["DEBUG", "DIGEST"]),
            amber.cmd(&["DEBUG", "DIGEST"]),
        );
        assert_eq!(show(&a), show(&r), "after {step:?}");
    }
}
