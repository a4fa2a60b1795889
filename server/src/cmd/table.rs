//! The command table: Redis 7.0's metadata joined with Amber's handlers.
//!
//! Metadata (arity, flags, key positions, and the raw `COMMAND INFO` /
//! `COMMAND DOCS` replies in RESP2 and RESP3) comes from
//! `redis_commands.json`, dumped from a real Redis 7.0 by
//! `tools/dump-redis-commands.py`, so introspection answers exactly as Redis
//! does. A command exists in Amber only when a family module registers a
//! handler for it; Amber's own extensions carry hand-written metadata.

use hashbrown::HashMap;
use std::sync::Arc;

use amber_storage::striped::Counters;
use serde::Deserialize;

use super::histogram::LatencyHistogram;
use super::Handler;

/// Command flags Amber acts on (a subset of Redis's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags(u32);

impl Flags {
    /// Modifies the keyspace.
    pub const WRITE: Flags = Flags(1);
    /// Only reads.
    pub const READONLY: Flags = Flags(1 << 1);
    /// Refused when memory is exhausted.
    pub const DENYOOM: Flags = Flags(1 << 2);
    /// Allowed before authentication.
    pub const NO_AUTH: Flags = Flags(1 << 3);
    /// Refused inside MULTI.
    pub const NO_MULTI: Flags = Flags(1 << 4);
    /// Administrative.
    pub const ADMIN: Flags = Flags(1 << 5);
    /// Allowed in RESP2 subscribe mode.
    pub const PUBSUB: Flags = Flags(1 << 6);
    /// Must run alone (under the keyspace's exclusive gate). Amber's own flag.
    pub const EXCLUSIVE: Flags = Flags(1 << 7);
    /// May block the client.
    pub const BLOCKING: Flags = Flags(1 << 8);
    /// Keys are found by parsing the arguments.
    pub const MOVABLE_KEYS: Flags = Flags(1 << 9);
    /// Refused when called from a script.
    pub const NO_SCRIPT: Flags = Flags(1 << 10);
    /// Allowed while a script is busy.
    pub const ALLOW_BUSY: Flags = Flags(1 << 11);
    /// Not fed to monitors by the dispatcher (the scripting commands, which
    /// are fed before they run instead).
    pub const SKIP_MONITOR: Flags = Flags(1 << 12);
    /// Redis's `may_replicate`: not a write, but replicated or refused to
    /// a replica all the same (see [`MAY_REPLICATE`]).
    pub const MAY_REPLICATE: Flags = Flags(1 << 13);
    /// Runs without the keyspace gate (see [`GATE_FREE_COMMANDS`]). Amber's
    /// own flag.
    pub const NO_GATE: Flags = Flags(1 << 14);
    /// May change the dataset or be replicated: `write`, `may_replicate`,
    /// and `EXEC`. The dispatcher counts its changes (`dirty`) and, while
    /// replicas are attached, propagates it (`crate::replication`).
    /// Amber's own flag.
    pub const PROPAGATES: Flags = Flags(1 << 15);
    /// Runs other commands (`EXEC`, `EVAL`, `FCALL`...): replicas get
    /// their effects, never the command itself. Amber's own flag.
    pub const CONTAINER: Flags = Flags(1 << 16);
    /// Propagated whenever it succeeds, changed keys or not (`FLUSHALL`,
    /// `SWAPDB`, `PUBLISH`, `FUNCTION LOAD`...), as Redis does with
    /// `server.dirty++` or `forceCommandPropagation`. Amber's own flag.
    pub const FORCE_PROPAGATE: Flags = Flags(1 << 17);
    /// Counts its changes in `dirty` per element, as Redis does (`SADD`
    /// of three new members is 3), rather than per key changed
    /// (`crate::replication::propagate::redis_count`). Amber's own flag.
    pub const COUNTS_ELEMENTS: Flags = Flags(1 << 18);
    /// Served by a replica whose link with its master is down even with
    /// `replica-serve-stale-data no` (Redis's `stale`).
    pub const STALE: Flags = Flags(1 << 19);
    /// Redis's `fast`: its latency samples are the latency monitor's
    /// `fast-command` event rather than `command`.
    pub const FAST: Flags = Flags(1 << 20);
    /// Redis's `skip_slowlog` (`EXEC`: the commands it runs are logged instead).
    pub const SKIP_SLOWLOG: Flags = Flags(1 << 21);
    /// Redis's `no_mandatory_keys` (`EVAL s 0`: a call may name no key).
    pub const NO_MANDATORY_KEYS: Flags = Flags(1 << 22);

