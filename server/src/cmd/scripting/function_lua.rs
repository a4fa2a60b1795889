//! The Lua engine of functions (`function_lua.c` in Redis 7.0): an
//! interpreter of its own, separate from `EVAL`'s, in which libraries are
//! loaded and their functions run.
//!
//! Library code sees as its globals an empty table whose `__index` is the
//! load API while it loads (only `redis.register_function`, `redis.log`,
//! the log levels and the version; anything else is an error) and the
//! interpreter's normal globals afterwards, so the callbacks it registered
//! see the full `redis` API when they run.

use std::cell::RefCell;

use mlua::ffi;
use mlua::{Function, Table, Value, Variadic};

use super::library::{self, FunctionDef, FunctionFlags, Library, Metadata};
use super::lua::{self, Interp, Invocation};
use super::protect;
use super::sandbox;
use crate::cmd::{CmdResult, Ctx};

/// Index of `redis.register_function` in [`sandbox::TRAMPOLINES`].
const REGISTER_FUNCTION: usize = 29;

/// Runs a library's code without a `debug`-based handler: a raised error
/// becomes its text (`luaExtractErrorInformation`: an `{err=...}` table's
/// text as it is, any other error with `ERR `).
const LOADER: &str = r#"
local xpcall, type, tostring = xpcall, type, tostring
local function handler(e)
  if type(e) == 'table' then return e.err end
  return 'ERR ' .. tostring(e)
end
return function(f) return xpcall(f, handler) end
"#;

/// How long a library's code may run while it loads (Redis's
/// `LOAD_TIMEOUT_MS`).
const LOAD_TIMEOUT_MS: u64 = 500;
/// Registry key of the time (ms since the Unix epoch) a loading library
/// must be done by.
const LOAD_DEADLINE_KEY: &std::ffi::CStr = c"amber.load_deadline";
/// Lua instructions between two checks of the load deadline.
const LOAD_CHECK_EVERY: std::ffi::c_int = 100_000;

/// `luaEngineLoadHook`: stops a library's code that runs past its
/// deadline. Once stopped, the hook runs on every line, so nothing can
/// catch the error and go on.
unsafe extern "C-unwind" fn load_hook(l: *mut ffi::lua_State, _ar: *mut ffi::lua_Debug) {
    ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, LOAD_DEADLINE_KEY.as_ptr());
    let deadline = ffi::lua_tonumber(l, -1);
    ffi::lua_pop(l, 1);
    if (amber_storage::clock::now_ms() as f64) <= deadline {
        return;
    }
    ffi::lua_sethook(l, Some(load_hook), ffi::LUA_MASKLINE, 0);
    ffi::lua_createtable(l, 0, 1);
    ffi::lua_pushstring(l, c"ERR FUNCTION LOAD timeout".as_ptr());
    ffi::lua_setfield(l, -2, c"err".as_ptr());
    ffi::lua_error(l);
}

/// The engine name libraries give after `#!` (any case).
pub const ENGINE_NAME: &str = "LUA";

/// The functions' interpreter and its load-time environment.
pub struct FunctionEngine {
    interp: Interp,
    /// The metatable of what library code sees as its globals; its
    /// `__index` is switched between the load API and the globals.
    library_meta: Table,
    /// What library code sees as its globals.
    library_env: Table,
    /// The globals while a library loads.
    load_api: Table,
    /// [`LOADER`].
    loader: Function,
    /// `redis.register_function` outside `FUNCTION LOAD`.
    register_outside_load: Function,
}

/// Checks the metadata line of a library (`functionsCreateWithLibraryCtx`
/// before the library runs); the error is Redis's text without `ERR `.
pub fn check_metadata(code: &[u8]) -> Result<Metadata, String> {
    let md = library::parse_metadata(code)?;
    if !md.engine.eq_ignore_ascii_case(ENGINE_NAME) {
        return Err(format!("Engine '{}' not found", md.engine));
    }
    if !library::is_valid_name(md.name.as_bytes()) {
        return Err(library::BAD_NAME.into());
    }
    Ok(md)
}

