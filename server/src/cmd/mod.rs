//! Commands: the dispatcher and one module per command family.
//!
//! Every command is a plain function `fn(&mut Ctx, &[&[u8]]) -> CmdResult`
//! registered by name in its family's `COMMANDS` list. `args[0]` is the
//! command name as the client sent it, like Redis's `argv`. The dispatcher
//! checks, in Redis's order: existence, arity, authentication; then calls
//! the handler and turns an `Err` into one error reply.

pub mod acl;
pub mod admin;
pub mod args;
pub mod bits;
pub mod clients;
pub mod command;
pub mod config_cmd;
pub mod connection;
pub mod db;
pub mod debug;
pub mod dump;
pub mod error;
pub mod expire;
pub mod geo;
pub mod geohash;
pub mod hashes;
pub mod histogram;
pub mod hyperloglog;
pub mod info;
pub mod keys;
pub mod lists;
pub mod lolwut;
pub mod migrate;
pub mod multi;
pub mod object;
pub mod pubsub;
pub mod replication;
pub mod reply_limit;
pub mod scripting;
pub mod sets;
pub mod sort;
pub mod standalone;
pub mod streams;
pub mod strings;
pub mod table;
pub mod zsets;

use std::sync::atomic::Ordering;
use std::time::Instant;

use amber_storage::Guard;

pub use error::{CmdError, CmdResult};
pub use table::{CommandDef, CommandTable, Extension, Flags};

use crate::client::Client;
use crate::resp::ReplyWriter;
use crate::state::ServerState;

/// A command handler.
pub type Handler = fn(&mut Ctx<'_>, &[&[u8]]) -> CmdResult;

/// Everything a command can reach while it runs.
pub struct Ctx<'a> {
    /// Server-wide state.
    pub srv: &'a ServerState,
    /// The calling client's state.
    pub client: &'a mut Client,
    /// Where the reply goes.
    pub out: &'a mut ReplyWriter,
}

impl<'a> Ctx<'a> {
    /// The client's selected database.
    pub fn db(&self) -> usize {
        self.client.db
    }

    /// Locks the shards of `keys` in the client's database.
    pub fn lock<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k [u8]>,
    ) -> Result<Guard<'a>, CmdError> {
        let mut g = self.srv.keyspace.lock(self.client.db, keys)?;
        g.set_touch(!self.client.no_touch);
        Ok(g)
    }

    /// Keyspace notification (`notify-keyspace-events`) for `key` in the
    /// client's database: `class` is one of [`crate::notify`]'s constants,
    /// `event` Redis's event name. Call it where Redis calls
    /// `notifyKeyspaceEvent`, after the change.
    pub fn notify(&mut self, class: u32, event: &str, key: &[u8]) {
        let me = Some((self.client.handle.id, &mut *self.out));
        crate::notify::publish_to(self.srv, self.client.db, class, event, key, me);
    }

    /// Locks the shard of one key in the client's database.
    pub fn lock_one(&self, key: &[u8]) -> Result<Guard<'a>, CmdError> {
        let mut g = self.srv.keyspace.lock_one(self.client.db, key)?;
        g.set_touch(!self.client.no_touch);
        Ok(g)
    }
}

