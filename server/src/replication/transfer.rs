//! One replica's full resynchronization, on a thread of its own (Redis's
//! `startBgsaveForReplication`, `rdbSaveToSlavesSockets` and
//! `sendBulkToSlave`), with bounded memory on this side whatever the
//! keyspace's size.
//!
//! `PSYNC`/`SYNC` ([`super::sync`]) holds the replica's mailbox (its
//! stream will wait there), lists it as waiting ([`super::Master::wait_for_sync`])
//! and starts [`start`]'s thread, which:
//!
//! 1. **Diskless** (the replica said `REPLCONF capa eof` and
//!    `repl-diskless-sync` is `yes`): [`super::shared`] runs it instead,
//!    one transfer for every diskless replica waiting together (steps 2
//!    and 3 as below, for all of them at once).
//! 2. Takes the keyspace's exclusive gate, starts a live snapshot
//!    (`crate::snapshot::live`) and attaches the replica to the stream at
//!    that instant (`+FULLRESYNC <replid> <offset>`). While another live
//!    snapshot runs (a `BGSAVE`, another replica's sync) it waits for it
//!    to end, as Redis's replicas wait for a `BGSAVE` to another target.
//! 3. Sends the payload through the mailbox's payload lane
//!    ([`Mailbox::send_payload`]), which never holds more than
//!    [`crate::pubsub::PAYLOAD_WINDOW`] bytes: the producer waits for the
//!    socket. Diskless: `$EOF:<40 random hex chars>\r\n`, the RDB as the
//!    snapshot writes it, the same 40 chars; the stream then waits for the
//!    replica's first `REPLCONF ACK` (see [`super::Replica::stream_on_ack`]).
//!    Disk-based: the snapshot goes to a temporary file in `dir`, then
//!    `$<len>\r\n` and the file, which is removed after; the stream follows
//!    at once.
//!
//! Newlines keep a waiting replica's link alive (once a second before the
//! payload starts, never inside it). A replica whose connection ends stops
//! the thread at its next step: the mailbox reports it closed, the
//! snapshot ends, any temporary file goes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Replica, SyncState};
use crate::client::ClientHandle;
use crate::pubsub::Mailbox;
use crate::snapshot::live::LiveSnapshot;
use crate::state::ServerState;

/// How a replica's payload is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `$EOF:<mark>`, streamed as the snapshot is written.
    Diskless,
    /// `$<len>`, from a temporary file.
    Disk,
}

impl Form {
    /// The form for a replica that did (or did not) announce `capa eof`,
    /// under the current `repl-diskless-sync`.
    pub fn for_replica(srv: &ServerState, capa_eof: bool) -> Form {
        if capa_eof && srv.config.get_bool("repl-diskless-sync") {
            Form::Diskless
        } else {
            Form::Disk
        }
    }
}

/// What the thread needs.
pub struct Job {
    /// The server.
    pub srv: Arc<ServerState>,
    /// The replica, listed as waiting.
    pub replica: Arc<Replica>,
    /// Its connection.
    pub handle: Arc<ClientHandle>,
    /// `PSYNC` (answered `+FULLRESYNC`) rather than `SYNC`.
    pub psync: bool,
    /// How the payload goes.
    pub form: Form,
}

/// Bytes the producer hands to the mailbox at a time.
pub(super) const CHUNK: usize = 256 * 1024;

/// How often the waiting thread looks at the world again.
pub(super) const TICK: Duration = Duration::from_millis(100);

/// Starts the job's thread. On failure the replica is dropped.
pub fn start(job: Job) {
    job.replica.psync.store(job.psync, Ordering::Relaxed);
    job.replica
        .diskless
        .store(job.form == Form::Diskless, Ordering::Relaxed);
    let (srv, handle, mailbox) = (
        job.srv.clone(),
        job.handle.clone(),
        job.replica.mailbox.clone(),
    );
    let spawned = std::thread::Builder::new()
        .name("amber-fullsync".into())
        .spawn(move || run(job));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the full sync thread");
        srv.master.detach(handle.id);
        handle.kill();
        mailbox.release(b"");
    }
}

fn run(job: Job) {
    let Job {
        srv,
        replica,
        handle,
        psync,
        form,
    } = &job;
    if *form == Form::Diskless {
        // Shared with the replicas that wait with it (`super::shared`).
        return super::shared::run(srv, replica);
    }
    match transfer(srv, replica, *psync) {
        Ok(None) => {}
        Ok(Some((offset, bytes))) => {
            srv.master.output_bytes.fetch_add(bytes, Ordering::Relaxed);
            tracing::info!(
                client = handle.id,
                bytes,
                offset,
                "Synchronization with replica {} succeeded",
                handle.addr
            );
        }
        Err(e) => failed(srv, replica, &e),
    }
}

