//! The Prometheus endpoint: start amber-server with `--metrics-port`, run
//! some commands, scrape `GET /metrics` over plain HTTP and check the series
//! moved. The helpers are local (std only) until the shared harness in
//! `tests/src` lands on main.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use local::{free_port, wait_for_ping, Reply, Resp, TempDir};

use amber_tests::minimal as local;

struct Server {
    child: Child,
    port: u16,
    metrics_port: u16,
    _dir: TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let dir = TempDir::new("amber-metrics");
    let (port, metrics_port) = (free_port(), free_port());
    let d = dir.path().display().to_string();
    let child = Command::new(local::amber_server_bin())
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--metrics-port", &metrics_port.to_string()])
        .args([
            "--dir",
            &d,
            "--pmem-path",
            &format!("{d}/amber.arena"),
            "--pmem-size",
            "64mb",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn amber-server");
    let srv = Server {
        child,
        port,
        metrics_port,
        _dir: dir,
    };
    assert!(
        wait_for_ping(port, Duration::from_secs(20)),
        "amber-server did not start"
    );
    srv
}

/// `GET path` over HTTP/1.1; returns (status line, headers, body).
fn http_get(port: u16, path: &str) -> (String, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics port");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n"
    )
    .expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read the response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a header/body separator");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_string(), body.to_string())
}

/// The value of the sample `series` (name with labels, as rendered).
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

fn scrape(srv: &Server) -> String {
    let (status, headers, body) = http_get(srv.metrics_port, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{headers}"
    );
    body
}

#[test]
fn metrics_endpoint_counts_commands() {
    let srv = start();
    let before = scrape(&srv);
    assert_eq!(
        sample(&before, "amber_keys{db=\"0\"}"),
        Some(0.0),
        "{before}"
    );
    assert_eq!(
        sample(&before, "amber_commands_total{cmd=\"set\"}"),
        None,
        "no SET yet"
    );

    let mut c = Resp::connect(srv.port).expect("connect");
    for i in 0..10 {
        assert_eq!(
            c.cmd(&["SET", &format!("k{i}"), "v"]),
            Reply::Status("OK".into())
        );
    }
    for i in 0..7 {
        assert_eq!(
            c.cmd(&["GET", &format!("k{i}")]),
            Reply::Bulk(Some(b"v".to_vec()))
        );
    }
    assert_eq!(c.cmd(&["GET", "absent"]), Reply::Bulk(None));
    assert!(matches!(c.cmd(&["NOSUCHCOMMAND"]), Reply::Error(_)));
    assert!(matches!(c.cmd(&["GET"]), Reply::Error(_)), "wrong arity");
    // A command that runs and fails: SET with a bad option.
    assert!(matches!(
        c.cmd(&["SET", "k", "v", "EX", "notanumber"]),
        Reply::Error(_)
    ));

    let after = scrape(&srv);
    let get = |s: &str| sample(&after, s).unwrap_or_else(|| panic!("no sample {s} in:\n{after}"));
    assert_eq!(get("amber_commands_total{cmd=\"set\"}"), 11.0);
    assert_eq!(get("amber_commands_total{cmd=\"get\"}"), 8.0);
    assert_eq!(get("amber_command_failures_total{cmd=\"set\"}"), 1.0);
    assert_eq!(get("amber_command_failures_total{cmd=\"get\"}"), 0.0);
    assert_eq!(
        get("amber_command_duration_seconds_count{cmd=\"get\"}"),
        8.0
    );
    assert_eq!(
        get("amber_command_duration_seconds_bucket{cmd=\"get\",le=\"+Inf\"}"),
        8.0
    );
    assert!(get("amber_command_duration_seconds_sum{cmd=\"get\"}") > 0.0);
    assert_eq!(get("amber_keys{db=\"0\"}"), 10.0);
    assert_eq!(get("amber_keyspace_hits_total"), 7.0);
    assert_eq!(get("amber_keyspace_misses_total"), 1.0);
    assert!(get("amber_errors_total{code=\"ERR\"}") >= 3.0);
    assert!(get("amber_connected_clients") >= 1.0);
    assert!(
        get("amber_connections_received_total") >= 2.0,
        "the PING probe and this client"
    );
    assert!(get("amber_commands_processed_total") >= 21.0);
    assert!(get("amber_net_input_bytes_total") > 0.0);
    // Tiering series exist (zeros until the tiering engine is wired in).
    for s in [
        "amber_hot_keys",
        "amber_cold_keys",
        "amber_dram_used_bytes",
        "amber_arena_used_bytes",
        "amber_demotions_total",
        "amber_promotions_total",
        "amber_persist_calls_total",
    ] {
        assert!(sample(&after, s).is_some(), "no {s}");
    }
    // Prometheus naming: every counter family ends in _total, all start amber_.
    for l in after.lines().filter(|l| l.starts_with("# TYPE ")) {
        let f: Vec<&str> = l.split(' ').collect();
        assert!(f[2].starts_with("amber_"), "{l}");
        assert_eq!(f[3] == "counter", f[2].ends_with("_total"), "{l}");
    }
    let (status, _, _) = http_get(srv.metrics_port, "/nope");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}

#[test]
fn metrics_are_off_by_default() {
    let dir = TempDir::new("amber-metrics-off");
    let port = free_port();
    let d = dir.path().display().to_string();
    let mut child = Command::new(local::amber_server_bin())
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--dir",
            &d,
            "--pmem-path",
            &format!("{d}/amber.arena"),
            "--pmem-size",
            "64mb",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn amber-server");
    let started = wait_for_ping(port, Duration::from_secs(20));
    let _ = child.kill();
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    let _ = child.wait();
    assert!(started);
    assert!(
        !out.contains("metrics endpoint"),
        "metrics endpoint started without metrics-port: {out}"
    );
}
