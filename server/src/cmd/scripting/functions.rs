//! Redis 7.0's functions: `FUNCTION LOAD|LIST|DELETE|FLUSH|STATS|DUMP|
//! RESTORE|KILL|HELP`, `FCALL` and `FCALL_RO` (`functions.c`).
//!
//! The libraries ([`library::Registry`]) and the engine that runs them
//! ([`FunctionEngine`]) live in [`Functions`], server-wide. With
//! `persistence pmem` every change (`FUNCTION LOAD`, `DELETE`, `FLUSH`,
//! `RESTORE`) also writes the whole library set, as a `FUNCTION DUMP`
//! payload (versioned, CRC64-checked), into the arena as the server
//! metadata named [`META_NAME`] before it is acknowledged
//! (`Keyspace::put_meta`), and start-up loads it back
//! ([`Functions::load_saved`]): libraries survive a restart, a crash or a
//! power cut, as Redis keeps them in its RDB and AOF. A change the arena
//! cannot take is undone and answered with the error (`-OOM` when it is
//! full). Without `persistence pmem` they live in DRAM only.

use std::sync::atomic::{AtomicU64, Ordering};

use amber_storage::Keyspace;
use parking_lot::Mutex;

use super::dump;
use super::function_lua::{self, FunctionEngine, ENGINE_NAME};
use super::library::Registry;
use crate::cmd::admin::reply_help;
use crate::cmd::args::{is, parse_i64, text};
use crate::cmd::{CmdError, CmdResult, Ctx, Handler};

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("fcall", fcall),
    ("fcall_ro", fcall_ro),
    ("function|load", function_load),
    ("function|list", function_list),
    ("function|delete", function_delete),
    ("function|flush", function_flush),
    ("function|stats", function_stats),
    ("function|dump", function_dump),
    ("function|restore", function_restore),
    ("function|kill", function_kill),
    ("function|help", function_help),
];

/// The name of the server metadata holding the libraries (see the module
/// docs).
pub const META_NAME: &[u8] = b"functions";

/// The libraries and their engine, created on first use.
#[derive(Default)]
pub struct Functions {
    state: Mutex<Option<State>>,
    /// Libraries loaded, for `FUNCTION STATS` (which must not wait for a
    /// running function).
    libraries: AtomicU64,
    /// Functions loaded, likewise.
    functions: AtomicU64,
    /// The running function's name and command, for `FUNCTION STATS`.
    running: Mutex<Option<(String, Vec<Vec<u8>>)>>,
}

struct State {
    engine: FunctionEngine,
    registry: Registry,
}

impl Functions {
    /// Runs `f` with the state, creating it first if needed.
    fn with<R>(&self, f: impl FnOnce(&mut State) -> Result<R, CmdError>) -> Result<R, CmdError> {
        let mut guard = self.state.lock();
        if guard.is_none() {
            let engine = FunctionEngine::new()
                .map_err(|e| CmdError::err(format!("Lua initialization: {e}")))?;
            *guard = Some(State {
                engine,
                registry: Registry::default(),
            });
        }
        let Some(state) = guard.as_mut() else {
            return Err(CmdError::err("Lua is not available"));
        };
        let result = f(state);
        self.libraries
            .store(state.registry.library_count() as u64, Ordering::Relaxed);
        self.functions
            .store(state.registry.function_count() as u64, Ordering::Relaxed);
        result
    }

    /// Runs a change `f` of the libraries, then saves them all
    /// ([`save`]); if they cannot be saved, the libraries as they were
    /// before are put back and the error returned.
    fn change<R>(
        &self,
        keyspace: &Keyspace,
        f: impl FnOnce(&mut State) -> Result<R, CmdError>,
    ) -> Result<R, CmdError> {
        self.with(|state| {
            let before = state.registry.clone();
            let result = f(state)?;
            if let Err(e) = save(keyspace, &state.registry) {
                state.registry = before;
                return Err(e);
            }
            Ok(result)
        })
    }

