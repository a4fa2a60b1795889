//! Which commands reach the replicas, and in what form (Redis's `call()`,
//! `alsoPropagate` and `propagatePendingCommands`).
//!
//! Around every command flagged [`Flags::PROPAGATES`] the dispatcher
//! opens a [`Scope`]. The storage layer counts, per thread, the keys a
//! command really changed (`amber_storage::changes`); the difference is
//! the command's share of `dirty`, and zero means it changed nothing and
//! is not propagated (unless Redis forces it: [`Flags::FORCE_PROPAGATE`]).
//!
//! While replicas are attached, the commands a top-level command runs
//! (itself, or a transaction's or a script's commands) collect in a
//! per-thread list, each in the form Redis sends: [`rewrite`]. When the
//! top-level command ends they go to the stream, wrapped in `MULTI`/`EXEC`
//! when there are several. The pops of the blocked clients it served
//! follow, each client's as a unit of its own ([`served`]), as Redis
//! propagates them after the command, client by client.

use std::cell::RefCell;

use crate::cmd::{CommandDef, Flags};
use crate::state::ServerState;

/// A command for the stream: its database and arguments.
pub type Op = (Option<usize>, Vec<Vec<u8>>);

#[derive(Default)]
struct Pending {
    /// Nesting of propagating scopes on this thread (0: none open).
    depth: u32,
    ops: Vec<Op>,
    /// The effects of the blocked clients the command served, one unit
    /// per client, sent after its own.
    served: Vec<Vec<Op>>,
    /// A script's `redis.set_repl(REPL_NONE)` (or `REPL_AOF`): its next
    /// commands are not propagated, until the top-level command ends.
    unreplicated: bool,
    /// The running command gave its effects itself ([`instead`]): it is
    /// not propagated in its own form.
    replaced: bool,
}

thread_local! {
    static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
}

/// A command being run: what [`Scope::finish`] needs to count and
/// propagate it.
pub struct Scope<'a> {
    changes: u64,
    /// Set while replicas are attached: this scope collects ops.
    propagating: bool,
    /// Where this command's own op goes in the thread's list (before the
    /// pops of the clients it served, which it made possible).
    at: usize,
    /// The enclosing command's [`Pending::replaced`], restored when this
    /// one ends.
    outer_replaced: bool,
    _order: Option<super::Ordered<'a>>,
}

