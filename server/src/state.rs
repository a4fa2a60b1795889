//! [`ServerState`]: everything the connections of one server share.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use amber_storage::striped::Counter;
use amber_storage::{ArenaConfig, Keyspace, KeyspaceConfig};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::client::ClientRegistry;
use crate::cmd::{self, CommandTable};
use crate::config::Config;

/// Server-wide counters for `INFO stats`.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections refused (maxclients).
    pub rejected_connections: AtomicU64,
    /// Connections moved to another connection thread (`crate::cores`).
    pub connection_moves: AtomicU64,
    /// Commands processed (per-thread stripes: every command adds).
    pub commands: Counter,
    /// Bytes read from clients.
    pub net_input_bytes: Counter,
    /// Bytes written to clients.
    pub net_output_bytes: Counter,
    /// Key lookups that found a key.
    pub keyspace_hits: Counter,
    /// Key lookups that found nothing.
    pub keyspace_misses: Counter,
    /// Error replies by error code (`ERR`, `WRONGTYPE`, ...).
    pub errors: Mutex<HashMap<String, u64>>,
    /// Total error replies.
    pub total_errors: AtomicU64,
    /// Save points taken (`SAVE`, `BGSAVE`, shutdown): `INFO persistence`'s `rdb_saves`.
    pub saves: AtomicU64,
}

impl ServerStats {
    /// Counts one error reply by its code (the first word).
    pub fn record_error(&self, text: &str) {
        self.total_errors.fetch_add(1, Ordering::Relaxed);
        let code = text.split(' ').next().unwrap_or("ERR").to_string();
        *self.errors.lock().entry(code).or_insert(0) += 1;
    }

