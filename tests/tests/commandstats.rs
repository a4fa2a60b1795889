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

/// `LATENCY HISTOGRAM get set` as (name, calls, [(label µs, cumulative)]).
fn histograms(c: &mut amber_tests::RespClient) -> Vec<(String, i64, Vec<(i64, i64)>)> {
    let raw = c.cmd(&["LATENCY", "HISTOGRAM", "get", "set"]);
    let (reply, _) = amber_tests::reply::parse(&raw)
        .expect("parses")
        .expect("complete");
    reply
        .items
        .chunks(2)
        .map(|pair| {
            let name = pair[0].text();
            let fields = &pair[1].items;
            assert_eq!(fields[0].text(), "calls");
            assert_eq!(fields[2].text(), "histogram_usec");
            let calls = fields[1].integer().expect("calls");
            let cdf = fields[3]
                .items
                .chunks(2)
                .map(|b| {
                    (
                        b[0].integer().expect("label"),
                        b[1].integer().expect("count"),
                    )
                })
                .collect();
            (name, calls, cdf)
        })
        .collect()
}

#[test]
fn latency_histograms_and_latencystats_read_as_in_redis() {
    let pair = Pair::start(&[], &[]);
    // Redis's log iterator labels (1024 ns × 2^k, highest equivalent, µs).
    let labels = [
        1, 2, 4, 8, 16, 33, 66, 132, 264, 528, 1056, 2113, 4227, 8454,
    ];
    for server in [&pair.redis, &pair.amber] {
        let mut c = server.client();
        c.cmd(&["CONFIG", "RESETSTAT"]);
        for i in 0..200 {
            c.cmd(&["GET", &format!("k{i}")]);
        }
        for i in 0..50 {
            c.cmd(&["SET", &format!("k{i}"), "v"]);
        }
        let h = histograms(&mut c);
        let names: Vec<(&str, i64)> = h.iter().map(|(n, c, _)| (n.as_str(), *c)).collect();
        assert_eq!(names, [("get", 200), ("set", 50)], "{:?}", server.kind);
        for (name, calls, cdf) in &h {
            assert!(!cdf.is_empty(), "{name}: no buckets");
            let mut last = 0;
            for &(label, count) in cdf {
                assert!(
                    labels.contains(&label) || label > 8454,
                    "{name}: label {label} on {:?}",
                    server.kind
                );
                assert!(count > last, "{name}: cumulative counts must grow");
                last = count;
            }
            assert_eq!(last, *calls, "{name}: the last bucket holds every call");
        }
        let info = String::from_utf8_lossy(&c.cmd(&["INFO", "latencystats"])).into_owned();
        for name in ["get", "set"] {
            let line = info
                .lines()
                .find(|l| l.starts_with(&format!("latency_percentiles_usec_{name}:")))
                .unwrap_or_else(|| panic!("no {name} line in {info} on {:?}", server.kind));
            let fields: Vec<&str> = line
                .split(':')
                .nth(1)
                .unwrap_or_default()
                .split(',')
                .map(|f| f.split('=').next().unwrap_or_default())
                .collect();
            assert_eq!(fields, ["p50", "p99", "p99.9"], "{line}");
        }
        // Not tracked while latency-tracking is off.
        c.cmd(&["CONFIG", "SET", "latency-tracking", "no"]);
        c.cmd(&["GET", "k1"]);
        c.cmd(&["CONFIG", "SET", "latency-tracking", "yes"]);
        assert_eq!(histograms(&mut c)[0].1, 200, "{:?}", server.kind);
    }
}
