//! `struct`: Roberto Ierusalimschy's struct library (0.2) as Redis bundles
//! it (`lua_struct.c`), on x86-64 Linux: `int` 4 bytes, `long` and
//! `size_t` 8, native byte order little-endian, maximum alignment 8.

use mlua::{Lua, MultiValue, Table, Value};

use super::{arg_error, error, function, number, ok, type_error, type_name};
use crate::cmd::scripting::convert::lua_number_to_i64;
use crate::cmd::scripting::sandbox::outcome;

/// Trampoline slots (see `sandbox::IMPLS`).
const PACK: usize = 14;
const UNPACK: usize = 15;
const SIZE: usize = 16;

/// `MAXINTSIZE`.
const MAX_INT_SIZE: usize = 32;
/// `MAXALIGN` on x86-64.
const MAX_ALIGN: usize = 8;
/// `LUAI_MAXCSTACK`: the most values a C function can have on its stack.
const LUA_MAX_STACK: usize = 8000;

/// The `struct` table.
pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", function(lua, PACK, pack)?)?;
    t.raw_set("unpack", function(lua, UNPACK, unpack)?)?;
    t.raw_set("size", function(lua, SIZE, size)?)?;
    Ok(t)
}

/// A Lua error the C library would raise, ready to return.
type Raise = mlua::Result<MultiValue>;

/// The format being read (`Header` and the `fmt` cursor).
struct Format<'f> {
    fmt: &'f [u8],
    pos: usize,
    little: bool,
    align: usize,
}

impl<'f> Format<'f> {
    fn new(fmt: &'f [u8]) -> Self {
        // A C string: it ends at the first NUL.
        let end = fmt.iter().position(|&c| c == 0).unwrap_or(fmt.len());
        Format {
            fmt: fmt.get(..end).unwrap_or_default(),
            pos: 0,
            little: true,
            align: 1,
        }
    }

    fn next_opt(&mut self) -> Option<u8> {
        let c = *self.fmt.get(self.pos)?;
        self.pos += 1;
        Some(c)
    }

    /// `getnum`.
    fn number(&mut self, lua: &Lua, default: usize) -> Result<usize, Raise> {
        if !self.fmt.get(self.pos).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut a: i64 = 0;
        while let Some(d) = self.fmt.get(self.pos).filter(|c| c.is_ascii_digit()) {
            let d = i64::from(d - b'0');
            if a > i64::from(i32::MAX) / 10 || a * 10 > i64::from(i32::MAX) - d {
                return Err(error(lua, "integral size overflow"));
            }
            a = a * 10 + d;
            self.pos += 1;
        }
        Ok(a as usize)
    }

    /// `optsize`.
    fn size(&mut self, lua: &Lua, opt: u8) -> Result<usize, Raise> {
        Ok(match opt {
            b'B' | b'b' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' | b'd' => 8,
            b'f' => 4,
            b'x' => 1,
            b'c' => self.number(lua, 1)?,
            b'i' | b'I' => {
                let sz = self.number(lua, 4)?;
                if sz > MAX_INT_SIZE {
                    return Err(error(
                        lua,
                        &format!("integral size {sz} is larger than limit of {MAX_INT_SIZE}"),
                    ));
                }
                sz
            }
            _ => 0,
        })
    }

    /// `gettoalign`.
    fn to_align(&self, len: usize, opt: u8, size: usize) -> usize {
        if size == 0 || opt == b'c' {
            return 0;
        }
        let size = size.min(self.align);
        (size - (len & (size - 1))) & (size - 1)
    }

    /// `controloptions`.
    fn control(&mut self, lua: &Lua, opt: u8) -> Result<(), Raise> {
        match opt {
            b' ' => {}
            b'>' => self.little = false,
            b'<' => self.little = true,
            b'!' => {
                let a = self.number(lua, MAX_ALIGN)?;
                if a == 0 || a & (a - 1) != 0 {
                    return Err(error(lua, &format!("alignment {a} is not a power of 2")));
                }
                self.align = a;
            }
            other => {
                return Err(arg_error(
                    lua,
                    1,
                    &format!("invalid format option '{}'", other as char),
                ))
            }
        }
        Ok(())
    }
}

fn is_integer_opt(opt: u8) -> bool {
    matches!(
        opt,
        b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I'
    )
}

