//! The replication stream itself, side by side with redis-server: a
//! hand-made replica (`SYNC`) reads what each server sends for the same
//! commands. A push that serves blocked clients goes alone, and each
//! served client's pop follows as a command of its own, as Redis 7.0
//! propagates them (its "BLMPOP propagate as pop with count command to
//! replica" and the BZMPOP twin).

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use amber_tests::replication::hand_made_replica;
use amber_tests::{wait_blocked, Pair, RespClient};

/// The commands of the stream up to and including `SET <marker> 1`,
/// without `PING`s (Redis pings its replicas on a timer).
fn commands_until(s: &mut TcpStream, mut got: Vec<u8>, marker: &str) -> Vec<String> {
    let want = format!("$3\r\nSET\r\n${}\r\n{marker}\r\n", marker.len());
    let mut buf = [0u8; 4096];
    while !got.windows(want.len()).any(|w| w == want.as_bytes()) {
        let n = s.read(&mut buf).expect("read the stream");
        got.extend_from_slice(&buf[..n]);
    }
    let mut out = Vec::new();
    let mut rest: &[u8] = &got;
    while let Some(args) = one_command(&mut rest) {
        let line = args.join(" ");
        if !line.eq_ignore_ascii_case("ping") {
            out.push(line.to_lowercase());
        }
    }
    out
}

/// Parses one `*N` array of bulk strings off the front of `rest`.
fn one_command(rest: &mut &[u8]) -> Option<Vec<String>> {
    let line = |r: &mut &[u8]| -> Option<String> {
        let end = r.windows(2).position(|w| w == b"\r\n")?;
        let l = String::from_utf8_lossy(&r[..end]).into_owned();
        *r = &r[end + 2..];
        Some(l)
    };
    let n: usize = line(rest)?.strip_prefix('*')?.parse().ok()?;
    let mut args = Vec::with_capacity(n);
    for _ in 0..n {
        let len: usize = line(rest)?.strip_prefix('$')?.parse().ok()?;
        args.push(String::from_utf8_lossy(rest.get(..len)?).into_owned());
        *rest = rest.get(len + 2..)?;
    }
    Some(args)
}

fn scenario(port: u16, c: &mut RespClient, fake: &mut RespClient) -> Vec<String> {
    let replica = hand_made_replica(fake);
    let (mut s, got) = (replica.stream, replica.rest);
    let mut rd = RespClient::connect(port).expect("connect");
    rd.set_timeout(Duration::from_secs(5));
    c.cmd(&["LPUSH", "mylist", "a", "b", "c"]);
    c.cmd(&["RPUSH", "mylist2", "1", "2", "3"]);
    c.cmd(&["BLMPOP", "0", "1", "mylist", "LEFT", "COUNT", "1"]);
    c.cmd(&[
        "BLMPOP", "0", "2", "mylist", "mylist2", "RIGHT", "COUNT", "10",
    ]);
    c.cmd(&[
        "BLMPOP", "0", "2", "mylist", "mylist2", "RIGHT", "COUNT", "10",
    ]);
    // Blocked, then served by a push.
    rd.send(&["BLMPOP", "0", "1", "mylist", "LEFT", "COUNT", "1"])
        .expect("send");
    wait_blocked(port, 1);
    c.cmd(&["LPUSH", "mylist", "a"]);
    rd.read_reply().expect("served");
    rd.send(&[
        "BLMPOP", "0", "2", "mylist", "mylist2", "LEFT", "COUNT", "5",
    ])
    .expect("send");
    wait_blocked(port, 1);
    c.cmd(&["LPUSH", "mylist", "a", "b", "c"]);
    rd.read_reply().expect("served");
    rd.send(&["BZMPOP", "0", "1", "myzset", "MIN", "COUNT", "10"])
        .expect("send");
    wait_blocked(port, 1);
    c.cmd(&["ZADD", "myzset", "1", "one", "2", "two"]);
    rd.read_reply().expect("served");
    rd.send(&["BLPOP", "plain", "0"]).expect("send");
    wait_blocked(port, 1);
    c.cmd(&["RPUSH", "plain", "x", "y"]);
    rd.read_reply().expect("served");
    // A timeout propagates nothing.
    c.cmd(&["BLMPOP", "0.01", "1", "mylist", "LEFT", "COUNT", "10"]);
    c.cmd(&["SET", "foo", "1"]);
    commands_until(&mut s, got, "foo")
}

#[test]
fn served_blocked_clients_follow_the_push_one_by_one() {
    let pair = Pair::start(&[], &[]);
    let mut seen = Vec::new();
    for server in [&pair.redis, &pair.amber] {
        let (mut c, mut fake) = (server.client(), server.client());
        seen.push(scenario(server.port, &mut c, &mut fake));
    }
    assert_eq!(seen[1], seen[0], "left: amber, right: redis");
}
