//! `SLOWLOG`: the log of commands slower than `slowlog-log-slower-than`,
//! as Redis 7.0's `slowlog.c` and the part of `call()` that feeds it.
//!
//! `cmd::call` measures every command's duration anyway; it calls
//! [`after_call`] only when [`worth_a_look`] says the duration reaches
//! the smallest threshold in force (one relaxed load and one compare), so
//! a fast command pays nothing more. The entry keeps at most
//! [`MAX_ARGS`] arguments of at most [`MAX_ARG_LEN`] bytes each, with the
//! arguments Redis redacts (passwords) replaced by `(redacted)`.
//!
//! A command that blocks (`BLPOP`...) is logged when it is served, after
//! the command that served it, or when `CLIENT UNBLOCK` ends it (not when
//! it times out), as Redis 7.0's `updateStatsOnUnblock` callers, with the
//! duration of its first run (Amber does not time the serving apart from
//! the command that serves): the entry waits in its
//! [`crate::blocking::Waiter`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::cmd::{CommandDef, Ctx, Flags};
use crate::state::ServerState;

/// Arguments kept per entry (Redis's `SLOWLOG_ENTRY_MAX_ARGC`); the last
/// one kept says how many more there were.
pub const MAX_ARGS: usize = 32;

/// Bytes kept per argument (Redis's `SLOWLOG_ENTRY_MAX_STRING`).
pub const MAX_ARG_LEN: usize = 128;

/// What replaces a sensitive argument (Redis's `shared.redacted`).
const REDACTED: &[u8] = b"(redacted)";

/// One logged command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Unique, increasing from 0; `SLOWLOG RESET` does not reset it.
    pub id: u64,
    /// Unix time (seconds) the entry was logged.
    pub time: u64,
    /// How long the command ran, µs.
    pub duration_us: u64,
    /// The command's arguments, trimmed and redacted.
    pub args: Vec<Vec<u8>>,
    /// The client's `ip:port` (`?:0` for a script's commands).
    pub peer: String,
    /// The client's name (empty for a script's commands).
    pub name: Vec<u8>,
}

/// An entry not yet numbered.
#[derive(Debug, Clone)]
pub struct Pending {
    duration_us: u64,
    args: Vec<Vec<u8>>,
    peer: String,
    name: Vec<u8>,
}

/// A blocked command's entry, logged once it is served (or `CLIENT
/// UNBLOCK`ed) under the thresholds in force then, as Redis does.
#[derive(Debug)]
pub struct Deferred {
    log: Arc<SlowLog>,
    entry: Pending,
}

impl Deferred {
    /// The entry with no arguments: Redis 7.0.15's `CLIENT UNBLOCK` logs
    /// the unblocked command after freeing its arguments, so its entry
    /// has an empty argument list, and Amber's reads the same.
    pub fn without_args(mut self) -> Deferred {
        self.entry.args.clear();
        self
    }

    /// Logs the entry (if it is slow enough).
    pub fn log(self) {
        let slower_than = self.log.slower_than.load(Ordering::Relaxed);
        let max_len =
            usize::try_from(self.log.max_len.load(Ordering::Relaxed)).unwrap_or(usize::MAX);
        self.log.push(self.entry, slower_than, max_len);
    }
}

/// The server's slow log, newest entry first.
#[derive(Debug, Default)]
pub struct SlowLog {
    inner: Mutex<Inner>,
    /// `slowlog-log-slower-than` as last seen (by a `CONFIG SET` or a
    /// command that blocked), for [`Deferred::log`], which has no server.
    slower_than: AtomicI64,
    /// `slowlog-max-len`, likewise.
    max_len: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    entries: VecDeque<Entry>,
    next_id: u64,
}

impl SlowLog {
    /// Logs `p` if it is slow enough, then trims the log to `max_len`
    /// (Redis's `slowlogPushEntryIfNeeded`). A negative `slower_than`
    /// means the log is off: nothing is logged or trimmed.
    pub fn push(&self, p: Pending, slower_than: i64, max_len: usize) {
        if slower_than < 0 {
            return;
        }
        let mut inner = self.inner.lock();
        if p.duration_us >= slower_than as u64 {
            let id = inner.next_id;
            inner.next_id += 1;
            inner.entries.push_front(Entry {
                id,
                time: amber_storage::clock::now_ms() / 1000,
                duration_us: p.duration_us,
                args: p.args,
                peer: p.peer,
                name: p.name,
            });
        }
        inner.entries.truncate(max_len);
    }

    /// Trims the log to `max_len` entries, dropping the oldest.
    pub fn trim(&self, max_len: usize) {
        self.inner.lock().entries.truncate(max_len);
    }

    /// Remembers the configuration for entries logged without a server
    /// at hand ([`Deferred`]).
    fn remember_limits(&self, slower_than: i64, max_len: usize) {
        self.slower_than.store(slower_than, Ordering::Relaxed);
        self.max_len.store(max_len as u64, Ordering::Relaxed);
    }

    /// The newest `count` entries (all of them with `None`), newest first.
    pub fn newest(&self, count: Option<usize>) -> Vec<Entry> {
        let inner = self.inner.lock();
        let n = count.unwrap_or(usize::MAX);
        inner.entries.iter().take(n).cloned().collect()
    }

