//! Which writes wake clients blocked on a key (`BLPOP`, `BLMOVE`, `BZPOPMIN`,
//! `BZMPOP`...), besides the pushes `tests/blocking.rs` covers: Redis 7.0
//! signals a key as ready whenever `dbAdd` creates it (`RENAME`, `RENAMENX`,
//! `MOVE`, `COPY`, `SORT ... STORE` onto a new key, `LMOVE` into a new list,
//! the sorted-set `*STORE` commands onto a new key), and `SWAPDB` serves
//! every waited key that holds data after the swap. A set never wakes anyone
//! (no client blocks on sets), and a value overwriting another one
//! (`setKey` → `dbOverwrite`) signals nothing.
//!
//! Every scenario runs on the real `amber-server` and on a real
//! `redis-server`; the replies must be the same bytes.

use std::time::Duration;

use amber_tests::reply::show;
use amber_tests::{connect, wait_blocked};
use amber_tests::{RespClient, ServerProcess};

/// Sends a blocking command from `c` and waits until `n` clients are blocked.
fn block(c: &mut RespClient, port: u16, args: &[&str], n: usize) {
    c.send(args).expect("send");
    wait_blocked(port, n);
}

/// The next reply of `c` (a served waiter).
fn reply(c: &mut RespClient) -> Vec<u8> {
    c.read_reply().expect("a reply")
}

/// Asserts that `c` (a waiter) was not served: nothing arrives for a while.
fn still_blocked(c: &mut RespClient) {
    let (bytes, closed) = c.read_until_close(Duration::from_millis(150));
    assert!(
        bytes.is_empty() && !closed,
        "a waiter that must stay blocked got {:?} (closed: {closed})",
        show(&bytes)
    );
    c.set_timeout(amber_tests::client::REPLY_TIMEOUT);
}

/// RENAME and RENAMENX onto a waited key wake its list and sorted-set
/// waiters, also when the destination held another value (deleted, then
/// added anew); a set renamed there wakes nobody.
fn rename(port: u16) -> Vec<Vec<u8>> {
    let mut w = connect(port);
    let mut p = connect(port);
    let mut out = vec![p.cmd(&["RPUSH", "src", "a", "b"])];
    block(&mut w, port, &["BLPOP", "dst", "nokey", "5"], 1);
    out.push(p.cmd(&["RENAME", "src", "dst"]));
    out.push(reply(&mut w));
    out.push(p.cmd(&["LRANGE", "dst", "0", "-1"]));

    block(&mut w, port, &["BRPOP", "nx", "5"], 1);
    out.push(p.cmd(&["RPUSH", "src2", "x", "y"]));
    out.push(p.cmd(&["RENAMENX", "src2", "nx"]));
    out.push(reply(&mut w));
    out.push(p.cmd(&["LRANGE", "nx", "0", "-1"]));

    // The destination became a string after the client blocked.
    block(&mut w, port, &["BLPOP", "str", "5"], 1);
    out.push(p.cmd(&["SET", "str", "v"]));
    out.push(p.cmd(&["RPUSH", "src3", "z"]));
    out.push(p.cmd(&["RENAME", "src3", "str"]));
    out.push(reply(&mut w));
    out.push(p.cmd(&["EXISTS", "str", "src3"]));

    // Sorted sets, BZMPOP with a count.
    block(
        &mut w,
        port,
        &["BZMPOP", "5", "1", "zdst", "MIN", "COUNT", "2"],
        1,
    );
    out.push(p.cmd(&["ZADD", "zsrc", "1", "a", "2", "b", "3", "c"]));
    out.push(p.cmd(&["RENAME", "zsrc", "zdst"]));
    out.push(reply(&mut w));
    out.push(p.cmd(&["ZRANGE", "zdst", "0", "-1"]));

    // A set wakes nobody; the waiter is served once a list is there.
    block(&mut w, port, &["BLPOP", "sdst", "5"], 1);
    out.push(p.cmd(&["SADD", "ssrc", "m"]));
    out.push(p.cmd(&["RENAME", "ssrc", "sdst"]));
    still_blocked(&mut w);
    out.push(p.cmd(&["DEL", "sdst"]));
    out.push(p.cmd(&["RPUSH", "sdst", "e"]));
    out.push(reply(&mut w));

    // RENAMENX that does not rename wakes nobody.
    block(&mut w, port, &["BLPOP", "held", "5"], 1);
    out.push(p.cmd(&["SET", "held", "v"]));
    out.push(p.cmd(&["RPUSH", "src4", "q"]));
    out.push(p.cmd(&["RENAMENX", "src4", "held"]));
    still_blocked(&mut w);
    out.push(p.cmd(&["DEL", "held"]));
    out.push(p.cmd(&["RENAMENX", "src4", "held"]));
    out.push(reply(&mut w));
    out
}

