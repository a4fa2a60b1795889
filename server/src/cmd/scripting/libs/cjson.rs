//! `cjson`: lua-cjson 2.1.0 as Redis 7.0 bundles it (`lua_cjson.c`).
//!
//! Encoding: numbers with `%.14g`, `/` escaped as `\/`, control characters
//! and DEL as `\u00XX`, other bytes as they are; a table whose keys are all
//! positive integers is an array (holes become `null`; an excessively
//! sparse one is an error), any other table an object (keys in Lua's
//! iteration order). Decoding follows the C tokenizer, so its error texts
//! and positions are lua-cjson's.

use std::sync::Arc;

use mlua::{LightUserData, Lua, MultiValue, Table, Value};
use parking_lot::Mutex;

use super::{arg_error, error, function, number, ok, type_name};
use crate::cmd::scripting::convert::format_g;

/// Trampoline slots (see `sandbox::IMPLS`).
const ENCODE: usize = 8;
const DECODE: usize = 9;

/// lua-cjson's settings (`json_config_t`).
#[derive(Debug, Clone, Copy)]
struct Config {
    sparse_convert: bool,
    sparse_ratio: i64,
    sparse_safe: i64,
    encode_max_depth: i64,
    decode_max_depth: i64,
    precision: usize,
    encode_invalid_numbers: bool,
    decode_invalid_numbers: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            precision: 14,
            encode_invalid_numbers: false,
            decode_invalid_numbers: true,
        }
    }
}

type Shared = Arc<Mutex<Config>>;

/// `cjson.null`: a NULL light userdata.
fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// The `cjson` table.
pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let cfg: Shared = Arc::default();
    let t = lua.create_table()?;
    let c = cfg.clone();
    t.raw_set(
        "encode",
        function(lua, ENCODE, move |lua, args| encode(lua, &c.lock(), args))?,
    )?;
    let c = cfg.clone();
    t.raw_set(
        "decode",
        function(lua, DECODE, move |lua, args| decode(lua, &c.lock(), args))?,
    )?;
    let settings: [(&str, Setting); 7] = [
        ("encode_sparse_array", Setting::SparseArray),
        ("encode_max_depth", Setting::EncodeMaxDepth),
        ("decode_max_depth", Setting::DecodeMaxDepth),
        ("encode_number_precision", Setting::Precision),
        ("encode_keep_buffer", Setting::KeepBuffer),
        ("encode_invalid_numbers", Setting::EncodeInvalid),
        ("decode_invalid_numbers", Setting::DecodeInvalid),
    ];
    for (name, setting) in settings {
        let c = cfg.clone();
        let f = lua.create_function(move |lua, args: MultiValue| {
            configure(lua, &mut c.lock(), setting, args)
        })?;
        t.raw_set(name, f)?;
    }
    t.raw_set("null", null())?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    let same = t.clone();
    t.raw_set("new", lua.create_function(move |_, ()| Ok(same.clone()))?)?;
    Ok(t)
}

#[derive(Debug, Clone, Copy)]
enum Setting {
    SparseArray,
    EncodeMaxDepth,
    DecodeMaxDepth,
    Precision,
    KeepBuffer,
    EncodeInvalid,
    DecodeInvalid,
}

