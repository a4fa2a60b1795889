//! Client state: what one connection remembers between commands, and the
//! registry `CLIENT LIST` / `CLIENT KILL` work on.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// The part of a client other connections can see (for `CLIENT LIST`,
/// `CLIENT KILL`, `INFO clients`).
#[derive(Debug)]
pub struct ClientHandle {
    /// Unique, increasing id (`CLIENT ID`).
    pub id: u64,
    /// Peer address.
    pub addr: SocketAddr,
    /// Local address.
    pub laddr: SocketAddr,
    /// Socket file descriptor.
    pub fd: i32,
    /// When the connection was accepted.
    pub created: Instant,
    /// Milliseconds since `created` of the last read from the client (as
    /// Redis's `lastinteraction`: per read, not per command; Redis also
    /// counts its writes, which here always follow a read).
    pub last_interaction_ms: AtomicU64,
    /// Identity (address) of the last command's definition: the name is
    /// copied under the `info` lock only when the command changes.
    last_cmd_key: AtomicUsize,
    /// Selected database.
    pub db: AtomicUsize,
    /// Protocol version (2 or 3).
    pub resp: AtomicUsize,
    /// Mutable descriptive fields.
    pub info: Mutex<ClientInfo>,
    /// Set by `CLIENT KILL`; the connection closes at its next chance.
    pub killed: AtomicBool,
    /// Wakes the connection task: it was killed, a pub/sub message was
    /// posted to it, or the server is shutting down.
    pub wake: Notify,
    /// Blocked in a blocking command (`CLIENT LIST` flag `b`); maintained by
    /// `crate::blocking`.
    pub blocked: AtomicBool,
    /// A watched key changed (`CLIENT_DIRTY_CAS`, `CLIENT LIST` flag `d`):
    /// the flag the client's [`crate::watch::ClientWatch`] keeps.
    pub watch_dirty: Arc<AtomicBool>,
    /// The connection's pub/sub mailbox (set once the connection's state
    /// exists): where a tracking client redirecting here sends invalidations.
    pub mailbox: OnceLock<Weak<crate::pubsub::Mailbox>>,
}

/// Descriptive fields of a client that change rarely.
#[derive(Debug, Default, Clone)]
pub struct ClientInfo {
    /// `CLIENT SETNAME`.
    pub name: Vec<u8>,
    /// `CLIENT SETINFO LIB-NAME`.
    pub lib_name: Vec<u8>,
    /// `CLIENT SETINFO LIB-VER`.
    pub lib_ver: Vec<u8>,
    /// The authenticated user (`CLIENT LIST`'s `user=`).
    pub user: Vec<u8>,
    /// Full name of the last command run.
    pub last_cmd: String,
    /// Bytes pending in the query buffer, updated per batch.
    pub qbuf: usize,
    /// Whether the client is in MULTI.
    pub multi: Option<usize>,
    /// `CLIENT NO-EVICT`.
    pub no_evict: bool,
    /// `CLIENT NO-TOUCH`.
    pub no_touch: bool,
    /// Subscriptions: channels, patterns, shard channels (`sub=`, `psub=`, `ssub=`).
    pub subs: [usize; 3],
    /// In pub/sub mode (flag `P`).
    pub pubsub: bool,
    /// In `MONITOR` mode (flag `O`).
    pub monitor: bool,
    /// A replica of this server (flag `S`, type `replica`).
    pub replica: bool,
    /// The master's link on a replica (flag `M`, type `master`).
    pub master: bool,
    /// `CLIENT TRACKING ON` (flags `t`, `R`, `B`, `redir=`).
    pub tracking: Option<crate::tracking::TrackingView>,
}

impl ClientHandle {
    /// Records the command being run (for `CLIENT LIST`'s `cmd=`). Only
    /// this client's connection calls it; a pipeline of one command costs
    /// one compare per call.
    pub fn set_last_command(&self, def: &crate::cmd::CommandDef) {
        let key = def as *const crate::cmd::CommandDef as usize;
        // A load, not a swap: the pipeline's common case writes nothing.
        if self.last_cmd_key.load(Ordering::Relaxed) != key {
            self.last_cmd_key.store(key, Ordering::Relaxed);
            let mut info = self.info.lock();
            info.last_cmd.clear();
            info.last_cmd.push_str(&def.name);
        }
    }