    /// Does `self` include all of `other`?
    pub fn has(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    fn from_names(names: &[String]) -> Flags {
        let mut f = 0;
        for n in names {
            f |= match n.as_str() {
                "write" => Self::WRITE.0,
                "readonly" => Self::READONLY.0,
                "denyoom" => Self::DENYOOM.0,
                "no_auth" => Self::NO_AUTH.0,
                "no_multi" => Self::NO_MULTI.0,
                "admin" => Self::ADMIN.0,
                "pubsub" => Self::PUBSUB.0,
                "blocking" => Self::BLOCKING.0,
                "movablekeys" => Self::MOVABLE_KEYS.0,
                "noscript" => Self::NO_SCRIPT.0,
                "allow_busy" => Self::ALLOW_BUSY.0,
                "skip_monitor" => Self::SKIP_MONITOR.0,
                "stale" => Self::STALE.0,
                "fast" => Self::FAST.0,
                "skip_slowlog" => Self::SKIP_SLOWLOG.0,
                "no_mandatory_keys" => Self::NO_MANDATORY_KEYS.0,
                _ => 0,
            };
        }
        Flags(f)
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

#[derive(Deserialize)]
struct DumpFile {
    commands: Vec<DumpCommand>,
}

#[derive(Deserialize, Clone)]
struct DumpCommand {
    name: String,
    arity: i32,
    flags: Vec<String>,
    first_key: i32,
    last_key: i32,
    step: i32,
    #[serde(default)]
    subcommands: Vec<DumpCommand>,
    #[serde(default)]
    info2: String,
    #[serde(default)]
    info3: String,
    #[serde(default)]
    docs2: String,
    #[serde(default)]
    docs3: String,
}

/// Per-command counters for `INFO commandstats`, striped per thread
/// (`amber_storage::striped`): every call of a hot command writes them.
#[derive(Debug, Default)]
pub struct CommandStats {
    counters: Counters<4>,
    /// Durations, for `LATENCY HISTOGRAM` and `INFO latencystats`.
    pub latency: LatencyHistogram,
}

/// Indexes into [`CommandStats`]' counters.
const CALLS: usize = 0;
const USEC: usize = 1;
const REJECTED: usize = 2;
const FAILED: usize = 3;

impl CommandStats {
    /// Records one call.
    pub fn record(&self, usec: u64, failed: bool) {
        self.counters.add(CALLS, 1);
        self.counters.add(USEC, usec);
        if failed {
            self.counters.add(FAILED, 1);
        }
    }

    /// Marks a recorded call as failed after the fact: a blocked command
    /// served with an error (`-NOGROUP` when its group was destroyed).
    pub fn fail(&self) {
        self.counters.add(FAILED, 1);
    }

    /// Records a call refused before it ran (arity, auth, ...).
    pub fn reject(&self) {
        self.counters.add(REJECTED, 1);
    }

    /// Completed calls.
    pub fn calls(&self) -> u64 {
        self.counters.get(CALLS)
    }

    /// Total microseconds spent in the handler.
    pub fn usec(&self) -> u64 {
        self.counters.get(USEC)
    }

    /// Calls refused before running.
    pub fn rejected(&self) -> u64 {
        self.counters.get(REJECTED)
    }

    /// Calls that ran and answered an error.
    pub fn failed(&self) -> u64 {
        self.counters.get(FAILED)
    }

    /// Resets every counter and the latency histogram (`CONFIG RESETSTAT`).
    pub fn reset(&self) {
        self.counters.reset();
        self.latency.reset();
    }
}

/// One command (or subcommand) Amber can execute.
pub struct CommandDef {
    /// Call statistics.
    pub stats: CommandStats,
    /// Full lowercase name (`get`, `config|get`).
    pub name: String,
    /// Redis arity: exact when positive, minimum when negative.
    pub arity: i32,
    /// Flags.
    pub flags: Flags,
    /// First key position (0: none).
    pub first_key: i32,
    /// Last key position (-1: last argument).
    pub last_key: i32,
    /// Step between keys.
    pub step: i32,
    /// The handler (containers have none of their own).
    pub handler: Option<Handler>,
    /// Subcommands by lowercase name (containers only).
    pub subcommands: HashMap<Vec<u8>, Arc<CommandDef>>,
    /// Raw `COMMAND INFO` entry, RESP2 and RESP3.
    pub info: [Vec<u8>; 2],
    /// Raw `COMMAND DOCS` value, RESP2 and RESP3.
    pub docs: [Vec<u8>; 2],
}

impl CommandDef {
    /// Whether `argc` (including the name) fits the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let a = self.arity;
        if a > 0 {
            argc == a as usize
        } else {
            argc >= (-a) as usize
        }
    }

    /// Whether this is a container of subcommands (`CONFIG`, `CLIENT`, ...).
    pub fn is_container(&self) -> bool {
        !self.subcommands.is_empty()
    }

    /// The key arguments of a call, by the legacy (first, last, step) triple.
    pub fn keys<'a>(&self, args: &[&'a [u8]]) -> Vec<&'a [u8]> {
        if self.first_key <= 0 || self.step <= 0 {
            return Vec::new();
        }
        let last = if self.last_key < 0 {
            args.len() as i32 + self.last_key
        } else {
            self.last_key
        };
        (self.first_key..=last.min(args.len() as i32 - 1))
            .step_by(self.step as usize)
            .filter_map(|i| args.get(i as usize).copied())
            .collect()
    }
}

