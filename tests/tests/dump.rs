//! `DUMP` of either server restores into the other, for every type in
//! both of its encodings: the restored key reads back as the original on
//! the source server (hashtable hashes and sets, whose `DUMP` bytes follow
//! each server's own dict order, are covered here rather than byte for
//! byte in `conformance/dump.redis`).

use amber_tests::reply::show;
use amber_tests::values::{build_stream, bulk_of, fixtures, read, read_stream};
use amber_tests::{Pair, RespClient};

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

fn restore(c: &mut RespClient, key: &str, payload: &[u8]) {
    let r = c.cmd(&[b"RESTORE", key.as_bytes(), b"0", payload]);
    assert_eq!(show(&r), "+OK\\r\\n", "RESTORE {key}");
}

#[test]
fn streams_with_groups_restore_across_redis_and_amber() {
    let pair = Pair::start(&[], &[]);
    let mut redis = pair.redis.client();
    let mut amber = pair.amber.client();
    for deletes in [false, true] {
        redis.cmd(&["FLUSHALL"]);
        amber.cmd(&["FLUSHALL"]);
        build_stream(&mut redis, "s", deletes);
        let from_redis = bulk_of(&redis.cmd(&["DUMP", "s"]));
        restore(&mut amber, "s", &from_redis);
        assert_eq!(read_stream(&mut amber, "s"), read_stream(&mut redis, "s"));
        let from_amber = bulk_of(&amber.cmd(&["DUMP", "s"]));
        if !deletes {
            // Byte for byte, times included (they are the stored ones).
            assert_eq!(show(&from_amber), show(&from_redis));
        }
        restore(&mut redis, "back", &from_amber);
        assert_eq!(
            read_stream(&mut redis, "back"),
            read_stream(&mut redis, "s"),
            "deletes: {deletes}"
        );
        // Built by the same commands on Amber: the same reads; without
        // deleted entries and groups' times, the same bytes.
        build_stream(&mut amber, "own", deletes);
        restore(&mut redis, "own", &bulk_of(&amber.cmd(&["DUMP", "own"])));
        let entries = |c: &mut RespClient, k: &str| show(&c.cmd(&["XRANGE", k, "-", "+"]));
        assert_eq!(entries(&mut redis, "own"), entries(&mut redis, "s"));
    }
    // No groups, no deletions: Amber's own DUMP is Redis's.
    for c in [&mut redis, &mut amber] {
        c.cmd(&["FLUSHALL"]);
        c.cmd(&["CONFIG", "SET", "stream-node-max-entries", "2"]);
        for i in 1..=5 {
            c.cmd(&[
                "XADD",
                "plain",
                &format!("{i}-0"),
                "a",
                &i.to_string(),
                "b",
                "x",
            ]);
        }
        c.cmd(&[
            "XADD",
            "plain",
            "9-9",
            "c",
            "long value long value long value",
        ]);
        c.cmd(&["CONFIG", "SET", "stream-node-max-entries", "100"]);
    }
    assert_eq!(
        show(&amber.cmd(&["DUMP", "plain"])),
        show(&redis.cmd(&["DUMP", "plain"]))
    );
}

/// `OBJECT IDLETIME`/`OBJECT FREQ` of `key` as an integer (panics on
/// anything else, e.g. a policy error).
fn int_reply(c: &mut RespClient, args: &[&str]) -> i64 {
    let r = c.cmd(args);
    let s = String::from_utf8_lossy(&r);
    s.strip_prefix(':')
        .and_then(|n| n.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("{args:?}: {}", show(&r)))
}

/// tests/unit/dump.tcl's "RESTORE can set LRU" and "RESTORE can set LFU",
/// side by side: `IDLETIME` applies under an LRU policy, `FREQ` under an
/// LFU one, and each is ignored under the other.
#[test]
fn restore_sets_lru_idle_time_and_lfu_counter() {
    let pair = Pair::start(&[], &[]);
    let (mut redis, mut amber) = pair.clients();
    for (name, c) in [("redis", &mut redis), ("amber", &mut amber)] {
        c.cmd(&["SET", "foo", "bar"]);
        let payload = bulk_of(&c.cmd(&["DUMP", "foo"]));
        let restore = |c: &mut RespClient, opts: &[&str]| {
            let mut args: Vec<&[u8]> = vec![b"RESTORE", b"foo", b"0", &payload, b"REPLACE"];
            args.extend(opts.iter().map(|o| o.as_bytes()));
            assert_eq!(show(&c.cmd(&args)), "+OK\\r\\n", "{name} {opts:?}");
        };
        c.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
        restore(c, &["IDLETIME", "1000"]);
        let idle = int_reply(c, &["OBJECT", "IDLETIME", "foo"]);
        assert!((1000..=1010).contains(&idle), "{name}: idle {idle}");
        // FREQ is ignored under an LRU policy: the key is new.
        restore(c, &["FREQ", "100"]);
        let idle = int_reply(c, &["OBJECT", "IDLETIME", "foo"]);
        assert!(idle <= 10, "{name}: idle {idle}");

        c.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]);
        restore(c, &["FREQ", "100"]);
        assert_eq!(int_reply(c, &["OBJECT", "FREQ", "foo"]), 100, "{name}");
        // IDLETIME is ignored under an LFU policy: a new key's counter.
        restore(c, &["IDLETIME", "1000"]);
        assert_eq!(int_reply(c, &["OBJECT", "FREQ", "foo"]), 5, "{name}");
        assert_eq!(show(&c.cmd(&["GET", "foo"])), "$3\\r\\nbar\\r\\n");
        c.cmd(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    }
}
