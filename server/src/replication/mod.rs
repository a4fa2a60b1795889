//! Amber as a replication master: Redis 7.0 replicas (and Amber replicas)
//! follow it.
//!
//! * [`sync`]: `SYNC`, `PSYNC` and `REPLCONF`: a full copy or, from the
//!   [`backlog`], a partial resynchronization (`+CONTINUE`).
//! * [`transfer`]: a full copy's thread: the RDB writer of
//!   `crate::snapshot::live` streamed to the replica (diskless `$EOF:`) or
//!   through a temporary file (`$<len>`), never whole in memory.
//! * [`propagate`]: which commands reach the replicas and in what form
//!   (Redis's rewrites: absolute deadlines, `SPOP` as `SREM`, a script's
//!   or a transaction's effects wrapped in `MULTI`/`EXEC`...).
//! * [`Master`] (here): the stream itself. Its bytes go, in order, to the
//!   backlog and to every replica's mailbox (the pub/sub mailbox its
//!   connection drains, bounded by `client-output-buffer-limit replica`).
//!
//! Order: Amber runs commands on several threads, so two writes of one
//! key could finish in one order and reach the stream in the other.
//! While a replica is attached, a command that may write holds
//! [`Master::order`] from before it runs until its effects are in the
//! stream. With no replica the whole cost is one relaxed load
//! ([`Master::active`]) per write command. As in Redis, the stream (into
//! the backlog) goes on while no replica is attached, so one that
//! reconnects can continue, until `repl-backlog-ttl` ends it
//! ([`Master::expire_backlog`]).

pub mod backlog;
pub mod failover;
pub mod order;
pub mod propagate;
pub mod shared;
pub mod sync;
pub mod transfer;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::pubsub::Mailbox;
use crate::resp::ReplyWriter;
use crate::state::ServerState;
use backlog::Backlog;
pub use order::Ordered;

/// One attached replica.
#[derive(Debug)]
pub struct Replica {
    /// The replica's client id.
    pub id: u64,
    /// Where its share of the stream waits for its connection.
    pub mailbox: Arc<Mailbox>,
    /// Its address, as `INFO replication` shows it.
    pub ip: String,
    /// The port it listens on (`REPLCONF listening-port`).
    pub port: u16,
    /// The offset it acknowledged last (`REPLCONF ACK`).
    pub ack: AtomicU64,
    /// Unix ms of that acknowledgement.
    pub ack_ms: AtomicU64,
    /// Where its full sync stands ([`SyncState`], as a `u8`).
    state: AtomicU8,
    /// Its stream waits, after a diskless payload, for its first `REPLCONF
    /// ACK` (Redis's `repl_start_cmd_stream_on_ack`): the replica finds the
    /// payload's end mark at the end of what it read only if nothing
    /// follows the mark at once.
    pub stream_on_ack: AtomicBool,
    /// Its full sync is a `PSYNC`'s (answered `+FULLRESYNC`), not a `SYNC`'s.
    pub psync: AtomicBool,
    /// Its full sync is diskless, so it may share another's transfer.
    pub diskless: AtomicBool,
    /// A diskless transfer took it in ([`Master::claim_diskless`]): its
    /// own thread stops, and sends no more newlines (under this lock, so
    /// none follows the transfer's first bytes).
    pub claimed: Mutex<bool>,
}

/// Where a replica's full sync stands (Redis's `replstate`, as `INFO
/// replication` names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SyncState {
    /// Waiting for its snapshot, or its snapshot is being produced (and,
    /// diskless, sent): `wait_bgsave`.
    WaitBgsave = 0,
    /// The snapshot's file is being sent: `send_bulk`.
    SendBulk = 1,
    /// Following the stream: `online`.
    Online = 2,
}

impl SyncState {
    /// `INFO replication`'s name for it.
    pub fn name(self) -> &'static str {
        match self {
            SyncState::WaitBgsave => "wait_bgsave",
            SyncState::SendBulk => "send_bulk",
            SyncState::Online => "online",
        }
    }
}

impl Replica {
    /// A replica of client `id`, online (a partial resynchronization's)
    /// until told otherwise.
    pub fn new(id: u64, mailbox: Arc<Mailbox>, ip: String, port: u16) -> Self {
        Replica {
            id,
            mailbox,
            ip,
            port,
            ack: AtomicU64::new(0),
            ack_ms: AtomicU64::new(amber_storage::clock::now_ms()),
            state: AtomicU8::new(SyncState::Online as u8),
            stream_on_ack: AtomicBool::new(false),
            psync: AtomicBool::new(false),
            diskless: AtomicBool::new(false),
            claimed: Mutex::new(false),
        }
    }

