//! Servers as child processes: Amber and the reference `redis-server`,
//! each on its own free port and temporary directory, killed on drop.

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::binary::amber_server_bin;
use crate::client::RespClient;

/// The reference implementation (Debian's Redis 7.0).
pub const REDIS_SERVER: &str = "redis-server";

/// How long a server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Which server a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// amber-server
    Amber,
    /// redis-server
    Redis,
}

impl Kind {
    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Amber => "amber",
            Kind::Redis => "redis",
        }
    }
}

/// Hands out ports below Linux's ephemeral range (32768+), so outgoing
/// connections never take them, from a per-process random start, checking
/// each is free. Tests of one process never get the same port twice.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if NEXT.load(Ordering::Relaxed) == 0 {
        let seed = std::process::id().wrapping_mul(2654435761).wrapping_add(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0),
        );
        NEXT.store(20_000 + seed % 10_000, Ordering::Relaxed);
    }
    for _ in 0..10_000 {
        let p = NEXT.fetch_add(1, Ordering::Relaxed);
        let p = 20_000 + (p - 20_000) % 12_000;
        let port = p as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port found in 20000..32000");
}

/// A running server, killed (SIGKILL) when dropped.
pub struct ServerProcess {
    /// Which server.
    pub kind: Kind,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
    dir: TempDir,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts Amber with the harness's base arguments (port, bind, an arena
    /// in a temporary directory) followed by `extra`.
    pub fn amber(extra: &[&str]) -> ServerProcess {
        Self::start(Kind::Amber, extra)
    }

    /// Starts Amber with `extra` plus the arguments in `AMBER_EXTRA_ARGS`
    /// (whitespace-separated, e.g. `--dram-budget 0`).
    pub fn amber_with_env_args(extra: &[&str]) -> ServerProcess {
        let env = amber_extra_args();
        let mut all: Vec<&str> = extra.to_vec();
        all.extend(env.iter().map(String::as_str));
        Self::start(Kind::Amber, &all)
    }

    /// Starts redis-server without persistence, with `extra` arguments.
    pub fn redis(extra: &[&str]) -> ServerProcess {
        Self::start(Kind::Redis, extra)
    }

    /// Starts a server of `kind`, retrying on another port if the chosen one
    /// was taken in the meantime.
    pub fn start(kind: Kind, extra: &[&str]) -> ServerProcess {
        let mut last = String::new();
        for _attempt in 0..4 {
            match Self::try_start(kind, extra) {
                Ok(p) => return p,
                Err(e) => last = e,
            }
        }
        panic!("{} did not start: {last}", kind.name());
    }

    fn try_start(kind: Kind, extra: &[&str]) -> Result<ServerProcess, String> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("amber-test-{}-", kind.name()))
            .tempdir()
            .map_err(|e| format!("tempdir: {e}"))?;
        let port = free_port();
        let log = dir.path().join("server.log");
        let mut cmd = command_for(kind, port, dir.path(), extra);
        let logf = File::create(&log).map_err(|e| format!("log file: {e}"))?;
        let logf2 = logf.try_clone().map_err(|e| format!("log file: {e}"))?;
        cmd.stdin(Stdio::null()).stdout(logf).stderr(logf2);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot spawn {:?}: {e}", cmd.get_program()))?;
        let mut p = ServerProcess {
            kind,
            port,
            child: Some(child),
            dir,
            log,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = p.try_wait() {
                return Err(format!(
                    "exited with {status} before accepting connections; log:\n{}",
                    p.log_text()
                ));
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                // Still ours? (A bind failure would make it exit.)
                std::thread::sleep(Duration::from_millis(5));
                if p.try_wait().is_none() {
                    return Ok(p);
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "not accepting connections after {START_TIMEOUT:?}; log:\n{}",
                    p.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A new raw connection.
    pub fn client(&self) -> RespClient {
        RespClient::connect(self.port)
            .unwrap_or_else(|e| panic!("connect to {} on {}: {e}", self.kind.name(), self.port))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The server's temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the server printed so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.try_wait().is_none()
    }

    /// Sends a signal (e.g. `libc::SIGTERM`).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.pid() as libc::pid_t, sig);
        }
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Resident memory in KiB (from /proc).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `AMBER_EXTRA_ARGS`, split on whitespace.
pub fn amber_extra_args() -> Vec<String> {
    std::env::var("AMBER_EXTRA_ARGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Amber's base arguments for a server in `dir` on `port`.
pub fn amber_base_args(port: u16, dir: &Path) -> Vec<String> {
    let d = dir.display().to_string();
    vec![
        "--port".into(),
        port.to_string(),
        "--bind".into(),
        "127.0.0.1".into(),
        "--dir".into(),
        d.clone(),
        "--pmem-path".into(),
        format!("{d}/amber.arena"),
        "--pmem-size".into(),
        "256mb".into(),
        // A master starts a diskless full sync at once instead of waiting
        // 5 s for more replicas, as Redis's own test suite configures its
        // servers; the test of the delay sets it back.
        "--repl-diskless-sync-delay".into(),
        "0".into(),
    ]
}

fn command_for(kind: Kind, port: u16, dir: &Path, extra: &[&str]) -> Command {
    match kind {
        Kind::Amber => {
            let mut c = Command::new(amber_server_bin());
            c.args(amber_base_args(port, dir)).args(extra);
            c.env_remove("RUST_LOG");
            c
        }
        Kind::Redis => {
            let mut c = Command::new(REDIS_SERVER);
            c.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .args(["--repl-diskless-sync-delay", "0"])
                .arg("--dir")
                .arg(dir)
                .args(extra);
            c
        }
    }
}

/// Runs amber-server with exactly `args` (no base arguments) and expects it to
/// exit by itself within `limit` (a bad configuration). Returns its output,
/// or an error if it was still running (it is then killed).
pub fn run_amber_to_exit(args: &[&str], cwd: &Path, limit: Duration) -> Result<Output, String> {
    let mut child = Command::new(amber_server_bin())
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().map_err(|e| e.to_string());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().map_err(|e| e.to_string())?;
            return Err(format!(
                "amber-server {args:?} was still running after {limit:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A memory value as `CONFIG GET` shows it (`256kb` -> `262144`); other
/// text unchanged.
pub fn memory_text(v: &str) -> String {
    let lower = v.to_ascii_lowercase();
    let units: [(&str, u64); 6] = [
        ("kb", 1024),
        ("mb", 1024 * 1024),
        ("gb", 1024 * 1024 * 1024),
        ("k", 1000),
        ("m", 1000 * 1000),
        ("g", 1000 * 1000 * 1000),
    ];
    for (suffix, mult) in units {
        if let Some(n) = lower
            .strip_suffix(suffix)
            .and_then(|n| n.parse::<u64>().ok())
        {
            return (n * mult).to_string();
        }
    }
    v.to_string()
}
