//! Lua scripting: `EVAL`, `EVALSHA`, `EVAL_RO`, `EVALSHA_RO` and `SCRIPT`,
//! with Redis 7.0's semantics (`eval.c`, `script_lua.c`, `script.c`).
//!
//! One Lua 5.1 interpreter per server ([`Scripting`], in
//! [`crate::state::ServerState`]) runs every script, set up as Redis sets
//! it up ([`lua`], [`sandbox`], [`protect`], the libraries in [`libs`]). A
//! script runs under the keyspace's exclusive gate, so it is atomic; its
//! `redis.call`s go through the normal command path with their replies
//! captured and converted ([`script_call`], [`convert`]). Compiled scripts
//! are cached by SHA1 ([`cache`]); a script running long makes other
//! clients get `-BUSY` and can be killed ([`busy`]).

pub mod busy;
pub mod cache;
pub mod convert;
pub mod dump;
pub mod function_lua;
pub mod functions;
pub mod ldb;
pub mod ldb_io;
pub mod ldb_show;
pub mod ldb_undo;
pub mod library;
pub mod libs;
pub mod lua;
pub mod protect;
pub mod rand48;
pub mod sandbox;
pub mod script_call;
pub mod shebang;

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::admin::reply_help;
use super::args::{is, parse_i64};
use super::{CmdError, CmdResult, Ctx, Handler};
use cache::{CachedScript, ScriptCache};
use lua::{Interp, Invocation};

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("eval", eval),
    ("evalsha", evalsha),
    ("eval_ro", eval_ro),
    ("evalsha_ro", evalsha_ro),
    ("script|load", script_load),
    ("script|exists", script_exists),
    ("script|flush", script_flush),
    ("script|kill", script_kill),
    ("script|help", script_help),
    ("script|debug", script_debug),
];

/// Runs `f`, first moving to a fresh stack segment when little of this
/// thread's stack is left: nested values (cjson, MessagePack, replies) are
/// converted recursively, up to Redis's own depth limits, on connection
/// threads with small stacks.
pub fn deep<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(128 * 1024, 2 * 1024 * 1024, f)
}

/// Redis's reply to `EVALSHA` of a script it does not have.
const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";

/// The interpreter and its script cache, created on first use.
#[derive(Default)]
pub struct Scripting {
    engine: Mutex<Option<Engine>>,
    /// The running script, as other connections see it.
    pub busy: busy::Busy,
    /// The function libraries (`FUNCTION`, `FCALL`).
    pub functions: functions::Functions,
    /// Figures for `INFO memory`, updated after each use of the engine
    /// (`INFO` must not wait for a running script).
    memory: MemoryStats,
}

/// `INFO memory`'s scripting figures.
#[derive(Debug, Default)]
struct MemoryStats {
    /// Bytes the interpreter uses (`used_memory_lua`).
    lua_bytes: AtomicU64,
    /// Scripts in the cache (`number_of_cached_scripts`).
    cached: AtomicU64,
    /// Bytes of their bodies (`used_memory_scripts_eval`).
    bodies: AtomicU64,
}

/// `INFO memory`'s scripting figures (see [`Scripting::memory`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `used_memory_lua` / `used_memory_vm_eval`.
    pub lua_bytes: u64,
    /// `number_of_cached_scripts`.
    pub cached_scripts: u64,
    /// `used_memory_scripts_eval`.
    pub script_bytes: u64,
}

struct Engine {
    interp: Interp,
    cache: ScriptCache,
}

impl Scripting {
    /// Runs `f` with the engine, creating it first if needed.
    fn with<R>(&self, f: impl FnOnce(&mut Engine) -> Result<R, CmdError>) -> Result<R, CmdError> {
        let mut guard = self.engine.lock();
        if guard.is_none() {
            let interp =
                Interp::new().map_err(|e| CmdError::err(format!("Lua initialization: {e}")))?;
            *guard = Some(Engine {
                interp,
                cache: ScriptCache::default(),
            });
        }
        let Some(engine) = guard.as_mut() else {
            return Err(CmdError::err("Lua is not available"));
        };
        let result = f(engine);
        let m = &self.memory;
        m.lua_bytes
            .store(engine.interp.used_memory() as u64, Ordering::Relaxed);
        m.cached.store(engine.cache.len() as u64, Ordering::Relaxed);
        m.bodies
            .store(engine.cache.body_bytes() as u64, Ordering::Relaxed);
        result
    }

