//! Pub/sub and keyspace notifications against the real binary, compared
//! byte for byte with a real `redis-server`: PUBLISH receiver counts,
//! channel and pattern delivery, RESP2 arrays and RESP3 pushes,
//! subscriber-mode errors, PUBSUB introspection, and keyspace notification
//! messages for a few commands and for expiry.

use std::time::Duration;

use amber_tests::RespClient;
use amber_tests::{connect, differential};

/// Reads `n` more replies (messages) from a subscriber.
fn read_n(c: &mut RespClient, n: usize, out: &mut Vec<Vec<u8>>) {
    for _ in 0..n {
        out.push(c.read_reply().expect("a message"));
    }
}

#[test]
fn publish_to_channels_and_patterns_resp2() {
    differential("resp2 delivery", &[], |p| {
        let (mut sub, mut publ) = (connect(p), connect(p));
        let mut out = vec![sub.cmd_str("SUBSCRIBE news"), sub.cmd_str("PSUBSCRIBE n*")];
        out.push(publ.cmd_str("PUBLISH news hello"));
        read_n(&mut sub, 2, &mut out);
        out.push(publ.cmd_str("PUBLISH nothing x"));
        read_n(&mut sub, 1, &mut out);
        out.push(publ.cmd_str("PUBLISH other x"));
        out.push(publ.cmd_str("PUBSUB NUMSUB news nothing"));
        out.push(publ.cmd_str("PUBSUB NUMPAT"));
        out.push(publ.cmd_str("PUBSUB CHANNELS"));
        out.push(publ.cmd_str("PUBSUB CHANNELS x*"));
        // Subscriber mode: only some commands are allowed in RESP2.
        out.push(sub.cmd_str("GET k"));
        out.push(sub.cmd_str("PING"));
        out.push(sub.cmd_str("PING hi"));
        out.push(sub.cmd_str("UNSUBSCRIBE news"));
        out.push(sub.cmd_str("PUNSUBSCRIBE"));
        out.push(sub.cmd_str("PUNSUBSCRIBE"));
        // No subscription left: normal commands again.
        out.push(sub.cmd_str("PING"));
        out.push(publ.cmd_str("PUBLISH news hello"));
        out
    });
}

#[test]
fn publish_resp3_pushes() {
    differential("resp3 delivery", &[], |p| {
        let (mut sub, mut publ) = (connect(p), connect(p));
        let mut out = vec![];
        let hello = sub.cmd_str("HELLO 3");
        out.push(vec![hello.first().copied().unwrap_or(0)]);
        out.push(sub.cmd_str("SUBSCRIBE a"));
        out.push(sub.cmd_str("SSUBSCRIBE s"));
        out.push(publ.cmd_str("PUBLISH a m1"));
        read_n(&mut sub, 1, &mut out);
        out.push(publ.cmd_str("SPUBLISH s m2"));
        read_n(&mut sub, 1, &mut out);
        // Any command is allowed in RESP3; a message to oneself comes first.
        out.push(sub.cmd_str("SET k v"));
        out.push(sub.cmd_str("PUBLISH a self"));
        read_n(&mut sub, 1, &mut out);
        out.push(sub.cmd_str("PING"));
        out.push(publ.cmd_str("PUBSUB SHARDNUMSUB s"));
        out.push(publ.cmd_str("PUBSUB SHARDCHANNELS"));
        out.push(sub.cmd_str("SUNSUBSCRIBE"));
        out.push(sub.cmd_str("UNSUBSCRIBE"));
        out.push(sub.cmd_str("UNSUBSCRIBE"));
        out
    });
}

#[test]
fn reset_leaves_subscriptions() {
    differential("reset", &[], |p| {
        let (mut sub, mut publ) = (connect(p), connect(p));
        let mut out = vec![sub.cmd_str("SUBSCRIBE c"), sub.cmd_str("RESET")];
        out.push(publ.cmd_str("PUBLISH c x"));
        out.push(publ.cmd_str("PUBSUB NUMSUB c"));
        out.push(sub.cmd_str("GET k"));
        out
    });
}