impl<'a> Scope<'a> {
    /// Opens the scope of a command that may change the dataset. Costs a
    /// thread-local read and one relaxed load while no replica is attached.
    #[inline]
    pub fn enter(srv: &'a ServerState) -> Scope<'a> {
        let changes = amber_storage::changes::count();
        if !srv.master.active() {
            return Scope {
                changes,
                propagating: false,
                at: 0,
                outer_replaced: false,
                _order: None,
            };
        }
        let (top, at, outer_replaced) = PENDING.with(|p| {
            let mut p = p.borrow_mut();
            p.depth += 1;
            if p.depth == 1 {
                p.unreplicated = false;
            }
            let outer = std::mem::replace(&mut p.replaced, false);
            (p.depth == 1, p.ops.len(), outer)
        });
        Scope {
            changes,
            propagating: true,
            at,
            outer_replaced,
            _order: top.then(|| srv.master.order()),
        }
    }

    /// Closes the scope after the command ran: counts its changes in
    /// `dirty` and, while replicas are attached, propagates it. `reply`
    /// is the command's reply (some rewrites read it); returns the new
    /// stream offset when this ended a top-level command that fed it.
    pub fn finish(
        mut self,
        srv: &ServerState,
        db: usize,
        def: &CommandDef,
        args: &[&[u8]],
        reply: &[u8],
        ok: bool,
    ) -> Option<u64> {
        let mut changed = amber_storage::changes::count().wrapping_sub(self.changes);
        if changed > 0 && def.flags.has(Flags::COUNTS_ELEMENTS) {
            changed = redis_count(&def.name, args, reply).max(1);
        }
        let container = def.flags.has(Flags::CONTAINER);
        let forced = ok && def.flags.has(Flags::FORCE_PROPAGATE);
        if !container {
            if changed > 0 {
                srv.dirty.add(changed);
            } else if forced && !def.flags.has(Flags::PUBSUB) {
                srv.dirty.add(1);
            }
        }
        if !self.propagating {
            return None;
        }
        // From here on this scope is closed by this call, not by `Drop`.
        self.propagating = false;
        let (unreplicated, replaced) = PENDING.with(|p| {
            let mut p = p.borrow_mut();
            let replaced = std::mem::replace(&mut p.replaced, self.outer_replaced);
            (p.unreplicated, replaced)
        });
        let own = if ok && !container && !unreplicated && !replaced && (changed > 0 || forced) {
            rewrite(srv, db, &def.name, args, reply)
        } else {
            Vec::new()
        };
        let ops = PENDING.with(|p| {
            let mut p = p.borrow_mut();
            let at = self.at.min(p.ops.len());
            p.ops.splice(at..at, own.into_iter().map(|a| (Some(db), a)));
            p.depth = p.depth.saturating_sub(1);
            if p.depth == 0 {
                p.unreplicated = false;
                let mut all = wrapped(std::mem::take(&mut p.ops));
                for unit in std::mem::take(&mut p.served) {
                    all.extend(wrapped(unit));
                }
                Some(all)
            } else {
                None
            }
        })?;
        if ops.is_empty() {
            return None;
        }
        Some(srv.master.feed(srv, &ops))
    }
}

/// Commands whose `dirty` share Redis counts per element (flagged
/// [`Flags::COUNTS_ELEMENTS`]): the integer reply (members, fields, keys
/// removed) or the elements written.
pub const COUNTS_ELEMENTS: &[&str] = &[
    "sadd", "srem", "del", "unlink", "hdel", "zrem", "xdel", "lrem", "lpush", "rpush", "lpushx",
    "rpushx", "hset", "hmset", "mset", "msetnx",
];

/// Redis's `dirty` share of a command that changed something (see
/// [`COUNTS_ELEMENTS`]): `SADD`'s added members, `LPUSH`'s pushed
/// elements, `HSET`'s fields, `MSET`'s keys...
pub fn redis_count(name: &str, args: &[&[u8]], reply: &[u8]) -> u64 {
    let n = args.len() as u64;
    match name {
        "lpush" | "rpush" | "lpushx" | "rpushx" => n.saturating_sub(2),
        "hset" | "hmset" => n.saturating_sub(2) / 2,
        "mset" | "msetnx" => n.saturating_sub(1) / 2,
        _ => reply
            .strip_prefix(b":")
            .and_then(|r| r.split(|b| *b == b'\r').next())
            .and_then(|r| std::str::from_utf8(r).ok())
            .and_then(|r| r.parse::<u64>().ok())
            .unwrap_or(1),
    }
}

/// A scope left without [`Scope::finish`] (a handler that panicked):
/// the thread's nesting is restored, and a top-level scope's collected
/// effects are dropped, so the next command starts clean.
impl Drop for Scope<'_> {
    fn drop(&mut self) {
        if self.propagating {
            PENDING.with(|p| {
                let mut p = p.borrow_mut();
                p.depth = p.depth.saturating_sub(1);
                p.replaced = self.outer_replaced;
                if p.depth == 0 {
                    p.ops.clear();
                    p.served.clear();
                    p.unreplicated = false;
                }
            });
        }
    }
}

/// The effects of a blocked client the running command served (its pop,
/// or an `XREADGROUP`'s claims): they go to the stream after the
/// command's own, as one unit (in `MULTI`/`EXEC` when several), as Redis
/// propagates each served client after the command that served it.
/// Nothing while no scope collects.
pub fn served(db: usize, ops: Vec<Vec<Vec<u8>>>) {
    if ops.is_empty() {
        return;
    }
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if p.depth > 0 {
            p.served
                .push(ops.into_iter().map(|a| (Some(db), a)).collect());
        }
    });
}

/// Adds a command to the running top-level command's effects (Redis's
/// `alsoPropagate`). Nothing while no scope collects.
pub fn also(db: usize, args: Vec<Vec<u8>>) {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if p.depth > 0 {
            p.ops.push((Some(db), args));
        }
    });
}