    /// Where its full sync stands.
    pub fn state(&self) -> SyncState {
        match self.state.load(Ordering::Relaxed) {
            0 => SyncState::WaitBgsave,
            1 => SyncState::SendBulk,
            _ => SyncState::Online,
        }
    }

    /// Records where its full sync stands.
    pub fn set_state(&self, state: SyncState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }
}

/// The stream: its offset, the database it last selected, its readers.
#[derive(Debug, Default)]
struct Stream {
    /// `master_repl_offset`: bytes sent so far.
    offset: u64,
    /// The database the stream's last `SELECT` chose (`None`: unknown to
    /// some replica, select again).
    db: Option<usize>,
    replicas: Vec<Arc<Replica>>,
    /// Replicas waiting for their full sync to start (the
    /// `repl-diskless-sync-delay`, or another snapshot): not fed yet.
    waiting: Vec<Arc<Replica>>,
    backlog: Backlog,
    /// Whether the backlog exists (created when a first replica
    /// attaches, freed `repl-backlog-ttl` seconds after the last one left).
    backlog_active: bool,
    /// Unix ms the last replica left (while none is attached).
    alone_since: Option<u64>,
}

/// The stream's history: its replication id (the run id until a
/// promotion), and the one it continues (`master_replid2`, up to
/// `second_repl_offset`), so the former master's replicas continue.
#[derive(Debug, Default, Clone)]
struct History {
    replid: Option<String>,
    replid2: Option<(String, u64)>,
}

/// A client blocked in `WAIT`.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    client: u64,
    offset: u64,
    replicas: i64,
}

/// The master side of replication (see the module docs).
#[derive(Debug, Default)]
pub struct Master {
    /// Full resynchronizations served (`INFO stats`' `sync_full`).
    pub sync_full: AtomicU64,
    /// Partial resynchronizations accepted (`sync_partial_ok`).
    pub sync_partial_ok: AtomicU64,
    /// Partial resynchronizations refused (`sync_partial_err`).
    pub sync_partial_err: AtomicU64,
    /// Stream bytes handed to replicas, each replica counted
    /// (`total_net_repl_output_bytes`).
    pub output_bytes: AtomicU64,
    /// The `FAILOVER` in progress, if any.
    pub failover: failover::Failover,
    active: AtomicBool,
    /// While a replica: the stream is the master's, proxied verbatim
    /// ([`Master::proxy`]); nothing of this server's own is fed (Redis's
    /// `replicationFeedSlaves` returns at once on a replica).
    follower: AtomicBool,
    /// Held by the replica's link around each command from its master
    /// (run, then proxied) and by a full sync's start, so a snapshot is
    /// never taken between a command's effects and its bytes in the
    /// stream. Taken before the keyspace gate.
    proxying: Mutex<()>,
    /// `master_repl_offset` as last published by [`Master::feed`] (read
    /// without the stream's lock after every command: [`Master::woff`]).
    published: AtomicU64,
    order: Mutex<()>,
    history: Mutex<History>,
    stream: Mutex<Stream>,
    waiting: Mutex<Vec<Waiting>>,
}

/// What `ROLE` and `INFO replication` show of the master side.
#[derive(Debug, Clone)]
pub struct MasterView {
    /// `master_repl_offset`.
    pub offset: u64,
    /// The attached replicas.
    pub replicas: Vec<Arc<Replica>>,
    /// The replicas whose full sync has not started yet (not fed).
    pub waiting: Vec<Arc<Replica>>,
    /// `repl_backlog_active`.
    pub backlog_active: bool,
    /// `repl_backlog_first_byte_offset`.
    pub backlog_first: u64,
    /// `repl_backlog_histlen`.
    pub backlog_len: usize,
}

impl Master {
    /// Whether the stream runs: some replica is attached, or was recently
    /// and the backlog keeps the stream for its return (one relaxed load:
    /// the whole cost of replication to a write command otherwise).
    #[inline]
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// `master_repl_offset`.
    pub fn offset(&self) -> u64 {
        self.stream.lock().offset
    }

    /// The offset a client's `WAIT` waits for after its command (Redis's
    /// `c->woff`): the whole stream as it stands when the command ended,
    /// other clients' writes included. `None` while the stream does not
    /// run (one relaxed load).
    #[inline]
    pub fn woff(&self) -> Option<u64> {
        self.active()
            .then(|| self.published.load(Ordering::Acquire))
    }

