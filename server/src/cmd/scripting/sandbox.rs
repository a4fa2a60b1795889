//! The Lua C functions of Redis's sandbox, written against the Lua C API
//! because their behaviour depends on it: errors raised with `luaL_error`
//! carry the caller's position (`user_script:1: ...`), a raised error can
//! be a table (`{err=...}`), and a C function never replaces the caller's
//! frame in a tail call, so Redis's error handler finds the script's line.
//!
//! Every function here keeps only plain values on its Rust stack: Lua
//! raises errors with `longjmp`, which must not skip a destructor.

use std::ffi::{c_int, CStr};

use mlua::ffi::{self, lua_State};

use super::rand48;

/// Registry keys of the Rust functions behind the C functions of the
/// `redis` API and of the libraries (see [`raising`]), by index.
pub const IMPLS: [&CStr; 30] = [
    c"amber.call",
    c"amber.pcall",
    c"amber.sha1hex",
    c"amber.log",
    c"amber.set_repl",
    c"amber.setresp",
    c"amber.acl_check_cmd",
    c"amber.replicate_commands",
    c"amber.cjson.encode",
    c"amber.cjson.decode",
    c"amber.cmsgpack.pack",
    c"amber.cmsgpack.unpack",
    c"amber.cmsgpack.unpack_one",
    c"amber.cmsgpack.unpack_limit",
    c"amber.struct.pack",
    c"amber.struct.unpack",
    c"amber.struct.size",
    c"amber.bit.tobit",
    c"amber.bit.tohex",
    c"amber.bit.bnot",
    c"amber.bit.band",
    c"amber.bit.bor",
    c"amber.bit.bxor",
    c"amber.bit.lshift",
    c"amber.bit.rshift",
    c"amber.bit.arshift",
    c"amber.bit.rol",
    c"amber.bit.ror",
    c"amber.bit.bswap",
    c"amber.register_function",
];

/// The C function for each entry of [`IMPLS`].
pub const TRAMPOLINES: [ffi::lua_CFunction; 30] = [
    raising::<0>,
    raising::<1>,
    raising::<2>,
    raising::<3>,
    raising::<4>,
    raising::<5>,
    raising::<6>,
    raising::<7>,
    raising::<8>,
    raising::<9>,
    raising::<10>,
    raising::<11>,
    raising::<12>,
    raising::<13>,
    raising::<14>,
    raising::<15>,
    raising::<16>,
    raising::<17>,
    raising::<18>,
    raising::<19>,
    raising::<20>,
    raising::<21>,
    raising::<22>,
    raising::<23>,
    raising::<24>,
    raising::<25>,
    raising::<26>,
    raising::<27>,
    raising::<28>,
    raising::<29>,
];

/// What a Rust function behind [`raising`] returns first: `false`, then
/// its results; or one of these codes.
pub mod outcome {
    /// `true`: the next value (an `{err=...}` table) is raised as is
    /// (Redis's `luaError`).
    pub const RAISE: bool = true;
    /// The next value is a message raised with the caller's position, as
    /// `luaL_error` does.
    pub const ERROR_WHERE: i64 = 2;
    /// The next two values are an argument number and a message, raised as
    /// `luaL_argerror` does (`bad argument #1 to 'encode' (...)`).
    pub const ARG_ERROR: i64 = 3;
    /// The next value is a table whose items `1..=n` (`n` the value after
    /// it) are the results: for more results than a Rust callback can push.
    pub const UNPACK: i64 = 4;
}

/// Whether trampoline `n` hands more than [`PACK_ARGS_OVER`] arguments to
/// its Rust function packed in a table (see [`packed_args`]): `redis.call`,
/// `redis.pcall` and the libraries' functions (`8..=28`, see [`IMPLS`]).
/// A script may pass up to 7999 values (`unpack` of a whole table), but a
/// Rust callback that has that many on its Lua stack cannot push anything
/// (Lua's C stack limit is 8000 values), and mlua holds each argument that
/// is a string or table in a slot of its auxiliary stack, 8000 in all:
/// `redis.call("DEL", unpack(keys))` or `bit.bor(unpack(flags))` must not
/// run out of either.
const fn packs_args(n: usize) -> bool {
    n < 2 || (n >= 8 && n <= 28)
}

/// More arguments than this go in a table (few calls have more; below it
/// the arguments are passed as they are, without a table per call).
const PACK_ARGS_OVER: c_int = 64;

/// The first argument of a packed call: a light userdata no script can
/// make, the address of this static.
static PACKED_ARGS: u8 = 0;

/// Replaces the `argc` arguments on the stack with `PACKED_ARGS`, a table
/// of them (`1..=argc`) and `argc`.
///
/// # Safety
/// `l` is a valid state with `argc` values on its stack.
unsafe fn pack_args(l: *mut lua_State, argc: c_int) {
    ffi::lua_createtable(l, argc, 0);
    ffi::lua_insert(l, 1);
    // `lua_rawseti` pops the top value: the last argument first.
    for i in (1..=argc).rev() {
        ffi::lua_rawseti(l, 1, i as _);
    }
    ffi::lua_pushlightuserdata(l, std::ptr::addr_of!(PACKED_ARGS) as *mut _);
    ffi::lua_insert(l, 1);
    ffi::lua_pushinteger(l, argc as _);
}