/// `luaL_checkstring` of argument `i` (0-based).
fn string_arg(lua: &Lua, args: &MultiValue, i: usize) -> Result<Vec<u8>, Raise> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(v @ (Value::Integer(_) | Value::Number(_))) => Ok(number(v)
            .map(crate::cmd::scripting::convert::lua_number_text)
            .unwrap_or_default()
            .into_bytes()),
        Some(other) => Err(type_error(lua, i as i64 + 1, "string", other)),
        None => Err(type_error(lua, i as i64 + 1, "string", &Value::Nil)),
    }
}

/// `luaL_checknumber` in `pack`, whose stack has a nil just past its
/// arguments (so the first missing one is "nil", not "no value").
fn pack_number(lua: &Lua, args: &MultiValue, i: usize) -> Result<f64, Raise> {
    match args.get(i) {
        Some(v) => number(v).ok_or_else(|| type_error(lua, i as i64 + 1, "number", v)),
        None if i == args.len() => Err(arg_error(lua, i as i64 + 1, "number expected, got nil")),
        None => Err(type_error(lua, i as i64 + 1, "number", &Value::Nil)),
    }
}

fn pack(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    match pack_bytes(lua, &args) {
        Ok(out) => Ok(ok([Value::String(lua.create_string(&out)?)])),
        Err(raise) => raise,
    }
}

fn pack_bytes(lua: &Lua, args: &MultiValue) -> Result<Vec<u8>, Raise> {
    let fmt = string_arg(lua, args, 0)?;
    let mut f = Format::new(&fmt);
    let mut arg = 1;
    let mut out = Vec::new();
    while let Some(opt) = f.next_opt() {
        let mut size = f.size(lua, opt)?;
        let pad = f.to_align(out.len(), opt, size);
        out.resize(out.len() + pad, 0);
        match opt {
            o if is_integer_opt(o) => {
                let n = pack_number(lua, args, arg)?;
                arg += 1;
                let mut value = if n < 0.0 {
                    lua_number_to_i64(n) as u64
                } else {
                    unsigned_of(n)
                };
                let mut buf = vec![0u8; size];
                for i in 0..size {
                    let at = if f.little { i } else { size - 1 - i };
                    if let Some(b) = buf.get_mut(at) {
                        *b = (value & 0xff) as u8;
                    }
                    value >>= 8;
                }
                out.extend_from_slice(&buf);
            }
            b'x' => out.push(0),
            b'f' => {
                let v = pack_number(lua, args, arg)? as f32;
                arg += 1;
                out.extend_from_slice(&if f.little {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                });
            }
            b'd' => {
                let v = pack_number(lua, args, arg)?;
                arg += 1;
                out.extend_from_slice(&if f.little {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                });
            }
            b'c' | b's' => {
                let s = string_arg(lua, args, arg)?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    return Err(arg_error(lua, arg as i64 + 1, "string too short"));
                }
                out.extend_from_slice(s.get(..size).unwrap_or_default());
                if opt == b's' {
                    out.push(0);
                }
            }
            other => f.control(lua, other)?,
        }
    }
    Ok(out)
}

/// C's `(unsigned long long)` of a non-negative double (saturating past
/// the range, where C is undefined).
fn unsigned_of(n: f64) -> u64 {
    n as u64
}

