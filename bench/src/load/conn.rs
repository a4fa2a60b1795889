//! One pipelined connection of the load generator: builds a batch of
//! requests, writes it in one syscall, reads and classifies the replies.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::keydist::KeyDist;
use super::resp::{parse_reply, Reply};
use super::stats::Stats;
use super::{Control, KeySpace, MEASURE, STOP, WARMUP};

/// What a connection sends.
#[derive(Debug, Clone)]
pub enum Work {
    /// SET every key once, keys handed out by the shared cursor.
    Populate,
    /// Random GETs and SETs; `set_fraction` of requests are SETs.
    Mixed {
        /// Key sampler.
        dist: Arc<KeyDist>,
        /// Fraction of SETs, 0..=1.
        set_fraction: f64,
    },
    /// `GET` on every key written so far, to count lost keys (GET rather
    /// than EXISTS so it works on any server that serves the load itself).
    Verify,
}

#[derive(Clone, Copy)]
enum Op {
    /// A GET, and whether the key's SET had been acknowledged when it was
    /// sent: only then is a nil reply a lost key. (Checked at reply time, a
    /// GET that reached the server before another connection's SET of the
    /// same key, and was answered after that SET's reply arrived, counted
    /// as lost.)
    Get(u64, bool),
    Set(u64),
    Check(u64),
}

/// Request templates, built once per phase.
pub struct Templates {
    get_head: Vec<u8>,
    set_head: Vec<u8>,
    set_tail: Vec<u8>,
}

impl Templates {
    /// Builds the byte templates for keys of `keys` and values of `value_size` bytes.
    pub fn new(keys: &KeySpace, value_size: usize) -> Self {
        let klen = keys.key_len();
        let head = |name: &str, argc: usize| {
            format!("*{argc}\r\n${}\r\n{name}\r\n${klen}\r\n", name.len()).into_bytes()
        };
        let mut set_tail = format!("\r\n${value_size}\r\n").into_bytes();
        // A value that is not all one byte, in case a server compresses.
        set_tail.extend((0..value_size).map(|i| b'a' + (i * 7 % 26) as u8));
        set_tail.extend_from_slice(b"\r\n");
        Templates {
            get_head: head("GET", 2),
            set_head: head("SET", 3),
            set_tail,
        }
    }

    fn encode(&self, dst: &mut Vec<u8>, keys: &KeySpace, op: Op) {
        match op {
            Op::Get(k, _) => {
                dst.extend_from_slice(&self.get_head);
                keys.write_key(dst, k);
                dst.extend_from_slice(b"\r\n");
            }
            Op::Set(k) => {
                dst.extend_from_slice(&self.set_head);
                keys.write_key(dst, k);
                dst.extend_from_slice(&self.set_tail);
            }
            Op::Check(k) => {
                dst.extend_from_slice(&self.get_head);
                keys.write_key(dst, k);
                dst.extend_from_slice(b"\r\n");
            }
        }
    }
}

/// Settings of one connection.
pub struct ConnSpec {
    /// Server address (loopback).
    pub addr: SocketAddr,
    /// Requests in flight per batch.
    pub pipeline: usize,
    /// Key naming.
    pub keys: KeySpace,
    /// Encoded request templates.
    pub templates: Arc<Templates>,
    /// Give up on a batch not answered within this time.
    pub request_timeout: Duration,
    /// Never run past this instant, whatever the controller says.
    pub hard_deadline: Instant,
    /// What to send.
    pub work: Work,
}