/// Every family's handlers, by full command name.
pub fn all_handlers() -> Vec<(&'static str, Handler)> {
    let families: &[&[(&'static str, Handler)]] = &[
        acl::COMMANDS,
        admin::COMMANDS,
        bits::COMMANDS,
        clients::COMMANDS,
        command::COMMANDS,
        config_cmd::COMMANDS,
        connection::COMMANDS,
        db::COMMANDS,
        debug::COMMANDS,
        dump::COMMANDS,
        expire::COMMANDS,
        geo::COMMANDS,
        hashes::COMMANDS,
        hyperloglog::COMMANDS,
        info::COMMANDS,
        keys::COMMANDS,
        lists::COMMANDS,
        lolwut::COMMANDS,
        migrate::COMMANDS,
        multi::COMMANDS,
        object::COMMANDS,
        pubsub::COMMANDS,
        replication::COMMANDS,
        crate::replication::sync::COMMANDS,
        scripting::COMMANDS,
        scripting::functions::COMMANDS,
        sets::COMMANDS,
        sort::COMMANDS,
        standalone::COMMANDS,
        streams::COMMANDS,
        strings::COMMANDS,
        zsets::COMMANDS,
    ];
    families.iter().flat_map(|f| f.iter().copied()).collect()
}

/// Amber's own commands and subcommands, with their metadata.
pub fn all_extensions() -> Vec<(Extension, Handler)> {
    let mut v = clients::extensions();
    v.extend(object::extensions());
    v
}

/// The result of resolving `args` to a command.
pub enum Resolved<'t> {
    /// A command to run.
    Found(&'t CommandDef),
    /// An error reply (unknown command or subcommand, wrong arity).
    Rejected(CmdError),
}

/// Finds the command for `args` and checks existence and arity, with Redis's texts.
pub fn resolve<'t>(table: &'t CommandTable, args: &[&[u8]]) -> Resolved<'t> {
    let Some(&name) = args.first() else {
        return Resolved::Rejected(CmdError::err("empty command"));
    };
    let def = match table.get(name) {
        Some(def) if def.is_container() && args.len() >= 2 => {
            let sub = args.get(1).copied().unwrap_or_default();
            match table::lookup(&def.subcommands, sub) {
                Some(s) => s.as_ref(),
                None => {
                    return Resolved::Rejected(CmdError::err(format!(
                        "unknown subcommand '{}'. Try {} HELP.",
                        truncated(sub, 128),
                        String::from_utf8_lossy(name).to_uppercase()
                    )))
                }
            }
        }
        Some(def) => def.as_ref(),
        None => return Resolved::Rejected(unknown_command(args)),
    };
    if !def.arity_ok(args.len()) {
        return Resolved::Rejected(CmdError::Arity(def.name.clone()));
    }
    Resolved::Found(def)
}

fn truncated(b: &[u8], n: usize) -> String {
    String::from_utf8_lossy(b.get(..n.min(b.len())).unwrap_or_default()).into_owned()
}

/// Redis's `unknown command` error, quoting the first arguments.
fn unknown_command(args: &[&[u8]]) -> CmdError {
    let mut quoted = String::new();
    for a in args.iter().skip(1) {
        if quoted.len() >= 128 {
            break;
        }
        let room = 128 - quoted.len();
        quoted.push('\'');
        quoted.push_str(&truncated(a, room));
        quoted.push_str("' ");
    }
    let name = args.first().map(|n| truncated(n, 128)).unwrap_or_default();
    CmdError::err(format!(
        "unknown command '{name}', with args beginning with: {quoted}"
    ))
}

/// Executes one command for a client, writing its reply to `ctx.out`.
pub fn execute(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    // One relaxed load when no client tracks keys (see `crate::tracking`).
    if ctx.srv.tracking.active() {
        execute_tracked(ctx, args);
    } else {
        dispatch(ctx, args);
    }
    // XREADGROUP clients whose stream this command (or the transaction or
    // script it ran) deleted or overwrote (one load when there are none).
    ctx.srv.blocking.unblock_lost_streams(ctx.srv);
}

/// [`execute`] while some client tracks keys: the table is kept under
/// `tracking-table-max-keys` first (Redis's `processCommand`), the
/// client's own invalidations follow its reply (after the whole
/// transaction or script), and `CLIENT CACHING` lasts one command (or a
/// transaction), as Redis's `resetClient`.
fn execute_tracked(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let srv = ctx.srv;
    let id = ctx.client.handle.id;
    crate::tracking::as_current(id, || {
        srv.tracking.limit(srv);
        srv.tracking.flush_own(srv, id, ctx.out);
        dispatch(ctx, args);
    });
    srv.tracking.flush_own(srv, id, ctx.out);
    let is_client = args
        .first()
        .is_some_and(|n| n.eq_ignore_ascii_case(b"client"));
    if ctx.client.multi.is_none() && !is_client {
        ctx.client.tracking.caching = false;
    }
    ctx.client.tracking_batch = true;
}

