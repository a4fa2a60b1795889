//! Blocking list, sorted-set and stream commands end to end: the real `amber-server` over TCP with
//! several connections, and the same scenarios against a real
//! `redis-server` whose replies must be identical.
//!
//! Servers come from the test harness; a small RESP client that keeps
//! replies' exact bytes lives at the bottom of this file. Every read has a
//! timeout, every wait a bound.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

// The harness's launcher: a port no other test of this process was given,
// and a server that exits right after start (its port taken in the
// meantime by another process, which then answered the readiness probe) is
// started again on another port. This file had a launcher of its own
// without that check; CI once saw a test's first connection refused after
// its probe had been answered (not reproduced in 55 local runs since).
use amber_tests::process::ServerProcess;
use amber_tests::wait_blocked;

/// Wakes a blocked client from another connection's push.
fn wake_up(port: u16) -> Vec<Vec<u8>> {
    let mut waiter = Client::connect(port);
    let mut pusher = Client::connect(port);
    waiter.send(&["BLPOP", "wk", "nokey", "5"]);
    wait_blocked(port, 1);
    let pushed = pusher.cmd(&["RPUSH", "wk", "a", "b"]);
    let served = waiter.read_reply();
    let left = pusher.cmd(&["LRANGE", "wk", "0", "-1"]);
    vec![pushed, served, left]
}

/// Three blocked clients are served in the order they blocked.
fn fifo(port: u16) -> Vec<Vec<u8>> {
    let mut waiters: Vec<Client> = (0..3).map(|_| Client::connect(port)).collect();
    for (i, w) in waiters.iter_mut().enumerate() {
        w.send(&["BRPOP", "fifo", "5"]);
        wait_blocked(port, i + 1);
    }
    let mut pusher = Client::connect(port);
    let mut out = vec![pusher.cmd(&["LPUSH", "fifo", "1", "2", "3", "4"])];
    for w in &mut waiters {
        out.push(w.read_reply());
    }
    out.push(pusher.cmd(&["LRANGE", "fifo", "0", "-1"]));
    out
}

/// A client blocked on two keys is woken by either, once.
fn two_keys(port: u16) -> Vec<Vec<u8>> {
    let mut w = Client::connect(port);
    let mut p = Client::connect(port);
    w.send(&["BLPOP", "k1", "k2", "5"]);
    wait_blocked(port, 1);
    let mut out = vec![p.cmd(&["RPUSH", "k2", "x"]), w.read_reply()];
    out.push(p.cmd(&["RPUSH", "k1", "y"]));
    out.push(p.cmd(&["LRANGE", "k1", "0", "-1"]));
    out
}

/// BLMOVE between two keys, then a chain: a BLMOVE feeds a BLPOP.
fn blmove(port: u16) -> Vec<Vec<u8>> {
    let mut mover = Client::connect(port);
    let mut p = Client::connect(port);
    mover.send(&["BLMOVE", "msrc", "mdst", "LEFT", "RIGHT", "5"]);
    wait_blocked(port, 1);
    let mut out = vec![p.cmd(&["RPUSH", "msrc", "a", "b"]), mover.read_reply()];
    out.push(p.cmd(&["LRANGE", "msrc", "0", "-1"]));
    out.push(p.cmd(&["LRANGE", "mdst", "0", "-1"]));
    // Chain: mover waits on c1 -> c2, popper waits on c2.
    let mut popper = Client::connect(port);
    mover.send(&["BRPOPLPUSH", "c1", "c2", "5"]);
    wait_blocked(port, 1);
    popper.send(&["BLPOP", "c2", "5"]);
    wait_blocked(port, 2);
    out.push(p.cmd(&["LPUSH", "c1", "v"]));
    out.push(mover.read_reply());
    out.push(popper.read_reply());
    out.push(p.cmd(&["EXISTS", "c1", "c2"]));
    // A destination of the wrong type: the waiter gets WRONGTYPE, the
    // element stays.
    p.cmd(&["SET", "wdst", "s"]);
    mover.send(&["BLMOVE", "wsrc", "wdst", "LEFT", "LEFT", "5"]);
    wait_blocked(port, 1);
    out.push(p.cmd(&["RPUSH", "wsrc", "e"]));
    out.push(mover.read_reply());
    out.push(p.cmd(&["LRANGE", "wsrc", "0", "-1"]));
    out
}

/// BLMPOP blocked with a count gets up to that many.
fn blmpop(port: u16) -> Vec<Vec<u8>> {
    let mut w = Client::connect(port);
    let mut p = Client::connect(port);
    w.send(&["BLMPOP", "5", "2", "m1", "m2", "RIGHT", "COUNT", "2"]);
    wait_blocked(port, 1);
    vec![p.cmd(&["RPUSH", "m2", "a", "b", "c"]), w.read_reply()]
}