    /// Resets the counters `CONFIG RESETSTAT` resets.
    pub fn reset(&self) {
        for c in [
            &self.connections,
            &self.rejected_connections,
            &self.connection_moves,
            &self.total_errors,
            &self.saves,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        self.errors.lock().clear();
        for c in [
            &self.commands,
            &self.keyspace_hits,
            &self.keyspace_misses,
            &self.net_input_bytes,
            &self.net_output_bytes,
        ] {
            c.reset();
        }
    }

    /// Counts a key lookup.
    pub fn hit(&self, found: bool) {
        if found {
            self.keyspace_hits.add(1);
        } else {
            self.keyspace_misses.add(1);
        }
    }
}

/// The keyspace layout the configuration asks for.
pub fn keyspace_config(config: &Config) -> Result<KeyspaceConfig, String> {
    let mut ks = KeyspaceConfig::default();
    let shards = config.get_i64("shards");
    if shards > 0 {
        ks.shards_per_db = shards as usize;
    }
    ks.dram_budget = config.get_i64("dram-budget").max(0) as u64;
    let mut arena = ArenaConfig::new(
        arena_path(config),
        config.get_i64("pmem-size").max(0) as u64,
    );
    arena.persistence = config
        .get("persistence")
        .unwrap_or_default()
        .parse()
        .map_err(|e| format!("{e}"))?;
    arena.sync = config
        .get("arena-sync")
        .unwrap_or_default()
        .parse()
        .map_err(|e| format!("{e}"))?;
    ks.arena = Some(arena);
    Ok(ks)
}

/// Where the arena file is: `pmem-path`, inside `dir` when relative (as
/// Redis finds `dbfilename` and `appendfilename` in `dir`), so servers with
/// different `dir`s never share an arena by accident.
pub fn arena_path(config: &Config) -> std::path::PathBuf {
    let path = std::path::PathBuf::from(config.get("pmem-path").unwrap_or_default());
    let dir = config.raw("dir").unwrap_or_default();
    if path.is_relative() && !dir.is_empty() {
        std::path::Path::new(&dir).join(path)
    } else {
        path
    }
}

/// What the connections of one server share.
pub struct ServerState {
    /// The data.
    pub keyspace: Keyspace,
    /// Configuration.
    pub config: Config,
    /// The command table.
    pub commands: CommandTable,
    /// Connected clients.
    pub clients: ClientRegistry,
    /// Users and their permissions (`ACL`).
    pub acl: crate::acl::Acl,
    /// Counters.
    pub stats: ServerStats,
    /// Process start.
    pub started: Instant,
    /// Unix time minus monotonic time since `started`, in microseconds:
    /// turns an `Instant` a command already read into wall-clock time
    /// ([`ServerState::wall_ms_at`]). Refreshed by the periodic task, so a
    /// step of the system clock is seen within one `hz` tick.
    wall_offset_us: std::sync::atomic::AtomicI64,
    /// A random 40-hex-digit id of this run (`INFO server`'s `run_id`).
    pub run_id: String,
    /// The TCP port actually bound.
    pub port: std::sync::atomic::AtomicU16,
    /// Unix time of the last successful save point (`LASTSAVE`).
    pub last_save: AtomicU64,
    /// `DEBUG SET-ACTIVE-EXPIRE`.
    pub active_expire: AtomicBool,
    /// Clients blocked on keys (`BLPOP`...); `blocking.blocked_clients()`
    /// is `INFO clients`' `blocked_clients`.
    pub blocking: crate::blocking::Blocking,
    /// Pub/sub subscriptions.
    pub pubsub: crate::pubsub::PubSub,
    /// Clients in `MONITOR` mode.
    pub monitors: crate::monitor::Monitors,
    /// `CLIENT PAUSE`.
    pub pause: crate::pause::Pause,
    /// `SLOWLOG`.
    pub slowlog: std::sync::Arc<crate::slowlog::SlowLog>,
    /// The latency monitor (`LATENCY LATEST`...).
    pub latency: crate::latency::LatencyMonitor,
    /// Big values freed in the background (`UNLINK`).
    pub lazyfree: crate::lazyfree::LazyFree,
    /// MIGRATE's cached connections to target instances.
    pub migrate_sockets: crate::cmd::migrate::sockets::MigrateSockets,
    /// Watched keys (`WATCH`).
    pub watches: crate::watch::Watches,
    /// Client-side caching (`CLIENT TRACKING`).
    pub tracking: crate::tracking::Tracking,
    /// Turns of pipelined batches on one shard (`crate::lease`).
    pub leases: crate::lease::BatchLeases,
    /// The connection threads, once the server runs (`crate::cores`).
    pub cores: std::sync::OnceLock<crate::cores::Cores>,
    /// The Lua interpreter and script cache (`EVAL`, `SCRIPT`).
    pub scripting: crate::cmd::scripting::Scripting,
    /// `dump.rdb`: load and save figures, the running `BGSAVE`.
    pub rdb: crate::snapshot::RdbStatus,
    /// `REPLICAOF`: the master followed, if any (`crate::replica`).
    pub replication: crate::replica::Replication,
    /// The keys a writable replica's clients gave a deadline, which it
    /// expires itself (`crate::replica_expires`).
    pub replica_expires: crate::replica_expires::ReplicaExpires,
    /// The replicas following this server (`crate::replication`).
    pub master: crate::replication::Master,
    /// Redis's `server.dirty`: keys changed by commands since start-up
    /// (`crate::replication::propagate` adds each command's share).
    pub dirty: amber_storage::striped::Counter,
    /// [`ServerState::dirty`] at the last successful save or load
    /// (`rdb_changes_since_last_save` is the difference).
    pub dirty_at_save: AtomicU64,
    /// This state itself, once shared ([`crate::run`] sets it): what a
    /// background thread (`BGSAVE`) holds on to.
    me: std::sync::OnceLock<std::sync::Weak<ServerState>>,
    shutdown: watch::Sender<bool>,
}

/// Unix time minus monotonic time since `started`, in microseconds.
fn wall_offset_us(started: Instant) -> i64 {
    amber_storage::clock::now_us() as i64 - started.elapsed().as_micros() as i64
}

impl ServerState {
    /// Unix milliseconds at `t`, an instant read since start-up, without
    /// reading the wall clock again.
    pub fn wall_ms_at(&self, t: Instant) -> u64 {
        let mono = t.saturating_duration_since(self.started).as_micros() as i64;
        (mono + self.wall_offset_us.load(Ordering::Relaxed)).max(0) as u64 / 1000
    }

    /// Re-reads the wall clock for [`ServerState::wall_ms_at`] (periodic).
    pub fn refresh_wall_clock(&self) {
        self.wall_offset_us
            .store(wall_offset_us(self.started), Ordering::Relaxed);
    }

    /// A server with this configuration: opens the arena and, in
    /// `persistence pmem` mode, recovers the keyspace from it. The error is a
    /// message for the operator (corrupt arena, wrong size, ...).
    pub fn new(config: Config) -> Result<Self, String> {
        let keyspace = Keyspace::open(keyspace_config(&config)?)
            .map_err(|e| format!("cannot open the keyspace: {e}"))?;
        let state = Self::with_keyspace(config, keyspace);
        // Users from `user` lines, or from `aclfile`, as Redis's
        // `ACLLoadUsersAtStartup`.
        let lines = state.config.users.clone();
        state.acl.load_config_users(&state, &lines)?;
        let aclfile = state.config.get("aclfile").unwrap_or_default().to_string();
        if !aclfile.is_empty() {
            state
                .acl
                .load_file(&state, &aclfile)
                .map_err(|e| format!("Aborting Redis startup because of ACL errors: {e}"))?;
        }
        Ok(state)
    }