impl FunctionEngine {
    /// A fresh engine (`luaEngineInitEngine`).
    pub fn new() -> mlua::Result<FunctionEngine> {
        let interp = Interp::new()?;
        let lua = interp.lua();
        // SAFETY: these are Lua C functions written for this state's API.
        let c_fn = |f: mlua::ffi::lua_CFunction| unsafe { lua.create_c_function(f) };
        let readonly = c_fn(protect::readonly_error)?;
        let error_meta = lua.create_table()?;
        error_meta.raw_set("__index", c_fn(protect::global_index_error)?)?;
        error_meta.raw_set("__newindex", readonly.clone())?;

        let runtime_redis: Table = interp.env().get("redis")?;
        let redis = lua.create_table()?;
        redis.raw_set(
            "register_function",
            c_fn(sandbox::TRAMPOLINES[REGISTER_FUNCTION])?,
        )?;
        for name in [
            "log",
            "LOG_DEBUG",
            "LOG_VERBOSE",
            "LOG_NOTICE",
            "LOG_WARNING",
            "REDIS_VERSION",
            "REDIS_VERSION_NUM",
        ] {
            redis.raw_set(name, runtime_redis.get::<Value>(name)?)?;
        }
        redis.set_metatable(Some(error_meta.clone()));
        let load_api = lua.create_table()?;
        load_api.raw_set("redis", redis)?;
        load_api.set_metatable(Some(error_meta));

        let library_meta = lua.create_table()?;
        library_meta.raw_set("__index", interp.env().clone())?;
        library_meta.raw_set("__newindex", readonly)?;
        let library_env = lua.create_table()?;
        library_env.set_metatable(Some(library_meta.clone()));

        let register_outside_load = lua.create_function(|lua, _: Variadic<Value>| {
            lua::raise(
                lua,
                "redis.register_function can only be called on FUNCTION LOAD command",
            )
        })?;
        lua::set_impl(lua, REGISTER_FUNCTION, register_outside_load.clone())?;
        let loader: Function = lua.load(LOADER).set_name("=loader").eval()?;
        Ok(FunctionEngine {
            interp,
            library_meta,
            library_env,
            load_api,
            loader,
            register_outside_load,
        })
    }

    /// Bytes the interpreter uses.
    pub fn used_memory(&self) -> usize {
        self.interp.used_memory()
    }

    /// Compiles and runs the code of a library whose metadata is `md`
    /// (`luaEngineCreate`), collecting the functions it registers. The
    /// error is Redis's text without `ERR `.
    pub fn create(&self, code: &[u8], md: &Metadata) -> Result<Library, String> {
        let lua = self.interp.lua();
        let body = code.get(md.body_start..).unwrap_or_default();
        let chunk = lua
            .load(body)
            .set_name("@user_function")
            .set_environment(self.library_env.clone())
            .into_function()
            .map_err(|e| {
                let msg = match e {
                    mlua::Error::SyntaxError { message, .. } => message,
                    other => other.to_string(),
                };
                format!("Error compiling function: {msg}")
            })?;
        let registered = RefCell::new(Vec::new());
        let internal = |e: mlua::Error| e.to_string();
        self.library_meta
            .raw_set("__index", self.load_api.clone())
            .map_err(internal)?;
        let outcome = lua.scope(|scope| {
            let register = scope.create_function(|lua, args: Variadic<Value>| {
                register_function(lua, &mut registered.borrow_mut(), args)
            })?;
            lua::set_impl(lua, REGISTER_FUNCTION, register)?;
            let deadline = amber_storage::clock::now_ms() + LOAD_TIMEOUT_MS;
            // SAFETY: the hook is removed below, before the state is used
            // for anything else.
            unsafe {
                lua.exec_raw::<()>((), |state| {
                    ffi::lua_pushnumber(state, deadline as f64);
                    ffi::lua_setfield(state, ffi::LUA_REGISTRYINDEX, LOAD_DEADLINE_KEY.as_ptr());
                    ffi::lua_sethook(state, Some(load_hook), ffi::LUA_MASKCOUNT, LOAD_CHECK_EVERY);
                })?
            };
            let outcome = self.loader.call::<(bool, Value)>(chunk);
            // SAFETY: as above.
            unsafe {
                lua.exec_raw::<()>((), |state| {
                    ffi::lua_sethook(state, None, 0, 0);
                })?
            };
            lua::set_impl(lua, REGISTER_FUNCTION, self.register_outside_load.clone())?;
            outcome
        });
        self.library_meta
            .raw_set("__index", self.interp.env().clone())
            .map_err(internal)?;
        let (ok, error) = outcome.map_err(internal)?;
        if !ok {
            let text = lua::lua_bytes(&error).unwrap_or_else(|| b"(null)".to_vec());
            return Err(format!(
                "Error registering functions: {}",
                String::from_utf8_lossy(&text)
            ));
        }
        let functions = registered.into_inner();
        if functions.is_empty() {
            return Err("No functions registered".into());
        }
        Ok(Library {
            name: md.name.clone(),
            code: code.to_vec(),
            functions,
        })
    }

