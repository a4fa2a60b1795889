//! `cmsgpack`: lua-cmsgpack 0.4.0 as Redis bundles it (`lua_cmsgpack.c`).
//!
//! Packing: integral numbers in the smallest integer encoding, others as
//! a float when exact, else a double; strings as fixstr/str8/16/32; a table
//! whose keys are exactly 1..n is an array, any other a map; tables nested
//! deeper than 16 become nil. Unpacking returns every value of the stream.

use mlua::{Lua, MultiValue, Table, Value};

use super::{arg_error, error, function, number, ok, type_error};
use crate::cmd::scripting::convert::lua_number_to_i64;

/// Trampoline slots (see `sandbox::IMPLS`).
const PACK: usize = 10;
const UNPACK: usize = 11;
const UNPACK_ONE: usize = 12;
const UNPACK_LIMIT: usize = 13;

/// `LUACMSGPACK_MAX_NESTING`.
const MAX_NESTING: usize = 16;

/// The `cmsgpack` table.
pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", function(lua, PACK, pack)?)?;
    t.raw_set(
        "unpack",
        function(lua, UNPACK, |lua, args| unpack_full(lua, &args, 0, 0))?,
    )?;
    t.raw_set("unpack_one", function(lua, UNPACK_ONE, unpack_one)?)?;
    t.raw_set("unpack_limit", function(lua, UNPACK_LIMIT, unpack_limit)?)?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}

fn pack(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    if args.is_empty() {
        return arg_error(lua, 0, "MessagePack pack needs input.");
    }
    // `lua_checkstack(L, nargs)` with the `nargs` arguments on the stack.
    if 2 * args.len() > LUA_MAX_STACK {
        return arg_error(lua, 0, "Too many arguments for MessagePack pack.");
    }
    let mut out = Vec::new();
    for v in args.iter() {
        encode(&mut out, v, 0);
    }
    Ok(ok([Value::String(lua.create_string(&out)?)]))
}

fn encode(out: &mut Vec<u8>, v: &Value, level: usize) {
    match v {
        Value::String(s) => encode_bytes(out, &s.as_bytes()),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(n) => encode_int(out, *n),
        Value::Number(n) => {
            let i = lua_number_to_i64(*n);
            if !n.is_nan() && i as f64 == *n {
                encode_int(out, i);
            } else {
                encode_double(out, *n);
            }
        }
        Value::Table(t) if level < MAX_NESTING => encode_table(out, t, level),
        _ => out.push(0xc0),
    }
}

fn encode_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_double(out: &mut Vec<u8>, d: f64) {
    let f = d as f32;
    if d == f64::from(f) {
        out.push(0xca);
        out.extend_from_slice(&f.to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&d.to_be_bytes());
    }
}

fn encode_bytes(out: &mut Vec<u8>, s: &[u8]) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

/// `table_is_an_array`: every key a positive integer and the largest one
/// the number of keys.
fn is_array(t: &Table) -> bool {
    let (mut count, mut max) = (0i64, 0i64);
    for pair in t.pairs::<Value, Value>() {
        let Ok((k, _)) = pair else { return false };
        let n = match k {
            Value::Integer(n) => n as f64,
            Value::Number(n) => n,
            _ => return false,
        };
        // `IS_INT_EQUIVALENT`: the key is an `int`.
        if n <= 0.0 || n > f64::from(i32::MAX) || n.fract() != 0.0 {
            return false;
        }
        max = max.max(n as i64);
        count += 1;
    }
    max == count
}

fn encode_table(out: &mut Vec<u8>, t: &Table, level: usize) {
    if is_array(t) {
        let len = t.raw_len();
        encode_header(out, len, 0x90, 0xdc, 0xdd);
        for j in 1..=len {
            let v: Value = t.get(j).unwrap_or(Value::Nil);
            encode(out, &v, level + 1);
        }
    } else {
        // `mp_encode_lua_table_as_map`: one pass to count, one to encode.
        // The pairs are never collected: every Lua value held from Rust
        // takes a slot of mlua's auxiliary stack (at most 8000), so a map
        // is encoded with one key and value held at a time.
        let len = t.pairs::<Value, Value>().count();
        encode_header(out, len, 0x80, 0xde, 0xdf);
        for (k, v) in t.pairs::<Value, Value>().flatten() {
            encode(out, &k, level + 1);
            encode(out, &v, level + 1);
        }
    }
}

