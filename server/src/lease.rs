//! Batch leases: pipelined batches whose keys all live in one shard take
//! turns as whole batches instead of command by command.
//!
//! # Why
//!
//! Many clients pipelining commands on one key (a queue's list, a
//! leaderboard's sorted set: every test of `redis-benchmark -t
//! lpush,zadd,...`) all need one shard's lock. With a worker thread per
//! core, two batches on that shard interleave per command: the lock and
//! the value's cache lines move between the cores for every command, and
//! when a command holds the lock long (a sorted-set update), the other
//! thread sleeps in the kernel and is woken again (measured: 160 context
//! switches per 1,000 `ZADD`s, and twice Redis's CPU per request, where one
//! worker thread needed 30% less).
//!
//! Holding the shard's mutex across a batch was tried and lost (see
//! bench/RESULTS.md, "Shard lock kept across a pipelined batch"): the
//! other thread then slept for a whole batch instead. A lease is taken
//! *before* the batch runs, asynchronously: a connection that finds it
//! taken yields its worker thread, which meanwhile reads, parses and
//! answers other connections; its batch then runs with the shard's lock
//! uncontended and the value in the local cache.
//!
//! A lease is a scheduling hint, not a data lock: every command still takes
//! its shard locks as before (a leased batch may hold any command, another
//! connection's single command on the shard does not take the lease), and
//! it is held only while the batch executes, never across an `.await`
//! other than its own acquisition, so it cannot deadlock with the locks.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};

/// Leases, shared by all (database, shard) pairs by hashing: two shards
/// on one slot only take turns needlessly when both see single-shard
/// batches at once.
const SLOTS: usize = 1024;

/// A batch is worth a lease when leased batches on its shard take at least
/// this long to run (a running average). Measured here (bench/RESULTS.md):
/// `ZADD` and `HSET` batches of 16 on one key, well above it, gain 13-22%
/// CPU per request; `LPUSH` and `SPOP` batches, below it, lost up to 13%
/// of their throughput when always leased.
const WORTH_NS: u32 = 8_000;

/// A connection whose batches are not worth a lease takes one anyway every
/// this many batches, to measure again.
pub const PROBE_EVERY: u32 = 64;

/// The server's batch leases.
pub struct BatchLeases {
    slots: Box<[Slot]>,
}

/// One lease and what its batches cost.
pub struct Slot {
    lock: Mutex<()>,
    /// Running average (7/8 old, 1/8 new) of leased batches' run time, ns.
    cost_ns: AtomicU32,
}

impl Default for BatchLeases {
    fn default() -> Self {
        BatchLeases {
            slots: (0..SLOTS)
                .map(|_| Slot {
                    lock: Mutex::new(()),
                    cost_ns: AtomicU32::new(0),
                })
                .collect(),
        }
    }
}

impl BatchLeases {
    /// The lease of shard `shard` of database `db`.
    pub fn slot(&self, db: usize, shard: usize) -> &Slot {
        let i = db.wrapping_mul(0x9E37_79B9).wrapping_add(shard) % self.slots.len();
        &self.slots[i]
    }
}

impl Slot {
    /// Whether batches on this shard run long enough for a lease to pay
    /// (a lease that is waited for costs a task switch and a wake-up, more
    /// than per-command turns on the lock for short commands).
    pub fn worth_it(&self) -> bool {
        self.cost_ns.load(Ordering::Relaxed) >= WORTH_NS
    }

    /// Waits for the lease (FIFO among the batches waiting for it) and
    /// returns it; it is given back when the guard drops.
    pub async fn acquire(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().await
    }

    /// Notes how long a leased batch took to run.
    pub fn record(&self, took: Duration) {
        let new = u32::try_from(took.as_nanos()).unwrap_or(u32::MAX);
        let old = self.cost_ns.load(Ordering::Relaxed);
        let avg = (u64::from(old) * 7 + u64::from(new)) / 8;
        self.cost_ns.store(avg as u32, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_batch_at_a_time_per_shard_and_others_pass() {
        let leases = Arc::new(BatchLeases::default());
        let first = leases.slot(0, 7).acquire().await;
        // Another shard is not held up.
        drop(leases.slot(0, 8).acquire().await);
        // The same shard waits until the first lease is given back.
        let l2 = leases.clone();
        let waiter = tokio::spawn(async move {
            drop(l2.slot(0, 7).acquire().await);
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "took a held lease");
        drop(first);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken when the lease was given back")
            .expect("no panic");
    }

    #[test]
    fn only_long_batches_are_worth_a_lease() {
        let leases = BatchLeases::default();
        let slot = leases.slot(1, 3);
        for _ in 0..64 {
            slot.record(Duration::from_micros(1));
        }
        assert!(!slot.worth_it());
        for _ in 0..64 {
            slot.record(Duration::from_micros(50));
        }
        assert!(slot.worth_it());
    }
}
