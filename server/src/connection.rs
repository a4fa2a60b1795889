//! One client connection: read, parse every complete request, execute them
//! in order, write all their replies with one write, repeat.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amber_storage::PREFETCH_MAX_KEYS;
use bytes::{Buf, BytesMut};
use smallvec::SmallVec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::Client;
use crate::cmd::{self, Ctx};
use crate::cores::{Affinity, Spread};
use crate::resp::{self, ReplyWriter, RequestParser};
use crate::state::ServerState;

/// Smallest free space kept in the read buffer before a read.
const READ_CHUNK: usize = 16 * 1024;

/// Batches a connection runs without cache hints after one whose keys were
/// mostly absent (see `prefetch_batch`).
const HINT_SKIP: u32 = 15;

/// An idle read buffer larger than this is replaced by a small one.
const SHRINK_ABOVE: usize = 1024 * 1024;

/// A connection's socket, buffers and parser (the socket as a tokio
/// stream while a thread serves it, as a std one between two threads).
struct Connection<S = TcpStream> {
    stream: S,
    input: BytesMut,
    parser: RequestParser,
    out: ReplyWriter,
    /// Batches left to run without cache hints (see [`prefetch_batch`]).
    hint_skip: u32,
    /// Single-shard batches left before one takes a lease to measure (see
    /// `crate::lease`).
    lease_probe: u32,
    /// Batches in a row on one shard (see `crate::cores`).
    affinity: Affinity,
}

/// Why [`Connection::run`] returned without an error.
enum Exit {
    /// The connection is over.
    Closed,
    /// The connection moves to this connection thread (see `crate::cores`).
    Move(usize),
}

/// A connection between two threads: all of its state, its socket out of
/// any runtime.
pub struct Parked {
    conn: Connection<std::net::TcpStream>,
    client: Client,
}

impl<S> Connection<S> {
    /// The same connection over another form of its socket.
    fn convert<T>(self, f: impl FnOnce(S) -> std::io::Result<T>) -> std::io::Result<Connection<T>> {
        Ok(Connection {
            stream: f(self.stream)?,
            input: self.input,
            parser: self.parser,
            out: self.out,
            hint_skip: self.hint_skip,
            lease_probe: self.lease_probe,
            affinity: self.affinity,
        })
    }
}

/// Serves one accepted connection until it closes, is killed, or the server
/// shuts down.
pub async fn serve(srv: Arc<ServerState>, stream: TcpStream) {
    let (Ok(addr), Ok(laddr)) = (stream.peer_addr(), stream.local_addr()) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let fd = {
        use std::os::fd::AsRawFd;
        stream.as_raw_fd()
    };
    let handle = srv.clients.register(addr, laddr, fd);
    let client = Client::new(handle.clone(), !srv.auth_required());
    let max_bulk = srv.config.hot.proto_max_bulk_len.load(Ordering::Relaxed) as usize;
    let conn = Connection {
        stream,
        input: BytesMut::with_capacity(READ_CHUNK),
        parser: RequestParser::new(max_bulk),
        out: ReplyWriter::new(),
        hint_skip: 0,
        lease_probe: 0,
        affinity: Affinity::default(),
    };
    serve_until_closed_or_moved(srv, conn, client).await;
}

/// Goes on serving a connection another connection thread parked.
pub async fn resume(srv: Arc<ServerState>, parked: Parked) {
    let Parked { conn, mut client } = parked;
    match conn.convert(TcpStream::from_std) {
        Ok(conn) => serve_until_closed_or_moved(srv, conn, client).await,
        Err(e) => {
            tracing::warn!(client = client.handle.id, error = %e, "cannot move a connection");
            forget(&srv, &mut client);
        }
    }
}

