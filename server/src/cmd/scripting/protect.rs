//! Read-only globals and libraries, as Redis 7.0.15 makes them with its
//! patched Lua (`lua_enablereadonlytable`): stock Lua 5.1 has no read-only
//! tables, so each library table (`string`, `redis`, `cjson`, ...) is
//! replaced in the globals by an empty view whose `__index` is the real
//! table and whose `__newindex` refuses, and the builtins that bypass
//! metamethods (`rawset`, `setmetatable`, `getmetatable`, `rawget`, `next`,
//! `pairs`) are replaced by versions that know the views: a script cannot
//! change what the next script (of any client) sees.
//!
//! The replacements are Lua C functions with the bodies of Lua's own
//! (`lbaselib.c`), so their errors read as Lua's.

use std::ffi::{c_int, CStr};

use mlua::ffi::{self, lua_State};
use mlua::{Lua, Table, Value};

/// Registry table: view → the real table it shows.
const VIEWS: &CStr = c"amber.views";
/// Registry table: every read-only table → true.
const PROTECTED: &CStr = c"amber.protected";
/// Registry value: what `getmetatable` gives for a string.
const STRING_META: &CStr = c"amber.string_meta";
/// Registry value: what `getmetatable` gives for the globals (`_G`).
const GLOBALS_META: &CStr = c"amber.globals_meta";
/// Registry value: the `next` that sees through views.
const NEXT: &CStr = c"amber.next";

/// The library tables shown through views.
const LIBRARIES: &[&str] = &[
    "string",
    "math",
    "table",
    "coroutine",
    "redis",
    "cjson",
    "cmsgpack",
    "bit",
    "struct",
];

/// Makes the globals read-only (`env` is what scripts see as globals:
/// reads fall through to `globals`, writes are refused).
pub fn install(lua: &Lua, globals: &Table, env: &Table) -> mlua::Result<()> {
    // SAFETY: these are Lua C functions written for this state's API.
    let c_fn = |f: ffi::lua_CFunction| unsafe { lua.create_c_function(f) };
    let readonly = c_fn(readonly_error)?;
    let views = lua.create_table()?;
    let protected = lua.create_table()?;
    let view_of = |real: &Table| -> mlua::Result<Table> {
        let meta = lua.create_table()?;
        meta.raw_set("__index", real.clone())?;
        meta.raw_set("__newindex", readonly.clone())?;
        let view = lua.create_table()?;
        view.set_metatable(Some(meta));
        views.raw_set(view.clone(), real.clone())?;
        protected.raw_set(view.clone(), true)?;
        Ok(view)
    };
    for name in LIBRARIES {
        let real: Table = globals.raw_get(*name)?;
        globals.raw_set(*name, view_of(&real)?)?;
    }
    // A string's metatable: `__index` is the string library's view.
    let string_meta = lua.create_table()?;
    string_meta.raw_set("__index", globals.raw_get::<Value>("string")?)?;
    lua.set_named_registry_value(cstr(STRING_META), view_of(&string_meta)?)?;

    let meta = lua.create_table()?;
    meta.raw_set("__index", c_fn(global_index_error)?)?;
    meta.raw_set("__newindex", readonly.clone())?;
    globals.set_metatable(Some(meta));
    let env_meta = lua.create_table()?;
    env_meta.raw_set("__index", globals.clone())?;
    env_meta.raw_set("__newindex", readonly.clone())?;
    env.set_metatable(Some(env_meta));
    globals.raw_set("_G", env.clone())?;
    protected.raw_set(globals.clone(), true)?;
    protected.raw_set(env.clone(), true)?;
    // `getmetatable(_G)`: a read-only copy of what Redis shows.
    let shown_meta = lua.create_table()?;
    shown_meta.raw_set("__index", c_fn(global_index_error)?)?;
    shown_meta.raw_set("__newindex", readonly.clone())?;
    lua.set_named_registry_value(cstr(GLOBALS_META), view_of(&shown_meta)?)?;

    lua.set_named_registry_value(cstr(VIEWS), views)?;
    lua.set_named_registry_value(cstr(PROTECTED), protected)?;
    let next = c_fn(next)?;
    lua.set_named_registry_value(cstr(NEXT), next.clone())?;
    globals.raw_set("next", next)?;
    globals.raw_set("pairs", c_fn(pairs)?)?;
    globals.raw_set("rawget", c_fn(rawget)?)?;
    globals.raw_set("rawset", c_fn(rawset)?)?;
    globals.raw_set("setmetatable", c_fn(setmetatable)?)?;
    globals.raw_set("getmetatable", c_fn(getmetatable)?)?;
    Ok(())
}

fn cstr(c: &'static CStr) -> &'static str {
    c.to_str().unwrap_or_default()
}

/// Pushes `registry[table][stack[idx]]` (raw).
unsafe fn lookup(l: *mut lua_State, table: &CStr, idx: c_int) {
    ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, table.as_ptr());
    ffi::lua_pushvalue(l, idx);
    ffi::lua_rawget(l, -2);
    ffi::lua_remove(l, -2);
}