/// Whether the running command's effects are collected for replicas
/// (a command builds its [`instead`] effects only then).
pub fn collecting() -> bool {
    PENDING.with(|p| p.borrow().depth > 0)
}

/// The running command's effects, in the form Redis propagates them in
/// place of the command (`XREADGROUP` as `XCLAIM`s and `XGROUP SETID`,
/// Redis's `alsoPropagate` plus `preventCommandPropagation`): the
/// command itself is not propagated, even when `ops` is empty. Nothing
/// while no scope collects, or a script turned replication off.
pub fn instead(db: usize, ops: Vec<Vec<Vec<u8>>>) {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if p.depth > 0 {
            p.replaced = true;
            if !p.unreplicated {
                p.ops.extend(ops.into_iter().map(|o| (Some(db), o)));
            }
        }
    });
}

/// `redis.set_repl`: whether the running script's next commands are
/// propagated (until the top-level command ends).
pub fn set_replicated(on: bool) {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if p.depth > 0 {
            p.unreplicated = !on;
        }
    });
}

/// Several commands go as one transaction (`MULTI` with the first one's
/// database, `EXEC` with the last one's), as Redis 7.0 wraps them.
fn wrapped(mut ops: Vec<Op>) -> Vec<Op> {
    if ops.len() < 2 {
        return ops;
    }
    let first = ops.first().and_then(|o| o.0);
    let last = ops.last().and_then(|o| o.0);
    ops.insert(0, (first, vec![b"MULTI".to_vec()]));
    ops.push((last, vec![b"EXEC".to_vec()]));
    ops
}

fn owned(args: &[&[u8]]) -> Vec<Vec<u8>> {
    args.iter().map(|a| a.to_vec()).collect()
}

fn arg(args: &[&[u8]], i: usize) -> Vec<u8> {
    args.get(i).map(|a| a.to_vec()).unwrap_or_default()
}

fn is(a: &[u8], word: &str) -> bool {
    a.eq_ignore_ascii_case(word.as_bytes())
}