/// Runs one command: checks, queueing in a transaction, the keyspace gate.
fn dispatch(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let srv = ctx.srv;
    srv.stats.commands.add(1);
    let def = match resolve(&srv.commands, args) {
        Resolved::Found(def) => def,
        Resolved::Rejected(e) => {
            // Arity errors count as rejected calls of the command (of the
            // subcommand, for a container), as in Redis; an unknown
            // subcommand counts nowhere.
            let found = args.first().and_then(|n| srv.commands.get(n));
            let called = match found {
                Some(def) if def.is_container() => args
                    .get(1)
                    .and_then(|sub| table::lookup(&def.subcommands, sub))
                    .map(|s| s.as_ref()),
                other => other.map(|d| d.as_ref()),
            };
            if let Some(def) = called {
                def.stats.reject();
            }
            let is_exec = found.is_some_and(|d| d.name == "exec");
            multi::reject(ctx, is_exec, &e);
            return;
        }
    };
    ctx.client.handle.set_last_command(def);
    let is_exec = def.name == "exec";
    if !ctx.client.authenticated && !def.flags.has(Flags::NO_AUTH) && srv.auth_required() {
        def.stats.reject();
        multi::reject(ctx, is_exec, &CmdError::msg(error::NOAUTH));
        return;
    }
    // Permissions: one load and compare while the user is unrestricted.
    if ctx.client.acl_unrestricted_at != srv.acl.epoch() {
        let denied = acl_check(ctx, def, args);
        if denied != crate::acl::Denied::None {
            let context = if ctx.client.multi.is_some() {
                "multi"
            } else {
                "toplevel"
            };
            log_denied(ctx, denied, def, args, context);
            def.stats.reject();
            multi::reject(ctx, is_exec, &CmdError::msg(denied.text(def)));
            return;
        }
    }
    if ctx.client.multi.is_some() && def.flags.has(Flags::NO_MULTI) {
        def.stats.reject();
        let e = CmdError::err("Command not allowed inside a transaction");
        multi::reject(ctx, is_exec, &e);
        return;
    }
    // Out of memory (Redis's processCommand, which evicts before every
    // command while memory is full): a command that may use memory is
    // refused, so is an EXEC that queued one, and so is queueing in MULTI
    // (but EXEC, DISCARD, QUIT and RESET). A script that declares flags
    // may write unless they say otherwise (`scripting::declares_denyoom`);
    // a script without flags (and EXEC, which may run one) remembers
    // whether memory was full when it started, and is refused its first
    // command that may use memory.
    let is_script = def.flags.has(Flags::SKIP_MONITOR);
    let mut out_of_memory = false;
    if srv.keyspace.tiers.is_full() {
        out_of_memory = !make_room(srv);
        // Invalidations of the keys just evicted come before the reply.
        srv.tracking.flush_own(srv, ctx.client.handle.id, ctx.out);
        let denies_oom = def.flags.has(Flags::DENYOOM)
            || (is_script && scripting::declares_denyoom(srv, &def.name, args))
            || (is_exec && queued_defs(ctx).any(|d| d.flags.has(Flags::DENYOOM)))
            || (ctx.client.multi.is_some()
                && !is_exec
                && !matches!(def.name.as_str(), "discard" | "quit" | "reset"));
        if out_of_memory && denies_oom {
            def.stats.reject();
            multi::reject(ctx, is_exec, &CmdError::OutOfMemory);
            return;
        }
    }
    if is_script || is_exec {
        ctx.client.script_oom = out_of_memory;
    }
    // `min-replicas-to-write`: too few good replicas refuse writes.
    if srv.master.lacks_replicas(srv)
        && (def.flags.has(Flags::WRITE)
            || scripting::declares_writes(&def.name, args)
            || (is_exec && queued_defs(ctx).any(|d| d.flags.has(Flags::WRITE))))
    {
        def.stats.reject();
        let e = CmdError::msg(crate::replication::NOREPLICAS);
        multi::reject(ctx, is_exec, &e);
        return;
    }
    // A read-only replica takes writes from its master only (`crate::replica`).
    if srv.replication.refuses_writes(srv, ctx.client)
        && (def.flags.has(Flags::WRITE) || scripting::declares_writes(&def.name, args))
    {
        def.stats.reject();
        multi::reject(ctx, is_exec, &CmdError::msg(crate::replica::READONLY));
        return;
    }
    // A monitor is a replica to Redis: it may not touch the keyspace.
    if ctx.client.monitoring && (def.flags.has(Flags::READONLY) || may_replicate(srv, def, args)) {
        def.stats.reject();
        let e = CmdError::err("Replica can't interact with the keyspace");
        multi::reject(ctx, is_exec, &e);
        return;
    }
    // RESP2 subscriber mode admits only the pub/sub commands, PING, QUIT, RESET.
    if ctx.client.subs.active
        && ctx.out.proto == crate::resp::Protocol::Resp2
        && !pubsub::allowed_when_subscribed(&def.name)
    {
        def.stats.reject();
        let e = pubsub::subscriber_mode_error(&def.name);
        multi::reject(ctx, is_exec, &e);
        return;
    }
    // A replica cut from its master serves only `stale` commands when
    // `replica-serve-stale-data` is off.
    if srv.replication.refuses_stale(srv, ctx.client)
        && (!def.flags.has(Flags::STALE)
            || !scripting::runs_stale(srv, &def.name, args)
            || (is_exec && queued_defs(ctx).any(|d| !d.flags.has(Flags::STALE))))
    {
        def.stats.reject();
        multi::reject(ctx, is_exec, &CmdError::msg(crate::replica::MASTERDOWN));
        return;
    }
    // A script running longer than `busy-reply-threshold` holds the gate.
    if !admitted_while_busy(ctx, def, args, is_exec) {
        return;
    }
    if multi::queue_or_run(ctx, &def.name, args) {
        return;
    }
    if def.flags.has(Flags::NO_GATE) {
        return call(ctx, def, args);
    }
    // Ordinary commands share the keyspace gate; cross-database commands
    // (and EXEC) hold it alone so no other command interleaves.
    let keyspace = &srv.keyspace;
    let _gate = if let Some(shared) = (!def.flags.has(Flags::EXCLUSIVE))
        .then(|| keyspace.try_shared())
        .flatten()
    {
        Gate::Shared(shared)
    } else {
        // It waits: the end of the previous command is no longer "now".
        ctx.client.cmd_clock = None;
        match wait_for_gate(ctx, def, args, is_exec) {
            Some(gate) => gate,
            None => return,
        }
    };
    call(ctx, def, args);
}

