//! Configuration: directives in redis.conf syntax, `CONFIG GET/SET/REWRITE`.
//!
//! Every directive is described once in [`directives`] (name, alias, kind,
//! default, flags): Redis 7.0's, generated from its `config.c`, then
//! Amber's own. Values are stored as the canonical text `CONFIG GET` shows
//! (`yes`/`no`, memory in bytes, enum names), validated with Redis 7.0's
//! parsing rules and error texts ([`value`]). Values read on hot paths are
//! also cached in atomics ([`HotConfig`]) when they change.

pub mod directives;
mod file;
pub mod redis_directives;
pub mod rewrite;
pub mod value;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use parking_lot::RwLock;

pub use directives::{default_of, Directive, DirectiveFlags, Kind, DIRECTIVES};
pub use file::{load, ConfigLoadError};
pub use value::{parse_memory, Source};

/// Values read on every request, cached as atomics.
#[derive(Debug, Default)]
pub struct HotConfig {
    /// `proto-max-bulk-len`.
    pub proto_max_bulk_len: AtomicU64,
    /// `client-query-buffer-limit`.
    pub client_query_buffer_limit: AtomicU64,
    /// `maxclients`.
    pub maxclients: AtomicU64,
    /// `timeout` (seconds, 0 = never).
    pub timeout: AtomicU64,
    /// `notify-keyspace-events` as flags ([`crate::notify`]'s constants).
    pub notify_flags: std::sync::atomic::AtomicU32,
    /// `hash-max-listpack-entries` (read by every hash write).
    pub hash_max_listpack_entries: AtomicU64,
    /// `hash-max-listpack-value`.
    pub hash_max_listpack_value: AtomicU64,
    /// `set-max-intset-entries` (read by every set write).
    pub set_max_intset_entries: AtomicU64,
    /// `zset-max-listpack-entries` (read by every sorted-set write).
    pub zset_max_listpack_entries: AtomicU64,
    /// `zset-max-listpack-value`.
    pub zset_max_listpack_value: AtomicU64,
    /// `stream-node-max-bytes` (read by every `XADD`).
    pub stream_node_max_bytes: AtomicU64,
    /// `stream-node-max-entries`.
    pub stream_node_max_entries: AtomicU64,
    /// `latency-tracking` (read after every command).
    pub latency_tracking: AtomicBool,
    /// `slowlog-log-slower-than` (µs; negative: the slow log is off).
    pub slowlog_log_slower_than: AtomicI64,
    /// `slowlog-max-len`.
    pub slowlog_max_len: AtomicU64,
    /// `latency-monitor-threshold` (ms; 0: the latency monitor is off).
    pub latency_monitor_threshold: AtomicU64,
    /// The shortest duration (µs) that the slow log or the latency monitor
    /// may record, `u64::MAX` when both are off: the one load and compare
    /// every command pays (see `crate::slowlog::worth_a_look`).
    pub slow_call_us: AtomicU64,
    /// `min-replicas-to-write` (read by every write command).
    pub min_replicas_to_write: AtomicU64,
    /// `min-replicas-max-lag` (seconds).
    pub min_replicas_max_lag: AtomicU64,
}

impl HotConfig {
    /// A cached count directive as a `usize`.
    pub fn count(v: &AtomicU64) -> usize {
        usize::try_from(v.load(Ordering::Relaxed)).unwrap_or(usize::MAX)
    }
}

/// The server's configuration.
pub struct Config {
    values: RwLock<HashMap<&'static str, String>>,
    /// The config file the server was started with, if any (for `CONFIG REWRITE`).
    pub file: Option<std::path::PathBuf>,
    /// Cached hot values.
    pub hot: HotConfig,
    /// `user <name> <rules...>` lines, in order (Redis's `UsersToLoad`),
    /// applied once the server's command table exists ([`crate::acl`]).
    pub users: Vec<UserLine>,
}

/// A `user` line of the configuration.
#[derive(Debug, Clone)]
pub struct UserLine {
    /// Where it was read (for the start-up error).
    pub source: String,
    /// 1-based line number within the source.
    pub line: usize,
    /// The line as written.
    pub text: String,
    /// Its arguments, `user` and the name included.
    pub args: Vec<Vec<u8>>,
}

impl UserLine {
    /// Redis's start-up error for this line: `Error in user declaration`,
    /// quoting argument `at` of the line.
    pub fn error(&self, at: usize, why: &str) -> ConfigLoadError {
        let quoted = self.args.get(at).map(|a| String::from_utf8_lossy(a));
        ConfigLoadError {
            source: self.source.clone(),
            line: self.line,
            text: self.text.clone(),
            reason: format!(
                "Error in user declaration '{}': {why}",
                quoted.unwrap_or_default()
            ),
        }
    }
}