/// The form in which Redis 7.0 propagates a command that changed the
/// dataset (database `db`, after it ran, with its `reply`): deadlines
/// made absolute (`PEXPIREAT`, `SET ... PXAT`), random or computed
/// results made explicit (`SPOP` as `SREM`, `INCRBYFLOAT` as `SET ...
/// KEEPTTL`, `XADD *` with its ID), blocking pops as their non-blocking
/// form. Other commands go verbatim. Never fails: an unexpected reply
/// falls back to the verbatim command.
pub fn rewrite(
    srv: &ServerState,
    db: usize,
    name: &str,
    args: &[&[u8]],
    reply: &[u8],
) -> Vec<Vec<Vec<u8>>> {
    let key = arg(args, 1);
    let values = reply_leaves(reply);
    let first = values.first().cloned();
    let verbatim = || vec![owned(args)];
    match name {
        "expire" | "pexpire" | "expireat" | "pexpireat" | "getex" => {
            vec![deadline_form(srv, db, &key, None)]
        }
        "setex" | "psetex" => vec![deadline_form(srv, db, &key, Some(arg(args, 3)))],
        "set"
            if args
                .iter()
                .skip(3)
                .any(|a| is(a, "ex") || is(a, "px") || is(a, "exat") || is(a, "pxat")) =>
        {
            vec![deadline_form(srv, db, &key, Some(arg(args, 2)))]
        }
        "getdel" => vec![vec![b"DEL".to_vec(), key]],
        // Its deletions went as `DEL` (`migrate::delete_keys`).
        "migrate" => Vec::new(),
        "restore"
            if args.get(2).is_some_and(|t| *t != b"0")
                && !args.iter().skip(4).any(|a| is(a, "absttl")) =>
        {
            // A relative TTL goes as the deadline it gave, with ABSTTL.
            match deadline_form(srv, db, &key, None).as_slice() {
                [cmd, _, at] if cmd == b"PEXPIREAT" => {
                    let mut r = owned(args);
                    if let Some(t) = r.get_mut(2) {
                        *t = at.clone();
                    }
                    r.push(b"ABSTTL".to_vec());
                    vec![r]
                }
                [cmd, _] if cmd == b"DEL" => vec![vec![b"DEL".to_vec(), key]],
                _ => verbatim(),
            }
        }
        "incrbyfloat" => match first {
            Some(v) => vec![vec![b"SET".to_vec(), key, v, b"KEEPTTL".to_vec()]],
            None => verbatim(),
        },
        "hincrbyfloat" => match first {
            Some(v) => vec![vec![b"HSET".to_vec(), key, arg(args, 2), v]],
            None => verbatim(),
        },
        "spop" => {
            if values.is_empty() {
                return Vec::new();
            }
            let mut cmd = vec![b"SREM".to_vec(), key];
            cmd.extend(values);
            vec![cmd]
        }
        "blpop" | "brpop" => match first {
            Some(k) => {
                let pop = if name == "blpop" { "LPOP" } else { "RPOP" };
                vec![vec![pop.as_bytes().to_vec(), k]]
            }
            None => Vec::new(),
        },
        // Redis propagates the pop that happened, as `LPOP`/`RPOP key
        // count` (and `ZPOPMIN`/`ZPOPMAX key count` below), blocked or not.
        "blmpop" | "lmpop" => match first {
            Some(k) => {
                let left = mpop_direction(args).is_some_and(|d| is(d, "left"));
                let pop = if left { "LPOP" } else { "RPOP" };
                let n = values.len().saturating_sub(1).to_string();
                vec![vec![pop.as_bytes().to_vec(), k, n.into_bytes()]]
            }
            None => Vec::new(),
        },
        "bzpopmin" | "bzpopmax" => match first {
            Some(k) => {
                let pop = if name == "bzpopmin" {
                    "ZPOPMIN"
                } else {
                    "ZPOPMAX"
                };
                vec![vec![pop.as_bytes().to_vec(), k]]
            }
            None => Vec::new(),
        },
        "bzmpop" | "zmpop" => match first {
            Some(k) => {
                let min = mpop_direction(args).is_some_and(|d| is(d, "min"));
                let pop = if min { "ZPOPMIN" } else { "ZPOPMAX" };
                let n = (values.len().saturating_sub(1) / 2).to_string();
                vec![vec![pop.as_bytes().to_vec(), k, n.into_bytes()]]
            }
            None => Vec::new(),
        },
        "blmove" => {
            let mut cmd = owned(args.get(..args.len().saturating_sub(1)).unwrap_or_default());
            if let Some(n) = cmd.first_mut() {
                *n = b"LMOVE".to_vec();
            }
            vec![cmd]
        }
        "brpoplpush" => vec![vec![b"RPOPLPUSH".to_vec(), key, arg(args, 2)]],
        "xadd" => match (first, xadd_id_position(args)) {
            (Some(id), Some(i)) => {
                let mut cmd = owned(args);
                if let Some(slot) = cmd.get_mut(i) {
                    *slot = id;
                }
                exact_trim(srv, db, &mut cmd, 2);
                vec![cmd]
            }
            _ => verbatim(),
        },
        "xtrim" => {
            let mut cmd = owned(args);
            exact_trim(srv, db, &mut cmd, 2);
            vec![cmd]
        }
        _ => verbatim(),
    }
}

/// The key's state after a command that set its deadline: `SET key value
/// PXAT ms` (`value` given) or `PEXPIREAT key ms`, `PERSIST key` when it
/// has no deadline, `DEL key` when it is gone (a deadline in the past).
fn deadline_form(srv: &ServerState, db: usize, key: &[u8], value: Option<Vec<u8>>) -> Vec<Vec<u8>> {
    let deadline = srv
        .keyspace
        .lock_one(db, key)
        .ok()
        .and_then(|mut g| g.expire_at(key));
    match (deadline, value) {
        (None, _) => vec![b"DEL".to_vec(), key.to_vec()],
        (Some(Some(ms)), Some(v)) => vec![
            b"SET".to_vec(),
            key.to_vec(),
            v,
            b"PXAT".to_vec(),
            ms.to_string().into_bytes(),
        ],
        (Some(None), Some(v)) => vec![b"SET".to_vec(), key.to_vec(), v],
        (Some(Some(ms)), None) => vec![
            b"PEXPIREAT".to_vec(),
            key.to_vec(),
            ms.to_string().into_bytes(),
        ],
        (Some(None), None) => vec![b"PERSIST".to_vec(), key.to_vec()],
    }
}

