//! Protocol handling and limits, over raw sockets, compared with a real
//! Redis wherever Redis's behaviour is the specification: protocol errors
//! (reply text and connection close), huge declared lengths, a 10 MB
//! request in pieces, `proto-max-bulk-len`, `client-query-buffer-limit`,
//! `maxclients`, `timeout`, pipelining, inline commands, RESP3, AUTH,
//! SHUTDOWN and signals, bad configuration, expiry.
//!
//! Every behavioural check runs against Redis too: that proves the test
//! itself observes what it claims (a check Redis fails is a broken test).

use std::io::Write;
use std::time::{Duration, Instant};

use amber_tests::reply::{self, show, show_short};
use amber_tests::support::{redis_arity, supports};
use amber_tests::{Kind, Pair, RespClient, ServerProcess};

const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Sends `bytes` on a fresh connection to each server and returns what
/// each answered before closing (asserting both closed).
fn garbage_on_both(pair: &Pair, bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut out = Vec::new();
    for server in [&pair.redis, &pair.amber] {
        let mut c = server.client();
        // The server may close before reading everything: ignore EPIPE.
        let _ = c.send_raw(bytes);
        let (got, closed) = c.read_until_close(CLOSE_WAIT);
        assert!(
            closed,
            "{} did not close the connection after {}; got {}",
            server.kind.name(),
            show_short(bytes, 80),
            show_short(&got, 200)
        );
        out.push(got);
    }
    let amber = out.pop().unwrap_or_default();
    let redis = out.pop().unwrap_or_default();
    (redis, amber)
}

#[test]
fn protocol_errors_match_redis_and_close() {
    let pair = Pair::start(&[], &[]);
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("invalid multibulk length", b"*abc\r\n".to_vec()),
        ("invalid multibulk length (sign)", b"*+1\r\n".to_vec()),
        ("multibulk count over INT_MAX", b"*3000000000\r\n".to_vec()),
        ("expected '$'", b"*1\r\n+foo\r\n".to_vec()),
        (
            "expected '$' (inline after header)",
            b"*2\r\n$4\r\nECHO\r\nhello\r\n".to_vec(),
        ),
        ("invalid bulk length", b"*1\r\n$abc\r\n".to_vec()),
        ("negative bulk length", b"*1\r\n$-1\r\n".to_vec()),
        (
            "bulk length with leading zero",
            b"*1\r\n$04\r\nPING\r\n".to_vec(),
        ),
        (
            "bulk over proto-max-bulk-len",
            b"*1\r\n$536870913\r\n".to_vec(),
        ),
        ("unbalanced double quote", b"SET \"a b\r\n".to_vec()),
        ("unbalanced single quote", b"SET 'a b\r\n".to_vec()),
        (
            "closing quote not followed by space",
            b"ECHO \"a\"b\r\n".to_vec(),
        ),
        (
            "reply before the error",
            b"PING\r\n*1\r\n$4\r\nPING\r\n*x\r\n".to_vec(),
        ),
    ];
    cases.push(("too big inline request", vec![b'a'; 70 * 1024]));
    let mut big_count = b"*".to_vec();
    big_count.extend(vec![b'1'; 70 * 1024]);
    cases.push(("too big mbulk count string", big_count));
    let mut big_bulk = b"*1\r\n$".to_vec();
    big_bulk.extend(vec![b'1'; 70 * 1024]);
    cases.push(("too big bulk count string", big_bulk));
    let mut failures = Vec::new();
    for (what, bytes) in &cases {
        let (r, a) = garbage_on_both(&pair, bytes);
        // The test is only meaningful if Redis calls it a protocol error.
        assert!(
            show(&r).contains("-ERR Protocol error"),
            "{what}: redis did not answer a protocol error: {}",
            show(&r)
        );
        if r != a {
            failures.push(format!(
                "{what}:\n  redis: {}\n  amber: {}",
                show(&r),
                show(&a)
            ));
        }
    }
    let mut amber = pair.amber;
    assert!(amber.is_running(), "amber died: {}", amber.log_text());
    assert!(
        failures.is_empty(),
        "protocol errors differ:\n{}",
        failures.join("\n")
    );
}