    /// `FUNCTION FLUSH`: forgets every library, and the engine with them
    /// (after saving the empty set; on failure nothing changes).
    pub fn flush(&self, keyspace: &Keyspace) -> Result<(), CmdError> {
        let mut state = self.state.lock();
        save(keyspace, &Registry::default())?;
        *state = None;
        self.libraries.store(0, Ordering::Relaxed);
        self.functions.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Start-up: loads the libraries saved in the arena, if any. A payload
    /// that does not load is logged and skipped (the server starts without
    /// functions; the saved payload stays until the next change of the
    /// libraries replaces it).
    pub fn load_saved(&self, keyspace: &Keyspace) {
        let payload = match keyspace.meta(META_NAME) {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "the saved function libraries cannot be read; starting without them");
                return;
            }
        };
        let codes = match dump::decode(&payload) {
            Ok(codes) => codes,
            Err(e) => {
                tracing::error!(error = %e, bytes = payload.len(), "the saved function libraries are not a valid payload; starting without them");
                return;
            }
        };
        if codes.is_empty() {
            return;
        }
        let loaded = self.with(|state| {
            state.registry = build(state, &codes)?;
            Ok(state.registry.library_count())
        });
        match loaded {
            Ok(n) => tracing::info!(
                libraries = n,
                functions = self.function_count(),
                "loaded the function libraries saved in the arena"
            ),
            Err(e) => tracing::error!(
                error = %e.text(),
                "the saved function libraries failed to load; starting without them"
            ),
        }
    }

    /// The code of every library, for an RDB file (`rdbSaveFunctions`).
    pub fn codes(&self) -> Vec<Vec<u8>> {
        let guard = self.state.lock();
        guard.as_ref().map_or_else(Vec::new, |s| {
            s.registry.libraries().map(|l| l.code.clone()).collect()
        })
    }

    /// Loads the libraries of an RDB file (`rdbFunctionLoad`) next to the
    /// ones there (none at start-up), saving them in the arena like
    /// `FUNCTION RESTORE APPEND`. The error is Redis's text (a library
    /// that does not compile, or one already there).
    pub fn load_codes(&self, keyspace: &Keyspace, codes: &[Vec<u8>]) -> Result<u64, String> {
        self.change(keyspace, |state| {
            let restored = build(state, codes)?;
            let n = restored.library_count() as u64;
            state
                .registry
                .join(restored, false)
                .map_err(CmdError::err)?;
            Ok(n)
        })
        .map_err(|e| e.text().into_owned())
    }

    /// Whether function `name` is declared `no-writes` (Redis's
    /// `fcallGetCommandFlags`: such an `FCALL` neither writes nor
    /// replicates, so `CLIENT PAUSE WRITE` lets it through). False when
    /// it is unknown, or while a function runs (it then waits anyway).
    pub fn declares_no_writes(&self, name: &[u8]) -> bool {
        self.flags_of(name).is_some_and(|f| f.no_writes())
    }

    /// Whether an `FCALL` of function `name` is refused before it runs
    /// when memory is full ([`super::library::FunctionFlags::denies_oom`]).
    /// False when it is unknown (its error comes first), or while a
    /// function runs.
    pub fn declares_denyoom(&self, name: &[u8]) -> bool {
        self.flags_of(name).is_some_and(|f| f.denies_oom())
    }

    /// The flags of function `name`, without waiting for a running one.
    fn flags_of(&self, name: &[u8]) -> Option<super::library::FunctionFlags> {
        let state = self.state.try_lock()?;
        state
            .as_ref()
            .and_then(|s| s.registry.function(name))
            .map(|f| f.flags)
    }

    /// Libraries loaded (`INFO memory`'s `number_of_libraries`).
    pub fn library_count(&self) -> u64 {
        self.libraries.load(Ordering::Relaxed)
    }

    /// Functions loaded (`INFO memory`'s `number_of_functions`).
    pub fn function_count(&self) -> u64 {
        self.functions.load(Ordering::Relaxed)
    }

    /// Bytes the functions' interpreter uses (0 before the first use).
    pub fn used_memory(&self) -> usize {
        self.state
            .try_lock()
            .and_then(|s| s.as_ref().map(|s| s.engine.used_memory()))
            .unwrap_or(0)
    }
}

