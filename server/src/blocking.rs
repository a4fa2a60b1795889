//! Blocking commands (`BLPOP`, `BLMOVE`, `BLMPOP`, `BZPOPMIN`...): the
//! registry of clients waiting for data, and the hook that serves them.
//!
//! # How a client blocks
//!
//! A blocking handler locks its keys, finds no data, and calls [`block`]
//! *while its guard is still held*. `block` records a [`Waiter`] (the client,
//! its database, its keys, its protocol, and a [`BlockedOp`]: what to do on
//! its behalf once data arrives) at the tail of the FIFO of each of its keys,
//! and leaves a [`Blocked`] in the client's [`ClientBlock`] instead of writing
//! a reply. The connection sees it, stops executing pipelined commands,
//! writes the replies it already has, and awaits one of:
//! * the reply, rendered by whoever served it, through a oneshot channel;
//! * the deadline: it then [`Blocking::cancel`]s, and only if the cancel
//!   succeeds replies with a null array;
//! * EOF, `CLIENT KILL`, shutdown: it cancels and closes.
//!
//! Registration happens under the shard locks of every key the command
//! looked at, and every push takes the shard lock of the key it pushes to,
//! so a push can never slip between "the keys are empty" and "the client is
//! registered": no wake-up is lost.
//!
//! # Who decides
//!
//! Every change of a waiter's fate happens under the registry's mutex, and
//! the party that removes the waiter from the registry owns the outcome:
//! a server of data removes it and sends it the reply; a timeout, a
//! disconnection or `CLIENT UNBLOCK` removes it and answers itself. A
//! timeout racing with a push therefore either finds the waiter gone (the
//! reply is in the channel: it is delivered, nothing is lost) or removes it
//! first (the pusher then does not see it, the element stays in the list).
//!
//! # How a push serves waiters
//!
//! A command that may give a waited-for key data (every push, the
//! destination of `LMOVE`, later `ZADD`...) locks its keys with
//! [`lock_for_push`], which also locks the extra keys that the waiters
//! already queued on those keys need (the destination of a `BLMOVE`), then
//! calls [`PushGuard::signal`] after its write, *still holding its locks*.
//! `signal` walks the key's FIFO, first blocked first, and runs each waiter's
//! [`BlockedOp::serve`] inside the pusher's guard until the op reports that
//! the key has nothing left. As in Redis, no other command can observe the
//! pushed data before the waiters had their turn. A served `BLMOVE` pushes to
//! its destination, which is then served in turn (chains and cycles of
//! `BLMOVE`s terminate: every step unblocks a waiter).
//!
//! Which writes signal follows Redis 7.0's `signalKeyAsReady`, called by
//! `dbAdd` when a key is *created*: pushes, `LMOVE`/`BLMOVE` destinations,
//! `ZADD`/`ZINCRBY` and the sorted-set `*STORE` commands onto a new key,
//! `SORT ... STORE` onto a new key, `RENAME`/`RENAMENX` (the destination is
//! added anew). A value overwriting another (`setKey` → `dbOverwrite`)
//! signals nothing, and a set wakes nobody (no client blocks on sets). The
//! commands that run alone (`MOVE`, `COPY`, `SWAPDB`) call [`signal_keys`]
//! after releasing their locks: nothing can run in between; `SWAPDB` signals
//! every waited key of both databases (`scanDatabaseForReadyKeys`).
//!
//! The subtle case is a waiter whose extra key is not locked by the pusher (it
//! blocked after `lock_for_push` looked). Locks are only ever taken in
//! ascending shard order, so the pusher cannot add a lock: it stops serving
//! that key (so nobody overtakes the waiter), and [`PushGuard::finish`],
//! once the pusher's guard is dropped, locks the key and every extra key its
//! waiters need and serves again, re-checking the data. In that (rare)
//! window another client's command may take the element first; no element
//! is ever lost or duplicated, since popping and replying happen under the
//! same locks.
//!
//! Lock order: shard locks, then the registry's mutex. The registry mutex is
//! never held while a shard lock is taken.
//!
//! # Replies and durability
//!
//! The reply of a served waiter is rendered in the waiter's protocol and
//! queued in the *pusher's* [`ClientBlock::deliveries`]; the pusher's
//! connection sends it after its batch is durable (`persistence pmem`), so a
//! waiter never sees a pop that a crash could undo.
//!
//! # Transactions (EXEC)
//!
//! Inside `EXEC`, Redis serves waiters only after the whole transaction ran
//! (an element pushed and popped again within it is never seen). EXEC calls
//! [`ClientBlock::begin_deferral`] before running the queued commands:
//! signals are then only recorded, and blocking commands behave as if they
//! timed out at once (`CLIENT_DENY_BLOCKING`). After the commands (still
//! holding the exclusive keyspace gate) EXEC calls [`end_deferral`], which
//! serves every signaled key under a fresh lock.
//!
//! # Other data types (sorted sets)
//!
//! The registry knows nothing of lists. A sorted-set engineer adds
//! `BZPOPMIN`/`BZPOPMAX`/`BZMPOP` by:
//! 1. implementing [`BlockedOp`] for a zset op: `serve` returns
//!    [`Outcome::Skip`] when the key is not a zset (a list waiter and a zset
//!    waiter may share a key), [`Outcome::Stop`] when the zset is absent or
//!    empty, otherwise pops, removes the key if emptied, writes the reply
//!    into `out` and returns `Outcome::Served { pushed: None, popped }`;
//! 2. in the blocking handler, when every key is empty and
//!    `!ctx.client.block.blocking_denied()`, calling
//!    `blocking::block(ctx, &guard, keys, deadline, Box::new(op))` (and
//!    writing nothing); when denied, replying with the timeout reply;
//! 3. in `ZADD`/`ZINCRBY`/`ZUNIONSTORE`... (every write that can create a
//!    zset), locking with [`lock_for_push`] and calling
//!    [`PushGuard::signal`] then [`PushGuard::finish`].
//!
//! A timed-out waiter always gets the null array, as Redis's
//! `replyToBlockedClientTimedOut` for lists and sorted sets.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amber_storage::Guard;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::client::ClientHandle;
use crate::cmd::{CmdError, Ctx};
use crate::resp::{Protocol, ReplyWriter};
use crate::state::ServerState;

