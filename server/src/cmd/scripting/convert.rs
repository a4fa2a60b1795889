//! Reply conversions between Redis and Lua, as Redis 7.0's `script_lua.c`
//! does them: a command's reply (RESP bytes captured from the reply
//! buffer) becomes a Lua value ([`parse_reply`], [`reply_to_lua`]), and a
//! script's return value becomes the client's reply ([`write_lua_value`]).

use std::ffi::c_int;

use mlua::{ffi, Lua, Table, Value};

use crate::resp::{Protocol, ReplyWriter};

/// One parsed RESP2/RESP3 reply, as `resp_parser.c` sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+text`
    Status(Vec<u8>),
    /// `-text` (code included, no leading dash)
    Error(Vec<u8>),
    /// `:n`
    Int(i64),
    /// `$n` with its bytes
    Bulk(Vec<u8>),
    /// `$-1`
    NullBulk,
    /// `*-1`
    NullArray,
    /// `*n` (and RESP3 pushes)
    Array(Vec<Reply>),
    /// `%n`
    Map(Vec<(Reply, Reply)>),
    /// `~n`
    Set(Vec<Reply>),
    /// `_`
    Null,
    /// `#t` / `#f`
    Bool(bool),
    /// `,d`
    Double(f64),
    /// `(digits`
    BigNumber(Vec<u8>),
    /// `=n` split into its three-letter format and text
    Verbatim {
        /// `txt`, `mkd`
        format: Vec<u8>,
        /// The text after `fmt:`.
        text: Vec<u8>,
    },
}

/// Deepest nesting converted; deeper values become errors instead of
/// overflowing the stack (Redis stops at Lua's stack limit).
const MAX_DEPTH: usize = 1000;

/// Parses the first reply in `buf`, skipping RESP3 attributes as Redis does.
/// `None` if `buf` does not start with a whole reply.
pub fn parse_reply(buf: &[u8]) -> Option<Reply> {
    let mut pos = 0;
    parse_at(buf, &mut pos, 0)
}

fn line<'b>(buf: &'b [u8], pos: &mut usize) -> Option<&'b [u8]> {
    let rest = buf.get(*pos..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    *pos += end + 2;
    rest.get(..end)
}

fn number(text: &[u8]) -> Option<i64> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

fn bytes_of(buf: &[u8], pos: &mut usize, len: usize) -> Option<Vec<u8>> {
    let data = buf.get(*pos..pos.checked_add(len)?)?.to_vec();
    *pos += len + 2;
    Some(data)
}

fn parse_at(buf: &[u8], pos: &mut usize, depth: usize) -> Option<Reply> {
    super::deep(|| parse_nested(buf, pos, depth))
}

fn parse_nested(buf: &[u8], pos: &mut usize, depth: usize) -> Option<Reply> {
    if depth > MAX_DEPTH {
        return None;
    }
    let tag = *buf.get(*pos)?;
    *pos += 1;
    let head = line(buf, pos)?;
    let count = |pos: &mut usize, n: i64| -> Option<Vec<Reply>> {
        (0..n).map(|_| parse_at(buf, pos, depth + 1)).collect()
    };
    Some(match tag {
        b'+' => Reply::Status(head.to_vec()),
        b'-' => Reply::Error(head.to_vec()),
        b':' => Reply::Int(number(head)?),
        b'$' => match number(head)? {
            n if n < 0 => Reply::NullBulk,
            n => Reply::Bulk(bytes_of(buf, pos, n as usize)?),
        },
        b'*' | b'>' => match number(head)? {
            n if n < 0 => Reply::NullArray,
            n => Reply::Array(count(pos, n)?),
        },
        b'~' => Reply::Set(count(pos, number(head)?)?),
        b'%' => {
            let flat = count(pos, 2 * number(head)?)?;
            let mut pairs = Vec::with_capacity(flat.len() / 2);
            let mut it = flat.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            Reply::Map(pairs)
        }
        b'|' => {
            // Attributes are not shown to scripts: skip them, then the reply.
            count(pos, 2 * number(head)?)?;
            parse_at(buf, pos, depth + 1)?
        }
        b'_' => Reply::Null,
        b'#' => Reply::Bool(head == b"t"),
        b',' => Reply::Double(parse_double(head)?),
        b'(' => Reply::BigNumber(head.to_vec()),
        b'=' => {
            let all = bytes_of(buf, pos, number(head)?.max(0) as usize)?;
            let format = all.get(..3)?.to_vec();
            let text = all.get(4..).unwrap_or_default().to_vec();
            Reply::Verbatim { format, text }
        }
        _ => return None,
    })
}

