//! Amber as a replica of a Redis master (`REPLICAOF host port`): the live
//! migration path from Redis to Amber.
//!
//! One task per master link (on the main runtime) does what a Redis 7.0
//! replica does: connect, `PING`, `AUTH` when `masterauth` is set,
//! `REPLCONF listening-port`, `REPLCONF capa eof capa psync2`, then
//! `PSYNC`: `PSYNC ? -1` for a server with no history to continue,
//! otherwise `PSYNC <replid> <offset+1>` (Redis's cached master): after a
//! cut link, and when the master changes, the old master's id and the
//! offset processed (a sibling promoted continues them); a master that
//! starts following offers its own id and `master_repl_offset` (a former
//! replica, promoted, continues them). `+CONTINUE` goes on with the
//! stream; `+FULLRESYNC` loads a new copy. The RDB payload (`$<len>` or the diskless
//! `$EOF:<mark>` form) is written to a temporary file in `dir` as it
//! arrives (Redis's `temp-<unixtime>.<pid>.rdb`), so it is never whole in
//! anonymous memory; then the keyspace and function libraries are flushed
//! through the flush path and the file, memory-mapped (page cache, which
//! the kernel can reclaim), loaded through [`crate::snapshot::load_bytes`],
//! under the keyspace's exclusive gate, so no client sees half the old
//! data and half the new. The file is removed after the load, and on a
//! failed transfer. After a diskless payload the replica acknowledges at
//! once: the master sends the stream only then.
//!
//! Then the replication stream: each command runs through the normal
//! dispatcher ([`crate::cmd::execute`]) as a dedicated internal client
//! whose replies are dropped (Redis's master client, flagged `master`), so
//! types, expiries, WATCH, keyspace notifications, blocked clients and the
//! arena are served as for any client. Only that client may write while
//! `replica-read-only` is on. `REPLCONF GETACK` is answered with
//! `REPLCONF ACK <offset>`, and the same is sent every second; the offset
//! is the bytes of the stream processed since `+FULLRESYNC`'s offset.
//!
//! Keys past their deadline are hidden from clients, never deleted by
//! a read: the master's `DEL` removes them ([`Replication::expiry_policy`]).
//!
//! When the link breaks the task waits a second (state `connect`) and
//! tries to continue (`PSYNC <replid> <offset>`). `REPLICAOF NO ONE`
//! stops the task, keeps the data and continues the master's history
//! ([`Replication::promote`]). A master failing over follows its replica
//! through this same link, its first `PSYNC` carrying `FAILOVER`.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::Client;
use crate::cmd::Ctx;
use crate::replication::transfer::TempFile;
use crate::resp::parser::RequestParser;
use crate::resp::ReplyWriter;
use crate::state::ServerState;

/// Redis's reply to a write from a normal client on a read-only replica.
pub const READONLY: &str = "READONLY You can't write against a read only replica.";

/// Redis's reply to a command a replica does not serve while its link is
/// down and `replica-serve-stale-data` is `no`.
pub const MASTERDOWN: &str =
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.";

/// Redis's reply to the clients blocked when the server becomes a replica.
pub const UNBLOCKED_ROLE: &str =
    "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)";

/// Where the link to the master stands (Redis's `repl_state`, as `ROLE`
/// names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Waiting to connect (`connect`).
    Connect,
    /// Connected, in the handshake (`connecting`).
    Connecting,
    /// Receiving the RDB payload (`sync`).
    Sync,
    /// Following the stream (`connected`).
    Connected,
}

impl LinkState {
    /// `ROLE`'s name for it.
    pub fn name(self) -> &'static str {
        match self {
            LinkState::Connect => "connect",
            LinkState::Connecting => "connecting",
            LinkState::Sync => "sync",
            LinkState::Connected => "connected",
        }
    }
}