    /// The figures of `INFO memory` (without waiting for a running script).
    pub fn memory(&self) -> Memory {
        let m = &self.memory;
        Memory {
            lua_bytes: m.lua_bytes.load(Ordering::Relaxed),
            cached_scripts: m.cached.load(Ordering::Relaxed),
            script_bytes: m.bodies.load(Ordering::Relaxed),
        }
    }

    /// `SCRIPT FLUSH`: forgets every script and the interpreter with them
    /// (Redis's `scriptingReset`).
    fn flush(&self) {
        *self.engine.lock() = None;
        let m = &self.memory;
        for figure in [&m.lua_bytes, &m.cached, &m.bodies] {
            figure.store(0, Ordering::Relaxed);
        }
    }
}

impl Engine {
    /// The cached script of `body`, compiled and cached first if needed;
    /// returns its SHA1 too.
    fn load(&mut self, body: &[u8]) -> Result<(String, CachedScript), CmdError> {
        let sha = cache::sha1_hex(body);
        if let Some(script) = self.cache.get(sha.as_bytes()) {
            return Ok((sha, script.clone()));
        }
        let (flags, shebang_len) = shebang::parse(body).map_err(CmdError::msg)?;
        let code = body.get(shebang_len..).unwrap_or_default();
        let func = self.interp.compile(code).map_err(CmdError::msg)?;
        let script = CachedScript {
            func,
            flags,
            body_len: body.len(),
        };
        self.cache.insert(sha.clone(), script.clone());
        Ok((sha, script))
    }
}

/// The flags of the cached script `sha`, without waiting for a running
/// script: `None` when it is unknown or the engine is busy.
fn cached_flags(srv: &crate::state::ServerState, sha: &[u8]) -> Option<shebang::ScriptFlags> {
    let engine = srv.scripting.engine.try_lock()?;
    engine.as_ref()?.cache.get(sha).map(|script| script.flags)
}

/// Whether the script an `EVAL`, `EVALSHA` or `FCALL` call runs declares
/// `no-writes` (Redis then drops the command's `may_replicate` flag, so
/// `CLIENT PAUSE WRITE` lets it run and a monitor may send it). Never
/// waits for a running script: `EVALSHA` and `FCALL` answer false while
/// the engine is busy.
pub fn declares_no_writes(srv: &crate::state::ServerState, name: &str, args: &[&[u8]]) -> bool {
    let body_or_sha = args.get(1).copied().unwrap_or_default();
    match name {
        "eval" => shebang::parse(body_or_sha).is_ok_and(|(f, _)| f.no_writes),
        "evalsha" => cached_flags(srv, body_or_sha).is_some_and(|f| f.no_writes),
        "fcall" => srv.scripting.functions.declares_no_writes(body_or_sha),
        _ => false,
    }
}

/// Whether an `EVAL`, `EVALSHA` or `FCALL` call (or its `_RO` form) is
/// refused before it runs when memory is full: its script declares flags
/// without `allow-oom` or `no-writes` (Redis's `evalGetCommandFlags` and
/// `fcallGetCommandFlags`). A script without a shebang runs, and its first
/// command that may use memory is refused instead
/// ([`script_call::call`]). Never waits for a running script.
pub fn declares_denyoom(srv: &crate::state::ServerState, name: &str, args: &[&[u8]]) -> bool {
    let body_or_sha = args.get(1).copied().unwrap_or_default();
    match name {
        "eval" | "eval_ro" => shebang::parse(body_or_sha).is_ok_and(|(f, _)| f.denies_oom()),
        "evalsha" | "evalsha_ro" => cached_flags(srv, body_or_sha).is_some_and(|f| f.denies_oom()),
        "fcall" | "fcall_ro" => srv.scripting.functions.declares_denyoom(body_or_sha),
        _ => false,
    }
}

