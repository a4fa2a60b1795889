//! CLIENT PAUSE / UNPAUSE and CLIENT REPLY against the real binary,
//! compared with a real `redis-server`: which commands a `WRITE` or `ALL`
//! pause holds back (a held command answers only after `CLIENT UNPAUSE`),
//! pipelined order after a pause, a pause that ends by itself, a client
//! that leaves while held, and the replies `CLIENT REPLY OFF`/`SKIP` drop.

use std::time::{Duration, Instant};

use amber_tests::reply::show;
use amber_tests::{Pair, RespClient};

/// How long a command that is not held back may take to answer on a
/// loaded machine; a held one gets no answer at all before the unpause.
const ANSWER_WITHIN: Duration = Duration::from_millis(400);

/// Sends `args` and reports whether a reply came within [`ANSWER_WITHIN`].
fn answers_at_once(c: &mut RespClient, args: &[&str]) -> bool {
    c.send(args).expect("send");
    c.set_timeout(ANSWER_WITHIN);
    let at_once = c.read_reply().is_ok();
    c.set_timeout(Duration::from_secs(10));
    at_once
}

/// Runs `args` on `worker` under `CLIENT PAUSE 100000 <mode>` from
/// `control`: whether it was held back, and its reply (read after the
/// unpause when it was).
fn under_pause(
    control: &mut RespClient,
    worker: &mut RespClient,
    mode: &str,
    args: &[&str],
) -> (bool, String) {
    assert_eq!(
        control.cmd(&["CLIENT", "PAUSE", "100000", mode]),
        b"+OK\r\n"
    );
    worker.send(args).expect("send");
    worker.set_timeout(ANSWER_WITHIN);
    let early = worker.read_reply();
    worker.set_timeout(Duration::from_secs(10));
    assert_eq!(control.cmd(&["CLIENT", "UNPAUSE"]), b"+OK\r\n");
    match early {
        Ok(reply) => (false, show(&reply)),
        Err(_) => (
            true,
            show(&worker.read_reply().expect("reply after unpause")),
        ),
    }
}

#[test]
fn write_pause_holds_back_what_redis_holds_back() {
    let pair = Pair::start(&[], &[]);
    let no_writes = "#!lua flags=no-writes\nreturn 1";
    let cases: Vec<Vec<&str>> = vec![
        vec!["GET", "k"],
        vec!["SET", "k", "v"],
        vec!["DEL", "nokey"],
        vec!["EXPIRE", "k", "100"],
        vec!["PUBLISH", "ch", "m"],
        vec!["EVAL", "return 1", "0"],
        vec!["EVAL", "return redis.call('set','k','w')", "0"],
        vec!["EVAL", no_writes, "0"],
        vec!["EVAL_RO", "return 1", "0"],
        vec!["EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"],
        vec!["PFCOUNT", "hll"],
        vec!["PFADD", "hll", "a"],
        vec!["SCRIPT", "LOAD", "return 1"],
        vec!["SORT_RO", "nolist"],
        vec!["FLUSHDB"],
        vec!["PING"],
        vec!["CLIENT", "ID"],
        vec!["SELECT", "0"],
        vec!["CONFIG", "GET", "maxmemory"],
        vec!["NOSUCHCOMMAND"],
        vec!["GET"],
        vec!["FCALL", "ro", "0"],
        vec!["FCALL", "rw", "0"],
        vec!["FCALL_RO", "ro", "0"],
    ];
    // EVALSHA of a cached script (its SHA1 is the one of `return 1`), and
    // functions with and without `no-writes`.
    let library = "#!lua name=pauselib\nredis.register_function{function_name='ro', callback=function() return 1 end, flags={'no-writes'}}\nredis.register_function('rw', function() return 2 end)";
    for server in [&pair.redis, &pair.amber] {
        server.client().cmd(&["SCRIPT", "LOAD", "return 1"]);
        server.client().cmd(&["FUNCTION", "LOAD", library]);
    }
    for case in &cases {
        let mut seen = Vec::new();
        for server in [&pair.redis, &pair.amber] {
            let (mut control, mut worker) = (server.client(), server.client());
            let mut r = under_pause(&mut control, &mut worker, "WRITE", case);
            if case[0] == "CLIENT" {
                r.1 = String::from("(id)");
            }
            seen.push(r);
        }
        assert_eq!(
            seen[1], seen[0],
            "{case:?} under CLIENT PAUSE WRITE (left: amber, right: redis)"
        );
    }
}

