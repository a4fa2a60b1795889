//! The end of a connection thread's round: pipelined replies leave
//! together, after every connection that was ready has run its batch, as
//! Redis writes its clients' replies in `beforeSleep`.
//!
//! # Why not `tokio::task::yield_now`
//!
//! A connection used to yield before writing a pipelined batch's replies.
//! tokio defers a yielded task until the runtime has polled its sockets
//! again, so each round of a connection thread's loop cost two
//! `epoll_wait` calls instead of one (bench/RESULTS.md: 3.4 times as many as
//! Redis on one hot list), and the extra poll let connections that became
//! ready meanwhile run before the round's replies left.
//!
//! Here a connection instead waits for the thread's *flusher*, a task each
//! connection thread runs: the first connection to wait wakes it, which
//! puts it behind every connection already queued in this round; when it
//! runs it releases all the waiting connections at once, and they write.
//! No poll of the sockets happens in between.
//!
//! Everything is thread-local: a connection thread's tasks never leave it
//! (`crate::cores`). On a thread without a flusher (a runtime that is no
//! connection thread, such as the unit tests'), [`end_of_round`] is a plain
//! `yield_now`.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// One connection thread's waiting connections and flusher.
#[derive(Default)]
struct Round {
    /// Incremented each time the flusher releases the waiting connections.
    released: u64,
    /// The connections waiting for the end of this round.
    waiting: Vec<Waker>,
    /// The flusher, while it sleeps; `None` while it is queued or running,
    /// and on threads without one.
    flusher: Option<Waker>,
    /// Whether this thread runs a flusher at all.
    has_flusher: bool,
}

thread_local! {
    static ROUND: RefCell<Round> = RefCell::new(Round::default());
}

/// Starts the calling connection thread's flusher, which runs for as long
/// as the thread's runtime does. Call it once per connection thread, from
/// inside its runtime.
pub fn spawn_flusher() {
    ROUND.with(|r| r.borrow_mut().has_flusher = true);
    tokio::spawn(flusher());
}

/// The flusher's loop (see the module's doc).
async fn flusher() {
    let _gone = FlusherGone;
    poll_fn(|cx| {
        ROUND.with(|r| {
            let mut r = r.borrow_mut();
            r.release();
            r.flusher = Some(cx.waker().clone());
        });
        Poll::<()>::Pending
    })
    .await
}

impl Round {
    /// Lets every waiting connection go on.
    fn release(&mut self) {
        if !self.waiting.is_empty() {
            self.released += 1;
            for waker in self.waiting.drain(..) {
                waker.wake();
            }
        }
    }
}

/// Dropped with the flusher (its runtime shuts down): the connections
/// still waiting go on, and later ones only yield.
struct FlusherGone;

impl Drop for FlusherGone {
    fn drop(&mut self) {
        // `try_with`: the thread may be exiting, its locals gone.
        let _ = ROUND.try_with(|r| {
            if let Ok(mut r) = r.try_borrow_mut() {
                r.release();
                r.flusher = None;
                r.has_flusher = false;
            }
        });
    }
}

/// Completes once every connection that is ready in this round of the
/// thread's loop has run (see the module's doc).
pub async fn end_of_round() {
    if !ROUND.with(|r| r.borrow().has_flusher) {
        tokio::task::yield_now().await;
        return;
    }
    EndOfRound { joined: None }.await
}

/// The future [`end_of_round`] waits on.
struct EndOfRound {
    /// The release count when this connection joined the waiting list.
    joined: Option<u64>,
}

impl Future for EndOfRound {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        ROUND.with(|r| {
            let mut r = r.borrow_mut();
            match self.joined {
                Some(count) if r.released != count => Poll::Ready(()),
                _ => {
                    // First poll, or a wake-up from elsewhere (another
                    // branch of a select): wait (again) for the release.
                    match self.joined {
                        None => {
                            self.joined = Some(r.released);
                            r.waiting.push(cx.waker().clone());
                        }
                        // Rare: a linear look is fine here.
                        Some(_) if !r.waiting.iter().any(|w| w.will_wake(cx.waker())) => {
                            r.waiting.push(cx.waker().clone());
                        }
                        Some(_) => {}
                    }
                    if let Some(flusher) = r.flusher.take() {
                        flusher.wake();
                    }
                    Poll::Pending
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Runs `tasks` tasks that each log before and after [`end_of_round`],
    /// on a current-thread runtime (with a flusher if `flusher`).
    fn log_of_round(tasks: usize, flusher: bool) -> Vec<String> {
        let log = Arc::new(Mutex::new(Vec::new()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let inner = log.clone();
        rt.block_on(async move {
            if flusher {
                spawn_flusher();
            }
            let handles: Vec<_> = (0..tasks)
                .map(|i| {
                    let log = inner.clone();
                    tokio::spawn(async move {
                        log.lock().expect("log").push(format!("ran {i}"));
                        end_of_round().await;
                        log.lock().expect("log").push(format!("wrote {i}"));
                    })
                })
                .collect();
            for h in handles {
                h.await.expect("task");
            }
        });
        let entries = log.lock().expect("log").clone();
        entries
    }

    #[test]
    fn every_ready_task_runs_before_any_writes() {
        let log = log_of_round(5, true);
        let ran: Vec<_> = (0..5).map(|i| format!("ran {i}")).collect();
        let wrote: Vec<_> = (0..5).map(|i| format!("wrote {i}")).collect();
        assert_eq!(log[..5], ran[..], "{log:?}");
        assert_eq!(log[5..], wrote[..], "{log:?}");
    }

    #[test]
    fn a_thread_whose_flusher_ended_only_yields() {
        assert_eq!(log_of_round(3, true).len(), 6);
        // That runtime is gone, and its flusher with it: this thread has
        // none now (it waited forever for the dead one before).
        let log = log_of_round(3, false);
        assert_eq!(log.len(), 6, "{log:?}");
        assert_eq!(log_of_round(3, true).len(), 6);
    }
}
