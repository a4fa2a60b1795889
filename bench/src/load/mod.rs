//! The load generator: many pipelined connections on a few tokio threads.
//!
//! A run is made of phases, each on fresh connections: `Populate` (SET every
//! key once), `Mixed` (warm-up, then a timed window or a request count of
//! random GETs/SETs) and `Verify` (GET on every key written, to count lost
//! keys). A bitmap shared by the phases remembers which keys were written
//! successfully, so a GET that misses a written key counts as lost data.

pub mod conn;
pub mod keydist;
pub mod resp;
pub mod stats;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use self::conn::{run_connection, ConnSpec, Templates, Work};
use self::keydist::DistSpec;
use self::stats::Stats;

/// Controller phase: warming up, nothing counted.
pub const WARMUP: u8 = 0;
/// Controller phase: inside the timed window.
pub const MEASURE: u8 = 1;
/// Controller phase: stop after the current batch.
pub const STOP: u8 = 2;

/// Key names: `prefix` + the key index zero-padded to 12 digits, as
/// `redis-benchmark -r` does (`key:000000000042`, 16 bytes with the default prefix).
#[derive(Debug, Clone)]
pub struct KeySpace {
    /// Key prefix.
    pub prefix: Vec<u8>,
    /// Number of keys (`0..count`).
    pub count: u64,
}

/// Digits of the key index.
const KEY_DIGITS: usize = 12;

impl KeySpace {
    /// Key space of `count` keys named `prefix` + index.
    pub fn new(prefix: &str, count: u64) -> Self {
        KeySpace {
            prefix: prefix.as_bytes().to_vec(),
            count: count.max(1),
        }
    }

    /// Length in bytes of every key.
    pub fn key_len(&self) -> usize {
        self.prefix.len() + KEY_DIGITS
    }

    /// Appends the name of key `idx`.
    pub fn write_key(&self, dst: &mut Vec<u8>, idx: u64) {
        dst.extend_from_slice(&self.prefix);
        let mut digits = [b'0'; KEY_DIGITS];
        let mut v = idx;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        dst.extend_from_slice(&digits);
    }
}

/// One bit per key: was it written successfully?
#[derive(Debug)]
pub struct Bitmap {
    words: Vec<AtomicU64>,
}