#[test]
fn huge_declared_lengths_do_not_allocate() {
    let pair = Pair::start(&[], &[]);
    let rss_before = pair.amber.rss_kib().unwrap_or(0);
    // 2^31-1 arguments declared: both wait for them; the next header is bad.
    let (r, a) = garbage_on_both(&pair, b"*2147483647\r\n$4\r\nPING\r\nXYZ\r\n");
    assert_eq!(show(&a), show(&r));
    assert!(show(&r).contains("expected '$', got 'X'"));
    // A 512 MB bulk declared (exactly proto-max-bulk-len) but never sent:
    // both keep waiting; memory must not be touched.
    let mut waiting = Vec::new();
    for _ in 0..4 {
        let mut c = pair.amber.client();
        c.send_raw(b"*2\r\n$3\r\nSET\r\n$536870912\r\n").unwrap();
        c.send_raw(&vec![b'x'; 1024]).unwrap();
        waiting.push(c);
    }
    let mut c = pair.amber.client();
    c.send_raw(b"*1\r\n$2147483647\r\n").unwrap();
    waiting.push(c);
    std::thread::sleep(Duration::from_millis(300));
    let mut probe = pair.amber.client();
    assert_eq!(probe.cmd(&["PING"]), b"+PONG\r\n");
    let rss_after = pair.amber.rss_kib().unwrap_or(0);
    assert!(
        rss_after < rss_before + 64 * 1024,
        "amber's RSS grew from {rss_before} KiB to {rss_after} KiB on declared-but-unsent lengths"
    );
    // The $2147483647 connection was refused (over proto-max-bulk-len).
    let (got, closed) = waiting.pop().unwrap().read_until_close(CLOSE_WAIT);
    assert!(closed);
    assert_eq!(show(&got), "-ERR Protocol error: invalid bulk length\\r\\n");
}

