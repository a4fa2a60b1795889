//! Per-thread stripes for state every command touches: counters and the
//! keyspace gate.
//!
//! A counter or lock word that every command of every worker thread writes
//! moves its cache line between the cores on each write; profiles of
//! pipelined GETs showed those few shared words (the command counter, the
//! command's call statistics, the gate's reader count) costing more than the
//! key lookup itself. Here each thread writes its own stripe, and the rare
//! reader (`INFO`, `EXEC` taking the gate alone) visits every stripe.
//!
//! A long-lived thread that runs commands (a connection thread) may also
//! *own* its stripe ([`own_stripe`]): no other thread writes it, so its
//! counters are bumped with a plain load and store instead of a locked
//! read-modify-write. Profiles of pipelined pushes showed the handful of
//! locked adds per command (call statistics, latency histogram, command
//! and `dirty` counters) at about 5% of the server's CPU: each costs some
//! twenty cycles even uncontended, which Redis's single thread never pays.
//!
//! Written by hand because it is a few lines over `std` and `parking_lot`
//! (crossbeam's `CachePadded` would be the only part borrowed).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Number of stripes: enough that the few threads running commands (the
/// runtime's workers, one per core) rarely share one.
pub const STRIPES: usize = 16;

/// Stripes `0..OWNED` are for threads that own theirs ([`own_stripe`]);
/// every other thread shares the rest in turn.
const OWNED: usize = 8;

/// One value alone on its cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Padded<T>(T);

/// Owned stripes handed out so far (some may be past [`OWNED`]).
static NEXT_OWNED: AtomicUsize = AtomicUsize::new(0);
/// Shared stripes handed out so far.
static NEXT_SHARED: AtomicUsize = AtomicUsize::new(0);

/// A thread's stripe: its index, and whether the thread owns it.
#[derive(Clone, Copy)]
struct Slot {
    index: usize,
    owned: bool,
}

thread_local! {
    static SLOT: Cell<Option<Slot>> = const { Cell::new(None) };
}

/// The calling thread's stripe: threads take shared stripes in turn on
/// first use, unless they own one.
fn slot() -> Slot {
    SLOT.with(|s| match s.get() {
        Some(slot) => slot,
        None => {
            let index = OWNED + NEXT_SHARED.fetch_add(1, Ordering::Relaxed) % (STRIPES - OWNED);
            let slot = Slot {
                index,
                owned: false,
            };
            s.set(Some(slot));
            slot
        }
    })
}

/// The calling thread's stripe index.
pub fn stripe() -> usize {
    slot().index
}