fn fcall(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    fcall_generic(ctx, args, false)
}

fn fcall_ro(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    fcall_generic(ctx, args, true)
}

/// `fcallCommandGeneric`: finds the function, checks `numkeys` and the
/// function's flags, runs it with its keys and arguments.
fn fcall_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], read_only: bool) -> CmdResult {
    let name = args.get(1).copied().unwrap_or_default();
    let srv = ctx.srv;
    let functions = &srv.scripting.functions;
    functions.with(|state| {
        let Some(function) = state.registry.function(name).cloned() else {
            return Err(CmdError::err("Function not found"));
        };
        let numkeys = parse_i64(args.get(2).copied().unwrap_or_default())
            .ok_or_else(|| CmdError::err("Bad number of keys provided"))?;
        let (keys, argv) = super::keys_and_args(args, numkeys)?;
        if read_only && !function.flags.no_writes() {
            return Err(CmdError::err(
                "Can not execute a script with write flag using *_ro command.",
            ));
        }
        // A read-only replica refuses a function that may write, as Redis
        // flags such an FCALL `write`.
        if !function.flags.no_writes() && srv.replication.refuses_writes(srv, ctx.client) {
            return Err(CmdError::msg(crate::replica::READONLY));
        }
        if !function.flags.no_writes() && srv.master.lacks_replicas(srv) {
            return Err(CmdError::msg(crate::replication::NOREPLICAS));
        }
        if !function.flags.allow_stale() && srv.replication.refuses_stale(srv, ctx.client) {
            return Err(CmdError::msg(crate::replica::MASTERDOWN));
        }
        let command = args.iter().map(|a| a.to_vec()).collect();
        *functions.running.lock() = Some((function.name.clone(), command));
        let result = state
            .engine
            .call(ctx, &function, keys, argv, &srv.scripting.busy);
        *functions.running.lock() = None;
        result
    })
}

/// `FUNCTION LOAD [REPLACE] code`.
fn function_load(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let mut replace = false;
    let mut pos = 2;
    while pos + 1 < args.len() {
        let arg = args.get(pos).copied().unwrap_or_default();
        if !is(arg, "replace") {
            return Err(CmdError::err(format!(
                "Unknown option given: {}",
                text(arg)
            )));
        }
        replace = true;
        pos += 1;
    }
    let Some(code) = args.get(pos).copied() else {
        return Err(CmdError::err("Function code is missing"));
    };
    let srv = ctx.srv;
    let name = srv.scripting.functions.change(&srv.keyspace, |state| {
        let md = function_lua::check_metadata(code).map_err(CmdError::err)?;
        if !replace && state.registry.library(&md.name).is_some() {
            return Err(CmdError::err(format!(
                "Library '{}' already exists",
                md.name
            )));
        }
        let library = state.engine.create(code, &md).map_err(CmdError::err)?;
        state
            .registry
            .add(library, replace)
            .map_err(CmdError::err)?;
        Ok(md.name)
    })?;
    ctx.out.bulk(name.as_bytes());
    Ok(())
}