/// A BLMOVE waiter woken by a RENAME moves the element on (its destination
/// is locked and served in turn), and RENAME inside MULTI serves after EXEC.
fn rename_chain_and_exec(port: u16) -> Vec<Vec<u8>> {
    let mut mover = connect(port);
    let mut popper = connect(port);
    let mut p = connect(port);
    block(
        &mut mover,
        port,
        &["BLMOVE", "c1", "c2", "LEFT", "RIGHT", "5"],
        1,
    );
    block(&mut popper, port, &["BLPOP", "c2", "5"], 2);
    let mut out = vec![p.cmd(&["RPUSH", "tmp", "v", "w"])];
    out.push(p.cmd(&["RENAME", "tmp", "c1"]));
    out.push(reply(&mut mover));
    out.push(reply(&mut popper));
    out.push(p.cmd(&["LRANGE", "c1", "0", "-1"]));
    out.push(p.cmd(&["EXISTS", "c2"]));

    block(&mut popper, port, &["BLPOP", "tx", "5"], 1);
    out.push(p.cmd(&["MULTI"]));
    out.push(p.cmd(&["RPUSH", "t1", "a", "b"]));
    out.push(p.cmd(&["RENAME", "t1", "tx"]));
    out.push(p.cmd(&["LPOP", "tx"]));
    out.push(p.cmd(&["EXEC"]));
    out.push(reply(&mut popper));
    out.push(p.cmd(&["EXISTS", "tx"]));
    out
}

/// MOVE wakes the clients blocked on the key in the destination database.
fn move_cmd(port: u16) -> Vec<Vec<u8>> {
    let mut w = connect(port);
    let mut p = connect(port);
    let mut out = vec![w.cmd(&["SELECT", "1"])];
    block(&mut w, port, &["BLPOP", "mk", "5"], 1);
    out.push(p.cmd(&["RPUSH", "mk", "a", "b"]));
    out.push(p.cmd(&["MOVE", "mk", "1"]));
    out.push(reply(&mut w));
    out.push(w.cmd(&["LRANGE", "mk", "0", "-1"]));
    out.push(p.cmd(&["EXISTS", "mk"]));

    block(&mut w, port, &["BZPOPMAX", "mz", "5"], 1);
    out.push(p.cmd(&["ZADD", "mz", "1", "x", "2", "y"]));
    out.push(p.cmd(&["MOVE", "mz", "1"]));
    out.push(reply(&mut w));

    // Moving back into database 0 serves a waiter there.
    let mut w0 = connect(port);
    block(&mut w0, port, &["BLPOP", "m0", "5"], 1);
    out.push(w.cmd(&["RPUSH", "m0", "s"]));
    out.push(w.cmd(&["MOVE", "m0", "0"]));
    out.push(reply(&mut w0));
    out
}

