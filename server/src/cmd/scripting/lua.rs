//! The Lua interpreter as Redis 7.0 sets it up (`script_lua.c`, `eval.c`):
//! the libraries it loads, the `redis` API, the sandbox (no `loadfile`,
//! `dofile`, `print`, `io`, `os`; globals read-only and missing globals an
//! error), Redis's error handler, and running one script with `KEYS` and
//! `ARGV` against the caller's [`Ctx`].

use std::cell::RefCell;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Arc;

use mlua::ffi;
use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value, Variadic};

use super::convert::{self, Reply};
use super::sandbox;
use super::script_call::{self, RunState};
use crate::cmd::connection::REDIS_VERSION;
use crate::cmd::{CmdError, CmdResult, Ctx};

/// Redis's error handler (`__redis__err__handler`, `eval.c`): it turns
/// any error into an `{err=...}` table and records where it happened, on
/// the caller of a C function (`redis.call`) rather than the function.
const PRELUDE: &str = r#"
local dbg = debug
debug = nil
function __redis__err__handler(err)
  local i = dbg.getinfo(2,'nSl')
  if i and i.what == 'C' then
    i = dbg.getinfo(3,'nSl')
  end
  if type(err) ~= 'table' then
    err = {err='ERR ' .. tostring(err)}
  end
  if i then
    err['source'] = i.source
    err['line'] = i.currentline
  end
  return err
end
local handler, xpcall = __redis__err__handler, xpcall
return function(f) return xpcall(f, handler) end
"#;

/// A function's callback gets `KEYS` and `ARGV` as arguments, not as
/// globals (`luaCallFunction` outside eval mode).
const BINDER: &str =
    "return function(f, keys, args) return function() return f(keys, args) end end";

/// Globals of Lua's base library that Redis 7.0 does not give scripts (its
/// deny list, and what its globals allow list leaves out).
const DENIED_GLOBALS: &[&str] = &[
    "dofile", "loadfile", "print", "getfenv", "setfenv", "newproxy",
];

/// `REDIS_VERSION_NUM`: 0x00MMmmpp of [`REDIS_VERSION`].
fn version_num() -> f64 {
    let mut parts = REDIS_VERSION
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor, patch) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    f64::from((major << 16) | (minor << 8) | patch)
}

/// One Lua state with Redis's environment.
pub struct Interp {
    lua: Lua,
    /// What scripts see as their globals: reads fall through to `globals`,
    /// writes are refused.
    env: Table,
    /// `function(f) return xpcall(f, __redis__err__handler) end`.
    runner: Function,
    /// [`BINDER`].
    binder: Function,
    /// The running script's state, which `redis.call`, `redis.pcall`,
    /// `redis.setresp` and `redis.acl_check_cmd` use (see [`Running`]).
    running: Running,
}

/// Where the callbacks that act on the running script find its state: a
/// pointer to the `RefCell<RunState>` on [`Interp::run`]'s stack, set for
/// as long as the script runs, null otherwise.
///
/// Why not `Lua::scope`: a scope made the four callbacks anew for every
/// script (a closure, a userdata and a registry write each, and as much
/// garbage for Lua's collector), a fifth of a short script's cost.
#[derive(Clone, Default)]
struct Running(Arc<AtomicPtr<()>>);

impl Running {
    /// Runs `f` with the running script's state; an error when no script
    /// runs (the callbacks are only reachable from a script's `redis`
    /// table, so that does not happen) or when a callback is re-entered.
    fn with<R>(&self, f: impl FnOnce(&mut RunState<'_, '_>) -> mlua::Result<R>) -> mlua::Result<R> {
        let ptr = self.0.load(Ordering::Acquire) as *const RefCell<RunState<'_, '_>>;
        // SAFETY: `Interp::run` stores a pointer to a cell that outlives
        // the script and clears it before the cell goes; callbacks run
        // only inside the script, on the thread that runs it, which holds
        // the interpreter's lock.
        let Some(cell) = (unsafe { ptr.as_ref() }) else {
            return Err(mlua::Error::runtime("no script is running"));
        };
        let mut state = cell
            .try_borrow_mut()
            .map_err(|_| mlua::Error::runtime("redis call re-entered"))?;
        f(&mut state)
    }