mod lost_streams;
pub use lost_streams::STREAM_GONE;

/// What a waiter's operation made of a key that received data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// This waiter cannot use the key as it is (another type): try the next
    /// waiter of the key.
    Skip,
    /// The key has nothing to give (absent or empty): stop serving it.
    Stop,
    /// The waiter was served; its reply is written. `pushed` names a key the
    /// op wrote data to (a `BLMOVE` destination), whose waiters are served next.
    Served {
        /// A key that received data.
        pushed: Option<Vec<u8>>,
        /// Elements it took (`BLMPOP`/`BZMPOP` propagate the pop of
        /// as many as were there, not of the count asked for).
        popped: usize,
    },
}

/// What a blocked command does on its client's behalf once data arrives.
pub trait BlockedOp: Send + Sync + 'static {
    /// Keys besides the ready key that serving needs locked (a `BLMOVE`'s
    /// destination).
    fn extra_keys(&self) -> &[Vec<u8>] {
        &[]
    }

    /// Serves the waiter from `key`, with `key` and [`BlockedOp::extra_keys`]
    /// locked by `g`. Writes the reply to `out` (already in the waiter's
    /// protocol) only when returning [`Outcome::Served`]. Must remove a
    /// collection it empties, and report each keyspace event Redis raises
    /// while serving (`"lpop"`, `"del"`...) to `events`, in Redis's order.
    fn serve(
        &self,
        g: &mut Guard<'_>,
        key: &[u8],
        out: &mut ReplyWriter,
        events: &mut dyn Events,
    ) -> Outcome;

    /// The reply when the block times out or `CLIENT UNBLOCK ... TIMEOUT`
    /// ends it: the null array for the list and sorted-set commands.
    fn timeout_reply(&self, out: &mut ReplyWriter) {
        out.null_array();
    }

    /// Whether the op is an `XREADGROUP`'s: its key ceasing to be a stream
    /// unblocks it with an error (see `lost_streams`).
    fn waits_on_group(&self) -> bool {
        false
    }

    /// What replicas run for this op once it served from `key`, having
    /// taken `popped` elements (Redis's `alsoPropagate` of `LPOP`,
    /// `ZPOPMIN`, `LMOVE`...); `None`: nothing.
    fn effect(&self, _key: &[u8], _popped: usize) -> Option<Vec<Vec<u8>>> {
        None
    }
}

/// Where a served waiter's keyspace events go (`notify-keyspace-events`):
/// the key's database is the one being served.
pub trait Events {
    /// Event `event` of class `class` (a [`crate::notify`] constant) on `key`.
    fn notify(&mut self, class: u32, event: &'static str, key: &[u8]);
}

/// A command's own events go to its client's database.
impl Events for Ctx<'_> {
    fn notify(&mut self, class: u32, event: &'static str, key: &[u8]) {
        Ctx::notify(self, class, event, key);
    }
}

/// Publishes served waiters' events in database `db`.
struct Publisher<'s> {
    srv: &'s ServerState,
    db: usize,
}

impl Events for Publisher<'_> {
    fn notify(&mut self, class: u32, event: &'static str, key: &[u8]) {
        crate::notify::publish(self.srv, self.db, class, event, key);
    }
}

/// One blocked client.
pub struct Waiter {
    handle: Arc<ClientHandle>,
    db: usize,
    keys: Vec<Vec<u8>>,
    proto: Protocol,
    op: Box<dyn BlockedOp>,
    /// Where its reply goes; taken by whoever removes it from the registry.
    tx: Mutex<Option<oneshot::Sender<Vec<u8>>>>,
    /// Still in the registry (only changed under the registry's mutex).
    queued: AtomicBool,
    /// The command's `SLOWLOG` entry, logged once it is served or
    /// `CLIENT UNBLOCK`ed, not when it times out (Redis 7.0's
    /// `updateStatsOnUnblock` callers; see `crate::slowlog`).
    slowlog: Mutex<Option<crate::slowlog::Deferred>>,
}

