//! The table of every configuration directive Amber accepts.
//!
//! Redis 7.0's directives are all accepted (generated into
//! [`super::redis_directives`] from Redis's `config.c` by
//! `tools/gen-redis-directives.py`), with Redis's kinds, bounds, defaults and
//! flags, so that tools written for Redis work; those with no effect in Amber
//! are stored and returned. Amber's own directives ([`AMBER_DIRECTIVES`])
//! follow the same model.

use std::sync::LazyLock;

/// Flags of a directive (Redis's `*_CONFIG` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectiveFlags(u16);

impl DirectiveFlags {
    /// No flag: a plain runtime-modifiable directive.
    pub const NONE: Self = Self(0);
    /// Only settable at start-up.
    pub const IMMUTABLE: Self = Self(1);
    /// Holds a secret (`requirepass`, `masterauth`).
    pub const SENSITIVE: Self = Self(1 << 1);
    /// Takes several arguments (`save`, `bind`, ...).
    pub const MULTI_ARG: Self = Self(1 << 2);
    /// Left out of `CONFIG GET` patterns (exact name only).
    pub const HIDDEN: Self = Self(1 << 3);
    /// Settable only when `enable-protected-configs` allows it.
    pub const PROTECTED: Self = Self(1 << 4);
    /// Useful for debugging (informational).
    pub const DEBUG: Self = Self(1 << 5);
    /// Redis re-applies it even when unchanged (informational).
    pub const VOLATILE: Self = Self(1 << 6);
    /// Refused while loading (informational).
    pub const DENY_LOADING: Self = Self(1 << 7);

    /// Does `self` include `other`?
    pub const fn has(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets of flags (usable in statics).
    pub const fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

impl std::ops::BitOr for DirectiveFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// How a numeric directive's value may be written (Redis's numeric flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumFlags(u8);

impl NumFlags {
    /// A plain integer.
    pub const INTEGER: Self = Self(0);
    /// A byte count with an optional unit (`64mb`).
    pub const MEMORY: Self = Self(1);
    /// May be a percentage (`10%`, stored as a negative number).
    pub const PERCENT: Self = Self(1 << 1);
    /// Written in octal (`unixsocketperm 700`).
    pub const OCTAL: Self = Self(1 << 2);

    /// Does `self` include `other`?
    pub const fn has(self, other: Self) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// Both sets of flags (usable in statics).
    pub const fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether no flag is set (a plain integer).
    pub const fn is_plain(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::BitOr for NumFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// Extra validation of a value, as Redis's `is_valid_fn`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Nothing more.
    None,
    /// `dbfilename`: a file name, not a path.
    DbFilename,
    /// `appendfilename`: non-empty file name.
    AofFilename,
    /// `appenddirname`: non-empty directory name.
    AofDirname,
    /// `shutdown-on-sig*`: not both `save` and `nosave`.
    ShutdownFlags,
    /// Announced host names: short, alphanumerics, `-` and `.`.
    Hostname,
    /// `proc-title-template`: known variables, not empty.
    ProcTitle,
}

/// Directives with their own syntax (Redis's "special configs").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// `dir`: the working directory.
    Dir,
    /// `save`: pairs of seconds and changes.
    Save,
    /// `client-output-buffer-limit`: class, hard, soft, seconds.
    ClientOutputBufferLimit,
    /// `oom-score-adj-values`: three integers.
    OomScoreAdjValues,
    /// `notify-keyspace-events`: event class letters.
    NotifyKeyspaceEvents,
    /// `bind`: addresses.
    Bind,
    /// `replicaof`: host and port, or `no one`.
    Replicaof,
    /// `latency-tracking-info-percentiles`: percentiles.
    LatencyTrackingInfoPercentiles,
}

/// The kind of value a directive takes, which decides validation and the
/// canonical form `CONFIG GET` shows.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// `yes` / `no`.
    Bool,
    /// An integer stored like Redis's numeric configs.
    Num {
        /// Smallest accepted value.
        min: i128,
        /// Largest accepted value.
        max: i128,
        /// Stored in an unsigned C type: bounds compare the value as unsigned.
        unsigned: bool,
        /// Accepted notations.
        flags: NumFlags,
    },
    /// One of a set of names (several, combined, for multi-argument enums).
    Enum {
        /// Names and their values (aliases share a value).
        values: &'static [(&'static str, i32)],
        /// Extra validation.
        check: Check,
    },
    /// Free text (one argument).
    Str(Check),
    /// Special syntax.
    Special(Special),
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
    /// Default, in canonical form (what `CONFIG GET` shows).
    pub default: &'static str,
    /// Flags.
    pub flags: DirectiveFlags,
    /// What it does, for `configs/amber.conf` and docs (Amber's own directives).
    pub doc: &'static str,
}