    /// Makes `cell` the running script's state until the guard drops.
    fn set<'s>(&'s self, cell: &'s RefCell<RunState<'_, '_>>) -> RunningGuard<'s> {
        self.0.store(cell as *const _ as *mut (), Ordering::Release);
        RunningGuard(self)
    }
}

/// Clears [`Running`] when the script ends (or unwinds).
struct RunningGuard<'s>(&'s Running);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0 .0.store(std::ptr::null_mut(), Ordering::Release);
    }
}

/// How a compiled script is run.
pub struct Invocation<'a> {
    /// The function name in error messages (`f_` is not shown: the sha).
    pub name: &'a str,
    /// `KEYS`.
    pub keys: &'a [&'a [u8]],
    /// `ARGV`.
    pub argv: &'a [&'a [u8]],
    /// `EVAL_RO` / `EVALSHA_RO`: write commands are refused.
    pub read_only: bool,
    /// The script declares `allow-oom`: its commands may use memory even
    /// when memory is full.
    pub allow_oom: bool,
    /// Where other connections see the script running.
    pub busy: &'a super::busy::Busy,
    /// A function (`FCALL`): `KEYS` and `ARGV` are its arguments, and it
    /// is killed with `FUNCTION KILL`.
    pub function: bool,
    /// Run in the Lua debugger (`SCRIPT DEBUG`, see [`super::ldb`]).
    pub debug: bool,
}