    /// Entries in the log (`SLOWLOG LEN`).
    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `SLOWLOG RESET`: empties the log; ids go on from where they were.
    pub fn reset(&self) {
        self.inner.lock().entries.clear();
    }
}

/// Whether a command that ran `duration_us` may be recorded by the slow
/// log or the latency monitor: the only check a fast command pays.
#[inline]
pub fn worth_a_look(srv: &ServerState, duration_us: u64) -> bool {
    duration_us >= srv.config.hot.slow_call_us.load(Ordering::Relaxed)
}

/// Records a command that ran `duration_us` (as Redis's `call()` after
/// the command): a `command` or `fast-command` latency sample and a slow
/// log entry, each if over its threshold. A command that blocked is
/// logged later, when it is served or times out ([`log_unblocked`]).
pub fn after_call(ctx: &mut Ctx<'_>, def: &CommandDef, args: &[&[u8]], duration_us: u64) {
    let srv = ctx.srv;
    let event = if def.flags.has(Flags::FAST) {
        "fast-command"
    } else {
        "command"
    };
    srv.latency.sample_if_needed(srv, event, duration_us / 1000);
    let hot = &srv.config.hot;
    let slower_than = hot.slowlog_log_slower_than.load(Ordering::Relaxed);
    if slower_than < 0 || def.flags.has(Flags::SKIP_SLOWLOG) {
        return;
    }
    let max_len = crate::config::HotConfig::count(&hot.slowlog_max_len);
    let blocked = ctx.client.block.waiting.as_ref();
    if let Some(blocked) = blocked {
        // `WAIT` blocks too, but Redis never logs it once it blocked.
        if def.flags.has(Flags::BLOCKING) {
            srv.slowlog.remember_limits(slower_than, max_len);
            blocked.waiter().keep_slowlog_entry(Deferred {
                log: srv.slowlog.clone(),
                entry: pending(ctx, def, args, duration_us),
            });
        }
        return;
    }
    if duration_us < slower_than as u64 {
        return;
    }
    srv.slowlog
        .push(pending(ctx, def, args, duration_us), slower_than, max_len);
}

/// `CONFIG SET slowlog-max-len`: in Redis the `CONFIG SET` itself trims
/// the log on its way out of `call()` (while the log is on); so does Amber.
pub fn config_changed(srv: &ServerState) {
    let hot = &srv.config.hot;
    let slower_than = hot.slowlog_log_slower_than.load(Ordering::Relaxed);
    let max_len = crate::config::HotConfig::count(&hot.slowlog_max_len);
    srv.slowlog.remember_limits(slower_than, max_len);
    if slower_than >= 0 {
        srv.slowlog.trim(max_len);
    }
}

/// The entry for the command `args` run by the context's client.
fn pending(ctx: &Ctx<'_>, def: &CommandDef, args: &[&[u8]], duration_us: u64) -> Pending {
    let redacted = redacted_args(&def.name, args);
    let shown: Vec<&[u8]> = args
        .iter()
        .enumerate()
        .map(|(i, a)| if redacted.contains(&i) { REDACTED } else { *a })
        .collect();
    let (peer, name) = if ctx.client.in_script {
        // Redis's scripts run as a client of their own with no address.
        ("?:0".to_string(), Vec::new())
    } else {
        let h = &ctx.client.handle;
        (h.addr.to_string(), h.info.lock().name.clone())
    };
    Pending {
        duration_us,
        args: trimmed(&shown),
        peer,
        name,
    }
}

/// The arguments as an entry keeps them (Redis's `slowlogCreateEntry`):
/// at most [`MAX_ARGS`], the last saying how many more there were, each
/// cut to [`MAX_ARG_LEN`] bytes with a note of how many more there were.
pub fn trimmed(args: &[&[u8]]) -> Vec<Vec<u8>> {
    let argc = args.len();
    let keep = argc.min(MAX_ARGS);
    args.iter()
        .take(keep)
        .enumerate()
        .map(|(j, a)| {
            if keep != argc && j == keep - 1 {
                format!("... ({} more arguments)", argc - keep + 1).into_bytes()
            } else if let Some(head) = a.get(..MAX_ARG_LEN).filter(|_| a.len() > MAX_ARG_LEN) {
                let mut cut = head.to_vec();
                cut.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - MAX_ARG_LEN).as_bytes(),
                );
                cut
            } else {
                a.to_vec()
            }
        })
        .collect()
}