/// Whether a replica cut from its master (`replica-serve-stale-data no`)
/// runs this call: any command but a script; a script only when it
/// declares `allow-stale` (one without a shebang is refused, as Redis's
/// `scriptPrepareForRun`). An `EVALSHA` of an unknown script goes on to
/// its `NOSCRIPT` error; a function is checked when it is found
/// (`FCALL`).
pub fn runs_stale(srv: &crate::state::ServerState, name: &str, args: &[&[u8]]) -> bool {
    let body_or_sha = args.get(1).copied().unwrap_or_default();
    match name {
        "eval" | "eval_ro" => shebang::parse(body_or_sha).is_ok_and(|(f, _)| f.allow_stale),
        "evalsha" | "evalsha_ro" => cached_flags(srv, body_or_sha).is_none_or(|f| f.allow_stale),
        _ => true,
    }
}

/// Whether an `EVAL` declares it may write: a shebang without `no-writes`
/// (Redis then flags the call `write`; a script without a shebang is
/// checked command by command instead).
pub fn declares_writes(name: &str, args: &[&[u8]]) -> bool {
    let body = args.get(1).copied().unwrap_or_default();
    name == "eval"
        && body.starts_with(b"#!")
        && shebang::parse(body).is_ok_and(|(f, _)| !f.no_writes)
}

/// Where the script of an `EVAL`-family call comes from.
#[derive(Clone, Copy)]
enum Source {
    Body,
    Sha,
}

fn eval(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    eval_body(ctx, args, false)
}

fn eval_ro(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    eval_body(ctx, args, true)
}

/// `EVAL`, in the debugger after `SCRIPT DEBUG YES|SYNC`
/// (`evalGenericCommandWithDebugging`).
fn eval_body(ctx: &mut Ctx<'_>, args: &[&[u8]], read_only: bool) -> CmdResult {
    let Some(mode) = ctx.client.script_debug else {
        return eval_generic(ctx, args, Source::Body, read_only);
    };
    // The debugger writes straight to the socket: what this batch already
    // replied goes first.
    let fd = ctx.client.handle.fd;
    if !ctx.out.is_empty() {
        ldb_io::write_all(fd, ctx.out.as_bytes());
        ctx.out.clear();
    }
    let limit = busy::threshold_ms(ctx.srv);
    let body = args.get(1).copied().unwrap_or_default();
    ldb::start(fd, ctx.client.handle.clone(), mode, body, limit);
    if mode == ldb::Mode::Forked {
        // Nothing of a session that is undone reaches replicas.
        crate::replication::propagate::set_replicated(false);
    }
    let result = eval_generic(ctx, args, Source::Body, read_only);
    if let Some(session) = ldb::end() {
        if mode == ldb::Mode::Forked {
            session.journal.undo(ctx);
        }
    }
    // Redis closes the connection after the reply: the end of the session.
    ctx.client.close_after_reply = true;
    result
}

fn evalsha(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    evalsha_generic(ctx, args, false)
}

fn evalsha_ro(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    evalsha_generic(ctx, args, true)
}

/// `evalShaCommand`: a SHA1 that is not 40 characters cannot be cached.
fn evalsha_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], read_only: bool) -> CmdResult {
    if args.get(1).map_or(0, |s| s.len()) != 40 {
        return Err(CmdError::msg(NOSCRIPT));
    }
    if ctx.client.script_debug.is_some() {
        return Err(CmdError::err(
            "Please use EVAL instead of EVALSHA for debugging",
        ));
    }
    eval_generic(ctx, args, Source::Sha, read_only)
}

/// A call's keys, then its other arguments.
type KeysAndArgs<'a, 'b> = (&'b [&'a [u8]], &'b [&'a [u8]]);