/// The master followed, and the task following it.
struct Link {
    host: String,
    port: u16,
    state: LinkState,
    /// The master's replication id (from `+FULLRESYNC`).
    replid: Option<String>,
    /// Set while this server, a master failing over to this replica of
    /// its own, asks it to take over: this server's replication id and
    /// offset, sent as `PSYNC <id> <offset + 1> FAILOVER`.
    failover_from: Option<(String, u64)>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The server's replication role (see the module docs).
#[derive(Default)]
pub struct Replication {
    /// A master is followed (the cheap check of the read-only rule).
    active: AtomicBool,
    link: Mutex<Option<Link>>,
    /// Counts masters set: a task whose number is no longer current stops.
    generation: AtomicU64,
    /// The runtime link tasks run on (the main one).
    runtime: std::sync::OnceLock<tokio::runtime::Handle>,
    /// Stream offset read (`slave_read_repl_offset`).
    read_offset: AtomicI64,
    /// Stream offset processed (`slave_repl_offset`), -1 before any sync.
    offset: AtomicI64,
    /// The offset the last full sync started from (`+FULLRESYNC`'s).
    sync_offset: AtomicI64,
    /// The database the master's stream has selected, as of the last
    /// command applied: a partial resync goes on in it (Redis caches the
    /// master client, its database with it), and a snapshot records it
    /// for this server's own replicas (`repl-stream-db`).
    pub stream_db: std::sync::atomic::AtomicUsize,
    /// Unix ms of the last byte from the master.
    last_io_ms: AtomicU64,
    /// Unix ms the link went down (0: never up).
    down_since_ms: AtomicU64,
}

impl std::fmt::Debug for Replication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replication")
            .field("active", &self.is_replica())
            .finish()
    }
}

/// What `ROLE` and `INFO replication` show of a replica.
#[derive(Debug, Clone)]
pub struct ReplicaView {
    /// Master host.
    pub host: String,
    /// Master port.
    pub port: u16,
    /// Link state.
    pub state: LinkState,
    /// The master's replication id, once synced.
    pub replid: Option<String>,
    /// Processed offset (0 before the first sync).
    pub offset: i64,
    /// Read offset.
    pub read_offset: i64,
    /// The offset the last full sync started from.
    pub sync_offset: i64,
    /// Seconds since the last byte from the master (-1 while not connected).
    pub last_io_secs: i64,
    /// Seconds since the link went down (-1 when it never came up).
    pub down_since_secs: i64,
}

fn now_ms() -> u64 {
    amber_storage::clock::now_ms()
}

