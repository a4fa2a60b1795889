//! Connection threads: one single-threaded runtime per core, and a
//! connection that keeps using one shard moved to the thread that serves
//! that shard.
//!
//! # Why
//!
//! Connections used to be tasks of one multi-threaded (work-stealing)
//! runtime. Many clients pipelining on one key (a queue's list, a
//! leaderboard's sorted set: every test of `redis-benchmark -t
//! lpush,zadd,...`) then ran on both cores at once and took turns on one
//! shard's lock, the value's cache lines moved between the cores for every
//! batch, and the workers woke each other (a worker that finds two ready
//! connections after a poll wakes a sleeping sibling to steal one). The
//! same tests with every connection on one thread used up to 40% less CPU
//! per request (ZADD; HSET and SADD 15-20%, LPUSH and SPOP about the same:
//! bench/RESULTS.md, "Connection threads with shard affinity").
//!
//! So each core runs its own current-thread runtime, each connection lives
//! on one of them (new ones in turn), and a connection whose batches have
//! used one shard for [`MOVE_AFTER`] batches in a row moves to that
//! shard's *home* thread (`(db + shard) % threads`). Connections on one hot
//! key end on one thread, which runs them like Redis's event loop; random
//! keys spread batches over all shards, so those connections stay where
//! they are and use every core.
//!
//! Batches of scripts (`EVAL`, `FCALL`...) have a home too, the same for
//! all of them ([`SCRIPT_HOME`]): a script holds the keyspace's exclusive
//! gate, so two threads running scripts only take turns on it, and each
//! turn moved the gate's sixteen lock words between the cores and often
//! put a thread to sleep in the kernel (pipelined `EVAL` ran at 0.3 of
//! Redis's rate: bench/RESULTS.md, "EVAL beside Redis"). On one thread
//! they run one after the other, as in Redis.
//!
//! Moving is safe at any point between batches: a connection's state is in
//! its `Connection` and `Client`, which move together; its socket leaves
//! one thread's poller and joins the other's (`into_std`/`from_std`).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::connection::{self, Parked};
use crate::state::ServerState;

/// Consecutive batches on one shard after which a connection moves to the
/// shard's home thread. A connection using random keys one at a time hits
/// the same shard this often with probability (1/shards)^(MOVE_AFTER-1):
/// never, in practice.
pub const MOVE_AFTER: u32 = 8;

/// The thread that serves connections whose batches run scripts.
pub const SCRIPT_HOME: usize = 0;

/// A script that has run this long holds its thread: new connections and
/// moving ones go elsewhere ([`Cores::admit`]). Shorter ones (nearly all)
/// are not worth avoiding: under a load of scripts one runs most of the
/// time, and avoiding its thread sent every new connection to the main
/// runtime.
const LONG_SCRIPT_MS: u64 = 2;

/// What a connection thread is handed.
enum Arrival {
    /// A connection just accepted.
    New(std::net::TcpStream),
    /// A connection moved from another thread.
    Moved(Box<Parked>),
}

thread_local! {
    /// The index of the connection thread this is, if it is one.
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The connection threads.
pub struct Cores {
    inboxes: Box<[UnboundedSender<Arrival>]>,
    next: AtomicUsize,
    /// Per thread: when the Lua script that runs on it now started (ms
    /// since the Unix epoch, plus one), 0 when none runs
    /// ([`Cores::scripting_here`]).
    scripting: Box<[AtomicU64]>,
}

/// Marks the calling connection thread as running a script until dropped.
pub struct ScriptingMark<'a>(&'a AtomicU64);

impl Drop for ScriptingMark<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Release);
    }
}

impl Cores {
    /// Starts `threads` connection threads (at least one), each running a
    /// current-thread runtime that serves the connections it is given.
    pub fn start(srv: &Arc<ServerState>, threads: usize) -> std::io::Result<Cores> {
        let mut inboxes = Vec::new();
        for index in 0..threads.max(1) {
            let (tx, rx) = unbounded_channel();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let srv = srv.clone();
            std::thread::Builder::new()
                .name(format!("amber-conn-{index}"))
                .spawn(move || {
                    CURRENT.with(|c| c.set(Some(index)));
                    // This thread runs commands as long as the server
                    // lives: its statistics need no locked adds.
                    amber_storage::striped::own_stripe();
                    runtime.block_on(serve_arrivals(srv, rx));
                })?;
            inboxes.push(tx);
        }
        let scripting = inboxes.iter().map(|_| AtomicU64::new(0)).collect();
        Ok(Cores {
            inboxes: inboxes.into_boxed_slice(),
            next: AtomicUsize::new(0),
            scripting,
        })
    }

