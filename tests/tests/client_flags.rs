//! `CLIENT LIST` / `CLIENT INFO` flags and transaction fields, as Redis 7.0's
//! `catClientInfoString` prints them: `x` and `multi=N` while a client is in
//! MULTI (also while EXEC runs its queue), `b` while blocked, `d` once a
//! watched key changed (until UNWATCH, EXEC or DISCARD), `P` in pub/sub
//! mode, `N` for none. Every scenario runs on the real `amber-server` and on
//! a real `redis-server`; the fields must be the same.

use std::time::{Duration, Instant};

use amber_tests::connect;
use amber_tests::reply::show;
use amber_tests::{RespClient, ServerProcess};

/// The `flags=`, `multi=` and `cmd=` fields of the client line in `reply`.
fn fields(reply: &[u8]) -> String {
    let text = String::from_utf8_lossy(reply).into_owned();
    let want = ["flags=", "multi=", "cmd="];
    let found: Vec<&str> = text
        .split([' ', '\n', '\r'])
        .filter(|f| want.iter().any(|w| f.starts_with(w)))
        .collect();
    assert_eq!(found.len(), 3, "no client line in {}", show(reply));
    found.join(" ")
}

/// The client line of client `id`, seen by `obs`.
fn line_of(obs: &mut RespClient, id: &str) -> String {
    fields(&obs.cmd(&["CLIENT", "LIST", "ID", id]))
}

/// Waits until `INFO clients` reports `n` blocked clients (at most 10 s).
fn wait_blocked(obs: &mut RespClient, n: usize) {
    let want = format!("blocked_clients:{n}\r\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = obs.cmd(&["INFO", "clients"]);
        if String::from_utf8_lossy(&info).contains(&want) {
            return;
        }
        assert!(Instant::now() < deadline, "never {want:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn scenario(port: u16) -> Vec<String> {
    let mut c = connect(port);
    let mut obs = connect(port);
    let id = c.cmd(&["CLIENT", "ID"]);
    let id = String::from_utf8_lossy(&id[1..id.len() - 2]).into_owned();
    let mut out = vec![fields(&c.cmd(&["CLIENT", "INFO"]))];

    // MULTI: `x` and the number of queued commands, also during EXEC.
    c.cmd(&["MULTI"]);
    out.push(line_of(&mut obs, &id));
    c.cmd(&["SET", "a", "b"]);
    c.cmd(&["GET", "a"]);
    out.push(line_of(&mut obs, &id));
    c.cmd(&["CLIENT", "INFO"]);
    out.push(fields(&c.cmd(&["EXEC"])));
    out.push(line_of(&mut obs, &id));
    c.cmd(&["MULTI"]);
    c.cmd(&["PING"]);
    c.cmd(&["DISCARD"]);
    out.push(line_of(&mut obs, &id));

    // A watched key changed: `d`, with `x` in MULTI; EXEC clears it.
    c.cmd(&["WATCH", "k"]);
    out.push(line_of(&mut obs, &id));
    obs.cmd(&["SET", "k", "1"]);
    out.push(line_of(&mut obs, &id));
    out.push(fields(&c.cmd(&["CLIENT", "INFO"])));
    c.cmd(&["MULTI"]);
    c.cmd(&["CLIENT", "INFO"]);
    out.push(line_of(&mut obs, &id));
    out.push(show(&c.cmd(&["EXEC"])));
    out.push(line_of(&mut obs, &id));
    // UNWATCH clears it; a flush marks watchers of existing keys.
    c.cmd(&["WATCH", "k"]);
    obs.cmd(&["DEL", "k"]);
    out.push(line_of(&mut obs, &id));
    c.cmd(&["UNWATCH"]);
    out.push(line_of(&mut obs, &id));
    obs.cmd(&["SET", "k", "2"]);
    c.cmd(&["WATCH", "k"]);
    obs.cmd(&["FLUSHALL"]);
    out.push(line_of(&mut obs, &id));
    c.cmd(&["UNWATCH"]);

    // Blocked: `b` (with `d` when a watched key changed).
    c.send(&["BLPOP", "nokey", "0"]).expect("send");
    wait_blocked(&mut obs, 1);
    out.push(line_of(&mut obs, &id));
    obs.cmd(&["CLIENT", "UNBLOCK", &id]);
    out.push(show(&c.read_reply().expect("unblocked")));
    c.cmd(&["WATCH", "w"]);
    obs.cmd(&["SET", "w", "x"]);
    c.send(&["BZPOPMIN", "nokey", "0"]).expect("send");
    wait_blocked(&mut obs, 1);
    out.push(line_of(&mut obs, &id));
    obs.cmd(&["RPUSH", "nokey", "a"]);
    obs.cmd(&["DEL", "nokey"]);
    obs.cmd(&["ZADD", "nokey", "1", "m"]);
    out.push(show(&c.read_reply().expect("served")));
    out.push(line_of(&mut obs, &id));
    c.cmd(&["UNWATCH"]);

    // Pub/sub mode: `P`.
    c.cmd(&["SUBSCRIBE", "ch"]);
    out.push(line_of(&mut obs, &id));
    out
}

#[test]
fn client_flags_like_redis() {
    let amber = ServerProcess::amber_with_env_args(&[]);
    let got = scenario(amber.port);
    let redis = ServerProcess::redis(&[]);
    let want = scenario(redis.port);
    assert_eq!(got, want, "amber (left) vs redis (right)");
}