    /// Records a read from the client (for `CLIENT LIST`'s `idle=`).
    pub fn touch(&self) {
        self.last_interaction_ms
            .store(self.created.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Seconds since the client last sent anything (`idle=`).
    pub fn idle_secs(&self) -> u64 {
        let now = self.created.elapsed().as_millis() as u64;
        now.saturating_sub(self.last_interaction_ms.load(Ordering::Relaxed)) / 1000
    }

    /// Whether the client is authenticated as `name`.
    pub fn user_is(&self, name: &[u8]) -> bool {
        self.info.lock().user == name
    }

    /// Asks the connection to close.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }
}

/// Every connected client.
#[derive(Debug, Default)]
pub struct ClientRegistry {
    clients: Mutex<BTreeMap<u64, Arc<ClientHandle>>>,
    next_id: AtomicU64,
}

impl ClientRegistry {
    /// Registers a new connection and returns its handle.
    pub fn register(&self, addr: SocketAddr, laddr: SocketAddr, fd: i32) -> Arc<ClientHandle> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let handle = Arc::new(ClientHandle {
            id,
            addr,
            laddr,
            fd,
            created: Instant::now(),
            last_interaction_ms: AtomicU64::new(0),
            last_cmd_key: AtomicUsize::new(0),
            db: AtomicUsize::new(0),
            resp: AtomicUsize::new(2),
            info: Mutex::new(ClientInfo {
                user: b"default".to_vec(),
                ..ClientInfo::default()
            }),
            killed: AtomicBool::new(false),
            wake: Notify::new(),
            blocked: AtomicBool::new(false),
            watch_dirty: Arc::new(AtomicBool::new(false)),
            mailbox: OnceLock::new(),
        });
        self.clients.lock().insert(id, handle.clone());
        handle
    }

    /// Removes a closed connection.
    pub fn unregister(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    /// A snapshot of all clients, by id.
    pub fn all(&self) -> Vec<Arc<ClientHandle>> {
        self.clients.lock().values().cloned().collect()
    }

    /// Number of connected clients.
    pub fn len(&self) -> usize {
        self.clients.lock().len()
    }

    /// Whether no client is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The client with this id.
    pub fn get(&self, id: u64) -> Option<Arc<ClientHandle>> {
        self.clients.lock().get(&id).cloned()
    }
}

/// The state a connection keeps between its commands.
#[derive(Debug)]
pub struct Client {
    /// Shared, visible part.
    pub handle: Arc<ClientHandle>,
    /// Selected database.
    pub db: usize,
    /// Authenticated (always true when no password is required at connect).
    pub authenticated: bool,
    /// The user the client is authenticated as (`default` until `AUTH`).
    pub user: Vec<u8>,
    /// The ACL epoch at which [`Client::user`] was found unrestricted (all
    /// commands, keys and channels); 0 when it was not. While it equals
    /// the table's epoch the dispatcher checks nothing more.
    pub acl_unrestricted_at: u64,
    /// `CLIENT NO-TOUCH`: reads do not update access times.
    pub no_touch: bool,
    /// Close the connection once the pending replies are written (`QUIT`,
    /// protocol errors).
    pub close_after_reply: bool,
    /// The output passed its limit (`cmd::reply_limit`): drop every pending
    /// reply, run nothing more, close (Redis's `CLIENT_CLOSE_ASAP`).
    pub output_overflow: bool,
    /// Blocking commands: a pending block, replies owed to served waiters,
    /// EXEC's deferred wake-ups (see `crate::blocking`).
    pub block: crate::blocking::ClientBlock,
    /// The transaction being queued (`MULTI` .. `EXEC`).
    pub multi: Option<crate::cmd::multi::MultiState>,
    /// Running the queued commands of `EXEC`.
    pub in_exec: bool,
    /// Running a script's commands (monitors show them as `lua`).
    pub in_script: bool,
    /// Memory was full when this client's last script or `EXEC` started
    /// (Redis's `pre_command_oom_state`; see
    /// `cmd::scripting::script_call`).
    pub script_oom: bool,
    /// The running script's declared keys, kept while the client tracks
    /// keys: a read command of the script makes tracking remember them (the
    /// caller's keys, as Redis's `trackingRememberKeys(script_caller)`).
    pub script_keys: Option<Vec<Vec<u8>>>,
    /// In `MONITOR` mode (see `crate::monitor`).
    pub monitoring: bool,
    /// Watched keys (`WATCH`).
    pub watch: crate::watch::ClientWatch,
    /// Pub/sub subscriptions and the mailbox messages arrive in.
    pub subs: crate::pubsub::Subscriptions,
    /// When the previous command of this batch ended: the next command's
    /// start, so that back-to-back commands read the clock once each
    /// (`None` at the start of a batch, or after a wait).
    pub cmd_clock: Option<std::time::Instant>,
    /// `CLIENT REPLY`: which replies are dropped.
    pub reply: ReplyMode,
    /// Bytes in the query buffer when the running batch began, the
    /// running command included (Redis's `sdslen(querybuf)` while it
    /// executes): the caller's own `qbuf` in `CLIENT LIST`/`CLIENT INFO`.
    /// Set once per batch; other clients' `qbuf` is `ClientInfo::qbuf`.
    pub batch_input_len: usize,
    /// A command was postponed by `CLIENT PAUSE` (see `crate::pause`): it
    /// and what follows it run once the pause ends.
    pub postponed: bool,
    /// `CLIENT TRACKING` (see `crate::tracking`).
    pub tracking: crate::tracking::ClientTracking,
    /// A command of this batch ran while some client tracked: `BCAST`
    /// invalidations are sent when the batch ends.
    pub tracking_batch: bool,
    /// The master's client of a replica (`crate::replica`): its writes are
    /// the replication stream, admitted on a read-only replica.
    pub master: bool,
    /// This client is a replica of this server, attached by `SYNC` or
    /// `PSYNC` (`crate::replication`).
    pub replica: Option<Arc<crate::replication::Replica>>,
    /// `REPLCONF listening-port` (0: not given).
    pub repl_port: u16,
    /// `REPLCONF ip-address`.
    pub repl_ip: Option<String>,
    /// `REPLCONF capa eof`: the replica reads the diskless payload form.
    pub repl_capa_eof: bool,
    /// The stream's offset when this client's last command ended, other
    /// clients' writes included (Redis's `woff`), which `WAIT` waits for.
    pub repl_offset: u64,
    /// The running command set `repl_offset` itself (`WAIT`, before its
    /// `GETACK`); the dispatcher leaves it.
    pub keep_repl_offset: bool,
    /// `SCRIPT DEBUG YES|SYNC`: the next `EVAL` runs in the Lua debugger
    /// (see `crate::cmd::scripting::ldb`).
    pub script_debug: Option<crate::cmd::scripting::ldb::Mode>,
}

/// `CLIENT REPLY ON|OFF|SKIP` (Redis's `CLIENT_REPLY_OFF`,
/// `CLIENT_REPLY_SKIP` and `CLIENT_REPLY_SKIP_NEXT` flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplyMode {
    /// `OFF`: no reply at all until `CLIENT REPLY ON`.
    pub off: bool,
    /// The reply of the command being run is dropped (it follows a `SKIP`).
    pub skip: bool,
    /// `SKIP` was just run: the next command's reply is dropped.
    pub skip_next: bool,
}

impl ReplyMode {
    /// Whether the reply of the command being run is dropped (pushed
    /// messages are not: see `ReplyWriter::message`).
    pub fn silenced(self) -> bool {
        self.off || self.skip
    }

