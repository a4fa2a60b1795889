//! `SLOWLOG`, the latency monitor (`LATENCY LATEST/HISTORY/RESET/GRAPH/
//! DOCTOR`) and `CLIENT PAUSE`'s postponed clients in `INFO`'s
//! `blocked_clients`, side by side with redis-server: the same commands
//! go to both and the logs must read the same, with the fields that hold
//! times and ports normalised.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use amber_tests::replication::{assert_same_side_by_side, wait_until};
use amber_tests::reply::{self, Reply};
use amber_tests::{Kind, RespClient, ServerProcess};

fn start(kind: Kind) -> ServerProcess {
    ServerProcess::start(kind, &["--enable-debug-command", "yes"])
}

fn parsed(bytes: &[u8]) -> Reply {
    reply::parse(bytes).expect("parses").expect("complete").0
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A slow log entry with what varies between servers normalised: ids
/// relative to `first_id`, the time checked to be now, the duration shown
/// as whether it is at least `min_us`, the peer shown as `self` when it is
/// `c`'s own address.
fn entries(c: &mut RespClient, count: &str, first_id: i64, min_us: i64) -> Vec<Vec<String>> {
    let me = c.stream().local_addr().expect("local addr").to_string();
    let got = parsed(&c.cmd(&["SLOWLOG", "GET", count]));
    assert_eq!(got.kind, b'*', "{}", reply::show(&got.raw));
    got.items
        .iter()
        .map(|e| {
            assert_eq!(e.items.len(), 6, "{}", reply::show(&e.raw));
            let id = e.items[0].integer().expect("id");
            let time = e.items[1].integer().expect("time");
            assert!((time - now_s()).abs() <= 5, "time {time}");
            let us = e.items[2].integer().expect("duration");
            let args: Vec<String> = e.items[3].items.iter().map(Reply::text).collect();
            let peer = e.items[4].text();
            let peer = if peer == me { "self".to_string() } else { peer };
            let mut v = vec![(id - first_id).to_string(), args.join(" "), peer];
            v.push(e.items[5].text());
            v.push(format!("{}", us >= min_us));
            v
        })
        .collect()
}

/// The id the next logged command gets: logs one and reads it back.
fn next_id(c: &mut RespClient) -> i64 {
    c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    let got = parsed(&c.cmd(&["SLOWLOG", "GET", "1"]));
    got.items[0].items[0].integer().expect("id") + 1
}

#[test]
fn entries_arguments_redaction_and_transactions_as_redis() {
    assert_same_side_by_side(|kind| {
        let server = start(kind);
        let mut c = server.client();
        c.cmd(&["CLIENT", "SETNAME", "tester"]);
        let first = next_id(&mut c);
        c.cmd(&["SLOWLOG", "RESET"]);
        c.cmd(&["SET", "k", "v"]);
        let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let mut sadd = vec!["SADD".to_string(), "s".to_string()];
        sadd.extend(many);
        c.cmd(&sadd);
        c.cmd(&["SET", "long", &"x".repeat(200)]);
        c.cmd(&["AUTH", "secret"]);
        c.cmd(&["AUTH", "a", "b", "c"]);
        c.cmd(&["HELLO", "2", "AUTH", "default", "secret"]);
        c.cmd(&["HELLO", "9", "AUTH", "default", "secret"]);
        c.cmd(&[
            "CONFIG",
            "SET",
            "masterauth",
            "pw",
            "maxmemory-samples",
            "5",
        ]);
        c.cmd(&["ACL", "SETUSER", "someone", "on", ">pw"]);
        c.cmd(&[
            "MIGRATE",
            "127.0.0.1",
            "1",
            "",
            "0",
            "10",
            "AUTH2",
            "u",
            "p",
            "KEYS",
            "nokey",
        ]);
        c.cmd(&["MULTI"]);
        c.cmd(&["INCR", "n"]);
        c.cmd(&["EXEC"]);
        c.cmd(&["EVAL", "return redis.call('set','a','b')", "0"]);
        c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
        c.cmd(&["GET", "k"]);
        let len = c.cmd(&["SLOWLOG", "LEN"]);
        let default_count = parsed(&c.cmd(&["SLOWLOG", "GET"])).items.len();
        let bad = c.cmd(&["SLOWLOG", "GET", "-2"]);
        (
            entries(&mut c, "-1", first, 0),
            reply::show(&len),
            default_count,
            reply::show(&bad),
        )
    });
}

#[test]
fn threshold_max_len_reset_and_ids_as_redis() {
    assert_same_side_by_side(|kind| {
        let server = start(kind);
        let mut c = server.client();
        let first = next_id(&mut c);
        let mut seen = Vec::new();
        c.cmd(&["CONFIG", "SET", "slowlog-max-len", "3"]);
        c.cmd(&["SLOWLOG", "RESET"]);
        for i in 0..5 {
            c.cmd(&["ECHO", &i.to_string()]);
        }
        seen.push(entries(&mut c, "-1", first, 0));
        // Lowering the length trims at once.
        c.cmd(&["CONFIG", "SET", "slowlog-max-len", "1"]);
        seen.push(entries(&mut c, "-1", first, 0));
        c.cmd(&["CONFIG", "SET", "slowlog-max-len", "10"]);
        c.cmd(&["SLOWLOG", "RESET"]);
        // Only what is slower than the threshold: a 60 ms sleep, not a PING.
        c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "50000"]);
        c.cmd(&["PING"]);
        c.cmd(&["DEBUG", "SLEEP", "0.06"]);
        seen.push(entries(&mut c, "10", first, 50_000));
        seen
    });
}

