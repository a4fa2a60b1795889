//! `SCRIPT DEBUG` and the Lua debugger (LDB), compared byte for byte with
//! a real Redis 7.0 started side by side: the command's replies and
//! errors, whole debugging sessions driven by hand, `redis-cli --ldb`, and
//! the dataset after a `YES` (changes undone) and a `SYNC` session (kept).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use amber_tests::reply::show;
use amber_tests::{Pair, RespClient};

/// A script touching every debugger feature: locals, a table,
/// `redis.debug`, a write, `redis.breakpoint`, a read.
const SCRIPT: &str = "local a = 1\nlocal t = {1,2,'x'}\nredis.debug('hi', a, t)\nredis.call('set', KEYS[1], ARGV[1])\nredis.breakpoint()\nlocal b = redis.call('get', KEYS[1])\nreturn b\n";

/// Runs one session on both servers: `SCRIPT DEBUG mode`, the `EVAL`, then
/// each debugger command, comparing every reply; the last command's output
/// is read until the server closes the connection, as Redis does.
fn session(pair: &Pair, mode: &str, commands: &[&str]) {
    let (mut r, mut a) = pair.clients();
    let mut both = |args: Vec<&str>| {
        let (rr, ar) = (r.cmd(&args), a.cmd(&args));
        assert_eq!(show(&rr), show(&ar), "reply to {args:?}");
    };
    both(vec!["SCRIPT", "DEBUG", mode]);
    both(vec!["EVAL", SCRIPT, "1", "k", "v"]);
    let (last, steps) = commands.split_last().expect("commands");
    for c in steps {
        both(c.split(' ').collect());
    }
    let args: Vec<&str> = last.split(' ').collect();
    let mut end = |c: &mut RespClient| {
        c.send(&args).expect("send");
        c.read_until_close(Duration::from_secs(5))
    };
    let (rr, ar) = (end(&mut r), end(&mut a));
    assert!(
        rr.1 && ar.1,
        "both close after the session: {} / {}",
        show(&rr.0),
        show(&ar.0)
    );
    assert_eq!(show(&rr.0), show(&ar.0), "end of session");
}

#[test]
fn script_debug_replies_and_errors() {
    let pair = Pair::start(&[], &[]);
    let (mut r, mut a) = pair.clients();
    for args in [
        vec!["SCRIPT", "DEBUG", "maybe"],
        vec!["SCRIPT", "DEBUG"],
        vec!["SCRIPT", "DEBUG", "yes", "no"],
        vec!["MULTI"],
        vec!["SCRIPT", "DEBUG", "yes"],
        vec!["EXEC"],
        vec!["SCRIPT", "DEBUG", "no"],
        vec!["EVAL", "return 1", "0"],
        vec!["SCRIPT", "DEBUG", "sync"],
        vec!["EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"],
        vec!["EVALSHA", "short", "0"],
        vec!["SCRIPT", "DEBUG", "NO"],
        vec!["EVAL", "return 2", "0"],
    ] {
        assert_eq!(show(&r.cmd(&args)), show(&a.cmd(&args)), "{args:?}");
    }
    // In a pipeline: refused once a reply is pending.
    let pipeline = b"*1\r\n$4\r\nPING\r\n*3\r\n$6\r\nSCRIPT\r\n$5\r\nDEBUG\r\n$3\r\nyes\r\n";
    for c in [&mut r, &mut a] {
        c.send_raw(pipeline).expect("send");
    }
    for _ in 0..2 {
        let (rr, ar) = (
            r.read_reply().expect("redis"),
            a.read_reply().expect("amber"),
        );
        assert_eq!(show(&rr), show(&ar));
    }
}

#[test]
fn sync_session_matches_redis_and_keeps_writes() {
    let pair = Pair::start(&[], &[]);
    session(
        &pair,
        "sync",
        &[
            "help",
            "list",
            "print",
            "step",
            "step",
            "print t",
            "print a",
            "print zz",
            "print KEYS",
            "eval a+1",
            "eval x(",
            "redis get k",
            "b 6",
            "b",
            "b 99",
            "b -6",
            "b -6",
            "b x",
            "whole",
            "trace",
            "maxlen",
            "maxlen 10",
            "foo",
            "s",
            "s",
            "p",
            "c",
            "c",
        ],
    );
    let (mut r, mut a) = pair.clients();
    let get = ["GET", "k"];
    assert_eq!(show(&a.cmd(&get)), show(&r.cmd(&get)));
    assert_eq!(a.cmd(&get), b"$1\r\nv\r\n");
}

#[test]
fn yes_session_leaves_the_dataset_as_before() {
    let pair = Pair::start(&[], &[]);
    let (mut r, mut a) = pair.clients();
    for c in [&mut r, &mut a] {
        c.cmd(&["SET", "k", "old"]);
        c.cmd(&["PEXPIRE", "k", "100000000"]);
    }
    session(
        &pair,
        "yes",
        &[
            "s",
            "s",
            "s",
            "s",
            "maxlen 0",
            "r set k2 zzzzz",
            "s",
            "s",
            "s",
            "s",
        ],
    );
    for args in [vec!["MGET", "k", "k2"], vec!["DBSIZE"], vec!["TTL", "k"]] {
        assert_eq!(show(&r.cmd(&args)), show(&a.cmd(&args)), "{args:?}");
    }
    assert_eq!(a.cmd(&["GET", "k"]), b"$3\r\nold\r\n");
}

#[test]
fn abort_ends_the_session_with_redis_error() {
    let pair = Pair::start(&[], &[]);
    session(&pair, "sync", &["s", "s", "s", "s", "a"]);
    let (mut r, mut a) = pair.clients();
    assert_eq!(show(&r.cmd(&["GET", "k"])), show(&a.cmd(&["GET", "k"])));
}

/// `redis-cli --ldb` / `--ldb-sync-mode --eval`, debugger commands piped on
/// its standard input.
fn redis_cli(port: u16, sync: bool, file: &std::path::Path) -> Vec<u8> {
    let mut args = vec!["-p".to_string(), port.to_string()];
    args.push(if sync { "--ldb-sync-mode" } else { "--ldb" }.to_string());
    args.extend(["--eval", file.to_str().expect("path"), "kk", ",", "vv"].map(String::from));
    let mut child = Command::new("redis-cli")
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"s\nl\np\nb 4\nc\n")
        .expect("write");
    child.wait_with_output().expect("output").stdout
}

#[test]
fn redis_cli_ldb_sessions_match() {
    let pair = Pair::start(&[], &[]);
    let dir = amber_tests::minimal::TempDir::new("ldb");
    let file = dir.path().join("s.lua");
    std::fs::write(
        &file,
        "local a = 1\nredis.call('set', KEYS[1], ARGV[1])\nredis.debug(a)\nreturn redis.call('get', KEYS[1])\n",
    )
    .expect("script");
    for sync in [false, true] {
        let rr = redis_cli(pair.redis.port, sync, &file);
        let ar = redis_cli(pair.amber.port, sync, &file);
        assert!(!rr.is_empty());
        assert_eq!(String::from_utf8_lossy(&rr), String::from_utf8_lossy(&ar));
        let (mut r, mut a) = pair.clients();
        assert_eq!(show(&r.cmd(&["GET", "kk"])), show(&a.cmd(&["GET", "kk"])));
    }
}