/// Looks up a directive by name or alias, case-insensitively.
pub fn directive(name: &str) -> Option<&'static Directive> {
    lookup(name).map(|(d, _)| d)
}

/// Looks up a directive by name or alias; the flag says whether `name` is the alias.
pub fn lookup(name: &str) -> Option<(&'static Directive, bool)> {
    DIRECTIVES.iter().find_map(|&d| {
        if d.name.eq_ignore_ascii_case(name) {
            Some((d, false))
        } else if d.alias.is_some_and(|a| a.eq_ignore_ascii_case(name)) {
            Some((d, true))
        } else {
            None
        }
    })
}

/// Splits a `CONFIG SET` value of a multi-argument directive on single
/// spaces, like Redis's `sdssplitlen(value, " ")` (an empty value is no argument).
pub fn split_value(v: &str) -> Vec<&str> {
    if v.is_empty() {
        Vec::new()
    } else {
        v.split(' ').collect()
    }
}

impl Default for Config {
    fn default() -> Self {
        let values = DIRECTIVES
            .iter()
            .map(|d| (d.name, default_of(d).to_string()))
            .collect();
        let c = Config {
            values: RwLock::new(values),
            file: None,
            hot: HotConfig::default(),
            users: Vec::new(),
        };
        c.refresh_hot();
        c
    }
}

impl Config {
    /// The canonical value of a directive (as `CONFIG GET` shows it).
    pub fn get(&self, name: &str) -> Option<String> {
        let d = directive(name)?;
        Some(self.value_of(d))
    }

    /// The value of a directive given its table entry.
    pub fn value_of(&self, d: &Directive) -> String {
        let v = self.values.read().get(d.name).cloned().unwrap_or_default();
        if d.name == "dir" {
            // Redis shows its working directory: always absolute.
            return value::absolute(&v);
        }
        v
    }

    /// The value as stored (for `dir`: as configured, possibly relative).
    pub fn raw(&self, name: &str) -> Option<String> {
        let d = directive(name)?;
        self.values.read().get(d.name).cloned()
    }

    /// A directive as an integer (memory values in bytes; 0 if not numeric).
    pub fn get_i64(&self, name: &str) -> i64 {
        self.get(name)
            .and_then(|v| {
                v.parse::<i64>()
                    .ok()
                    .or_else(|| v.parse::<u64>().ok().map(|u| u as i64))
            })
            .unwrap_or(0)
    }

    /// A directive as an unsigned integer (0 if not numeric).
    pub fn get_u64(&self, name: &str) -> u64 {
        self.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    /// A yes/no directive.
    pub fn get_bool(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v == "yes")
    }

    /// Validates and stores a value at start-up (immutable directives allowed).
    /// The error is Redis's reason text (e.g. `argument must be 'yes' or 'no'`).
    pub fn set(&self, name: &str, args: &[&[u8]], startup: bool) -> Result<(), String> {
        let d = directive(name)
            .ok_or_else(|| "Bad directive or wrong number of arguments".to_string())?;
        if !startup && !d.mutable() {
            return Err("can't set immutable config".into());
        }
        let args: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let source = if startup {
            Source::Startup
        } else {
            Source::Runtime
        };
        let canonical = value::canonical(d, &args, &self.value_of(d), source)?;
        self.store(d, canonical);
        Ok(())
    }

    /// Validates a value for `d` without storing it, returning its canonical form.
    pub fn check_value(
        &self,
        d: &Directive,
        args: &[&str],
        source: Source,
    ) -> Result<String, String> {
        value::canonical(d, args, &self.value_of(d), source)
    }

    /// Validates without storing (for `CONFIG SET` of several pairs, all or nothing).
    pub fn check(&self, name: &str, args: &[&[u8]]) -> Result<String, String> {
        let d = directive(name)
            .ok_or_else(|| "Bad directive or wrong number of arguments".to_string())?;
        if !d.mutable() {
            return Err("can't set immutable config".into());
        }
        let args: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.check_value(d, &args, Source::Runtime)
    }

    /// Stores an already validated canonical value.
    pub fn store(&self, d: &Directive, canonical: String) {
        self.values.write().insert(d.name, canonical);
        self.refresh_hot();
    }