/// Runs one connection until the controller says stop, the shared cursor or
/// request budget is exhausted, the connection breaks, or the hard deadline.
pub async fn run_connection(spec: Arc<ConnSpec>, ctl: Arc<Control>, seed: u64) -> Stats {
    let mut stats = Stats::new();
    let mut stream = match TcpStream::connect(spec.addr).await {
        Ok(s) => s,
        Err(e) => {
            stats.broken_connections += 1;
            stats.note_error(0, || format!("connect to {}: {e}", spec.addr));
            ctl.live.fetch_sub(1, Ordering::AcqRel);
            return stats;
        }
    };
    let _ = stream.set_nodelay(true);
    let mut rng = SmallRng::seed_from_u64(seed);
    let pipeline = spec.pipeline.max(1);
    let mut wbuf: Vec<u8> = Vec::with_capacity(pipeline * 64);
    let mut rbuf = BytesMut::with_capacity(64 * 1024);
    let mut ops: Vec<Op> = Vec::with_capacity(pipeline);
    let n = spec.keys.count;

    // Bounded by the hard deadline (checked every batch) and by the key count
    // or request budget for the counted phases.
    'batches: while Instant::now() < spec.hard_deadline {
        let phase = ctl.phase.load(Ordering::Acquire);
        if phase == STOP {
            break;
        }
        ops.clear();
        wbuf.clear();
        match &spec.work {
            Work::Populate | Work::Verify => {
                let from = ctl.cursor.fetch_add(pipeline as u64, Ordering::AcqRel);
                if from >= n {
                    break;
                }
                let to = (from + pipeline as u64).min(n);
                for k in from..to {
                    if matches!(spec.work, Work::Populate) {
                        ops.push(Op::Set(k));
                    } else if ctl.written.get(k) {
                        ops.push(Op::Check(k));
                    }
                }
                if ops.is_empty() {
                    continue;
                }
            }
            Work::Mixed { dist, set_fraction } => {
                let before = ctl.remaining.fetch_sub(pipeline as i64, Ordering::AcqRel);
                if before <= 0 {
                    break;
                }
                let count = (before as u64).min(pipeline as u64);
                for _ in 0..count {
                    let k = dist.sample(&mut rng);
                    if rng.gen::<f64>() < *set_fraction {
                        ops.push(Op::Set(k));
                    } else {
                        ops.push(Op::Get(k, ctl.written.get(k)));
                    }
                }
            }
        }
        for &op in &ops {
            spec.templates.encode(&mut wbuf, &spec.keys, op);
        }
        let measuring = phase == MEASURE || (phase == WARMUP && !ctl.has_warmup);
        let t0 = Instant::now();
        if let Err(e) = stream.write_all(&wbuf).await {
            stats.broken_connections += 1;
            stats.note_error(ops.len() as u64, || format!("write: {e}"));
            break;
        }
        let mut next = 0usize;
        while next < ops.len() {
            // Keep room to read into: read_buf on a full BytesMut would
            // grow it by only 64 bytes at a time (a syscall per 64 bytes).
            if rbuf.capacity() - rbuf.len() < 16 * 1024 {
                rbuf.reserve(64 * 1024);
            }
            let read = tokio::time::timeout(spec.request_timeout, stream.read_buf(&mut rbuf)).await;
            let got = match read {
                Ok(Ok(0)) => Err("connection closed by server".to_string()),
                Ok(Ok(n)) => Ok(n),
                Ok(Err(e)) => Err(format!("read: {e}")),
                Err(_) => Err(format!(
                    "no reply within {:?} (server stalled or dead)",
                    spec.request_timeout
                )),
            };
            if let Err(text) = got {
                stats.broken_connections += 1;
                stats.note_error((ops.len() - next) as u64, || text);
                break 'batches;
            }
            let now = Instant::now();
            let latency_us = now.duration_since(t0).as_micros() as u64;
            let mut used = 0usize;
            while next < ops.len() {
                let slice = rbuf.get(used..).unwrap_or(&[]);
                match parse_reply(slice) {
                    Ok(Some((reply, len))) => {
                        if let Some(&op) = ops.get(next) {
                            classify(
                                &mut stats, &ctl, op, reply, slice, len, measuring, latency_us,
                            );
                        }
                        used += len;
                        next += 1;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        stats.broken_connections += 1;
                        stats.note_error((ops.len() - next) as u64, || e.to_string());
                        break 'batches;
                    }
                }
            }
            rbuf.advance(used);
        }
        ctl.done.fetch_add(ops.len() as u64, Ordering::Relaxed);
    }
    ctl.live.fetch_sub(1, Ordering::AcqRel);
    stats
}

#[allow(clippy::too_many_arguments)]
fn classify(
    stats: &mut Stats,
    ctl: &Control,
    op: Op,
    reply: Reply,
    buf: &[u8],
    len: usize,
    measuring: bool,
    latency_us: u64,
) {
    if !measuring {
        // Warm-up: only remember what was written, count nothing.
        if let (Op::Set(k), Reply::Status) = (op, reply) {
            ctl.written.set(k);
        }
        return;
    }
    if let Reply::Error { oom } = reply {
        if oom {
            stats.oom_errors += 1;
        }
        stats.note_error(1, || {
            String::from_utf8_lossy(buf.get(..len.min(120)).unwrap_or(&[]))
                .trim()
                .to_string()
        });
        return;
    }
    match (op, reply) {
        (Op::Set(k), Reply::Status) => {
            stats.sets += 1;
            ctl.written.set(k);
        }
        (Op::Get(..), Reply::Bulk { .. }) => {
            stats.gets += 1;
            stats.hits += 1;
        }
        (Op::Get(_, written), Reply::Nil) => {
            stats.gets += 1;
            stats.misses += 1;
            if written {
                stats.lost_reads += 1;
            }
        }
        (Op::Check(_), Reply::Bulk { .. }) => {
            stats.verified += 1;
        }
        (Op::Check(_), Reply::Nil) => {
            stats.verified += 1;
            stats.lost_keys += 1;
        }
        _ => {
            stats.note_error(1, || format!("unexpected reply {reply:?}"));
            return;
        }
    }
    stats.ok += 1;
    stats.record_latency_us(latency_us);
}
