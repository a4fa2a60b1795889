//! `MIGRATE` from a Redis and from an Amber to the same targets (a Redis
//! and an Amber, each also with a password), compared: replies, what the
//! target then holds and what is left on the source. Covers every type in
//! both encodings, streams with consumer groups, TTLs, the `KEYS` form,
//! `COPY`, `REPLACE`, `AUTH`/`AUTH2`, `SELECT`, argument errors, a target
//! that is down or does not answer, and the cached connections.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use amber_tests::process::free_port;
use amber_tests::reply::show;
use amber_tests::values::{build_stream, fixtures, read, read_stream};
use amber_tests::{connect, Pair, RespClient, ServerProcess};

/// Where a scenario migrates to.
struct Targets {
    open: u16,
    with_password: u16,
    down: u16,
    silent: u16,
}

fn migrate(src: &mut RespClient, port: u16, key: &str, db: &str, extra: &[&str]) -> String {
    let port = port.to_string();
    let mut args = vec!["MIGRATE", "127.0.0.1", &port, key, db, "5000"];
    args.extend_from_slice(extra);
    show(&src.cmd(&args))
}

/// Runs everything from the server at `src_port`; returns what was seen.
fn scenario(src_port: u16, t: &Targets) -> Vec<String> {
    let mut src = connect(src_port);
    let mut dst = connect(t.open);
    let mut locked = connect(t.with_password);
    let mut out = Vec::new();
    src.cmd(&["FLUSHALL"]);
    dst.cmd(&["FLUSHALL"]);
    locked.cmd(&["AUTH", "pw"]);
    locked.cmd(&["FLUSHALL"]);

    // Every type, both encodings.
    for (key, cmds) in fixtures() {
        for c in &cmds {
            src.cmd(c);
        }
        let before = read(&mut src, key);
        out.push(migrate(&mut src, t.open, key, "0", &[]));
        assert_eq!(read(&mut dst, key), before, "{key} on the target");
        out.push(show(&src.cmd(&["EXISTS", key])));
    }
    // A stream with groups, copied: both sides read the same.
    build_stream(&mut src, "s", false);
    out.push(migrate(&mut src, t.open, "s", "0", &["COPY"]));
    assert_eq!(read_stream(&mut dst, "s"), read_stream(&mut src, "s"));
    out.push(show(&dst.cmd(&["XRANGE", "s", "-", "+"])));

    // The TTL goes along.
    src.cmd(&["SET", "ttl", "v", "PX", "100000"]);
    out.push(migrate(&mut src, t.open, "ttl", "0", &[]));
    let pttl: i64 = String::from_utf8_lossy(&dst.cmd(&["PTTL", "ttl"]))
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap_or(-10);
    out.push(format!("ttl kept: {}", (90_000..=100_000).contains(&pttl)));

    // The KEYS form, to another database (SELECT), missing keys skipped.
    src.cmd(&["MSET", "a", "1", "b", "2", "c", "3"]);
    out.push(migrate(
        &mut src,
        t.open,
        "",
        "3",
        &["KEYS", "a", "b", "missing", "c"],
    ));
    out.push(show(&src.cmd(&["EXISTS", "a", "b", "c"])));
    dst.cmd(&["SELECT", "3"]);
    out.push(show(&dst.cmd(&["MGET", "a", "b", "c"])));
    dst.cmd(&["SELECT", "0"]);
    // Back in database 0 on the same cached connection.
    src.cmd(&["SET", "d", "4"]);
    out.push(migrate(&mut src, t.open, "d", "0", &[]));
    out.push(show(&dst.cmd(&["GET", "d"])));

    // REPLACE and COPY.
    src.cmd(&["SET", "k", "new"]);
    dst.cmd(&["SET", "k", "old"]);
    out.push(migrate(&mut src, t.open, "k", "0", &[]));
    out.push(show(&src.cmd(&["GET", "k"])));
    out.push(migrate(&mut src, t.open, "k", "0", &["COPY", "REPLACE"]));
    out.push(show(&src.cmd(&["GET", "k"])));
    out.push(show(&dst.cmd(&["GET", "k"])));
    out.push(migrate(&mut src, t.open, "k", "0", &["REPLACE"]));
    out.push(show(&src.cmd(&["EXISTS", "k"])));
    // Some keys acknowledged, one refused: the refused one stays.
    src.cmd(&["MSET", "x", "1", "y", "2"]);
    dst.cmd(&["SET", "y", "there"]);
    out.push(migrate(&mut src, t.open, "", "0", &["KEYS", "x", "y"]));
    out.push(show(&src.cmd(&["MGET", "x", "y"])));
    // Nothing to move.
    out.push(migrate(&mut src, t.open, "nothing", "0", &[]));
    out.push(migrate(&mut src, t.open, "", "0", &["KEYS"]));
    // A database the target does not have.
    src.cmd(&["SET", "k", "v"]);
    out.push(migrate(&mut src, t.open, "k", "99", &[]));
    out.push(migrate(&mut src, t.open, "k", "0", &[]));

    // Argument errors.
    for extra in [&["FOO"][..], &["AUTH"], &["AUTH2", "u"], &["KEYS", "k"]] {
        out.push(migrate(&mut src, t.open, "k", "0", extra));
    }
    out.push(show(&src.cmd(&["MIGRATE", "h", "1", "k", "x", "10"])));
    out.push(show(&src.cmd(&["MIGRATE", "h", "1", "k", "0", "x"])));
    out.push(show(&src.cmd(&["MIGRATE", "h", "1", "k", "0"])));

    // A target with a password.
    src.cmd(&["SET", "p", "secret"]);
    out.push(migrate(&mut src, t.with_password, "p", "0", &[]));
    out.push(migrate(
        &mut src,
        t.with_password,
        "p",
        "0",
        &["AUTH", "bad"],
    ));
    out.push(migrate(
        &mut src,
        t.with_password,
        "p",
        "0",
        &["COPY", "AUTH", "pw"],
    ));
    out.push(migrate(
        &mut src,
        t.with_password,
        "p",
        "1",
        &["AUTH2", "default", "pw"],
    ));
    locked.cmd(&["SELECT", "1"]);
    out.push(show(&locked.cmd(&["GET", "p"])));

    // A target that is down, or does not answer in time.
    src.cmd(&["SET", "k", "v"]);
    out.push(migrate(&mut src, t.down, "k", "0", &[]));
    let port = t.silent.to_string();
    out.push(show(&src.cmd(&[
        "MIGRATE",
        "127.0.0.1",
        &port,
        "k",
        "0",
        "300",
    ])));
    out.push(show(&src.cmd(&["EXISTS", "k"])));
    // A host without an address.
    out.push(show(&src.cmd(&["MIGRATE", "", "1", "k", "0", "300"])));

    let info = String::from_utf8_lossy(&src.cmd(&["INFO", "stats"])).into_owned();
    out.extend(
        info.lines()
            .filter(|l| l.starts_with("migrate_cached_sockets"))
            .map(str::to_string),
    );
    out
}