/// An approximate trim (`MAXLEN ~ n`, `MINID ~ id`) made exact, as
/// Redis's `streamRewriteApproxSpecifier` and `streamRewriteTrimArgument`:
/// `=` and the stream's length, or its first entry's ID, after the
/// command. `from` is where the options start (after the key).
fn exact_trim(srv: &ServerState, db: usize, cmd: &mut [Vec<u8>], from: usize) {
    let Some(at) = cmd
        .iter()
        .skip(from)
        .position(|a| is(a, "maxlen") || is(a, "minid"))
        .map(|p| p + from)
    else {
        return;
    };
    if cmd.get(at + 1).map(Vec::as_slice) != Some(b"~") {
        return;
    }
    let maxlen = cmd.get(at).is_some_and(|a| is(a, "maxlen"));
    let key = cmd.get(1).cloned().unwrap_or_default();
    let Ok(mut g) = srv.keyspace.lock_one(db, &key) else {
        return;
    };
    let Some(amber_storage::Value::Stream(s)) = g.get(&key) else {
        return;
    };
    let threshold = if maxlen {
        s.len().to_string()
    } else {
        s.first_id().to_string()
    };
    if let Some(a) = cmd.get_mut(at + 1) {
        *a = b"=".to_vec();
    }
    if let Some(a) = cmd.get_mut(at + 2) {
        *a = threshold.into_bytes();
    }
}

/// The `LEFT|RIGHT` (`MIN|MAX`) of `BLMPOP`/`BZMPOP timeout numkeys
/// key... <direction> [COUNT n]`.
fn mpop_direction<'a>(args: &[&'a [u8]]) -> Option<&'a [u8]> {
    // The blocking forms have a timeout before `numkeys`.
    let blocking = args
        .first()
        .is_some_and(|n| n.first().is_some_and(|c| c.eq_ignore_ascii_case(&b'b')));
    let at_numkeys = if blocking { 2 } else { 1 };
    let numkeys = crate::cmd::args::parse_i64(args.get(at_numkeys)?)?;
    let at = usize::try_from(numkeys).ok()?.checked_add(at_numkeys + 1)?;
    args.get(at).copied()
}

/// Where `XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] n [LIMIT c]] id ...`
/// has its ID.
fn xadd_id_position(args: &[&[u8]]) -> Option<usize> {
    let mut i = 2;
    loop {
        let a = *args.get(i)?;
        if is(a, "nomkstream") {
            i += 1;
        } else if is(a, "maxlen") || is(a, "minid") {
            i += 1;
            if args.get(i).is_some_and(|a| *a == b"=" || *a == b"~") {
                i += 1;
            }
            i += 1;
        } else if is(a, "limit") {
            i += 2;
        } else {
            return Some(i);
        }
    }
}