    /// Number of connection threads.
    pub fn len(&self) -> usize {
        self.inboxes.len()
    }

    /// Whether there are none (never: `start` makes at least one).
    pub fn is_empty(&self) -> bool {
        self.inboxes.is_empty()
    }

    /// Hands a newly accepted connection to the next thread in turn that
    /// runs no long script. A script runs on its connection's thread and
    /// holds it (Redis's single thread runs it the same way), so a
    /// connection arriving meanwhile, often the operator's `SCRIPT KILL`,
    /// goes to another thread, where it gets `-BUSY` past
    /// `busy-reply-threshold` as in Redis. Gives the connection back when
    /// every thread runs one (the caller then serves it on the main
    /// runtime).
    pub fn admit(&self, stream: tokio::net::TcpStream) -> Option<tokio::net::TcpStream> {
        let n = self.len();
        let free = (0..n)
            .map(|_| self.next.fetch_add(1, Ordering::Relaxed) % n)
            .find(|&i| !self.is_scripting(i));
        let Some(i) = free else {
            return Some(stream);
        };
        let Ok(stream) = stream.into_std() else {
            return None;
        };
        if let Some(inbox) = self.inboxes.get(i) {
            let _ = inbox.send(Arrival::New(stream));
        }
        None
    }

    /// Whether a script has run on thread `index` for [`LONG_SCRIPT_MS`]
    /// or more.
    pub fn is_scripting(&self, index: usize) -> bool {
        self.scripting
            .get(index)
            .is_some_and(|s| match s.load(Ordering::Acquire) {
                0 => false,
                started => {
                    amber_storage::clock::now_ms().saturating_sub(started - 1) >= LONG_SCRIPT_MS
                }
            })
    }

    /// Marks the calling thread, if it is a connection thread, as running
    /// a script until the mark is dropped.
    pub fn scripting_here(&self) -> Option<ScriptingMark<'_>> {
        let started = self.scripting.get(Self::current()?)?;
        started.store(amber_storage::clock::now_ms() + 1, Ordering::Release);
        Some(ScriptingMark(started))
    }

    /// The thread that serves connections whose batches use `shard` of
    /// database `db`.
    pub fn home(&self, db: usize, shard: usize) -> usize {
        db.wrapping_add(shard) % self.len()
    }

    /// Hands a parked connection to thread `index`.
    pub(crate) fn send(&self, index: usize, parked: Parked) {
        if let Some(inbox) = self.inboxes.get(index) {
            let _ = inbox.send(Arrival::Moved(Box::new(parked)));
        }
    }

    /// The index of the connection thread the caller runs on, if any.
    pub fn current() -> Option<usize> {
        CURRENT.with(|c| c.get())
    }
}

/// A connection thread's loop: serves what it is handed until the server
/// lets go of its inbox.
async fn serve_arrivals(srv: Arc<ServerState>, mut inbox: UnboundedReceiver<Arrival>) {
    crate::round::spawn_flusher();
    while let Some(arrival) = inbox.recv().await {
        match arrival {
            Arrival::New(stream) => match tokio::net::TcpStream::from_std(stream) {
                Ok(stream) => {
                    tokio::spawn(connection::serve(srv.clone(), stream));
                }
                Err(e) => tracing::warn!(error = %e, "cannot register a new connection"),
            },
            Arrival::Moved(parked) => {
                tokio::spawn(connection::resume(srv.clone(), *parked));
            }
        }
    }
}

/// Where a batch's keys are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Spread {
    /// It has no keyed request (or none complete yet).
    #[default]
    NoKeys,
    /// All of its keys are in this shard.
    Shard(usize),
    /// Its keys are in several shards, or it mixes keyed requests and
    /// scripts.
    Shards,
    /// It runs scripts and has no other keyed request.
    Scripts,
}

/// How many batches in a row a connection has run on one shard.
#[derive(Default)]
pub struct Affinity {
    last: Option<(usize, usize)>,
    streak: u32,
}