/// Commands pipelined after a blocking one wait until it is served.
fn pipelined(port: u16) -> Vec<Vec<u8>> {
    let mut w = Client::connect(port);
    let mut p = Client::connect(port);
    w.send_many(&[
        &["PING", "before"],
        &["BLPOP", "pk", "5"],
        &["PING", "after"],
        &["LLEN", "pk"],
    ]);
    let first = w.read_reply();
    wait_blocked(port, 1);
    assert!(
        w.nothing_pending(Duration::from_millis(150)),
        "a reply arrived while the client was blocked"
    );
    let pushed = p.cmd(&["RPUSH", "pk", "x", "y"]);
    vec![
        first,
        pushed,
        w.read_reply(),
        w.read_reply(),
        w.read_reply(),
    ]
}

/// RESP3: the timeout reply is `_`, a served reply an array.
fn resp3(port: u16) -> Vec<Vec<u8>> {
    let mut w = Client::connect(port);
    let mut p = Client::connect(port);
    w.cmd(&["HELLO", "3"]);
    let mut out = vec![w.cmd(&["BLPOP", "r3", "0.05"])];
    out.push(w.cmd(&["BLMOVE", "r3", "r4", "LEFT", "LEFT", "0.05"]));
    w.send(&["BLMPOP", "5", "1", "r3", "LEFT"]);
    wait_blocked(port, 1);
    out.push(p.cmd(&["RPUSH", "r3", "z"]));
    out.push(w.read_reply());
    out
}

/// The `id` of a connection (`CLIENT ID`).
fn client_id(c: &mut Client) -> String {
    let id = c.cmd(&["CLIENT", "ID"]);
    assert_eq!(id.first(), Some(&b':'), "CLIENT ID: {}", show(&id));
    String::from_utf8_lossy(&id[1..id.len() - 2]).into_owned()
}

/// The `flags=` field of a client's `CLIENT LIST` line.
fn client_flags(c: &mut Client, id: &str) -> Vec<u8> {
    let list = c.cmd(&["CLIENT", "LIST", "ID", id]);
    let text = String::from_utf8_lossy(&list).into_owned();
    let flags = text
        .split(' ')
        .find_map(|f| f.strip_prefix("flags="))
        .unwrap_or("(none)");
    flags.as_bytes().to_vec()
}

/// CLIENT UNBLOCK: TIMEOUT (the default) gives the timeout reply, ERROR
/// Redis's `-UNBLOCKED` error; a client not blocked answers 0; bad
/// arguments answer Redis's errors. CLIENT LIST shows `b` while blocked,
/// INFO counts blocked clients.
fn unblock(port: u16) -> Vec<Vec<u8>> {
    let mut w = Client::connect(port);
    let mut p = Client::connect(port);
    let id = client_id(&mut w);
    let mut out = vec![client_flags(&mut p, &id)];
    w.send(&["BLPOP", "ub", "0"]);
    wait_blocked(port, 1);
    out.push(client_flags(&mut p, &id));
    out.push(p.cmd(&["CLIENT", "UNBLOCK", &id]));
    out.push(w.read_reply());
    out.push(client_flags(&mut p, &id));
    w.send(&["BLMOVE", "ub", "ub2", "LEFT", "LEFT", "0"]);
    wait_blocked(port, 1);
    out.push(p.cmd(&["CLIENT", "UNBLOCK", &id, "timeout"]));
    out.push(w.read_reply());
    w.send(&["BLMPOP", "0", "1", "ub", "LEFT"]);
    wait_blocked(port, 1);
    out.push(p.cmd(&["CLIENT", "UNBLOCK", &id, "FOO"]));
    out.push(p.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR", "x"]));
    out.push(p.cmd(&["CLIENT", "UNBLOCK", "abc"]));
    out.push(p.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]));
    out.push(w.read_reply());
    wait_blocked(port, 0);
    out.push(p.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]));
    out.push(p.cmd(&["CLIENT", "UNBLOCK", "999999"]));
    // Unblocked clients are waiters no more: the push stays.
    out.push(p.cmd(&["RPUSH", "ub", "a"]));
    out.push(w.cmd(&["LLEN", "ub"]));
    out
}

/// WAIT for a replica on a server with none blocks (counted in INFO,
/// flag `b`) until CLIENT UNBLOCK (TIMEOUT: 0, ERROR: `-UNBLOCKED`), a
/// push to any key never ends it, and a timed WAIT answers 0.
fn wait_replicas(port: u16) -> Vec<Vec<u8>> {
    let mut w = Client::connect(port);
    let mut p = Client::connect(port);
    let id = client_id(&mut w);
    let mut out = Vec::new();
    w.send(&["WAIT", "1", "0"]);
    wait_blocked(port, 1);
    out.push(client_flags(&mut p, &id));
    out.push(p.cmd(&["RPUSH", "wl", "a"]));
    out.push(p.cmd(&["CLIENT", "UNBLOCK", &id]));
    out.push(w.read_reply());
    w.send(&["WAIT", "3", "0"]);
    wait_blocked(port, 1);
    out.push(p.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]));
    out.push(w.read_reply());
    wait_blocked(port, 0);
    out.push(w.cmd(&["WAIT", "1", "30"]));
    out.push(p.cmd(&["LLEN", "wl"]));
    out
}

