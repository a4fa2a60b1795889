//! MONITOR against the real binary, compared with a real `redis-server`:
//! the lines a monitor receives (timestamps and client ports normalised
//! away, everything else byte for byte), a monitor's own commands, RESET,
//! forgetting a disconnected monitor, and monitors on a server with two
//! connection threads.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use amber_tests::connect;
use amber_tests::process::{free_port, ServerProcess};
use amber_tests::reply::show;
use amber_tests::RespClient;

/// A monitor line (ASCII: Redis escapes every other byte) without its
/// `\r\n`, its timestamp replaced by `T` and every `127.0.0.1:<port>` by
/// `127.0.0.1:P`; panics if the timestamp is not `<seconds>.<six digits>`.
fn normalised(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line).into_owned();
    let text = text
        .strip_suffix("\r\n")
        .unwrap_or_else(|| panic!("not a line: {}", show(line)))
        .to_string();
    let rest = text
        .strip_prefix('+')
        .unwrap_or_else(|| panic!("not a status line: {text}"));
    let (stamp, rest) = rest
        .split_once(' ')
        .unwrap_or_else(|| panic!("no timestamp: {text}"));
    let (secs, micros) = stamp
        .split_once('.')
        .unwrap_or_else(|| panic!("bad timestamp: {text}"));
    assert!(
        secs.len() >= 10 && secs.bytes().all(|b| b.is_ascii_digit()),
        "bad seconds: {text}"
    );
    assert!(
        micros.len() == 6 && micros.bytes().all(|b| b.is_ascii_digit()),
        "bad microseconds: {text}"
    );
    let mut out = String::from("+T ");
    let mut rest = rest;
    while let Some(at) = rest.find("127.0.0.1:") {
        let (head, tail) = rest.split_at(at + "127.0.0.1:".len());
        out.push_str(head);
        out.push('P');
        rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

/// Reads monitor lines up to and including the first one containing `last`.
fn lines_until(monitor: &mut RespClient, last: &str) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let line = normalised(&monitor.read_reply().expect("a monitor line"));
        let done = line.contains(last);
        lines.push(line);
        if done || lines.len() > 200 {
            return lines;
        }
    }
}

/// The scenario: returns the monitor's lines and the replies of the
/// commands whose replies are comparable.
fn scenario(port: u16) -> (Vec<String>, Vec<String>) {
    let mut monitor = connect(port);
    let mut client = connect(port);
    let mut replies = vec![show(&monitor.cmd_str("MONITOR"))];
    let binary: &[u8] = b"x\"y\\z\n\r\t\x07\x08\x01\xff";
    let commands: Vec<Vec<&[u8]>> = vec![
        vec![b"SET", b"a b", binary],
        vec![b"GET", b"a b"],
        vec![b"MULTI"],
        vec![b"SET", b"k", b"1"],
        vec![b"INCR", b"k"],
        vec![b"EXEC"],
        // A transaction refused at EXEC: the queued command is not shown.
        vec![b"MULTI"],
        vec![b"GET"],
        vec![b"EXEC"],
        // MONITOR inside a transaction is refused when EXEC runs it.
        vec![b"MULTI"],
        vec![b"MONITOR"],
        vec![b"EXEC"],
        vec![
            b"EVAL",
            b"redis.call('set', KEYS[1], 'v') redis.call('select', '4') return redis.call('get', KEYS[1])",
            b"1",
            b"k",
        ],
        vec![b"EVAL", b"return 1", b"notanumber"],
        vec![b"AUTH", b"secret"],
        vec![b"AUTH", b"user", b"secret"],
        vec![b"AUTH", b"a", b"b", b"c"],
        vec![b"HELLO", b"2", b"SETNAME", b"me", b"AUTH", b"default", b"secret"],
        vec![b"HELLO", b"9", b"AUTH", b"default", b"secret"],
        vec![b"MIGRATE", b"127.0.0.1", b"1", b"nokey", b"0", b"100", b"COPY", b"AUTH", b"secret"],
        vec![b"MIGRATE", b"h", b"1", b"nokey", b"0", b"100", b"AUTH2", b"u", b"secret", b"KEYS", b"a"],
        vec![b"MIGRATE", b"h", b"1", b"nokey", b"0", b"100", b"REPLACE", b"AUTH"],
        vec![b"MIGRATE", b"h", b"1", b"nokey", b"0", b"100", b"BAD", b"AUTH", b"secret"],
        vec![b"SELECT", b"2"],
        vec![b"SET", b"x", b""],
        vec![b"SELECT", b"0"],
        vec![b"NOSUCH", b"a"],
        vec![b"GET"],
        // Administrative: never shown.
        vec![b"CONFIG", b"GET", b"maxmemory"],
        vec![b"PING", b"end"],
    ];
    for c in &commands {
        let reply = client.cmd(c);
        // HELLO's map holds the client id, which differs between servers.
        let hello = c.first().is_some_and(|n| n.eq_ignore_ascii_case(b"hello"));
        if hello && reply.first() == Some(&b'*') {
            replies.push("(HELLO's map)".into());
        } else {
            replies.push(show(&reply));
        }
    }
    let lines = lines_until(&mut monitor, "\"end\"");
    (lines, replies)
}

#[test]
fn monitor_lines_match_redis() {
    let redis = ServerProcess::redis(&[]);
    let amber = ServerProcess::amber_with_env_args(&[]);
    let (r_lines, r_replies) = scenario(redis.port);
    let (a_lines, a_replies) = scenario(amber.port);
    assert_eq!(
        a_lines, r_lines,
        "monitor lines differ (left: amber, right: redis)"
    );
    assert_eq!(
        a_replies, r_replies,
        "replies differ (left: amber, right: redis)"
    );
}