/// Runs a connection until it closes (then forgets it) or moves to another
/// connection thread (then hands it over).
async fn serve_until_closed_or_moved(
    srv: Arc<ServerState>,
    mut conn: Connection,
    mut client: Client,
) {
    match conn.run(&srv, &mut client).await {
        // Only a server with connection threads asks for a move.
        Ok(Exit::Move(to)) => {
            if let Some(cores) = srv.cores.get() {
                match conn.convert(TcpStream::into_std) {
                    Ok(conn) => {
                        srv.stats.connection_moves.fetch_add(1, Ordering::Relaxed);
                        cores.send(to, Parked { conn, client });
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(client = client.handle.id, error = %e, "connection closed")
                    }
                }
            }
        }
        Ok(Exit::Closed) => {}
        Err(e) => tracing::debug!(client = client.handle.id, error = %e, "connection closed"),
    }
    forget(&srv, &mut client);
}

/// Writes all of `bytes` unless the client is killed first (then false).
/// `write` is cancel-safe: a write the wake-up interrupts wrote nothing.
async fn write_or_killed(
    stream: &mut TcpStream,
    mut bytes: &[u8],
    handle: &crate::client::ClientHandle,
) -> std::io::Result<bool> {
    let mut woken = false;
    while !bytes.is_empty() {
        if handle.killed.load(Ordering::Relaxed) {
            return Ok(false);
        }
        tokio::select! {
            n = stream.write(bytes) => {
                let n = n?;
                if n == 0 {
                    return Err(std::io::ErrorKind::WriteZero.into());
                }
                bytes = bytes.get(n..).unwrap_or_default();
            }
            // Any wake-up (a stream post too) makes the loop look at
            // `killed`.
            _ = handle.wake.notified() => woken = true,
        }
    }
    if woken {
        // Given back, so the connection drains what that wake-up was for.
        handle.wake.notify_one();
    }
    Ok(true)
}

/// What the server forgets of a closed connection.
fn forget(srv: &ServerState, client: &mut Client) {
    // A full sync still producing this replica's payload stops.
    client.subs.mailbox.close();
    // A block left behind by an I/O error must not stay in the registry.
    if let Some(b) = client.block.waiting.take() {
        srv.blocking.cancel(b.waiter());
    }
    cmd::multi::forget_client(srv, client);
    if client.monitoring {
        srv.monitors.remove(client.handle.id);
    }
    if client.replica.take().is_some() {
        srv.master.detach(client.handle.id);
    }
    let handle = client.handle.clone();
    srv.tracking.disable(srv, &handle, &mut client.tracking);
    srv.clients.unregister(client.handle.id);
}