/// A waited-for key that becomes another type does not serve list
/// waiters (Redis 7.0 only serves a key holding a list); once it holds a
/// list again they are served, first blocked first.
fn type_change(port: u16) -> Vec<Vec<u8>> {
    let mut w1 = Client::connect(port);
    let mut w2 = Client::connect(port);
    let mut p = Client::connect(port);
    w1.send(&["BLPOP", "tc", "5"]);
    wait_blocked(port, 1);
    w2.send(&["BLMOVE", "tc", "tcd", "RIGHT", "LEFT", "5"]);
    wait_blocked(port, 2);
    let mut out = vec![p.cmd(&["SET", "tc", "s"]), p.cmd(&["SET", "tcd", "m"])];
    assert!(w1.nothing_pending(Duration::from_millis(100)));
    out.push(p.cmd(&["DEL", "tc"]));
    out.push(p.cmd(&["RPUSH", "tc", "a", "b", "c"]));
    out.push(w1.read_reply());
    // The BLMOVE destination holds a string: WRONGTYPE when served, and the
    // element stays in the source.
    out.push(w2.read_reply());
    out.push(p.cmd(&["LRANGE", "tc", "0", "-1"]));
    // An expired key is gone for waiters too.
    w1.send(&["BRPOP", "tx", "5"]);
    wait_blocked(port, 1);
    out.push(p.cmd(&["RPUSH", "tx2", "a"]));
    out.push(p.cmd(&["PEXPIRE", "tx2", "1"]));
    std::thread::sleep(Duration::from_millis(20));
    out.push(p.cmd(&["RPOPLPUSH", "tx2", "tx"]));
    out.push(p.cmd(&["LPUSH", "tx", "z"]));
    out.push(w1.read_reply());
    out
}

/// BZPOPMIN/BZPOPMAX: a ZADD from another client wakes the waiter with the
/// lowest (highest) element, as `[key, member, score]`.
fn zwake(port: u16) -> Vec<Vec<u8>> {
    let mut w = Client::connect(port);
    let mut p = Client::connect(port);
    w.send(&["BZPOPMIN", "nokey", "zk", "5"]);
    wait_blocked(port, 1);
    let mut out = vec![p.cmd(&["ZADD", "zk", "2", "b", "1.5", "a", "3", "c"])];
    out.push(w.read_reply());
    w.send(&["BZPOPMAX", "zk2", "5"]);
    wait_blocked(port, 1);
    out.push(p.cmd(&["ZADD", "zk2", "-1", "x", "7", "y"]));
    out.push(w.read_reply());
    out.push(p.cmd(&["ZRANGE", "zk", "0", "-1", "WITHSCORES"]));
    out.push(p.cmd(&["ZRANGE", "zk2", "0", "-1", "WITHSCORES"]));
    out
}

/// Two sorted-set waiters on one key are served first blocked first; a
/// waiter whose pop empties the set leaves the next one blocked.
fn zfifo(port: u16) -> Vec<Vec<u8>> {
    let mut w1 = Client::connect(port);
    let mut w2 = Client::connect(port);
    let mut p = Client::connect(port);
    w1.send(&["BZPOPMAX", "zf", "5"]);
    wait_blocked(port, 1);
    w2.send(&["BZPOPMIN", "zf", "5"]);
    wait_blocked(port, 2);
    let mut out = vec![p.cmd(&["ZADD", "zf", "1", "a", "2", "b", "3", "c"])];
    out.push(w1.read_reply());
    out.push(w2.read_reply());
    out.push(p.cmd(&["ZRANGE", "zf", "0", "-1"]));
    w1.send(&["BZPOPMIN", "zg", "5"]);
    wait_blocked(port, 1);
    w2.send(&["BZPOPMIN", "zg", "5"]);
    wait_blocked(port, 2);
    out.push(p.cmd(&["ZADD", "zg", "1", "only"]));
    out.push(w1.read_reply());
    out.push(p.cmd(&["EXISTS", "zg"]));
    assert!(w2.nothing_pending(Duration::from_millis(100)));
    out.push(p.cmd(&["ZADD", "zg", "2", "next"]));
    out.push(w2.read_reply());
    out
}