/// How long a command waiting for the keyspace gate waits before it looks
/// again whether a script holding it has passed `busy-reply-threshold`.
pub const GATE_SLICE: std::time::Duration = std::time::Duration::from_millis(5);

/// Whether `def` may go on while a script may be running long
/// ([`scripting::busy::check`]): refused with `-BUSY` (false, replied),
/// run at once without the gate (`SCRIPT KILL`...; false, replied), or on
/// as usual (true).
fn admitted_while_busy(ctx: &mut Ctx<'_>, def: &CommandDef, args: &[&[u8]], is_exec: bool) -> bool {
    match scripting::busy::check(ctx.srv, def) {
        scripting::busy::Check::Free => true,
        scripting::busy::Check::Refuse(e) => {
            def.stats.reject();
            multi::reject(ctx, is_exec, &e);
            false
        }
        scripting::busy::Check::RunNow => {
            call(ctx, def, args);
            false
        }
    }
}

/// Waits for the keyspace gate (alone for an `EXCLUSIVE` command), in
/// slices: a script holds it for as long as it runs, and once it passes
/// `busy-reply-threshold` a waiting command is answered as if it had
/// arrived then, as Redis answers the commands it reads while the script
/// runs: `-BUSY`, or run without the gate (`SCRIPT KILL`, and the
/// `allow_busy` commands, `MULTI`, `WATCH`, `QUIT`..., which Redis runs
/// from inside the script). `None` when it was answered.
fn wait_for_gate<'k>(
    ctx: &mut Ctx<'k>,
    def: &CommandDef,
    args: &[&[u8]],
    is_exec: bool,
) -> Option<Gate<'k>> {
    let srv = ctx.srv;
    let keyspace = &srv.keyspace;
    let busy = || scripting::busy::long_running(srv).is_some();
    loop {
        let gate = if def.flags.has(Flags::EXCLUSIVE) {
            keyspace.exclusive_unless(GATE_SLICE, busy).map(Gate::Alone)
        } else {
            keyspace.shared_unless(GATE_SLICE, busy).map(Gate::Shared)
        };
        if gate.is_some() {
            return gate;
        }
        if !admitted_while_busy(ctx, def, args, is_exec) {
            return None;
        }
        if busy() {
            // Allowed while busy: it cannot wait for the script.
            call(ctx, def, args);
            return None;
        }
        // The script ended meanwhile: the wait starts again.
    }
}