impl Connection {
    async fn run(&mut self, srv: &Arc<ServerState>, client: &mut Client) -> std::io::Result<Exit> {
        let mut shutdown = srv.shutdown_signal();
        if srv.shutting_down() {
            return Ok(Exit::Closed);
        }
        let mailbox = client.subs.mailbox.clone();
        loop {
            let batch = if client.authenticated || !srv.auth_required() {
                peek_batch(srv, &self.input)
            } else {
                PeekedBatch::default()
            };
            // A batch on one shard runs in its turn, when its shard's
            // batches are long enough for that to pay (see `crate::lease`).
            let slot = batch.one_shard.map(|s| srv.leases.slot(client.db, s));
            let db = client.db;
            let pipelined = batch.walked >= 2;
            let move_to = srv
                .cores
                .get()
                .and_then(|cores| self.affinity.record(cores, db, batch.spread));
            let lease = match slot {
                Some(slot) if slot.worth_it() || self.lease_probe == 0 => {
                    self.lease_probe = crate::lease::PROBE_EVERY;
                    Some((slot, slot.acquire().await, Instant::now()))
                }
                Some(_) => {
                    self.lease_probe -= 1;
                    None
                }
                None => None,
            };
            prefetch_batch(srv, client.db, batch, &mut self.hint_skip);
            self.process(srv, client);
            // The server began to shut down meanwhile (`SHUTDOWN NOSAVE`
            // under a script: Redis exits under it): nothing more goes out.
            if srv.shutting_down() {
                return Ok(Exit::Closed);
            }
            // BCAST invalidations of the keys this batch modified.
            if std::mem::take(&mut client.tracking_batch) {
                let me = Some((client.handle.id, &mut self.out));
                srv.tracking.broadcast(srv, me);
            }
            if let Some((slot, guard, started)) = lease {
                slot.record(started.elapsed());
                drop(guard);
            }
            // Pub/sub messages posted by other clients go out with this batch.
            mailbox.drain_into(&mut self.out);
            // Writes of this batch must be durable before any reply leaves
            // (`persistence pmem`): one wait covers the whole batch (group commit).
            let ticket = amber_storage::tier::take_ticket();
            let tiers = &srv.keyspace.tiers;
            if ticket != amber_storage::Ticket::NONE && tiers.must_wait() {
                // On the blocking pool: this thread serves other connections
                // meanwhile, and their writes join the same flush.
                let owner = srv.clone();
                let waited =
                    tokio::task::spawn_blocking(move || owner.keyspace.tiers.wait_durable(ticket))
                        .await;
                if let Err(e) = waited
                    .map_err(std::io::Error::other)
                    .and_then(|r| r.map_err(std::io::Error::other))
                {
                    tracing::error!(error = %e, "the arena failed to persist; closing the connection");
                    return Ok(Exit::Closed);
                }
            }
            // Blocking: replies of clients this batch served leave once it is durable.
            client.block.send_deliveries();
            if client.output_overflow {
                // As Redis's `CLIENT_CLOSE_ASAP`: nothing pending is sent.
                return Ok(Exit::Closed);
            }
            if !self.out.is_empty() {
                // After a pipelined batch, the thread runs every other ready
                // connection before this write (`crate::round`), so replies
                // leave together, as Redis writes them before it sleeps: the
                // client is woken once for many instead of once per reply (a
                // cross-core wake-up is several microseconds on a VM). A
                // single request does not wait: when that was a yield, it
                // cost 3% of GET -P 1's CPU, more than it saved.
                if pipelined {
                    crate::round::end_of_round().await;
                }
                if client.replica.is_some() {
                    // A replica that reads nothing would hold this write
                    // forever: a kill (its full sync timed out, its output
                    // buffer overflowed) ends it.
                    if !write_or_killed(&mut self.stream, self.out.as_bytes(), &client.handle)
                        .await?
                    {
                        return Ok(Exit::Closed);
                    }
                } else {
                    self.stream.write_all(self.out.as_bytes()).await?;
                }
                srv.stats.net_output_bytes.add(self.out.len() as u64);
                self.out.clear();
            }
            if client.close_after_reply || client.handle.killed.load(Ordering::Relaxed) {
                if let Some(b) = client.block.waiting.take() {
                    srv.blocking.cancel(b.waiter());
                }
                return Ok(Exit::Closed);
            }
            // Blocking: a command blocked; wait for its reply before running
            // the rest of the pipeline (see `crate::blocking`).
            if let Some(blocked) = client.block.waiting.take() {
                if !self
                    .wait_blocked(srv, client, blocked, &mut shutdown)
                    .await?
                {
                    return Ok(Exit::Closed);
                }
                continue;
            }
            // `CLIENT PAUSE`: wait for its end, then run the rest.
            if std::mem::take(&mut client.postponed) {
                if !self.wait_unpaused(srv, client, &mut shutdown).await? {
                    return Ok(Exit::Closed);
                }
                continue;
            }
            if let Some(to) = move_to {
                return Ok(Exit::Move(to));
            }
            let limit = srv
                .config
                .hot
                .client_query_buffer_limit
                .load(Ordering::Relaxed) as usize;
            if self.input.len() > limit {
                tracing::warn!(
                    client = client.handle.id,
                    "closing client that reached max query buffer length"
                );
                return Ok(Exit::Closed);
            }
            // A connection that once received a huge request does not keep its
            // buffer: once drained, a buffer over 1 MiB is given back.
            if self.input.is_empty() && self.input.capacity() > SHRINK_ABOVE {
                self.input = BytesMut::with_capacity(READ_CHUNK);
            }
            // Make room: the whole of a large bulk being received, or a chunk.
            let wanted = self.parser.bytes_wanted().saturating_sub(self.input.len());
            self.input
                .reserve(wanted.clamp(READ_CHUNK, limit.max(READ_CHUNK)));
            let timeout = srv.config.hot.timeout.load(Ordering::Relaxed);
            let idle = async {
                if timeout == 0 {
                    std::future::pending::<()>().await
                } else {
                    tokio::time::sleep(Duration::from_secs(timeout)).await
                }
            };
            tokio::select! {
                n = self.stream.read_buf(&mut self.input) => {
                    let n = n?;
                    if n == 0 {
                        return Ok(Exit::Closed);
                    }
                    srv.stats.net_input_bytes.add(n as u64);
                    client.handle.touch();
                    // Checked before parsing, as Redis does after each read: a
                    // request over the limit is never executed.
                    if self.input.len() > limit {
                        tracing::warn!(client = client.handle.id, "closing client that reached max query buffer length");
                        return Ok(Exit::Closed);
                    }
                }
                // One wake-up for everything but input (a pub/sub message,
                // drained at the top of the loop; CLIENT KILL; shutdown), so
                // a batch registers one waiter, on this client's own Notify,
                // instead of one per cause (the shutdown one was shared by
                // every connection: a cache line both cores wrote per batch).
                _ = client.handle.wake.notified() => {
                    if client.handle.killed.load(Ordering::Relaxed) || srv.shutting_down() {
                        return Ok(Exit::Closed);
                    }
                }
                _ = idle => return Ok(Exit::Closed),
            }
        }
    }