/// Commands Redis 7.0 flags `may_replicate` (in its `src/commands/*.json`;
/// `COMMAND INFO` does not show the flag, so the dump cannot carry it):
/// `CLIENT PAUSE WRITE` holds them back and a monitor may not send them,
/// as Redis 7.0.15 does. (Its JSON also flags `SCRIPT LOAD` and `SCRIPT
/// FLUSH`, but 7.0.15 neither pauses nor refuses them.)
const MAY_REPLICATE: &[&str] = &["eval", "evalsha", "fcall", "publish", "spublish", "pfcount"];

/// Commands whose effects, not themselves, are propagated.
const CONTAINERS: &[&str] = &["exec", "eval", "evalsha", "fcall"];

/// Commands propagated whenever they succeed (Redis's `server.dirty++`
/// or `forceCommandPropagation` in them).
const FORCE_PROPAGATE: &[&str] = &[
    "flushall",
    "flushdb",
    "swapdb",
    "publish",
    "spublish",
    "function|load",
    "function|delete",
    "function|flush",
    "function|restore",
];

/// Commands that run alone under the keyspace's exclusive gate: they touch
/// several databases, or must look atomic across shards (a script's
/// commands, like a transaction's).
const EXCLUSIVE_COMMANDS: &[&str] = &[
    "swapdb",
    "move",
    "copy",
    "exec",
    "flushall",
    "flushdb",
    "eval",
    "evalsha",
    "eval_ro",
    "evalsha_ro",
    "fcall",
    "fcall_ro",
    "save",
    "shutdown",
    "sync",
    "psync",
    "debug",
];

/// Commands that run without the keyspace gate, so that they answer while
/// a `BGSAVE` holds it: they touch no key.
const GATE_FREE_COMMANDS: &[&str] = &["bgsave", "lastsave"];

/// Hand-written metadata for commands Redis does not have.
pub struct Extension {
    /// Full lowercase name.
    pub name: &'static str,
    /// Arity.
    pub arity: i32,
    /// Flags.
    pub flags: Flags,
    /// One-line summary for `COMMAND DOCS`.
    pub summary: &'static str,
}

/// All commands, looked up case-insensitively without allocating.
pub struct CommandTable {
    /// Distinguishes tables in one process (tests run several servers) for
    /// the lookup cache.
    id: u64,
    /// Index into `list` by lowercase name.
    index: HashMap<Vec<u8>, u32>,
    /// Every top-level command, sorted by name.
    list: Vec<Arc<CommandDef>>,
}

/// Source of [`CommandTable::id`]s.
static NEXT_TABLE_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Longest name [`LastLookup`] remembers.
const CACHED_NAME: usize = 16;

/// The calling thread's last top-level lookup, as the client spelled it.
///
/// A pipeline repeats one command (`redis-benchmark`, a queue's producer):
/// comparing the name with the last one found replaces the lowercasing,
/// hashing and probing of a table lookup, done twice per request (the
/// batch peek and the dispatcher), about 4% of a pipelined `LPUSH`'s CPU.
#[derive(Clone, Copy)]
struct LastLookup {
    table: u64,
    len: u8,
    name: [u8; CACHED_NAME],
    index: u32,
}