#[test]
fn migrate_as_redis_to_redis_and_amber_targets() {
    let pair = Pair::start(&[], &[]);
    let silent = TcpListener::bind("127.0.0.1:0").expect("listener");
    let silent_port = silent.local_addr().expect("address").port();
    // Accepts connections and never answers.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().flatten() {
            held.push(s);
        }
    });
    let kinds = [
        (
            ServerProcess::redis(&[]),
            ServerProcess::redis(&["--requirepass", "pw"]),
        ),
        (
            ServerProcess::amber(&[]),
            ServerProcess::amber(&["--requirepass", "pw"]),
        ),
    ];
    for (open, locked) in &kinds {
        let targets = Targets {
            open: open.port,
            with_password: locked.port,
            down: free_port(),
            silent: silent_port,
        };
        let from_redis = scenario(pair.redis.port, &targets);
        let from_amber = scenario(pair.amber.port, &targets);
        assert_eq!(
            from_amber,
            from_redis,
            "MIGRATE to {} (left: from amber, right: from redis)",
            if open.port == kinds[0].0.port {
                "redis"
            } else {
                "amber"
            }
        );
    }
}

#[test]
fn idle_migrate_connections_are_closed_after_ten_seconds() {
    let source = ServerProcess::amber(&[]);
    let target = ServerProcess::amber(&[]);
    let mut src = source.client();
    src.cmd(&["SET", "k", "v"]);
    assert_eq!(migrate(&mut src, target.port, "k", "0", &[]), "+OK\\r\\n");
    let cached = |c: &mut RespClient| {
        String::from_utf8_lossy(&c.cmd(&["INFO", "stats"]))
            .lines()
            .find(|l| l.starts_with("migrate_cached_sockets:"))
            .map(str::to_string)
    };
    assert_eq!(
        cached(&mut src).as_deref(),
        Some("migrate_cached_sockets:1")
    );
    let started = Instant::now();
    while cached(&mut src).as_deref() != Some("migrate_cached_sockets:0") {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the idle connection is still cached"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(started.elapsed() >= Duration::from_secs(9));
}