    /// Waits while the client is blocked (`BLPOP`...): for the reply a
    /// pusher sends, the deadline, or the end of the connection, reading
    /// (but not executing) further input meanwhile so a disconnection is
    /// seen. Whoever removes the waiter from the registry decides its reply
    /// (`crate::blocking`). Returns false when the connection must close.
    async fn wait_blocked(
        &mut self,
        srv: &Arc<ServerState>,
        client: &mut Client,
        mut blocked: crate::blocking::Blocked,
        shutdown: &mut tokio::sync::watch::Receiver<bool>,
    ) -> std::io::Result<bool> {
        let mut deadline = blocked.deadline().map(tokio::time::Instant::from_std);
        let mut eof = false;
        loop {
            let limit = srv
                .config
                .hot
                .client_query_buffer_limit
                .load(Ordering::Relaxed) as usize;
            if self.input.len() > limit {
                srv.blocking.cancel(blocked.waiter());
                return Ok(false);
            }
            self.input.reserve(READ_CHUNK);
            let timer = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                reply = blocked.reply() => {
                    let Some(reply) = reply else {
                        return Ok(false);
                    };
                    if !client.reply.silenced() {
                        self.out.raw(&reply);
                    }
                    client.reply.command_done();
                    return Ok(true);
                }
                _ = timer => {
                    deadline = None;
                    if srv.blocking.cancel(blocked.waiter()) {
                        if !client.reply.silenced() {
                            blocked.timeout_reply(&mut self.out);
                        }
                        client.reply.command_done();
                        return Ok(true);
                    }
                    // Served in the same instant: the reply is in the channel.
                }
                n = self.stream.read_buf(&mut self.input), if !eof => {
                    match n {
                        Ok(0) | Err(_) => {
                            eof = true;
                            if srv.blocking.cancel(blocked.waiter()) {
                                return Ok(false);
                            }
                        }
                        Ok(n) => {
                            srv.stats.net_input_bytes.add(n as u64);
                        }
                    }
                }
                _ = client.handle.wake.notified() => {
                    if client.handle.killed.load(Ordering::Relaxed) {
                        srv.blocking.cancel(blocked.waiter());
                        return Ok(false);
                    }
                }
                _ = shutdown.changed() => {
                    srv.blocking.cancel(blocked.waiter());
                    return Ok(false);
                }
            }
        }
    }

    /// Waits while a `CLIENT PAUSE` holds this client's next command back
    /// (see `crate::pause`): until the pause ends or changes, reading (but
    /// not executing) further input meanwhile so a disconnection is seen.
    /// Returns false when the connection must close.
    async fn wait_unpaused(
        &mut self,
        srv: &Arc<ServerState>,
        client: &mut Client,
        shutdown: &mut tokio::sync::watch::Receiver<bool>,
    ) -> std::io::Result<bool> {
        // Counted in `INFO`'s `blocked_clients` while it waits.
        let _held = srv.pause.hold();
        let limit = srv
            .config
            .hot
            .client_query_buffer_limit
            .load(Ordering::Relaxed) as usize;
        loop {
            if self.input.len() > limit {
                return Ok(false);
            }
            self.input.reserve(READ_CHUNK);
            tokio::select! {
                _ = srv.pause.changed_or_ended() => return Ok(true),
                n = self.stream.read_buf(&mut self.input) => match n {
                    Ok(0) | Err(_) => return Ok(false),
                    Ok(n) => {
                        srv.stats.net_input_bytes.add(n as u64);
                    }
                },
                _ = client.handle.wake.notified() => {
                    if client.handle.killed.load(Ordering::Relaxed) || srv.shutting_down() {
                        return Ok(false);
                    }
                }
                _ = shutdown.changed() => return Ok(false),
            }
        }
    }

    /// Parses and executes every complete request in the input buffer.
    fn process(&mut self, srv: &ServerState, client: &mut Client) {
        // `CONFIG SET proto-max-bulk-len` applies to connections already open.
        self.parser.max_bulk_len =
            srv.config.hot.proto_max_bulk_len.load(Ordering::Relaxed) as usize;
        let mut consumed = 0;
        client.batch_input_len = self.input.len();
        // The first command of a batch reads the clock (see `cmd::call`).
        client.cmd_clock = None;
        while !client.close_after_reply && !client.output_overflow {
            let pending = self.input.get(consumed..).unwrap_or_default();
            let frame = match self
                .parser
                .parse(pending, client.authenticated || !srv.auth_required())
            {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(client = client.handle.id, error = %e.0, "protocol error");
                    srv.stats.record_error(&format!("ERR {}", e.0));
                    self.out.error(&format!("ERR {}", e.0));
                    client.close_after_reply = true;
                    break;
                }
            };
            let mut args = SmallVec::new();
            let len = self.parser.fill_args(pending, &frame, &mut args);
            if args.is_empty() {
                consumed += len;
                continue;
            }
            // `CLIENT PAUSE`: this request and the rest wait in the buffer.
            if crate::pause::postpones(srv, client, &args) {
                client.postponed = true;
                break;
            }
            let mark = self.out.len();
            // A replica of this server reads the stream on this socket:
            // replies to what it sends would corrupt it (Redis sends none).
            let replica = client.replica.is_some();
            let mut ctx = Ctx {
                srv,
                client: &mut *client,
                out: &mut self.out,
            };
            cmd::execute(&mut ctx, &args);
            consumed += len;
            // A blocked client runs nothing more until it is served (its
            // reply, when it comes, is the command's: see `wait_blocked`).
            if client.block.waiting.is_some() {
                break;
            }
            if client.reply.silenced() || replica {
                self.out.drop_reply_since(mark);
            }
            client.reply.command_done();
        }
        self.input.advance(consumed);
        client.handle.info.lock().qbuf = self.input.len();
    }
}

