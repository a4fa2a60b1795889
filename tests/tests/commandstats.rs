//! `INFO commandstats` counts calls, rejected calls and failed calls per
//! command and subcommand as redis-server does (times left out): arity
//! errors count against the command or the container's subcommand, an
//! unknown subcommand or command against nothing, a type error as a
//! failed call.

use amber_tests::Pair;

/// The `cmdstat_*` lines of `INFO commandstats`, without their times.
fn stats(c: &mut amber_tests::RespClient) -> Vec<String> {
    let info = String::from_utf8_lossy(&c.cmd(&["INFO", "commandstats"])).into_owned();
    let mut lines: Vec<String> = info
        .lines()
        .filter(|l| l.starts_with("cmdstat_"))
        .map(|l| {
            l.split(',')
                .filter(|f| !f.contains("usec"))
                .collect::<Vec<_>>()
                .join(",")
                .replace(":calls", " calls")
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn calls_rejections_and_failures_count_as_in_redis() {
    let pair = Pair::start(&[], &[]);
    let script: &[&[&str]] = &[
        &["SET", "k", "v"],
        &["GET", "k"],
        &["GET", "a", "b"],
        &["HSET", "k", "f", "v"],
        &["CLIENT", "TRACKING"],
        &["CLIENT", "NOSUCH"],
        &["CLIENT", "ID"],
        &["CONFIG", "GET"],
        &["OBJECT", "ENCODING", "k"],
        &["NOSUCHCOMMAND", "x"],
        &["MULTI"],
        &["GET", "a", "b"],
        &["EXEC"],
    ];
    let mut seen = Vec::new();
    for server in [&pair.redis, &pair.amber] {
        let mut c = server.client();
        c.cmd(&["CONFIG", "RESETSTAT"]);
        for args in script {
            c.cmd(args);
        }
        seen.push(stats(&mut c));
    }
    assert_eq!(seen[1], seen[0], "left: amber, right: redis");
    assert!(
        seen[0]
            .iter()
            .any(|l| l.contains("client|tracking") && l.contains("rejected_calls=1")),
        "{:?}",
        seen[0]
    );
}