#[test]
fn keyspace_notifications() {
    differential("notifications", &[], |p| {
        let (mut sub, mut c) = (connect(p), connect(p));
        let mut out = vec![c.cmd_str("CONFIG SET notify-keyspace-events KEA")];
        out.push(sub.cmd_str("PSUBSCRIBE __key*__:*"));
        // Each command's events: keyspace message then keyevent message.
        let steps: &[(&str, usize)] = &[
            ("SET k v", 2),
            ("SET k v EX 100", 4),
            ("APPEND k w", 2),
            ("SETRANGE k 0 x", 2),
            ("PERSIST k", 2),
            ("RENAME k k2", 4),
            ("INCRBY n 5", 2),
            ("INCRBYFLOAT n 1.5", 2),
            ("SETBIT b 1 1", 2),
            ("DEL k2 n b nosuch", 6),
            ("MSET a 1 b 2", 4),
            ("EXPIRE a 100", 2),
            ("MOVE a 2", 4),
            ("GETDEL b", 2),
        ];
        for (cmd, n) in steps {
            out.push(c.cmd_str(cmd));
            read_n(&mut sub, *n, &mut out);
        }
        // Expiry: the `expired` event, from the active cycle.
        out.push(c.cmd_str("SET e v PX 50"));
        read_n(&mut sub, 4, &mut out);
        sub.set_timeout(Duration::from_secs(5));
        read_n(&mut sub, 2, &mut out);
        // `n`: new keys.
        out.push(c.cmd_str("CONFIG SET notify-keyspace-events En$"));
        out.push(c.cmd_str("SET fresh 1"));
        read_n(&mut sub, 2, &mut out);
        out.push(c.cmd_str("CONFIG SET notify-keyspace-events \"\""));
        out.push(c.cmd_str("SELECT 2"));
        out.push(c.cmd_str("FLUSHDB"));
        out
    });
}

/// `CLIENT REPLY OFF` and `SKIP` silence replies, not pushes: subscribe and
/// unsubscribe confirmations and published messages still arrive, in RESP2
/// and RESP3 (Redis 7.0's `CLIENT_PUSHING`), while the replies of other
/// commands are dropped. A `PING` after `CLIENT REPLY ON` marks where the
/// stream must stand, so a missing or extra frame shows as a difference.
#[test]
fn confirmations_and_messages_survive_client_reply_off() {
    differential("client reply off", &[], |p| {
        let mut out = vec![];
        for proto in ["2", "3"] {
            let (mut sub, mut publ) = (connect(p), connect(p));
            let hello = sub.cmd_str(&format!("HELLO {proto}"));
            out.push(vec![hello.first().copied().unwrap_or(0)]);
            sub.send(&["CLIENT", "REPLY", "OFF"]).expect("send");
            sub.send(&["SUBSCRIBE", "chan", "other"]).expect("send");
            read_n(&mut sub, 2, &mut out);
            sub.send(&["PSUBSCRIBE", "ch*"]).expect("send");
            read_n(&mut sub, 1, &mut out);
            out.push(publ.cmd_str("PUBLISH chan hello"));
            read_n(&mut sub, 2, &mut out);
            // (By name: the order of a bare UNSUBSCRIBE is Redis's dict order.)
            sub.send(&["UNSUBSCRIBE", "chan", "other"]).expect("send");
            read_n(&mut sub, 2, &mut out);
            sub.send(&["PUNSUBSCRIBE", "ch*", "none*"]).expect("send");
            read_n(&mut sub, 2, &mut out);
            // Nothing subscribed: an UNSUBSCRIBE is still confirmed.
            sub.send(&["UNSUBSCRIBE"]).expect("send");
            read_n(&mut sub, 1, &mut out);
            // A silenced reply, then replies again.
            sub.send(&["SET", "k", "v"]).expect("send");
            out.push(sub.cmd_str("CLIENT REPLY ON"));
            // SKIP drops the next reply only, not the confirmation of a
            // SUBSCRIBE that follows it.
            sub.send(&["CLIENT", "REPLY", "SKIP"]).expect("send");
            sub.send(&["SUBSCRIBE", "skipped"]).expect("send");
            read_n(&mut sub, 1, &mut out);
            out.push(sub.cmd_str("UNSUBSCRIBE"));
            out.push(sub.cmd_str("PING"));
        }
        out
    });
}