#[test]
fn write_pause_and_transactions() {
    let pair = Pair::start(&[], &[]);
    let mut seen = Vec::new();
    for server in [&pair.redis, &pair.amber] {
        let (mut control, mut worker) = (server.client(), server.client());
        let mut log = Vec::new();
        // A read-only transaction runs; one that writes waits.
        worker.cmd(&["MULTI"]);
        worker.cmd(&["GET", "k"]);
        log.push(under_pause(&mut control, &mut worker, "WRITE", &["EXEC"]));
        worker.cmd(&["MULTI"]);
        worker.cmd(&["INCR", "n"]);
        log.push(under_pause(&mut control, &mut worker, "WRITE", &["EXEC"]));
        // A write queued while paused.
        worker.cmd(&["MULTI"]);
        log.push(under_pause(
            &mut control,
            &mut worker,
            "WRITE",
            &["INCR", "n"],
        ));
        log.push((false, show(&worker.cmd(&["EXEC"]))));
        seen.push(log);
    }
    assert_eq!(seen[1], seen[0], "left: amber, right: redis");
    assert!(seen[0][1].0, "EXEC of a write is held back: {:?}", seen[0]);
}

#[test]
fn all_pause_holds_everything_and_ends_by_itself() {
    let pair = Pair::start(&[], &[]);
    for server in [&pair.redis, &pair.amber] {
        let (mut control, mut worker) = (server.client(), server.client());
        // The mode defaults to ALL, which holds even CLIENT UNPAUSE (in
        // Redis too): the pause can only run out.
        for (pause, args) in [
            (&["CLIENT", "PAUSE", "600"][..], &["PING"][..]),
            (
                &["CLIENT", "PAUSE", "600", "ALL"][..],
                &["CLIENT", "UNPAUSE"][..],
            ),
        ] {
            assert_eq!(control.cmd(pause), b"+OK\r\n");
            let started = Instant::now();
            worker.cmd(args);
            let waited = started.elapsed();
            assert!(
                waited >= Duration::from_millis(400),
                "{args:?} answered after {waited:?} under a 600 ms pause on {:?}",
                server.kind
            );
            // Over: commands answer at once again.
            assert!(answers_at_once(&mut worker, &["PING"]));
        }
    }
}

#[test]
fn held_pipeline_keeps_its_order_and_a_leaving_client_is_forgotten() {
    let pair = Pair::start(&[], &[]);
    let mut seen = Vec::new();
    for server in [&pair.redis, &pair.amber] {
        let (mut control, mut worker) = (server.client(), server.client());
        control.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]);
        worker
            .send_raw(b"GET p\r\nSET p 1\r\nGET p\r\nINCR p\r\nGET p\r\n")
            .expect("send");
        // The first GET answers; the rest waits behind the SET.
        let first = show(&worker.read_reply().expect("first"));
        worker.set_timeout(ANSWER_WITHIN);
        assert!(
            worker.read_reply().is_err(),
            "SET answered during the pause"
        );
        worker.set_timeout(Duration::from_secs(10));
        // A client that leaves while held is forgotten; the server goes on.
        let mut leaver = server.client();
        leaver.send(&["SET", "gone", "1"]).expect("send");
        drop(leaver);
        control.cmd(&["CLIENT", "UNPAUSE"]);
        let rest: Vec<String> = (0..4)
            .map(|_| show(&worker.read_reply().expect("reply")))
            .collect();
        seen.push((first, rest));
        assert_eq!(control.cmd(&["PING"]), b"+PONG\r\n");
    }
    assert_eq!(seen[1], seen[0], "left: amber, right: redis");
}