/// The definitions of the commands queued in the client's transaction
/// (for `EXEC`'s checks on the whole transaction, as Redis's
/// `mstate.cmd_flags`).
fn queued_defs<'c>(ctx: &'c Ctx<'_>) -> impl Iterator<Item = &'c CommandDef> + 'c {
    let table = &ctx.srv.commands;
    ctx.client
        .multi
        .iter()
        .flat_map(|m| m.queued())
        .filter_map(move |q| {
            let args: Vec<&[u8]> = q.iter().map(Vec::as_slice).collect();
            match resolve(table, &args) {
                Resolved::Found(def) => Some(def),
                Resolved::Rejected(_) => None,
            }
        })
}

/// Checks the client's user may run `def` with `args` (its command, keys
/// and channels), as Redis's `ACLCheckAllPerm`. An unrestricted user is
/// remembered on the client until the next change to any user. A user
/// deleted meanwhile is refused everything (its connection is closing).
pub fn acl_check(ctx: &mut Ctx<'_>, def: &CommandDef, args: &[&[u8]]) -> crate::acl::Denied {
    use crate::acl::Denied;
    let srv = ctx.srv;
    let epoch = srv.acl.epoch();
    let Some(user) = srv.acl.get(&ctx.client.user) else {
        return Denied::Command;
    };
    if user.unrestricted() {
        ctx.client.acl_unrestricted_at = epoch;
        return Denied::None;
    }
    ctx.client.acl_unrestricted_at = 0;
    // AUTH and HELLO (Redis's `no_auth` commands) are always allowed.
    if def.flags.has(Flags::NO_AUTH) {
        return Denied::None;
    }
    user.check(srv, srv.acl.catalog(srv), def, args)
}

/// Records a denial in `ACL LOG` (`context`: `toplevel`, `multi`, `lua`).
pub fn log_acl(
    ctx: &Ctx<'_>,
    reason: &'static str,
    context: &'static str,
    object: &[u8],
    username: &[u8],
) {
    let e = crate::acl::LogEntry {
        count: 1,
        reason,
        context,
        object: object.to_vec(),
        username: username.to_vec(),
        ctime_ms: amber_storage::clock::now_ms(),
        client_info: clients::client_line(&ctx.client.handle, false),
    };
    ctx.srv.acl.log_denial(ctx.srv, e);
}