/// COPY (same database, another database, REPLACE of another value) wakes
/// the destination's waiters.
fn copy(port: u16) -> Vec<Vec<u8>> {
    let mut w = connect(port);
    let mut p = connect(port);
    let mut out = vec![p.cmd(&["RPUSH", "cs", "a", "b"])];
    block(&mut w, port, &["BLPOP", "cd", "5"], 1);
    out.push(p.cmd(&["COPY", "cs", "cd"]));
    out.push(reply(&mut w));
    out.push(p.cmd(&["LRANGE", "cd", "0", "-1"]));
    out.push(p.cmd(&["LRANGE", "cs", "0", "-1"]));

    out.push(w.cmd(&["SELECT", "2"]));
    block(&mut w, port, &["BRPOP", "cd2", "5"], 1);
    out.push(p.cmd(&["COPY", "cs", "cd2", "DB", "2"]));
    out.push(reply(&mut w));
    out.push(w.cmd(&["SELECT", "0"]));

    block(&mut w, port, &["BLPOP", "cr", "5"], 1);
    out.push(p.cmd(&["SET", "cr", "x"]));
    out.push(p.cmd(&["COPY", "cs", "cr"]));
    still_blocked(&mut w);
    out.push(p.cmd(&["COPY", "cs", "cr", "REPLACE"]));
    out.push(reply(&mut w));

    block(&mut w, port, &["BZPOPMIN", "czd", "5"], 1);
    out.push(p.cmd(&["ZADD", "czs", "5", "m"]));
    out.push(p.cmd(&["COPY", "czs", "czd"]));
    out.push(reply(&mut w));
    out.push(p.cmd(&["EXISTS", "czd", "czs"]));
    out
}

/// SWAPDB serves the waiters of both databases whose keys hold a list or a
/// sorted set after the swap; inside MULTI, after EXEC.
fn swapdb(port: u16) -> Vec<Vec<u8>> {
    let mut w0 = connect(port);
    let mut w1 = connect(port);
    let mut wz = connect(port);
    let mut p = connect(port);
    let mut out = vec![w1.cmd(&["SELECT", "1"])];
    block(&mut w0, port, &["BLPOP", "sw", "5"], 1);
    block(&mut w1, port, &["BZPOPMIN", "sz", "5"], 2);
    // A key that does not change hands keeps its waiter blocked.
    block(&mut wz, port, &["BLPOP", "none", "5"], 3);
    out.push(p.cmd(&["SELECT", "1"]));
    out.push(p.cmd(&["RPUSH", "sw", "a", "b"]));
    out.push(p.cmd(&["SET", "none", "s"]));
    out.push(p.cmd(&["SELECT", "0"]));
    out.push(p.cmd(&["ZADD", "sz", "1", "m", "2", "n"]));
    out.push(p.cmd(&["SWAPDB", "0", "1"]));
    out.push(reply(&mut w0));
    out.push(reply(&mut w1));
    out.push(p.cmd(&["LRANGE", "sw", "0", "-1"]));
    out.push(w1.cmd(&["ZRANGE", "sz", "0", "-1"]));
    still_blocked(&mut wz);

    // Inside a transaction: served after EXEC, with what is left then.
    block(&mut w1, port, &["BLPOP", "sw", "5"], 2);
    out.push(p.cmd(&["MULTI"]));
    out.push(p.cmd(&["SWAPDB", "0", "1"]));
    out.push(p.cmd(&["SELECT", "1"]));
    out.push(p.cmd(&["LPOP", "sw"]));
    out.push(p.cmd(&["EXEC"]));
    still_blocked(&mut w1);
    out.push(p.cmd(&["RPUSH", "sw", "c"]));
    out.push(reply(&mut w1));
    // Database 1 now holds the string `none`; a list there reaches the
    // waiter in database 0 by the next swap.
    out.push(p.cmd(&["DEL", "none"]));
    out.push(p.cmd(&["RPUSH", "none", "late"]));
    out.push(p.cmd(&["SWAPDB", "1", "0"]));
    out.push(reply(&mut wz));
    out
}