fn encode_header(out: &mut Vec<u8>, n: usize, fix: u8, tag16: u8, tag32: u8) {
    if n <= 15 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(tag16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(tag32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// `luaL_optinteger` / `luaL_checkinteger` for argument `i` (0-based).
fn int_arg(
    lua: &Lua,
    args: &MultiValue,
    i: usize,
    default: Option<i64>,
) -> Result<i64, mlua::Result<MultiValue>> {
    let v = args.get(i).cloned().unwrap_or(Value::Nil);
    match (&v, default) {
        (Value::Nil, Some(d)) => Ok(d),
        _ => number(&v)
            .map(|n| n as i64)
            .ok_or_else(|| type_error(lua, i as i64 + 1, "number", &v)),
    }
}

fn unpack_one(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let offset = match int_arg(lua, &args, 1, Some(0)) {
        Ok(o) => o,
        Err(e) => return e,
    };
    unpack_full(lua, &args, 1, offset as i32)
}

fn unpack_limit(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let limit = match int_arg(lua, &args, 1, None) {
        Ok(l) => l,
        Err(e) => return e,
    };
    let offset = match int_arg(lua, &args, 2, Some(0)) {
        Ok(o) => o,
        Err(e) => return e,
    };
    unpack_full(lua, &args, limit as i32, offset as i32)
}

/// Why decoding stopped (`MP_CUR_ERROR_*`).
enum DecodeError {
    Eof,
    BadFormat,
    TooDeep,
    Lua(mlua::Error),
}

/// `mp_unpack_full`.
fn unpack_full(lua: &Lua, args: &MultiValue, limit: i32, offset: i32) -> mlua::Result<MultiValue> {
    let data = match args.front() {
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        Some(v @ (Value::Integer(_) | Value::Number(_))) => number(v)
            .map(crate::cmd::scripting::convert::lua_number_text)
            .unwrap_or_default()
            .into_bytes(),
        other => return type_error(lua, 1, "string", other.unwrap_or(&Value::Nil)),
    };
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        return error(
            lua,
            &format!(
                "Invalid request to unpack with offset of {offset} and limit of {}.",
                data.len() as i32
            ),
        );
    }
    if offset as usize > data.len() {
        return error(
            lua,
            &format!(
                "Start offset {offset} greater than input length {}.",
                data.len() as i32
            ),
        );
    }
    let limit = if decode_all { i32::MAX } else { limit };
    // Results go straight into a table (few Lua references held at once);
    // the trampoline returns its items. Slot 1 is the next offset when
    // one is returned.
    let results = lua.create_table()?;
    let first = if decode_all { 1 } else { 2 };
    let mut pos = offset as usize;
    let mut count: usize = 0;
    while pos < data.len() && (count as i64) < i64::from(limit) {
        // `luaL_checkstack` for one more result, beside the argument.
        if count + 1 >= LUA_MAX_STACK {
            return error(
                lua,
                "stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)",
            );
        }
        match decode(lua, &data, &mut pos, 0) {
            Ok(v) => results.raw_set(first + count, v)?,
            Err(DecodeError::Eof) => return error(lua, "Missing bytes in input."),
            Err(DecodeError::BadFormat) => return error(lua, "Bad data format in input."),
            Err(DecodeError::TooDeep) => {
                return error(lua, "stack overflow (in function mp_decode_to_lua_array)")
            }
            Err(DecodeError::Lua(e)) => return Err(e),
        }
        count += 1;
    }
    if !decode_all {
        let next = if pos >= data.len() { -1.0 } else { pos as f64 };
        results.raw_set(1, next)?;
    }
    Ok(MultiValue::from_iter([
        Value::Integer(crate::cmd::scripting::sandbox::outcome::UNPACK),
        Value::Table(results),
        Value::Integer((count + first - 1) as i64),
    ]))
}

fn take<'d>(data: &'d [u8], pos: &mut usize, n: usize) -> Result<&'d [u8], DecodeError> {
    let bytes = data
        .get(*pos..pos.saturating_add(n))
        .ok_or(DecodeError::Eof)?;
    *pos += n;
    Ok(bytes)
}

