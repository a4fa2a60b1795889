//! The Prometheus endpoint: start amber-server with `--metrics-port`, run
//! some commands, scrape `GET /metrics` over plain HTTP and check the series
//! moved. The helpers are local (std only) until the shared harness in
//! `tests/src` lands on main.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use local::{free_port, wait_for_ping, Reply, Resp, TempDir};

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

/// Small std-only helpers (until the shared harness lands).
#[allow(dead_code)]
mod local {
    use std::io::{self, BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    /// A parsed RESP2 reply.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Reply {
        Status(String),
        Error(String),
        Int(i64),
        Bulk(Option<Vec<u8>>),
        Array(Vec<Reply>),
        Nil,
    }

    /// A blocking RESP client.
    pub struct Resp {
        r: BufReader<TcpStream>,
        w: TcpStream,
        port: u16,
    }

    impl Resp {
        pub fn connect(port: u16) -> io::Result<Resp> {
            let s = TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            s.set_nodelay(true)?;
            Ok(Resp {
                r: BufReader::new(s.try_clone()?),
                w: s,
                port,
            })
        }

        pub fn port(&self) -> u16 {
            self.port
        }

        pub fn try_cmd(&mut self, args: &[&str]) -> io::Result<Reply> {
            let mut out = format!("*{}\r\n", args.len()).into_bytes();
            for a in args {
                out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                out.extend_from_slice(a.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            self.w.write_all(&out)?;
            read_reply(&mut self.r)
        }

        pub fn cmd(&mut self, args: &[&str]) -> Reply {
            self.try_cmd(args)
                .unwrap_or_else(|e| panic!("{args:?} on port {}: {e}", self.port))
        }
    }

    fn line(r: &mut impl BufRead) -> io::Result<String> {
        let mut s = String::new();
        if r.read_line(&mut s)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        Ok(s.trim_end_matches(['\r', '\n']).to_string())
    }

    fn bad(what: &str) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, what.to_string())
    }

    /// Reads one reply (bounded nesting).
    pub fn read_reply(r: &mut impl BufRead) -> io::Result<Reply> {
        read_depth(r, 0)
    }

    fn read_depth(r: &mut impl BufRead, depth: usize) -> io::Result<Reply> {
        if depth > 16 {
            return Err(bad("nested too deep"));
        }
        let l = line(r)?;
        let (t, rest) = l.split_at(l.len().min(1));
        let num = || rest.parse::<i64>().map_err(|_| bad(&l));
        Ok(match t {
            "+" => Reply::Status(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Int(num()?),
            "_" => Reply::Nil,
            "$" => {
                let n = num()?;
                if n < 0 {
                    Reply::Bulk(None)
                } else {
                    let mut b = vec![0; n as usize + 2];
                    r.read_exact(&mut b)?;
                    b.truncate(n as usize);
                    Reply::Bulk(Some(b))
                }
            }
            "*" => {
                let n = num()?;
                if n < 0 {
                    Reply::Bulk(None)
                } else {
                    let mut v = Vec::new();
                    for _ in 0..n {
                        v.push(read_depth(r, depth + 1)?);
                    }
                    Reply::Array(v)
                }
            }
            _ => return Err(bad(&l)),
        })
    }

    /// Polls PING until PONG or `limit`.
    pub fn wait_for_ping(port: u16, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(mut c) = Resp::connect(port) {
                if let Ok(Reply::Status(s)) = c.try_cmd(&["PING"]) {
                    if s == "PONG" {
                        return true;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// A free loopback port below the ephemeral range (so outgoing
    /// connections never take it), distinct within this process.
    pub fn free_port() -> u16 {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let _ = NEXT.compare_exchange(
            0,
            20_000 + (std::process::id().wrapping_mul(7919) % 10_000),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        for _ in 0..12_000 {
            let p = 20_000 + (NEXT.fetch_add(1, Ordering::Relaxed) - 20_000) % 12_000;
            if TcpListener::bind(("127.0.0.1", p as u16)).is_ok() {
                return p as u16;
            }
        }
        panic!("no free port in 20000..32000");
    }

    /// A temporary directory removed on drop.
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(prefix: &str) -> TempDir {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let p = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&p).expect("temp dir");
            TempDir(p)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            if std::env::var_os("AMBER_KEEP_TEST_DIRS").is_none() {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    /// `AMBER_SERVER_BIN`, else `<target>/debug/amber-server`, built with
    /// `cargo build -p amber-server` once per process if it is missing.
    pub fn amber_server_bin() -> PathBuf {
        static BIN: OnceLock<PathBuf> = OnceLock::new();
        BIN.get_or_init(|| {
            if let Some(p) = std::env::var_os("AMBER_SERVER_BIN") {
                return PathBuf::from(p);
            }
            let root = Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("workspace root")
                .to_path_buf();
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .map(|t| if t.is_absolute() { t } else { root.join(t) })
                .unwrap_or_else(|| root.join("target"));
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            // Cargo is a no-op when the binary is up to date.
            let status = std::process::Command::new(cargo)
                .args(["build", "-q", "-p", "amber-server", "--bin", "amber-server"])
                .current_dir(&root)
                .env("CARGO_TARGET_DIR", &target)
                .status()
                .expect("run cargo build -p amber-server");
            assert!(status.success(), "cargo build -p amber-server failed");
            target.join("debug/amber-server")
        })
        .clone()
    }
}