/// `INFO`'s `blocked_clients`.
fn blocked_clients(c: &mut RespClient) -> i64 {
    let info = String::from_utf8_lossy(&c.cmd(&["INFO", "clients"])).into_owned();
    info.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("blocked_clients")
}

#[test]
fn a_blocked_command_is_logged_when_served_or_unblocked_not_timed_out() {
    assert_same_side_by_side(|kind| {
        let server = start(kind);
        let mut c = server.client();
        let mut waiter = server.client();
        waiter.send(&["BLPOP", "list", "0"]).expect("send");
        wait_until("BLPOP blocks", Duration::from_secs(5), || {
            blocked_clients(&mut c) == 1
        });
        // After the polls, whose number varies.
        let first = next_id(&mut c);
        c.cmd(&["SLOWLOG", "RESET"]);
        c.cmd(&["LPUSH", "list", "x"]);
        // Logged by the time the push returns, as in Redis.
        let mut served = entries(&mut c, "2", first, 0);
        let waiter_addr = waiter.stream().local_addr().expect("addr").to_string();
        for e in &mut served {
            if e[2] == waiter_addr {
                e[2] = "waiter".to_string();
            }
        }
        let reply = waiter.read_reply().expect("BLPOP reply");
        waiter.send(&["BLPOP", "list", "0.1"]).expect("send");
        let timed_out = waiter.read_reply().expect("timeout reply");
        // A timed-out command is not logged (Redis 7.0).
        let after = entries(&mut c, "1", first, 0);
        // One ended by CLIENT UNBLOCK is.
        let id = parsed(&waiter.cmd(&["CLIENT", "ID"]))
            .integer()
            .expect("id");
        waiter.send(&["BLPOP", "other", "0"]).expect("send");
        wait_until("BLPOP blocks", Duration::from_secs(5), || {
            blocked_clients(&mut c) == 1
        });
        let first = next_id(&mut c);
        c.cmd(&["CLIENT", "UNBLOCK", &id.to_string()]);
        let unblocked = waiter.read_reply().expect("unblocked reply");
        // Redis 7.0.15 logs it without its arguments (freed by then).
        let mut by_unblock = entries(&mut c, "2", first, 0);
        for e in &mut by_unblock {
            if e[2] == waiter_addr {
                e[2] = "waiter".to_string();
            }
            e[1] = e[1].replace(&id.to_string(), "<id>");
        }
        (
            served,
            reply::show(&reply),
            reply::show(&timed_out),
            after,
            reply::show(&unblocked),
            by_unblock,
        )
    });
}