/// `FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]`.
fn function_list(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let mut with_code = false;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 2;
    while let Some(arg) = args.get(i).copied() {
        i += 1;
        if !with_code && is(arg, "withcode") {
            with_code = true;
        } else if pattern.is_none() && is(arg, "libraryname") {
            let Some(p) = args.get(i).copied() else {
                return Err(CmdError::err("library name argument was not given"));
            };
            pattern = Some(p);
            i += 1;
        } else {
            return Err(CmdError::err(format!("Unknown argument {}", text(arg))));
        }
    }
    let out = &mut *ctx.out;
    ctx.srv.scripting.functions.with(|state| {
        let libraries: Vec<_> = state
            .registry
            .libraries()
            .filter(|l| {
                pattern.is_none_or(|p| amber_storage::glob::matches(p, l.name.as_bytes(), true))
            })
            .collect();
        out.array(libraries.len());
        for library in libraries {
            out.map(if with_code { 4 } else { 3 });
            out.bulk(b"library_name");
            out.bulk(library.name.as_bytes());
            out.bulk(b"engine");
            out.bulk(ENGINE_NAME.as_bytes());
            out.bulk(b"functions");
            out.array(library.functions.len());
            for f in &library.functions {
                out.map(3);
                out.bulk(b"name");
                out.bulk(f.name.as_bytes());
                out.bulk(b"description");
                match &f.description {
                    Some(d) => out.bulk(d),
                    None => out.null(),
                }
                out.bulk(b"flags");
                let names = f.flags.names();
                out.set(names.len());
                for name in names {
                    out.simple(name);
                }
            }
            if with_code {
                out.bulk(b"library_code");
                out.bulk(&library.code);
            }
        }
        Ok(())
    })
}

/// `FUNCTION DELETE library`.
fn function_delete(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let name = String::from_utf8_lossy(args.get(2).copied().unwrap_or_default()).into_owned();
    let srv = ctx.srv;
    srv.scripting.functions.change(&srv.keyspace, |state| {
        if state.registry.remove(&name) {
            Ok(())
        } else {
            Err(CmdError::err("Library not found"))
        }
    })?;
    ctx.out.ok();
    Ok(())
}

/// `FUNCTION FLUSH [ASYNC|SYNC]`.
fn function_flush(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    match args {
        [_, _] => {}
        [_, _, mode] if is(mode, "sync") || is(mode, "async") => {}
        [_, _, _] => {
            return Err(CmdError::err(
                "FUNCTION FLUSH only supports SYNC|ASYNC option",
            ))
        }
        _ => return Err(subcommand_syntax_error(args)),
    }
    ctx.srv.scripting.functions.flush(&ctx.srv.keyspace)?;
    ctx.out.ok();
    Ok(())
}

/// `addReplySubcommandSyntaxError`.
fn subcommand_syntax_error(args: &[&[u8]]) -> CmdError {
    CmdError::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
        text(args.get(1).copied().unwrap_or_default())
    ))
}

/// `FUNCTION STATS`: the running function and the engine's counts, without
/// waiting for a running function.
fn function_stats(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let scripting = &ctx.srv.scripting;
    let functions = &scripting.functions;
    let running = functions.running.lock().clone();
    let out = &mut *ctx.out;
    out.map(2);
    out.bulk(b"running_script");
    match running {
        None => out.null(),
        Some((name, command)) => {
            out.map(3);
            out.bulk(b"name");
            out.bulk(name.as_bytes());
            out.bulk(b"command");
            out.array(command.len());
            for arg in &command {
                out.bulk(arg);
            }
            out.bulk(b"duration_ms");
            out.int(scripting.busy.running_ms().unwrap_or(0) as i64);
        }
    }
    out.bulk(b"engines");
    out.map(1);
    out.bulk(ENGINE_NAME.as_bytes());
    out.map(2);
    out.bulk(b"libraries_count");
    out.int(functions.libraries.load(Ordering::Relaxed) as i64);
    out.bulk(b"functions_count");
    out.int(functions.functions.load(Ordering::Relaxed) as i64);
    Ok(())
}

/// `FUNCTION DUMP`.
fn function_dump(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let payload = ctx.srv.scripting.functions.with(|state| {
        Ok(dump::encode(
            state.registry.libraries().map(|l| l.code.as_slice()),
        ))
    })?;
    ctx.out.bulk(&payload);
    Ok(())
}

/// How `FUNCTION RESTORE` treats the libraries already there.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Policy {
    Flush,
    Append,
    Replace,
}