    /// `master_replid`: the run id, or the id a promotion gave.
    pub fn replid(&self, srv: &ServerState) -> String {
        self.history
            .lock()
            .replid
            .clone()
            .unwrap_or_else(|| srv.run_id.clone())
    }

    /// `master_replid2` and `second_repl_offset`, after a promotion.
    pub fn replid2(&self) -> Option<(String, u64)> {
        self.history.lock().replid2.clone()
    }

    /// Whether a replica asking `PSYNC id offset` continues this history
    /// (Redis's test in `masterTryPartialResynchronization`): this id, or
    /// the one continued up to where this server took over.
    pub fn continues(&self, srv: &ServerState, id: &[u8], psync_offset: u64) -> bool {
        if id == self.replid(srv).as_bytes() {
            return true;
        }
        self.replid2()
            .is_some_and(|(old, until)| id == old.as_bytes() && psync_offset <= until)
    }

    /// A replica becomes master (Redis's `replicationUnsetMaster` and
    /// `shiftReplicationId`): its stream goes on from `offset`, the
    /// master's stream it processed, under a new id, with `old_replid`
    /// as the history it continues, so the former master and its
    /// replicas continue with `+CONTINUE`. The replicas it had are
    /// dropped (they learn the new id as they reconnect).
    pub fn take_over(&self, srv: &ServerState, old_replid: String, offset: u64) {
        self.disconnect_replicas(srv);
        self.follower.store(false, Ordering::SeqCst);
        let replid: String = (0..40)
            .map(|_| format!("{:x}", rand::random::<u8>() % 16))
            .collect();
        tracing::info!(
            "Setting secondary replication ID to {old_replid}, valid up to offset: {}. New replication ID is {replid}",
            offset + 1
        );
        *self.history.lock() = History {
            replid: Some(replid),
            replid2: Some((old_replid, offset + 1)),
        };
        let mut s = self.stream.lock();
        // The proxied stream is this history's: its replicas continue
        // from the backlog (Redis keeps it across the promotion).
        if s.offset != offset {
            s.backlog = Backlog::default();
        }
        s.offset = offset;
        self.published.store(offset, Ordering::Release);
        s.db = None;
        s.backlog_active = true;
        s.alone_since = Some(amber_storage::clock::now_ms());
        self.active.store(true, Ordering::SeqCst);
    }

    /// This server starts following a master (`REPLICAOF`): from now on
    /// its stream is the master's ([`Master::follow`]), nothing of its own.
    pub fn start_following(&self) {
        self.follower.store(true, Ordering::SeqCst);
        self.active.store(false, Ordering::SeqCst);
    }

    /// This server stopped following a master without taking over its
    /// history (it never synced): its own commands feed its stream again.
    pub fn stop_following(&self) {
        if self.follower.swap(false, Ordering::SeqCst) {
            let mut s = self.stream.lock();
            s.db = None;
            if !s.replicas.is_empty() || s.backlog_active {
                self.active.store(true, Ordering::SeqCst);
            }
        }
    }

    /// A full sync from the master loaded, at the master's `replid` and
    /// `offset` (Redis's `replicationAttachToNewMaster` and what follows
    /// the load): this server's replicas are dropped (they resync with the
    /// new history) and its stream becomes the master's, from `offset`,
    /// with a new backlog, so its replicas get the master's bytes, ids and
    /// offsets ([`Master::proxy`]) and can continue from this server.
    pub fn follow(&self, srv: &ServerState, replid: String, offset: u64) {
        self.start_following();
        self.disconnect_replicas(srv);
        *self.history.lock() = History {
            replid: Some(replid),
            replid2: None,
        };
        let mut s = self.stream.lock();
        s.offset = offset;
        self.published.store(offset, Ordering::Release);
        s.db = None;
        s.backlog = Backlog::default();
        s.backlog_active = true;
        s.alone_since = None;
    }

    /// The master continued under a new id (`+CONTINUE <new id>`, after
    /// its own promotion): the history shifts as Redis's replica shifts
    /// it (old id valid up to the offset processed), and the replicas are
    /// dropped so they learn the new id (they continue from the backlog).
    pub fn shift(&self, srv: &ServerState, new_replid: String) {
        let old = self.replid(srv);
        if old == new_replid {
            return;
        }
        let offset = self.offset();
        *self.history.lock() = History {
            replid: Some(new_replid),
            replid2: Some((old, offset + 1)),
        };
        self.disconnect_replicas(srv);
    }