/// The strings of a reply, flattened: each bulk, simple string, number
/// or double, in order (nulls and errors skipped). Enough for the
/// replies the rewrites read: a bulk, or arrays of them.
pub fn reply_leaves(reply: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = reply;
    while let Some((&kind, tail)) = rest.split_first() {
        let Some(end) = tail.windows(2).position(|w| w == b"\r\n") else {
            break;
        };
        let (line, after) = (&tail[..end], &tail[end + 2..]);
        rest = after;
        match kind {
            b'$' | b'=' => {
                let Some(len) = std::str::from_utf8(line)
                    .ok()
                    .and_then(|l| l.parse::<i64>().ok())
                else {
                    break;
                };
                if len < 0 {
                    continue;
                }
                let len = len as usize;
                let Some(data) = after.get(..len) else { break };
                out.push(data.to_vec());
                rest = after.get(len + 2..).unwrap_or_default();
            }
            b'+' | b':' | b',' => out.push(line.to_vec()),
            // Aggregates: their elements follow.
            b'*' | b'~' | b'>' | b'%' => {}
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Client;
    use crate::cmd::Ctx;
    use crate::resp::ReplyWriter;

    use crate::test_support::{attach_replica, client, run, server, stream};

    /// Runs one command; returns how much it added to `dirty`.
    fn dirty_of(srv: &ServerState, client: &mut Client, line: &str) -> u64 {
        let before = srv.dirty.get();
        run(srv, client, line);
        srv.dirty.get() - before
    }

    #[test]
    fn dirty_counts_elements_as_redis() {
        let srv = server();
        let mut c = client(&srv);
        assert_eq!(dirty_of(&srv, &mut c, "SADD s a b c"), 3);
        assert_eq!(dirty_of(&srv, &mut c, "SADD s a d"), 1);
        assert_eq!(dirty_of(&srv, &mut c, "RPUSH l a b c d"), 4);
        assert_eq!(dirty_of(&srv, &mut c, "HSET h a 1 b 2"), 2);
        assert_eq!(dirty_of(&srv, &mut c, "MSET x 1 y 2 z 3"), 3);
        assert_eq!(dirty_of(&srv, &mut c, "DEL x y missing"), 2);
        assert_eq!(dirty_of(&srv, &mut c, "SREM s a b nope"), 2);
        assert_eq!(dirty_of(&srv, &mut c, "SREM s nope"), 0);
        assert_eq!(dirty_of(&srv, &mut c, "SET k v"), 1);
    }

    #[test]
    fn dirty_is_zero_exactly_when_nothing_changed() {
        let srv = server();
        let mut c = client(&srv);
        let changed = [
            "SET k v",
            "SADD s a b",
            "EXPIRE k 100",
            "INCRBYFLOAT f 1.5",
            "HINCRBYFLOAT h x 2",
            "SPOP s",
            "GETEX k PERSIST",
            "LPUSH l a",
            "DEL l",
            "FLUSHDB",
        ];
        let unchanged = [
            "SADD t a",
            "SADD t a",
            "EXPIRE missing 100",
            "SPOP missing",
            "GETEX t",
            "DEL missing",
            "GET t",
            "HDEL nohash x",
            "INCRBYFLOAT t 1",
            "ZADD z NX 1 a",
            "ZADD z NX 2 a",
        ];
        for line in changed {
            assert!(dirty_of(&srv, &mut c, line) > 0, "{line} changed something");
        }
        // Each pair's first command changes, the others do not.
        for (i, line) in unchanged.iter().enumerate() {
            let d = dirty_of(&srv, &mut c, line);
            if i == 0 || *line == "ZADD z NX 1 a" {
                assert!(d > 0, "{line} changed something");
            } else {
                assert_eq!(d, 0, "{line} changed nothing");
            }
        }
    }

    /// The stream a replica would receive for `lines`, as arrays of words.
    fn stream_of(lines: &[&str]) -> Vec<Vec<String>> {
        let srv = server();
        let mut c = client(&srv);
        let mailbox = attach_replica(&srv);
        for line in lines {
            dirty_of(&srv, &mut c, line);
        }
        stream(&mailbox)
    }

    fn words(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn rewrites_reach_the_stream_in_redis_form() {
        let s = stream_of(&[
            "SET a 1",
            "SADD s x",
            "SPOP s",
            "SPOP s",
            "INCRBYFLOAT f 1.5",
            "GETDEL a",
            "SELECT 3",
            "SET b 2",
            "EXPIRE nothing 10",
        ]);
        let expected: Vec<Vec<String>> = [
            "SELECT 0",
            "SET a 1",
            "SADD s x",
            "SREM s x",
            "SET f 1.5 KEEPTTL",
            "DEL a",
            "SELECT 3",
            "SET b 2",
        ]
        .iter()
        .map(|l| words(l))
        .collect();
        assert_eq!(s, expected);
    }

    #[test]
    fn multi_key_pops_go_as_the_pop_that_happened() {
        let s = stream_of(&[
            "RPUSH l a b c",
            "LMPOP 2 nothing l LEFT COUNT 2",
            "LMPOP 1 l RIGHT",
            "LMPOP 1 l RIGHT",
            "ZADD z 1 a 2 b",
            "ZMPOP 1 z MAX COUNT 5",
        ]);
        let expected: Vec<Vec<String>> = [
            "SELECT 0",
            "RPUSH l a b c",
            "LPOP l 2",
            "RPOP l 1",
            "ZADD z 1 a 2 b",
            "ZPOPMAX z 2",
        ]
        .iter()
        .map(|l| words(l))
        .collect();
        assert_eq!(s, expected);
    }

    #[test]
    fn deadlines_become_absolute() {
        let s = stream_of(&["SET a 1 EX 100", "EXPIRE a 200", "SETEX c 50 v"]);
        assert_eq!(s.len(), 4, "{s:?}");
        let srv = server();
        let mut c = client(&srv);
        dirty_of(&srv, &mut c, "SET x 1");
        let mut out = ReplyWriter::default();
        crate::cmd::execute(
            &mut Ctx {
                srv: &srv,
                client: &mut c,
                out: &mut out,
            },
            &[b"DUMP", b"x"],
        );
        let payload = reply_leaves(out.as_bytes()).pop().expect("a payload");
        let args: Vec<&[u8]> = vec![b"RESTORE", b"y", b"30000", &payload];
        crate::cmd::execute(
            &mut Ctx {
                srv: &srv,
                client: &mut c,
                out: &mut out,
            },
            &args,
        );
        let r = rewrite(&srv, 0, "restore", &args, b"+OK\r\n");
        assert!(r[0].len() == 5 && r[0][4] == b"ABSTTL", "{r:?}");
        let now = amber_storage::clock::now_ms();
        let at = |cmd: &Vec<String>| cmd.last().and_then(|t| t.parse::<u64>().ok()).unwrap_or(0);
        assert_eq!(s[1][..4], words("SET a 1 PXAT")[..]);
        assert!(at(&s[1]).abs_diff(now + 100_000) < 5_000);
        assert_eq!(s[2][..2], words("PEXPIREAT a")[..]);
        assert!(at(&s[2]).abs_diff(now + 200_000) < 5_000);
        assert_eq!(s[3][..4], words("SET c v PXAT")[..]);
    }

    #[test]
    fn stream_ids_and_approximate_trims_are_made_exact() {
        let s = stream_of(&[
            "XADD s 5-1 f v",
            "XADD s 5-* f v",
            "XADD s MAXLEN ~ 1 * f v",
            "XTRIM s MINID ~ 0",
        ]);
        assert_eq!(s[1], words("XADD s 5-1 f v"));
        assert_eq!(s[2], words("XADD s 5-2 f v"));
        assert_eq!(s[3][..5], words("XADD s MAXLEN = 3")[..]);
        assert_ne!(s[3][5], "*");
        // Nothing trimmed: not propagated.
        assert_eq!(s.len(), 4, "{s:?}");
    }

    #[test]
    fn a_transaction_and_a_script_are_wrapped() {
        let s = stream_of(&[
            "MULTI",
            "SET a 1",
            "INCR a",
            "EXEC",
            "EVAL redis.call('set','b','1');redis.call('del','b') 0",
            "EVAL return 1 0",
        ]);
        let s2 = stream_of(&[
            "EVAL redis.call('set','c','1');redis.set_repl(redis.REPL_NONE);redis.call('set','d','1');redis.set_repl(redis.REPL_ALL);redis.call('set','e','1') 0",
            "SET f 1",
        ]);
        let expected2: Vec<Vec<String>> =
            ["SELECT 0", "MULTI", "set c 1", "set e 1", "EXEC", "SET f 1"]
                .iter()
                .map(|l| words(l))
                .collect();
        assert_eq!(s2, expected2);
        let expected: Vec<Vec<String>> = [
            "SELECT 0", "MULTI", "SET a 1", "INCR a", "EXEC", "MULTI", "set b 1", "del b", "EXEC",
        ]
        .iter()
        .map(|l| words(l))
        .collect();
        assert_eq!(s, expected);
    }

    #[test]
    fn group_reads_and_claims_go_as_redis_rewrites_them() {
        let s = stream_of(&[
            "XADD s 1-1 f v",
            "XADD s 2-1 f v",
            "XGROUP CREATE s g 0",
            "XREADGROUP GROUP g c COUNT 1 STREAMS s >",
            "XREADGROUP GROUP g c STREAMS s 0",
            "XREADGROUP GROUP g d NOACK STREAMS s >",
            "XCLAIM s g e 0 1-1 JUSTID",
        ]);
        let shape: Vec<String> = s
            .iter()
            .map(|c| {
                c.iter()
                    .enumerate()
                    // Delivery times vary.
                    .map(|(i, w)| {
                        if i == 7 && c[0] == "XCLAIM" {
                            "<t>"
                        } else {
                            w.as_str()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        assert_eq!(
            shape,
            [
                "SELECT 0",
                "XADD s 1-1 f v",
                "XADD s 2-1 f v",
                "XGROUP CREATE s g 0",
                "XCLAIM s g c 0 1-1 TIME <t> RETRYCOUNT 1 FORCE JUSTID LASTID 1-1",
                "MULTI",
                "XGROUP CREATECONSUMER s g d",
                "XGROUP SETID s g 2-1 ENTRIESREAD 2",
                "EXEC",
                "XCLAIM s g e 0 1-1 TIME <t> RETRYCOUNT 2 FORCE JUSTID LASTID 2-1",
            ]
        );
    }

    #[test]
    fn leaves_of_bulks_arrays_and_nulls() {
        assert_eq!(reply_leaves(b"$3\r\nabc\r\n"), vec![b"abc".to_vec()]);
        assert_eq!(
            reply_leaves(b"*2\r\n$1\r\nk\r\n*2\r\n$2\r\nv1\r\n,1.5\r\n"),
            vec![b"k".to_vec(), b"v1".to_vec(), b"1.5".to_vec()]
        );
        assert!(reply_leaves(b"$-1\r\n").is_empty());
        assert!(reply_leaves(b"*-1\r\n").is_empty());
        assert_eq!(reply_leaves(b"$4\r\na\r\nb\r\n"), vec![b"a\r\nb".to_vec()]);
        // Truncated input ends quietly.
        assert!(reply_leaves(b"$10\r\nab").is_empty());
    }

    #[test]
    fn mpop_direction_after_the_keys() {
        let a: Vec<&[u8]> = vec![
            b"BLMPOP", b"0", b"2", b"left", b"right", b"RIGHT", b"COUNT", b"2",
        ];
        assert_eq!(mpop_direction(&a), Some(&b"RIGHT"[..]));
        let a: Vec<&[u8]> = vec![b"BZMPOP", b"0", b"x", b"k"];
        assert_eq!(mpop_direction(&a), None);
        let a: Vec<&[u8]> = vec![b"lmpop", b"1", b"right", b"LEFT"];
        assert_eq!(mpop_direction(&a), Some(&b"LEFT"[..]));
    }

    #[test]
    fn xadd_id_after_the_options() {
        let a: Vec<&[u8]> = vec![b"XADD", b"s", b"*", b"f", b"v"];
        assert_eq!(xadd_id_position(&a), Some(2));
        let a: Vec<&[u8]> = vec![
            b"XADD",
            b"s",
            b"NOMKSTREAM",
            b"MAXLEN",
            b"~",
            b"10",
            b"LIMIT",
            b"5",
            b"*",
            b"f",
            b"v",
        ];
        assert_eq!(xadd_id_position(&a), Some(8));
        let a: Vec<&[u8]> = vec![b"XADD", b"s", b"MINID", b"0-1"];
        assert_eq!(xadd_id_position(&a), None);
    }

    #[test]
    fn several_effects_are_one_transaction() {
        let one = wrapped(vec![(Some(0), vec![b"SET".to_vec()])]);
        assert_eq!(one.len(), 1);
        let two = wrapped(vec![
            (Some(0), vec![b"SET".to_vec()]),
            (Some(3), vec![b"DEL".to_vec()]),
        ]);
        assert_eq!(two.len(), 4);
        assert_eq!(two[0], (Some(0), vec![b"MULTI".to_vec()]));
        assert_eq!(two[3], (Some(3), vec![b"EXEC".to_vec()]));
    }
}