/// Logs a permission denial of `def` for the client's user.
pub fn log_denied(
    ctx: &Ctx<'_>,
    denied: crate::acl::Denied,
    def: &CommandDef,
    args: &[&[u8]],
    context: &'static str,
) {
    let (reason, object) = denied.log_fields(def, args);
    let user = ctx.client.user.clone();
    log_acl(ctx, reason, context, object, &user);
}

/// Whether a command may change the keyspace or be replicated: Redis's
/// `write` or `may_replicate` flag (see [`Flags::MAY_REPLICATE`]), except
/// for a script that declares `no-writes`, which Redis then treats as
/// neither. `CLIENT PAUSE WRITE` holds these back; a monitor may not send them.
pub fn may_replicate(srv: &ServerState, def: &CommandDef, args: &[&[u8]]) -> bool {
    def.flags.has(Flags::WRITE)
        || (def.flags.has(Flags::MAY_REPLICATE)
            && !scripting::declares_no_writes(srv, &def.name, args))
}

/// Runs a resolved, admitted command (its handler, statistics and error
/// reply) without taking the keyspace gate: [`execute`] holds it, and so
/// does `EXEC` for the commands it runs.
pub fn call(ctx: &mut Ctx<'_>, def: &CommandDef, args: &[&[u8]]) {
    let Some(handler) = def.handler else {
        reply_error(ctx, &CmdError::Arity(def.name.clone()));
        return;
    };
    // One clock read per command: it starts when the previous command of
    // the batch ended (the time spent between them is parsing this one),
    // and its keys see that time as "now" (Redis fixes the time per command).
    let start = ctx.client.cmd_clock.take().unwrap_or_else(Instant::now);
    // A script's commands keep its command's time: as in Redis 7.0, a key
    // cannot expire halfway through a script (what it read stays there for
    // its later commands, and its replicas see the same).
    let now_ms = if ctx.client.in_script {
        amber_storage::clock::command_now_ms()
    } else {
        ctx.srv.wall_ms_at(start)
    };
    let pin = amber_storage::clock::PinNow::new(now_ms);
    // On a replica keys past their deadline wait for the master's `DEL`;
    // during `CLIENT PAUSE` they are hidden, not deleted, until it ends
    // (Redis's `expireIfNeeded`: "if 'expire' action is paused ... don't
    // expire any key").
    let _expiry = ctx
        .srv
        .replication
        .expiry_policy(ctx.srv, ctx.client, def.flags.has(Flags::WRITE))
        .or_else(|| {
            ctx.srv
                .pause
                .is_paused()
                .then_some(amber_storage::lazy_expiry::Policy::Hide)
        })
        .map(amber_storage::lazy_expiry::Scoped::new);
    let mark = ctx.out.len();
    // One relaxed load when nobody monitors (see `crate::monitor`).
    let monitored = ctx.srv.monitors.active();
    if monitored && def.flags.has(Flags::SKIP_MONITOR) {
        // Scripts: shown before the commands they run.
        feed_monitors(ctx, args);
    }
    // Dirty counting and, with replicas attached, propagation (one relaxed
    // load otherwise; see `crate::replication`).
    let scope = def
        .flags
        .has(Flags::PROPAGATES)
        .then(|| crate::replication::propagate::Scope::enter(ctx.srv));
    amber_storage::tier::take_persist_failure();
    let mut result = handler(ctx, args);
    drop(pin);
    if amber_storage::tier::take_persist_failure() {
        // A write of this command did not reach the arena (it is full, or
        // its file system is): it must not be acknowledged.
        ctx.out.truncate(mark);
        result = Err(CmdError::OutOfMemory);
    }
    let end = Instant::now();
    ctx.client.cmd_clock = Some(end);
    let elapsed = end.saturating_duration_since(start);
    def.stats
        .record(elapsed.as_micros() as u64, result.is_err());
    if ctx.srv.config.hot.latency_tracking.load(Ordering::Relaxed) {
        def.stats.latency.record(elapsed);
    }
    crate::metrics::record_command(&def.name, elapsed, result.is_err());
    // SLOWLOG and the latency monitor: one load and compare when fast. A
    // blocked command is logged when served (see `crate::slowlog`).
    let elapsed_us = elapsed.as_micros() as u64;
    if crate::slowlog::worth_a_look(ctx.srv, elapsed_us) || def.flags.has(Flags::BLOCKING) {
        crate::slowlog::after_call(ctx, def, args, elapsed_us);
    }
    if let Some(scope) = scope {
        let reply = ctx.out.as_bytes().get(mark..).unwrap_or_default();
        let db = ctx.client.db;
        scope.finish(ctx.srv, db, def, args, reply, result.is_ok());
    }
    // What a later WAIT waits for: the stream as this command leaves it.
    if let Some(offset) = ctx.srv.master.woff() {
        if !std::mem::take(&mut ctx.client.keep_repl_offset) {
            ctx.client.repl_offset = offset;
        }
    }
    if let Err(e) = result {
        reply_error(ctx, &e);
    }
    // Client-side caching: a tracking client's reads (not BCAST).
    if ctx.client.tracking.on && !ctx.client.tracking.bcast {
        remember_keys(ctx, def, args);
    }
    if monitored && !def.flags.has(Flags::SKIP_MONITOR) && !def.flags.has(Flags::ADMIN) {
        feed_monitors(ctx, args);
    }
}