fn be(data: &[u8], pos: &mut usize, n: usize) -> Result<u64, DecodeError> {
    Ok(take(data, pos, n)?
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// `LUAI_MAXCSTACK`: the most values a C function can have on its stack.
const LUA_MAX_STACK: usize = 8000;

/// Deepest nesting decoded (Redis stops where Lua's stack cannot grow,
/// somewhat deeper).
const MAX_DECODE_DEPTH: usize = 1000;

/// `mp_decode_to_lua_type`.
fn decode(lua: &Lua, data: &[u8], pos: &mut usize, depth: usize) -> Result<Value, DecodeError> {
    if depth > MAX_DECODE_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    crate::cmd::scripting::deep(|| decode_nested(lua, data, pos, depth))
}

fn decode_nested(
    lua: &Lua,
    data: &[u8],
    pos: &mut usize,
    depth: usize,
) -> Result<Value, DecodeError> {
    let lua_err = DecodeError::Lua;
    let tag = *take(data, pos, 1)?.first().ok_or(DecodeError::Eof)?;
    let num = |n: f64| Ok(Value::Number(n));
    match tag {
        0xcc => num(be(data, pos, 1)? as f64),
        0xcd => num(be(data, pos, 2)? as f64),
        0xce => num(be(data, pos, 4)? as f64),
        0xcf => num(be(data, pos, 8)? as f64),
        0xd0 => num(f64::from(be(data, pos, 1)? as u8 as i8)),
        0xd1 => num(f64::from(be(data, pos, 2)? as u16 as i16)),
        0xd2 => num(f64::from(be(data, pos, 4)? as u32 as i32)),
        0xd3 => num(be(data, pos, 8)? as i64 as f64),
        0xc0 => Ok(Value::Nil),
        0xc3 => Ok(Value::Boolean(true)),
        0xc2 => Ok(Value::Boolean(false)),
        0xca => num(f64::from(f32::from_bits(be(data, pos, 4)? as u32))),
        0xcb => num(f64::from_bits(be(data, pos, 8)?)),
        0xc4 | 0xd9 => string(lua, data, pos, 1),
        0xc5 | 0xda => string(lua, data, pos, 2),
        0xc6 | 0xdb => string(lua, data, pos, 4),
        0xdc => {
            let n = be(data, pos, 2)?;
            array(lua, data, pos, n, depth)
        }
        0xdd => {
            let n = be(data, pos, 4)?;
            array(lua, data, pos, n, depth)
        }
        0xde => {
            let n = be(data, pos, 2)?;
            map(lua, data, pos, n, depth)
        }
        0xdf => {
            let n = be(data, pos, 4)?;
            map(lua, data, pos, n, depth)
        }
        t if t & 0x80 == 0 => num(f64::from(t)),
        t if t & 0xe0 == 0xe0 => num(f64::from(t as i8)),
        t if t & 0xe0 == 0xa0 => {
            let bytes = take(data, pos, usize::from(t & 0x1f))?;
            Ok(Value::String(lua.create_string(bytes).map_err(lua_err)?))
        }
        t if t & 0xf0 == 0x90 => array(lua, data, pos, u64::from(t & 0x0f), depth),
        t if t & 0xf0 == 0x80 => map(lua, data, pos, u64::from(t & 0x0f), depth),
        _ => Err(DecodeError::BadFormat),
    }
}

fn string(lua: &Lua, data: &[u8], pos: &mut usize, len_bytes: usize) -> Result<Value, DecodeError> {
    let len = be(data, pos, len_bytes)? as usize;
    let bytes = take(data, pos, len)?;
    Ok(Value::String(
        lua.create_string(bytes).map_err(DecodeError::Lua)?,
    ))
}

fn array(
    lua: &Lua,
    data: &[u8],
    pos: &mut usize,
    n: u64,
    depth: usize,
) -> Result<Value, DecodeError> {
    let t = lua.create_table().map_err(DecodeError::Lua)?;
    for i in 1..=n {
        let v = decode(lua, data, pos, depth + 1)?;
        t.raw_set(i, v).map_err(DecodeError::Lua)?;
    }
    Ok(Value::Table(t))
}

fn map(
    lua: &Lua,
    data: &[u8],
    pos: &mut usize,
    n: u64,
    depth: usize,
) -> Result<Value, DecodeError> {
    let t = lua.create_table().map_err(DecodeError::Lua)?;
    for _ in 0..n {
        let k = decode(lua, data, pos, depth + 1)?;
        let v = decode(lua, data, pos, depth + 1)?;
        // A nil or NaN key cannot be stored (Lua would raise an error).
        let storable = match &k {
            Value::Nil => false,
            Value::Number(n) => !n.is_nan(),
            _ => true,
        };
        if storable {
            t.raw_set(k, v).map_err(DecodeError::Lua)?;
        }
    }
    Ok(Value::Table(t))
}