/// A monitor's own commands: its replies, then its own line; commands on
/// keys refused; MONITOR again ignored; RESET ends monitoring.
fn own_commands(port: u16) -> Vec<String> {
    let mut monitor = connect(port);
    let mut client = connect(port);
    let mut out = vec![show(&monitor.cmd_str("MONITOR"))];
    out.push(show(&monitor.cmd_str("PING")));
    out.push(normalised(&monitor.read_reply().expect("own line")));
    out.push(show(&monitor.cmd_str("GET x")));
    // Ignored without a reply: the next reply is PING's.
    monitor.send(&["MONITOR"]).expect("send");
    out.push(show(&monitor.cmd_str("PING again")));
    out.push(normalised(&monitor.read_reply().expect("own line")));
    out.push(show(&client.cmd_str("SET k v")));
    out.push(normalised(&monitor.read_reply().expect("client line")));
    // Commands Redis flags may_replicate are refused too; a script that
    // declares no-writes is not (its line comes before its reply).
    for args in [
        &["PUBLISH", "ch", "m"][..],
        &["EVAL", "return 1", "0"],
        &["EVAL_RO", "return 1", "0"],
        &["PFCOUNT", "h"],
        &["FCALL", "nosuch", "0"],
    ] {
        out.push(show(&monitor.cmd(args)));
    }
    monitor
        .send(&["EVAL", "#!lua flags=no-writes\nreturn 1", "0"])
        .expect("send");
    out.push(normalised(&monitor.read_reply().expect("own line")));
    out.push(show(&monitor.read_reply().expect("script reply")));
    out.push(show(&monitor.cmd_str("RESET")));
    // No longer a monitor: the client's command is not shown, keys are
    // reachable again (a line would come before these replies).
    out.push(show(&client.cmd_str("SET k w")));
    out.push(show(&monitor.cmd_str("GET k")));
    out.push(show(&monitor.cmd_str("PING")));
    out
}

#[test]
fn monitor_own_commands_and_reset_match_redis() {
    let redis = ServerProcess::redis(&[]);
    let amber = ServerProcess::amber_with_env_args(&[]);
    let r = own_commands(redis.port);
    let a = own_commands(amber.port);
    assert_eq!(a, r, "differ (left: amber, right: redis)");
}

/// `GET /metrics` on `port`: the value of the `amber_monitors` gauge (`None`
/// while the endpoint does not accept connections yet).
fn monitors_gauge(port: u16) -> Option<u64> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
        .expect("metrics request");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("metrics response");
    let value = body
        .lines()
        .find_map(|l| l.strip_prefix("amber_monitors "))
        .and_then(|v| v.trim().parse().ok());
    Some(value.unwrap_or_else(|| panic!("no amber_monitors in:\n{body}")))
}

/// Waits (up to 5 s) for the gauge to read `want`.
fn wait_gauge(port: u16, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = monitors_gauge(port);
        if got == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "amber_monitors stayed {got:?}, wanted {want}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn disconnected_and_reset_monitors_are_forgotten() {
    let metrics = free_port();
    let amber = ServerProcess::amber_with_env_args(&["--metrics-port", &metrics.to_string()]);
    let mut client = connect(amber.port);
    wait_gauge(metrics, 0);
    let mut first = connect(amber.port);
    let mut second = connect(amber.port);
    assert_eq!(show(&first.cmd_str("MONITOR")), "+OK\\r\\n");
    assert_eq!(show(&second.cmd_str("MONITOR")), "+OK\\r\\n");
    wait_gauge(metrics, 2);
    let list = String::from_utf8_lossy(&client.cmd_str("CLIENT LIST")).into_owned();
    assert_eq!(list.matches("flags=O ").count(), 2, "{list}");
    drop(first);
    wait_gauge(metrics, 1);
    // Commands keep running and the remaining monitor still sees them.
    assert_eq!(show(&client.cmd_str("SET k v")), "+OK\\r\\n");
    let line = normalised(&second.read_reply().expect("a line"));
    assert!(line.ends_with("\"SET\" \"k\" \"v\""), "{line}");
    assert_eq!(show(&second.cmd_str("RESET")), "+RESET\\r\\n");
    wait_gauge(metrics, 0);
    let list = String::from_utf8_lossy(&client.cmd_str("CLIENT LIST")).into_owned();
    assert!(!list.contains("flags=O"), "{list}");
}

#[test]
fn monitors_see_clients_of_every_thread() {
    let amber = ServerProcess::amber_with_env_args(&["--threads", "2"]);
    // Consecutive connections are served by different threads.
    let mut monitors: Vec<RespClient> = (0..2).map(|_| connect(amber.port)).collect();
    let mut clients: Vec<RespClient> = (0..2).map(|_| connect(amber.port)).collect();
    for m in &mut monitors {
        assert_eq!(show(&m.cmd_str("MONITOR")), "+OK\\r\\n");
    }
    const ROUNDS: usize = 100;
    for i in 0..ROUNDS {
        for (c, client) in clients.iter_mut().enumerate() {
            assert_eq!(show(&client.cmd_str(&format!("SET c{c} {i}"))), "+OK\\r\\n");
        }
    }
    for m in &mut monitors {
        let mut seen = [0usize; 2];
        for _ in 0..ROUNDS * 2 {
            let line = normalised(&m.read_reply().expect("a line"));
            let c = if line.contains("\"c0\"") { 0 } else { 1 };
            let want = format!("\"SET\" \"c{c}\" \"{}\"", seen[c]);
            assert!(line.ends_with(&want), "{line} (wanted {want})");
            seen[c] += 1;
        }
        assert_eq!(seen, [ROUNDS, ROUNDS]);
    }
}