/// A number as `getinteger` builds it.
fn get_integer(bytes: &[u8], little: bool, signed: bool) -> f64 {
    let mut l: u64 = 0;
    let size = bytes.len();
    for i in 0..size {
        let at = if little { size - 1 - i } else { i };
        l = (l << 8) | u64::from(bytes.get(at).copied().unwrap_or(0));
    }
    if !signed {
        return l as f64;
    }
    let shift = (size * 8).saturating_sub(1);
    let mask = if shift >= 64 { 0 } else { u64::MAX << shift };
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

fn unpack(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let results = lua.create_table()?;
    let n = match unpack_into(lua, &args, &results) {
        Ok(n) => n,
        Err(raise) => return raise,
    };
    Ok(MultiValue::from_iter([
        Value::Integer(outcome::UNPACK),
        Value::Table(results),
        Value::Integer(n as i64),
    ]))
}

/// Fills `results` with the unpacked values and the next position;
/// returns how many.
fn unpack_into(lua: &Lua, args: &MultiValue, results: &Table) -> Result<usize, Raise> {
    let fmt = string_arg(lua, args, 0)?;
    let data = string_arg(lua, args, 1)?;
    let offset = match args.get(2) {
        None | Some(Value::Nil) => 1,
        Some(v) => number(v)
            .map(|n| n as i64)
            .ok_or_else(|| type_error(lua, 3, "number", v))?,
    };
    if offset == 0 {
        return Err(arg_error(lua, 3, "offset must be 1 or greater"));
    }
    let ld = data.len();
    let mut pos = (offset - 1) as usize;
    let mut f = Format::new(&fmt);
    let mut n = 0usize;
    while let Some(opt) = f.next_opt() {
        let mut size = f.size(lua, opt)?;
        pos = pos.wrapping_add(f.to_align(pos, opt, size));
        if !(size <= ld && pos <= ld - size) {
            return Err(arg_error(lua, 2, "data string too short"));
        }
        if 3 + n + 2 > LUA_MAX_STACK {
            return Err(error(lua, "stack overflow (too many results)"));
        }
        let bytes = data.get(pos..pos + size).unwrap_or_default();
        let push = |n: &mut usize, v: Value| -> Result<(), Raise> {
            *n += 1;
            results.raw_set(*n, v).map_err(raise_lua)
        };
        match opt {
            o if is_integer_opt(o) => push(
                &mut n,
                Value::Number(get_integer(bytes, f.little, o.is_ascii_lowercase())),
            )?,
            b'x' => {}
            b'f' => {
                let mut b = [0u8; 4];
                b.copy_from_slice(bytes.get(..4).unwrap_or(&[0; 4]));
                let v = if f.little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                };
                push(&mut n, Value::Number(f64::from(v)))?;
            }
            b'd' => {
                let mut b = [0u8; 8];
                b.copy_from_slice(bytes.get(..8).unwrap_or(&[0; 8]));
                let v = if f.little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                };
                push(&mut n, Value::Number(v))?;
            }
            b'c' => {
                if size == 0 {
                    let previous = results.raw_get::<Value>(n).unwrap_or(Value::Nil);
                    let len = match (&previous, n) {
                        (_, 0) => None,
                        (v, _) => number(v),
                    };
                    let Some(len) = len else {
                        return Err(error(lua, "format 'c0' needs a previous size"));
                    };
                    size = len as usize;
                    results.raw_set(n, Value::Nil).map_err(raise_lua)?;
                    n -= 1;
                    if !(size <= ld && pos <= ld - size) {
                        return Err(arg_error(lua, 2, "data string too short"));
                    }
                }
                let s = data.get(pos..pos + size).unwrap_or_default();
                let s = lua.create_string(s).map_err(raise_lua)?;
                push(&mut n, Value::String(s))?;
            }
            b's' => {
                let rest = data.get(pos..).unwrap_or_default();
                let Some(end) = rest.iter().position(|&c| c == 0) else {
                    return Err(error(lua, "unfinished string in data"));
                };
                size = end + 1;
                let s = lua
                    .create_string(rest.get(..end).unwrap_or_default())
                    .map_err(raise_lua)?;
                push(&mut n, Value::String(s))?;
            }
            other => f.control(lua, other)?,
        }
        pos = pos.wrapping_add(size);
    }
    n += 1;
    results
        .raw_set(n, Value::Number(pos.wrapping_add(1) as f64))
        .map_err(raise_lua)?;
    Ok(n)
}

/// A Lua error of the interpreter itself (out of memory), passed on.
fn raise_lua(e: mlua::Error) -> Raise {
    Err(e)
}

fn size(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let fmt = match string_arg(lua, &args, 0) {
        Ok(f) => f,
        Err(raise) => return raise,
    };
    let mut f = Format::new(&fmt);
    let mut pos = 0usize;
    while let Some(opt) = f.next_opt() {
        let size = match f.size(lua, opt) {
            Ok(s) => s,
            Err(raise) => return raise,
        };
        pos += f.to_align(pos, opt, size);
        if opt == b's' {
            return arg_error(lua, 1, "option 's' has no fixed size");
        }
        if opt == b'c' && size == 0 {
            return arg_error(lua, 1, "option 'c0' has no fixed size");
        }
        if !opt.is_ascii_alphanumeric() {
            if let Err(raise) = f.control(lua, opt) {
                return raise;
            }
        }
        pos += size;
    }
    let _ = type_name;
    Ok(ok([Value::Number(pos as f64)]))
}