/// BZMPOP blocked with MIN/MAX and a COUNT gets up to that many, nested.
fn bzmpop(port: u16) -> Vec<Vec<u8>> {
    let mut w = Client::connect(port);
    let mut p = Client::connect(port);
    w.send(&["BZMPOP", "5", "2", "m1", "m2", "MAX", "COUNT", "2"]);
    wait_blocked(port, 1);
    let mut out = vec![p.cmd(&["ZADD", "m2", "1", "a", "2", "b", "3", "c"])];
    out.push(w.read_reply());
    w.send(&["BZMPOP", "5", "1", "m3", "MIN", "COUNT", "5"]);
    wait_blocked(port, 1);
    out.push(p.cmd(&["ZADD", "m3", "4", "x", "1", "y"]));
    out.push(w.read_reply());
    w.send(&["BZMPOP", "5", "1", "m4", "MIN"]);
    wait_blocked(port, 1);
    out.push(p.cmd(&["ZADD", "m4", "4", "x", "1", "y"]));
    out.push(w.read_reply());
    out.push(p.cmd(&["EXISTS", "m3", "m4"]));
    out
}

/// Redis 7.0 wakes sorted-set waiters only when a write creates the key:
/// ZADD, ZINCRBY, ZUNIONSTORE/ZRANGESTORE onto a new key; not ZADD XX,
/// not a `*STORE` overwriting another value. A list waiter sharing the key
/// is not served by a sorted set.
fn zcreate(port: u16) -> Vec<Vec<u8>> {
    let mut w = Client::connect(port);
    let mut p = Client::connect(port);
    let mut out = vec![p.cmd(&["ZADD", "src", "1", "s", "2", "t"])];
    w.send(&["BZPOPMIN", "zc", "5"]);
    wait_blocked(port, 1);
    out.push(p.cmd(&["ZADD", "zc", "XX", "1", "a"]));
    out.push(p.cmd(&["ZINCRBY", "zc", "2", "a"]));
    out.push(w.read_reply());
    w.send(&["BZPOPMAX", "zu", "5"]);
    wait_blocked(port, 1);
    out.push(p.cmd(&["ZUNIONSTORE", "zu", "1", "src"]));
    out.push(w.read_reply());
    w.send(&["BZPOPMIN", "zr", "5"]);
    wait_blocked(port, 1);
    out.push(p.cmd(&["ZRANGESTORE", "zr", "src", "1", "1"]));
    out.push(w.read_reply());
    // Overwriting a string with a sorted set does not signal.
    w.send(&["BZPOPMIN", "zo", "5"]);
    wait_blocked(port, 1);
    out.push(p.cmd(&["SET", "zo", "str"]));
    out.push(p.cmd(&["ZINTERSTORE", "zo", "1", "src"]));
    assert!(w.nothing_pending(Duration::from_millis(100)));
    out.push(p.cmd(&["DEL", "zo"]));
    out.push(p.cmd(&["ZADD", "zo", "9", "q", "8", "r"]));
    out.push(w.read_reply());
    // A list waiter first, a sorted-set waiter second, on one key.
    let mut lw = Client::connect(port);
    lw.send(&["BLPOP", "mix", "5"]);
    wait_blocked(port, 1);
    w.send(&["BZPOPMIN", "mix", "5"]);
    wait_blocked(port, 2);
    out.push(p.cmd(&["ZADD", "mix", "1", "m"]));
    out.push(w.read_reply());
    assert!(lw.nothing_pending(Duration::from_millis(100)));
    out.push(p.cmd(&["RPUSH", "mix", "e"]));
    out.push(lw.read_reply());
    out
}

/// Inside EXEC, waiters are served after the whole transaction; RESP3
/// replies of served and timed-out sorted-set waiters.
fn zexec_resp3(port: u16) -> Vec<Vec<u8>> {
    let mut w = Client::connect(port);
    let mut p = Client::connect(port);
    w.cmd(&["HELLO", "3"]);
    let mut out = vec![w.cmd(&["BZPOPMIN", "ze", "0.05"])];
    out.push(w.cmd(&["BZMPOP", "0.05", "1", "ze", "MAX"]));
    w.send(&["BZPOPMAX", "ze", "5"]);
    wait_blocked(port, 1);
    p.cmd(&["MULTI"]);
    p.cmd(&["ZADD", "ze", "1", "a"]);
    p.cmd(&["ZADD", "ze", "2", "b"]);
    p.cmd(&["ZPOPMIN", "ze"]);
    out.push(p.cmd(&["EXEC"]));
    out.push(w.read_reply());
    w.send(&["BZMPOP", "5", "1", "ze", "MIN", "COUNT", "3"]);
    wait_blocked(port, 1);
    out.push(p.cmd(&["ZADD", "ze", "1.5", "x", "inf", "y"]));
    out.push(w.read_reply());
    out.push(p.cmd(&["EXISTS", "ze"]));
    out
}