/// SORT ... STORE onto a new key wakes its waiters; onto an existing value
/// (`setKey` overwrites) it does not.
fn sort_store(port: u16) -> Vec<Vec<u8>> {
    let mut w = connect(port);
    let mut p = connect(port);
    let mut out = vec![p.cmd(&["RPUSH", "nums", "3", "1", "2"])];
    block(&mut w, port, &["BLPOP", "sorted", "5"], 1);
    out.push(p.cmd(&["SORT", "nums", "STORE", "sorted"]));
    out.push(reply(&mut w));
    out.push(p.cmd(&["LRANGE", "sorted", "0", "-1"]));

    block(
        &mut w,
        port,
        &["BLMOVE", "sorted2", "moved", "RIGHT", "LEFT", "5"],
        1,
    );
    out.push(p.cmd(&[
        "SORT", "nums", "DESC", "LIMIT", "0", "2", "STORE", "sorted2",
    ]));
    out.push(reply(&mut w));
    out.push(p.cmd(&["LRANGE", "moved", "0", "-1"]));

    block(&mut w, port, &["BLPOP", "over", "5"], 1);
    out.push(p.cmd(&["SET", "over", "x"]));
    out.push(p.cmd(&["SORT", "nums", "STORE", "over"]));
    still_blocked(&mut w);
    out.push(p.cmd(&["DEL", "over"]));
    out.push(p.cmd(&["SORT", "nums", "ALPHA", "STORE", "over"]));
    out.push(reply(&mut w));

    // An empty result stores nothing and wakes nobody.
    block(&mut w, port, &["BLPOP", "empty", "5"], 1);
    out.push(p.cmd(&["SORT", "nokey", "STORE", "empty"]));
    still_blocked(&mut w);
    out.push(p.cmd(&["RPUSH", "empty", "e"]));
    out.push(reply(&mut w));
    out
}

/// SUNIONSTORE, SINTERSTORE and SDIFFSTORE store sets: in Redis 7.0 no
/// client blocks on a set, so list and sorted-set waiters stay blocked.
fn set_stores(port: u16) -> Vec<Vec<u8>> {
    let mut w = connect(port);
    let mut wz = connect(port);
    let mut p = connect(port);
    let mut out = vec![
        p.cmd(&["SADD", "s1", "a", "b"]),
        p.cmd(&["SADD", "s2", "b"]),
    ];
    block(&mut w, port, &["BLPOP", "ss", "5"], 1);
    block(&mut wz, port, &["BZPOPMIN", "ss", "5"], 2);
    out.push(p.cmd(&["SUNIONSTORE", "ss", "s1", "s2"]));
    out.push(p.cmd(&["DEL", "ss"]));
    out.push(p.cmd(&["SINTERSTORE", "ss", "s1", "s2"]));
    out.push(p.cmd(&["DEL", "ss"]));
    out.push(p.cmd(&["SDIFFSTORE", "ss", "s1", "s2"]));
    still_blocked(&mut w);
    still_blocked(&mut wz);
    out.push(p.cmd(&["DEL", "ss"]));
    out.push(p.cmd(&["ZADD", "ss", "1", "z"]));
    out.push(reply(&mut wz));
    out.push(p.cmd(&["RPUSH", "ss", "l"]));
    out.push(reply(&mut w));
    out
}

/// ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE and ZRANGESTORE onto a new key wake
/// sorted-set waiters (BZPOPMIN, BZPOPMAX, BZMPOP) but not list waiters.
fn zset_stores(port: u16) -> Vec<Vec<u8>> {
    let mut w = connect(port);
    let mut lw = connect(port);
    let mut p = connect(port);
    let mut out = vec![
        p.cmd(&["ZADD", "za", "1", "a", "2", "b", "3", "c"]),
        p.cmd(&["ZADD", "zb", "2", "b"]),
    ];
    block(&mut lw, port, &["BLPOP", "zi", "5"], 1);
    block(&mut w, port, &["BZPOPMAX", "zi", "5"], 2);
    out.push(p.cmd(&["ZINTERSTORE", "zi", "2", "za", "zb"]));
    out.push(reply(&mut w));
    still_blocked(&mut lw);
    block(
        &mut w,
        port,
        &["BZMPOP", "5", "2", "none", "zd", "MAX", "COUNT", "5"],
        2,
    );
    out.push(p.cmd(&["ZDIFFSTORE", "zd", "2", "za", "zb"]));
    out.push(reply(&mut w));
    block(&mut w, port, &["BZPOPMIN", "zu", "5"], 2);
    out.push(p.cmd(&["ZUNIONSTORE", "zu", "2", "za", "zb", "WEIGHTS", "1", "10"]));
    out.push(reply(&mut w));
    block(&mut w, port, &["BZPOPMIN", "zr", "5"], 2);
    out.push(p.cmd(&["ZRANGESTORE", "zr", "za", "(1", "+inf", "BYSCORE"]));
    out.push(reply(&mut w));
    out.push(p.cmd(&["RPUSH", "zi", "l"]));
    out.push(reply(&mut lw));
    out
}