fn parse_double(text: &[u8]) -> Option<f64> {
    match text {
        b"inf" => Some(f64::INFINITY),
        b"-inf" => Some(f64::NEG_INFINITY),
        b"nan" | b"-nan" => Some(f64::NAN),
        _ => std::str::from_utf8(text).ok()?.parse().ok(),
    }
}

/// Redis's `luaPushErrorBuff`: the `{err=...}` table for an error text.
/// A text starting with `-` carries its own code up to the first space
/// (none: `ERR`); any other text gets `ERR `. CR and LF are trimmed from
/// both ends.
pub fn error_table(lua: &Lua, text: &[u8]) -> mlua::Result<Table> {
    let (code, msg): (&[u8], &[u8]) = match text.strip_prefix(b"-") {
        Some(rest) => match rest.iter().position(|&c| c == b' ') {
            Some(sp) => {
                let (code, msg) = rest.split_at(sp);
                (code, msg.get(1..).unwrap_or_default())
            }
            None => (b"ERR", rest),
        },
        None => (b"ERR", text),
    };
    let msg = trim_crlf(msg);
    let mut full = Vec::with_capacity(code.len() + 1 + msg.len());
    full.extend_from_slice(code);
    full.push(b' ');
    full.extend_from_slice(msg);
    // `lua_pushstring` stops at a NUL byte, as in Redis.
    if let Some(nul) = full.iter().position(|&c| c == 0) {
        full.truncate(nul);
    }
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(&full)?)?;
    Ok(t)
}

fn trim_crlf(mut s: &[u8]) -> &[u8] {
    while let [b'\r' | b'\n', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b'\r' | b'\n'] = s {
        s = rest;
    }
    s
}

/// Redis → Lua (`redisProtocolToLuaType`): integers become numbers, bulk
/// strings strings, nulls `false` (RESP3 null: `nil`), arrays tables,
/// statuses `{ok=...}`, errors `{err=...}`, and RESP3's map, set, double,
/// big number and verbatim string their one-field tables.
pub fn reply_to_lua(lua: &Lua, reply: &Reply) -> mlua::Result<Value> {
    // One raw call builds the whole value: each call through mlua's API
    // takes the state's lock, and a status reply alone took four.
    // SAFETY: `push_reply` pushes exactly one value, the result.
    super::deep(|| unsafe { lua.exec_raw::<Value>((), |state| push_reply(state, reply)) })
}

/// Pushes `reply` as a Lua value (see [`reply_to_lua`]).
///
/// # Safety
/// `state` is a valid state. Nothing here owns memory: a Lua error (out
/// of memory) unwinds over these frames with nothing to drop.
unsafe fn push_reply(state: *mut ffi::lua_State, reply: &Reply) {
    if ffi::lua_checkstack(state, 4) == 0 {
        ffi::luaL_error(state, c"reply nested too deep".as_ptr());
    }
    let push_bytes = |b: &[u8]| {
        ffi::lua_pushlstring(state, b.as_ptr().cast(), b.len());
    };
    // `{field=<value on top>}`.
    let wrap = |field: &std::ffi::CStr| {
        ffi::lua_createtable(state, 0, 1);
        ffi::lua_insert(state, -2);
        ffi::lua_setfield(state, -2, field.as_ptr());
    };
    match reply {
        Reply::Int(n) => ffi::lua_pushnumber(state, *n as f64),
        Reply::Bulk(b) => push_bytes(b),
        Reply::NullBulk | Reply::NullArray => ffi::lua_pushboolean(state, 0),
        Reply::Status(s) => {
            push_bytes(s);
            wrap(c"ok");
        }
        Reply::Error(e) => {
            push_error_text(state, e);
            wrap(c"err");
            ffi::lua_pushboolean(state, 1);
            ffi::lua_setfield(state, -2, c"ignore_error_stats_update".as_ptr());
        }
        Reply::Array(items) => {
            ffi::lua_createtable(state, items.len().try_into().unwrap_or(0), 0);
            for (i, item) in items.iter().enumerate() {
                push_reply(state, item);
                ffi::lua_rawseti(state, -2, (i + 1) as ffi::lua_Integer);
            }
        }
        Reply::Map(pairs) => {
            ffi::lua_createtable(state, 0, pairs.len().try_into().unwrap_or(0));
            for (k, v) in pairs {
                push_reply(state, k);
                if ffi::lua_isnil(state, -1) != 0 {
                    ffi::lua_pop(state, 1);
                    continue;
                }
                push_reply(state, v);
                ffi::lua_rawset(state, -3);
            }
            wrap(c"map");
        }
        Reply::Set(items) => {
            ffi::lua_createtable(state, 0, items.len().try_into().unwrap_or(0));
            for item in items {
                push_reply(state, item);
                if ffi::lua_isnil(state, -1) != 0 {
                    ffi::lua_pop(state, 1);
                    continue;
                }
                ffi::lua_pushboolean(state, 1);
                ffi::lua_rawset(state, -3);
            }
            wrap(c"set");
        }
        Reply::Null => ffi::lua_pushnil(state),
        Reply::Bool(b) => ffi::lua_pushboolean(state, c_int::from(*b)),
        Reply::Double(d) => {
            ffi::lua_pushnumber(state, *d);
            wrap(c"double");
        }
        Reply::BigNumber(b) => {
            push_bytes(b);
            wrap(c"big_number");
        }
        Reply::Verbatim { format, text } => {
            ffi::lua_createtable(state, 0, 2);
            push_bytes(text);
            ffi::lua_setfield(state, -2, c"string".as_ptr());
            push_bytes(format);
            ffi::lua_setfield(state, -2, c"format".as_ptr());
            wrap(c"verbatim_string");
        }
    }
}