impl Waiter {
    /// Keeps the blocked command's slow log entry until it is served.
    pub fn keep_slowlog_entry(&self, d: crate::slowlog::Deferred) {
        *self.slowlog.lock() = Some(d);
    }
}

impl fmt::Debug for Waiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiter")
            .field("client", &self.handle.id)
            .field("db", &self.db)
            .field("keys", &self.keys.len())
            .finish()
    }
}

/// A reply for a served waiter, sent once the server's batch is durable.
#[derive(Debug)]
pub struct Delivery {
    tx: oneshot::Sender<Vec<u8>>,
    reply: Vec<u8>,
    /// The served command's slow log entry: logged after the command that
    /// served it, as Redis does.
    slowlog: Option<crate::slowlog::Deferred>,
}

/// A client's pending block, left by [`block`] for its connection.
#[derive(Debug)]
pub struct Blocked {
    waiter: Arc<Waiter>,
    rx: oneshot::Receiver<Vec<u8>>,
    deadline: Option<Instant>,
}

impl Blocked {
    /// When the block times out (`None`: never).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Waits for the reply (someone removed the waiter and sent it);
    /// `None` if the sender went away without replying.
    pub async fn reply(&mut self) -> Option<Vec<u8>> {
        (&mut self.rx).await.ok()
    }

    /// The waiter, for [`Blocking::cancel`].
    pub fn waiter(&self) -> &Arc<Waiter> {
        &self.waiter
    }

    /// Writes the blocked command's timeout reply.
    pub fn timeout_reply(&self, out: &mut ReplyWriter) {
        self.waiter.op.timeout_reply(out);
    }
}

/// The blocking-related state of one connection.
#[derive(Debug, Default)]
pub struct ClientBlock {
    /// Set by [`block`]: the connection must wait for this before
    /// executing anything else.
    pub waiting: Option<Blocked>,
    /// Replies for waiters this client's commands served, to send after
    /// this batch is durable ([`ClientBlock::send_deliveries`]).
    pub deliveries: Vec<Delivery>,
    /// During `EXEC`: keys signaled, served at [`end_deferral`].
    deferred: Option<Vec<(usize, Vec<u8>)>>,
    /// `CLIENT_DENY_BLOCKING` for other reasons (scripts...).
    pub deny: bool,
}

impl ClientBlock {
    /// Whether blocking commands must answer at once as if timed out (inside
    /// `EXEC`, scripts), as Redis's `CLIENT_DENY_BLOCKING`.
    pub fn blocking_denied(&self) -> bool {
        self.deny || self.deferred.is_some()
    }

    /// `EXEC` starts: record signals instead of serving, and deny blocking.
    pub fn begin_deferral(&mut self) {
        self.deferred.get_or_insert_with(Vec::new);
    }

    /// Sends the replies of served waiters (call after the batch is durable).
    pub fn send_deliveries(&mut self) {
        for d in self.deliveries.drain(..) {
            // A waiter that disconnected in the same instant loses its reply,
            // as a Redis client closing while being served.
            if let Some(entry) = d.slowlog {
                entry.log();
            }
            let _ = d.tx.send(d.reply);
        }
    }
}

/// Waiters by key, per database.
#[derive(Default)]
struct Registry {
    /// `keys[db][key]`: the waiters on `key`, first blocked first.
    keys: Vec<HashMap<Vec<u8>, VecDeque<Arc<Waiter>>>>,
    /// Waiters by client id (`CLIENT UNBLOCK`).
    clients: HashMap<u64, Arc<Waiter>>,
}

impl Registry {
    fn db(&mut self, db: usize) -> &mut HashMap<Vec<u8>, VecDeque<Arc<Waiter>>> {
        if self.keys.len() <= db {
            self.keys.resize_with(db + 1, HashMap::new);
        }
        // Just sized above; the fallback is never used.
        let len = self.keys.len();
        &mut self.keys[db.min(len - 1)]
    }

    fn queue(&self, db: usize, key: &[u8]) -> Option<&VecDeque<Arc<Waiter>>> {
        self.keys.get(db)?.get(key)
    }

    /// Takes `w` out of every queue; false if it was not queued.
    fn remove(&mut self, w: &Arc<Waiter>) -> bool {
        if !w.queued.swap(false, Ordering::Relaxed) {
            return false;
        }
        let map = self.db(w.db);
        for k in &w.keys {
            if let Some(q) = map.get_mut(k.as_slice()) {
                q.retain(|x| !Arc::ptr_eq(x, w));
                if q.is_empty() {
                    map.remove(k.as_slice());
                }
            }
        }
        self.clients.remove(&w.handle.id);
        w.handle.blocked.store(false, Ordering::Relaxed);
        true
    }
}