/// A replica's full sync failed (`e`): it is dropped.
pub(super) fn failed(srv: &ServerState, replica: &Replica, e: &std::io::Error) {
    let mailbox = &replica.mailbox;
    let handle = srv.clients.get(replica.id);
    let addr = handle
        .as_ref()
        .map(|h| h.addr.to_string())
        .unwrap_or_default();
    if e.kind() == std::io::ErrorKind::TimedOut {
        tracing::warn!(
            client = replica.id,
            "Disconnecting timedout replica (full sync): {addr}"
        );
    } else if mailbox.is_closed() {
        tracing::info!(
            client = replica.id,
            "the replica left during its full sync; the transfer stops"
        );
    } else {
        tracing::warn!(client = replica.id, error = %e, "full sync with replica {addr} failed");
    }
    srv.master.detach(replica.id);
    if let Some(h) = handle {
        h.kill();
    }
    mailbox.release(b"");
}

/// A disk-based transfer; the attach offset and the payload's bytes, or
/// `None` when the replica left before its snapshot started (it was
/// dropped then).
fn transfer(
    srv: &Arc<ServerState>,
    replica: &Arc<Replica>,
    psync: bool,
) -> std::io::Result<Option<(u64, u64)>> {
    let mailbox = &replica.mailbox;
    let stall = stall(srv);
    let mut alive = KeepAlive::new(stall);
    let Some((snap, offset, _)) = begin(srv, vec![replica.clone()], &mut alive) else {
        // It left meanwhile, and was dropped (see `begin`).
        return Ok(None);
    };
    let producing = Producing::new(&srv.rdb.replica_snapshots);
    tracing::info!(
        client = replica.id,
        target = "disk",
        "Starting BGSAVE for SYNC"
    );
    if psync {
        let replid = srv.master.replid(srv);
        mailbox.send_payload(
            format!("+FULLRESYNC {replid} {offset}\r\n").as_bytes(),
            stall,
        )?;
    }
    let path = temp_path(srv, replica.id);
    let file = TempFile(path);
    let len = write_file(mailbox, snap, &file.0, stall)?;
    drop(producing);
    replica.set_state(SyncState::SendBulk);
    let mut sink = PayloadSink::new(mailbox, stall);
    sink.write_all(format!("${len}\r\n").as_bytes())?;
    std::io::copy(&mut std::fs::File::open(&file.0)?, &mut sink)?;
    sink.flush()?;
    drop(file);
    replica.set_state(SyncState::Online);
    mailbox.release(b"");
    Ok(Some((offset, sink.sent)))
}

/// Starts the live snapshot and attaches the group to the stream at its
/// instant, under the exclusive gate; waits while another snapshot runs,
/// with newlines to the group meanwhile. The replicas that left are
/// dropped; `None` when none is left.
pub(super) fn begin(
    srv: &Arc<ServerState>,
    mut group: Vec<Arc<Replica>>,
    alive: &mut KeepAlive,
) -> Option<(LiveSnapshot, u64, Vec<Arc<Replica>>)> {
    loop {
        let newline = alive.due();
        group.retain(|r| {
            let sent = if r.mailbox.is_closed() {
                Err(closed())
            } else if newline {
                r.mailbox.send_payload(b"\n", stall(srv))
            } else {
                Ok(())
            };
            match sent {
                Ok(()) => true,
                Err(e) => {
                    failed(srv, r, &e);
                    false
                }
            }
        });
        if group.is_empty() {
            return None;
        }
        // Not under the gate: every command would wait each time.
        if !srv.keyspace.snapshot_running() {
            // On a replica, no command from its master between its effects
            // and its bytes in the proxied stream (`Master::proxy`).
            let _proxy = srv.master.proxy_paused();
            let _gate = srv.keyspace.exclusive();
            if let Ok(snap) = LiveSnapshot::begin(srv.clone()) {
                let mut offset = 0;
                for r in &group {
                    offset = srv.master.attach(r.clone());
                }
                // The connection closes its mailbox before it detaches its
                // replica: one that closed meanwhile is dropped here.
                group.retain(|r| {
                    let open = !r.mailbox.is_closed();
                    if !open {
                        failed(srv, r, &closed());
                    }
                    open
                });
                return (!group.is_empty()).then_some((snap, offset, group));
            }
        }
        std::thread::sleep(TICK);
    }
}