impl Interp {
    /// A fresh interpreter (Redis's `scriptingInit`).
    pub fn new() -> mlua::Result<Interp> {
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG;
        // SAFETY: the debug library is needed by the error handler only;
        // the prelude removes it from the globals before any script runs,
        // as Redis does.
        let lua = unsafe { Lua::unsafe_new_with(libs, LuaOptions::new()) };
        let globals = lua.globals();
        for name in DENIED_GLOBALS {
            globals.raw_set(*name, Value::Nil)?;
        }
        // SAFETY: these are Lua C functions written for this state's API.
        let c_fn = |f: mlua::ffi::lua_CFunction| unsafe { lua.create_c_function(f) };
        globals.raw_set("pcall", c_fn(sandbox::pcall)?)?;
        let lua_loadstring: Function = globals.raw_get("loadstring")?;
        let key = sandbox::LUA_LOADSTRING
            .to_str()
            .map_err(mlua::Error::external)?;
        lua.set_named_registry_value(key, lua_loadstring)?;
        globals.raw_set("loadstring", c_fn(sandbox::loadstring)?)?;
        let math: Table = globals.raw_get("math")?;
        math.raw_set("random", c_fn(sandbox::math_random)?)?;
        math.raw_set("randomseed", c_fn(sandbox::math_randomseed)?)?;

        let redis = lua.create_table()?;
        redis.raw_set("call", c_fn(sandbox::TRAMPOLINES[0])?)?;
        redis.raw_set("pcall", c_fn(sandbox::TRAMPOLINES[1])?)?;
        redis.raw_set("sha1hex", c_fn(sandbox::TRAMPOLINES[2])?)?;
        redis.raw_set("log", c_fn(sandbox::TRAMPOLINES[3])?)?;
        redis.raw_set("set_repl", c_fn(sandbox::TRAMPOLINES[4])?)?;
        redis.raw_set("setresp", c_fn(sandbox::TRAMPOLINES[5])?)?;
        redis.raw_set("acl_check_cmd", c_fn(sandbox::TRAMPOLINES[6])?)?;
        redis.raw_set("replicate_commands", c_fn(sandbox::TRAMPOLINES[7])?)?;
        redis.raw_set("error_reply", lua.create_function(error_reply)?)?;
        redis.raw_set("status_reply", lua.create_function(status_reply)?)?;
        redis.raw_set("breakpoint", c_fn(super::ldb::breakpoint)?)?;
        redis.raw_set("debug", c_fn(super::ldb::debug)?)?;
        for (name, level) in [
            ("LOG_DEBUG", 0),
            ("LOG_VERBOSE", 1),
            ("LOG_NOTICE", 2),
            ("LOG_WARNING", 3),
            ("REPL_NONE", 0),
            ("REPL_AOF", 1),
            ("REPL_SLAVE", 2),
            ("REPL_REPLICA", 2),
            ("REPL_ALL", 3),
        ] {
            redis.raw_set(name, level)?;
        }
        redis.raw_set("REDIS_VERSION", REDIS_VERSION)?;
        redis.raw_set("REDIS_VERSION_NUM", version_num())?;
        super::libs::register(&lua, &globals)?;

        let static_impls: [(usize, Function); 4] = [
            (2, lua.create_function(sha1hex)?),
            (3, lua.create_function(log)?),
            (4, lua.create_function(set_repl)?),
            (
                7,
                lua.create_function(|_, _: MultiValue| Ok((false, true)))?,
            ),
        ];
        for (i, f) in static_impls {
            set_impl(&lua, i, f)?;
        }
        let running = Running::default();
        let r = running.clone();
        let call = lua.create_function(move |lua, args: Variadic<Value>| {
            r.with(|state| command(lua, state, args, true))
        })?;
        let r = running.clone();
        let pcall = lua.create_function(move |lua, args: Variadic<Value>| {
            r.with(|state| command(lua, state, args, false))
        })?;
        let r = running.clone();
        let setresp = lua.create_function(move |lua, args: Variadic<Value>| {
            r.with(|state| setresp(lua, state, args))
        })?;
        let r = running.clone();
        let acl = lua.create_function(move |lua, args: Variadic<Value>| {
            r.with(|state| acl_check_cmd(lua, state, args))
        })?;
        set_impl(&lua, 0, call)?;
        set_impl(&lua, 1, pcall)?;
        set_impl(&lua, 5, setresp)?;
        set_impl(&lua, 6, acl)?;

        let runner: Function = lua.load(PRELUDE).set_name("=prelude").eval()?;
        let binder: Function = lua.load(BINDER).set_name("=binder").eval()?;

        globals.raw_set("redis", redis)?;
        let env = lua.create_table()?;
        super::protect::install(&lua, &globals, &env)?;
        // SAFETY: `env` is pushed on top of the stack for `keep_env`.
        unsafe { lua.exec_raw::<()>(env.clone(), |state| super::ldb::keep_env(state))? };
        Ok(Interp {
            lua,
            env,
            runner,
            binder,
            running,
        })
    }

    /// The Lua state.
    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    /// What scripts see as their globals (see [`Interp::env`]).
    pub fn env(&self) -> &Table {
        &self.env
    }

    /// Bytes the interpreter uses.
    pub fn used_memory(&self) -> usize {
        self.lua.used_memory()
    }

