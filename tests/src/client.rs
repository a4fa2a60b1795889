//! A raw RESP client: sends bytes, returns each reply's exact bytes.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use crate::reply::{self, Reply};

/// How long a test waits for a reply before calling the server stuck.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// A blocking connection that reads exactly one reply at a time.
pub struct RespClient {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RespClient {
    /// Connects to `127.0.0.1:port`.
    pub fn connect(port: u16) -> io::Result<RespClient> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        Ok(RespClient {
            stream,
            buf: Vec::new(),
        })
    }

    /// The underlying socket (to set timeouts, shut down a half, ...).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Sets how long reads wait.
    pub fn set_timeout(&self, t: Duration) {
        let _ = self.stream.set_read_timeout(Some(t));
    }

    /// Writes raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Writes one command as a multibulk.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<()> {
        self.send_raw(&reply::encode(args))
    }

    /// Reads exactly one reply and returns its bytes.
    pub fn read_reply(&mut self) -> io::Result<Vec<u8>> {
        Ok(self.read_parsed()?.raw)
    }

    /// Reads exactly one reply, decoded.
    pub fn read_parsed(&mut self) -> io::Result<Reply> {
        loop {
            match reply::parse(&self.buf) {
                Ok(Some((r, n))) => {
                    self.buf.drain(..n);
                    return Ok(r);
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{e}; buffer: {}", reply::show_short(&self.buf, 200)),
                    ))
                }
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = match self.stream.read(&mut chunk) {
                Ok(n) => n,
                // A socket with a receive timeout fails reads with EINTR
                // when the process is stopped and continued, even with no
                // signal handler (signal(7)); CI caught one. Read again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed; partial reply: {}",
                        reply::show_short(&self.buf, 200)
                    ),
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends one command and returns its reply's bytes; panics on I/O errors.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Vec<u8> {
        self.try_cmd(args).unwrap_or_else(|e| {
            panic!(
                "{} failed: {e}",
                reply::show(
                    &args
                        .iter()
                        .map(|a| a.as_ref().to_vec())
                        .collect::<Vec<_>>()
                        .join(&b' ')
                )
            )
        })
    }

    /// Sends one command and returns its reply's bytes.
    pub fn try_cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<Vec<u8>> {
        self.send(args)?;
        self.read_reply()
    }

    /// Like [`cmd`](Self::cmd) with space-separated arguments (no quoting).
    pub fn cmd_str(&mut self, line: &str) -> Vec<u8> {
        let args: Vec<&str> = line.split_whitespace().collect();
        self.cmd(&args)
    }

    /// Reads everything until the server closes the connection (or `limit`
    /// passes). Returns the bytes and whether the close was observed.
    pub fn read_until_close(&mut self, limit: Duration) -> (Vec<u8>, bool) {
        let deadline = Instant::now() + limit;
        let mut out = std::mem::take(&mut self.buf);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (out, false);
            }
            let _ = self.stream.set_read_timeout(Some(left));
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return (out, true),
                Ok(n) => out.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    return (out, false)
                }
                // A reset after the server closed with unread input pending.
                Err(_) => return (out, true),
            }
        }
    }

    /// Closes the writing half.
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}