impl Directive {
    /// Whether `CONFIG SET` may change it at run time.
    pub fn mutable(&self) -> bool {
        !self.flags.has(DirectiveFlags::IMMUTABLE)
    }

    /// Whether it takes several arguments.
    pub fn multi_arg(&self) -> bool {
        self.flags.has(DirectiveFlags::MULTI_ARG)
    }
}

const MEMORY: Kind = Kind::Num {
    min: 0,
    max: u64::MAX as i128,
    unsigned: true,
    flags: NumFlags::MEMORY,
};

const fn amber(
    name: &'static str,
    kind: Kind,
    default: &'static str,
    flags: DirectiveFlags,
    doc: &'static str,
) -> Directive {
    Directive {
        name,
        alias: None,
        kind,
        default,
        flags,
        doc,
    }
}

const fn int(min: i128, max: i128) -> Kind {
    Kind::Num {
        min,
        max,
        unsigned: false,
        flags: NumFlags::INTEGER,
    }
}

/// Amber's own directives.
pub static AMBER_DIRECTIVES: &[Directive] = &[
    amber(
        "dram-budget",
        MEMORY,
        "1073741824",
        DirectiveFlags::NONE,
        "Most DRAM the hot tier may use (0: no hot tier; every value lives in the arena).",
    ),
    amber(
        "pmem-path",
        Kind::Str(Check::None),
        "amber.arena",
        DirectiveFlags::IMMUTABLE,
        "Arena file: a DAX device or file, a file on /dev/shm, or any file; a relative path is inside `dir`.",
    ),
    amber(
        "pmem-size",
        MEMORY,
        "8589934592",
        DirectiveFlags::IMMUTABLE,
        "Arena size in bytes (a sparse file).",
    ),
    amber(
        "persistence",
        Kind::Enum {
            values: &[("none", 0), ("pmem", 1)],
            check: Check::None,
        },
        "pmem",
        DirectiveFlags::IMMUTABLE,
        "none: the arena is extra capacity, wiped at start. pmem: writes persist to the arena and start-up recovers.",
    ),
    amber(
        "arena-sync",
        Kind::Enum {
            values: &[("always", 0), ("everysec", 1), ("no", 2)],
            check: Check::None,
        },
        "everysec",
        DirectiveFlags::NONE,
        "When writes to a non-DAX arena are made durable (like appendfsync).",
    ),
    amber(
        "tiering-policy",
        Kind::Enum {
            values: &[("lru", 0), ("lfu", 1)],
            check: Check::None,
        },
        "lru",
        DirectiveFlags::NONE,
        "Which hot keys are demoted first.",
    ),
    amber(
        "metrics-port",
        int(0, 65535),
        "0",
        DirectiveFlags::IMMUTABLE,
        "Prometheus metrics port (0: off).",
    ),
    amber(
        "shards",
        int(0, 1 << 16),
        "0",
        DirectiveFlags::IMMUTABLE,
        "Shards per database (0: automatic, 128 per core, 256 to 4096).",
    ),
    amber(
        "threads",
        int(0, 1024),
        "0",
        DirectiveFlags::IMMUTABLE,
        "Connection threads (0: one per core).",
    ),
];

/// Defaults Amber changes from Redis's, with the reason.
///
/// `bind`: Redis listens on every interface (`* -::*`) and relies on
/// protected mode; Amber listens on loopback unless told otherwise.
/// `dir`: Amber keeps its data under `./data` by default.
pub const AMBER_DEFAULT_OVERRIDES: &[(&str, &str)] =
    &[("bind", "127.0.0.1 -::1"), ("dir", "./data")];

/// Defaults of Redis's special directives (what a fresh `redis-server` shows).
const SPECIAL_DEFAULTS: &[(&str, &str)] = &[
    ("save", "3600 1 300 100 60 10000"),
    (
        "client-output-buffer-limit",
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
    ),
    ("oom-score-adj-values", "0 200 800"),
    ("notify-keyspace-events", ""),
    ("bind", "* -::*"),
    ("replicaof", ""),
    ("latency-tracking-info-percentiles", "50 99 99.9"),
    ("dir", "."),
];

/// The default of a directive, with Amber's overrides applied.
pub fn default_of(d: &Directive) -> &'static str {
    if let Some((_, v)) = AMBER_DEFAULT_OVERRIDES.iter().find(|(n, _)| *n == d.name) {
        return v;
    }
    if let Kind::Special(_) = d.kind {
        if let Some((_, v)) = SPECIAL_DEFAULTS.iter().find(|(n, _)| *n == d.name) {
            return v;
        }
    }
    d.default
}

/// Every directive, Redis's then Amber's.
pub static DIRECTIVES: LazyLock<Vec<&'static Directive>> = LazyLock::new(|| {
    super::redis_directives::REDIS_DIRECTIVES
        .iter()
        .chain(AMBER_DIRECTIVES.iter())
        .collect()
});