    /// Runs `function` for the client of `ctx` (`luaEngineCall`).
    pub fn call(
        &self,
        ctx: &mut Ctx<'_>,
        function: &FunctionDef,
        keys: &[&[u8]],
        argv: &[&[u8]],
        busy: &super::busy::Busy,
    ) -> CmdResult {
        let inv = Invocation {
            debug: false,
            name: &function.name,
            keys,
            argv,
            read_only: function.flags.no_writes(),
            allow_oom: function.flags.allow_oom(),
            busy,
            function: true,
        };
        self.interp.run(ctx, &function.callback, &inv)
    }
}

/// `redis.register_function` while a library loads
/// (`luaRegisterFunction`): positional `(name, callback)` or one table of
/// named arguments.
fn register_function(
    lua: &mlua::Lua,
    registered: &mut Vec<FunctionDef>,
    args: Variadic<Value>,
) -> mlua::Result<mlua::MultiValue> {
    let parsed = match args.as_slice() {
        [named] => named_args(named),
        [name, callback] => positional_args(name, callback),
        _ => Err("wrong number of arguments to redis.register_function"),
    };
    let function = match parsed {
        Ok(f) => f,
        Err(text) => return lua::raise(lua, text),
    };
    if !library::is_valid_name(function.name.as_bytes()) {
        return lua::raise(lua, library::BAD_NAME);
    }
    if registered.iter().any(|f| f.name == function.name) {
        return lua::raise(lua, "Function already exists in the library");
    }
    registered.push(function);
    Ok(lua::results([]))
}

/// A name as `luaGetStringSds` reads it (strings and numbers).
fn string_arg(v: &Value) -> Option<String> {
    lua::lua_bytes(v).map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn positional_args(name: &Value, callback: &Value) -> Result<FunctionDef, &'static str> {
    let name =
        string_arg(name).ok_or("first argument to redis.register_function must be a string")?;
    let Value::Function(callback) = callback else {
        return Err("second argument to redis.register_function must be a function");
    };
    Ok(FunctionDef {
        name,
        description: None,
        flags: FunctionFlags::default(),
        callback: callback.clone(),
    })
}

fn named_args(arg: &Value) -> Result<FunctionDef, &'static str> {
    let Value::Table(table) = arg else {
        return Err("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).");
    };
    let (mut name, mut description, mut callback) = (None, None, None);
    let mut flags = FunctionFlags::default();
    for pair in table.clone().pairs::<Value, Value>() {
        let Ok((key, value)) = pair else {
            return Err("named argument key given to redis.register_function is not a string");
        };
        let key = lua::lua_bytes(&key)
            .ok_or("named argument key given to redis.register_function is not a string")?;
        let key = String::from_utf8_lossy(&key).to_ascii_lowercase();
        match key.as_str() {
            "function_name" => {
                name = Some(string_arg(&value).ok_or(
                    "function_name argument given to redis.register_function must be a string",
                )?);
            }
            "description" => {
                description = Some(lua::lua_bytes(&value).ok_or(
                    "description argument given to redis.register_function must be a string",
                )?);
            }
            "callback" => {
                let Value::Function(f) = value else {
                    return Err(
                        "callback argument given to redis.register_function must be a function",
                    );
                };
                callback = Some(f);
            }
            "flags" => {
                let Value::Table(list) = value else {
                    return Err("flags argument to redis.register_function must be a table representing function flags");
                };
                flags = read_flags(&list).ok_or("unknown flag given")?;
            }
            _ => return Err("unknown argument given to redis.register_function"),
        }
    }
    let name = name.ok_or("redis.register_function must get a function name argument")?;
    let callback = callback.ok_or("redis.register_function must get a callback argument")?;
    Ok(FunctionDef {
        name,
        description,
        flags,
        callback,
    })
}

/// `luaRegisterFunctionReadFlags`: items `1..` up to the first `nil`.
fn read_flags(list: &Table) -> Option<FunctionFlags> {
    let mut flags = FunctionFlags::default();
    for i in 1.. {
        let value: Value = list.get(i).ok()?;
        if value.is_nil() {
            break;
        }
        let Value::String(s) = value else {
            return None;
        };
        flags = flags.union(FunctionFlags::from_name(&s.as_bytes())?);
    }
    Some(flags)
}
