//! Small std-only helpers used by the metrics and proxy tests: a RESP2
//! client with parsed replies, free ports, waiting for a server, and the
//! debug `amber-server` binary. (They predate the rest of this harness; new
//! tests should use [`crate::RespClient`] and [`crate::ServerProcess`].)
#![allow(dead_code)]
use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
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

/// `AMBER_SERVER_BIN`, else `<target>/debug/amber-server`, built only if
/// missing or older than the sources (see [`crate::binary`]). It used to
/// run `cargo build -p amber-server` unconditionally: after `cargo test
/// --workspace`, whose feature unification differs from a one-package
/// build, that rebuilt the server in the middle of the run (over a minute
/// of CI per test binary using it).
pub fn amber_server_bin() -> PathBuf {
    crate::binary::amber_server_bin()
}