#[test]
fn ten_megabyte_set_in_64k_pieces() {
    let amber = ServerProcess::amber(&[]);
    let mut c = amber.client();
    let value: Vec<u8> = (0..10 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let req = reply::encode(&[&b"SET"[..], b"big", &value]);
    let start = Instant::now();
    for piece in req.chunks(64 * 1024) {
        c.stream().write_all(piece).unwrap();
    }
    assert_eq!(c.read_reply().unwrap(), b"+OK\r\n");
    let got = c.read_parsed_cmd(&["GET", "big"]);
    assert!(
        got.data.as_deref() == Some(&value[..]),
        "GET big returned a different value"
    );
    eprintln!("10 MB SET + GET in {:?}", start.elapsed());
}

trait ParsedCmd {
    fn read_parsed_cmd(&mut self, args: &[&str]) -> reply::Reply;
}

impl ParsedCmd for RespClient {
    fn read_parsed_cmd(&mut self, args: &[&str]) -> reply::Reply {
        self.send(args).unwrap();
        self.read_parsed().unwrap()
    }
}

/// `ECHO` of `n` bytes on `c`: the reply, or what came before the close.
fn echo_of(c: &mut RespClient, n: usize) -> (Vec<u8>, bool) {
    let payload = vec![b'e'; n];
    let _ = c.send(&[&b"ECHO"[..], &payload]);
    c.set_timeout(Duration::from_secs(10));
    match c.read_reply() {
        Ok(r) => (r, false),
        Err(_) => (Vec::new(), true),
    }
}

#[test]
fn proto_max_bulk_len_at_startup() {
    let pair = Pair::start(&["--proto-max-bulk-len", "1mb"], &[]);
    for server in [&pair.redis, &pair.amber] {
        let mut c = server.client();
        let (r, _) = echo_of(&mut c, 1024 * 1024);
        assert_eq!(
            r.len(),
            1024 * 1024 + 12,
            "{}: 1 MB ECHO",
            server.kind.name()
        );
    }
    let (r, a) = garbage_on_both(&pair, b"*2\r\n$4\r\nECHO\r\n$1048577\r\n");
    assert!(show(&r).contains("invalid bulk length"));
    assert_eq!(show(&a), show(&r));
}

/// Is CONFIG SET implemented on Amber? (Prints why not.)
fn has_config_set(amber: &mut RespClient, what: &str) -> bool {
    let r = amber.cmd(&["CONFIG", "SET", "maxmemory-samples", "5"]);
    if r == b"+OK\r\n" {
        return true;
    }
    eprintln!(
        "SKIP {what}: CONFIG SET is not implemented on this Amber yet ({}); \
         the start-up variant of this limit is tested instead",
        show(&r)
    );
    false
}

#[test]
fn proto_max_bulk_len_via_config_set() {
    let pair = Pair::start(&[], &[]);
    if !has_config_set(
        &mut pair.amber.client(),
        "proto-max-bulk-len via CONFIG SET",
    ) {
        return;
    }
    let mut results = Vec::new();
    for server in [&pair.redis, &pair.amber] {
        // Set it and use it on the same connection: the limit applies at once.
        let mut c = server.client();
        assert_eq!(
            c.cmd(&["CONFIG", "SET", "proto-max-bulk-len", "1mb"]),
            b"+OK\r\n"
        );
        assert_eq!(
            c.cmd(&["CONFIG", "GET", "proto-max-bulk-len"]),
            b"*2\r\n$18\r\nproto-max-bulk-len\r\n$7\r\n1048576\r\n"
        );
        let _ = c.send_raw(b"*2\r\n$4\r\nECHO\r\n$1048577\r\n");
        let (got, closed) = c.read_until_close(CLOSE_WAIT);
        results.push((server.kind, show(&got), closed));
        // Values below 1mb are refused, as in Redis.
        let mut c = server.client();
        results.push((
            server.kind,
            show(&c.cmd(&["CONFIG", "SET", "proto-max-bulk-len", "1000"])),
            true,
        ));
    }
    assert!(results[0].1.contains("invalid bulk length"), "{results:?}");
    assert_eq!(results[2], (Kind::Amber, results[0].1.clone(), true));
    assert_eq!(results[3].1, results[1].1);
}

/// Sends a 2 MB SET to a server whose query buffer limit is 1 MB: only its
/// first 1.5 MB when `partial` (the request can never complete, so the limit
/// alone must close the connection), else all of it in one write.
fn over_query_limit(server: &ServerProcess, partial: bool) -> (Vec<u8>, bool) {
    let mut c = server.client();
    let value = vec![b'q'; 2 * 1024 * 1024];
    let req = reply::encode(&[&b"SET"[..], b"qbuf", &value]);
    let send = if partial {
        &req[..3 * 512 * 1024]
    } else {
        &req[..]
    };
    for piece in send.chunks(64 * 1024) {
        if c.stream().write_all(piece).is_err() {
            break;
        }
    }
    c.read_until_close(CLOSE_WAIT)
}

#[test]
fn client_query_buffer_limit() {
    let pair = Pair::start(&["--client-query-buffer-limit", "1mb"], &[]);
    let r = over_query_limit(&pair.redis, true);
    let a = over_query_limit(&pair.amber, true);
    assert!(r.1, "redis kept a client over its query buffer limit");
    assert_eq!(show(&a.0), show(&r.0));
    assert!(a.1, "amber kept a client over its query buffer limit");
    // Below the limit still works.
    for s in [&pair.redis, &pair.amber] {
        let mut c = s.client();
        let v = vec![b'v'; 512 * 1024];
        assert_eq!(
            c.cmd(&[&b"SET"[..], b"ok", &v]),
            b"+OK\r\n",
            "{}",
            s.kind.name()
        );
    }
    // Raised via CONFIG SET (once it exists), a 3 MB request now passes.
    let mut ac = pair.amber.client();
    if has_config_set(&mut ac, "client-query-buffer-limit via CONFIG SET") {
        for s in [&pair.redis, &pair.amber] {
            let mut c = s.client();
            let name = s.kind.name();
            assert_eq!(
                c.cmd(&["CONFIG", "SET", "client-query-buffer-limit", "8mb"]),
                b"+OK\r\n",
                "{name}"
            );
            let v = vec![b'v'; 3 * 1024 * 1024];
            assert_eq!(
                c.cmd(&[&b"SET"[..], b"big", &v]),
                b"+OK\r\n",
                "{name}: 3 MB under an 8 MB limit"
            );
        }
    }
}

/// Known bug (reported): Amber checks the limit only on bytes left over after
/// executing what was parsed, so a request larger than the limit whose bytes
/// are all read before the check is executed (`+OK`) while Redis closes the
/// connection. Timing-dependent (how much one read gets), hence ignored; run with
/// `cargo test -p amber-tests --test protocol -- --ignored`.
#[test]
fn client_query_buffer_limit_single_write() {
    let pair = Pair::start(&["--client-query-buffer-limit", "1mb"], &[]);
    let r = over_query_limit(&pair.redis, false);
    assert!(r.1 && r.0.is_empty(), "redis: {r:?}");
    for _ in 0..5 {
        let a = over_query_limit(&pair.amber, false);
        assert_eq!(
            show(&a.0),
            "",
            "amber executed a 2 MB request over a 1 MB limit"
        );
        assert!(a.1);
    }
}

#[test]
fn maxclients_refuses_extra_clients() {
    let pair = Pair::start(&["--maxclients", "3"], &[]);
    std::thread::sleep(Duration::from_millis(200)); // readiness probes gone
    let mut seen = Vec::new();
    for server in [&pair.redis, &pair.amber] {
        let mut held: Vec<RespClient> = (0..3).map(|_| server.client()).collect();
        for c in &mut held {
            assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n", "{}", server.kind.name());
        }
        let mut extra = server.client();
        let (got, closed) = extra.read_until_close(CLOSE_WAIT);
        assert!(
            closed,
            "{}: the 4th client was not closed",
            server.kind.name()
        );
        seen.push(show(&got));
        // Closing one makes room again.
        drop(held.pop());
        std::thread::sleep(Duration::from_millis(200));
        let mut again = server.client();
        assert_eq!(
            again.cmd(&["PING"]),
            b"+PONG\r\n",
            "{}: after a client left",
            server.kind.name()
        );
    }
    assert_eq!(seen[0], "-ERR max number of clients reached\\r\\n");
    assert_eq!(seen[1], seen[0]);
}

#[test]
fn timeout_closes_idle_clients_only() {
    let pair = Pair::start(&["--timeout", "1"], &[]);
    // Both servers at once: each check takes a few seconds.
    std::thread::scope(|scope| {
        for server in [&pair.redis, &pair.amber] {
            scope.spawn(move || idle_check(server));
        }
    });
}

fn idle_check(server: &ServerProcess) {
    {
        let name = server.kind.name();
        let mut idle = server.client();
        assert_eq!(idle.cmd(&["PING"]), b"+PONG\r\n");
        let mut busy = server.client();
        let started = Instant::now();
        let mut idle_closed_at = None;
        // Redis checks timeouts in its cron: allow up to ~3.5 s.
        while started.elapsed() < Duration::from_millis(3500) {
            // Every 100 ms: far inside the 1 s timeout even when a loaded
            // machine delays this thread by half a second.
            let pong = busy
                .try_cmd(&["PING"])
                .unwrap_or_else(|e| panic!("{name}: busy client closed: {e}"));
            assert_eq!(pong, b"+PONG\r\n", "{name}: busy client");
            if idle_closed_at.is_none() {
                idle.set_timeout(Duration::from_millis(100));
                let (got, closed) = idle.read_until_close(Duration::from_millis(100));
                assert!(got.is_empty(), "{name}: idle client got {}", show(&got));
                if closed {
                    idle_closed_at = Some(started.elapsed());
                }
            } else {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let at = idle_closed_at.unwrap_or_else(|| panic!("{name}: idle client never closed"));
        assert!(
            at >= Duration::from_millis(900),
            "{name}: idle client closed too early, {at:?}"
        );
    }
}

#[test]
fn pipelining_10k_commands_in_one_write() {
    let pair = Pair::start(&[], &[]);
    let mut req = Vec::new();
    for i in 0..5000 {
        req.extend(reply::encode(&["SET", &format!("p:{i}"), &format!("v{i}")]));
        req.extend(reply::encode(&["GET", &format!("p:{}", i / 2)]));
    }
    let mut outs = Vec::new();
    for server in [&pair.redis, &pair.amber] {
        let mut c = server.client();
        c.send_raw(&req).unwrap();
        let mut all = Vec::new();
        for i in 0..5000 {
            let set = c.read_reply().unwrap();
            assert_eq!(set, b"+OK\r\n", "{} reply {}", server.kind.name(), 2 * i);
            let get = c.read_reply().unwrap();
            let want = format!("v{}", i / 2);
            assert_eq!(
                show(&get),
                show(&reply::encode(&[want.as_str()])[4..]),
                "{} reply {}",
                server.kind.name(),
                2 * i + 1
            );
            all.extend(set);
            all.extend(get);
        }
        // Nothing extra follows.
        assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
        outs.push(all);
    }
    assert!(outs[0] == outs[1]);
}

#[test]
fn inline_commands() {
    let pair = Pair::start(&[], &[]);
    // (request bytes, number of replies it produces)
    let lines: &[(&[u8], usize)] = &[
        (b"PING\r\n", 1),
        (b"PING\n", 1),
        (b"  ping   \r\n", 1),
        (b"\r\n", 0),
        (b"\n", 0),
        (b"SET il \"a b\"\r\n", 1),
        (b"GET il\r\n", 1),
        (b"ECHO \"\\x41\\n\\t\\\"q\\\"\"\r\n", 1),
        (b"ECHO 'single \\' quote'\r\n", 1),
        (b"ECHO \"\"\r\n", 1),
        (b"GET\r\n", 1),
        (b"NOSUCH a b\r\n", 1),
        (b"PING\r\nPING\r\nECHO x\r\n", 3),
    ];
    let mut failures = Vec::new();
    let (mut r, mut a) = pair.clients();
    for (bytes, n) in lines {
        r.send_raw(bytes).unwrap();
        a.send_raw(bytes).unwrap();
        for _ in 0..*n {
            let (rr, ar) = (r.read_reply().unwrap(), a.read_reply().unwrap());
            if rr != ar {
                failures.push(format!(
                    "{}:\n  redis: {}\n  amber: {}",
                    show(bytes),
                    show(&rr),
                    show(&ar)
                ));
            }
        }
        // In step: nothing extra was answered.
        let (rr, ar) = (r.cmd(&["ECHO", "sync"]), a.cmd(&["ECHO", "sync"]));
        assert_eq!(show(&ar), show(&rr), "out of step after {}", show(bytes));
    }
    assert!(
        failures.is_empty(),
        "inline replies differ:\n{}",
        failures.join("\n")
    );
}

#[test]
fn resp3_via_hello_3() {
    let pair = Pair::start(&[], &[]);
    let (mut r, mut a) = pair.clients();
    let keys = |c: &mut RespClient, args: &[&str]| {
        let raw = c.cmd(args);
        let (m, _) = reply::parse(&raw).unwrap().unwrap();
        let keys: Vec<String> = m.items.iter().step_by(2).map(|k| k.text()).collect();
        let proto = m.items.get(5).and_then(|p| p.integer());
        (m.kind, keys, proto)
    };
    let hr = keys(&mut r, &["HELLO", "3"]);
    let ha = keys(&mut a, &["HELLO", "3"]);
    assert_eq!(hr.0, b'%');
    assert_eq!(hr.2, Some(3));
    assert_eq!(ha, hr, "HELLO 3 reply map (kind, keys, proto)");
    for cmd in [
        &["GET", "missing"][..],
        &["SET", "k", "v"],
        &["SET", "k", "v2", "GET"],
        &["SET", "k", "v", "NX"],
        &["SET", "k", "v", "NX", "GET"],
        &["GET", "k"],
        &["PING"],
        &["ECHO", "x"],
        &["GET"],
    ] {
        amber_tests::assert_same(
            &mut r,
            &mut a,
            &cmd.iter().map(|s| s.as_bytes()).collect::<Vec<_>>(),
        );
    }
    let hr = keys(&mut r, &["HELLO", "2"]);
    let ha = keys(&mut a, &["HELLO", "2"]);
    assert_eq!(hr.0, b'*');
    assert_eq!(ha, hr);
    amber_tests::assert_same(&mut r, &mut a, &[b"GET", b"missing"]);
}

#[test]
fn auth_with_requirepass() {
    let pair = Pair::start(&["--requirepass", "s3cret"], &[]);
    let (mut r, mut a) = pair.clients();
    let same = |r: &mut RespClient, a: &mut RespClient, args: &[&str]| {
        let args: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        amber_tests::assert_same(r, a, &args)
    };
    assert_eq!(
        same(&mut r, &mut a, &["GET", "k"]),
        b"-NOAUTH Authentication required.\r\n"
    );
    same(&mut r, &mut a, &["PING"]);
    same(&mut r, &mut a, &["SET", "k", "v"]);
    same(&mut r, &mut a, &["NOSUCH"]);
    same(&mut r, &mut a, &["GET"]);
    same(&mut r, &mut a, &["AUTH", "wrong"]);
    same(&mut r, &mut a, &["AUTH", "default", "wrong"]);
    same(&mut r, &mut a, &["AUTH", "nobody", "s3cret"]);
    same(&mut r, &mut a, &["HELLO", "3"]);
    same(&mut r, &mut a, &["HELLO", "3", "AUTH", "default", "wrong"]);
    same(&mut r, &mut a, &["GET", "k"]);
    assert_eq!(same(&mut r, &mut a, &["AUTH", "s3cret"]), b"+OK\r\n");
    same(&mut r, &mut a, &["SET", "k", "v"]);
    same(&mut r, &mut a, &["GET", "k"]);
    same(&mut r, &mut a, &["AUTH", "default", "s3cret"]);
    // HELLO AUTH authenticates and switches protocol at once.
    let (mut r2, mut a2) = pair.clients();
    let hr = r2.cmd(&["HELLO", "3", "AUTH", "default", "s3cret"]);
    let ha = a2.cmd(&["HELLO", "3", "AUTH", "default", "s3cret"]);
    assert_eq!(
        (hr[0], ha[0]),
        (b'%', b'%'),
        "{} / {}",
        show(&hr),
        show(&ha)
    );
    same(&mut r2, &mut a2, &["GET", "k"]);
    same(&mut r2, &mut a2, &["GET", "nokey"]);
    // Unauthenticated clients get Redis's tighter request limits.
    let (r, a) = garbage_on_both(&pair, b"*11\r\n");
    assert!(show(&r).contains("unauthenticated multibulk length"));
    assert_eq!(show(&a), show(&r));
    let (r, a) = garbage_on_both(&pair, b"*2\r\n$4\r\nAUTH\r\n$16385\r\n");
    assert!(show(&r).contains("unauthenticated bulk length"));
    assert_eq!(show(&a), show(&r));
}

#[test]
fn shutdown_command_exits_zero() {
    for kind in [Kind::Redis, Kind::Amber] {
        let mut s = ServerProcess::start(kind, &[]);
        let mut c = s.client();
        c.send(&["SHUTDOWN"]).unwrap();
        let (got, closed) = c.read_until_close(Duration::from_secs(10));
        if kind == Kind::Amber && show(&got).contains("unknown command") {
            eprintln!(
                "SKIP SHUTDOWN: not implemented on this Amber yet ({})",
                show(&got)
            );
            assert!(s.is_running());
            return;
        }
        assert!(
            closed,
            "{}: SHUTDOWN did not close the connection: {}",
            kind.name(),
            show(&got)
        );
        assert!(
            got.is_empty(),
            "{}: SHUTDOWN replied {}",
            kind.name(),
            show(&got)
        );
        let status = s.wait_exit(Duration::from_secs(10));
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "{} after SHUTDOWN: {status:?}",
            kind.name()
        );
    }
}

#[test]
fn sigterm_and_sigint_exit_zero() {
    for (kind, sig) in [
        (Kind::Redis, libc::SIGTERM),
        (Kind::Amber, libc::SIGTERM),
        (Kind::Amber, libc::SIGINT),
    ] {
        let mut s = ServerProcess::start(kind, &[]);
        // With a client connected and mid-conversation.
        let mut c = s.client();
        assert_eq!(c.cmd(&["SET", "k", "v"]), b"+OK\r\n");
        // Give the server a moment after start-up: signalling at once hits a
        // known race in Amber (see `sigterm_right_after_startup`).
        std::thread::sleep(Duration::from_millis(300));
        s.signal(sig);
        let status = s.wait_exit(Duration::from_secs(10));
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "{} after signal {sig}: {status:?}; log:\n{}",
            kind.name(),
            s.log_text()
        );
        let (_, closed) = c.read_until_close(Duration::from_secs(5));
        assert!(closed, "{}: client not disconnected at exit", kind.name());
    }
}

/// Known bug (reported): Amber registers its SIGTERM/SIGINT handlers inside a
/// spawned task, which may first run after the server already answers
/// clients; a signal in that window kills the process with the default
/// action (status "signal 15", not exit code 0). Timing-dependent, hence
/// ignored; run with `cargo test -p amber-tests --test protocol -- --ignored`.
#[test]
fn sigterm_right_after_startup() {
    for round in 0..10 {
        let mut s = ServerProcess::amber(&[]);
        let mut c = s.client();
        assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
        s.signal(libc::SIGTERM);
        let status = s.wait_exit(Duration::from_secs(10));
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "round {round}: {status:?}"
        );
    }
}