/// Keyspace events of a served sorted-set waiter: `zadd`, then `zpopmin`
/// and `del` in the waiter's name.
fn zevents(port: u16) -> Vec<Vec<u8>> {
    let mut w = Client::connect(port);
    let mut p = Client::connect(port);
    let mut sub = Client::connect(port);
    let mut out = vec![p.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"])];
    out.push(sub.cmd(&["PSUBSCRIBE", "__keyevent@0__:*"]));
    w.send(&["BZPOPMIN", "zn", "5"]);
    wait_blocked(port, 1);
    out.push(p.cmd(&["ZADD", "zn", "1", "a"]));
    out.push(w.read_reply());
    for _ in 0..3 {
        out.push(sub.read_reply());
    }
    assert!(sub.nothing_pending(Duration::from_millis(100)));
    out
}

/// XREAD BLOCK with `$` is woken by an XADD from another client, on either
/// of its keys; two readers of the same key are both served (a read does
/// not consume); COUNT bounds a woken read; a key another type is skipped.
fn xread_wake(port: u16) -> Vec<Vec<u8>> {
    let mut a = Client::connect(port);
    let mut b = Client::connect(port);
    let mut p = Client::connect(port);
    let mut out = vec![p.cmd(&["XADD", "xs", "1-1", "old", "1"])];
    a.send(&["XREAD", "BLOCK", "5000", "STREAMS", "xs", "xs2", "$", "$"]);
    wait_blocked(port, 1);
    b.send(&["XREAD", "BLOCK", "0", "COUNT", "1", "STREAMS", "xs", "1-1"]);
    wait_blocked(port, 2);
    out.push(p.cmd(&["XADD", "xs", "2-1", "new", "1"]));
    out.push(a.read_reply());
    out.push(b.read_reply());
    // Woken by a stream created by XADD on its second key.
    a.send(&["XREAD", "BLOCK", "5000", "STREAMS", "xs", "xs2", "$", "$"]);
    wait_blocked(port, 1);
    out.push(p.cmd(&["XADD", "xs2", "3-1", "f", "v"]));
    out.push(a.read_reply());
    // Explicit IDs below the top: served at once, no block.
    out.push(a.cmd(&["XREAD", "BLOCK", "5000", "STREAMS", "xs", "0"]));
    // An ID at the top waits; a smaller XADD cannot happen, XSETID does not wake.
    a.send(&[
        "XREAD", "BLOCK", "5000", "COUNT", "5", "STREAMS", "xs", "2-1",
    ]);
    wait_blocked(port, 1);
    out.push(p.cmd(&["XSETID", "xs", "9-9"]));
    out.push(p.cmd(&["XADD", "xs", "10-1", "a", "1"]));
    out.push(a.read_reply());
    // Timeout, MULTI (an immediate timeout), RESP3.
    out.push(a.cmd(&["XREAD", "BLOCK", "50", "STREAMS", "xs", "$"]));
    a.cmd(&["MULTI"]);
    a.cmd(&["XREAD", "BLOCK", "0", "STREAMS", "xs", "$"]);
    out.push(a.cmd(&["EXEC"]));
    a.cmd(&["HELLO", "3"]);
    out.push(a.cmd(&["XREAD", "BLOCK", "50", "STREAMS", "xs", "$"]));
    a.send(&["XREAD", "BLOCK", "5000", "STREAMS", "xs", "$"]);
    wait_blocked(port, 1);
    out.push(p.cmd(&["XADD", "xs", "11-1", "b", "2"]));
    out.push(a.read_reply());
    out
}

/// XREADGROUP BLOCK with `>`: woken by XADD, the entries go to the first
/// blocked consumer only (the group's last ID moves), NOACK leaves no PEL
/// entry, XGROUP DESTROY answers -NOGROUP... as Redis does, and CLIENT
/// UNBLOCK works on stream readers.
fn xreadgroup_wake(port: u16) -> Vec<Vec<u8>> {
    let mut a = Client::connect(port);
    let mut b = Client::connect(port);
    let mut p = Client::connect(port);
    let mut out = vec![p.cmd(&["XGROUP", "CREATE", "gs", "g", "$", "MKSTREAM"])];
    a.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "alice",
        "BLOCK",
        "5000",
        "STREAMS",
        "gs",
        ">",
    ]);
    wait_blocked(port, 1);
    b.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "bob",
        "BLOCK",
        "5000",
        "NOACK",
        "STREAMS",
        "gs",
        ">",
    ]);
    wait_blocked(port, 2);
    out.push(p.cmd(&["XADD", "gs", "1-1", "f", "v"]));
    out.push(a.read_reply());
    out.push(p.cmd(&["XADD", "gs", "2-1", "f", "v"]));
    out.push(b.read_reply());
    out.push(p.cmd(&["XPENDING", "gs", "g"]));
    out.push(p.cmd(&["XINFO", "GROUPS", "gs"]));
    // The group goes away while a consumer waits on it.
    a.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "alice",
        "BLOCK",
        "5000",
        "STREAMS",
        "gs",
        ">",
    ]);
    wait_blocked(port, 1);
    out.push(p.cmd(&["XGROUP", "DESTROY", "gs", "g"]));
    out.push(a.read_reply());
    // CLIENT UNBLOCK: TIMEOUT gives the null array, ERROR -UNBLOCKED.
    out.push(p.cmd(&["XGROUP", "CREATE", "gs", "g", "$"]));
    let id = client_id(&mut a);
    a.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "alice",
        "BLOCK",
        "0",
        "STREAMS",
        "gs",
        ">",
    ]);
    wait_blocked(port, 1);
    out.push(p.cmd(&["CLIENT", "UNBLOCK", &id]));
    out.push(a.read_reply());
    a.send(&["XREAD", "BLOCK", "0", "STREAMS", "gs", "$"]);
    wait_blocked(port, 1);
    out.push(p.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]));
    out.push(a.read_reply());
    // Served inside EXEC only after the transaction ran.
    a.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "carol",
        "BLOCK",
        "5000",
        "STREAMS",
        "gs",
        ">",
    ]);
    wait_blocked(port, 1);
    p.cmd(&["MULTI"]);
    p.cmd(&["XADD", "gs", "3-1", "f", "v"]);
    p.cmd(&["XADD", "gs", "4-1", "f", "v"]);
    out.push(p.cmd(&["EXEC"]));
    out.push(a.read_reply());
    out.push(p.cmd(&["XPENDING", "gs", "g"]));
    out
}