/// Pushes the `err` text of a command's error reply `e` (code included,
/// no dash), as [`error_table`] makes it for `-` followed by `e`.
///
/// # Safety
/// As [`push_reply`].
unsafe fn push_error_text(state: *mut ffi::lua_State, e: &[u8]) {
    let (code, msg): (&[u8], &[u8]) = match e.iter().position(|&c| c == b' ') {
        Some(sp) => (&e[..sp], &e[sp + 1..]),
        None => (b"ERR", e),
    };
    let msg = trim_crlf(msg);
    // `lua_pushstring` stops at a NUL byte, as in Redis.
    let upto_nul = |b: &[u8]| b.iter().position(|&c| c == 0);
    if let Some(nul) = upto_nul(code) {
        ffi::lua_pushlstring(state, code.as_ptr().cast(), nul);
        return;
    }
    let msg = &msg[..upto_nul(msg).unwrap_or(msg.len())];
    ffi::lua_pushlstring(state, code.as_ptr().cast(), code.len());
    ffi::lua_pushlstring(state, c" ".as_ptr(), 1);
    ffi::lua_pushlstring(state, msg.as_ptr().cast(), msg.len());
    ffi::lua_concat(state, 3);
}

/// C's `(long long)` cast of a Lua number as x86-64 does it: truncation
/// toward zero, and `LLONG_MIN` for NaN and out-of-range values (NaN is
/// in no range).
pub fn lua_number_to_i64(n: f64) -> i64 {
    // 2^63 is exactly representable; anything at or beyond is out of range.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if !(-LIMIT..LIMIT).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// C's `printf("%.<precision>g", n)`, byte for byte (Redis formats Lua
/// numbers passed to commands with `%.17g`, cjson with `%.14g`).
pub fn format_g(n: f64, precision: usize) -> String {
    let mut buf = [0u8; 64];
    let fmt = format!("%.{precision}g\0");
    // SAFETY: the buffer's size is passed, the format is NUL-terminated and
    // takes exactly one double.
    let len = unsafe {
        libc::snprintf(
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
            fmt.as_ptr() as *const libc::c_char,
            n,
        )
    };
    let len = (len.max(0) as usize).min(buf.len() - 1);
    String::from_utf8_lossy(buf.get(..len).unwrap_or_default()).into_owned()
}

/// Lua → Redis (`luaReplyToRedisReply`). `script_resp` is the protocol the
/// script chose with `redis.setresp` (booleans depend on it); everything
/// else follows the client's protocol through `out`.
/// `count_error` is called with each error reply to count (those not
/// already counted when a command replied them).
pub fn write_lua_value(
    out: &mut ReplyWriter,
    v: &Value,
    script_resp3: bool,
    count_error: &mut dyn FnMut(&str),
) {
    let mut w = Writer {
        out,
        script_resp3,
        count_error,
    };
    w.value(v, 0);
}

/// Where a script's return value is written.
struct Writer<'w> {
    out: &'w mut ReplyWriter,
    script_resp3: bool,
    count_error: &'w mut dyn FnMut(&str),
}