/// Disk-based: writes the snapshot to `path`, with a newline to the replica
/// every second meanwhile. Returns the file's length.
fn write_file(
    mailbox: &Mailbox,
    snap: LiveSnapshot,
    path: &Path,
    stall: Duration,
) -> std::io::Result<u64> {
    let out = WhileConnected {
        inner: std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?),
        mailbox,
    };
    let done = AtomicBool::new(false);
    let written = std::thread::scope(|s| {
        s.spawn(|| {
            let mut alive = KeepAlive::new(stall);
            while !done.load(Ordering::Relaxed) {
                if alive.tick(mailbox).is_err() {
                    return;
                }
                std::thread::sleep(TICK);
            }
        });
        let written = snap.write_to(out);
        done.store(true, Ordering::Relaxed);
        written
    });
    let (_, out) = written?;
    let file = out.inner.into_inner().map_err(|e| e.into_error())?;
    Ok(file.metadata()?.len())
}

/// A writer that fails once the replica left, so a disk-based sync stops
/// writing its file too.
struct WhileConnected<'a, W> {
    inner: W,
    mailbox: &'a Mailbox,
}

impl<W: Write> Write for WhileConnected<'_, W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.mailbox.is_closed() {
            return Err(closed());
        }
        self.inner.write(data)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// `temp-sync-<pid>-<client id>.rdb` in `dir`: apart from `SAVE`'s
/// `temp-<pid>.rdb` and from other replicas' files.
fn temp_path(srv: &ServerState, id: u64) -> PathBuf {
    let dir = srv.config.get("dir").unwrap_or_default();
    Path::new(&dir).join(format!("temp-sync-{}-{id}.rdb", std::process::id()))
}

/// A temporary file, removed when dropped (also on a failed transfer):
/// a master's disk-based payload here, a replica's received payload in
/// `crate::replica`.
pub struct TempFile(pub PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Counts a payload being produced, for `rdb_bgsave_in_progress`.
pub(super) struct Producing<'a>(&'a AtomicUsize);

impl<'a> Producing<'a> {
    pub(super) fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Producing(n)
    }
}

impl Drop for Producing<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A newline to the replica once a second, before its payload starts.
pub(super) struct KeepAlive {
    last: Instant,
    stall: Duration,
}

impl KeepAlive {
    pub(super) fn new(stall: Duration) -> Self {
        KeepAlive {
            last: Instant::now(),
            stall,
        }
    }

    /// Sends the newline when a second passed; fails once the replica left.
    pub(super) fn tick(&mut self, mailbox: &Mailbox) -> std::io::Result<()> {
        if mailbox.is_closed() {
            return Err(closed());
        }
        if self.due() {
            mailbox.send_payload(b"\n", self.stall)?;
        }
        Ok(())
    }

    /// Whether a second passed since the last newline (then it is due
    /// now, and the next in a second).
    pub(super) fn due(&mut self) -> bool {
        let due = self.last.elapsed() >= Duration::from_secs(1);
        if due {
            self.last = Instant::now();
        }
        due
    }
}

/// How long the producer waits for a replica that reads nothing:
/// `repl-timeout` (Redis's "Disconnecting timedout replica (full sync)").
pub(super) fn stall(srv: &ServerState) -> Duration {
    Duration::from_secs(srv.config.get_u64("repl-timeout").max(1))
}

pub(super) fn closed() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::BrokenPipe,
        "the replica's connection is closed",
    )
}

/// The payload as a writer: bytes go to the mailbox in [`CHUNK`]s, each
/// waiting for room there, so the producer keeps pace with the socket;
/// and at least every [`TICK`], so a slow producer's bytes still flow
/// (the replica sees progress, not silence).
pub(super) struct PayloadSink<'a> {
    mailbox: &'a Mailbox,
    /// How long to wait for room ([`stall`]).
    stall: Duration,
    buf: Vec<u8>,
    /// When the buffer was last handed over.
    flushed: Instant,
    /// Bytes handed to the mailbox.
    pub(super) sent: u64,
}

impl<'a> PayloadSink<'a> {
    pub(super) fn new(mailbox: &'a Mailbox, stall: Duration) -> Self {
        PayloadSink {
            mailbox,
            stall,
            buf: Vec::with_capacity(CHUNK),
            flushed: Instant::now(),
            sent: 0,
        }
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        for c in bytes.chunks(CHUNK) {
            self.mailbox.send_payload(c, self.stall)?;
            self.sent += c.len() as u64;
        }
        Ok(())
    }
}

impl Write for PayloadSink<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        // A replica that left stops the producer now, not at the next
        // full chunk.
        if self.mailbox.is_closed() {
            return Err(closed());
        }
        if self.buf.is_empty() && data.len() >= CHUNK {
            // A large write (a shard's entries) goes as it is, not copied.
            self.send(data)?;
            self.flushed = Instant::now();
            return Ok(data.len());
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK || self.flushed.elapsed() >= TICK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let buf = std::mem::take(&mut self.buf);
        let sent = self.send(&buf);
        self.buf = buf;
        self.buf.clear();
        self.flushed = Instant::now();
        sent
    }
}