impl Replication {
    /// Whether a master is followed.
    pub fn is_replica(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Whether a normal client's write must be refused with
    /// [`READONLY`]: a replica with `replica-read-only yes`, and the client
    /// is not the master's.
    pub fn refuses_writes(&self, srv: &ServerState, client: &Client) -> bool {
        self.is_replica() && !client.master && srv.config.get_bool("replica-read-only")
    }

    /// Whether `client` is refused the commands not flagged `stale`
    /// ([`MASTERDOWN`]): a replica whose link is not up, with
    /// `replica-serve-stale-data no`, and the client is not the master's.
    pub fn refuses_stale(&self, srv: &ServerState, client: &Client) -> bool {
        self.is_replica()
            && !client.master
            && !self
                .link
                .lock()
                .as_ref()
                .is_some_and(|l| l.state == LinkState::Connected)
            && !srv.config.get_bool("replica-serve-stale-data")
    }

    /// How the command `def` of `client` treats keys past their deadline
    /// (Redis's `lookupKey` on a replica): `None` on a master (they are
    /// deleted). The master's stream sees them as live, a write on a
    /// writable replica deletes them, other commands see them as missing
    /// and leave them for the master's `DEL`.
    pub fn expiry_policy(
        &self,
        srv: &ServerState,
        client: &Client,
        writes: bool,
    ) -> Option<amber_storage::lazy_expiry::Policy> {
        use amber_storage::lazy_expiry::Policy;
        if !self.is_replica() {
            return None;
        }
        Some(if client.master {
            Policy::Keep
        } else if writes && !srv.config.get_bool("replica-read-only") {
            Policy::Delete
        } else {
            Policy::Hide
        })
    }

    /// The replica's figures, `None` while a master.
    pub fn view(&self) -> Option<ReplicaView> {
        let link = self.link.lock();
        let l = link.as_ref()?;
        let now = now_ms();
        let secs = |ms: u64| (now.saturating_sub(ms) / 1000) as i64;
        let down = self.down_since_ms.load(Ordering::Relaxed);
        Some(ReplicaView {
            host: l.host.clone(),
            port: l.port,
            state: l.state,
            replid: l.replid.clone(),
            offset: self.offset.load(Ordering::Relaxed).max(0),
            read_offset: self.read_offset.load(Ordering::Relaxed).max(0),
            sync_offset: self.sync_offset.load(Ordering::Relaxed),
            last_io_secs: if l.state == LinkState::Connected {
                secs(self.last_io_ms.load(Ordering::Relaxed))
            } else {
                -1
            },
            down_since_secs: if down == 0 { -1 } else { secs(down) },
        })
    }

    /// `ROLE`'s offset: the processed offset while connected, -1 otherwise.
    pub fn role_offset(&self) -> i64 {
        match self.link.lock().as_ref() {
            Some(l) if l.state == LinkState::Connected => self.offset.load(Ordering::Relaxed),
            _ => -1,
        }
    }

    /// Whether `host:port` is the master followed.
    pub fn follows(&self, host: &str, port: u16) -> bool {
        self.link
            .lock()
            .as_ref()
            .is_some_and(|l| l.host.eq_ignore_ascii_case(host) && l.port == port)
    }

    /// Start-up (once the server runs): records the runtime link tasks run
    /// on and follows the `replicaof` directive's master, if any.
    pub fn start(srv: &Arc<ServerState>) {
        let _ = srv
            .replication
            .runtime
            .set(tokio::runtime::Handle::current());
        let directive = srv.config.get("replicaof").unwrap_or_default();
        let mut parts = directive.split_whitespace();
        if let (Some(host), Some(Ok(port))) = (parts.next(), parts.next().map(str::parse::<u16>)) {
            tracing::info!(host, port, "replicaof directive: following the master");
            Self::set_master(srv, host, port);
        }
    }

    /// `REPLICAOF host port`: follows this master from now on (the link to
    /// a previous one is dropped; the data stays until the full sync
    /// replaces it). Blocked clients are ended with [`UNBLOCKED_ROLE`]
    /// and disconnected, as Redis's `replicationSetMaster` does.
    pub fn set_master(srv: &Arc<ServerState>, host: &str, port: u16) {
        Self::follow_master(srv, host, port, None);
    }

    /// A master failing over (`crate::replication::failover`) follows its
    /// replica `host:port`, continuing from its own stream at `offset`:
    /// the first `PSYNC` carries `FAILOVER`, and its answer ends the
    /// failover.
    pub fn set_master_failing_over(srv: &Arc<ServerState>, host: &str, port: u16, offset: u64) {
        let replid = srv.master.replid(srv);
        Self::follow_master(srv, host, port, Some((replid, offset)));
    }

    fn follow_master(
        srv: &Arc<ServerState>,
        host: &str,
        port: u16,
        failover_from: Option<(String, u64)>,
    ) {
        srv.blocking.disconnect_all(srv, UNBLOCKED_ROLE);
        let r = &srv.replication;
        let generation = r.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let mut link = r.link.lock();
        let previous = link.take();
        // What the first `PSYNC` to the new master offers (Redis's cached
        // master, `slaveTryPartialResynchronization`): the new master may
        // be a sibling or a former replica, promoted, that continues it.
        let was_master = !r.active.load(Ordering::Acquire);
        let cached_replid = if was_master {
            // A master continues its own history (Redis's
            // `replicationCacheMasterUsingMyself`); a failover asks with
            // `FAILOVER` instead.
            let own = failover_from.is_none().then(|| srv.master.replid(srv));
            r.offset.store(
                own.as_ref().map_or(-1, |_| srv.master.offset() as i64),
                Ordering::Relaxed,
            );
            // Its new master's stream selects a database before any
            // command (a promotion forgets the database selected).
            r.stream_db.store(0, Ordering::Relaxed);
            own
        } else {
            // A replica keeps the old master's id, and the offset and
            // database of the stream it processed (Redis's
            // `replicationCacheMaster` when the old link is dropped), if a
            // sync ever completed: a full sync cut short forgot the id, so
            // it is never continued. The old task may still be in a batch:
            // the new one waits for its end before reading the offset.
            let id = previous.as_ref().and_then(|old| old.replid.clone());
            if id.is_none() {
                r.offset.store(-1, Ordering::Relaxed);
                r.stream_db.store(0, Ordering::Relaxed);
            }
            id
        };
        let old_task = previous.and_then(|old| old.task);
        if let Some(t) = &old_task {
            t.abort();
        }
        r.read_offset.store(0, Ordering::Relaxed);
        r.down_since_ms.store(0, Ordering::Relaxed);
        r.active.store(true, Ordering::Release);
        srv.master.start_following();
        crate::replica_expires::follow_role(srv);
        let runtime = r
            .runtime
            .get()
            .cloned()
            .or_else(|| tokio::runtime::Handle::try_current().ok());
        let task = runtime.map(|rt| rt.spawn(follow(srv.clone(), generation, old_task)));
        if task.is_none() {
            tracing::error!("no runtime to run the link with the master on");
        }
        *link = Some(Link {
            host: host.to_string(),
            port,
            state: LinkState::Connect,
            replid: cached_replid,
            failover_from,
            task,
        });
        tracing::info!(host, port, "Connecting to MASTER {host}:{port}");
    }

    /// `REPLICAOF NO ONE` (and a failover's `PSYNC ... FAILOVER`): stops
    /// following, the data stays, and this server's stream continues the
    /// master's history from the offset processed, so the master's other
    /// replicas, and the master itself, can continue from it
    /// ([`crate::replication::Master::take_over`]). Returns whether a
    /// master was followed.
    pub fn promote(&self, srv: &ServerState) -> bool {
        let synced = self
            .link
            .lock()
            .as_ref()
            .and_then(|l| l.replid.clone())
            .zip(u64::try_from(self.offset.load(Ordering::Relaxed)).ok());
        let was = self.stop();
        crate::replica_expires::follow_role(srv);
        match synced {
            Some((replid, offset)) => srv.master.take_over(srv, replid, offset),
            None => srv.master.stop_following(),
        }
        was
    }

    /// The master's replication id, once synced (a replica's `replid`).
    pub fn master_replid(&self) -> Option<String> {
        self.link.lock().as_ref().and_then(|l| l.replid.clone())
    }

    /// Stops following; the data stays. Returns whether a master was
    /// followed.
    pub fn stop(&self) -> bool {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let old = self.link.lock().take();
        self.active.store(false, Ordering::Release);
        match old {
            Some(l) => {
                if let Some(t) = l.task {
                    t.abort();
                }
                tracing::info!(
                    host = %l.host,
                    port = l.port,
                    "MASTER MODE enabled: no longer following the master; the data is kept"
                );
                true
            }
            None => false,
        }
    }

    fn current(&self, generation: u64) -> bool {
        self.generation.load(Ordering::SeqCst) == generation
    }

    fn set_state(&self, generation: u64, state: LinkState) {
        let mut link = self.link.lock();
        if let (Some(l), true) = (link.as_mut(), self.current(generation)) {
            l.state = state;
        }
    }

    fn target(&self, generation: u64) -> Option<(String, u16)> {
        let link = self.link.lock();
        match link.as_ref() {
            Some(l) if self.current(generation) => Some((l.host.clone(), l.port)),
            _ => None,
        }
    }
}

/// The link task: sessions with the master until the master changes or
/// `REPLICAOF NO ONE`, one second apart after a failure. `previous`, the
/// task of the master followed before (aborted), is waited for first: it
/// ends the batch it was in, whose offset the first `PSYNC` continues.
async fn follow(
    srv: Arc<ServerState>,
    generation: u64,
    previous: Option<tokio::task::JoinHandle<()>>,
) {
    if let Some(previous) = previous {
        let _ = previous.await;
    }
    let r = &srv.replication;
    while let Some((host, port)) = r.target(generation) {
        match session(&srv, generation, &host, port).await {
            Ok(()) => return,
            Err(e) => {
                if !r.current(generation) {
                    return;
                }
                // `master_link_down_since_seconds` counts from the loss of
                // a link that was up, not from each failed attempt.
                let was_up = r
                    .link
                    .lock()
                    .as_ref()
                    .is_some_and(|l| l.state == LinkState::Connected);
                if was_up {
                    r.down_since_ms.store(now_ms(), Ordering::Relaxed);
                }
                tracing::warn!(host = %host, port, error = %e, "link with the MASTER lost or not established; retrying in 1 second");
            }
        }
        r.set_state(generation, LinkState::Connect);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

type LinkResult<T> = Result<T, String>;

/// The master connection: buffered input, and the commands sent to it.
struct MasterConn {
    stream: TcpStream,
    input: BytesMut,
}

impl MasterConn {
    async fn fill(&mut self) -> LinkResult<usize> {
        let n = tokio::time::timeout(
            Duration::from_secs(60),
            self.stream.read_buf(&mut self.input),
        )
        .await
        .map_err(|_| "timeout reading from the master".to_string())?
        .map_err(|e| format!("read error: {e}"))?;
        if n == 0 {
            return Err("connection closed by the master".into());
        }
        Ok(n)
    }

    async fn send(&mut self, args: &[&[u8]]) -> LinkResult<()> {
        let mut w = ReplyWriter::new();
        w.array(args.len());
        for a in args {
            w.bulk(a);
        }
        self.stream
            .write_all(w.as_bytes())
            .await
            .map_err(|e| format!("write error: {e}"))
    }

    /// One reply line (without CRLF). Lone newlines, the master's
    /// keep-alives while it prepares the payload, are skipped.
    async fn line(&mut self) -> LinkResult<String> {
        loop {
            if let Some(pos) = self.input.iter().position(|&b| b == b'\n') {
                let raw = self.input.split_to(pos + 1);
                let text = String::from_utf8_lossy(&raw).trim_end().to_string();
                if text.is_empty() {
                    continue;
                }
                return Ok(text);
            }
            self.fill().await?;
        }
    }

    /// A command and its one-line reply.
    async fn call(&mut self, args: &[&[u8]]) -> LinkResult<String> {
        self.send(args).await?;
        self.line().await
    }

    /// The RDB payload after `+FULLRESYNC`, `$<len>` then the bytes, or
    /// `$EOF:<40 bytes>`, the bytes, the same 40 bytes, written to `file`
    /// as it arrives (never whole in memory). Returns the payload's length
    /// and whether it came in the diskless (`$EOF:`) form.
    async fn payload_to(&mut self, file: &mut std::fs::File) -> LinkResult<(u64, bool)> {
        use std::io::Write;
        let header = self.line().await?;
        let Some(spec) = header.strip_prefix('$') else {
            return Err(format!(
                "bad protocol from the master, expected the payload: {header}"
            ));
        };
        let io = |e: std::io::Error| format!("cannot write the payload to disk: {e}");
        let mut written = 0u64;
        if let Some(mark) = spec.strip_prefix("EOF:") {
            let mark = mark.as_bytes().to_vec();
            if mark.len() != 40 {
                return Err("bad EOF mark from the master".into());
            }
            // The master sends nothing after the mark until this replica
            // acknowledges the load: the mark ends what was read. The last
            // 40 bytes stay in the buffer until then, as they may be it.
            loop {
                if self.input.ends_with(&mark) {
                    let n = self.input.len() - mark.len();
                    file.write_all(&self.input[..n]).map_err(io)?;
                    self.input.clear();
                    return Ok((written + n as u64, true));
                }
                if self.input.len() > mark.len() {
                    let n = self.input.len() - mark.len();
                    file.write_all(&self.input[..n]).map_err(io)?;
                    self.input.advance(n);
                    written += n as u64;
                }
                self.input.reserve(READ_CHUNK);
                self.fill().await?;
            }
        }
        let len: u64 = spec
            .parse()
            .map_err(|_| format!("bad payload length from the master: {header}"))?;
        while written < len {
            if self.input.is_empty() {
                self.input.reserve(READ_CHUNK);
                self.fill().await?;
            }
            let n = self.input.len().min((len - written) as usize);
            file.write_all(&self.input[..n]).map_err(io)?;
            self.input.advance(n);
            written += n as u64;
        }
        Ok((len, false))
    }
}

/// Bytes read from the master at a time while receiving the payload.
const READ_CHUNK: usize = 256 * 1024;

/// Creates the payload's temporary file in `dir` (Redis's
/// `temp-<unixtime>.<pid>.rdb`), removed when its guard drops: after the
/// load, on a failed transfer, or when the link task is aborted.
fn create_payload_file(srv: &ServerState) -> LinkResult<(TempFile, std::fs::File)> {
    let dir = srv.config.get("dir").unwrap_or_default();
    let name = format!(
        "temp-{}.{}.rdb",
        amber_storage::clock::now_ms() / 1000,
        std::process::id()
    );
    let path = std::path::Path::new(&dir).join(name);
    let file = std::fs::File::create(&path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    Ok((TempFile(path), file))
}

/// Loads the payload file through a read-only memory map: its pages are
/// the page cache's (reclaimable, shared with the file), not anonymous
/// memory, so a payload larger than DRAM loads.
fn load_file(srv: &ServerState, path: &std::path::Path) -> LinkResult<crate::snapshot::LoadReport> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    // SAFETY: the file is this process's own temporary file, which nothing
    // writes or truncates while the map lives (it is removed only after
    // the load, by its `TempFile`'s drop, and unlinking keeps the pages).
    let map = unsafe { memmap2::Mmap::map(&file) }
        .map_err(|e| format!("cannot map {}: {e}", path.display()))?;
    // The loader reads the file once, front to back.
    let _ = map.advise(memmap2::Advice::Sequential);
    replace_keyspace(srv, &map)
}

/// One connection to the master: handshake, full sync, then the stream
/// until the link breaks (`Err`) or the task is no longer current (`Ok`).
async fn session(srv: &Arc<ServerState>, generation: u64, host: &str, port: u16) -> LinkResult<()> {
    let r = &srv.replication;
    let stream = tokio::time::timeout(Duration::from_secs(60), TcpStream::connect((host, port)))
        .await
        .map_err(|_| "timeout connecting to the master".to_string())?
        .map_err(|e| format!("error connecting to the master: {e}"))?;
    let _ = stream.set_nodelay(true);
    r.set_state(generation, LinkState::Connecting);
    tracing::info!(host, port, "MASTER <-> REPLICA sync started");
    let mut conn = MasterConn {
        stream,
        input: BytesMut::with_capacity(64 * 1024),
    };
    let pong = conn.call(&[b"PING"]).await?;
    // As Redis: an authentication error to PING is expected when the
    // master wants AUTH.
    if pong.starts_with('-')
        && !pong.starts_with("-NOAUTH")
        && !pong.starts_with("-NOPERM")
        && !pong.starts_with("-ERR operation not permitted")
    {
        return Err(format!("error reply to PING from the master: {pong}"));
    }
    let auth = srv.config.get("masterauth").unwrap_or_default();
    if !auth.is_empty() {
        let user = srv.config.get("masteruser").unwrap_or_default();
        let reply = if user.is_empty() {
            conn.call(&[b"AUTH", auth.as_bytes()]).await?
        } else {
            conn.call(&[b"AUTH", user.as_bytes(), auth.as_bytes()])
                .await?
        };
        if reply.starts_with('-') {
            return Err(format!("unable to AUTH to the master: {reply}"));
        }
    }
    let my_port = srv.port.load(Ordering::Relaxed).to_string();
    let reply = conn
        .call(&[b"REPLCONF", b"listening-port", my_port.as_bytes()])
        .await?;
    if reply.starts_with('-') {
        tracing::info!(reply = %reply, "(non critical) master does not understand REPLCONF listening-port");
    }
    let reply = conn
        .call(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])
        .await?;
    if reply.starts_with('-') {
        tracing::info!(reply = %reply, "(non critical) master does not understand REPLCONF capa");
    }
    // After a session that synced, ask to continue where it stopped
    // (Redis's `slaveTryPartialResynchronization` with a cached master).
    let (cached, failover_from) = r
        .link
        .lock()
        .as_ref()
        .map(|l| (l.replid.clone(), l.failover_from.clone()))
        .unwrap_or_default();
    let mut processed = r.offset.load(Ordering::Relaxed);
    let reply = match (&cached, &failover_from) {
        (_, Some((id, offset))) => {
            // Our own history: the target continues it as master.
            processed = *offset as i64;
            let next = (processed + 1).to_string();
            tracing::info!(replid = %id, offset = processed + 1, "Asking the failover target to take over");
            let reply = conn
                .call(&[b"PSYNC", id.as_bytes(), next.as_bytes(), b"FAILOVER"])
                .await?;
            let accepted = reply.starts_with("+CONTINUE") || reply.starts_with("+FULLRESYNC");
            if let Some(l) = r.link.lock().as_mut() {
                l.failover_from = None;
            }
            srv.master.failover.psync_answered(srv, accepted);
            if !accepted {
                return Ok(());
            }
            reply
        }
        (Some(id), None) if processed >= 0 => {
            let next = (processed + 1).to_string();
            tracing::info!(replid = %id, offset = processed + 1, "Trying a partial resynchronization");
            conn.call(&[b"PSYNC", id.as_bytes(), next.as_bytes()])
                .await?
        }
        _ => conn.call(&[b"PSYNC", b"?", b"-1"]).await?,
    };
    if let Some(rest) = reply.strip_prefix("+CONTINUE") {
        r.offset.store(processed, Ordering::Relaxed);
        tracing::info!("Successful partial resynchronization with master.");
        let new_id = rest.trim();
        r.last_io_ms.store(now_ms(), Ordering::Relaxed);
        r.read_offset.store(processed, Ordering::Relaxed);
        {
            let mut link = r.link.lock();
            if let (Some(l), true) = (link.as_mut(), r.current(generation)) {
                if !new_id.is_empty() {
                    l.replid = Some(new_id.to_string());
                }
                l.state = LinkState::Connected;
            }
        }
        if !new_id.is_empty() && r.current(generation) {
            // The master was promoted meanwhile: this server's history
            // (and its replicas') continues under the new id.
            srv.master.shift(srv, new_id.to_string());
        }
        return stream_commands(srv, generation, conn).await;
    }
    let Some(rest) = reply.strip_prefix("+FULLRESYNC ") else {
        return Err(format!(
            "unexpected reply to PSYNC from the master: {reply}"
        ));
    };
    let mut parts = rest.split_whitespace();
    let (Some(replid), Some(Ok(start))) = (parts.next(), parts.next().map(str::parse::<i64>))
    else {
        return Err(format!("bad +FULLRESYNC from the master: {reply}"));
    };
    let replid = replid.to_string();
    tracing::info!(replid = %replid, offset = start, "Full resync from master");
    // The old data is going: nothing to continue from until this sync
    // has loaded.
    r.offset.store(-1, Ordering::Relaxed);
    {
        let mut link = r.link.lock();
        if let (Some(l), true) = (link.as_mut(), r.current(generation)) {
            l.replid = None;
        }
    }
    r.set_state(generation, LinkState::Sync);
    let (tmp, mut file) = create_payload_file(srv)?;
    let (bytes, eof) = conn.payload_to(&mut file).await?;
    drop(file);
    if !r.current(generation) {
        return Ok(());
    }
    tracing::info!(
        bytes,
        file = %tmp.0.display(),
        "MASTER <-> REPLICA sync: receiving the payload done; flushing the old data and loading"
    );
    let started = Instant::now();
    let owner = srv.clone();
    let report = tokio::task::spawn_blocking(move || {
        let loaded = load_file(&owner, &tmp.0);
        drop(tmp);
        loaded
    })
    .await
    .map_err(|e| format!("the load failed: {e}"))??;
    tracing::info!(
        keys = report.keys,
        expired_keys_skipped = report.expired,
        functions = report.functions,
        ms = started.elapsed().as_millis() as u64,
        "MASTER <-> REPLICA sync: finished with success"
    );
    if !r.current(generation) {
        return Ok(());
    }
    r.offset.store(start, Ordering::Relaxed);
    // The database the master's stream had selected at the snapshot (a
    // replica in a chain continues a stream that may not SELECT again).
    r.stream_db
        .store(report.stream_db.unwrap_or(0), Ordering::Relaxed);
    // This server's own replicas now get the master's stream.
    srv.master
        .follow(srv, replid.clone(), u64::try_from(start).unwrap_or(0));
    r.sync_offset.store(start, Ordering::Relaxed);
    r.read_offset.store(start, Ordering::Relaxed);
    r.last_io_ms.store(now_ms(), Ordering::Relaxed);
    {
        let mut link = r.link.lock();
        if let (Some(l), true) = (link.as_mut(), r.current(generation)) {
            l.replid = Some(replid);
            l.state = LinkState::Connected;
        }
    }
    if eof {
        // A diskless master sends the stream once told the load is done
        // (Redis's replica acknowledges at once too).
        send_ack(&mut conn, start).await?;
    }
    stream_commands(srv, generation, conn).await
}

/// A full sync replaces the data: flush every database and the function
/// libraries (the flush path of `FLUSHALL`), then load the payload, all
/// under the exclusive gate. A payload that does not load leaves an empty
/// keyspace (and the link is retried).
fn replace_keyspace(srv: &ServerState, data: &[u8]) -> LinkResult<crate::snapshot::LoadReport> {
    let ks = &srv.keyspace;
    let _gate = ks.exclusive();
    // Keys already past their deadline load too: the master's `DEL`s
    // remove them.
    let _keep = amber_storage::lazy_expiry::Scoped::new(amber_storage::lazy_expiry::Policy::Keep);
    drop(ks.detach_all());
    let _ = srv.scripting.functions.flush(ks);
    srv.tracking.flushed(srv, 0);
    match crate::snapshot::load_bytes(srv, data) {
        Ok(report) => Ok(report),
        Err(e) => {
            tracing::warn!(error = %e, "failed loading the payload of the master; the keyspace is left empty");
            drop(ks.detach_all());
            let _ = srv.scripting.functions.flush(ks);
            Err(format!("failed loading the RDB payload: {e}"))
        }
    }
}

/// Unregisters the master client when its session ends (also when the
/// task is aborted).
struct Registered<'a>(&'a ServerState, u64);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.clients.unregister(self.1);
    }
}

