//! How the Lua debugger shows things (`eval.c`'s `ldbCatStackValue` and
//! `ldbRedisProtocolToHuman`): Lua values on the stack, and command
//! replies, in one line of text each.

use std::ffi::c_int;

use mlua::ffi::{self, lua_State};

use super::convert::format_g;
use crate::monitor::quote_into;

/// Nesting shown before giving up (`LDB_MAX_VALUES_DEPTH`, half of
/// `LUA_MINSTACK`).
const MAX_DEPTH: usize = 10;

/// Appends the value at `idx` of `l`'s stack to `out` (`ldbCatStackValue`).
///
/// # Safety
/// `l` is a valid state and `idx` a valid index on it.
pub unsafe fn cat_value(out: &mut Vec<u8>, l: *mut lua_State, idx: c_int) {
    let idx = if idx < 0 && idx > ffi::LUA_REGISTRYINDEX {
        ffi::lua_gettop(l) + idx + 1
    } else {
        idx
    };
    cat_value_rec(out, l, idx, 0);
}

/// `idx` is absolute here: tables are walked by pushing on the stack.
unsafe fn cat_value_rec(out: &mut Vec<u8>, l: *mut lua_State, idx: c_int, level: usize) {
    if level == MAX_DEPTH {
        out.extend_from_slice(b"<max recursion level reached! Nested table?>");
        return;
    }
    let level = level + 1;
    match ffi::lua_type(l, idx) {
        ffi::LUA_TSTRING => {
            let mut len = 0;
            let p = ffi::lua_tolstring(l, idx, &mut len);
            let bytes = if p.is_null() {
                &[][..]
            } else {
                // SAFETY: Lua's string of `len` bytes, alive while on the stack.
                std::slice::from_raw_parts(p as *const u8, len)
            };
            quote_into(out, bytes);
        }
        ffi::LUA_TBOOLEAN => {
            let text: &[u8] = if ffi::lua_toboolean(l, idx) != 0 {
                b"true"
            } else {
                b"false"
            };
            out.extend_from_slice(text);
        }
        ffi::LUA_TNUMBER => {
            out.extend_from_slice(format_g(ffi::lua_tonumber(l, idx), 6).as_bytes())
        }
        ffi::LUA_TNIL => out.extend_from_slice(b"nil"),
        ffi::LUA_TTABLE => {
            // Both forms are built; which one is shown is known at the end.
            let (mut as_array, mut as_map) = (Vec::new(), Vec::new());
            let mut is_array = true;
            let mut expected = 1.0;
            ffi::lua_pushnil(l);
            while ffi::lua_next(l, idx) != 0 {
                let top = ffi::lua_gettop(l);
                if is_array
                    && (ffi::lua_type(l, top - 1) != ffi::LUA_TNUMBER
                        || ffi::lua_tonumber(l, top - 1) != expected)
                {
                    is_array = false;
                }
                cat_value_rec(&mut as_array, l, top, level);
                as_array.extend_from_slice(b"; ");
                as_map.push(b'[');
                cat_value_rec(&mut as_map, l, top - 1, level);
                as_map.extend_from_slice(b"]=");
                cat_value_rec(&mut as_map, l, top, level);
                as_map.extend_from_slice(b"; ");
                ffi::lua_pop(l, 1);
                expected += 1.0;
            }
            let shown = if is_array { as_array } else { as_map };
            out.push(b'{');
            out.extend_from_slice(
                shown
                    .get(..shown.len().saturating_sub(2))
                    .unwrap_or_default(),
            );
            out.push(b'}');
        }
        t @ (ffi::LUA_TFUNCTION
        | ffi::LUA_TUSERDATA
        | ffi::LUA_TTHREAD
        | ffi::LUA_TLIGHTUSERDATA) => {
            let name = match t {
                ffi::LUA_TFUNCTION => "function",
                ffi::LUA_TUSERDATA => "userdata",
                ffi::LUA_TTHREAD => "thread",
                _ => "light-userdata",
            };
            let p = ffi::lua_topointer(l, idx);
            out.extend_from_slice(format!("\"{name}@{p:p}\"").as_bytes());
        }
        _ => out.extend_from_slice(b"\"<unknown-lua-type>\""),
    }
}

/// Appends the reply starting at `pos` of `buf` in human form
/// (`ldbRedisProtocolToHuman`); returns where the next reply starts, or
/// `None` when `buf` ends first.
pub fn reply_to_human(out: &mut Vec<u8>, buf: &[u8], pos: usize) -> Option<usize> {
    let kind = *buf.get(pos)?;
    let rest = buf.get(pos + 1..)?;
    let eol = rest.windows(2).position(|w| w == b"\r\n")?;
    let head = rest.get(..eol)?;
    let next = pos + 1 + eol + 2;
    let count = || std::str::from_utf8(head).ok()?.parse::<i64>().ok();
    let items = |out: &mut Vec<u8>, n: i64, mut at: usize, pairs: bool| -> Option<usize> {
        for j in 0..n {
            at = reply_to_human(out, buf, at)?;
            if pairs {
                out.extend_from_slice(b" => ");
                at = reply_to_human(out, buf, at)?;
            }
            if j != n - 1 {
                out.push(b',');
            }
        }
        Some(at)
    };
    match kind {
        b':' => {
            out.extend_from_slice(head);
            Some(next)
        }
        b'$' => {
            let n = count()?;
            if n < 0 {
                out.extend_from_slice(b"NULL");
                return Some(next);
            }
            let body = buf.get(next..next + n as usize)?;
            quote_into(out, body);
            Some(next + n as usize + 2)
        }
        b'+' | b'-' => {
            quote_into(out, buf.get(pos..pos + 1 + eol)?);
            Some(next)
        }
        b'*' => {
            let n = count()?;
            if n < 0 {
                out.extend_from_slice(b"NULL");
                return Some(next);
            }
            out.push(b'[');
            let at = items(out, n, next, false)?;
            out.push(b']');
            Some(at)
        }
        b'~' => {
            out.extend_from_slice(b"~(");
            let at = items(out, count()?, next, false)?;
            out.push(b')');
            Some(at)
        }
        b'%' => {
            out.push(b'{');
            let at = items(out, count()?, next, true)?;
            out.push(b'}');
            Some(at)
        }
        b'_' => {
            out.extend_from_slice(b"(null)");
            Some(next)
        }
        b'#' => {
            let text: &[u8] = if head.first() == Some(&b't') {
                b"#true"
            } else {
                b"#false"
            };
            out.extend_from_slice(text);
            Some(next)
        }
        b',' => {
            out.extend_from_slice(b"(double) ");
            out.extend_from_slice(head);
            Some(next)
        }
        // Redis shows nothing of other types (big numbers, verbatim
        // strings, attributes) and does not move on.
        _ => Some(pos),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn human(reply: &[u8]) -> String {
        let mut out = Vec::new();
        reply_to_human(&mut out, reply, 0);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn replies_read_as_redis_shows_them() {
        assert_eq!(human(b"+OK\r\n"), "\"+OK\"");
        assert_eq!(human(b"-ERR x\r\n"), "\"-ERR x\"");
        assert_eq!(human(b"$-1\r\n"), "NULL");
        assert_eq!(human(b"*2\r\n$1\r\na\r\n:3\r\n"), "[\"a\",3]");
        assert_eq!(human(b"%1\r\n+a\r\n#t\r\n"), "{\"+a\" => #true}");
        assert_eq!(human(b",1.5\r\n"), "(double) 1.5");
        // A truncated reply stops without panicking.
        assert_eq!(human(b"*2\r\n$5\r\nab"), "[");
    }
}