#[test]
fn bad_configuration_stops_startup() {
    let dir = tempfile::tempdir().unwrap();
    let port = amber_tests::process::free_port().to_string();
    let run = |args: &[&str]| {
        let out =
            amber_tests::process::run_amber_to_exit(args, dir.path(), Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("{e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.status.success(),
            "{args:?} started successfully: {text}"
        );
        text
    };
    let t = run(&["--port", "abc"]);
    assert!(t.contains(">>> 'port \"abc\"'"), "{t}");
    assert!(
        t.contains("argument couldn't be parsed into an integer"),
        "{t}"
    );
    let t = run(&["--port", &port, "--no-such-directive", "1"]);
    assert!(t.contains("no-such-directive"), "{t}");
    assert!(
        t.contains("Bad directive or wrong number of arguments"),
        "{t}"
    );
    let t = run(&["--port", &port, "--maxmemory-policy", "sometimes"]);
    assert!(t.contains("maxmemory-policy"), "{t}");
    let conf = dir.path().join("bad.conf");
    std::fs::write(
        &conf,
        format!("port {port}\n# a comment\n\nmaxclients -5\nbind 127.0.0.1\n"),
    )
    .unwrap();
    let conf_s = conf.display().to_string();
    let t = run(&[&conf_s]);
    assert!(t.contains(&conf_s), "message does not name the file: {t}");
    assert!(t.contains("line 4"), "message does not name the line: {t}");
    assert!(
        t.contains(">>> 'maxclients -5'"),
        "message does not quote the line: {t}"
    );
    let t = run(&[&dir.path().join("missing.conf").display().to_string()]);
    assert!(t.contains("missing.conf"), "{t}");
}

#[test]
fn keys_expire_lazily_and_actively() {
    let pair = Pair::start(&["--hz", "100"], &[]);
    let mut ac = pair.amber.client();
    let mut rc = pair.redis.client();
    let dbsize = supports(&mut ac, "dbsize", redis_arity(&mut rc, "dbsize"));
    let pexpire = supports(&mut ac, "pexpire", redis_arity(&mut rc, "pexpire"));
    for server in [&pair.redis, &pair.amber] {
        let name = server.kind.name();
        let mut c = server.client();
        // Lazy: an expired key is gone when read.
        assert_eq!(c.cmd(&["SET", "e1", "v", "PX", "50"]), b"+OK\r\n");
        assert_eq!(c.cmd(&["GET", "e1"]), b"$1\r\nv\r\n", "{name}");
        if pexpire {
            assert_eq!(c.cmd(&["SET", "e2", "v"]), b"+OK\r\n");
            assert_eq!(c.cmd(&["PEXPIRE", "e2", "50"]), b":1\r\n", "{name}");
        }
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(
            c.cmd(&["GET", "e1"]),
            b"$-1\r\n",
            "{name}: e1 outlived its PX 50"
        );
        if pexpire {
            assert_eq!(
                c.cmd(&["GET", "e2"]),
                b"$-1\r\n",
                "{name}: e2 outlived PEXPIRE 50"
            );
        }
        // Active: keys nobody reads disappear from DBSIZE.
        if dbsize {
            for i in 0..200 {
                c.send(&["SET", &format!("a{i}"), "v", "PX", "30"]).unwrap();
            }
            for _ in 0..200 {
                assert_eq!(c.read_reply().unwrap(), b"+OK\r\n");
            }
            assert_eq!(c.cmd(&["SET", "keep", "v"]), b"+OK\r\n");
            let deadline = Instant::now() + Duration::from_secs(3);
            loop {
                let n = c.cmd(&["DBSIZE"]);
                if n == b":1\r\n" {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{name}: DBSIZE still {} after 3 s",
                    show(&n)
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    if !dbsize {
        eprintln!("SKIP active expiry check: DBSIZE is not implemented on this Amber yet");
    }
    if !pexpire {
        eprintln!("SKIP PEXPIRE check: PEXPIRE is not implemented on this Amber yet");
    }
}

/// A relative `pmem-path` (the default, `amber.arena`, included) is inside
/// `dir`, as Redis keeps `dbfilename` in `dir`: two servers with their own
/// `dir`s and the same relative arena name each get their own arena, and
/// nothing lands in the working directory.
#[test]
fn relative_pmem_path_is_inside_dir() {
    let a = ServerProcess::amber(&["--pmem-path", "amber.arena"]);
    let b = ServerProcess::amber(&["--pmem-path", "amber.arena"]);
    for s in [&a, &b] {
        assert!(
            s.dir().join("amber.arena").is_file(),
            "no arena in {}; log:\n{}",
            s.dir().display(),
            s.log_text()
        );
    }
    let (mut ca, mut cb) = (a.client(), b.client());
    assert_eq!(ca.cmd(&["SET", "k", "on-a"]), b"+OK\r\n");
    assert_eq!(cb.cmd(&["GET", "k"]), b"$-1\r\n", "the servers share data");
    assert_eq!(
        ca.cmd(&["CONFIG", "GET", "pmem-path"]),
        b"*2\r\n$9\r\npmem-path\r\n$11\r\namber.arena\r\n"
    );
    assert!(
        !std::path::Path::new("amber.arena").exists(),
        "an arena was created in the working directory"
    );
}