/// Sends `script` as one pipeline, then `ECHO end`, and returns every byte
/// that came back up to and including the echo.
fn replies_to(c: &mut RespClient, script: &[&[&str]]) -> String {
    let mut raw = Vec::new();
    for args in script.iter().chain(std::iter::once(&&["ECHO", "end"][..])) {
        raw.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args.iter() {
            raw.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
    }
    c.send_raw(&raw).expect("send");
    let mut out = Vec::new();
    while !out.ends_with(b"$3\r\nend\r\n") {
        out.extend_from_slice(&c.read_reply().expect("reply"));
    }
    show(&out)
}

#[test]
fn client_reply_drops_what_redis_drops() {
    let pair = Pair::start(&[], &[]);
    let script: &[&[&str]] = &[
        &["SET", "r", "1"],
        &["CLIENT", "REPLY", "OFF"],
        &["SET", "r", "2"],
        &["GET", "r"],
        &["NOSUCHCOMMAND"],
        &["CLIENT", "REPLY", "SKIP"],
        &["CLIENT", "REPLY", "ON"],
        &["GET", "r"],
        &["CLIENT", "REPLY", "SKIP"],
        &["GET", "r"],
        &["GET", "r"],
        &["CLIENT", "REPLY", "SKIP"],
        &["CLIENT", "REPLY", "SKIP"],
        &["INCR", "r"],
        &["GET", "r"],
        &["CLIENT", "REPLY", "SKIP"],
        &["BLPOP", "nolist", "0.05"],
        &["GET", "r"],
        &["CLIENT", "REPLY", "SKIP"],
        &["MULTI"],
        &["INCR", "r"],
        &["EXEC"],
        &["CLIENT", "REPLY", "OFF"],
        &["CLIENT", "REPLY", "foo"],
        &["CLIENT", "REPLY", "ON"],
        &["GET", "r"],
    ];
    let (mut r, mut a) = pair.clients();
    let expected = replies_to(&mut r, script);
    assert_eq!(
        replies_to(&mut a, script),
        expected,
        "left: amber, right: redis"
    );
    // Something was dropped, something was not.
    assert!(
        expected.starts_with("+OK\\r\\n+OK\\r\\n$1\\r\\n2"),
        "{expected}"
    );
}

#[test]
fn client_reply_off_keeps_pushed_messages_as_redis() {
    // RESP3: a client's own invalidations and pub/sub messages are pushed,
    // not replied, and Redis 7.0.15 sends them under CLIENT REPLY OFF.
    let pair = Pair::start(&[], &[]);
    let script: &[&[&str]] = &[
        &["CLIENT", "TRACKING", "on"],
        &["GET", "k"],
        &["SUBSCRIBE", "ch"],
        &["CLIENT", "REPLY", "OFF"],
        &["SET", "k", "v"],
        &["PUBLISH", "ch", "self"],
        &["GET", "k"],
        &["CLIENT", "REPLY", "ON"],
        &["SET", "k", "w"],
    ];
    let (mut r, mut a) = pair.clients();
    for c in [&mut r, &mut a] {
        c.cmd(&["HELLO", "3"]);
    }
    let expected = replies_to(&mut r, script);
    assert_eq!(
        replies_to(&mut a, script),
        expected,
        "left: amber, right: redis"
    );
    assert!(
        expected.contains("invalidate") && expected.contains("self"),
        "{expected}"
    );
}

/// During a pause keys past their deadline are hidden, not deleted: reads
/// see them missing, `expired_keys` does not move and neither does
/// `DBSIZE`; after `CLIENT UNPAUSE` the next read deletes them (Redis's
/// "Test both active and passive expires are skipped during client
/// pause").
#[test]
fn expiry_waits_for_the_end_of_a_pause() {
    let pair = Pair::start(&[], &[]);
    let mut seen = Vec::new();
    for server in [&pair.redis, &pair.amber] {
        let mut c = server.client();
        let expired = |c: &mut RespClient| {
            let info = String::from_utf8_lossy(&c.cmd(&["INFO", "stats"])).into_owned();
            info.lines()
                .find_map(|l| l.strip_prefix("expired_keys:"))
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        let mut log = vec![show(&c.cmd(&["CONFIG", "RESETSTAT"]))];
        log.push(show(&c.cmd(&["MULTI"])));
        log.push(show(&c.cmd(&["SET", "foo", "bar", "PX", "10"])));
        log.push(show(&c.cmd(&["SET", "bar", "foo", "PX", "10"])));
        log.push(show(&c.cmd(&["CLIENT", "PAUSE", "50000", "WRITE"])));
        log.push(show(&c.cmd(&["EXEC"])));
        std::thread::sleep(Duration::from_millis(150));
        log.push(show(&c.cmd(&["GET", "foo"])));
        log.push(show(&c.cmd(&["EXISTS", "bar"])));
        log.push(expired(&mut c));
        log.push(show(&c.cmd(&["DBSIZE"])));
        log.push(show(&c.cmd(&["CLIENT", "UNPAUSE"])));
        log.push(show(&c.cmd(&["GET", "foo"])));
        log.push(show(&c.cmd(&["GET", "bar"])));
        log.push(expired(&mut c));
        seen.push(log);
    }
    assert_eq!(seen[1], seen[0], "left: amber, right: redis");
}