/// Splits what follows `EVAL script numkeys` (or `FCALL function
/// numkeys`) into the `numkeys` keys and the arguments, with Redis's errors
/// for a count out of range.
fn keys_and_args<'a, 'b>(
    args: &'b [&'a [u8]],
    numkeys: i64,
) -> Result<KeysAndArgs<'a, 'b>, CmdError> {
    let rest = args.get(3..).unwrap_or_default();
    if numkeys > rest.len() as i64 {
        return Err(CmdError::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    if numkeys < 0 {
        return Err(CmdError::err("Number of keys can't be negative"));
    }
    Ok(rest.split_at((numkeys as usize).min(rest.len())))
}

/// `evalGenericCommand`: checks `numkeys`, finds or compiles the script,
/// runs it with `KEYS` and `ARGV`.
fn eval_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], source: Source, read_only: bool) -> CmdResult {
    let numkeys =
        parse_i64(args.get(2).copied().unwrap_or_default()).ok_or(CmdError::NotInteger)?;
    let (keys, argv) = keys_and_args(args, numkeys)?;
    let script = args.get(1).copied().unwrap_or_default();
    let srv = ctx.srv;
    srv.scripting.with(|engine| {
        let (sha, script) = match source {
            Source::Body => engine.load(script)?,
            Source::Sha => match engine.cache.get(script) {
                Some(f) => (
                    String::from_utf8_lossy(script).to_ascii_lowercase(),
                    f.clone(),
                ),
                None => return Err(CmdError::msg(NOSCRIPT)),
            },
        };
        let inv = Invocation {
            name: &sha,
            keys,
            argv,
            read_only: read_only || script.flags.no_writes,
            allow_oom: script.flags.allow_oom,
            busy: &srv.scripting.busy,
            function: false,
            debug: ldb::mode().is_some(),
        };
        engine.interp.run(ctx, &script.func, &inv)
    })
}

fn script_load(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let body = args.get(2).copied().unwrap_or_default();
    let (sha, _) = ctx.srv.scripting.with(|engine| engine.load(body))?;
    ctx.out.bulk(sha.as_bytes());
    Ok(())
}

fn script_exists(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let shas = args.get(2..).unwrap_or_default();
    let found: Vec<bool> = ctx
        .srv
        .scripting
        .with(|engine| Ok(shas.iter().map(|s| engine.cache.contains(s)).collect()))?;
    ctx.out.array(found.len());
    for f in found {
        ctx.out.int(i64::from(f));
    }
    Ok(())
}

fn script_flush(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    match args {
        [_, _] => {}
        [_, _, mode] if is(mode, "sync") || is(mode, "async") => {}
        _ => return Err(CmdError::err("SCRIPT FLUSH only support SYNC|ASYNC option")),
    }
    ctx.srv.scripting.flush();
    ctx.out.ok();
    Ok(())
}

/// `SCRIPT KILL`: runs without the keyspace gate while a script is busy
/// ([`busy::check`]).
fn script_kill(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    ctx.srv.scripting.busy.kill(false)?;
    ctx.out.ok();
    Ok(())
}

/// `SCRIPT DEBUG YES|SYNC|NO` (`scriptCommand`).
fn script_debug(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    // Replies already waiting (a pipeline, or `EXEC`'s array) would
    // interleave with the debugger's own writes.
    if !ctx.out.is_empty() || ctx.client.in_exec {
        return Err(CmdError::err(
            "SCRIPT DEBUG must be called outside a pipeline",
        ));
    }
    let mode = args.get(2).copied().unwrap_or_default();
    ctx.client.script_debug = if is(mode, "no") {
        None
    } else if is(mode, "yes") {
        Some(ldb::Mode::Forked)
    } else if is(mode, "sync") {
        Some(ldb::Mode::Sync)
    } else {
        return Err(CmdError::err("Use SCRIPT DEBUG YES/SYNC/NO"));
    };
    ctx.out.ok();
    Ok(())
}

fn script_help(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    reply_help(
        ctx,
        args,
        &[
            "DEBUG (YES|SYNC|NO)",
            "    Set the debug mode for subsequent scripts executed.",
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
        ],
    );
    Ok(())
}