/// Makes the calling thread the only writer of a stripe of its own, if one
/// is left and it has not used a shared one yet; returns whether it does.
/// Meant for threads that live as long as the process and run commands
/// (a thread that ends keeps its stripe: its counts stay in the sums).
pub fn own_stripe() -> bool {
    SLOT.with(|s| {
        if let Some(slot) = s.get() {
            return slot.owned;
        }
        let index = NEXT_OWNED.fetch_add(1, Ordering::Relaxed);
        let owned = index < OWNED;
        let index = if owned {
            index
        } else {
            OWNED + NEXT_SHARED.fetch_add(1, Ordering::Relaxed) % (STRIPES - OWNED)
        };
        s.set(Some(Slot { index, owned }));
        owned
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

/// `K` counters many threads add to and few read, striped: what
/// `INFO`'s statistics are made of.
#[derive(Debug)]
pub struct Counters<const K: usize> {
    stripes: Striped<[AtomicU64; K]>,
    /// The sums at the last [`Counters::reset`]: a reset cannot store zeros
    /// into an owned stripe (its owner's next plain store would bring the
    /// old count back), so it moves the origin instead.
    origin: [AtomicU64; K],
}

impl<const K: usize> Default for Counters<K> {
    fn default() -> Self {
        Counters {
            stripes: Striped {
                cells: std::array::from_fn(|_| Padded(std::array::from_fn(|_| AtomicU64::new(0)))),
            },
            origin: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl<const K: usize> Counters<K> {
    /// Adds `n` to counter `i` (ignored when `i` is out of range).
    #[inline]
    pub fn add(&self, i: usize, n: u64) {
        let slot = slot();
        let Some(c) = self.stripes.cells[slot.index % STRIPES].0.get(i) else {
            return;
        };
        if slot.owned {
            // Only this thread writes this stripe: no locked instruction.
            c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
        } else {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Counter `i`'s sum over every stripe since the last reset.
    pub fn get(&self, i: usize) -> u64 {
        self.sum(i)
            .wrapping_sub(self.origin.get(i).map_or(0, |o| o.load(Ordering::Relaxed)))
    }

    /// Every counter, as [`Counters::get`] gives them.
    pub fn all(&self) -> [u64; K] {
        std::array::from_fn(|i| self.get(i))
    }

    fn sum(&self, i: usize) -> u64 {
        self.stripes.all().fold(0u64, |s, c| {
            s.wrapping_add(c.get(i).map_or(0, |c| c.load(Ordering::Relaxed)))
        })
    }

    /// Sets every counter back to zero (`CONFIG RESETSTAT`; adds racing
    /// with it may count before or after it, as with one atomic).
    pub fn reset(&self) {
        for (i, o) in self.origin.iter().enumerate() {
            o.store(self.sum(i), Ordering::Relaxed);
        }
    }
}

/// A counter many threads add to and few read.
#[derive(Debug, Default)]
pub struct Counter(Counters<1>);

impl Counter {
    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.add(0, n);
    }

    /// The sum over every stripe.
    pub fn get(&self) -> u64 {
        self.0.get(0)
    }

    /// Sets the counter back to zero (`CONFIG RESETSTAT`).
    pub fn reset(&self) {
        self.0.reset();
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

    /// Takes the gate shared, waiting in slices of `slice`; after each
    /// slice that did not get it, `give_up` decides whether to stop
    /// waiting (then `None`). For a waiter that must notice something
    /// while it waits (a script running past `busy-reply-threshold`).
    pub fn shared_unless(
        &self,
        slice: Duration,
        mut give_up: impl FnMut() -> bool,
    ) -> Option<SharedGate<'_>> {
        let lock = self.0.local();
        loop {
            if let Some(g) = lock.try_read_for(slice) {
                return Some(g);
            }
            if give_up() {
                return None;
            }
        }
    }

    /// Takes the gate alone as [`Gate::exclusive`], waiting for each stripe
    /// in slices of `slice` as [`Gate::shared_unless`]; the stripes
    /// already taken are kept between slices (so readers arriving meanwhile
    /// cannot overtake it there) and released when it gives up.
    pub fn exclusive_unless(
        &self,
        slice: Duration,
        mut give_up: impl FnMut() -> bool,
    ) -> Option<ExclusiveGate<'_>> {
        let mut stripes = Vec::with_capacity(STRIPES);
        for lock in self.0.all() {
            loop {
                if let Some(g) = lock.try_write_for(slice) {
                    stripes.push(g);
                    break;
                }
                if give_up() {
                    return None;
                }
            }
        }
        Some(ExclusiveGate { _stripes: stripes })
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
    fn owners_and_sharers_add_up_and_reset_moves_the_origin() {
        let c = Arc::new(Counters::<2>::default());
        // A few threads own their stripe (plain stores), more share
        // stripes (locked adds); both kinds run at once.
        let threads: Vec<_> = (0..12)
            .map(|t| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    if t % 3 == 0 {
                        own_stripe();
                    }
                    for _ in 0..10_000 {
                        c.add(0, 1);
                        c.add(1, 3);
                    }
                    c.add(2, 1); // out of range: ignored
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.all(), [120_000, 360_000]);
        c.reset();
        assert_eq!(c.all(), [0, 0]);
        // An owner's counts after the reset count from the new origin.
        let c2 = Arc::clone(&c);
        std::thread::spawn(move || {
            own_stripe();
            c2.add(1, 5);
        })
        .join()
        .unwrap();
        assert_eq!(c.all(), [0, 5]);
    }

    #[test]
    fn a_thread_owns_a_stripe_only_before_it_used_one() {
        std::thread::spawn(|| {
            let _ = stripe();
            // Already on a shared stripe: it stays there.
            assert!(!own_stripe());
            assert!(stripe() >= OWNED);
        })
        .join()
        .unwrap();
        std::thread::spawn(|| {
            let owned = own_stripe();
            // Asking again answers the same, and the stripe is in the
            // owned range exactly when owned.
            assert_eq!(own_stripe(), owned);
            assert_eq!(stripe() < OWNED, owned);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn timed_waits_give_up_when_asked_and_take_the_gate_once_free() {
        let gate = Arc::new(Gate::default());
        let slice = std::time::Duration::from_millis(5);
        let w = gate.exclusive();
        // Held alone elsewhere: each wait asks after every slice, and
        // stops when told to.
        let g = Arc::clone(&gate);
        let asked = std::thread::spawn(move || {
            let mut asked = 0;
            let got = g.shared_unless(slice, || {
                asked += 1;
                asked == 3
            });
            let shared_got = got.is_some();
            drop(got);
            let mut asked_alone = 0;
            let alone = g.exclusive_unless(slice, || {
                asked_alone += 1;
                asked_alone == 2
            });
            (shared_got, asked, alone.is_some(), asked_alone)
        })
        .join()
        .expect("waiter");
        assert_eq!(asked, (false, 3, false, 2));
        drop(w);
        // Free: both take it without asking.
        let mut asked = 0;
        let shared = gate.shared_unless(slice, || {
            asked += 1;
            true
        });
        assert!(shared.is_some());
        drop(shared);
        let alone = gate.exclusive_unless(slice, || {
            asked += 1;
            true
        });
        assert!(alone.is_some());
        assert_eq!(asked, 0);
        // And the exclusive wait really excludes a reader.
        let g = Arc::clone(&gate);
        let blocked = std::thread::spawn(move || g.shared_unless(slice, || true).is_none())
            .join()
            .expect("reader");
        assert!(blocked);
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