/// The registry of blocked clients, shared by the server.
#[derive(Default)]
pub struct Blocking {
    registry: Mutex<Registry>,
    blocked: AtomicUsize,
    groups: lost_streams::GroupWaiters,
}

impl fmt::Debug for Blocking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blocking")
            .field("blocked", &self.blocked_clients())
            .finish()
    }
}

impl Blocking {
    /// Clients blocked now (`INFO clients`' `blocked_clients`).
    pub fn blocked_clients(&self) -> usize {
        self.blocked.load(Ordering::Relaxed)
    }

    fn unregister(&self, reg: &mut Registry, w: &Arc<Waiter>) -> Option<oneshot::Sender<Vec<u8>>> {
        if !reg.remove(w) {
            return None;
        }
        self.blocked.fetch_sub(1, Ordering::Relaxed);
        if w.op.waits_on_group() {
            self.groups.removed();
        }
        w.tx.lock().take()
    }

    /// Removes a waiter (timeout, disconnection, kill). True if it was still
    /// waiting; false if it was already served (its reply is on its way).
    pub fn cancel(&self, w: &Arc<Waiter>) -> bool {
        let mut reg = self.registry.lock();
        self.unregister(&mut reg, w).is_some()
    }

    /// `CLIENT UNBLOCK id [TIMEOUT|ERROR]`: answers the blocked client with
    /// its timeout reply, or with `-UNBLOCKED client unblocked via CLIENT
    /// UNBLOCK`. False if the client is not blocked.
    pub fn unblock(&self, client_id: u64, error: bool) -> bool {
        let mut reg = self.registry.lock();
        let Some(w) = reg.clients.get(&client_id).cloned() else {
            return false;
        };
        let Some(tx) = self.unregister(&mut reg, &w) else {
            return false;
        };
        drop(reg);
        let mut out = writer(w.proto);
        if error {
            out.error("UNBLOCKED client unblocked via CLIENT UNBLOCK");
        } else {
            w.op.timeout_reply(&mut out);
        }
        if let Some(entry) = w.slowlog.lock().take() {
            entry.without_args().log();
        }
        let _ = tx.send(out.as_bytes().to_vec());
        true
    }

    /// Ends every blocked client with the error `text` and closes its
    /// connection once the reply is written (Redis's
    /// `disconnectAllBlockedClients`, when a master becomes a replica).
    pub fn disconnect_all(&self, srv: &crate::state::ServerState, text: &str) {
        let mut reg = self.registry.lock();
        let waiters: Vec<(u64, Arc<Waiter>)> =
            reg.clients.iter().map(|(id, w)| (*id, w.clone())).collect();
        let mut replies = Vec::new();
        for (id, w) in waiters {
            if let Some(tx) = self.unregister(&mut reg, &w) {
                let mut out = writer(w.proto);
                out.error(text);
                replies.push((id, tx, out.as_bytes().to_vec()));
            }
        }
        drop(reg);
        for (id, tx, reply) in replies {
            // Closed after this reply: flagged, not woken, so the reply
            // is what the connection sees first.
            if let Some(h) = srv.clients.get(id) {
                h.killed.store(true, Ordering::Relaxed);
            }
            let _ = tx.send(reply);
        }
    }