/// The configuration functions: set when given an argument, return the
/// setting. (Errors in their arguments are not checked as lua-cjson does;
/// Redis scripts hardly call them.)
fn configure(
    lua: &Lua,
    cfg: &mut Config,
    setting: Setting,
    args: MultiValue,
) -> mlua::Result<MultiValue> {
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Nil);
    let int = |i: usize, current: i64| number(&arg(i)).map_or(current, |n| n as i64);
    let boolean = |i: usize, current: bool| match arg(i) {
        Value::Boolean(b) => b,
        Value::String(s) => &*s.as_bytes() == b"on",
        _ => current,
    };
    let out: Vec<Value> = match setting {
        Setting::SparseArray => {
            cfg.sparse_convert = boolean(0, cfg.sparse_convert);
            cfg.sparse_ratio = int(1, cfg.sparse_ratio);
            cfg.sparse_safe = int(2, cfg.sparse_safe);
            vec![
                Value::Boolean(cfg.sparse_convert),
                Value::Number(cfg.sparse_ratio as f64),
                Value::Number(cfg.sparse_safe as f64),
            ]
        }
        Setting::EncodeMaxDepth => {
            cfg.encode_max_depth = int(0, cfg.encode_max_depth).max(1);
            vec![Value::Number(cfg.encode_max_depth as f64)]
        }
        Setting::DecodeMaxDepth => {
            cfg.decode_max_depth = int(0, cfg.decode_max_depth).max(1);
            vec![Value::Number(cfg.decode_max_depth as f64)]
        }
        Setting::Precision => {
            cfg.precision = int(0, cfg.precision as i64).clamp(1, 14) as usize;
            vec![Value::Number(cfg.precision as f64)]
        }
        Setting::KeepBuffer => vec![Value::Boolean(boolean(0, true))],
        Setting::EncodeInvalid => {
            cfg.encode_invalid_numbers = boolean(0, cfg.encode_invalid_numbers);
            vec![Value::Boolean(cfg.encode_invalid_numbers)]
        }
        Setting::DecodeInvalid => {
            cfg.decode_invalid_numbers = boolean(0, cfg.decode_invalid_numbers);
            vec![Value::Boolean(cfg.decode_invalid_numbers)]
        }
    };
    let _ = lua;
    Ok(out.into_iter().collect())
}

/// Why encoding stopped: lua-cjson's message.
struct EncodeError(String);

fn encode(lua: &Lua, cfg: &Config, args: MultiValue) -> mlua::Result<MultiValue> {
    if args.len() != 1 {
        return arg_error(lua, 1, "expected 1 argument");
    }
    let mut out = Vec::new();
    let value = args.front().cloned().unwrap_or(Value::Nil);
    match append(cfg, &mut out, &value, 0) {
        Ok(()) => Ok(ok([Value::String(lua.create_string(&out)?)])),
        Err(EncodeError(msg)) => error(lua, &msg),
    }
}

fn exception(v: &Value, reason: &str) -> EncodeError {
    EncodeError(format!("Cannot serialise {}: {reason}", type_name(v)))
}

fn append(cfg: &Config, out: &mut Vec<u8>, v: &Value, depth: i64) -> Result<(), EncodeError> {
    crate::cmd::scripting::deep(|| append_nested(cfg, out, v, depth))
}

fn append_nested(
    cfg: &Config,
    out: &mut Vec<u8>,
    v: &Value,
    depth: i64,
) -> Result<(), EncodeError> {
    match v {
        Value::String(s) => append_string(out, &s.as_bytes()),
        Value::Integer(_) | Value::Number(_) => append_number(cfg, out, v)?,
        Value::Boolean(true) => out.extend_from_slice(b"true"),
        Value::Boolean(false) => out.extend_from_slice(b"false"),
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Table(t) => {
            let depth = depth + 1;
            if depth > cfg.encode_max_depth {
                return Err(EncodeError(format!(
                    "Cannot serialise, excessive nesting ({depth})"
                )));
            }
            match array_length(cfg, t, v)? {
                Some(len) if len > 0 => {
                    out.push(b'[');
                    for i in 1..=len {
                        if i > 1 {
                            out.push(b',');
                        }
                        let item: Value = t.raw_get(i).unwrap_or(Value::Nil);
                        append(cfg, out, &item, depth)?;
                    }
                    out.push(b']');
                }
                _ => {
                    out.push(b'{');
                    for (i, pair) in t.pairs::<Value, Value>().enumerate() {
                        let Ok((k, val)) = pair else { break };
                        if i > 0 {
                            out.push(b',');
                        }
                        match &k {
                            Value::Integer(_) | Value::Number(_) => {
                                out.push(b'"');
                                append_number(cfg, out, &k)?;
                                out.extend_from_slice(b"\":");
                            }
                            Value::String(s) => {
                                append_string(out, &s.as_bytes());
                                out.push(b':');
                            }
                            other => {
                                return Err(exception(
                                    other,
                                    "table key must be a number or string",
                                ))
                            }
                        }
                        append(cfg, out, &val, depth)?;
                    }
                    out.push(b'}');
                }
            }
        }
        other => return Err(exception(other, "type not supported")),
    }
    Ok(())
}