impl Affinity {
    /// Counts a batch on database `db` whose keys are `spread` (a batch
    /// without keys neither counts nor breaks the streak). Returns the
    /// thread to move to, once the streak is long enough and that shard's
    /// home (or the scripts' home) is another thread.
    pub fn record(&mut self, cores: &Cores, db: usize, spread: Spread) -> Option<usize> {
        let (db, shard) = match spread {
            Spread::NoKeys => return None,
            Spread::Shards => {
                self.last = None;
                self.streak = 0;
                return None;
            }
            Spread::Shard(s) => (db, s),
            // Scripts of every database take turns on one gate.
            Spread::Scripts => (usize::MAX, usize::MAX),
        };
        if self.last == Some((db, shard)) {
            self.streak = self.streak.saturating_add(1);
        } else {
            self.last = Some((db, shard));
            self.streak = 1;
        }
        if self.streak < MOVE_AFTER {
            return None;
        }
        let home = match spread {
            Spread::Scripts => SCRIPT_HOME % cores.len(),
            _ => cores.home(db, shard),
        };
        // Not onto a thread held by a script.
        (Cores::current() != Some(home) && !cores.is_scripting(home)).then_some(home)
    }
}

#[cfg(test)]
mod tests {
    use super::Spread::*;
    use super::*;

    fn cores(n: usize) -> Cores {
        Cores {
            inboxes: (0..n).map(|_| unbounded_channel().0).collect(),
            next: AtomicUsize::new(0),
            scripting: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    #[test]
    fn a_streak_on_one_shard_moves_to_its_home_and_a_break_resets_it() {
        let c = cores(2);
        let mut a = Affinity::default();
        for i in 1..MOVE_AFTER {
            assert_eq!(a.record(&c, 0, Shard(3)), None);
            // Batches without keys (a PING, half a request) do not count.
            if i % 4 == 0 {
                assert_eq!(a.record(&c, 0, NoKeys), None);
            }
        }
        // This test thread is no connection thread: any home is elsewhere.
        assert_eq!(a.record(&c, 0, Shard(3)), Some(1));
        // Another shard, another database, or a batch over several shards
        // starts the count again.
        assert_eq!(a.record(&c, 0, Shard(4)), None);
        for _ in 1..MOVE_AFTER {
            assert_eq!(a.record(&c, 1, Shard(4)), None);
        }
        assert_eq!(a.record(&c, 1, Shard(4)), Some(1));
        a.record(&c, 1, Shards);
        assert_eq!(a.record(&c, 1, Shard(4)), None);
    }

    #[test]
    fn no_move_to_the_thread_the_connection_is_on() {
        let c = cores(2);
        CURRENT.with(|t| t.set(Some(1)));
        let mut a = Affinity::default();
        let moves: Vec<_> = (0..3 * MOVE_AFTER)
            .filter_map(|_| a.record(&c, 0, Shard(3)))
            .collect();
        assert!(moves.is_empty(), "{moves:?}");
        CURRENT.with(|t| t.set(None));
    }

    #[test]
    fn script_batches_of_any_database_go_to_the_scripts_home() {
        let c = cores(2);
        CURRENT.with(|t| t.set(Some(1)));
        let mut a = Affinity::default();
        for db in 0..MOVE_AFTER as usize - 1 {
            assert_eq!(a.record(&c, db, Scripts), None);
        }
        assert_eq!(a.record(&c, 7, Scripts), Some(SCRIPT_HOME));
        // A batch of keyed requests breaks the streak.
        a.record(&c, 0, Shard(1));
        assert_eq!(a.record(&c, 0, Scripts), None);
        // On the scripts' home, there is nowhere to go.
        CURRENT.with(|t| t.set(Some(SCRIPT_HOME)));
        let moves: Vec<_> = (0..3 * MOVE_AFTER)
            .filter_map(|_| a.record(&c, 0, Scripts))
            .collect();
        assert!(moves.is_empty(), "{moves:?}");
        CURRENT.with(|t| t.set(None));
    }

    #[test]
    fn homes_spread_shards_over_threads() {
        let c = cores(3);
        let homes: Vec<_> = (0..6).map(|s| c.home(0, s)).collect();
        assert_eq!(homes, [0, 1, 2, 0, 1, 2]);
        assert_eq!(c.home(1, 0), 1);
    }
}