/// LMOVE and RPOPLPUSH into a new list wake its waiters.
fn lmove(port: u16) -> Vec<Vec<u8>> {
    let mut w = connect(port);
    let mut p = connect(port);
    let mut out = vec![p.cmd(&["RPUSH", "ls", "a", "b", "c"])];
    block(&mut w, port, &["BLPOP", "ld", "5"], 1);
    out.push(p.cmd(&["LMOVE", "ls", "ld", "LEFT", "RIGHT"]));
    out.push(reply(&mut w));
    block(
        &mut w,
        port,
        &["BLMPOP", "5", "1", "ld2", "RIGHT", "COUNT", "3"],
        1,
    );
    out.push(p.cmd(&["RPOPLPUSH", "ls", "ld2"]));
    out.push(reply(&mut w));
    out.push(p.cmd(&["LRANGE", "ls", "0", "-1"]));
    out.push(p.cmd(&["EXISTS", "ld", "ld2"]));
    out
}

/// Keyspace events: the renaming (or moving, swapping) command's own events
/// come first, then the served waiter's `lpop` / `zpopmin` and `del`.
fn events(port: u16) -> Vec<Vec<u8>> {
    let mut w = connect(port);
    let mut p = connect(port);
    let mut sub = connect(port);
    let mut out = vec![p.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"])];
    out.push(sub.cmd(&["PSUBSCRIBE", "__keyevent@*__:*"]));
    p.cmd(&["CONFIG", "SET", "notify-keyspace-events", ""]);
    p.cmd(&["RPUSH", "es", "a"]);
    p.cmd(&["ZADD", "ez", "1", "m"]);
    p.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    block(&mut w, port, &["BLPOP", "ed", "5"], 1);
    out.push(p.cmd(&["RENAME", "es", "ed"]));
    out.push(reply(&mut w));
    for _ in 0..4 {
        out.push(sub.read_reply().expect("event"));
    }
    out.push(w.cmd(&["SELECT", "3"]));
    block(&mut w, port, &["BZPOPMIN", "ez", "5"], 1);
    out.push(p.cmd(&["MOVE", "ez", "3"]));
    out.push(reply(&mut w));
    for _ in 0..4 {
        out.push(sub.read_reply().expect("event"));
    }
    still_blocked(&mut sub);
    out.push(p.cmd(&["CONFIG", "SET", "notify-keyspace-events", ""]));
    out
}

/// Runs `scenario` on Amber and on Redis; the replies must be the same bytes.
fn same_on_both(scenario: fn(u16) -> Vec<Vec<u8>>) {
    let amber = ServerProcess::amber_with_env_args(&[]);
    let got: Vec<String> = scenario(amber.port).iter().map(|r| show(r)).collect();
    let redis = ServerProcess::redis(&[]);
    let want: Vec<String> = scenario(redis.port).iter().map(|r| show(r)).collect();
    assert_eq!(got, want, "amber (left) vs redis (right)");
}

#[test]
fn rename_and_renamenx_wake_waiters() {
    same_on_both(rename);
}

#[test]
fn rename_feeds_a_blmove_chain_and_waits_for_exec() {
    same_on_both(rename_chain_and_exec);
}

#[test]
fn move_wakes_waiters_in_the_destination_db() {
    same_on_both(move_cmd);
}

#[test]
fn copy_wakes_waiters() {
    same_on_both(copy);
}

#[test]
fn swapdb_wakes_waiters_in_both_dbs() {
    same_on_both(swapdb);
}

#[test]
fn sort_store_wakes_waiters_of_a_new_key() {
    same_on_both(sort_store);
}

#[test]
fn set_stores_wake_nobody() {
    same_on_both(set_stores);
}

#[test]
fn zset_stores_wake_zset_waiters() {
    same_on_both(zset_stores);
}

#[test]
fn lmove_into_a_new_list_wakes_waiters() {
    same_on_both(lmove);
}

#[test]
fn keyspace_events_of_a_wake_up() {
    same_on_both(events);
}