    /// A command ran to its end (Redis's `resetClient`): a pending `SKIP`
    /// applies to the next one.
    pub fn command_done(&mut self) {
        self.skip = std::mem::take(&mut self.skip_next);
    }
}

impl Client {
    /// A fresh client.
    pub fn new(handle: Arc<ClientHandle>, authenticated: bool) -> Self {
        let watch = crate::watch::ClientWatch::with_flag(handle.watch_dirty.clone());
        let subs = crate::pubsub::Subscriptions::new(handle.clone());
        let _ = handle.mailbox.set(Arc::downgrade(&subs.mailbox));
        Client {
            subs,
            handle,
            db: 0,
            authenticated,
            user: b"default".to_vec(),
            acl_unrestricted_at: 0,
            no_touch: false,
            close_after_reply: false,
            output_overflow: false,
            block: Default::default(),
            multi: None,
            in_exec: false,
            in_script: false,
            script_oom: false,
            script_keys: None,
            monitoring: false,
            watch,
            cmd_clock: None,
            reply: ReplyMode::default(),
            batch_input_len: 0,
            postponed: false,
            tracking: Default::default(),
            tracking_batch: false,
            master: false,
            replica: None,
            repl_port: 0,
            repl_ip: None,
            repl_capa_eof: false,
            repl_offset: 0,
            keep_repl_offset: false,
            script_debug: None,
        }
    }

    /// Authenticates the client as `user` (`AUTH`, `HELLO AUTH`).
    pub fn login(&mut self, user: &[u8]) {
        self.authenticated = true;
        self.user = user.to_vec();
        self.acl_unrestricted_at = 0;
        self.handle.info.lock().user = user.to_vec();
    }

    /// Selects a database.
    pub fn select(&mut self, db: usize) {
        self.db = db;
        self.handle.db.store(db, Ordering::Relaxed);
    }
}