    /// Runs `apply` (a command from the master, applied) and then appends
    /// its bytes, as received, to this replica's stream (Redis's
    /// `replicationFeedStreamFromMasterStream`), under the lock a full
    /// sync's start takes: a replica of this server sees the command in
    /// its snapshot or in its stream, never both or neither.
    pub fn proxy<R>(&self, srv: &ServerState, bytes: &[u8], apply: impl FnOnce() -> R) -> R {
        let _held = self.proxying.lock();
        let out = apply();
        if self.follower.load(Ordering::Relaxed) && !bytes.is_empty() {
            let mut s = self.stream.lock();
            self.append(srv, &mut s, bytes);
        }
        out
    }

    /// Held by a full sync's start (before the keyspace gate): no command
    /// from this replica's master is between its effects and its bytes
    /// in the stream meanwhile (see [`Master::proxy`]).
    pub fn proxy_paused(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.proxying.lock()
    }

    /// Closes every replica's connection (Redis's `disconnectSlaves`).
    pub fn disconnect_replicas(&self, srv: &ServerState) {
        let view = self.view();
        for r in view.replicas.into_iter().chain(view.waiting) {
            if let Some(h) = srv.clients.get(r.id) {
                h.kill();
            }
            self.detach(r.id);
        }
    }

    /// The figures `ROLE` and `INFO replication` show.
    pub fn view(&self) -> MasterView {
        let s = self.stream.lock();
        MasterView {
            offset: s.offset,
            replicas: s.replicas.clone(),
            waiting: s.waiting.clone(),
            backlog_active: s.backlog_active,
            // Redis's `repl_backlog->offset`: a backlog created but still
            // empty starts, virtually, at the next byte of the stream
            // (`createReplicationBacklog`); none at all shows 0.
            backlog_first: match (s.backlog_active, s.backlog.is_empty()) {
                (false, _) => 0,
                (true, true) => s.offset + 1,
                (true, false) => s.backlog.first_byte_offset(),
            },
            backlog_len: s.backlog.len(),
        }
    }

    /// Attaches a replica for a full resynchronization: from the returned
    /// offset on, the stream goes to its mailbox (after the payload the
    /// caller sends). The caller holds the keyspace's exclusive gate, so
    /// no command runs between this and the snapshot.
    pub fn attach(&self, replica: Arc<Replica>) -> u64 {
        let mut s = self.stream.lock();
        s.replicas.retain(|r| r.id != replica.id);
        s.waiting.retain(|r| r.id != replica.id);
        s.replicas.push(replica);
        // Redis's `slaveseldb = -1`: the new replica knows no database.
        s.db = None;
        s.backlog_active = true;
        s.alone_since = None;
        if !self.follower.load(Ordering::SeqCst) {
            self.active.store(true, Ordering::SeqCst);
        }
        s.offset
    }

    /// Records a replica whose full sync waits to start
    /// ([`transfer`]): `INFO replication` lists it, the stream does not
    /// feed it yet. Returns how many replicas wait now.
    pub fn wait_for_sync(&self, replica: Arc<Replica>) -> usize {
        let mut s = self.stream.lock();
        s.waiting.retain(|r| r.id != replica.id);
        s.waiting.push(replica);
        s.waiting.len()
    }

    /// The replicas a diskless transfer starting for `me` serves (Redis's
    /// `rdbSaveToSlavesSockets` takes every replica waiting for one): `me`
    /// and every other diskless replica still waiting and not taken yet;
    /// `None` when another transfer already took `me`.
    pub fn claim_diskless(&self, me: &Arc<Replica>) -> Option<Vec<Arc<Replica>>> {
        let s = self.stream.lock();
        if std::mem::replace(&mut *me.claimed.lock(), true) {
            return None;
        }
        let mut group = vec![me.clone()];
        for r in &s.waiting {
            if r.id != me.id
                && r.diskless.load(Ordering::Relaxed)
                && !std::mem::replace(&mut *r.claimed.lock(), true)
            {
                group.push(r.clone());
            }
        }
        Some(group)
    }

    /// Takes `me` alone (its wait failed): false when a transfer already
    /// took it in (that transfer drops it).
    pub fn claim_diskless_alone(&self, me: &Replica) -> bool {
        let _s = self.stream.lock();
        !std::mem::replace(&mut *me.claimed.lock(), true)
    }

    /// How many replicas wait for their full sync to start.
    pub fn waiting_for_sync(&self) -> usize {
        self.stream.lock().waiting.len()
    }