    /// Keys of database `db` that clients wait on (`SWAPDB` serves them).
    pub fn waited_keys(&self, db: usize) -> Vec<Vec<u8>> {
        let reg = self.registry.lock();
        reg.keys
            .get(db)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The extra keys the waiters on `keys` need locked.
    fn extra_keys_of(&self, db: usize, keys: &[&[u8]]) -> Vec<Vec<u8>> {
        let reg = self.registry.lock();
        let mut extra: Vec<Vec<u8>> = Vec::new();
        for k in keys {
            for w in reg.queue(db, k).into_iter().flatten() {
                for e in w.op.extra_keys() {
                    if !extra.contains(e) && !keys.contains(&e.as_slice()) {
                        extra.push(e.clone());
                    }
                }
            }
        }
        extra
    }

    /// Serves the waiters of `key` (then of the keys they push to) inside
    /// `g`, which locks every key of `covered`. Keys whose next waiter needs
    /// an unlocked key are added to `relock`.
    fn serve_in(
        &self,
        srv: &ServerState,
        g: &mut Guard<'_>,
        key: &[u8],
        covered: &[Vec<u8>],
        relock: &mut Vec<Vec<u8>>,
        deliveries: &mut Vec<Delivery>,
    ) {
        let db = g.db();
        let mut events = Publisher { srv, db };
        let mut work: VecDeque<Vec<u8>> = VecDeque::from([key.to_vec()]);
        let mut reg = self.registry.lock();
        while let Some(key) = work.pop_front() {
            let mut i = 0;
            loop {
                let Some(w) = reg.queue(db, &key).and_then(|q| q.get(i)).cloned() else {
                    break;
                };
                if !w.op.extra_keys().iter().all(|k| covered.contains(k)) {
                    if !relock.contains(&key) {
                        relock.push(key.clone());
                    }
                    break;
                }
                let mut out = writer(w.proto);
                match w.op.serve(g, &key, &mut out, &mut events) {
                    Outcome::Skip => i += 1,
                    Outcome::Stop => break,
                    Outcome::Served { pushed, popped } => {
                        if out.as_bytes().first() == Some(&b'-') {
                            count_error(srv, &w, out.as_bytes());
                        }
                        if let Some(effect) = w.op.effect(&key, popped) {
                            crate::replication::propagate::served(db, vec![effect]);
                        }
                        if let Some(tx) = self.unregister(&mut reg, &w) {
                            deliveries.push(Delivery {
                                tx,
                                reply: out.as_bytes().to_vec(),
                                slowlog: w.slowlog.lock().take(),
                            });
                        }
                        if let Some(p) = pushed {
                            if p != key && !work.contains(&p) && covered.contains(&p) {
                                work.push_back(p);
                            } else if p != key && !covered.contains(&p) && !relock.contains(&p) {
                                relock.push(p);
                            }
                        }
                    }
                }
            }
        }
    }

    fn has_waiters(&self) -> bool {
        self.blocked.load(Ordering::Relaxed) > 0
    }
}

/// A blocked command served with an error (`-NOGROUP`: its group was
/// destroyed) counts it as Redis does: in the error statistics and as a
/// failed call of the command.
fn count_error(srv: &ServerState, w: &Waiter, reply: &[u8]) {
    let text = String::from_utf8_lossy(reply.get(1..).unwrap_or_default());
    srv.stats.record_error(text.trim_end());
    let name = w.handle.info.lock().last_cmd.clone();
    if let Some(def) = srv.commands.get(name.as_bytes()) {
        def.stats.fail();
    }
}

/// A reply writer for one waiter's reply.
fn writer(proto: Protocol) -> ReplyWriter {
    let mut out = ReplyWriter::default();
    out.proto = proto;
    out
}

/// Blocks the calling client on `keys` (all empty, checked under `_guard`,
/// which must still be held) until data arrives, `deadline` passes, or it
/// disconnects. The handler then writes no reply.
pub fn block(
    ctx: &mut Ctx<'_>,
    _guard: &Guard<'_>,
    keys: &[&[u8]],
    deadline: Option<Instant>,
    op: Box<dyn BlockedOp>,
) {
    register(ctx, keys, deadline, op);
}

/// Blocks the calling client on no key (`WAIT`): only `deadline`, `CLIENT
/// UNBLOCK`, `CLIENT KILL` or its disconnection end the block, with the
/// op's [`BlockedOp::timeout_reply`]. The handler then writes no reply.
pub fn block_without_keys(ctx: &mut Ctx<'_>, deadline: Option<Instant>, op: Box<dyn BlockedOp>) {
    register(ctx, &[], deadline, op);
}

/// Puts the client in the registry under `keys` and leaves its
/// [`Blocked`] for its connection.
fn register(ctx: &mut Ctx<'_>, keys: &[&[u8]], deadline: Option<Instant>, op: Box<dyn BlockedOp>) {
    let mut unique: Vec<Vec<u8>> = Vec::with_capacity(keys.len());
    for k in keys {
        if !unique.iter().any(|u| u.as_slice() == *k) {
            unique.push(k.to_vec());
        }
    }
    let (tx, rx) = oneshot::channel();
    let handle = ctx.client.handle.clone();
    let w = Arc::new(Waiter {
        handle: handle.clone(),
        db: ctx.client.db,
        keys: unique,
        proto: ctx.out.proto,
        op,
        tx: Mutex::new(Some(tx)),
        queued: AtomicBool::new(true),
        slowlog: Mutex::new(None),
    });
    let blocking = &ctx.srv.blocking;
    if w.op.waits_on_group() {
        blocking.group_waiter_added(ctx.srv);
    }
    {
        let mut reg = blocking.registry.lock();
        let map = reg.db(w.db);
        for k in &w.keys {
            map.entry(k.clone()).or_default().push_back(w.clone());
        }
        reg.clients.insert(handle.id, w.clone());
        handle.blocked.store(true, Ordering::Relaxed);
        blocking.blocked.fetch_add(1, Ordering::Relaxed);
    }
    ctx.client.block.waiting = Some(Blocked {
        waiter: w,
        rx,
        deadline,
    });
}

/// A guard for a command that may give waited-for keys data: the pushed
/// keys plus what their waiters need. Use it as a [`Guard`]; call
/// [`PushGuard::signal`] for each key written, then [`PushGuard::finish`].
pub struct PushGuard<'a> {
    guard: Guard<'a>,
    /// Only when somebody waited as the guard was taken (boxed: the guard
    /// is moved by value, and small moves are not `memcpy` calls).
    waiters: Option<Box<Covered>>,
}

/// The keys a [`PushGuard`] holds for waiters, and those it must re-lock.
struct Covered {
    covered: Vec<Vec<u8>>,
    relock: Vec<Vec<u8>>,
}