    /// A server over an already opened keyspace (and the function
    /// libraries saved in it).
    pub fn with_keyspace(config: Config, keyspace: Keyspace) -> Self {
        let run_id: String = (0..40)
            .map(|_| format!("{:x}", rand::random::<u8>() % 16))
            .collect();
        let started = Instant::now();
        let state = ServerState {
            keyspace,
            config,
            commands: CommandTable::build(&cmd::all_handlers(), &cmd::all_extensions()),
            clients: ClientRegistry::default(),
            acl: Default::default(),
            stats: ServerStats::default(),
            started,
            wall_offset_us: std::sync::atomic::AtomicI64::new(wall_offset_us(started)),
            run_id,
            port: Default::default(),
            last_save: AtomicU64::new(amber_storage::clock::now_ms() / 1000),
            active_expire: AtomicBool::new(true),
            blocking: Default::default(),
            pubsub: Default::default(),
            monitors: Default::default(),
            pause: Default::default(),
            slowlog: Default::default(),
            latency: Default::default(),
            lazyfree: Default::default(),
            migrate_sockets: Default::default(),
            watches: Default::default(),
            tracking: Default::default(),
            leases: Default::default(),
            cores: Default::default(),
            scripting: Default::default(),
            rdb: Default::default(),
            replication: Default::default(),
            replica_expires: Default::default(),
            master: Default::default(),
            dirty: Default::default(),
            dirty_at_save: AtomicU64::new(0),
            me: Default::default(),
            shutdown: watch::channel(false).0,
        };
        // The function libraries saved in the arena (`persistence pmem`).
        state.scripting.functions.load_saved(&state.keyspace);
        state.acl.init(&state);
        state
    }

    /// Records the shared handle of this state ([`ServerState::shared`]).
    pub fn set_shared(self: &std::sync::Arc<Self>) {
        let _ = self.me.set(std::sync::Arc::downgrade(self));
    }

    /// The shared handle of this state, once [`ServerState::set_shared`]
    /// ran (the server runs).
    pub fn shared(&self) -> Option<std::sync::Arc<ServerState>> {
        self.me.get().and_then(std::sync::Weak::upgrade)
    }

    /// Whether clients must authenticate.
    pub fn auth_required(&self) -> bool {
        self.acl.auth_required()
    }

    /// A save point (`SAVE`, `BGSAVE`, `SHUTDOWN SAVE`): makes everything
    /// written so far durable and records the time for `LASTSAVE`.
    ///
    /// With `persistence pmem` every write is already in the arena before its
    /// reply; this forces what `arena-sync everysec`/`no` batches to durable
    /// media and reports the error if that fails.
    pub fn save_point(&self) -> Result<(), String> {
        if let Some(arena) = self.keyspace.tiers.arena.as_ref() {
            arena
                .sync()
                .map_err(|e| format!("arena sync failed: {e}"))?;
        }
        self.stats.saves.fetch_add(1, Ordering::Relaxed);
        self.last_save
            .store(amber_storage::clock::now_ms() / 1000, Ordering::Relaxed);
        Ok(())
    }

    /// `CONFIG RESETSTAT`: server, command and error statistics back to zero.
    pub fn reset_stats(&self) {
        self.stats.reset();
        self.lazyfree.reset();
        self.keyspace.stats.expired_keys.store(0, Ordering::Relaxed);
        self.keyspace
            .tiers
            .stats
            .evicted_keys
            .store(0, Ordering::Relaxed);
        for c in self.commands.iter() {
            c.stats.reset();
            for s in c.subcommands.values() {
                s.stats.reset();
            }
        }
    }

    /// `rdb_changes_since_last_save`.
    pub fn changes_since_save(&self) -> u64 {
        self.dirty
            .get()
            .saturating_sub(self.dirty_at_save.load(Ordering::Relaxed))
    }

    /// Asks the server to stop (SIGTERM, SIGINT, `SHUTDOWN`).
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
        // Connections wait on their own wake-up, not on the shutdown signal.
        for c in self.clients.all() {
            c.wake.notify_one();
        }
    }

    /// A receiver that sees `true` once shutdown is requested.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Whether shutdown was requested.
    pub fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}
