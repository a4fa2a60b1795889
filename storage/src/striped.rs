//! Per-thread stripes for state every command touches: counters and the
//! keyspace gate.
//!
//! A counter or lock word that every command of every worker thread writes
//! moves its cache line between the cores on each write; profiles of
//! pipelined GETs showed those few shared words (the command counter, the
//! command's call statistics, the gate's reader count) costing more than the
//! key lookup itself. Here each thread writes its own stripe, and the rare
//! reader (`INFO`, `EXEC` taking the gate alone) visits every stripe.
//! Written by hand because it is a few lines over `std` and `parking_lot`
//! (crossbeam's `CachePadded` would be the only part borrowed).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Number of stripes: enough that the few threads running commands (the
/// runtime's workers, one per core) rarely share one.
pub const STRIPES: usize = 16;

/// One value alone on its cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Padded<T>(T);

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The calling thread's stripe: threads take stripes in turn on first use.
pub fn stripe() -> usize {
    STRIPE.with(|s| match s.get() {
        Some(i) => i,
        None => {
            let i = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
            s.set(Some(i));
            i
        }
    })
}

/// A value kept once per stripe.
#[derive(Debug)]
pub struct Striped<T> {
    cells: [Padded<T>; STRIPES],
}

impl<T: Default> Default for Striped<T> {
    fn default() -> Self {
        Striped {
            cells: std::array::from_fn(|_| Padded::default()),
        }
    }
}

impl<T> Striped<T> {
    /// The calling thread's copy.
    pub fn local(&self) -> &T {
        &self.cells[stripe() % STRIPES].0
    }

    /// Every stripe's copy.
    pub fn all(&self) -> impl Iterator<Item = &T> {
        self.cells.iter().map(|c| &c.0)
    }
}

/// A counter many threads add to and few read.
#[derive(Debug, Default)]
pub struct Counter(Striped<AtomicU64>);

impl Counter {
    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.local().fetch_add(n, Ordering::Relaxed);
    }

    /// The sum over every stripe.
    pub fn get(&self) -> u64 {
        self.0
            .all()
            .fold(0u64, |s, c| s.wrapping_add(c.load(Ordering::Relaxed)))
    }

    /// Sets the counter back to zero (`CONFIG RESETSTAT`; adds racing with
    /// it may survive, as with one atomic).
    pub fn reset(&self) {
        for c in self.0.all() {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// A reader-writer gate whose readers each take their own stripe: readers
/// never share a lock word; a writer takes every stripe, in order.
#[derive(Debug, Default)]
pub struct Gate(Striped<RwLock<()>>);

/// The gate held shared (one stripe).
pub type SharedGate<'a> = RwLockReadGuard<'a, ()>;

/// The gate held alone (every stripe).
pub struct ExclusiveGate<'a> {
    _stripes: Vec<RwLockWriteGuard<'a, ()>>,
}

impl Gate {
    /// Takes the gate shared.
    pub fn shared(&self) -> SharedGate<'_> {
        self.0.local().read()
    }

    /// Takes the gate shared if that needs no wait (no exclusive holder).
    pub fn try_shared(&self) -> Option<SharedGate<'_>> {
        self.0.local().try_read()
    }

    /// Takes the gate alone: waits for every reader, on every stripe.
    pub fn exclusive(&self) -> ExclusiveGate<'_> {
        ExclusiveGate {
            _stripes: self.0.all().map(|l| l.write()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counter_sums_adds_from_many_threads() {
        let c = Arc::new(Counter::default());
        let threads: Vec<_> = (0..24)
            .map(|_| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.add(2);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.get(), 48_000);
        c.reset();
        assert_eq!(c.get(), 0);
    }

    #[test]
    fn exclusive_waits_for_a_reader_on_another_stripe() {
        let gate = Arc::new(Gate::default());
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let g = Arc::clone(&gate);
        let reader = std::thread::spawn(move || {
            let _r = g.shared();
            held_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        });
        held_rx.recv().unwrap();
        let g = Arc::clone(&gate);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let writer = std::thread::spawn(move || {
            let _w = g.exclusive();
            done_tx.send(()).unwrap();
        });
        // The writer cannot get in while the reader holds its stripe.
        assert!(done_rx
            .recv_timeout(std::time::Duration::from_millis(200))
            .is_err());
        release_tx.send(()).unwrap();
        done_rx.recv().unwrap();
        reader.join().unwrap();
        writer.join().unwrap();
        // And a reader waits for a writer.
        let w = gate.exclusive();
        let g = Arc::clone(&gate);
        let (got_tx, got_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let _r = g.shared();
            got_tx.send(()).unwrap();
        });
        assert!(got_rx
            .recv_timeout(std::time::Duration::from_millis(200))
            .is_err());
        drop(w);
        got_rx.recv().unwrap();
        reader.join().unwrap();
    }
}
