//! The table of every configuration directive Amber accepts.
//!
//! Redis 7.0's directives are all accepted so that tools written for Redis
//! (its own test suite sets `save`, `list-max-listpack-size`, ...) work;
//! those with no effect in Amber are stored and returned. Amber's own
//! directives come last.

/// The kind of value a directive takes, which decides validation and the
/// canonical form `CONFIG GET` shows.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// `yes` / `no`.
    Bool,
    /// A signed integer within bounds.
    Int {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// A byte count with optional unit (`64mb`), shown in bytes.
    Memory {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// One of a fixed set of lowercase words.
    Enum(&'static [&'static str]),
    /// Free text (one argument).
    Str,
    /// Several arguments kept as one space-separated string (`save`, `bind`).
    List,
}

/// One directive.
#[derive(Debug)]
pub struct Directive {
    /// Canonical name.
    pub name: &'static str,
    /// Older name also accepted (`slaveof` for `replicaof`, ...).
    pub alias: Option<&'static str>,
    /// Value kind.
    pub kind: Kind,
    /// Default, in canonical form.
    pub default: &'static str,
    /// Whether `CONFIG SET` may change it at run time.
    pub mutable: bool,
    /// What it does, for `configs/amber.conf` and docs.
    pub doc: &'static str,
}

const fn d(
    name: &'static str,
    kind: Kind,
    default: &'static str,
    mutable: bool,
    doc: &'static str,
) -> Directive {
    Directive {
        name,
        alias: None,
        kind,
        default,
        mutable,
        doc,
    }
}

const MEM: Kind = Kind::Memory {
    min: 0,
    max: i64::MAX,
};
const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}

/// Every directive, Redis's then Amber's.
pub static DIRECTIVES: &[Directive] = &[
    // Network and clients.
    d("bind", Kind::List, "127.0.0.1", true, "Addresses to listen on."),
    d("port", int(0, 65535), "6379", false, "TCP port (0: do not listen)."),
    d("tcp-backlog", int(0, i32::MAX as i64), "511", false, "Listen backlog."),
    d("timeout", int(0, i32::MAX as i64), "0", true, "Close idle clients after this many seconds (0: never)."),
    d("tcp-keepalive", int(0, i32::MAX as i64), "300", true, "TCP keepalive interval, seconds."),
    d("maxclients", int(1, i32::MAX as i64), "10000", true, "Most simultaneous clients."),
    d("requirepass", Kind::Str, "", true, "Password clients must AUTH with (empty: none)."),
    d("protected-mode", Kind::Bool, "yes", true, "Refuse non-loopback clients when no password is set."),
    d("proto-max-bulk-len", Kind::Memory { min: 1024 * 1024, max: i64::MAX }, "536870912", true, "Largest bulk string a request may carry."),
    d("client-query-buffer-limit", Kind::Memory { min: 1024 * 1024, max: i64::MAX }, "1073741824", true, "Largest query buffer of one client."),
    // General.
    d("loglevel", Kind::Enum(&["debug", "verbose", "notice", "warning", "nothing"]), "notice", true, "Log verbosity."),
    d("logfile", Kind::Str, "", false, "Log file (empty: standard output)."),
    d("databases", int(1, i32::MAX as i64), "16", false, "Number of databases (Amber has 16)."),
    d("dir", Kind::Str, "./data", true, "Working directory for data files."),
    d("daemonize", Kind::Bool, "no", false, "Accepted for compatibility; Amber runs in the foreground."),
    d("pidfile", Kind::Str, "", false, "Where to write the process id."),
    d("save", Kind::List, "3600 1 300 100 60 10000", true, "RDB snapshot points (accepted; Amber persists through the arena)."),
    d("appendonly", Kind::Bool, "no", true, "Accepted for compatibility (Amber persists through the arena)."),
    d("appendfsync", Kind::Enum(&["always", "everysec", "no"]), "everysec", true, "Accepted for compatibility."),
    d("dbfilename", Kind::Str, "dump.rdb", true, "Accepted for compatibility."),
    // Memory.
    d("maxmemory", MEM, "0", true, "Memory limit (DRAM + arena) beyond which maxmemory-policy applies (0: the arena size)."),
    d(
        "maxmemory-policy",
        Kind::Enum(&["volatile-lru", "allkeys-lru", "volatile-lfu", "allkeys-lfu", "volatile-random", "allkeys-random", "volatile-ttl", "noeviction"]),
        "noeviction",
        true,
        "What to do when memory is full.",
    ),
    d("maxmemory-samples", int(1, 64), "5", true, "Keys sampled per eviction."),
    d("lazyfree-lazy-user-flush", Kind::Bool, "no", true, "FLUSHALL/FLUSHDB default to ASYNC."),
    d("hz", int(0, i32::MAX as i64), "10", true, "Background task frequency."),
    // Amber's own.
    d("dram-budget", MEM, "1073741824", true, "Most DRAM the hot tier may use (0: no hot tier; every value lives in the arena)."),
    d("pmem-path", Kind::Str, "./data/amber.arena", false, "Arena file: a DAX device or file, /dev/shm, or any file."),
    d("pmem-size", MEM, "8589934592", false, "Arena size in bytes (a sparse file)."),
    d("persistence", Kind::Enum(&["none", "pmem"]), "pmem", false, "none: the arena is extra capacity, wiped at start. pmem: writes persist to the arena and start-up recovers."),
    d("arena-sync", Kind::Enum(&["always", "everysec", "no"]), "everysec", true, "When writes to a non-DAX arena are made durable (like appendfsync)."),
    d("tiering-policy", Kind::Enum(&["lru", "lfu"]), "lru", true, "Which hot keys are demoted first."),
    d("metrics-port", int(0, 65535), "0", false, "Prometheus metrics port (0: off)."),
    d("shards", int(0, 1 << 16), "0", false, "Shards per database (0: automatic)."),
];