    /// Compiles a script body (`luaCreateFunction`); the error is Redis's
    /// reply text.
    pub fn compile(&self, body: &[u8]) -> Result<Function, String> {
        self.lua
            .load(body)
            .set_name("@user_script")
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| {
                let msg = match e {
                    mlua::Error::SyntaxError { message, .. } => message,
                    other => other.to_string(),
                };
                format!("ERR Error compiling script (new function): {msg}")
            })
    }

    /// Runs `func` for the client of `ctx` (`luaCallFunction`) and writes
    /// the reply.
    pub fn run(&self, ctx: &mut Ctx<'_>, func: &Function, inv: &Invocation<'_>) -> CmdResult {
        let lua = &self.lua;
        let to_err = |e: mlua::Error| CmdError::err(e.to_string());
        let caller_db = ctx.client.db;
        // New connections go to other threads while this one runs it.
        let _scripting = ctx.srv.cores.get().and_then(|c| c.scripting_here());
        if ctx.client.tracking.on {
            ctx.client.script_keys = Some(inv.keys.iter().map(|k| k.to_vec()).collect());
        }
        let state = RefCell::new(RunState::new(ctx, inv.read_only, inv.allow_oom));
        let result: mlua::Result<MultiValue> = (|| {
            let _running = self.running.set(&state);
            inv.busy.begin(inv.function);
            let binder = inv.function.then_some(&self.binder);
            // One raw call sets `KEYS` and `ARGV` up, watches the script
            // and runs it: each call through mlua's API takes the state's
            // lock, and a short script's setup used to make a dozen.
            // SAFETY: the main state runs the script with the arguments
            // pushed here; `inv.busy` outlives it.
            let result = unsafe {
                lua.exec_raw::<MultiValue>((&self.runner, func, binder), |state| {
                    ffi::luaL_checkstack(state, 8, c"script arguments".as_ptr());
                    match inv.function {
                        // Stack: runner, func, binder. The function gets
                        // `binder(func, keys, argv)`.
                        true => {
                            ffi::lua_pushvalue(state, 2);
                            push_strings(state, inv.keys);
                            push_strings(state, inv.argv);
                            ffi::lua_call(state, 3, 1);
                            ffi::lua_replace(state, 2);
                        }
                        false => {
                            for (name, items) in [(c"KEYS", inv.keys), (c"ARGV", inv.argv)] {
                                ffi::lua_pushstring(state, name.as_ptr());
                                push_strings(state, items);
                                ffi::lua_rawset(state, ffi::LUA_GLOBALSINDEX);
                            }
                        }
                    }
                    ffi::lua_settop(state, 2);
                    if inv.debug {
                        super::ldb::watch(state)
                    } else {
                        inv.busy.watch(state)
                    }
                    ffi::lua_call(state, 1, ffi::LUA_MULTRET);
                    super::busy::Busy::unwatch(state);
                })
            };
            if result.is_err() {
                // SAFETY: as above.
                unsafe { lua.exec_raw::<()>((), |state| super::busy::Busy::unwatch(state))? };
            }
            inv.busy.end();
            result
        })();
        let mut state = state.into_inner();
        state.finish(caller_db);
        let script_resp3 = state.resp3;
        let ctx = state.into_ctx();
        let values = result.map_err(to_err)?;
        let mut values = values.into_iter();
        let ok = matches!(values.next(), Some(Value::Boolean(true)));
        let value = values.next().unwrap_or(Value::Nil);
        if let Value::Table(t) = &value {
            // A raised error carries where it happened; a returned error
            // table is replied as it is.
            let name = if ok { None } else { Some(inv.name) };
            if let Some(text) = convert::error_of_table(t, name) {
                return Err(if convert::already_counted(t) {
                    CmdError::Counted(text)
                } else {
                    CmdError::msg(text)
                });
            }
        }
        if ok {
            let srv = ctx.srv;
            let mut count = |text: &str| srv.stats.record_error(text);
            convert::write_lua_value(ctx.out, &value, script_resp3, &mut count);
            return Ok(());
        }
        Err(CmdError::msg(format!(
            "ERR Error running script {}, execution failure",
            inv.name
        )))
    }
}

/// Registers the Rust function behind `sandbox::TRAMPOLINES[index]`.
pub fn set_impl(lua: &Lua, index: usize, f: Function) -> mlua::Result<()> {
    let key = sandbox::IMPLS.get(index).and_then(|k| k.to_str().ok());
    let key = key.ok_or_else(|| mlua::Error::runtime("no such trampoline"))?;
    lua.set_named_registry_value(key, f)
}

/// Pushes a table of `items` (Lua strings, from index 1) on the stack.
///
/// # Safety
/// `state` is a valid state with room for two more values.
unsafe fn push_strings(state: *mut ffi::lua_State, items: &[&[u8]]) {
    ffi::lua_createtable(state, items.len().try_into().unwrap_or(0), 0);
    for (i, item) in items.iter().enumerate() {
        ffi::lua_pushlstring(state, item.as_ptr().cast(), item.len());
        ffi::lua_rawseti(state, -2, (i + 1) as ffi::lua_Integer);
    }
}

