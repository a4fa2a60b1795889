//! MIGRATE's cached connections to target instances, one per `host:port`
//! as the command names them (Redis's `server.migrate_cached_sockets`):
//! at most [`MAX_CACHED`], each closed once idle for more than
//! [`IDLE_SECS`] seconds (`migrateCloseTimedoutSockets`), by a helper
//! thread that runs while any connection is cached.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// `MIGRATE_SOCKET_CACHE_ITEMS`: connections kept at most.
pub const MAX_CACHED: usize = 64;
/// `MIGRATE_SOCKET_CACHE_TTL`: a connection idle for longer is closed.
pub const IDLE_SECS: u64 = 10;

/// An open connection to a target instance.
#[derive(Debug)]
pub struct TargetConn {
    stream: BufReader<TcpStream>,
    /// The database last selected on it (-1: unknown, `SELECT` is sent).
    pub last_dbid: i64,
    last_use: Instant,
}

/// How an exchange with the target failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoFailure {
    /// The time allowed ran out (Redis's `ETIMEDOUT`: no retry).
    TimedOut,
    /// Closed or broken connection.
    Broken,
}

impl From<std::io::Error> for IoFailure {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => IoFailure::TimedOut,
            _ => IoFailure::Broken,
        }
    }
}

/// Why no connection could be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    /// The host has no address (Redis's non-blocking connect fails at once).
    Unresolved,
    /// Refused or timed out. Redis's blocking connect reports neither: the
    /// first write to the connection fails instead.
    Io(IoFailure),
}

impl TargetConn {
    /// Connects to `host:port` within `timeout` (`connBlockingConnect`).
    fn connect(host: &str, port: u16, timeout: Duration) -> Result<TargetConn, ConnectFailure> {
        let addrs: Vec<_> = (host, port)
            .to_socket_addrs()
            .map_err(|_| ConnectFailure::Unresolved)?
            .collect();
        let mut failure = ConnectFailure::Unresolved;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    return Ok(TargetConn {
                        stream: BufReader::new(s),
                        last_dbid: -1,
                        last_use: Instant::now(),
                    });
                }
                Err(e) => failure = ConnectFailure::Io(e.into()),
            }
        }
        Err(failure)
    }

    /// Writes all of `buf` in 64 KiB chunks, each within `timeout`
    /// (`connSyncWrite`).
    pub fn write_all(&mut self, buf: &[u8], timeout: Duration) -> Result<(), IoFailure> {
        let s = self.stream.get_mut();
        s.set_write_timeout(Some(timeout))?;
        for chunk in buf.chunks(64 * 1024) {
            s.write_all(chunk)?;
        }
        Ok(())
    }

    /// One reply line without its CRLF (`connSyncReadLine`); an empty
    /// read (the target closed the connection) is a failure.
    pub fn read_line(&mut self, timeout: Duration) -> Result<Vec<u8>, IoFailure> {
        self.stream.get_mut().set_read_timeout(Some(timeout))?;
        let mut line = Vec::new();
        if self.stream.read_until(b'\n', &mut line)? == 0 || line.last() != Some(&b'\n') {
            return Err(IoFailure::Broken);
        }
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(line)
    }
}

/// The cache (see the module documentation).
#[derive(Debug, Default)]
pub struct MigrateSockets {
    cached: Arc<Mutex<Cached>>,
}

/// The connections, and whether the thread closing idle ones runs.
#[derive(Debug, Default)]
struct Cached {
    conns: HashMap<String, TargetConn>,
    reaper: bool,
}

impl MigrateSockets {
    /// Connections cached (`migrate_cached_sockets` in `INFO stats`).
    pub fn len(&self) -> usize {
        self.cached.lock().conns.len()
    }

    /// Whether no connection is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cached connection named `name` (taken out of the cache while
    /// in use), or a new one to `host:port`.
    pub fn take_or_connect(
        &self,
        name: &str,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<TargetConn, ConnectFailure> {
        if let Some(mut c) = self.cached.lock().conns.remove(name) {
            c.last_use = Instant::now();
            return Ok(c);
        }
        TargetConn::connect(host, port, timeout)
    }

    /// Puts a connection (back) in the cache, making room when it is
    /// full, and starts the thread that closes idle ones.
    pub fn keep(&self, name: String, mut conn: TargetConn) {
        conn.last_use = Instant::now();
        let mut cached = self.cached.lock();
        if cached.conns.len() >= MAX_CACHED && !cached.conns.contains_key(&name) {
            // Redis drops a random one.
            if let Some(victim) = cached.conns.keys().next().cloned() {
                cached.conns.remove(&victim);
            }
        }
        cached.conns.insert(name, conn);
        if !cached.reaper {
            cached.reaper = self.start_reaper();
        }
    }

    /// Closes the cached connection named `name`, if any (`migrateCloseSocket`).
    pub fn close(&self, name: &str) {
        self.cached.lock().conns.remove(name);
    }

    /// Checks every second for idle connections; stops when none is left.
    /// Whether the thread started.
    fn start_reaper(&self) -> bool {
        let cached = Arc::downgrade(&self.cached);
        let spawned = std::thread::Builder::new()
            .name("amber-migrate-sockets".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_secs(1));
                let Some(cached) = cached.upgrade() else {
                    return;
                };
                let mut cached = cached.lock();
                cached
                    .conns
                    .retain(|_, c| c.last_use.elapsed().as_secs() <= IDLE_SECS);
                if cached.conns.is_empty() {
                    cached.reaper = false;
                    return;
                }
            });
        if let Err(e) = &spawned {
            tracing::warn!(error = %e, "cannot start the thread closing idle MIGRATE connections");
        }
        spawned.is_ok()
    }
}
