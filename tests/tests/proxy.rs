//! Scale-out behind twemproxy: three `amber-server` shards behind Debian's
//! `nutcracker` (ketama, `redis: true`), all on loopback.
//!
//! Writes keys through the proxy, checks they spread over every shard (asking
//! each shard directly) and read back through the proxy, runs the data
//! commands twemproxy forwards, then restarts one shard (SIGTERM, same port
//! and arena) and checks the proxy reaches it again.
//!
//! Whether the restarted shard still has its keys depends on the tiering
//! engine's recovery: that assertion switches on by itself once the shard's
//! `INFO tiering` reports `persistence:pmem` (see `PERSISTENCE CHECK` below).
//!
//! `nutcracker` is installed by the test command (`apt-get install
//! nutcracker`); when it is missing the test prints `SKIP` and passes.
//!
//! The helpers below are local (std only) until the shared harness in
//! `tests/src` lands on main.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use local::{free_port, wait_for_ping, Reply, Resp, TempDir};

/// Keys written through the proxy.
const KEYS: usize = 300;

/// One amber-server shard: its port and arena directory survive restarts.
struct Shard {
    name: String,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Shard {
    fn start(name: &str, root: &Path) -> Shard {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("shard dir");
        let mut shard = Shard {
            name: name.to_string(),
            port: free_port(),
            dir,
            child: None,
        };
        shard.spawn();
        shard
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .expect("log file");
        let d = self.dir.display().to_string();
        let child = Command::new(local::amber_server_bin())
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--dir", &d, "--pmem-path", &format!("{d}/amber.arena")])
            .args(["--pmem-size", "64mb", "--persistence", "pmem"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn amber-server");
        self.child = Some(child);
        if !wait_for_ping(self.port, Duration::from_secs(20)) {
            panic!("{} did not answer PING; log:\n{}", self.name, self.log());
        }
    }

    /// SIGTERM, then wait (bounded) for a clean exit.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                assert!(
                    status.success(),
                    "{} exited with {status} on SIGTERM",
                    self.name
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("{} did not exit within 15 s of SIGTERM", self.name);
    }

    fn client(&self) -> Resp {
        Resp::connect(self.port).expect("connect to shard")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Shard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A running nutcracker, killed on drop.
struct Proxy {
    port: u16,
    child: Child,
    log: PathBuf,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nutcracker_bin() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("NUTCRACKER_BIN").map(PathBuf::from),
        Some(PathBuf::from("/usr/sbin/nutcracker")),
        Some(PathBuf::from("/usr/bin/nutcracker")),
    ];
    candidates.into_iter().flatten().find(|p| p.exists())
}

/// Writes the pool configuration and starts nutcracker on a free port.
fn start_proxy(bin: &Path, root: &Path, shards: &[Shard]) -> Proxy {
    let port = free_port();
    let stats_port = free_port();
    let mut conf = format!(
        "amber:\n  listen: 127.0.0.1:{port}\n  hash: murmur\n  distribution: ketama\n  \
         redis: true\n  auto_eject_hosts: false\n  timeout: 5000\n  preconnect: false\n  \
         server_connections: 1\n  servers:\n"
    );
    for s in shards {
        // Named servers: ketama hashes the name, not ip:port.
        conf.push_str(&format!("   - 127.0.0.1:{}:1 {}\n", s.port, s.name));
    }
    let conf_path = root.join("nutcracker.yml");
    std::fs::write(&conf_path, conf).expect("write nutcracker.yml");
    let check = Command::new(bin)
        .arg("-t")
        .arg("-c")
        .arg(&conf_path)
        .output()
        .expect("nutcracker -t");
    assert!(
        check.status.success(),
        "nutcracker rejected its configuration: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let log = root.join("nutcracker.log");
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf_path)
        .args(["-a", "127.0.0.1", "-s", &stats_port.to_string(), "-v", "5"])
        .arg("-o")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nutcracker");
    let proxy = Proxy { port, child, log };
    // The proxy answers PING itself; wait until it listens.
    if !wait_for_ping(port, Duration::from_secs(10)) {
        panic!(
            "nutcracker did not answer; log:\n{}",
            std::fs::read_to_string(&proxy.log).unwrap_or_default()
        );
    }
    proxy
}

fn key(i: usize) -> String {
    format!("proxy:key:{i}")
}

fn value(i: usize) -> String {
    format!("value-{i}-{}", "x".repeat(i % 37))
}

/// Whether a shard implements `cmd` (it may land later than this test).
fn implemented(shard: &Shard, args: &[&str]) -> bool {
    match shard.client().cmd(args) {
        Reply::Error(e) => !e.starts_with("ERR unknown command"),
        _ => true,
    }
}

/// Which shard holds each key, asking every shard directly.
fn placement(shards: &[Shard]) -> HashMap<usize, Vec<usize>> {
    let mut clients: Vec<Resp> = shards.iter().map(Shard::client).collect();
    let mut per_shard: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..KEYS {
        let mut holders = Vec::new();
        for (s, c) in clients.iter_mut().enumerate() {
            match c.cmd(&["GET", &key(i)]) {
                Reply::Bulk(Some(v)) => {
                    assert_eq!(v, value(i).as_bytes(), "{} on shard {s}", key(i));
                    holders.push(s);
                }
                Reply::Bulk(None) => {}
                other => panic!("GET {} on shard {s}: {other:?}", key(i)),
            }
        }
        assert_eq!(holders.len(), 1, "{} is on shards {holders:?}", key(i));
        per_shard.entry(holders[0]).or_default().push(i);
    }
    per_shard
}

#[test]
fn three_shards_behind_twemproxy() {
    let Some(bin) = nutcracker_bin() else {
        eprintln!(
            "SKIP three_shards_behind_twemproxy: nutcracker is not installed \
             (the test command installs it: apt-get install nutcracker)"
        );
        return;
    };
    let root = TempDir::new("amber-proxy");
    let mut shards: Vec<Shard> = ["shard1", "shard2", "shard3"]
        .iter()
        .map(|n| Shard::start(n, root.path()))
        .collect();
    let proxy = start_proxy(&bin, root.path(), &shards);
    let mut via = Resp::connect(proxy.port).expect("connect to proxy");

    // Write through the proxy.
    for i in 0..KEYS {
        assert_eq!(
            via.cmd(&["SET", &key(i), &value(i)]),
            Reply::Status("OK".into()),
            "SET {} through the proxy",
            key(i)
        );
    }

    // Every key is on exactly one shard, and every shard got a share.
    let per_shard = placement(&shards);
    let counts: Vec<usize> = (0..shards.len())
        .map(|s| per_shard.get(&s).map_or(0, Vec::len))
        .collect();
    eprintln!("keys per shard: {counts:?}");
    for (s, shard) in shards.iter().enumerate() {
        let n = per_shard.get(&s).map_or(0, Vec::len);
        eprintln!("{}: {n} of {KEYS} keys", shard.name);
        assert!(
            n >= KEYS / 10,
            "{} holds only {n} of {KEYS} keys",
            shard.name
        );
        if implemented(shard, &["DBSIZE"]) {
            assert_eq!(
                shard.client().cmd(&["DBSIZE"]),
                Reply::Int(n as i64),
                "DBSIZE on {}",
                shard.name
            );
        } else {
            eprintln!("note: DBSIZE not implemented yet; placement counted with GET on each shard");
        }
    }

    // Read everything back through the proxy.
    for i in 0..KEYS {
        assert_eq!(
            via.cmd(&["GET", &key(i)]),
            Reply::Bulk(Some(value(i).into_bytes()))
        );
    }
    assert_eq!(via.cmd(&["GET", "proxy:absent"]), Reply::Bulk(None));

    forwarded_commands(&mut via, &shards[0]);

    // Restart one shard: SIGTERM, then the same port and arena.
    let victim = 1;
    let victim_keys = per_shard.get(&victim).cloned().unwrap_or_default();
    shards[victim].stop();
    shards[victim].spawn();
    let info = match shards[victim].client().cmd(&["INFO", "tiering"]) {
        Reply::Bulk(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
        _ => String::new(),
    };
    // Keys of the other shards are untouched; the proxy reaches the restarted
    // shard again (the first request after the restart may see the proxy's
    // dead connection: retry briefly).
    for (s, keys) in &per_shard {
        if *s == victim {
            continue;
        }
        for &i in keys {
            assert_eq!(
                via.cmd(&["GET", &key(i)]),
                Reply::Bulk(Some(value(i).into_bytes()))
            );
        }
    }
    let probe = victim_keys.first().copied().expect("the victim holds keys");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut reached = false;
    while Instant::now() < deadline {
        if let Ok(mut c) = Resp::connect(proxy.port) {
            if let Reply::Status(ok) = c.cmd(&["SET", "proxy:after-restart", "1"]) {
                if ok == "OK" {
                    // Through the proxy, any reply from the victim's key range.
                    if !matches!(c.cmd(&["GET", &key(probe)]), Reply::Error(_)) {
                        via = c;
                        reached = true;
                        break;
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(reached, "the proxy did not reach the restarted shard");

    // ===== PERSISTENCE CHECK =====
    // Switches on when the restarted shard says it persists to its arena and
    // recovers at start-up (the tiering engine). Until then persistence is not
    // implemented and the keys are expected to be gone: say so, do not fake it.
    if info.contains("persistence:pmem") {
        for &i in &victim_keys {
            assert_eq!(
                via.cmd(&["GET", &key(i)]),
                Reply::Bulk(Some(value(i).into_bytes())),
                "{} lost by the restart of {} (INFO tiering:\n{info})",
                key(i),
                shards[victim].name
            );
        }
        eprintln!(
            "persistence: {} recovered its {} keys after a restart",
            shards[victim].name,
            victim_keys.len()
        );
    } else {
        let kept = victim_keys
            .iter()
            .filter(|&&i| via.cmd(&["GET", &key(i)]) != Reply::Bulk(None))
            .count();
        eprintln!(
            "PENDING persistence check: `INFO tiering` does not report persistence:pmem yet; \
             {kept} of {} keys of the restarted shard survived",
            victim_keys.len()
        );
    }
    drop(proxy);
    for s in &mut shards {
        s.stop();
    }
}

/// The data commands twemproxy forwards (its redis.md), checked through the
/// proxy when the shards implement them.
fn forwarded_commands(via: &mut Resp, shard: &Shard) {
    let cases: &[(&[&str], &[&str], Reply)] = &[
        // (probe on a shard, command through the proxy, expected reply)
        (&["PING"], &["PING"], Reply::Status("PONG".into())),
        (&["EXISTS", "x"], &["EXISTS", "proxy:key:1"], Reply::Int(1)),
        (
            &["INCR", "proxy:probe:n"],
            &["INCR", "proxy:n"],
            Reply::Int(1),
        ),
        (
            &["INCRBY", "proxy:probe:n", "1"],
            &["INCRBY", "proxy:n", "41"],
            Reply::Int(42),
        ),
        (
            &["APPEND", "proxy:probe:a", "x"],
            &["APPEND", "proxy:a", "abc"],
            Reply::Int(3),
        ),
        (&["STRLEN", "x"], &["STRLEN", "proxy:a"], Reply::Int(3)),
        (
            &["EXPIRE", "x", "100"],
            &["EXPIRE", "proxy:a", "100"],
            Reply::Int(1),
        ),
        (&["TTL", "x"], &["TTL", "proxy:n"], Reply::Int(-1)),
        (
            &["TYPE", "x"],
            &["TYPE", "proxy:a"],
            Reply::Status("string".into()),
        ),
        (
            &["MSET", "proxy:probe:m", "1"],
            &["MSET", "proxy:m1", "a", "proxy:m2", "b", "proxy:m3", "c"],
            Reply::Status("OK".into()),
        ),
        (
            &["MGET", "x"],
            &["MGET", "proxy:m1", "proxy:m2", "proxy:absent", "proxy:m3"],
            Reply::Array(vec![
                Reply::Bulk(Some(b"a".to_vec())),
                Reply::Bulk(Some(b"b".to_vec())),
                Reply::Bulk(None),
                Reply::Bulk(Some(b"c".to_vec())),
            ]),
        ),
        (
            &["DEL", "proxy:probe:none"],
            &["DEL", "proxy:m1", "proxy:m2", "proxy:absent"],
            Reply::Int(2),
        ),
    ];
    let mut skipped = Vec::new();
    for (probe, args, want) in cases {
        if !implemented(shard, probe) {
            skipped.push(probe[0]);
            continue;
        }
        assert_eq!(&via.cmd(args), want, "{args:?} through the proxy");
    }
    if !skipped.is_empty() {
        eprintln!(
            "note: not implemented by amber-server yet, not checked through the proxy: {skipped:?}"
        );
    }
    // Not supported by twemproxy itself: it closes the connection or answers an
    // error, whatever the server would say (documented in docs/DEPLOY.md).
    let mut c = Resp::connect(via.port()).expect("connect");
    let r = c.try_cmd(&["MULTI"]);
    assert!(
        !matches!(r, Ok(Reply::Status(_))),
        "twemproxy unexpectedly accepted MULTI: {r:?}"
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