#[test]
fn client_pause_counts_postponed_clients_as_blocked() {
    assert_same_side_by_side(|kind| {
        let server = start(kind);
        let mut c = server.client();
        c.cmd(&["CLIENT", "PAUSE", "20000", "WRITE"]);
        let mut writer = server.client();
        writer.send(&["SET", "k", "v"]).expect("send");
        wait_until("SET is postponed", Duration::from_secs(5), || {
            blocked_clients(&mut c) == 1
        });
        c.cmd(&["CLIENT", "UNPAUSE"]);
        let reply = writer.read_reply().expect("SET reply");
        let after = blocked_clients(&mut c);
        (reply::show(&reply), after)
    });
}

/// A latency sample's fields, the latency checked to be in `range` ms and
/// the time to be now.
fn check_sample(time: &Reply, latency: &Reply, range: std::ops::Range<i64>) {
    let t = time.integer().expect("time");
    assert!((t - now_s()).abs() <= 5, "time {t}");
    let l = latency.integer().expect("latency");
    assert!(range.contains(&l), "latency {l} not in {range:?}");
}

#[test]
fn latency_monitor_events_and_replies_as_redis() {
    assert_same_side_by_side(|kind| {
        let server = start(kind);
        let mut c = server.client();
        let mut seen = Vec::new();
        // Off: the doctor says so.
        seen.push(reply::show(&c.cmd(&["LATENCY", "DOCTOR"])));
        c.cmd(&["CONFIG", "SET", "latency-monitor-threshold", "40"]);
        seen.push(reply::show(&c.cmd(&["LATENCY", "DOCTOR"])));
        c.cmd(&["PING"]);
        c.cmd(&["DEBUG", "SLEEP", "0.05"]);
        let latest = parsed(&c.cmd(&["LATENCY", "LATEST"]));
        assert_eq!(latest.items.len(), 1, "{}", reply::show(&latest.raw));
        let e = &latest.items[0].items;
        seen.push(e[0].text());
        check_sample(&e[1], &e[2], 50..1000);
        check_sample(&e[1], &e[3], 50..1000);
        let history = parsed(&c.cmd(&["LATENCY", "HISTORY", "command"]));
        assert_eq!(history.items.len(), 1, "{}", reply::show(&history.raw));
        check_sample(
            &history.items[0].items[0],
            &history.items[0].items[1],
            50..1000,
        );
        seen.push(reply::show(&c.cmd(&["LATENCY", "HISTORY", "COMMAND"])));
        // The graph below its title line (which has the latency in it).
        let graph = parsed(&c.cmd(&["LATENCY", "GRAPH", "command"])).text();
        seen.push(
            graph
                .split_once('\n')
                .map(|g| g.1.to_string())
                .unwrap_or_default(),
        );
        // The doctor's report with its numbers masked.
        let doctor = parsed(&c.cmd(&["LATENCY", "DOCTOR"])).text();
        let masked: String = doctor
            .chars()
            .map(|ch| if ch.is_ascii_digit() { '#' } else { ch })
            .collect();
        seen.push(masked.lines().take(3).collect::<Vec<_>>().join("\n"));
        seen.push(reply::show(&c.cmd(&["LATENCY", "GRAPH", "nosuch"])));
        seen.push(reply::show(&c.cmd(&["LATENCY", "RESET", "nosuch"])));
        seen.push(reply::show(
            &c.cmd(&["LATENCY", "RESET", "COMMAND", "command"]),
        ));
        seen.push(reply::show(&c.cmd(&["LATENCY", "LATEST"])));
        // Under the threshold: nothing.
        c.cmd(&["DEBUG", "SLEEP", "0.01"]);
        seen.push(reply::show(&c.cmd(&["LATENCY", "LATEST"])));
        seen
    });
}
