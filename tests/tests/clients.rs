//! Real clients against Amber: `redis-cli` (non-interactive, output compared
//! with the same invocation against a real Redis and with the expected
//! text), `redis-benchmark` (completes, no errors, one line per test), and
//! the `redis` Rust crate.

use std::time::Duration;

use amber_tests::support::{redis_arity, supports};
use amber_tests::tools::{check_rdb, redis_cli, run_tool};
use amber_tests::Pair;

/// Runs `redis-cli args` against both and returns Amber's stdout after
/// checking it equals Redis's (and that both exited 0).
fn cli_same(pair: &Pair, args: &[&str]) -> String {
    let r = redis_cli(pair.redis.port, args);
    let a = redis_cli(pair.amber.port, args);
    assert_eq!(r.code, Some(0), "redis-cli {args:?} vs redis: {r:?}");
    assert_eq!(a.code, Some(0), "redis-cli {args:?} vs amber: {a:?}");
    assert_eq!(
        a.stdout, r.stdout,
        "redis-cli {args:?}: amber (left) vs redis (right)"
    );
    a.stdout
}

#[test]
fn redis_cli_commands() {
    let pair = Pair::start(&[], &[]);
    assert_eq!(cli_same(&pair, &["PING"]), "PONG\n");
    assert_eq!(cli_same(&pair, &["SET", "foo", "bar"]), "OK\n");
    assert_eq!(cli_same(&pair, &["GET", "foo"]), "bar\n");
    assert_eq!(cli_same(&pair, &["GET", "nosuchkey"]), "\n");
    assert_eq!(
        cli_same(&pair, &["--no-raw", "GET", "nosuchkey"]),
        "(nil)\n"
    );
    assert_eq!(
        cli_same(&pair, &["SET", "q", "hello world \"quoted\""]),
        "OK\n"
    );
    assert_eq!(cli_same(&pair, &["GET", "q"]), "hello world \"quoted\"\n");
    assert_eq!(
        cli_same(&pair, &["--no-raw", "GET", "q"]),
        "\"hello world \\\"quoted\\\"\"\n"
    );
    assert_eq!(cli_same(&pair, &["SET", "bin", "a\tb\nc"]), "OK\n");
    assert_eq!(
        cli_same(&pair, &["--no-raw", "GET", "bin"]),
        "\"a\\tb\\nc\"\n"
    );
    assert_eq!(cli_same(&pair, &["ECHO", "x y"]), "x y\n");
    assert_eq!(cli_same(&pair, &["-n", "2", "GET", "foo"]), "\n");
    // Errors: redis-cli prints them (and a blank line) and exits 0 when not on a tty.
    assert_eq!(
        cli_same(&pair, &["NOSUCHCMD", "a"]),
        "ERR unknown command 'NOSUCHCMD', with args beginning with: 'a' \n\n"
    );
    assert_eq!(
        cli_same(&pair, &["GET"]),
        "ERR wrong number of arguments for 'get' command\n\n"
    );
    let mut a = pair.amber.client();
    let mut r = pair.redis.client();
    if supports(&mut a, "incr", redis_arity(&mut r, "incr")) {
        assert_eq!(cli_same(&pair, &["INCR", "counter"]), "1\n");
        assert_eq!(
            cli_same(&pair, &["--no-raw", "INCR", "counter"]),
            "(integer) 2\n"
        );
    } else {
        eprintln!("SKIP redis-cli INCR: INCR is not implemented on this Amber yet");
    }
}

/// `redis-cli`'s whole-server modes, which ride on SYNC and SCAN: `--rdb`
/// fetches a snapshot Redis's own checker and loader accept, `--bigkeys`
/// and `--scan` print what they print against Redis.
#[test]
fn redis_cli_rdb_bigkeys_and_scan() {
    let pair = Pair::start(&[], &[]);
    for port in [pair.redis.port, pair.amber.port] {
        let p = port.to_string();
        let fill: &[&[&str]] = &[
            &["SET", "s", "hello"],
            &["RPUSH", "l", "a", "b", "c"],
            &["HSET", "h", "f", "v", "g", "w"],
            &["SADD", "st", "x"],
            &["ZADD", "z", "1", "m", "2", "n"],
            &["XADD", "x", "1-1", "k", "v"],
            &["SET", "other", "1"],
        ];
        for cmd in fill {
            let mut args = vec!["-p", p.as_str()];
            args.extend_from_slice(cmd);
            assert_eq!(
                run_tool("redis-cli", &args, Duration::from_secs(10)).code,
                Some(0)
            );
        }
    }
    // --rdb: a file redis-check-rdb accepts with every key in it.
    let file = pair.amber.dir().join("fetched.rdb");
    let file = file.to_string_lossy();
    let out = redis_cli(pair.amber.port, &["--rdb", &file]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("Transfer finished with success"),
        "{out:?}"
    );
    let check = check_rdb(std::path::Path::new(file.as_ref()));
    assert!(check.stdout.contains("7 keys read"), "{check:?}");
    // --bigkeys: one key per type, so the same summary on both (the
    // progress lines before it follow each server's SCAN order).
    let summary = |port: u16| {
        let out = redis_cli(port, &["--bigkeys"]);
        assert_eq!(out.code, Some(0), "{out:?}");
        let at = out.stdout.find("-------- summary").unwrap_or(0);
        out.stdout.get(at..).unwrap_or_default().to_owned()
    };
    let big = summary(pair.amber.port);
    assert_eq!(big, summary(pair.redis.port));
    assert!(
        big.contains("Biggest   list found '\"l\"' has 3 items"),
        "{big}"
    );
    // --scan: the same keys (in each server's own order).
    let sorted = |port: u16| {
        let out = redis_cli(port, &["--scan", "--pattern", "*"]);
        assert_eq!(out.code, Some(0), "{out:?}");
        let mut keys: Vec<String> = out.stdout.lines().map(str::to_owned).collect();
        keys.sort();
        keys
    };
    assert_eq!(sorted(pair.amber.port), sorted(pair.redis.port));
}

