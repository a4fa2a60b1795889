//! `bit`: LuaBitOp 1.0 (`lua_bit.c`) as Redis bundles it: 32-bit
//! operations on Lua numbers, results as signed 32-bit numbers.

use mlua::{Lua, MultiValue, Table, Value};

use super::{function, ok, type_error};

/// The functions, in the order of their trampoline slots (see
/// `sandbox::IMPLS`, from [`FIRST_SLOT`]).
const NAMES: [&str; 12] = [
    "tobit", "tohex", "bnot", "band", "bor", "bxor", "lshift", "rshift", "arshift", "rol", "ror",
    "bswap",
];
const FIRST_SLOT: usize = 17;

/// `barg`: a Lua number to 32 bits, as LuaBitOp does it (adding 2^52+2^51
/// and taking the low word rounds to nearest and wraps modulo 2^32).
fn to_bits(v: &Value) -> Option<u32> {
    let n = match v {
        Value::Integer(n) => *n as f64,
        Value::Number(n) => *n,
        Value::String(_) => super::number(v)?,
        _ => return None,
    };
    let shifted = n + 6_755_399_441_055_744.0;
    Some(shifted.to_bits() as u32)
}

fn arg(lua: &Lua, args: &MultiValue, i: usize) -> Result<u32, mlua::Result<MultiValue>> {
    let v = args.get(i).cloned().unwrap_or(Value::Nil);
    to_bits(&v).ok_or_else(|| type_error(lua, i as i64 + 1, "number", &v))
}

fn result(b: u32) -> mlua::Result<MultiValue> {
    Ok(ok([Value::Number(f64::from(b as i32))]))
}

/// The `bit` table.
pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for (i, name) in NAMES.iter().enumerate() {
        let f = if *name == "tohex" {
            function(lua, FIRST_SLOT + i, tohex)?
        } else {
            function(lua, FIRST_SLOT + i, move |lua, args| {
                bit_op(lua, name, &args)
            })?
        };
        t.raw_set(*name, f)?;
    }
    Ok(t)
}

fn bit_op(lua: &Lua, name: &str, args: &MultiValue) -> mlua::Result<MultiValue> {
    let first = match arg(lua, args, 0) {
        Ok(b) => b,
        Err(e) => return e,
    };
    match name {
        "tobit" => result(first),
        "bnot" => result(!first),
        "bswap" => result(first.swap_bytes()),
        "band" | "bor" | "bxor" => {
            let mut acc = first;
            for i in 1..args.len() {
                let b = match arg(lua, args, i) {
                    Ok(b) => b,
                    Err(e) => return e,
                };
                acc = match name {
                    "band" => acc & b,
                    "bor" => acc | b,
                    _ => acc ^ b,
                };
            }
            result(acc)
        }
        _ => {
            let n = match arg(lua, args, 1) {
                Ok(b) => b & 31,
                Err(e) => return e,
            };
            result(match name {
                "lshift" => first << n,
                "rshift" => first >> n,
                "arshift" => ((first as i32) >> n) as u32,
                "rol" => first.rotate_left(n),
                _ => first.rotate_right(n),
            })
        }
    }
}

/// `bit.tohex(x [, n])`: `n` hex digits (default 8), uppercase when `n` is
/// negative.
fn tohex(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let b = match arg(lua, &args, 0) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let n = match args.get(1) {
        None | Some(Value::Nil) => 8,
        Some(_) => match arg(lua, &args, 1) {
            Ok(n) => n as i32,
            Err(e) => return e,
        },
    };
    let upper = n < 0;
    let digits = n.unsigned_abs().min(8) as usize;
    let text = if upper {
        format!("{b:08X}")
    } else {
        format!("{b:08x}")
    };
    let text = text.get(8 - digits..).unwrap_or_default().to_string();
    Ok(ok([Value::String(lua.create_string(text)?)]))
}