thread_local! {
    static LAST_LOOKUP: std::cell::Cell<LastLookup> = const {
        std::cell::Cell::new(LastLookup { table: 0, len: 0, name: [0; CACHED_NAME], index: 0 })
    };
}

/// Longest command name we look up (longer names cannot exist).
const MAX_NAME: usize = 32;

impl CommandTable {
    /// Builds the table from the Redis metadata dump, the handlers each
    /// family registers (`(full name, handler)`) and Amber's extensions.
    pub fn build(
        handlers: &[(&'static str, Handler)],
        extensions: &[(Extension, Handler)],
    ) -> Self {
        let dump: DumpFile =
            serde_json::from_str(include_str!("redis_commands.json")).unwrap_or(DumpFile {
                commands: Vec::new(),
            });
        let by_name: HashMap<&str, &DumpCommand> =
            dump.commands.iter().map(|c| (c.name.as_str(), c)).collect();
        let handler_of = |name: &str| handlers.iter().find(|(n, _)| *n == name).map(|(_, h)| *h);
        let mut commands = HashMap::new();
        for (name, _) in handlers.iter().filter(|(n, _)| !n.contains('|')) {
            if let Some(dc) = by_name.get(name) {
                commands.insert(
                    name.as_bytes().to_vec(),
                    Arc::new(Self::def(dc, &handler_of)),
                );
            } else {
                tracing::error!(
                    command = name,
                    "handler registered for a command with no metadata"
                );
            }
        }
        // Containers whose subcommands are registered but not the container itself.
        for (name, _) in handlers.iter().filter(|(n, _)| n.contains('|')) {
            let parent = name.split('|').next().unwrap_or_default();
            if !commands.contains_key(parent.as_bytes()) {
                if let Some(dc) = by_name.get(parent) {
                    commands.insert(
                        parent.as_bytes().to_vec(),
                        Arc::new(Self::def(dc, &handler_of)),
                    );
                }
            }
        }
        for (ext, handler) in extensions {
            let def = Self::extension_def(ext, *handler);
            match ext.name.split_once('|') {
                Some((parent, sub)) => {
                    if let Some(p) = commands.get_mut(parent.as_bytes()).and_then(Arc::get_mut) {
                        p.subcommands.insert(sub.as_bytes().to_vec(), Arc::new(def));
                    }
                }
                None => {
                    commands.insert(ext.name.as_bytes().to_vec(), Arc::new(def));
                }
            }
        }
        let mut list: Vec<(Vec<u8>, Arc<CommandDef>)> = commands.into_iter().collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        let index = list
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.clone(), i as u32))
            .collect();
        CommandTable {
            id: NEXT_TABLE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            index,
            list: list.into_iter().map(|(_, def)| def).collect(),
        }
    }

    fn def(dc: &DumpCommand, handler_of: &dyn Fn(&str) -> Option<Handler>) -> CommandDef {
        let subcommands = dc
            .subcommands
            .iter()
            .filter(|s| handler_of(&s.name).is_some())
            .map(|s| {
                let sub = s.name.split('|').nth(1).unwrap_or_default();
                (sub.as_bytes().to_vec(), Arc::new(Self::def(s, handler_of)))
            })
            .collect();
        let mut flags = Flags::from_names(&dc.flags);
        if EXCLUSIVE_COMMANDS.contains(&dc.name.as_str()) {
            flags = flags | Flags::EXCLUSIVE;
        }
        if GATE_FREE_COMMANDS.contains(&dc.name.as_str()) {
            flags = flags | Flags::NO_GATE;
        }
        if MAY_REPLICATE.contains(&dc.name.as_str()) {
            flags = flags | Flags::MAY_REPLICATE;
        }
        if flags.has(Flags::WRITE) || flags.has(Flags::MAY_REPLICATE) || dc.name == "exec" {
            flags = flags | Flags::PROPAGATES;
        }
        if CONTAINERS.contains(&dc.name.as_str()) {
            flags = flags | Flags::CONTAINER;
        }
        if FORCE_PROPAGATE.contains(&dc.name.as_str()) {
            flags = flags | Flags::FORCE_PROPAGATE;
        }
        if crate::replication::propagate::COUNTS_ELEMENTS.contains(&dc.name.as_str()) {
            flags = flags | Flags::COUNTS_ELEMENTS;
        }
        let bytes = |s: &str| s.chars().map(|c| c as u32 as u8).collect::<Vec<u8>>();
        CommandDef {
            stats: CommandStats::default(),
            name: dc.name.clone(),
            arity: dc.arity,
            flags,
            first_key: dc.first_key,
            last_key: dc.last_key,
            step: dc.step,
            handler: handler_of(&dc.name),
            subcommands,
            info: [bytes(&dc.info2), bytes(&dc.info3)],
            docs: [bytes(&dc.docs2), bytes(&dc.docs3)],
        }
    }

