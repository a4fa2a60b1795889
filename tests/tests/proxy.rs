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

use amber_tests::minimal as local;

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
        // The test command installs nutcracker; in CI its absence is a failure.
        assert!(
            std::env::var_os("CI").is_none(),
            "nutcracker is not installed (scripts/test.sh installs it)"
        );
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