    /// Appends save points to `save` (successive `save` lines of a config file).
    pub fn append_save(&self, canonical: &str) {
        let mut values = self.values.write();
        let cur = values.entry("save").or_default();
        if canonical.is_empty() {
            return;
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(canonical);
    }

    fn refresh_hot(&self) {
        let h = &self.hot;
        h.proto_max_bulk_len
            .store(self.get_u64("proto-max-bulk-len"), Ordering::Relaxed);
        h.client_query_buffer_limit
            .store(self.get_u64("client-query-buffer-limit"), Ordering::Relaxed);
        h.maxclients
            .store(self.get_u64("maxclients"), Ordering::Relaxed);
        h.timeout.store(self.get_u64("timeout"), Ordering::Relaxed);
        // A negative count means 0, as the commands read it.
        let count = |name: &str| self.get_i64(name).max(0) as u64;
        h.hash_max_listpack_entries
            .store(count("hash-max-listpack-entries"), Ordering::Relaxed);
        h.hash_max_listpack_value
            .store(count("hash-max-listpack-value"), Ordering::Relaxed);
        h.set_max_intset_entries
            .store(count("set-max-intset-entries"), Ordering::Relaxed);
        h.zset_max_listpack_entries
            .store(count("zset-max-listpack-entries"), Ordering::Relaxed);
        h.zset_max_listpack_value
            .store(count("zset-max-listpack-value"), Ordering::Relaxed);
        h.stream_node_max_bytes
            .store(count("stream-node-max-bytes"), Ordering::Relaxed);
        h.stream_node_max_entries
            .store(count("stream-node-max-entries"), Ordering::Relaxed);
        h.latency_tracking
            .store(self.get_bool("latency-tracking"), Ordering::Relaxed);
        let slower_than = self.get_i64("slowlog-log-slower-than");
        h.slowlog_log_slower_than
            .store(slower_than, Ordering::Relaxed);
        h.slowlog_max_len
            .store(count("slowlog-max-len"), Ordering::Relaxed);
        let latency_ms = count("latency-monitor-threshold");
        h.latency_monitor_threshold
            .store(latency_ms, Ordering::Relaxed);
        let slowlog_us = u64::try_from(slower_than).unwrap_or(u64::MAX);
        let latency_us = match latency_ms {
            0 => u64::MAX,
            ms => ms.saturating_mul(1000),
        };
        h.slow_call_us
            .store(slowlog_us.min(latency_us), Ordering::Relaxed);
        h.min_replicas_to_write
            .store(count("min-replicas-to-write"), Ordering::Relaxed);
        h.min_replicas_max_lag
            .store(count("min-replicas-max-lag"), Ordering::Relaxed);
        let notify = self.get("notify-keyspace-events").unwrap_or_default();
        h.notify_flags
            .store(value::notify_flags(&notify).unwrap_or(0), Ordering::Relaxed);
    }

    /// Directives that differ from their default, as (name, value).
    pub fn non_default(&self) -> Vec<(&'static str, String)> {
        let values = self.values.read();
        DIRECTIVES
            .iter()
            .filter_map(|d| {
                let v = values.get(d.name)?;
                (v != default_of(d)).then(|| (d.name, v.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_directive_default_is_valid() {
        let c = Config::default();
        for d in DIRECTIVES
            .iter()
            .filter(|d| !matches!(d.name, "dir" | "replicaof"))
        {
            let v = c.value_of(d);
            let args: Vec<&str> = if d.multi_arg() {
                if v.is_empty() {
                    vec![""]
                } else {
                    v.split(' ').collect()
                }
            } else {
                vec![v.as_str()]
            };
            let canon = c.check_value(d, &args, Source::Startup);
            assert_eq!(canon.as_deref(), Ok(v.as_str()), "{}", d.name);
        }
    }

    #[test]
    fn aliases_and_lookup() {
        assert_eq!(directive("SLAVEOF").map(|d| d.name), Some("replicaof"));
        assert_eq!(
            directive("hash-max-ziplist-entries").map(|d| d.name),
            Some("hash-max-listpack-entries")
        );
        let c = Config::default();
        c.set("slave-priority", &[b"7"], false).expect("valid");
        assert_eq!(c.get("replica-priority").as_deref(), Some("7"));
        assert_eq!(
            c.set("daemonize", &[b"yes"], false),
            Err("can't set immutable config".into())
        );
        assert!(c.set("daemonize", &[b"yes"], true).is_ok());
        assert!(directive("no-such-thing").is_none());
    }

    #[test]
    fn save_points_accumulate() {
        let c = Config::default();
        c.set("save", &[b"10", b"1"], true).expect("valid");
        c.append_save("20 2");
        assert_eq!(c.get("save").as_deref(), Some("10 1 20 2"));
    }

    #[test]
    fn hot_values_follow() {
        let c = Config::default();
        c.set("proto-max-bulk-len", &[b"2mb"], false)
            .expect("valid");
        assert_eq!(c.hot.proto_max_bulk_len.load(Ordering::Relaxed), 2 << 20);
    }
}