/// The text of an `{err=...}` table; for a raised error (`script_name`
/// given) with the source and line the error handler added. `None` if `t`
/// is no error.
pub fn error_of_table(t: &Table, script_name: Option<&str>) -> Option<String> {
    let Ok(Value::String(msg)) = t.raw_get::<Value>("err") else {
        return None;
    };
    let mut text = String::from_utf8_lossy(&msg.as_bytes()).into_owned();
    let source = lua_string_field(t, "source");
    let line = lua_string_field(t, "line");
    if let (Some(script_name), Some(source), Some(line)) = (script_name, source, line) {
        text.push_str(&format!(" script: {script_name}, on {source}:{line}."));
    }
    Some(text)
}

/// Whether an error table's error was counted already (it came from a
/// command's reply: `ignore_error_stats_update`).
pub fn already_counted(t: &Table) -> bool {
    matches!(
        t.raw_get::<Value>("ignore_error_stats_update"),
        Ok(Value::Boolean(true))
    )
}

/// A field as `lua_isstring` + `lua_tostring` see it (numbers included).
fn lua_string_field(t: &Table, field: &str) -> Option<String> {
    match t.raw_get::<Value>(field).ok()? {
        Value::String(s) => Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
        Value::Number(n) => Some(lua_number_text(n)),
        Value::Integer(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Lua 5.1's own number-to-string conversion (`%.14g`).
pub fn lua_number_text(n: f64) -> String {
    format_g(n, 14)
}

impl Writer<'_> {
    fn value(&mut self, v: &Value, depth: usize) {
        super::deep(|| self.nested(v, depth))
    }

    fn nested(&mut self, v: &Value, depth: usize) {
        let (out, script_resp3) = (&mut *self.out, self.script_resp3);
        if depth > MAX_DEPTH {
            out.error("ERR reached lua stack limit");
            return;
        }
        match v {
            Value::String(s) => out.bulk(&s.as_bytes()),
            Value::Boolean(b) => {
                if script_resp3 {
                    out.boolean(*b);
                } else if *b {
                    out.int(1);
                } else {
                    out.null();
                }
            }
            Value::Number(n) => out.int(lua_number_to_i64(*n)),
            Value::Integer(n) => out.int(*n),
            Value::Table(t) => self.table(t, depth),
            _ => out.null(),
        }
    }

    fn table(&mut self, t: &Table, depth: usize) {
        let out = &mut *self.out;
        if let Ok(Value::String(err)) = t.raw_get::<Value>("err") {
            // A returned error table: its text as is (`-%s`).
            let text = String::from_utf8_lossy(&err.as_bytes()).into_owned();
            out.error(&text);
            if !already_counted(t) {
                (self.count_error)(&text);
            }
            return;
        }
        if let Ok(Value::String(ok)) = t.raw_get::<Value>("ok") {
            let text: String = String::from_utf8_lossy(&ok.as_bytes())
                .chars()
                .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
                .collect();
            // `sdscatprintf("+%s\r\n")` stops at a NUL byte.
            let text = text.split('\0').next().unwrap_or_default();
            out.simple(text);
            return;
        }
        match t.raw_get::<Value>("double") {
            Ok(Value::Number(d)) => return out.double(d),
            Ok(Value::Integer(d)) => return out.double(d as f64),
            _ => {}
        }
        if let Ok(Value::String(big)) = t.raw_get::<Value>("big_number") {
            let digits: Vec<u8> = big
                .as_bytes()
                .iter()
                .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c })
                .collect();
            write_big_number(out, &digits);
            return;
        }
        if let Ok(Value::Table(verbatim)) = t.raw_get::<Value>("verbatim_string") {
            if let (Ok(Value::String(format)), Ok(Value::String(text))) = (
                verbatim.raw_get::<Value>("format"),
                verbatim.raw_get::<Value>("string"),
            ) {
                let format = String::from_utf8_lossy(&format.as_bytes()).into_owned();
                out.verbatim(&format, &text.as_bytes());
                return;
            }
        }
        if let Ok(Value::Table(map)) = t.raw_get::<Value>("map") {
            let pairs: Vec<(Value, Value)> = map.pairs::<Value, Value>().flatten().collect();
            out.map(pairs.len());
            for (k, v) in &pairs {
                self.value(k, depth + 1);
                self.value(v, depth + 1);
            }
            return;
        }
        if let Ok(Value::Table(set)) = t.raw_get::<Value>("set") {
            let members: Vec<Value> = set
                .pairs::<Value, Value>()
                .flatten()
                .map(|(k, _)| k)
                .collect();
            out.set(members.len());
            for m in &members {
                self.value(m, depth + 1);
            }
            return;
        }
        let mut items = Vec::new();
        for i in 1.. {
            match t.raw_get::<Value>(i) {
                Ok(Value::Nil) | Err(_) => break,
                Ok(v) => items.push(v),
            }
        }
        out.array(items.len());
        for item in &items {
            self.value(item, depth + 1);
        }
    }
}