/// Keyspace events of the stream commands, in Redis's order: `xadd` then
/// `xtrim` for a trimming XADD, `xdel`, `xsetid`, the `xgroup-*` events, a
/// consumer created by XREADGROUP, and none for a read or an XACK.
fn xevents(port: u16) -> Vec<Vec<u8>> {
    let mut p = Client::connect(port);
    let mut sub = Client::connect(port);
    let mut out = vec![p.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"])];
    out.push(sub.cmd(&["PSUBSCRIBE", "__keyevent@0__:*"]));
    let cmds: &[&[&str]] = &[
        &["XADD", "ev", "1", "f", "v"],
        &["XADD", "ev", "MAXLEN", "1", "2", "f", "v"],
        &["XDEL", "ev", "2"],
        &["XDEL", "ev", "2"],
        &["XSETID", "ev", "5"],
        &["XTRIM", "ev", "MAXLEN", "0"],
        &["XGROUP", "CREATE", "ev", "g", "0"],
        &["XGROUP", "CREATE", "ev2", "g", "0", "MKSTREAM"],
        &["XGROUP", "SETID", "ev", "g", "0"],
        &["XGROUP", "CREATECONSUMER", "ev", "g", "c"],
        &["XADD", "ev", "6", "f", "v"],
        &["XREADGROUP", "GROUP", "g", "d", "STREAMS", "ev", ">"],
        &["XRANGE", "ev", "-", "+"],
        &["XACK", "ev", "g", "6"],
        &["XCLAIM", "ev", "g", "e", "0", "6", "FORCE"],
        &["XGROUP", "DELCONSUMER", "ev", "g", "c"],
        &["XGROUP", "DELCONSUMER", "ev", "g", "nobody"],
        &["XGROUP", "DESTROY", "ev", "g"],
        &["CONFIG", "SET", "notify-keyspace-events", ""],
    ];
    for c in cmds {
        out.push(p.cmd(c));
    }
    while !sub.nothing_pending(Duration::from_millis(200)) {
        out.push(sub.read_reply());
    }
    out
}

/// Runs `scenario` on Amber and, when available, on Redis; the replies must
/// be the same bytes.
fn same_on_both(scenario: fn(u16) -> Vec<Vec<u8>>) {
    let amber = ServerProcess::amber_with_env_args(&[]);
    let got = scenario(amber.port);
    let redis = ServerProcess::redis(&[]);
    let want = scenario(redis.port);
    assert_eq!(
        show_all(&got),
        show_all(&want),
        "amber (left) vs redis (right)"
    );
}

#[test]
fn xread_block_woken_by_xadd() {
    same_on_both(xread_wake);
}

#[test]
fn xreadgroup_block_consumers_and_unblock() {
    same_on_both(xreadgroup_wake);
}

#[test]
fn stream_keyspace_events() {
    same_on_both(xevents);
}

#[test]
fn wake_up_from_another_client() {
    same_on_both(wake_up);
}

#[test]
fn wait_for_replicas_that_do_not_exist() {
    same_on_both(wait_replicas);
}

#[test]
fn first_blocked_first_served() {
    same_on_both(fifo);
}

#[test]
fn blocked_on_two_keys() {
    same_on_both(two_keys);
}

#[test]
fn blmove_and_chains() {
    same_on_both(blmove);
}

#[test]
fn blmpop_with_count() {
    same_on_both(blmpop);
}

#[test]
fn pipelined_commands_wait() {
    same_on_both(pipelined);
}

#[test]
fn client_unblock_and_flags() {
    same_on_both(unblock);
}

#[test]
fn key_changing_type_while_waited_on() {
    same_on_both(type_change);
}

#[test]
fn resp3_replies() {
    same_on_both(resp3);
}

#[test]
fn bzpop_wake_up_from_zadd() {
    same_on_both(zwake);
}

#[test]
fn bzpop_first_blocked_first_served() {
    same_on_both(zfifo);
}

#[test]
fn bzmpop_min_max_count() {
    same_on_both(bzmpop);
}

#[test]
fn bzpop_woken_only_by_key_creation() {
    same_on_both(zcreate);
}

#[test]
fn bzpop_exec_and_resp3() {
    same_on_both(zexec_resp3);
}

#[test]
fn bzpop_keyspace_events() {
    same_on_both(zevents);
}

#[test]
fn bzpop_timeout_returns_null() {
    let s = ServerProcess::amber_with_env_args(&[]);
    let mut c = Client::connect(s.port);
    let t = Instant::now();
    assert_eq!(show(&c.cmd(&["BZPOPMIN", "tz", "0.3"])), "*-1");
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(290), "too early: {took:?}");
    assert!(took < Duration::from_secs(3), "too late: {took:?}");
    let t = Instant::now();
    assert_eq!(show(&c.cmd(&["BZMPOP", "0.1", "1", "tz", "MIN"])), "*-1");
    assert!(t.elapsed() >= Duration::from_millis(95));
    // The timed-out client is no longer a waiter: the element stays.
    assert_eq!(show(&c.cmd(&["ZADD", "tz", "1", "v"])), ":1");
    assert_eq!(show(&c.cmd(&["ZCARD", "tz"])), ":1");
}