    /// Attaches a replica that continues from `psync_offset` (Redis's
    /// `masterTryPartialResynchronization`): the bytes it misses, or
    /// `None` (then nothing is attached) when the backlog lacks them.
    pub fn attach_continuing(&self, replica: Arc<Replica>, psync_offset: u64) -> Option<Vec<u8>> {
        let mut s = self.stream.lock();
        if !s.backlog_active {
            return None;
        }
        let missed = s.backlog.since(psync_offset, s.offset)?;
        s.replicas.retain(|r| r.id != replica.id);
        s.replicas.push(replica);
        s.alone_since = None;
        if !self.follower.load(Ordering::SeqCst) {
            self.active.store(true, Ordering::SeqCst);
        }
        Some(missed)
    }

    /// Forgets the replica `id` (its connection closed).
    pub fn detach(&self, id: u64) {
        let mut s = self.stream.lock();
        s.waiting.retain(|r| r.id != id);
        let before = s.replicas.len();
        s.replicas.retain(|r| r.id != id);
        if s.replicas.len() != before {
            tracing::info!(client = id, "Connection with replica lost.");
        }
        if s.replicas.is_empty() && s.alone_since.is_none() {
            s.alone_since = Some(amber_storage::clock::now_ms());
        }
    }

    /// Frees the backlog, and stops the stream, once no replica was
    /// attached for `ttl_secs` (`repl-backlog-ttl`; 0: never). A replica
    /// coming back later gets a full copy.
    pub fn expire_backlog(&self, ttl_secs: u64) {
        if ttl_secs == 0 || !self.active() {
            return;
        }
        let mut s = self.stream.lock();
        let Some(since) = s.alone_since else { return };
        if amber_storage::clock::now_ms().saturating_sub(since) / 1000 >= ttl_secs {
            tracing::info!(
                secs = ttl_secs,
                "Replication backlog freed after {ttl_secs} seconds without connected replicas."
            );
            s.backlog = Backlog::default();
            s.backlog_active = false;
            s.alone_since = None;
            self.active.store(false, Ordering::SeqCst);
        }
    }

    /// Appends commands to the stream: `(db, args)` each, a `SELECT`
    /// before any whose database is not the stream's (`db` `None`: no
    /// database, as `PING` and `REPLCONF GETACK`). Returns the new offset.
    pub fn feed(&self, srv: &ServerState, cmds: &[(Option<usize>, Vec<Vec<u8>>)]) -> u64 {
        let mut w = ReplyWriter::new();
        let mut s = self.stream.lock();
        // A replica's stream is its master's (`Master::proxy`).
        if self.follower.load(Ordering::Relaxed) {
            return s.offset;
        }
        for (db, args) in cmds {
            if let Some(db) = *db {
                if s.db != Some(db) {
                    let n = db.to_string();
                    encode(&mut w, &[b"SELECT", n.as_bytes()]);
                    s.db = Some(db);
                }
            }
            let parts: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            encode(&mut w, &parts);
        }
        self.append(srv, &mut s, w.as_bytes());
        s.offset
    }

    /// Appends `bytes` to the stream: backlog, every replica's mailbox.
    fn append(&self, srv: &ServerState, s: &mut Stream, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let at = s.offset;
        s.offset += bytes.len() as u64;
        self.published.store(s.offset, Ordering::Release);
        let cap = srv.config.get_u64("repl-backlog-size").max(16 * 1024) as usize;
        s.backlog.push(at, bytes, cap);
        let limits = || crate::pubsub::replica_limits(srv);
        for r in &s.replicas {
            r.mailbox.post(bytes, &limits);
        }
        self.output_bytes
            .fetch_add((bytes.len() * s.replicas.len()) as u64, Ordering::Relaxed);
        // Past `client-output-buffer-limit replica` a replica is closed
        // (its connection may still be stuck writing to it): it no longer
        // counts, and gets nothing more.
        let before = s.replicas.len();
        s.replicas
            .retain(|r| !r.mailbox.handle().killed.load(Ordering::Relaxed));
        if s.replicas.len() != before && s.replicas.is_empty() {
            s.alone_since = Some(amber_storage::clock::now_ms());
        }
    }

    /// A key removed by expiry or eviction, as Redis's
    /// `propagateDeletion`: `DEL` in its database. Called while the key's
    /// shard is locked, so it is in the stream before anything that
    /// writes the key again.
    pub fn feed_deletion(&self, srv: &ServerState, db: usize, key: &[u8]) {
        if self.active() {
            self.feed(srv, &[(Some(db), vec![b"DEL".to_vec(), key.to_vec()])]);
        }
    }