impl<'a> std::ops::Deref for PushGuard<'a> {
    type Target = Guard<'a>;
    fn deref(&self) -> &Guard<'a> {
        &self.guard
    }
}

impl<'a> std::ops::DerefMut for PushGuard<'a> {
    fn deref_mut(&mut self) -> &mut Guard<'a> {
        &mut self.guard
    }
}

/// Locks `keys` (the keys a command reads and writes, those it pushes to
/// among them) and the extra keys the clients blocked on them need.
pub fn lock_for_push<'a>(ctx: &Ctx<'a>, keys: &[&[u8]]) -> Result<PushGuard<'a>, CmdError> {
    let srv = ctx.srv;
    let extra = if srv.blocking.has_waiters() && ctx.client.block.deferred.is_none() {
        srv.blocking.extra_keys_of(ctx.db(), keys)
    } else {
        Vec::new()
    };
    let guard = match (keys, extra.is_empty()) {
        ([key], true) => ctx.lock_one(key)?,
        _ => ctx.lock(keys.iter().copied().chain(extra.iter().map(Vec::as_slice)))?,
    };
    // A waiter registers under its key's shard lock: if nobody waits now,
    // nobody can start waiting on these keys while the guard holds them,
    // and `signal` has nobody to serve (so the keys are not copied).
    let waiters = srv.blocking.has_waiters().then(|| {
        let mut covered = extra;
        covered.extend(keys.iter().map(|k| k.to_vec()));
        Box::new(Covered {
            covered,
            relock: Vec::new(),
        })
    });
    Ok(PushGuard { guard, waiters })
}

impl<'a> PushGuard<'a> {
    /// `key` may have received data: serve the clients waiting on it (in
    /// FIFO order, inside this guard), or inside `EXEC` remember it.
    pub fn signal(&mut self, ctx: &mut Ctx<'_>, key: &[u8]) {
        let db = self.guard.db();
        if let Some(d) = ctx.client.block.deferred.as_mut() {
            if !d.iter().any(|(b, k)| *b == db && k.as_slice() == key) {
                d.push((db, key.to_vec()));
            }
            return;
        }
        // Registration of a waiter on `key` needs `key`'s shard lock, which
        // this guard holds: a zero here, or nobody waiting when the guard
        // was taken (nothing covered), cannot miss a waiter on `key`.
        let Some(w) = self.waiters.as_mut() else {
            return;
        };
        if w.covered.is_empty() || !ctx.srv.blocking.has_waiters() {
            return;
        }
        ctx.srv.blocking.serve_in(
            ctx.srv,
            &mut self.guard,
            key,
            &w.covered,
            &mut w.relock,
            &mut ctx.client.block.deliveries,
        );
    }

    /// Releases the locks, then serves the keys whose waiters needed keys
    /// this guard did not hold.
    pub fn finish(self, ctx: &mut Ctx<'_>) {
        let db = self.guard.db();
        let relock = self.waiters.map(|w| w.relock).unwrap_or_default();
        drop(self.guard);
        if !relock.is_empty() {
            serve_keys(ctx, db, relock);
        }
    }
}

/// Most rounds of re-locking [`serve_keys`] does before leaving waiters for
/// the next push (each round needs a client to block in between to recur).
const MAX_RELOCK_ROUNDS: usize = 64;

/// Serves the waiters of `keys` in `db`, each under a fresh lock of the key
/// and of what its waiters need (`PushGuard::finish`, `EXEC`, `SWAPDB`).
pub fn serve_keys(ctx: &mut Ctx<'_>, db: usize, keys: Vec<Vec<u8>>) {
    let srv = ctx.srv;
    // Every key asked for is served (SWAPDB may pass many); only the keys
    // re-queued for re-locking count against the bound.
    let budget = keys.len().saturating_add(MAX_RELOCK_ROUNDS);
    let mut todo: VecDeque<Vec<u8>> = keys.into();
    let mut rounds = 0;
    while let Some(key) = todo.pop_front() {
        if !srv.blocking.has_waiters() || rounds >= budget {
            return;
        }
        rounds += 1;
        let mut covered = srv.blocking.extra_keys_of(db, &[&key]);
        covered.push(key.clone());
        let Ok(mut g) = srv.keyspace.lock(db, covered.iter().map(Vec::as_slice)) else {
            return;
        };
        g.set_touch(!ctx.client.no_touch);
        let mut relock = Vec::new();
        srv.blocking.serve_in(
            srv,
            &mut g,
            &key,
            &covered,
            &mut relock,
            &mut ctx.client.block.deliveries,
        );
        drop(g);
        for k in relock {
            if !todo.contains(&k) {
                todo.push_back(k);
            }
        }
    }
}