/// What a look at a batch's complete requests found (see [`peek_batch`]).
#[derive(Default)]
struct PeekedBatch<'a> {
    /// Requests walked.
    walked: usize,
    /// The first key of each request whose command takes its first key as
    /// first argument, a key equal to the one before it left out (a batch of
    /// `LPUSH mylist` is one key).
    keys: SmallVec<[&'a [u8]; PREFETCH_MAX_KEYS]>,
    /// The shard of those keys, when there are two or more requests with
    /// keys and all their keys are in one shard.
    one_shard: Option<usize>,
    /// Where those keys are: in no shard (there are none), one, or several.
    spread: Spread,
}

/// Requests in a row with the same command and key after which the peek
/// stops: the batch is taken to go on alike (a queue's producer,
/// `redis-benchmark`), and walking the rest of it cost about 4% of a
/// pipelined `LPUSH`'s instructions. Guessing wrong costs a lease or a
/// cache hint, never a reply (see `crate::resp::peek`).
const PEEK_ALIKE: usize = 4;

/// Looks at the first [`PREFETCH_MAX_KEYS`] complete requests in `input`
/// without consuming them (fewer when they repeat: [`PEEK_ALIKE`]).
fn peek_batch<'a>(srv: &ServerState, input: &'a [u8]) -> PeekedBatch<'a> {
    let mut batch = PeekedBatch::default();
    let (mut keyed, mut shard, mut mixed) = (0usize, None, false);
    let mut scripted = false;
    let (mut last_name, mut alike): (&[u8], usize) = (&[], 0);
    batch.walked = resp::peek::first_args(input, PREFETCH_MAX_KEYS, |name, first| {
        let def = srv.commands.get(name);
        if def.is_none_or(|def| def.first_key != 1) {
            // A script (the commands flagged `skip_monitor`: `EVAL*`,
            // `FCALL*`) may run for long (`busy-reply-threshold`): its
            // batch takes no lease, which the shard's other clients would
            // wait for without getting their `-BUSY`; its connection moves
            // to the scripts' home thread (`crate::cores`).
            scripted |= def.is_some_and(|def| def.flags.has(cmd::Flags::SKIP_MONITOR));
            mixed |= scripted;
            return true;
        }
        keyed += 1;
        if batch.keys.last() == Some(&first) {
            alike = if name == last_name { alike + 1 } else { 1 };
            last_name = name;
            return alike + 1 < PEEK_ALIKE;
        }
        last_name = name;
        alike = 0;
        batch.keys.push(first);
        if !mixed || shard.is_none() {
            let s = srv.keyspace.shard_index(first);
            mixed |= shard.is_some_and(|t| t != s);
            shard = Some(s);
        }
        true
    });
    batch.spread = match shard {
        None if scripted => Spread::Scripts,
        None => Spread::NoKeys,
        Some(_) if mixed => Spread::Shards,
        Some(s) => Spread::Shard(s),
    };
    if keyed >= 2 && !mixed {
        batch.one_shard = shard;
    }
    batch
}

/// Hints the cache lines of the keys a pipelined batch is about to use (see
/// `amber_storage::Keyspace::prefetch`): the first keys [`peek_batch`]
/// found. A lone key gains nothing (there is nothing to overlap its misses
/// with), so only batches of two or more distinct keys are hinted. When
/// most keys of a batch are absent (GETs that miss, SETs of new keys), the
/// hints only cost (8% more CPU per GET of an absent key): the next
/// [`HINT_SKIP`] batches of the connection then run without them, and the
/// one after looks again.
fn prefetch_batch(srv: &ServerState, db: usize, batch: PeekedBatch<'_>, skip: &mut u32) {
    if *skip > 0 {
        *skip -= 1;
        return;
    }
    if batch.walked >= 2 && batch.keys.len() >= 2 {
        let wanted = batch.keys.len();
        if srv.keyspace.prefetch(db, batch.keys) * 2 < wanted {
            *skip = HINT_SKIP;
        }
    }
}
