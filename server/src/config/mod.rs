//! Configuration: directives in redis.conf syntax, `CONFIG GET/SET`.
//!
//! Every directive is described once in [`directives`] (name, kind, default,
//! whether it can change at run time). Values are stored as the canonical
//! text `CONFIG GET` shows (`yes`/`no`, memory in bytes, lowercase enums), and
//! validated with Redis 7.0's error texts. Values read on hot paths are also
//! cached in atomics ([`HotConfig`]) when they change.

pub mod directives;
mod file;
mod value;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::RwLock;

pub use directives::{Directive, Kind, DIRECTIVES};
pub use file::{load, ConfigLoadError};
pub use value::parse_memory;

/// Values read on every request, cached as atomics.
#[derive(Debug, Default)]
pub struct HotConfig {
    /// Is `requirepass` set?
    pub auth_required: AtomicBool,
    /// `proto-max-bulk-len`.
    pub proto_max_bulk_len: AtomicU64,
    /// `client-query-buffer-limit`.
    pub client_query_buffer_limit: AtomicU64,
    /// `maxclients`.
    pub maxclients: AtomicU64,
    /// `timeout` (seconds, 0 = never).
    pub timeout: AtomicU64,
}

/// The server's configuration.
pub struct Config {
    values: RwLock<HashMap<&'static str, String>>,
    /// The config file the server was started with, if any (for `CONFIG REWRITE`).
    pub file: Option<std::path::PathBuf>,
    /// Cached hot values.
    pub hot: HotConfig,
}

/// Looks up a directive by name or alias, case-insensitively.
pub fn directive(name: &str) -> Option<&'static Directive> {
    DIRECTIVES.iter().find(|d| {
        d.name.eq_ignore_ascii_case(name) || d.alias.is_some_and(|a| a.eq_ignore_ascii_case(name))
    })
}

impl Default for Config {
    fn default() -> Self {
        let values = DIRECTIVES
            .iter()
            .map(|d| (d.name, d.default.to_string()))
            .collect();
        let c = Config {
            values: RwLock::new(values),
            file: None,
            hot: HotConfig::default(),
        };
        c.refresh_hot();
        c
    }
}

impl Config {
    /// The canonical value of a directive.
    pub fn get(&self, name: &str) -> Option<String> {
        let d = directive(name)?;
        self.values.read().get(d.name).cloned()
    }

    /// A directive as an integer (memory values in bytes).
    pub fn get_i64(&self, name: &str) -> i64 {
        self.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    /// A yes/no directive.
    pub fn get_bool(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v == "yes")
    }

    /// Every (name, value) whose name matches the glob `pattern`, as `CONFIG GET` lists them.
    pub fn matching(&self, pattern: &[u8]) -> Vec<(&'static str, String)> {
        let values = self.values.read();
        let mut out = Vec::new();
        for d in DIRECTIVES.iter() {
            let hit = amber_storage::glob::matches(pattern, d.name.as_bytes(), true)
                || d.alias
                    .is_some_and(|a| amber_storage::glob::matches(pattern, a.as_bytes(), true));
            if hit {
                out.push((d.name, values.get(d.name).cloned().unwrap_or_default()));
                if let Some(alias) = d.alias {
                    if amber_storage::glob::matches(pattern, alias.as_bytes(), true) {
                        out.push((alias, values.get(d.name).cloned().unwrap_or_default()));
                    }
                }
            }
        }
        out
    }

    /// Validates and stores a value. `startup` allows immutable directives.
    /// The error is Redis's reason text (e.g. `argument must be 'yes' or 'no'`).
    pub fn set(&self, name: &str, args: &[&[u8]], startup: bool) -> Result<(), String> {
        let d = directive(name)
            .ok_or_else(|| "Bad directive or wrong number of arguments".to_string())?;
        if !startup && !d.mutable {
            return Err("can't set immutable config".into());
        }
        let canonical = value::canonical(d, args)?;
        self.values.write().insert(d.name, canonical);
        self.refresh_hot();
        Ok(())
    }

    /// Validates without storing (for `CONFIG SET` of several pairs, all or nothing).
    pub fn check(&self, name: &str, args: &[&[u8]]) -> Result<String, String> {
        let d = directive(name)
            .ok_or_else(|| "Bad directive or wrong number of arguments".to_string())?;
        if !d.mutable {
            return Err("can't set immutable config".into());
        }
        value::canonical(d, args)
    }

    fn refresh_hot(&self) {
        let h = &self.hot;
        h.auth_required.store(
            self.get("requirepass").is_some_and(|v| !v.is_empty()),
            Ordering::Relaxed,
        );
        h.proto_max_bulk_len
            .store(self.get_i64("proto-max-bulk-len") as u64, Ordering::Relaxed);
        h.client_query_buffer_limit.store(
            self.get_i64("client-query-buffer-limit") as u64,
            Ordering::Relaxed,
        );
        h.maxclients
            .store(self.get_i64("maxclients") as u64, Ordering::Relaxed);
        h.timeout
            .store(self.get_i64("timeout") as u64, Ordering::Relaxed);
    }

    /// All values, for `CONFIG REWRITE` (directives that differ from their default).
    pub fn non_default(&self) -> Vec<(&'static str, String)> {
        let values = self.values.read();
        DIRECTIVES
            .iter()
            .filter_map(|d| {
                let v = values.get(d.name)?;
                (v != d.default).then(|| (d.name, v.clone()))
            })
            .collect()
    }
}