/// The table and count of a call's arguments when [`raising`] packed them.
pub fn packed_args(args: &[mlua::Value]) -> Option<(&mlua::Table, usize)> {
    match args {
        [mlua::Value::LightUserData(p), mlua::Value::Table(t), count]
            if std::ptr::eq(p.0 as *const u8, std::ptr::addr_of!(PACKED_ARGS)) =>
        {
            let n = match count {
                mlua::Value::Integer(n) => *n as f64,
                mlua::Value::Number(n) => *n,
                _ => 0.0,
            };
            Some((t, n as usize))
        }
        _ => None,
    }
}

/// A call's arguments as they were passed, unpacked if [`raising`] packed
/// them. For functions whose arguments are mostly numbers (which hold no
/// slot of mlua's auxiliary stack); many strings or tables can still run
/// out of slots, where Redis's C code would run out of Lua stack.
pub fn unpacked_args(mut args: mlua::MultiValue) -> mlua::Result<mlua::MultiValue> {
    let Some((t, n)) = packed_args(args.make_contiguous()) else {
        return Ok(args);
    };
    (1..=n).map(|i| t.raw_get::<mlua::Value>(i)).collect()
}

/// Calls the Rust function registered under `IMPLS[N]` with this call's
/// arguments and turns its first result into what a C function of Redis
/// would do (see [`outcome`]). Being a C function, it keeps the caller's
/// frame: Redis's error handler reports the script's line even for
/// `return redis.call(...)`.
///
/// # Safety
/// Called by Lua only, with a valid state.
pub unsafe extern "C-unwind" fn raising<const N: usize>(l: *mut lua_State) -> c_int {
    let mut argc = ffi::lua_gettop(l);
    if packs_args(N) && argc > PACK_ARGS_OVER {
        pack_args(l, argc);
        argc = 3;
    }
    ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, IMPLS[N].as_ptr());
    ffi::lua_insert(l, 1);
    ffi::lua_call(l, argc, ffi::LUA_MULTRET);
    if ffi::lua_isnumber(l, 1) != 0 {
        let code = ffi::lua_tonumber(l, 1) as i64;
        if code == outcome::UNPACK {
            let n = ffi::lua_tonumber(l, 3) as c_int;
            ffi::lua_settop(l, 2);
            ffi::lua_remove(l, 1);
            if ffi::lua_checkstack(l, n) == 0 {
                ffi::luaL_error(l, c"stack overflow (too many results)".as_ptr());
            }
            for i in 1..=n {
                ffi::lua_rawgeti(l, 1, i as _);
            }
            ffi::lua_remove(l, 1);
            return n;
        }
        if code == outcome::ARG_ERROR {
            let narg = ffi::lua_tonumber(l, 2) as c_int;
            ffi::luaL_argerror(l, narg, ffi::lua_tolstring(l, 3, std::ptr::null_mut()));
        }
        ffi::luaL_where(l, 1);
        ffi::lua_pushvalue(l, 2);
        ffi::lua_concat(l, 2);
        ffi::lua_error(l);
    }
    if ffi::lua_toboolean(l, 1) != 0 {
        ffi::lua_settop(l, 2);
        ffi::lua_error(l);
    }
    ffi::lua_remove(l, 1);
    ffi::lua_gettop(l)
}

/// `luaRedisPcall`, Redis's `pcall`: an error that is a table with a string
/// `err` field is returned as that string (Redis 6's error objects were
/// strings).
///
/// # Safety
/// Called by Lua only, with a valid state.
pub unsafe extern "C-unwind" fn pcall(l: *mut lua_State) -> c_int {
    let argc = ffi::lua_gettop(l);
    ffi::luaL_checkany(l, 1);
    ffi::lua_pushboolean(l, 1);
    ffi::lua_insert(l, 1);
    if ffi::lua_pcall(l, argc - 1, ffi::LUA_MULTRET, 0) != 0 {
        ffi::lua_remove(l, 1);
        if ffi::lua_istable(l, -1) != 0 {
            ffi::lua_getfield(l, -1, c"err".as_ptr());
            if ffi::lua_isstring(l, -1) != 0 {
                ffi::lua_replace(l, -2);
            }
        }
        ffi::lua_pushboolean(l, 0);
        ffi::lua_insert(l, 1);
    }
    ffi::lua_gettop(l)
}

