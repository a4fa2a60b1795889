//! The Lua libraries Redis loads besides Lua's own: `cjson`, `cmsgpack`,
//! `bit` and `struct`.
//!
//! Redis bundles C libraries for these (lua-cjson, lua-cmsgpack, LuaBitOp,
//! Roberto Ierusalimschy's struct); no crate reproduces their exact output
//! and error texts, so they are written here against their behaviour.
//! Each function is a Rust function behind one of
//! [`super::sandbox::TRAMPOLINES`], so its errors are raised as the C
//! library raises them (`luaL_error`, `luaL_argerror`).

pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod struct_lib;

use mlua::{Lua, MultiValue, Table, Value};

use super::lua::set_impl;
use super::sandbox::{outcome, TRAMPOLINES};

/// Adds the libraries to the globals of a new interpreter.
pub fn register(lua: &Lua, globals: &Table) -> mlua::Result<()> {
    globals.raw_set("cjson", cjson::open(lua)?)?;
    globals.raw_set("cmsgpack", cmsgpack::open(lua)?)?;
    globals.raw_set("bit", bit::open(lua)?)?;
    globals.raw_set("struct", struct_lib::open(lua)?)?;
    Ok(())
}

/// A library function: the C function of trampoline `index`, whose Rust
/// side is `f`.
pub fn function(
    lua: &Lua,
    index: usize,
    f: impl Fn(&Lua, MultiValue) -> mlua::Result<MultiValue> + Send + 'static,
) -> mlua::Result<mlua::Function> {
    let f = move |lua: &Lua, args: MultiValue| f(lua, super::sandbox::unpacked_args(args)?);
    set_impl(lua, index, lua.create_function(f)?)?;
    let trampoline = TRAMPOLINES
        .get(index)
        .copied()
        .ok_or_else(|| mlua::Error::runtime("no such trampoline"))?;
    // SAFETY: the trampolines are Lua C functions for this state's API.
    unsafe { lua.create_c_function(trampoline) }
}

/// Plain results.
pub fn ok(values: impl IntoIterator<Item = Value>) -> MultiValue {
    std::iter::once(Value::Boolean(false))
        .chain(values)
        .collect()
}

/// `luaL_error(L, "%s", msg)`: raised with the caller's position.
pub fn error(lua: &Lua, msg: &str) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_iter([
        Value::Integer(outcome::ERROR_WHERE),
        Value::String(lua.create_string(msg)?),
    ]))
}

/// `luaL_argerror(L, narg, msg)`.
pub fn arg_error(lua: &Lua, narg: i64, msg: &str) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_iter([
        Value::Integer(outcome::ARG_ERROR),
        Value::Integer(narg),
        Value::String(lua.create_string(msg)?),
    ]))
}

/// `lua_typename(L, lua_type(L, i))`.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::LightUserData(_) | Value::UserData(_) => "userdata",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

/// `luaL_typerror`'s message for argument `narg` of type `expected`.
pub fn type_error(lua: &Lua, narg: i64, expected: &str, got: &Value) -> mlua::Result<MultiValue> {
    let got = match got {
        Value::Nil => "no value",
        other => type_name(other),
    };
    arg_error(lua, narg, &format!("{expected} expected, got {got}"))
}

/// A Lua number as `lua_tonumber` reads it.
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::Integer(n) => Some(*n as f64),
        Value::String(s) => {
            let text = String::from_utf8_lossy(&s.as_bytes()).into_owned();
            let text = text.trim();
            let (n, used, _) = crate::cmd::args::strtod(text.as_bytes());
            (used > 0 && used == text.len()).then_some(n)
        }
        _ => None,
    }
}