/// Positions of the arguments Redis 7.0 redacts for the command `name`
/// (`redactClientCommandArgument`'s callers): passwords of `AUTH`,
/// `HELLO ... AUTH`, `MIGRATE ... AUTH/AUTH2`, every argument of `ACL
/// SETUSER` after the command, and the values of `CONFIG SET`'s sensitive
/// directives. Like Redis, which redacts while it parses, an option after
/// one the command refuses is not redacted.
pub fn redacted_args(name: &str, args: &[&[u8]]) -> Vec<usize> {
    let is = |a: &[u8], s: &str| a.eq_ignore_ascii_case(s.as_bytes());
    match name {
        "auth" if args.len() == 2 => vec![1],
        "auth" if args.len() == 3 => vec![1, 2],
        "acl|setuser" => (2..args.len()).collect(),
        "config|set" if args.len() >= 4 && args.len().is_multiple_of(2) => (2..args.len())
            .step_by(2)
            .filter(|&i| {
                ["masteruser", "masterauth", "requirepass"]
                    .iter()
                    .any(|s| is(args[i], s))
            })
            .map(|i| i + 1)
            .collect(),
        "hello" => hello_redacted(args),
        "migrate" => migrate_redacted(args),
        _ => Vec::new(),
    }
}

/// `HELLO [protover [AUTH user pass] [SETNAME name]]`, as `helloCommand`
/// parses it: nothing is redacted when the version is refused.
fn hello_redacted(args: &[&[u8]]) -> Vec<usize> {
    let mut out = Vec::new();
    let Some(ver) = args.get(1) else {
        return out;
    };
    let ok = std::str::from_utf8(ver)
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .is_some_and(|v| (2..=3).contains(&v));
    if !ok {
        return out;
    }
    let mut j = 2;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if args[j].eq_ignore_ascii_case(b"auth") && more >= 2 {
            out.extend([j + 1, j + 2]);
            j += 3;
        } else if args[j].eq_ignore_ascii_case(b"setname") && more >= 1 {
            j += 2;
        } else {
            break;
        }
    }
    out
}

/// `MIGRATE host port key db timeout [COPY] [REPLACE] [AUTH pass | AUTH2
/// user pass] [KEYS key...]`, as `migrateCommand` parses its options.
fn migrate_redacted(args: &[&[u8]]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let a = args[j];
        if a.eq_ignore_ascii_case(b"copy") || a.eq_ignore_ascii_case(b"replace") {
            j += 1;
        } else if a.eq_ignore_ascii_case(b"auth") && more >= 1 {
            out.push(j + 1);
            j += 2;
        } else if a.eq_ignore_ascii_case(b"auth2") && more >= 2 {
            out.extend([j + 1, j + 2]);
            j += 3;
        } else {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    fn trimmed(v: &[&str]) -> Vec<Vec<u8>> {
        let v: Vec<&[u8]> = v.iter().map(|s| s.as_bytes()).collect();
        super::trimmed(&v)
    }

    #[test]
    fn many_arguments_keep_32_the_last_counting_the_rest() {
        let args: Vec<String> = (0..34).map(|i| i.to_string()).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let t = trimmed(&args);
        assert_eq!(t.len(), 32);
        assert_eq!(t[30], b"30");
        assert_eq!(t[31], b"... (3 more arguments)");
        assert_eq!(trimmed(&args[..32]).len(), 32);
        assert_eq!(trimmed(&args[..32])[31], b"31");
    }

    #[test]
    fn long_arguments_are_cut_at_128_bytes() {
        let long = "A".repeat(130);
        let t = trimmed(&["set", &long]);
        assert_eq!(
            t[1],
            format!("{}... (2 more bytes)", "A".repeat(128)).into_bytes()
        );
        let exact = "B".repeat(128);
        assert_eq!(trimmed(&["set", &exact])[1], exact.as_bytes());
    }

    #[test]
    fn redaction_follows_the_parsers() {
        let r = |name: &str, a: &[&str]| {
            let a: Vec<&[u8]> = a.iter().map(|s| s.as_bytes()).collect();
            redacted_args(name, &a)
        };
        assert_eq!(r("auth", &["auth", "p"]), vec![1]);
        assert_eq!(r("auth", &["auth", "u", "p"]), vec![1, 2]);
        assert!(r("auth", &["auth", "a", "b", "c"]).is_empty());
        assert_eq!(r("hello", &["hello", "3", "auth", "u", "p"]), vec![3, 4]);
        assert!(r("hello", &["hello", "9", "auth", "u", "p"]).is_empty());
        assert_eq!(
            r(
                "migrate",
                &["migrate", "h", "1", "k", "0", "5", "copy", "auth2", "u", "p"]
            ),
            vec![8, 9]
        );
        assert_eq!(
            r(
                "config|set",
                &["config", "set", "maxmemory", "1", "MasterAuth", "x"]
            ),
            vec![5]
        );
        assert_eq!(r("acl|setuser", &["acl", "setuser", "u", "on"]), vec![2, 3]);
    }

    #[test]
    fn ids_survive_reset_and_the_log_is_trimmed_oldest_first() {
        let log = SlowLog::default();
        let p = |d| Pending {
            duration_us: d,
            args: bytes(&["x"]),
            peer: String::new(),
            name: Vec::new(),
        };
        log.push(p(5), 10, 2);
        assert_eq!(log.len(), 0);
        for _ in 0..3 {
            log.push(p(10), 10, 2);
        }
        let ids: Vec<u64> = log.newest(None).iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![2, 1]);
        log.reset();
        log.push(p(10), 10, 2);
        assert_eq!(log.newest(Some(1))[0].id, 3);
        log.push(p(10), -1, 2);
        assert_eq!(log.len(), 1);
    }
}