/// `redis_math_random`: Lua's `math.random` over Redis's PRNG.
///
/// # Safety
/// Called by Lua only, with a valid state.
pub unsafe extern "C-unwind" fn math_random(l: *mut lua_State) -> c_int {
    let r = (rand48::next() % rand48::LRAND48_MAX) as f64 / rand48::LRAND48_MAX as f64;
    match ffi::lua_gettop(l) {
        0 => ffi::lua_pushnumber(l, r),
        1 => {
            let u = ffi::luaL_checkinteger(l, 1) as c_int;
            if u < 1 {
                ffi::luaL_argerror(l, 1, c"interval is empty".as_ptr());
            }
            ffi::lua_pushnumber(l, (r * u as f64).floor() + 1.0);
        }
        2 => {
            let lo = ffi::luaL_checkinteger(l, 1) as c_int;
            let up = ffi::luaL_checkinteger(l, 2) as c_int;
            if lo > up {
                ffi::luaL_argerror(l, 2, c"interval is empty".as_ptr());
            }
            let span = up as f64 - lo as f64 + 1.0;
            ffi::lua_pushnumber(l, (r * span).floor() + lo as f64);
        }
        _ => {
            ffi::luaL_error(l, c"wrong number of arguments".as_ptr());
        }
    }
    1
}

/// `redis_math_randomseed`.
///
/// # Safety
/// Called by Lua only, with a valid state.
pub unsafe extern "C-unwind" fn math_randomseed(l: *mut lua_State) -> c_int {
    rand48::seed(ffi::luaL_checkinteger(l, 1) as c_int);
    0
}

/// Registry key of Lua's own `loadstring`, which [`loadstring`] calls.
pub const LUA_LOADSTRING: &CStr = c"amber.loadstring";

/// `LUA_IDSIZE`: the longest chunk name in a message, with its NUL.
const LUA_IDSIZE: usize = 60;

/// `loadstring` as in Redis's Lua, which cannot load precompiled code:
/// its parser reads every chunk as text (Redis removed `luaU_undump`), so
/// a binary chunk fails as text starting with `\27` does. Other chunks go
/// to Lua's own `loadstring`.
///
/// # Safety
/// Called by Lua only, with a valid state.
pub unsafe extern "C-unwind" fn loadstring(l: *mut lua_State) -> c_int {
    let mut len: usize = 0;
    let chunk = ffi::luaL_checklstring(l, 1, &mut len);
    let name = ffi::luaL_optlstring(l, 2, chunk, std::ptr::null_mut());
    if len == 0 || *chunk as u8 != ffi::LUA_SIGNATURE[0] {
        let argc = ffi::lua_gettop(l);
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, LUA_LOADSTRING.as_ptr());
        ffi::lua_insert(l, 1);
        ffi::lua_call(l, argc, ffi::LUA_MULTRET);
        return ffi::lua_gettop(l);
    }
    let mut id = [0u8; LUA_IDSIZE];
    let id_len = chunk_id(CStr::from_ptr(name).to_bytes(), &mut id);
    ffi::lua_pushnil(l);
    ffi::lua_pushlstring(l, id.as_ptr().cast(), id_len);
    ffi::lua_pushstring(l, c":1: unexpected symbol near 'char(27)'".as_ptr());
    ffi::lua_concat(l, 2);
    2
}

/// `luaO_chunkid`: how a message names chunk `source`, written into `out`;
/// returns its length.
fn chunk_id(source: &[u8], out: &mut [u8; LUA_IDSIZE]) -> usize {
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        for &b in bytes {
            if let Some(slot) = out.get_mut(len) {
                *slot = b;
                len += 1;
            }
        }
    };
    match source.split_first() {
        Some((b'=', rest)) => put(rest.get(..LUA_IDSIZE - 1).unwrap_or(rest)),
        Some((b'@', file)) => {
            let room = LUA_IDSIZE - " '...' ".len() - 1;
            if file.len() > room {
                put(b"...");
                put(file.get(file.len() - room..).unwrap_or(file));
            } else {
                put(file);
            }
        }
        _ => {
            let room = LUA_IDSIZE - " [string \"...\"] ".len() - 1;
            let line = source
                .iter()
                .position(|&b| b == b'\n' || b == b'\r')
                .unwrap_or(source.len());
            put(b"[string \"");
            if line.min(room) < source.len() {
                put(source.get(..line.min(room)).unwrap_or(source));
                put(b"...");
            } else {
                put(source);
            }
            put(b"\"]");
        }
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(source: &[u8]) -> Vec<u8> {
        let mut out = [0u8; LUA_IDSIZE];
        let n = chunk_id(source, &mut out);
        out.get(..n).unwrap_or_default().to_vec()
    }

    #[test]
    fn chunk_ids_are_luas() {
        assert_eq!(id(b"\x1bLuaQ"), b"[string \"\x1bLuaQ\"]");
        assert_eq!(id(b"return 1\nreturn 2"), b"[string \"return 1...\"]");
        let long = [b'x'; 50];
        let mut expected = b"[string \"".to_vec();
        expected.extend_from_slice(&[b'x'; 43]);
        expected.extend_from_slice(b"...\"]");
        assert_eq!(id(&long), expected);
        assert_eq!(id(b"=name"), b"name");
        assert_eq!(id(b"@file.lua"), b"file.lua");
    }
}
