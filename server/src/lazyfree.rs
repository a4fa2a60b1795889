//! Freeing big values off the command path (Redis's `lazyfree.c`): `UNLINK`
//! (and `DEL` with `lazyfree-lazy-user-del yes`) removes the key at once
//! and hands a value that is costly to free to a background thread, so a
//! set of ten million members does not hold its connection thread while
//! its memory goes back; `FLUSHALL`/`FLUSHDB ASYNC` hand it the flushed
//! databases (counted by their keys, as Redis counts them). `INFO memory` counts what is queued
//! (`lazyfree_pending_objects`) and what was freed so
//! (`lazyfreed_objects`), as Redis does.
//!
//! Written by hand: a channel and one thread that drops what it receives;
//! no crate does less.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Mutex;

use amber_storage::{Flushed, Value};

/// Values whose free effort is above this go to the background thread
/// (Redis's `LAZYFREE_THRESHOLD`).
pub const THRESHOLD: usize = 64;

/// Bytes per node of a list Redis keeps as a quicklist (its
/// `list-max-listpack-size -2` default: 8 KB listpacks).
const QUICKLIST_NODE_BYTES: usize = 8 * 1024;

/// Something for the thread to drop, and how many objects it counts as.
struct Job {
    garbage: Box<dyn Send>,
    objects: u64,
}

/// The background freeing thread and its counters.
#[derive(Default)]
pub struct LazyFree {
    /// The thread's inbox, started on first use.
    inbox: Mutex<Option<Sender<Job>>>,
    /// Values queued and not yet freed.
    pending: std::sync::Arc<AtomicU64>,
    /// Values freed by the thread since the last `CONFIG RESETSTAT`.
    freed: std::sync::Arc<AtomicU64>,
}

/// What freeing `v` costs, in allocations, as Redis's
/// `lazyfreeGetFreeEffort` estimates it: one for a string or a compact
/// (listpack, intset) collection; its elements for a hash table or skip
/// list; its nodes for a quicklist (estimated from its size) or a stream
/// (radix tree nodes, plus each consumer group and its pending entries).
pub fn effort(v: &Value) -> usize {
    match v {
        Value::Str(_) => 1,
        Value::List(l) if l.encoding() == "quicklist" => {
            l.mem_usage().div_ceil(QUICKLIST_NODE_BYTES).max(1)
        }
        Value::Set(s) if s.encoding() == "hashtable" => s.len(),
        Value::Hash(h) if h.encoding() == "hashtable" => h.len(),
        Value::ZSet(z) if z.encoding() == "skiplist" => z.len(),
        Value::Stream(s) => {
            let groups = s.groups();
            let pel = groups.values().next().map_or(0, |g| g.pel.len());
            s.rax_nodes() + groups.len() * (1 + pel)
        }
        _ => 1,
    }
}

impl LazyFree {
    /// Frees `v`: on the background thread when that is worth it (see
    /// [`effort`]), here otherwise.
    pub fn free(&self, v: Value) {
        if effort(&v) <= THRESHOLD {
            return;
        }
        self.send(Box::new(v), 1);
    }

    /// Frees flushed databases on the background thread (`ASYNC`),
    /// counting each of their keys.
    pub fn free_flushed(&self, flushed: Flushed) {
        let keys = flushed.len() as u64;
        if keys > 0 {
            self.send(Box::new(flushed), keys);
        }
    }

    fn send(&self, garbage: Box<dyn Send>, objects: u64) {
        let mut inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
        if inbox.is_none() {
            *inbox = self.start();
        }
        let Some(tx) = inbox.as_ref() else {
            // No thread: freed here, when `garbage` goes.
            return;
        };
        self.pending.fetch_add(objects, Ordering::Relaxed);
        if tx.send(Job { garbage, objects }).is_err() {
            // The thread is gone: freed here after all.
            self.pending.fetch_sub(objects, Ordering::Relaxed);
        }
    }

    /// Starts the thread; `None` (and values freed in place) if it cannot.
    fn start(&self) -> Option<Sender<Job>> {
        let (tx, rx) = channel::<Job>();
        let (pending, freed) = (self.pending.clone(), self.freed.clone());
        let spawned = std::thread::Builder::new()
            .name("amber-lazyfree".into())
            .spawn(move || {
                for job in rx {
                    drop(job.garbage);
                    pending.fetch_sub(job.objects, Ordering::Relaxed);
                    freed.fetch_add(job.objects, Ordering::Relaxed);
                }
            });
        match spawned {
            Ok(_) => Some(tx),
            Err(e) => {
                tracing::warn!("cannot start the lazyfree thread: {e}");
                None
            }
        }
    }

    /// `lazyfree_pending_objects`.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// `lazyfreed_objects`.
    pub fn freed(&self) -> u64 {
        self.freed.load(Ordering::Relaxed)
    }

    /// `CONFIG RESETSTAT` (Redis's `lazyfreeResetStats`).
    pub fn reset(&self) {
        self.freed.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_costly_values_go_to_the_thread_and_are_counted() {
        let lf = LazyFree::default();
        lf.free(Value::Str(amber_storage::StrValue::new(b"x".to_vec())));
        assert_eq!((lf.pending(), lf.freed()), (0, 0));
        let mut set = amber_storage::types::SetValue::default();
        for i in 0..1000 {
            set.add(format!("member:{i}").as_bytes(), 512);
        }
        let set = Value::from(set);
        assert!(effort(&set) > THRESHOLD, "{}", effort(&set));
        lf.free(set);
        let start = std::time::Instant::now();
        while lf.freed() == 0 && start.elapsed() < std::time::Duration::from_secs(5) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!((lf.pending(), lf.freed()), (0, 1));
        lf.reset();
        assert_eq!(lf.freed(), 0);
    }
}