/// `FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]`.
fn function_restore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let policy = match args {
        [_, _, _] => Policy::Append,
        [_, _, _, p] if is(p, "flush") => Policy::Flush,
        [_, _, _, p] if is(p, "append") => Policy::Append,
        [_, _, _, p] if is(p, "replace") => Policy::Replace,
        [_, _, _, _] => {
            return Err(CmdError::err(
                "Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            ))
        }
        _ => return Err(subcommand_syntax_error(args)),
    };
    let payload = args.get(2).copied().unwrap_or_default();
    let codes = dump::decode(payload).map_err(CmdError::err)?;
    let srv = ctx.srv;
    srv.scripting.functions.change(&srv.keyspace, |state| {
        let restored = build(state, &codes)?;
        if policy == Policy::Flush {
            state.registry = restored;
            return Ok(());
        }
        state
            .registry
            .join(restored, policy == Policy::Replace)
            .map_err(CmdError::err)
    })?;
    ctx.out.ok();
    Ok(())
}

/// The libraries of a payload's codes, created in `state`'s engine (not
/// yet in its registry); the error is Redis's.
fn build(state: &mut State, codes: &[Vec<u8>]) -> Result<Registry, CmdError> {
    let mut restored = Registry::default();
    for code in codes {
        let md = function_lua::check_metadata(code).map_err(CmdError::err)?;
        if restored.library(&md.name).is_some() {
            return Err(CmdError::err(format!(
                "Library '{}' already exists",
                md.name
            )));
        }
        let library = state.engine.create(code, &md).map_err(CmdError::err)?;
        restored.add(library, false).map_err(CmdError::err)?;
    }
    Ok(restored)
}

/// Writes the whole library set into the arena as the server metadata
/// [`META_NAME`] (nothing without `persistence pmem`); durable when it
/// returns. An arena without room is Redis's `-OOM`.
fn save(keyspace: &Keyspace, registry: &Registry) -> Result<(), CmdError> {
    let payload = dump::encode(registry.libraries().map(|l| l.code.as_slice()));
    keyspace.put_meta(META_NAME, &payload).map_err(|e| {
        tracing::warn!(error = %e, "could not save the function libraries");
        CmdError::from(e)
    })
}

/// `FUNCTION KILL`: runs without the keyspace gate while a function is
/// busy ([`super::busy::check`]).
fn function_kill(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    ctx.srv.scripting.busy.kill(true)?;
    ctx.out.ok();
    Ok(())
}

fn function_help(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    reply_help(
        ctx,
        args,
        &[
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Library description",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
        ],
    );
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use amber_storage::{ArenaConfig, ArenaSync, KeyspaceConfig, Persistence};

    use super::*;

    /// A saved payload that is not one, or whose library does not load, is
    /// skipped (the server starts without functions); a good one loads.
    #[test]
    fn saved_libraries_that_do_not_load_are_skipped() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("amber-fn-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut arena = ArenaConfig::new(dir.join("amber.arena"), 16 << 20);
        arena.segment_size = 1 << 20;
        arena.persistence = Persistence::Pmem;
        arena.sync = ArenaSync::No;
        let ks = Keyspace::open(KeyspaceConfig {
            shards_per_db: 4,
            dram_budget: 1 << 20,
            arena: Some(arena),
        })
        .unwrap();
        let good: &[u8] = b"#!lua name=good\nredis.register_function('f', function() return 1 end)";
        let cases: [(&str, Vec<u8>, u64); 4] = [
            ("not a payload", b"garbage".to_vec(), 0),
            (
                "bad Lua",
                dump::encode([&b"#!lua name=bad\nthis is not Lua"[..]]),
                0,
            ),
            ("no metadata line", dump::encode([&b"return 1"[..]]), 0),
            ("good", dump::encode([good]), 1),
        ];
        for (label, payload, libraries) in cases {
            ks.put_meta(META_NAME, &payload).unwrap();
            let functions = Functions::default();
            functions.load_saved(&ks);
            assert_eq!(functions.library_count(), libraries, "{label}");
            assert_eq!(functions.function_count(), libraries, "{label}");
        }
        drop(ks);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