#[test]
fn redis_benchmark_completes() {
    let pair = Pair::start(&[], &[]);
    let mut a = pair.amber.client();
    let mut r = pair.redis.client();
    let wanted = ["set", "get", "incr", "mset"];
    let mut tests = Vec::new();
    for t in wanted {
        if supports(&mut a, t, redis_arity(&mut r, t)) {
            tests.push(t);
        } else {
            eprintln!("SKIP redis-benchmark -t {t}: {t} is not implemented on this Amber yet");
        }
    }
    let config_ok = a.cmd(&["CONFIG", "GET", "save"]).starts_with(b"*2\r\n");
    let list = tests.join(",");
    let port = pair.amber.port.to_string();
    let out = run_tool(
        "redis-benchmark",
        &["-p", &port, "-t", &list, "-n", "20000", "-q"],
        Duration::from_secs(120),
    );
    let text = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(out.code, Some(0), "redis-benchmark failed: {text}");
    assert!(
        !text.contains("Error"),
        "redis-benchmark reported errors: {text}"
    );
    if config_ok {
        assert!(!text.contains("WARNING"), "{text}");
    }
    for t in &tests {
        // MSET's line reads "MSET (10 keys): ..."
        let label = t.to_uppercase();
        let line = out
            .stdout
            .split(['\n', '\r'])
            .find(|l| l.starts_with(&label) && l.contains("requests per second"));
        assert!(line.is_some(), "no result line for {label}: {text}");
    }
    // The server is still healthy and holds what the benchmark wrote.
    assert_eq!(a.cmd(&["PING"]), b"+PONG\r\n");
    // Values are 3 random bytes by default.
    assert!(a.cmd(&["GET", "key:__rand_int__"]).starts_with(b"$3\r\n"));
}

#[test]
fn redis_crate_basic_ops() {
    use redis::Commands;
    let pair = Pair::start(&[], &[]);
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", pair.amber.port)).unwrap();
    let mut con = client
        .get_connection()
        .expect("connect with the redis crate");
    let _: () = con.set("rk", "value").unwrap();
    let v: String = con.get("rk").unwrap();
    assert_eq!(v, "value");
    let missing: Option<String> = con.get("nope").unwrap();
    assert_eq!(missing, None);
    let bin: Vec<u8> = vec![0, 255, 13, 10, 7];
    let _: () = con.set("bin", &bin[..]).unwrap();
    let got: Vec<u8> = con.get("bin").unwrap();
    assert_eq!(got, bin);
    let _: () = redis::cmd("SET")
        .arg("ttl")
        .arg("x")
        .arg("EX")
        .arg(100)
        .query(&mut con)
        .unwrap();
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
    // Pipelines arrive as one write.
    let (a, b): (String, String) = redis::pipe()
        .cmd("SET")
        .arg("p1")
        .arg("1")
        .ignore()
        .cmd("GET")
        .arg("p1")
        .cmd("ECHO")
        .arg("e")
        .query(&mut con)
        .unwrap();
    assert_eq!((a.as_str(), b.as_str()), ("1", "e"));
    // Errors surface as errors.
    let err = redis::cmd("NOSUCHCMD")
        .query::<String>(&mut con)
        .unwrap_err();
    assert!(err.to_string().contains("unknown command"), "{err}");
    let mut a = pair.amber.client();
    let mut r = pair.redis.client();
    if supports(&mut a, "incr", redis_arity(&mut r, "incr")) {
        let n: i64 = con.incr("n", 5).unwrap();
        assert_eq!(n, 5);
    } else {
        eprintln!("SKIP redis crate INCRBY: not implemented on this Amber yet");
    }
    if supports(&mut a, "del", redis_arity(&mut r, "del")) {
        let n: i64 = con.del(&["rk", "bin", "nope"]).unwrap();
        assert_eq!(n, 2);
    } else {
        eprintln!("SKIP redis crate DEL: not implemented on this Amber yet");
    }
}
