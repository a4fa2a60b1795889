//! A client blocked in `XREADGROUP` whose stream goes away (deleted,
//! overwritten by another type, in a transaction, flushed, swapped,
//! expired) is unblocked at once with Redis 7.0's
//! `-UNBLOCKED the stream key no longer exists`; a plain `XREAD` stays
//! blocked until a new stream serves it. Each scenario runs on a real
//! `redis-server` and on Amber; the replies must be identical.

use std::time::Duration;

use amber_tests::{connect, differential, wait_blocked, RespClient};

/// A client blocked in `XREADGROUP ... BLOCK 0` on `mystream` (group
/// `g`), with `mystream` made first.
fn blocked_reader(port: u16, setup: &mut RespClient) -> RespClient {
    setup.cmd(&["DEL", "mystream"]);
    setup.cmd(&["XADD", "mystream", "666", "f", "v"]);
    setup.cmd(&["XGROUP", "CREATE", "mystream", "g", "$"]);
    let mut reader = connect(port);
    reader.set_timeout(Duration::from_secs(5));
    reader
        .send(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "alice",
            "BLOCK",
            "0",
            "STREAMS",
            "mystream",
            ">",
        ])
        .expect("send");
    wait_blocked(port, 1);
    reader
}

/// What a blocked reader gets, or a marker if it gets nothing in time.
fn outcome(reader: &mut RespClient) -> Vec<u8> {
    reader
        .read_reply()
        .unwrap_or_else(|_| b"<still blocked>".to_vec())
}

#[test]
fn deleting_or_overwriting_the_stream_unblocks_xreadgroup() {
    differential("del, set, multi", &[], |port| {
        let mut c = connect(port);
        let mut out = Vec::new();
        // DEL
        let mut r = blocked_reader(port, &mut c);
        out.push(c.cmd(&["DEL", "mystream"]));
        out.push(outcome(&mut r));
        // Overwritten by SET
        let mut r = blocked_reader(port, &mut c);
        out.push(c.cmd(&["SET", "mystream", "val1"]));
        out.push(outcome(&mut r));
        // A transaction that deletes it and makes a set of it
        let mut r = blocked_reader(port, &mut c);
        for cmd in [
            &["MULTI"][..],
            &["DEL", "mystream"],
            &["SADD", "mystream", "e1"],
            &["EXEC"],
        ] {
            out.push(c.cmd(cmd));
        }
        out.push(outcome(&mut r));
        // The error counts as an error reply.
        let info = c.cmd(&["INFO", "errorstats"]);
        let text = String::from_utf8_lossy(&info).to_string();
        out.push(
            text.lines()
                .find(|l| l.starts_with("errorstat_UNBLOCKED"))
                .unwrap_or("no UNBLOCKED errorstat")
                .as_bytes()
                .to_vec(),
        );
        out
    });
}

#[test]
fn flushing_or_swapping_the_database_unblocks_xreadgroup() {
    differential("flushall, swapdb", &[], |port| {
        let mut c = connect(port);
        let mut out = Vec::new();
        let mut r = blocked_reader(port, &mut c);
        out.push(c.cmd(&["FLUSHALL"]));
        out.push(outcome(&mut r));
        // SWAPDB with a database where the key does not exist.
        let mut r = blocked_reader(port, &mut c);
        out.push(c.cmd(&["SWAPDB", "0", "4"]));
        out.push(outcome(&mut r));
        out.push(c.cmd(&["FLUSHALL"]));
        // SWAPDB with a database where the key is a list.
        c.cmd(&["SELECT", "4"]);
        c.cmd(&["LPUSH", "mystream", "e1"]);
        c.cmd(&["SELECT", "0"]);
        let mut r = blocked_reader(port, &mut c);
        out.push(c.cmd(&["SWAPDB", "0", "4"]));
        out.push(outcome(&mut r));
        out.push(c.cmd(&["FLUSHALL"]));
        // SWAPDB with a database where the key is a stream too: stays blocked,
        // then an entry added to that stream's group... there is no group
        // there, so XADD serves nobody; DEL then unblocks it.
        c.cmd(&["SELECT", "4"]);
        c.cmd(&["XADD", "mystream", "1", "f", "v"]);
        c.cmd(&["SELECT", "0"]);
        let mut r = blocked_reader(port, &mut c);
        out.push(c.cmd(&["SWAPDB", "0", "4"]));
        r.set_timeout(Duration::from_millis(300));
        out.push(outcome(&mut r));
        r.set_timeout(Duration::from_secs(5));
        out.push(c.cmd(&["DEL", "mystream"]));
        out.push(outcome(&mut r));
        out
    });
}

#[test]
fn an_expired_stream_unblocks_xreadgroup() {
    differential("expire", &[], |port| {
        let mut c = connect(port);
        let mut r = blocked_reader(port, &mut c);
        // Removed by the active expiry cycle: no command touches the key.
        let out = vec![c.cmd(&["PEXPIRE", "mystream", "50"]), outcome(&mut r)];
        out
    });
}

#[test]
fn a_plain_xread_stays_blocked_until_a_new_stream_serves_it() {
    differential("xread", &[], |port| {
        let mut c = connect(port);
        let mut out = Vec::new();
        c.cmd(&["DEL", "mystream"]);
        c.cmd(&["XADD", "mystream", "666", "f", "v"]);
        let mut r = connect(port);
        r.set_timeout(Duration::from_secs(5));
        r.send(&["XREAD", "BLOCK", "0", "STREAMS", "mystream", "$"])
            .expect("send");
        wait_blocked(port, 1);
        out.push(c.cmd(&["DEL", "mystream"]));
        out.push(c.cmd(&["SET", "mystream", "v"]));
        out.push(c.cmd(&["DEL", "mystream"]));
        out.push(c.cmd(&["XADD", "mystream", "667", "f", "v"]));
        out.push(outcome(&mut r));
        out
    });
}

/// The counts of a blocked command served with an error: `XGROUP DESTROY`
/// answers the blocked `XREADGROUP` `-NOGROUP`, which counts as an error
/// reply and a failed call (Redis's "XGROUP DESTROY should unblock
/// XREADGROUP with -NOGROUP"); so does a lost stream's `-UNBLOCKED`.
#[test]
fn an_error_served_to_a_blocked_client_is_counted() {
    differential("blocked errors counted", &[], |p| {
        let mut c = connect(p);
        let counts = |c: &mut RespClient| {
            amber_tests::info_counts(
                c,
                &["errorstats", "commandstats", "stats"],
                &["errorstat_", "cmdstat_xreadgroup:", "total_error_replies:"],
            )
        };
        let mut out = vec![c.cmd(&["CONFIG", "RESETSTAT"])];
        let mut reader = blocked_reader(p, &mut c);
        out.push(c.cmd(&["XGROUP", "DESTROY", "mystream", "g"]));
        out.push(outcome(&mut reader));
        out.push(counts(&mut c));
        let mut reader = blocked_reader(p, &mut c);
        out.push(c.cmd(&["DEL", "mystream"]));
        out.push(outcome(&mut reader));
        out.push(counts(&mut c));
        out
    });
}