/// `lua_array_length`: `Some(n)` for an array of `n` (0: empty table),
/// `None` for an object.
fn array_length(cfg: &Config, t: &Table, v: &Value) -> Result<Option<i64>, EncodeError> {
    let (mut max, mut items) = (0i64, 0i64);
    for pair in t.pairs::<Value, Value>() {
        let Ok((k, _)) = pair else { break };
        let k = match k {
            Value::Integer(k) => k as f64,
            Value::Number(k) => k,
            _ => return Ok(None),
        };
        if k == 0.0 || k.floor() != k || k < 1.0 {
            return Ok(None);
        }
        if k > max as f64 {
            max = k as i64;
        }
        items += 1;
    }
    if cfg.sparse_ratio > 0 && max > items * cfg.sparse_ratio && max > cfg.sparse_safe {
        if !cfg.sparse_convert {
            return Err(exception(v, "excessively sparse array"));
        }
        return Ok(None);
    }
    Ok(Some(max))
}

fn append_number(cfg: &Config, out: &mut Vec<u8>, v: &Value) -> Result<(), EncodeError> {
    let n = match v {
        Value::Integer(n) => *n as f64,
        Value::Number(n) => *n,
        _ => 0.0,
    };
    if !n.is_finite() {
        if !cfg.encode_invalid_numbers {
            return Err(exception(v, "must not be NaN or Inf"));
        }
        if n.is_nan() {
            out.extend_from_slice(b"nan");
            return Ok(());
        }
    }
    out.extend_from_slice(format_g(n, cfg.precision).as_bytes());
    Ok(())
}

fn append_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\x08' => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\x0c' => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            c if c < 0x20 || c == 0x7f => {
                out.extend_from_slice(format!("\\u{:04x}", c).as_bytes());
            }
            c => out.push(c),
        }
    }
    out.push(b'"');
}

/// A token of the C tokenizer (`json_token_type_t`).
#[derive(Debug, Clone, PartialEq)]
enum Token {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str(Vec<u8>),
    Number(f64),
    Boolean(bool),
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

impl Token {
    /// `json_token_type_name`, or the error's text.
    fn name(&self) -> &'static str {
        match self {
            Token::ObjBegin => "T_OBJ_BEGIN",
            Token::ObjEnd => "T_OBJ_END",
            Token::ArrBegin => "T_ARR_BEGIN",
            Token::ArrEnd => "T_ARR_END",
            Token::Str(_) => "T_STRING",
            Token::Number(_) => "T_NUMBER",
            Token::Boolean(_) => "T_BOOLEAN",
            Token::Null => "T_NULL",
            Token::Colon => "T_COLON",
            Token::Comma => "T_COMMA",
            Token::End => "T_END",
            Token::Error(e) => e,
        }
    }
}

/// The decoder over a NUL-terminated copy of the text (a NUL ends it, as
/// in C).
struct Parser<'c> {
    data: Vec<u8>,
    pos: usize,
    depth: i64,
    cfg: &'c Config,
}

/// Why decoding stopped: lua-cjson's message.
struct DecodeError(String);