/// Redis's `trackingRememberKeys` after a read-only command (a read-only
/// script itself remembers nothing; a read command it runs remembers the
/// script's declared keys; `OPTIN`/`OPTOUT` follow `CLIENT CACHING`).
fn remember_keys(ctx: &mut Ctx<'_>, def: &CommandDef, args: &[&[u8]]) {
    if !def.flags.has(Flags::READONLY)
        || def.flags.has(Flags::PUBSUB)
        || matches!(def.name.as_str(), "eval_ro" | "evalsha_ro" | "fcall_ro")
    {
        return;
    }
    let t = &ctx.client.tracking;
    if (t.optin && !t.caching) || (t.optout && t.caching) {
        return;
    }
    if ctx.client.in_script {
        // A script's read: Redis remembers the script's declared keys (its
        // caller's command), not the keys of the command it ran.
        if let Some(keys) = &ctx.client.script_keys {
            let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
            ctx.srv.tracking.remember(ctx.client.handle.id, &keys);
        }
        return;
    }
    let keys = command::key_args(ctx.srv, def, args);
    ctx.srv.tracking.remember(ctx.client.handle.id, &keys);
}

/// Shows a command to the monitors, as run by this client (or its script)
/// in its current database.
fn feed_monitors(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let srv = ctx.srv;
    let origin = if ctx.client.in_script {
        crate::monitor::Origin::Script
    } else {
        crate::monitor::Origin::Client(&ctx.client.handle)
    };
    let limits = || crate::pubsub::replica_limits(srv);
    let me = Some((ctx.client.handle.id, &mut *ctx.out));
    srv.monitors.feed(origin, ctx.client.db, args, &limits, me);
}

/// Memory (DRAM budget and arena) is full: applies `maxmemory-policy`.
/// Returns false when the command must be refused with `-OOM` (`noeviction`,
/// or nothing could be evicted), as Redis's `performEvictions`.
fn make_room(srv: &ServerState) -> bool {
    crate::maxmemory::evict_some(srv)
}

/// A held keyspace gate (kept alive for the command's duration).
enum Gate<'a> {
    Shared(#[allow(dead_code)] amber_storage::striped::SharedGate<'a>),
    Alone(#[allow(dead_code)] amber_storage::striped::ExclusiveGate<'a>),
}

/// Writes an error reply and counts it in the error statistics.
pub fn reply_error(ctx: &mut Ctx<'_>, e: &CmdError) {
    let text = e.text();
    if !matches!(e, CmdError::Counted(_)) {
        ctx.srv.stats.record_error(&text);
    }
    ctx.out.error(&text);
}
