//! One amber-server on a fixed directory that a test stops (`kill -9` or
//! `SHUTDOWN`) and starts again on the same arena: the crash and restart
//! tests' server. Its output goes to `server.log` in the directory, kept
//! across restarts.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::binary::amber_server_bin;
use crate::process::{amber_base_args, free_port};
use crate::RespClient;

/// A restartable amber-server (see the module docs); killed on drop.
pub struct RestartableServer {
    /// Its port (the same after every restart).
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    extra: Vec<String>,
}

impl RestartableServer {
    /// A server in `dir` with Amber's base arguments and `extra`; not started.
    pub fn new(dir: &Path, extra: &[&str]) -> RestartableServer {
        RestartableServer {
            port: free_port(),
            dir: dir.to_path_buf(),
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Starts it and waits (up to 60 s) until it answers `PING`; panics
    /// with its log if it exits or stays silent.
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .expect("log file");
        let child = Command::new(amber_server_bin())
            .args(amber_base_args(self.port, &self.dir))
            .args(&self.extra)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn amber-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut c) = RespClient::connect(self.port) {
                if c.try_cmd(&["PING"]).is_ok_and(|r| r == b"+PONG\r\n") {
                    return;
                }
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("amber-server exited with {status}; log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "amber-server did not answer PING within 60 s; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A client with a 30 s timeout.
    pub fn client(&self) -> RespClient {
        let c = RespClient::connect(self.port).expect("connect");
        c.set_timeout(Duration::from_secs(30));
        c
    }

    /// Stops it with SIGKILL (nothing is flushed, no checkpoint).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops it with `SHUTDOWN` (a clean stop) and checks it exited 0.
    pub fn shutdown(&mut self) {
        let mut c = self.client();
        let _ = c.send(&["SHUTDOWN"]);
        let _ = c.read_until_close(Duration::from_secs(30));
        if let Some(mut child) = self.child.take() {
            let status = child.wait().expect("wait");
            assert!(status.success(), "SHUTDOWN exit status {status}");
        }
    }

    /// Stops it with SIGTERM (a clean stop, as a service manager does) and
    /// checks it exited 0.
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid, which we have not
            // waited for yet (so it cannot have been reused).
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let status = child.wait().expect("wait");
            assert!(status.success(), "exit status after SIGTERM: {status}");
        }
    }

    /// Everything it logged since the directory was first used.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for RestartableServer {
    fn drop(&mut self) {
        self.kill9();
    }
}