/// `keys` of database `db` may have received data from a command that has
/// already released its locks (one that runs alone, holding the keyspace
/// gate exclusively: `MOVE`, `COPY`, `SWAPDB`, so nothing ran in between):
/// serves their waiters now, or inside `EXEC` remembers the keys for
/// [`end_deferral`]. Redis's `signalKeyAsReady` from `dbAdd`, or its
/// `scanDatabaseForReadyKeys` after a swap.
pub fn signal_keys(ctx: &mut Ctx<'_>, db: usize, keys: Vec<Vec<u8>>) {
    if let Some(d) = ctx.client.block.deferred.as_mut() {
        for key in keys {
            if !d.iter().any(|(b, k)| *b == db && *k == key) {
                d.push((db, key));
            }
        }
        return;
    }
    serve_keys(ctx, db, keys);
}

/// `EXEC` is done: serve every key its commands signaled, in order.
pub fn end_deferral(ctx: &mut Ctx<'_>) {
    let Some(keys) = ctx.client.block.deferred.take() else {
        return;
    };
    for (db, key) in keys {
        serve_keys(ctx, db, vec![key]);
    }
}

/// Parses a timeout in milliseconds (`WAIT`, `CLIENT PAUSE`) like Redis's
/// `getTimeoutFromObjectOrReply` with `UNIT_MILLISECONDS`, with its errors.
pub fn parse_timeout_ms(arg: &[u8]) -> Result<u64, CmdError> {
    let ms = crate::cmd::args::parse_i64(arg)
        .ok_or_else(|| CmdError::err("timeout is not an integer or out of range"))?;
    u64::try_from(ms).map_err(|_| CmdError::err("timeout is negative"))
}

/// Parses a blocking command's timeout (seconds, a float) like Redis's
/// `getTimeoutFromObjectOrReply`: `ceil(seconds * 1000)` milliseconds, `0`
/// for ever. Returns the deadline (`None`: no deadline).
pub fn parse_timeout(arg: &[u8]) -> Result<Option<Instant>, CmdError> {
    let secs = crate::cmd::args::parse_timeout_secs(arg)
        .ok_or_else(|| CmdError::err("timeout is not a float or out of range"))?;
    // C converts with `(long long) ceill(x * 1000)`: values outside the
    // range of `long long` (and infinities) become LLONG_MIN on x86-64.
    let ms = (secs * 1000.0).ceil();
    let ms = if (i64::MIN as f64..-(i64::MIN as f64)).contains(&ms) {
        ms as i64
    } else {
        i64::MIN
    };
    let ms = u64::try_from(ms).map_err(|_| CmdError::err("timeout is negative"))?;
    Ok(deadline_after_ms(ms))
}

/// Parses a blocking timeout given in milliseconds (`XREAD ... BLOCK`,
/// `WAIT`) into its deadline (`None`: none; `0` waits for ever).
pub fn parse_deadline_ms(arg: &[u8]) -> Result<Option<Instant>, CmdError> {
    Ok(deadline_after_ms(parse_timeout_ms(arg)?))
}

