//! Starting, probing and stopping a server under test (`amber-server` or
//! `redis-server`) on a loopback ephemeral port, optionally inside a cgroup.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cleanup;
use crate::load::resp::{encode_command, parse_reply, Reply};

/// How to launch a server (everything but the port).
#[derive(Debug, Clone)]
pub struct Launch {
    /// Short name for logs (`amber-pmem`).
    pub name: String,
    /// Executable.
    pub bin: PathBuf,
    /// Arguments; `--port N --bind 127.0.0.1` are appended.
    pub args: Vec<String>,
    /// Join this cgroup (its `cgroup.procs`) before `exec`.
    pub cgroup_procs: Option<PathBuf>,
    /// Where the server's stdout/stderr log goes.
    pub log: PathBuf,
}

/// A running server.
#[derive(Debug)]
pub struct ServerProc {
    /// Its pid.
    pub pid: u32,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Log file.
    pub log: PathBuf,
    token: cleanup::Token,
}

/// How a server ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Still running.
    Running,
    /// Exited with a code.
    Code(i32),
    /// Killed by a signal (9 for the OOM killer).
    Signal(i32),
}

/// A free loopback port (bound then released; the server binds it next).
pub fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local_addr: {e}"))
}

impl ServerProc {
    /// Starts the server and waits until it answers PING (at most
    /// `ready_timeout`); retries on another port if the first was taken.
    pub async fn start(launch: &Launch, ready_timeout: Duration) -> Result<Self, String> {
        let mut last = String::new();
        for _attempt in 0..3 {
            let port = free_port()?;
            match Self::start_on(launch, port, ready_timeout).await {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn start_on(launch: &Launch, port: u16, ready_timeout: Duration) -> Result<Self, String> {
        let mut args = launch.args.clone();
        args.extend([
            "--port".into(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
        ]);
        let log = std::fs::File::create(&launch.log)
            .map_err(|e| format!("create {}: {e}", launch.log.display()))?;
        let log2 = log.try_clone().map_err(|e| format!("log: {e}"))?;
        let mut cmd = match &launch.cgroup_procs {
            // The shell joins the cgroup, then execs the server: same pid,
            // so the server is limited from its first allocation.
            Some(procs) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg("p=\"$1\"; shift; echo $$ > \"$p\" && exec \"$@\"")
                    .arg("amber-bench-launch")
                    .arg(procs)
                    .arg(&launch.bin);
                c
            }
            None => Command::new(&launch.bin),
        };
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", launch.bin.display()))?;
        let pid = child.id();
        let token = cleanup::add_process(child);
        let server = ServerProc {
            pid,
            port,
            log: launch.log.clone(),
            token,
        };
        let deadline = Instant::now() + ready_timeout;
        loop {
            if let Exit::Code(_) | Exit::Signal(_) = server.exit() {
                let text = std::fs::read_to_string(&launch.log).unwrap_or_default();
                let e = format!(
                    "{} exited at start: {}",
                    launch.name,
                    crate::drivers::tail(&text, 300)
                );
                server.stop();
                return Err(e);
            }
            if let Ok(Reply::Status) = command(port, &[b"PING"]).await.map(|r| r.0) {
                // The port is free when chosen, not when bound: a server the
                // bench started earlier may hold it, and this one then dies
                // of the bind failure while the other answers the PING (the
                // exit is seen above on a later turn, and another port tried).
                let answering = server.info("server").await.ok();
                if answering.and_then(|m| m.get("process_id")?.parse::<u32>().ok()) == Some(pid) {
                    return Ok(server);
                }
            }
            if Instant::now() >= deadline {
                server.stop();
                return Err(format!(
                    "{} did not answer PING within {ready_timeout:?}",
                    launch.name
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Whether and how it ended.
    pub fn exit(&self) -> Exit {
        match cleanup::with_process(self.token, |c| c.try_wait()) {
            Some(Ok(Some(st))) => match (st.code(), st.signal()) {
                (Some(c), _) => Exit::Code(c),
                (None, Some(s)) => Exit::Signal(s),
                (None, None) => Exit::Code(-1),
            },
            Some(Ok(None)) => Exit::Running,
            _ => Exit::Code(-1),
        }
    }

    /// `INFO section` as `field -> value` (empty if the server has no such section).
    pub async fn info(&self, section: &str) -> Result<BTreeMap<String, String>, String> {
        let (reply, body) = command(self.port, &[b"INFO", section.as_bytes()]).await?;
        match reply {
            Reply::Bulk { .. } => Ok(parse_info(&String::from_utf8_lossy(&body))),
            other => Err(format!("INFO {section}: unexpected reply {other:?}")),
        }
    }

    /// Kills (SIGKILL) and reaps the server.
    pub fn stop(self) {
        cleanup::release(self.token);
    }
}

/// Parses `INFO` text (`# Section` headers, `field:value` lines).
pub fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Sends one command on a fresh connection and returns the reply and, for a
/// bulk reply, its payload. Gives up after two seconds.
pub async fn command(port: u16, args: &[&[u8]]) -> Result<(Reply, Vec<u8>), String> {
    let work = async {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let mut req = Vec::new();
        encode_command(&mut req, args);
        s.write_all(&req).await.map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::with_capacity(4096);
        // Bounded: a reply larger than 64 MiB is refused.
        while buf.len() < 64 << 20 {
            let mut chunk = [0u8; 16384];
            let n = s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed".to_string());
            }
            buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
            if let Some((reply, _)) = parse_reply(&buf).map_err(|e| e.to_string())? {
                let body = match reply {
                    Reply::Bulk { start, len } => {
                        buf.get(start..start + len).unwrap_or(&[]).to_vec()
                    }
                    _ => Vec::new(),
                };
                return Ok((reply, body));
            }
        }
        Err("reply too large".to_string())
    };
    tokio::time::timeout(Duration::from_secs(2), work)
        .await
        .map_err(|_| "no reply within 2 s".to_string())?
}

/// Whether `bin` is a `redis-server` (used as a stand-in for Amber before the
/// real server exists): then Amber-only flags are left out.
pub fn is_redis_binary(bin: &Path) -> bool {
    bin.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("redis-server"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_info_text() {
        let m = parse_info(
            "# Tiering\r\nhot_keys:10\r\ncold_keys:5\r\n\r\n# Memory\r\nused_memory:100\r\n",
        );
        assert_eq!(m.get("hot_keys").map(String::as_str), Some("10"));
        assert_eq!(m.get("used_memory").map(String::as_str), Some("100"));
        assert!(is_redis_binary(Path::new("/usr/bin/redis-server")));
        assert!(!is_redis_binary(Path::new("target/release/amber-server")));
    }
}