/// Whether the table at `idx` is read-only.
unsafe fn is_protected(l: *mut lua_State, idx: c_int) -> bool {
    lookup(l, PROTECTED, idx);
    let yes = ffi::lua_toboolean(l, -1) != 0;
    ffi::lua_pop(l, 1);
    yes
}

/// Replaces a view at `idx` by the real table it shows.
unsafe fn see_through(l: *mut lua_State, idx: c_int) {
    lookup(l, VIEWS, idx);
    if ffi::lua_isnil(l, -1) != 0 {
        ffi::lua_pop(l, 1);
    } else {
        ffi::lua_replace(l, idx);
    }
}

/// Raises Redis's read-only error (from the VM: no position).
unsafe fn refuse(l: *mut lua_State) -> c_int {
    ffi::lua_pushstring(l, c"Attempt to modify a readonly table".as_ptr());
    ffi::lua_error(l)
}

/// `luaProtectedTableError`: the globals table's `__index`.
///
/// # Safety
/// Called by Lua only, with a valid state.
pub unsafe extern "C-unwind" fn global_index_error(l: *mut lua_State) -> c_int {
    if ffi::lua_gettop(l) != 2 {
        ffi::luaL_error(
            l,
            c"Wrong number of arguments to luaProtectedTableError".as_ptr(),
        );
    }
    if ffi::lua_isstring(l, -1) == 0 && ffi::lua_isnumber(l, -1) == 0 {
        ffi::luaL_error(
            l,
            c"Second argument to luaProtectedTableError must be a string or number".as_ptr(),
        );
    }
    let name = ffi::lua_tolstring(l, -1, std::ptr::null_mut());
    ffi::luaL_error(
        l,
        c"Script attempted to access nonexistent global variable '%s'".as_ptr(),
        name,
    )
}

/// The read-only tables' `__newindex` (Redis's VM raises this with the
/// script's position).
///
/// # Safety
/// Called by Lua only, with a valid state.
pub unsafe extern "C-unwind" fn readonly_error(l: *mut lua_State) -> c_int {
    ffi::luaL_error(l, c"Attempt to modify a readonly table".as_ptr())
}

/// `luaB_next`, through views.
unsafe extern "C-unwind" fn next(l: *mut lua_State) -> c_int {
    ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
    ffi::lua_settop(l, 2);
    see_through(l, 1);
    if ffi::lua_next(l, 1) != 0 {
        2
    } else {
        ffi::lua_pushnil(l);
        1
    }
}

/// `luaB_pairs`, returning the `next` that sees through views.
unsafe extern "C-unwind" fn pairs(l: *mut lua_State) -> c_int {
    ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
    ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, NEXT.as_ptr());
    ffi::lua_pushvalue(l, 1);
    ffi::lua_pushnil(l);
    3
}

/// `luaB_rawget`, through views.
unsafe extern "C-unwind" fn rawget(l: *mut lua_State) -> c_int {
    ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
    ffi::luaL_checkany(l, 2);
    ffi::lua_settop(l, 2);
    see_through(l, 1);
    ffi::lua_rawget(l, 1);
    1
}

/// `luaB_rawset`, refused on read-only tables.
unsafe extern "C-unwind" fn rawset(l: *mut lua_State) -> c_int {
    ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
    ffi::luaL_checkany(l, 2);
    ffi::luaL_checkany(l, 3);
    if is_protected(l, 1) {
        return refuse(l);
    }
    ffi::lua_settop(l, 3);
    ffi::lua_rawset(l, 1);
    1
}

/// `luaB_setmetatable`, refused on read-only tables.
unsafe extern "C-unwind" fn setmetatable(l: *mut lua_State) -> c_int {
    let t = ffi::lua_type(l, 2);
    ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
    if t != ffi::LUA_TNIL && t != ffi::LUA_TTABLE {
        ffi::luaL_argerror(l, 2, c"nil or table expected".as_ptr());
    }
    if is_protected(l, 1) {
        return refuse(l);
    }
    if ffi::luaL_getmetafield(l, 1, c"__metatable".as_ptr()) != ffi::LUA_TNIL {
        ffi::luaL_error(l, c"cannot change a protected metatable".as_ptr());
    }
    ffi::lua_settop(l, 2);
    ffi::lua_setmetatable(l, 1);
    1
}

/// `luaB_getmetatable`: the library views show none (the libraries have
/// none in Redis), the globals and strings a read-only view of theirs.
unsafe extern "C-unwind" fn getmetatable(l: *mut lua_State) -> c_int {
    ffi::luaL_checkany(l, 1);
    if ffi::lua_type(l, 1) == ffi::LUA_TSTRING {
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, STRING_META.as_ptr());
        return 1;
    }
    if ffi::lua_type(l, 1) == ffi::LUA_TTABLE && is_protected(l, 1) {
        lookup(l, VIEWS, 1);
        if ffi::lua_isnil(l, -1) != 0 {
            ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, GLOBALS_META.as_ptr());
        } else {
            ffi::lua_pushnil(l);
        }
        return 1;
    }
    if ffi::lua_getmetatable(l, 1) == 0 {
        ffi::lua_pushnil(l);
        return 1;
    }
    ffi::luaL_getmetafield(l, 1, c"__metatable".as_ptr());
    1
}