impl Bitmap {
    /// All-clear bitmap for `n` keys.
    pub fn new(n: u64) -> Self {
        let words = n.div_ceil(64) as usize;
        Bitmap {
            words: (0..words).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Sets bit `k`.
    pub fn set(&self, k: u64) {
        if let Some(w) = self.words.get((k / 64) as usize) {
            w.fetch_or(1 << (k % 64), Ordering::Relaxed);
        }
    }

    /// Reads bit `k`.
    pub fn get(&self, k: u64) -> bool {
        self.words
            .get((k / 64) as usize)
            .is_some_and(|w| w.load(Ordering::Relaxed) & (1 << (k % 64)) != 0)
    }

    /// Number of set bits.
    pub fn count(&self) -> u64 {
        self.words
            .iter()
            .map(|w| u64::from(w.load(Ordering::Relaxed).count_ones()))
            .sum()
    }
}

/// State shared by the connections of one phase and its controller.
pub struct Control {
    /// WARMUP, MEASURE or STOP.
    pub phase: AtomicU8,
    /// Whether this phase has a warm-up (else everything is measured).
    pub has_warmup: bool,
    /// Requests still to send (counted phases), `i64::MAX` for timed ones.
    pub remaining: AtomicI64,
    /// Next key for Populate / Verify.
    pub cursor: AtomicU64,
    /// Requests answered so far (progress).
    pub done: AtomicU64,
    /// Connections still running.
    pub live: AtomicUsize,
    /// Keys written successfully (shared across phases).
    pub written: Arc<Bitmap>,
}

/// How long the mixed phase measures.
#[derive(Debug, Clone, Copy)]
pub enum Window {
    /// A timed window.
    Time(Duration),
    /// A number of requests.
    Requests(u64),
}

/// What a phase does.
#[derive(Debug, Clone)]
pub enum Phase {
    /// SET every key once.
    Populate,
    /// Random GET/SET load.
    Mixed {
        /// Key distribution.
        dist: DistSpec,
        /// Fraction of SETs.
        set_fraction: f64,
        /// Unmeasured warm-up time.
        warmup: Duration,
        /// Measured window.
        window: Window,
    },
    /// GET on every written key.
    Verify,
}

/// Connection-level settings of a load run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Server address (loopback).
    pub addr: SocketAddr,
    /// Parallel connections.
    pub connections: usize,
    /// Requests per batch on each connection.
    pub pipeline: usize,
    /// Key naming and count.
    pub keys: KeySpace,
    /// Value size of SETs.
    pub value_size: usize,
    /// Per-batch reply timeout.
    pub request_timeout: Duration,
    /// Longest a phase may run, whatever happens.
    pub phase_timeout: Duration,
    /// Draw progress bars (on a terminal).
    pub progress: bool,
    /// Random seed.
    pub seed: u64,
}

/// Result of one phase.
#[derive(Debug, Clone)]
pub struct PhaseReport {
    /// Merged counters and latencies (measured part only).
    pub stats: Stats,
    /// Length of the measured part.
    pub elapsed: Duration,
    /// False if the phase hit its time limit.
    pub completed: bool,
}

impl PhaseReport {
    /// Successful operations per second in the measured part.
    pub fn ops_per_sec(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.stats.ok as f64 / s
        } else {
            0.0
        }
    }
}

fn bar(len: u64, label: &str, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{prefix:>28} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
    {
        pb.set_style(style);
    }
    pb.set_prefix(label.to_string());
    pb
}