    /// `PING` to every replica (`repl-ping-replica-period`), so they know
    /// the link is alive.
    pub fn ping(&self, srv: &ServerState) {
        if self.active() && !self.stream.lock().replicas.is_empty() {
            self.feed(srv, &[(None, vec![b"PING".to_vec()])]);
        }
    }

    /// Asks every replica for its offset (`REPLCONF GETACK *`), for `WAIT`.
    pub fn request_acks(&self, srv: &ServerState) {
        if self.active() {
            let getack = [b"REPLCONF".to_vec(), b"GETACK".to_vec(), b"*".to_vec()];
            self.feed(srv, &[(None, getack.to_vec())]);
        }
    }

    /// The replicas Redis calls good (`refreshGoodSlavesCount`): online
    /// (not in their full sync) with an acknowledgement at most
    /// `max_lag_secs` seconds old.
    pub fn good_replicas(&self, max_lag_secs: u64) -> usize {
        let now = amber_storage::clock::now_ms() / 1000;
        let s = self.stream.lock();
        s.replicas
            .iter()
            .filter(|r| {
                if r.state() != SyncState::Online {
                    return false;
                }
                let ack = r.ack_ms.load(Ordering::Relaxed);
                ack != 0 && now.saturating_sub(ack / 1000) <= max_lag_secs
            })
            .count()
    }

    /// `min_slaves_good_slaves`, while `min-replicas-to-write` and
    /// `min-replicas-max-lag` are both set.
    pub fn min_replicas_good(&self, srv: &ServerState) -> Option<usize> {
        let hot = &srv.config.hot;
        let to_write = hot.min_replicas_to_write.load(Ordering::Relaxed);
        let lag = hot.min_replicas_max_lag.load(Ordering::Relaxed);
        (to_write != 0 && lag != 0).then(|| self.good_replicas(lag))
    }

    /// Whether writes are refused with [`NOREPLICAS`] (Redis's
    /// `checkGoodReplicasStatus`): a master with `min-replicas-to-write`
    /// and `min-replicas-max-lag` set, and fewer good replicas. Two
    /// relaxed loads while they are not set.
    pub fn lacks_replicas(&self, srv: &ServerState) -> bool {
        let to_write = srv.config.hot.min_replicas_to_write.load(Ordering::Relaxed);
        to_write != 0
            && !srv.replication.is_replica()
            && self
                .min_replicas_good(srv)
                .is_some_and(|good| (good as u64) < to_write)
    }

    /// How many replicas acknowledged at least `offset`.
    pub fn acknowledged(&self, offset: u64) -> i64 {
        let s = self.stream.lock();
        s.replicas
            .iter()
            .filter(|r| r.ack.load(Ordering::Relaxed) >= offset)
            .count() as i64
    }

    /// Remembers a client blocked in `WAIT` for `replicas` acknowledging
    /// `offset`.
    pub fn add_waiter(&self, client: u64, offset: u64, replicas: i64) {
        self.waiting.lock().push(Waiting {
            client,
            offset,
            replicas,
        });
    }

    /// A replica acknowledged `offset`: records it and ends the `WAIT`s
    /// now satisfied (their reply, the count, is written as they end).
    pub fn acked(&self, srv: &ServerState, replica: &Replica, offset: u64) {
        replica.ack.fetch_max(offset, Ordering::Relaxed);
        replica
            .ack_ms
            .store(amber_storage::clock::now_ms(), Ordering::Relaxed);
        let waiting = std::mem::take(&mut *self.waiting.lock());
        if waiting.is_empty() {
            return;
        }
        let mut still = Vec::new();
        for w in waiting {
            let blocked = srv
                .clients
                .get(w.client)
                .is_some_and(|h| h.blocked.load(Ordering::Relaxed));
            if !blocked {
                continue;
            }
            if self.acknowledged(w.offset) >= w.replicas {
                srv.blocking.unblock(w.client, false);
            } else {
                still.push(w);
            }
        }
        self.waiting.lock().extend(still);
    }
}

/// Redis's refusal of a write while too few replicas are good.
pub const NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";

/// Appends one command, as a RESP array of bulk strings, to `w`.
pub fn encode(w: &mut ReplyWriter, args: &[&[u8]]) {
    w.array(args.len());
    for a in args {
        w.bulk(a);
    }
}