/// `addReplyBigNum`: `(digits` in RESP3, a bulk string in RESP2.
fn write_big_number(out: &mut ReplyWriter, digits: &[u8]) {
    match out.proto {
        Protocol::Resp2 => out.bulk(digits),
        Protocol::Resp3 => {
            out.raw(b"(");
            out.raw(digits);
            out.raw(b"\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_replies() {
        let r = parse_reply(b"*3\r\n:1\r\n$3\r\nabc\r\n*-1\r\n").unwrap_or(Reply::Null);
        assert_eq!(
            r,
            Reply::Array(vec![
                Reply::Int(1),
                Reply::Bulk(b"abc".to_vec()),
                Reply::NullArray
            ])
        );
        let m = parse_reply(b"%1\r\n+a\r\n,1.5\r\n").unwrap_or(Reply::Null);
        assert_eq!(
            m,
            Reply::Map(vec![(Reply::Status(b"a".to_vec()), Reply::Double(1.5))])
        );
        assert_eq!(parse_reply(b"$5\r\nab"), None);
        assert_eq!(
            parse_reply(b"|1\r\n+k\r\n+v\r\n#t\r\n"),
            Some(Reply::Bool(true))
        );
        assert_eq!(
            parse_reply(b"=8\r\ntxt:abcd\r\n"),
            Some(Reply::Verbatim {
                format: b"txt".to_vec(),
                text: b"abcd".to_vec()
            })
        );
    }

    #[test]
    fn numbers_truncate_like_c() {
        assert_eq!(lua_number_to_i64(3.9), 3);
        assert_eq!(lua_number_to_i64(-3.7), -3);
        assert_eq!(lua_number_to_i64(3.99e20), i64::MIN);
        assert_eq!(lua_number_to_i64(f64::NAN), i64::MIN);
        assert_eq!(format_g(0.1, 17), "0.10000000000000001");
        assert_eq!(format_g(1.0, 17), "1");
        assert_eq!(format_g(1e20, 14), "1e+20");
    }

    #[test]
    fn error_tables_split_the_code() -> mlua::Result<()> {
        let lua = Lua::new();
        let err = |text: &[u8]| -> mlua::Result<String> {
            error_table(&lua, text)?.raw_get::<String>("err")
        };
        assert_eq!(err(b"-WRONGTYPE Operation\r\n")?, "WRONGTYPE Operation");
        assert_eq!(err(b"-nocode")?, "ERR nocode");
        assert_eq!(err(b"plain text")?, "ERR plain text");
        Ok(())
    }

    #[test]
    fn lua_values_become_replies() -> mlua::Result<()> {
        let lua = Lua::new();
        let v: Value = lua
            .load("return {1, 2.9, 'a', false, {ok='fine'}, nil, 7}")
            .eval()?;
        let mut out = ReplyWriter::new();
        write_lua_value(&mut out, &v, false, &mut |_| {});
        assert_eq!(
            out.as_bytes(),
            b"*5\r\n:1\r\n:2\r\n$1\r\na\r\n$-1\r\n+fine\r\n"
        );
        let mut out = ReplyWriter::new();
        write_lua_value(&mut out, &Value::Boolean(true), true, &mut |_| {});
        assert_eq!(out.as_bytes(), b":1\r\n");
        Ok(())
    }

    #[test]
    fn replies_become_lua_values() -> mlua::Result<()> {
        let lua = Lua::new();
        let reply = parse_reply(b"*4\r\n:5\r\n$-1\r\n+OK\r\n-ERR bad\r\n").unwrap_or(Reply::Null);
        let v = reply_to_lua(&lua, &reply)?;
        let Value::Table(t) = v else {
            panic!("not a table: {v:?}");
        };
        assert_eq!(t.raw_get::<f64>(1)?, 5.0);
        assert!(!t.raw_get::<bool>(2)?);
        assert_eq!(t.raw_get::<Table>(3)?.raw_get::<String>("ok")?, "OK");
        assert_eq!(t.raw_get::<Table>(4)?.raw_get::<String>("err")?, "ERR bad");
        Ok(())
    }
}