/// A raised `{err=...}`: the `(true, table)` the raising trampoline expects.
pub fn raise(lua: &Lua, text: &str) -> mlua::Result<MultiValue> {
    let t = convert::error_table(lua, text.as_bytes())?;
    Ok(MultiValue::from_iter([
        Value::Boolean(true),
        Value::Table(t),
    ]))
}

/// Plain results for the raising trampoline.
pub fn results(values: impl IntoIterator<Item = Value>) -> MultiValue {
    std::iter::once(Value::Boolean(false))
        .chain(values)
        .collect()
}

/// `redis.call` / `redis.pcall` (`luaRedisGenericCommand`).
fn command(
    lua: &Lua,
    state: &mut RunState<'_, '_>,
    args: Variadic<Value>,
    raise_error: bool,
) -> mlua::Result<MultiValue> {
    let fail = |lua: &Lua, text: &str| -> mlua::Result<MultiValue> {
        if raise_error {
            raise(lua, text)
        } else {
            let t = convert::error_table(lua, text.as_bytes())?;
            Ok(results([Value::Table(t)]))
        }
    };
    if args.is_empty() {
        return fail(
            lua,
            "Please specify at least one argument for this redis lib call",
        );
    }
    let arg_bytes = |a: &Value| match a {
        Value::Number(n) => Some(convert::format_g(*n, 17).into_bytes()),
        Value::Integer(n) => Some(convert::format_g(*n as f64, 17).into_bytes()),
        Value::String(s) => Some(s.as_bytes().to_vec()),
        _ => None,
    };
    // Packed arguments are read one at a time (see `sandbox::packed_args`).
    let argv: Option<Vec<Vec<u8>>> = match sandbox::packed_args(&args) {
        Some((t, n)) => (1..=n)
            .map(|i| t.raw_get::<Value>(i).map(|a| arg_bytes(&a)))
            .collect::<mlua::Result<_>>()?,
        None => args.iter().map(arg_bytes).collect(),
    };
    let Some(argv) = argv else {
        return fail(
            lua,
            "Lua redis lib command arguments must be strings or integers",
        );
    };
    let debugging = super::ldb::logging();
    if debugging {
        super::ldb::log_command(&argv);
    }
    let reply = match script_call::call(state, &argv) {
        Ok(reply) => {
            if debugging {
                super::ldb::log_reply(&reply);
            }
            reply
        }
        Err(text) => {
            let mut t = convert::error_table(lua, text.as_bytes())?;
            t.raw_set("ignore_error_stats_update", true)?;
            t = t.clone();
            return Ok(MultiValue::from_iter([
                Value::Boolean(raise_error),
                Value::Table(t),
            ]));
        }
    };
    let parsed = convert::parse_reply(&reply)
        .unwrap_or_else(|| Reply::Error(b"ERR reply from the command could not be read".to_vec()));
    let is_error = matches!(parsed, Reply::Error(_));
    let value = convert::reply_to_lua(lua, &parsed)?;
    Ok(std::iter::once(Value::Boolean(raise_error && is_error))
        .chain(std::iter::once(value))
        .collect())
}

/// `redis.error_reply` (`luaRedisErrorReplyCommand`).
fn error_reply(lua: &Lua, args: Variadic<Value>) -> mlua::Result<Table> {
    match args.as_slice() {
        [Value::String(s)] => {
            let s = s.as_bytes();
            let mut text = Vec::with_capacity(s.len() + 1);
            if s.first() != Some(&b'-') {
                text.push(b'-');
            }
            text.extend_from_slice(&s);
            convert::error_table(lua, &text)
        }
        _ => convert::error_table(lua, b"wrong number or type of arguments"),
    }
}

/// `redis.status_reply` (`luaRedisReturnSingleFieldTable`).
fn status_reply(lua: &Lua, args: Variadic<Value>) -> mlua::Result<Table> {
    match args.as_slice() {
        [Value::String(s)] => {
            let t = lua.create_table()?;
            t.raw_set("ok", s.clone())?;
            Ok(t)
        }
        _ => convert::error_table(lua, b"wrong number or type of arguments"),
    }
}