#[test]
fn timeout_returns_null_after_the_timeout() {
    let s = ServerProcess::amber_with_env_args(&[]);
    let mut c = Client::connect(s.port);
    let t = Instant::now();
    assert_eq!(show(&c.cmd(&["BLPOP", "tk", "0.3"])), "*-1");
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(290), "too early: {took:?}");
    assert!(took < Duration::from_secs(3), "too late: {took:?}");
    let t = Instant::now();
    assert_eq!(show(&c.cmd(&["BRPOPLPUSH", "tk", "td", "0.1"])), "*-1");
    assert!(t.elapsed() >= Duration::from_millis(95));
    // The timed-out client is no longer a waiter: a push stays in the list.
    assert_eq!(show(&c.cmd(&["RPUSH", "tk", "v"])), ":1");
    assert_eq!(show(&c.cmd(&["LLEN", "tk"])), ":1");
}

#[test]
fn disconnected_waiter_leaves_no_ghost() {
    let s = ServerProcess::amber_with_env_args(&[]);
    let mut gone = Client::connect(s.port);
    gone.send(&["BLPOP", "gk", "0"]);
    wait_blocked(s.port, 1);
    drop(gone);
    wait_blocked(s.port, 0);
    // The push stays in the list: nobody is waiting any more.
    let mut p = Client::connect(s.port);
    assert_eq!(show(&p.cmd(&["RPUSH", "gk", "a"])), ":1");
    assert_eq!(show(&p.cmd(&["LRANGE", "gk", "0", "-1"])), "*1 $1 a");
    // With a second waiter behind the one that leaves, it gets the push.
    p.cmd(&["DEL", "gk"]);
    let mut first = Client::connect(s.port);
    let mut second = Client::connect(s.port);
    first.send(&["BLPOP", "gk", "0"]);
    wait_blocked(s.port, 1);
    second.send(&["BLPOP", "gk", "5"]);
    wait_blocked(s.port, 2);
    drop(first);
    wait_blocked(s.port, 1);
    assert_eq!(show(&p.cmd(&["RPUSH", "gk", "b"])), ":1");
    assert_eq!(show(&second.read_reply()), "*2 $2 gk $1 b");
    assert_eq!(show(&p.cmd(&["EXISTS", "gk"])), ":0");
}

#[test]
fn client_kill_of_a_blocked_client() {
    let s = ServerProcess::amber_with_env_args(&[]);
    let mut w = Client::connect(s.port);
    let mut p = Client::connect(s.port);
    let id = client_id(&mut w);
    w.send(&["BLPOP", "kk", "0"]);
    wait_blocked(s.port, 1);
    assert_eq!(client_flags(&mut p, &id), b"b");
    assert_eq!(show(&p.cmd(&["CLIENT", "KILL", "ID", &id])), ":1");
    wait_blocked(s.port, 0);
    assert_eq!(show(&p.cmd(&["RPUSH", "kk", "a"])), ":1");
    assert_eq!(show(&p.cmd(&["LLEN", "kk"])), ":1");
    assert!(w.closed_within(Duration::from_secs(5)));
}