impl Parser<'_> {
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    /// `json_next_token`: the token and where it starts.
    fn next(&mut self) -> (Token, usize) {
        while matches!(self.at(self.pos), b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        let start = self.pos;
        let c = self.at(self.pos);
        let single = match c {
            b'{' => Some(Token::ObjBegin),
            b'}' => Some(Token::ObjEnd),
            b'[' => Some(Token::ArrBegin),
            b']' => Some(Token::ArrEnd),
            b',' => Some(Token::Comma),
            b':' => Some(Token::Colon),
            _ => None,
        };
        if let Some(t) = single {
            self.pos += 1;
            return (t, start);
        }
        if c == 0 {
            return (Token::End, start);
        }
        let rest = self.data.get(self.pos..).unwrap_or_default();
        if c == b'"' {
            return self.string_token(start);
        }
        if c == b'-' || c.is_ascii_digit() {
            if !self.cfg.decode_invalid_numbers && self.invalid_number() {
                return (Token::Error("invalid number"), self.pos);
            }
            return self.number_token(start);
        }
        if rest.starts_with(b"true") {
            self.pos += 4;
            return (Token::Boolean(true), start);
        }
        if rest.starts_with(b"false") {
            self.pos += 5;
            return (Token::Boolean(false), start);
        }
        if rest.starts_with(b"null") {
            self.pos += 4;
            return (Token::Null, start);
        }
        let unknown = matches!(c, b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'+');
        if unknown && self.cfg.decode_invalid_numbers && self.invalid_number() {
            return self.number_token(start);
        }
        (Token::Error("invalid token"), self.pos)
    }

    /// `json_is_invalid_number`.
    fn invalid_number(&self) -> bool {
        let mut p = self.pos;
        if self.at(p) == b'+' {
            return true;
        }
        if self.at(p) == b'-' {
            p += 1;
        }
        let c = self.at(p);
        if c == b'0' {
            let c2 = self.at(p + 1);
            return (c2 | 0x20) == b'x' || c2.is_ascii_digit();
        }
        if c <= b'9' {
            return false;
        }
        let word = self
            .data
            .get(p..p + 3)
            .unwrap_or_default()
            .to_ascii_lowercase();
        word == b"inf" || word == b"nan"
    }

    fn number_token(&mut self, start: usize) -> (Token, usize) {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        let (n, used, _) = crate::cmd::args::strtod(rest);
        if used == 0 {
            return (Token::Error("invalid number"), self.pos);
        }
        self.pos += used;
        (Token::Number(n), start)
    }

    /// `json_next_string_token`.
    fn string_token(&mut self, start: usize) -> (Token, usize) {
        self.pos += 1;
        let mut s = Vec::new();
        loop {
            let c = self.at(self.pos);
            if c == b'"' {
                break;
            }
            if c == 0 {
                return (Token::Error("unexpected end of string"), self.pos);
            }
            let mut ch = c;
            if c == b'\\' {
                let esc = match self.at(self.pos + 1) {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 0x08,
                    b't' => b'\t',
                    b'n' => b'\n',
                    b'f' => 0x0c,
                    b'r' => b'\r',
                    b'u' => {
                        if self.unicode_escape(&mut s) {
                            continue;
                        }
                        return (Token::Error("invalid unicode escape code"), self.pos);
                    }
                    _ => return (Token::Error("invalid escape code"), self.pos),
                };
                ch = esc;
                self.pos += 1;
            }
            s.push(ch);
            self.pos += 1;
        }
        self.pos += 1;
        (Token::Str(s), start)
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let mut v = 0;
        for i in 0..4 {
            v = (v << 4) | (self.at(at + i) as char).to_digit(16)?;
        }
        Some(v)
    }

    /// `json_append_unicode_escape`: appends the UTF-8 of `\uXXXX` (or a
    /// surrogate pair) and moves past it.
    fn unicode_escape(&mut self, s: &mut Vec<u8>) -> bool {
        let Some(mut cp) = self.hex4(self.pos + 2) else {
            return false;
        };
        let mut len = 6;
        if cp & 0xF800 == 0xD800 {
            if cp & 0x400 != 0 {
                return false;
            }
            if self.at(self.pos + 6) != b'\\' || self.at(self.pos + 7) != b'u' {
                return false;
            }
            let Some(low) = self.hex4(self.pos + 8) else {
                return false;
            };
            if low & 0xFC00 != 0xDC00 {
                return false;
            }
            cp = (((cp & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            len = 12;
        }
        match char::from_u32(cp) {
            Some(c) => {
                let mut buf = [0u8; 4];
                s.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            None => return false,
        }
        self.pos += len;
        true
    }

    fn fail(&self, expected: &str, token: &Token, at: usize) -> DecodeError {
        DecodeError(format!(
            "Expected {expected} but found {} at character {}",
            token.name(),
            at + 1
        ))
    }

    fn descend(&mut self) -> Result<(), DecodeError> {
        self.depth += 1;
        if self.depth > self.cfg.decode_max_depth {
            return Err(DecodeError(format!(
                "Found too many nested data structures ({}) at character {}",
                self.depth, self.pos
            )));
        }
        Ok(())
    }

    /// `json_process_value`.
    fn value(&mut self, lua: &Lua, token: Token, at: usize) -> Result<Value, DecodeError> {
        crate::cmd::scripting::deep(|| self.value_nested(lua, token, at))
    }

    fn value_nested(&mut self, lua: &Lua, token: Token, at: usize) -> Result<Value, DecodeError> {
        let lua_err = |e: mlua::Error| DecodeError(e.to_string());
        Ok(match token {
            Token::Str(s) => Value::String(lua.create_string(&s).map_err(lua_err)?),
            Token::Number(n) => Value::Number(n),
            Token::Boolean(b) => Value::Boolean(b),
            Token::Null => null(),
            Token::ObjBegin => {
                self.descend()?;
                let t = lua.create_table().map_err(lua_err)?;
                let (mut tok, mut at) = self.next();
                if tok != Token::ObjEnd {
                    loop {
                        let Token::Str(key) = tok else {
                            return Err(self.fail("object key string", &tok, at));
                        };
                        let (colon, c_at) = self.next();
                        if colon != Token::Colon {
                            return Err(self.fail("colon", &colon, c_at));
                        }
                        let (vt, v_at) = self.next();
                        let v = self.value(lua, vt, v_at)?;
                        let key = lua.create_string(&key).map_err(lua_err)?;
                        t.raw_set(key, v).map_err(lua_err)?;
                        let (sep, s_at) = self.next();
                        if sep == Token::ObjEnd {
                            break;
                        }
                        if sep != Token::Comma {
                            return Err(self.fail("comma or object end", &sep, s_at));
                        }
                        (tok, at) = self.next();
                    }
                }
                self.depth -= 1;
                Value::Table(t)
            }
            Token::ArrBegin => {
                self.descend()?;
                let t = lua.create_table().map_err(lua_err)?;
                let (mut tok, mut at) = self.next();
                if tok != Token::ArrEnd {
                    for i in 1.. {
                        let v = self.value(lua, tok, at)?;
                        t.raw_set(i, v).map_err(lua_err)?;
                        let (sep, s_at) = self.next();
                        if sep == Token::ArrEnd {
                            break;
                        }
                        if sep != Token::Comma {
                            return Err(self.fail("comma or array end", &sep, s_at));
                        }
                        (tok, at) = self.next();
                    }
                }
                self.depth -= 1;
                Value::Table(t)
            }
            other => return Err(self.fail("value", &other, at)),
        })
    }
}

fn decode(lua: &Lua, cfg: &Config, args: MultiValue) -> mlua::Result<MultiValue> {
    if args.len() != 1 {
        return arg_error(lua, 1, "expected 1 argument");
    }
    let text = match args.front() {
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        Some(v @ (Value::Integer(_) | Value::Number(_))) => number(v)
            .map(|n| format_g(n, 14))
            .unwrap_or_default()
            .into_bytes(),
        Some(other) => return super::type_error(lua, 1, "string", other),
        None => return super::type_error(lua, 1, "string", &Value::Nil),
    };
    if text.len() >= 2 && (text.first() == Some(&0) || text.get(1) == Some(&0)) {
        return error(lua, "JSON parser does not support UTF-16 or UTF-32");
    }
    let mut p = Parser {
        data: text,
        pos: 0,
        depth: 0,
        cfg,
    };
    let (tok, at) = p.next();
    let result = p.value(lua, tok, at).and_then(|v| {
        let (end, e_at) = p.next();
        if end != Token::End {
            return Err(p.fail("the end", &end, e_at));
        }
        Ok(v)
    });
    match result {
        Ok(v) => Ok(ok([v])),
        Err(DecodeError(msg)) => error(lua, &msg),
    }
}