/// The deadline `ms` milliseconds from now; `None` for 0 (for ever) and,
/// as in Redis 7.0, which adds the current Unix time in ms with no
/// overflow check, for a deadline past the end of `long long` (checked
/// with redis-server 7.0.15: `BLPOP k 9223372036854775` blocks for ever).
fn deadline_after_ms(ms: u64) -> Option<Instant> {
    let now_ms = i64::try_from(amber_storage::clock::now_ms()).unwrap_or(i64::MAX);
    let past_the_end = i64::try_from(ms).map_or(true, |ms| ms.checked_add(now_ms).is_none());
    if ms == 0 || past_the_end {
        return None;
    }
    Instant::now().checked_add(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    //! The deferral API as `EXEC` uses it (EXEC itself lives elsewhere), and
    //! the registry's bookkeeping, over a DRAM-only server without sockets.
    use super::*;
    use crate::client::Client;
    use oneshot::error::TryRecvError;

    use crate::test_support::{client, run, server};

    /// What EXEC does around its queued commands.
    fn exec(srv: &ServerState, client: &mut Client, lines: &[&str]) -> Vec<String> {
        client.block.begin_deferral();
        let replies = lines.iter().map(|l| run(srv, client, l)).collect();
        let mut out = ReplyWriter::default();
        end_deferral(&mut Ctx {
            srv,
            client,
            out: &mut out,
        });
        assert!(out.is_empty(), "end_deferral writes no reply of its own");
        client.block.send_deliveries();
        replies
    }

    fn blocked(c: &mut Client) -> &mut Blocked {
        c.block.waiting.as_mut().expect("the client is blocked")
    }

    #[test]
    fn a_push_inside_exec_is_served_after_it() {
        let srv = server();
        let (mut waiter, mut pusher) = (client(&srv), client(&srv));
        assert_eq!(run(&srv, &mut waiter, "BLPOP k 0"), "");
        assert_eq!(srv.blocking.blocked_clients(), 1);
        assert!(waiter.handle.blocked.load(Ordering::Relaxed));

        pusher.block.begin_deferral();
        assert_eq!(run(&srv, &mut pusher, "RPUSH k a b"), ":2\r\n");
        // Not served inside the transaction: the list is as pushed.
        assert_eq!(blocked(&mut waiter).rx.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(run(&srv, &mut pusher, "LLEN k"), ":2\r\n");
        // A blocking command inside EXEC times out at once.
        assert_eq!(run(&srv, &mut pusher, "BLPOP empty 0"), "*-1\r\n");
        assert_eq!(
            run(&srv, &mut pusher, "BLMOVE empty x left left 0"),
            "$-1\r\n"
        );
        assert!(pusher.block.waiting.is_none());
        let mut out = ReplyWriter::default();
        end_deferral(&mut Ctx {
            srv: &srv,
            client: &mut pusher,
            out: &mut out,
        });
        pusher.block.send_deliveries();

        let reply = blocked(&mut waiter).rx.try_recv().expect("served");
        assert_eq!(reply, b"*2\r\n$1\r\nk\r\n$1\r\na\r\n");
        assert_eq!(run(&srv, &mut pusher, "LRANGE k 0 -1"), "*1\r\n$1\r\nb\r\n");
        assert_eq!(srv.blocking.blocked_clients(), 0);
        assert!(!waiter.handle.blocked.load(Ordering::Relaxed));
        // Outside EXEC again, blocking works.
        assert!(!pusher.block.blocking_denied());
    }

    #[test]
    fn data_gone_by_the_end_of_exec_serves_nobody() {
        let srv = server();
        let (mut waiter, mut pusher) = (client(&srv), client(&srv));
        assert_eq!(run(&srv, &mut waiter, "BRPOP k 0"), "");
        let replies = exec(&srv, &mut pusher, &["LPUSH k a", "LPOP k", "EXISTS k"]);
        assert_eq!(replies, [":1\r\n", "$1\r\na\r\n", ":0\r\n"]);
        assert_eq!(blocked(&mut waiter).rx.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(srv.blocking.blocked_clients(), 1);
        // The next push outside a transaction serves it at once.
        assert_eq!(run(&srv, &mut pusher, "RPUSH k z"), ":1\r\n");
        pusher.block.send_deliveries();
        let reply = blocked(&mut waiter).rx.try_recv().expect("served");
        assert_eq!(reply, b"*2\r\n$1\r\nk\r\n$1\r\nz\r\n");
        assert_eq!(run(&srv, &mut pusher, "EXISTS k"), ":0\r\n");
    }

    #[test]
    fn exec_serves_keys_in_signal_order_and_blmove_chains() {
        let srv = server();
        let (mut w1, mut w2, mut w3) = (client(&srv), client(&srv), client(&srv));
        let mut pusher = client(&srv);
        assert_eq!(run(&srv, &mut w1, "BLPOP b 0"), "");
        assert_eq!(run(&srv, &mut w2, "BLMOVE a b left right 0"), "");
        assert_eq!(run(&srv, &mut w3, "BLPOP a 0"), "");
        exec(&srv, &mut pusher, &["RPUSH a x", "RPUSH a y"]);
        // w2 blocked on `a` before w3: it moves x to b, which serves w1;
        // w3 gets y.
        assert_eq!(blocked(&mut w2).rx.try_recv().expect("w2"), b"$1\r\nx\r\n");
        assert_eq!(
            blocked(&mut w1).rx.try_recv().expect("w1"),
            b"*2\r\n$1\r\nb\r\n$1\r\nx\r\n"
        );
        assert_eq!(
            blocked(&mut w3).rx.try_recv().expect("w3"),
            b"*2\r\n$1\r\na\r\n$1\r\ny\r\n"
        );
        assert_eq!(run(&srv, &mut pusher, "DBSIZE"), ":0\r\n");
        assert_eq!(srv.blocking.blocked_clients(), 0);
    }

    #[test]
    fn unblock_and_cancel_decide_once() {
        let srv = server();
        let (mut w, mut other) = (client(&srv), client(&srv));
        let id = w.handle.id;
        assert_eq!(run(&srv, &mut w, "BLPOP k 0"), "");
        assert_eq!(
            run(&srv, &mut other, &format!("CLIENT UNBLOCK {id} ERROR")),
            ":1\r\n"
        );
        assert_eq!(
            blocked(&mut w).rx.try_recv().expect("answered"),
            b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"
        );
        assert!(!srv.blocking.cancel(blocked(&mut w).waiter()));
        assert_eq!(
            run(&srv, &mut other, &format!("CLIENT UNBLOCK {id}")),
            ":0\r\n"
        );
        assert_eq!(srv.blocking.blocked_clients(), 0);
        // A cancelled waiter is not served: the element stays.
        w.block.waiting = None;
        assert_eq!(run(&srv, &mut w, "BLPOP k 0"), "");
        assert!(srv.blocking.cancel(blocked(&mut w).waiter()));
        assert_eq!(run(&srv, &mut other, "RPUSH k a"), ":1\r\n");
        assert_eq!(run(&srv, &mut other, "LLEN k"), ":1\r\n");
    }
}