    fn extension_def(ext: &Extension, handler: Handler) -> CommandDef {
        let mut w2 = crate::resp::ReplyWriter::new();
        let mut w3 = crate::resp::ReplyWriter::new();
        w3.proto = crate::resp::Protocol::Resp3;
        let mut info = [Vec::new(), Vec::new()];
        let mut docs = [Vec::new(), Vec::new()];
        for (i, w) in [&mut w2, &mut w3].into_iter().enumerate() {
            w.array(10);
            w.bulk(ext.name.as_bytes());
            w.int(ext.arity as i64);
            w.set(0);
            w.int(0);
            w.int(0);
            w.int(0);
            w.set(0);
            w.set(0);
            w.array(0);
            w.array(0);
            info[i] = w.as_bytes().to_vec();
            w.clear();
            w.map(3);
            w.bulk(b"summary");
            w.bulk(ext.summary.as_bytes());
            w.bulk(b"since");
            w.bulk(b"amber 0.1.0");
            w.bulk(b"group");
            w.bulk(b"server");
            docs[i] = w.as_bytes().to_vec();
        }
        CommandDef {
            stats: CommandStats::default(),
            name: ext.name.to_string(),
            arity: ext.arity,
            flags: ext.flags,
            first_key: 0,
            last_key: 0,
            step: 0,
            handler: Some(handler),
            subcommands: HashMap::new(),
            info,
            docs,
        }
    }

    /// Looks up a top-level command by name, case-insensitively.
    pub fn get(&self, name: &[u8]) -> Option<&Arc<CommandDef>> {
        let last = LAST_LOOKUP.with(|c| c.get());
        if last.table == self.id && last.name.get(..usize::from(last.len)) == Some(name) {
            return self.list.get(last.index as usize);
        }
        let index = *lookup(&self.index, name)?;
        let mut cached = [0; CACHED_NAME];
        if let Some(prefix) = cached.get_mut(..name.len()) {
            prefix.copy_from_slice(name);
            let last = LastLookup {
                table: self.id,
                len: name.len() as u8,
                name: cached,
                index,
            };
            LAST_LOOKUP.with(|c| c.set(last));
        }
        self.list.get(index as usize)
    }

    /// All top-level commands, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<CommandDef>> {
        self.list.iter()
    }

    /// Finds a command by name, `container|sub` names included (Redis's
    /// `lookupCommandBySds`).
    pub fn by_full_name(&self, name: &[u8]) -> Option<&Arc<CommandDef>> {
        let mut parts = name.split(|&c| c == b'|');
        let top = self.get(parts.next()?)?;
        match (parts.next(), parts.next()) {
            (None, _) => Some(top),
            (Some(sub), None) => lookup(&top.subcommands, sub),
            _ => None,
        }
    }

    /// `def` then its subcommands, sorted by name (Redis walks its hash
    /// tables; Amber answers in a stable order).
    pub fn with_subcommands(def: &Arc<CommandDef>) -> Vec<Arc<CommandDef>> {
        let mut subs: Vec<_> = def.subcommands.values().cloned().collect();
        subs.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out = vec![def.clone()];
        out.extend(subs);
        out
    }

    /// Every command, each followed by its subcommands, sorted by name.
    pub fn all_with_subcommands(&self) -> Vec<Arc<CommandDef>> {
        self.list.iter().flat_map(Self::with_subcommands).collect()
    }

    /// Number of top-level commands.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// Case-insensitive lookup through a stack buffer (no allocation).
pub fn lookup<'m, T>(map: &'m HashMap<Vec<u8>, T>, name: &[u8]) -> Option<&'m T> {
    if name.len() > MAX_NAME {
        return None;
    }
    let mut buf = [0u8; MAX_NAME];
    let lower = buf.get_mut(..name.len())?;
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    map.get(&lower[..])
}
