//! Space behind the arena file: reserving each segment before its first
//! append, ahead of time when possible.
//!
//! The arena file is sparse, and a store into a hole of a shared mapping
//! that the file system cannot back (a full `/dev/shm`, a full disk) kills
//! the process with SIGBUS. So a segment's space is reserved
//! ([`Medium::reserve`](crate::persist::Medium::reserve)) before it takes
//! data. A segment the file system refuses goes to the *unbacked* list:
//! off the free list, not counted as free, so the arena fills earlier and
//! writes get `-OOM`; [`Arena::retry_unbacked`] asks again later.
//!
//! Reserving a 4 MiB segment on a tmpfs maps and zeroes 4 MiB (about a
//! millisecond). Done by the append that opens the segment, it stalled that
//! append's lane and shard and doubled p99 latency at 8x the DRAM budget.
//! So a background thread, the *reserver*, keeps the first few segments of
//! the free list reserved before any lane needs them; a lane reserves
//! inline only when it outruns the reserver. A segment once reserved stays
//! reserved for the life of the file (the arena never punches holes), so a
//! flag per segment says whether the call can be skipped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::{Arena, Inner};
use crate::{Error, Result};

/// How often [`Arena::retry_unbacked`] asks the file system again (a
/// refused `fallocate` on a nearly full tmpfs allocates pages up to the
/// limit before giving them back: not something to do every 10 ms).
const UNBACKED_RETRY_EVERY: Duration = Duration::from_secs(1);

/// How long the reserver sleeps when no lane wakes it.
const RESERVER_TICK: Duration = Duration::from_millis(100);

/// Segments the reserver keeps reserved at the head of the free list. Lanes
/// fill their segments at different times, so a couple ready is enough for
/// the reserver (woken by every segment taken) to stay ahead; each costs
/// its size in file-system space before it holds data.
const RESERVE_AHEAD: usize = 2;

/// Free segments the file system could not back, and when to ask again.
#[derive(Debug, Default)]
struct Unbacked {
    segs: Vec<u32>,
    retry_at: Option<Instant>,
}

/// The arena's bookkeeping of file-system space.
#[derive(Debug)]
pub(super) struct Space {
    /// Per segment: its space was reserved during this process's life.
    reserved: Box<[AtomicBool]>,
    unbacked: Mutex<Unbacked>,
    /// Set to stop the reserver.
    stop: Mutex<bool>,
    /// Wakes the reserver (a lane took a segment, or stop).
    wake: Condvar,
}

impl Space {
    /// Bookkeeping for `segments` segments, none reserved yet.
    pub(super) fn new(segments: usize) -> Space {
        Space {
            reserved: (0..segments).map(|_| AtomicBool::new(false)).collect(),
            unbacked: Mutex::new(Unbacked::default()),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        }
    }

    /// Free segments the file system could not back.
    pub(super) fn unbacked_count(&self) -> usize {
        self.unbacked.lock().segs.len()
    }

    /// Stops the reserver (it exits at its next wake-up).
    pub(super) fn stop(&self) {
        *self.stop.lock() = true;
        self.wake.notify_all();
    }

    fn is_reserved(&self, seg: u32) -> bool {
        self.reserved
            .get(seg as usize)
            .is_some_and(|r| r.load(Ordering::Acquire))
    }

    fn mark_reserved(&self, seg: u32) {
        if let Some(r) = self.reserved.get(seg as usize) {
            r.store(true, Ordering::Release);
        }
    }
}

impl Inner {
    /// Reserves `span` segments from `first` unless already reserved.
    fn reserve_segments(&self, first: u32, span: u32) -> Result<()> {
        if (first..first + span).all(|s| self.space.is_reserved(s)) {
            return Ok(());
        }
        let bytes = u64::from(span) * self.segment_size;
        self.medium.reserve(self.seg_base(first), bytes)?;
        for s in first..first + span {
            self.space.mark_reserved(s);
        }
        Ok(())
    }

    /// Takes a free segment off the free list (leaving the compaction
    /// reserve unless `compaction`) whose space the file system backs: a
    /// segment it cannot back goes to the unbacked list and the next is
    /// tried. Wakes the reserver to prepare the next ones.
    pub(super) fn take_segment(&self, compaction: bool) -> Result<u32> {
        let mut refused = 0usize;
        let result = loop {
            let seg = {
                let mut free = self.free.lock();
                if !compaction && free.len() <= self.reserve {
                    break Err(Error::ArenaFull);
                }
                match free.pop_front() {
                    Some(seg) => seg,
                    None => break Err(Error::ArenaFull),
                }
            };
            match self.reserve_segments(seg, 1) {
                Ok(()) => break Ok(seg),
                Err(Error::ArenaFull) => {
                    self.space.unbacked.lock().segs.push(seg);
                    refused += 1;
                }
                Err(e) => {
                    self.free.lock().push_front(seg);
                    break Err(e);
                }
            }
        };
        self.space.wake.notify_one();
        if refused > 0 {
            tracing::warn!(
                "arena: the file system holding the arena is full: {refused} free segments \
                 cannot be used until space is freed beside it (writes that need them get OOM)"
            );
        }
        result
    }

    /// Reserves the run of `span` segments from `first` just taken off the
    /// free list for an extent; on a refusal the run goes back to the free
    /// list.
    pub(super) fn reserve_run(&self, first: u32, span: u32) -> Result<()> {
        if let Err(e) = self.reserve_segments(first, span) {
            self.free.lock().extend(first..first + span);
            return Err(e);
        }
        Ok(())
    }

    /// The reserver thread: keeps the head of the free list reserved, so a
    /// lane that opens a segment finds it ready. Stops at the first refusal
    /// (`take_segment` deals with full file systems).
    pub(super) fn reserver_loop(self: Arc<Inner>) {
        let mut stop = self.space.stop.lock();
        loop {
            if *stop {
                return;
            }
            let _ = self.space.wake.wait_for(&mut stop, RESERVER_TICK);
            if *stop {
                return;
            }
            drop(stop);
            let next: Vec<u32> = self
                .free
                .lock()
                .iter()
                .take(RESERVE_AHEAD)
                .copied()
                .collect();
            for seg in next {
                if self.space.is_reserved(seg) {
                    continue;
                }
                if self.reserve_segments(seg, 1).is_err() {
                    break;
                }
            }
            stop = self.space.stop.lock();
        }
    }
}

impl Arena {
    /// Gives the file system another chance to back the segments it had
    /// no space for (space may have been freed beside the arena since):
    /// each one it now backs returns to the free list. Stops at the first
    /// refusal, and asks at most once a second. Returns how many came back.
    /// Cheap when there are none; the server calls it with its periodic
    /// memory-pressure check.
    pub fn retry_unbacked(&self) -> usize {
        let inner = &self.inner;
        {
            let mut u = inner.space.unbacked.lock();
            let now = Instant::now();
            if u.segs.is_empty() || u.retry_at.is_some_and(|t| now < t) {
                return 0;
            }
            u.retry_at = Some(now + UNBACKED_RETRY_EVERY);
        }
        let mut back = 0;
        loop {
            let Some(seg) = inner.space.unbacked.lock().segs.pop() else {
                break;
            };
            if inner.reserve_segments(seg, 1).is_ok() {
                inner.free.lock().push_back(seg);
                back += 1;
            } else {
                inner.space.unbacked.lock().segs.push(seg);
                break;
            }
        }
        if back > 0 {
            tracing::info!("arena: the file system backs {back} more segments again");
        }
        back
    }
}