/// `lua_tolstring`'s view of a value: strings, and numbers as `%.14g`.
pub fn lua_bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Number(n) => Some(convert::lua_number_text(*n).into_bytes()),
        Value::Integer(n) => Some(n.to_string().into_bytes()),
        _ => None,
    }
}

/// `lua_tonumber`'s view of a value (numeric strings convert).
fn lua_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::Integer(n) => Some(*n as f64),
        Value::String(s) => std::str::from_utf8(&s.as_bytes())
            .ok()
            .and_then(|t| t.trim().parse().ok()),
        _ => None,
    }
}

/// `redis.sha1hex`.
fn sha1hex(lua: &Lua, args: Variadic<Value>) -> mlua::Result<MultiValue> {
    let [v] = args.as_slice() else {
        return raise(lua, "wrong number of arguments");
    };
    let data = lua_bytes(v).unwrap_or_default();
    let hex = super::cache::sha1_hex(&data);
    Ok(results([Value::String(lua.create_string(hex)?)]))
}

/// `redis.log`: checks its arguments as Redis does, then logs.
fn log(lua: &Lua, args: Variadic<Value>) -> mlua::Result<MultiValue> {
    if args.len() < 2 {
        return raise(lua, "redis.log() requires two arguments or more.");
    }
    let Some(level) = args.first().and_then(lua_number) else {
        return raise(lua, "First argument must be a number (log level).");
    };
    let level = level as i32;
    if !(0..=3).contains(&level) {
        return raise(lua, "Invalid debug level.");
    }
    let parts: Vec<String> = args
        .iter()
        .skip(1)
        .filter_map(lua_bytes)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect();
    let text = parts.join(" ");
    match level {
        0 => tracing::debug!(target: "lua", "{text}"),
        1 | 2 => tracing::info!(target: "lua", "{text}"),
        _ => tracing::warn!(target: "lua", "{text}"),
    }
    Ok(results([]))
}

/// `redis.set_repl`: whether the script's next commands reach replicas
/// (`REPL_REPLICA` set, as in `REPL_ALL`) or not (`REPL_NONE`, `REPL_AOF`:
/// Amber has no AOF). Until the script ends.
fn set_repl(lua: &Lua, args: Variadic<Value>) -> mlua::Result<MultiValue> {
    let [v] = args.as_slice() else {
        return raise(lua, "redis.set_repl() requires two arguments.");
    };
    let flags = lua_number(v).unwrap_or(0.0) as i32;
    if flags & !3 != 0 {
        return raise(
            lua,
            "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
        );
    }
    crate::replication::propagate::set_replicated(flags & 2 != 0);
    Ok(results([]))
}

/// `redis.setresp`: the protocol of the replies `redis.call` converts.
fn setresp(
    lua: &Lua,
    state: &mut RunState<'_, '_>,
    args: Variadic<Value>,
) -> mlua::Result<MultiValue> {
    let [v] = args.as_slice() else {
        return raise(lua, "redis.setresp() requires one argument.");
    };
    match lua_number(v).unwrap_or(0.0) as i32 {
        2 => state.resp3 = false,
        3 => state.resp3 = true,
        _ => return raise(lua, "RESP version must be 2 or 3."),
    }
    Ok(results([]))
}

/// `redis.acl_check_cmd`: every existing command is allowed (Amber has one
/// user with every permission).
fn acl_check_cmd(
    lua: &Lua,
    state: &mut RunState<'_, '_>,
    args: Variadic<Value>,
) -> mlua::Result<MultiValue> {
    if args.is_empty() {
        return raise(
            lua,
            "Please specify at least one argument for this redis lib call",
        );
    }
    let mut argv = Vec::with_capacity(args.len());
    for a in args.iter() {
        match lua_bytes(a) {
            Some(b) => argv.push(b),
            None => {
                return raise(
                    lua,
                    "Lua redis lib command arguments must be strings or integers",
                )
            }
        }
    }
    match script_call::acl_permits(state, &argv) {
        Some(permitted) => Ok(results([Value::Boolean(permitted)])),
        None => raise(lua, "Invalid command passed to redis.acl_check_cmd()"),
    }
}