#[test]
fn many_waiters_and_pushers_lose_nothing() {
    // 8 waiters on one key, 4 pushers of 2 elements each: every element
    // reaches exactly one waiter.
    let s = ServerProcess::amber_with_env_args(&[]);
    let port = s.port;
    let waiters: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = Client::connect(port);
                show(&c.cmd(&["BLPOP", "many", "10"]))
            })
        })
        .collect();
    wait_blocked(port, 8);
    let pushers: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = Client::connect(port);
                c.cmd(&["RPUSH", "many", &format!("{i}a"), &format!("{i}b")]);
            })
        })
        .collect();
    for p in pushers {
        p.join().expect("pusher");
    }
    let mut got: Vec<String> = waiters
        .into_iter()
        .map(|w| w.join().expect("waiter"))
        .collect();
    got.sort();
    let mut want: Vec<String> = (0..4)
        .flat_map(|i| [format!("*2 $4 many $2 {i}a"), format!("*2 $4 many $2 {i}b")])
        .collect();
    want.sort();
    assert_eq!(got, want);
    let mut c = Client::connect(port);
    assert_eq!(show(&c.cmd(&["EXISTS", "many"])), ":0");
}

#[test]
fn timeouts_racing_with_pushes_lose_nothing() {
    // Waiters with tiny timeouts while elements are pushed: every element
    // is either delivered once or still in the list.
    let s = ServerProcess::amber_with_env_args(&[]);
    let port = s.port;
    let waiters: Vec<_> = (0..6)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = Client::connect(port);
                let mut got = Vec::new();
                for _ in 0..20 {
                    let r = show(&c.cmd(&["BLPOP", "race", "0.01"]));
                    if r != "*-1" {
                        got.push(r);
                    }
                }
                got
            })
        })
        .collect();
    let mut p = Client::connect(port);
    for i in 0..100 {
        p.cmd(&["RPUSH", "race", &format!("e{i}")]);
    }
    let mut delivered: Vec<String> = waiters
        .into_iter()
        .flat_map(|w| w.join().expect("waiter"))
        .map(|r| r.rsplit(' ').next().unwrap_or_default().to_string())
        .collect();
    let left = show(&p.cmd(&["LRANGE", "race", "0", "-1"]));
    delivered.extend(
        left.split(' ')
            .skip(1)
            .filter(|t| !t.starts_with('$'))
            .map(str::to_string),
    );
    delivered.sort();
    let mut want: Vec<String> = (0..100).map(|i| format!("e{i}")).collect();
    want.sort();
    assert_eq!(delivered, want);
}

// ---------------------------------------------------------------------------
// A minimal harness: start a server, talk RESP.

struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    fn connect(port: u16) -> Client {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        let w = s.try_clone().expect("clone");
        Client {
            r: BufReader::new(s),
            w,
        }
    }

    fn send(&mut self, args: &[&str]) {
        self.send_many(&[args]);
    }

    fn send_many(&mut self, cmds: &[&[&str]]) {
        let mut req = Vec::new();
        for args in cmds {
            req.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
            for a in *args {
                req.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
            }
        }
        self.w.write_all(&req).expect("write");
    }

    fn cmd(&mut self, args: &[&str]) -> Vec<u8> {
        self.send(args);
        self.read_reply()
    }

    /// One reply's exact bytes.
    fn read_reply(&mut self) -> Vec<u8> {
        let mut raw = Vec::new();
        let mut todo = 1usize;
        while todo > 0 {
            todo -= 1;
            let mut line = Vec::new();
            self.r.read_until(b'\n', &mut line).expect("reply line");
            assert!(!line.is_empty(), "connection closed");
            raw.extend_from_slice(&line);
            let n: i64 = String::from_utf8_lossy(
                line.get(1..line.len().saturating_sub(2))
                    .unwrap_or_default(),
            )
            .parse()
            .unwrap_or(0);
            match line.first() {
                Some(b'$') | Some(b'=') if n >= 0 => {
                    let mut body = vec![0; n as usize + 2];
                    self.r.read_exact(&mut body).expect("bulk");
                    raw.extend_from_slice(&body);
                }
                Some(b'*') | Some(b'~') | Some(b'>') if n > 0 => todo += n as usize,
                Some(b'%') if n > 0 => todo += 2 * n as usize,
                _ => {}
            }
        }
        raw
    }

    /// True if no byte arrives within `d`.
    fn nothing_pending(&mut self, d: Duration) -> bool {
        if !self.r.buffer().is_empty() {
            return false;
        }
        let s = self.r.get_ref();
        s.set_read_timeout(Some(d)).expect("timeout");
        let mut b = [0u8; 1];
        let quiet = matches!(s.peek(&mut b), Err(_));
        s.set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        quiet
    }

    /// True if the server closes the connection within `d`.
    fn closed_within(&mut self, d: Duration) -> bool {
        let s = self.r.get_ref();
        s.set_read_timeout(Some(d)).expect("timeout");
        let mut b = [0u8; 1];
        matches!(s.peek(&mut b), Ok(0))
    }
}

/// A reply as a short line: `*2 $1 a`.
fn show(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .split("\r\n")
        .filter(|t| !t.is_empty())
        .map(|t| t.strip_prefix('$').map_or(t.to_string(), |_| t.to_string()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn show_all(replies: &[Vec<u8>]) -> Vec<String> {
    replies.iter().map(|r| show(r)).collect()
}