/// The replication stream: every command runs as the master client, its
/// reply dropped; `REPLCONF GETACK` is answered; an ACK goes every second.
async fn stream_commands(
    srv: &Arc<ServerState>,
    generation: u64,
    mut conn: MasterConn,
) -> LinkResult<()> {
    use std::os::fd::AsRawFd;
    let r = &srv.replication;
    let unspecified = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    let addr = conn.stream.peer_addr().unwrap_or(unspecified);
    let laddr = conn.stream.local_addr().unwrap_or(unspecified);
    let handle = srv.clients.register(addr, laddr, conn.stream.as_raw_fd());
    let _registered = Registered(srv, handle.id);
    {
        // Redis's master client: flag `M`, no user (it may do anything).
        let mut info = handle.info.lock();
        info.master = true;
        info.user = b"(superuser)".to_vec();
    }
    let mut client = Client::new(handle, true);
    client.master = true;
    client.db = r.stream_db.load(Ordering::Relaxed);
    let mut parser =
        RequestParser::new(srv.config.hot.proto_max_bulk_len.load(Ordering::Relaxed) as usize);
    let mut out = ReplyWriter::new();
    let mut ack = tokio::time::interval(Duration::from_secs(1));
    ack.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Commands already buffered (sent along with the payload) first.
        // The first command of a batch reads the clock (see `cmd::call`):
        // left set, it would date this batch from the end of the last one,
        // however long ago (an XCLAIM's TIME was then clamped to that past).
        client.cmd_clock = None;
        let mut acks = Vec::new();
        let mut consumed = 0;
        loop {
            let pending = conn.input.get(consumed..).unwrap_or_default();
            let frame = parser
                .parse(pending, true)
                .map_err(|e| format!("protocol error from the master: {}", e.0))?;
            let Some(frame) = frame else { break };
            let (args, len) = parser.frame_args(pending, &frame);
            consumed += len;
            let is_replconf = args
                .first()
                .is_some_and(|n| n.eq_ignore_ascii_case(b"replconf"));
            if is_replconf {
                // Answered before this command counts, as Redis does.
                if args
                    .get(1)
                    .is_some_and(|s| s.eq_ignore_ascii_case(b"getack"))
                {
                    acks.push(r.offset.load(Ordering::Relaxed));
                }
                // Proxied too: this server's replicas answer the GETACK.
                srv.master
                    .proxy(srv, pending.get(..len).unwrap_or_default(), || ());
            } else if !args.is_empty() {
                let mut ctx = Ctx {
                    srv,
                    client: &mut client,
                    out: &mut out,
                };
                let bytes = pending.get(..len).unwrap_or_default();
                srv.master.proxy(srv, bytes, || {
                    crate::cmd::execute(&mut ctx, &args);
                    r.stream_db.store(ctx.client.db, Ordering::Relaxed);
                });
                if out.as_bytes().first() == Some(&b'-') {
                    tracing::debug!(
                        command = %String::from_utf8_lossy(args.first().copied().unwrap_or_default()),
                        reply = %String::from_utf8_lossy(out.as_bytes()).trim_end(),
                        "a command from the master failed"
                    );
                }
                out.clear();
            }
            r.offset.fetch_add(len as i64, Ordering::Relaxed);
        }
        conn.input.advance(consumed);
        if consumed > 0 {
            r.stream_db.store(client.db, Ordering::Relaxed);
            after_batch(srv, &mut client).await;
        }
        for offset in acks {
            send_ack(&mut conn, offset).await?;
        }
        if !r.current(generation) {
            return Ok(());
        }
        let read = tokio::select! {
            read = conn.fill() => Some(read?),
            _ = ack.tick() => None,
        };
        match read {
            Some(n) => {
                r.read_offset.fetch_add(n as i64, Ordering::Relaxed);
                r.last_io_ms.store(now_ms(), Ordering::Relaxed);
            }
            None => send_ack(&mut conn, r.offset.load(Ordering::Relaxed)).await?,
        }
    }
}

async fn send_ack(conn: &mut MasterConn, offset: i64) -> LinkResult<()> {
    let offset = offset.to_string();
    conn.send(&[b"REPLCONF", b"ACK", offset.as_bytes()]).await
}

/// What a connection does after a batch: BCAST invalidations, durability
/// of the writes, then the replies of the clients they unblocked.
async fn after_batch(srv: &Arc<ServerState>, client: &mut Client) {
    if std::mem::take(&mut client.tracking_batch) {
        srv.tracking.broadcast(srv, None);
    }
    let ticket = amber_storage::tier::take_ticket();
    if ticket != amber_storage::Ticket::NONE && srv.keyspace.tiers.must_wait() {
        let owner = srv.clone();
        let waited =
            tokio::task::spawn_blocking(move || owner.keyspace.tiers.wait_durable(ticket)).await;
        if !matches!(waited, Ok(Ok(_))) {
            tracing::error!("the arena failed to persist writes of the master");
        }
    }
    client.block.send_deliveries();
    client.subs.mailbox.drain_into(&mut ReplyWriter::new());
}