/// Runs one phase against `spec.addr`. `written` carries the set of keys
/// written successfully from one phase to the next.
pub async fn run_phase(
    spec: &LoadSpec,
    phase: &Phase,
    written: &Arc<Bitmap>,
    label: &str,
) -> Result<PhaseReport, String> {
    let start = Instant::now();
    let hard_deadline = start + spec.phase_timeout;
    let (work, has_warmup, remaining) = match phase {
        Phase::Populate => (Work::Populate, false, i64::MAX),
        Phase::Verify => (Work::Verify, false, i64::MAX),
        Phase::Mixed {
            dist,
            set_fraction,
            warmup,
            window,
        } => {
            let sampler = Arc::new(dist.build(spec.keys.count)?);
            let remaining = match window {
                Window::Time(_) => i64::MAX,
                Window::Requests(n) => i64::try_from(*n).unwrap_or(i64::MAX),
            };
            (
                Work::Mixed {
                    dist: sampler,
                    set_fraction: set_fraction.clamp(0.0, 1.0),
                },
                !warmup.is_zero() && matches!(window, Window::Time(_)),
                remaining,
            )
        }
    };
    let ctl = Arc::new(Control {
        phase: AtomicU8::new(WARMUP),
        has_warmup,
        remaining: AtomicI64::new(remaining),
        cursor: AtomicU64::new(0),
        done: AtomicU64::new(0),
        live: AtomicUsize::new(spec.connections.max(1)),
        written: Arc::clone(written),
    });
    let cspec = Arc::new(ConnSpec {
        addr: spec.addr,
        pipeline: spec.pipeline,
        keys: spec.keys.clone(),
        templates: Arc::new(Templates::new(&spec.keys, spec.value_size)),
        request_timeout: spec.request_timeout,
        hard_deadline,
        work,
    });
    let handles: Vec<_> = (0..spec.connections.max(1))
        .map(|i| {
            let seed = spec.seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
            tokio::spawn(run_connection(Arc::clone(&cspec), Arc::clone(&ctl), seed))
        })
        .collect();

    let tick = Duration::from_millis(100);
    let mut measure_start = start;
    let mut measure_end: Option<Instant> = None;
    let mut completed = true;
    match phase {
        Phase::Populate | Phase::Verify => {
            let pb = bar(spec.keys.count, label, spec.progress);
            while ctl.live.load(Ordering::Acquire) > 0 {
                if Instant::now() >= hard_deadline {
                    completed = false;
                    break;
                }
                tokio::time::sleep(tick).await;
                pb.set_position(ctl.cursor.load(Ordering::Relaxed).min(spec.keys.count));
            }
            pb.finish_and_clear();
        }
        Phase::Mixed { warmup, window, .. } => {
            if has_warmup {
                let until = start + *warmup;
                while Instant::now() < until && ctl.live.load(Ordering::Acquire) > 0 {
                    tokio::time::sleep(tick.min(until.saturating_duration_since(Instant::now())))
                        .await;
                }
                ctl.phase.store(MEASURE, Ordering::Release);
            }
            measure_start = Instant::now();
            let done_at_start = ctl.done.load(Ordering::Relaxed);
            match window {
                Window::Time(d) => {
                    let pb = bar(d.as_millis() as u64, label, spec.progress);
                    let until = (measure_start + *d).min(hard_deadline);
                    while Instant::now() < until && ctl.live.load(Ordering::Acquire) > 0 {
                        tokio::time::sleep(
                            tick.min(until.saturating_duration_since(Instant::now())),
                        )
                        .await;
                        let el = measure_start.elapsed();
                        pb.set_position(el.as_millis() as u64);
                        let ops = ctl.done.load(Ordering::Relaxed) - done_at_start;
                        pb.set_message(format!("{:.0} req/s", ops as f64 / el.as_secs_f64()));
                    }
                    pb.finish_and_clear();
                    measure_end = Some(Instant::now());
                    ctl.phase.store(STOP, Ordering::Release);
                }
                Window::Requests(n) => {
                    let pb = bar(*n, label, spec.progress);
                    while ctl.live.load(Ordering::Acquire) > 0 {
                        if Instant::now() >= hard_deadline {
                            completed = false;
                            break;
                        }
                        tokio::time::sleep(tick).await;
                        pb.set_position(ctl.done.load(Ordering::Relaxed));
                    }
                    pb.finish_and_clear();
                }
            }
        }
    }
    ctl.phase.store(STOP, Ordering::Release);
    let mut total = Stats::new();
    let grace = spec.request_timeout + Duration::from_secs(1);
    for h in handles {
        let abort = h.abort_handle();
        match tokio::time::timeout(grace, h).await {
            Ok(Ok(s)) => total.merge(&s),
            Ok(Err(e)) => total.note_error(0, || format!("connection task failed: {e}")),
            Err(_) => {
                abort.abort();
                completed = false;
            }
        }
    }
    let end = measure_end.unwrap_or_else(Instant::now);
    Ok(PhaseReport {
        stats: total,
        elapsed: end.saturating_duration_since(measure_start),
        completed,
    })
}

/// Builds the tokio runtime the generator runs on: `threads` workers.
/// Always the multi-thread scheduler, even for one worker: measured here,
/// the current-thread scheduler drove 50 pipelined connections at well under
/// half the rate (it polls the I/O driver less eagerly between task runs).
pub fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_fixed_width() {
        let ks = KeySpace::new("key:", 100);
        let mut v = Vec::new();
        ks.write_key(&mut v, 42);
        assert_eq!(v, b"key:000000000042");
        assert_eq!(ks.key_len(), 16);
    }

    #[test]
    fn bitmap_counts() {
        let b = Bitmap::new(130);
        b.set(0);
        b.set(129);
        b.set(129);
        assert!(b.get(129) && !b.get(128));
        assert_eq!(b.count(), 2);
        assert!(!b.get(10_000));
    }
}
