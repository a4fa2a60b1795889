//! String commands: GET SET and friends, ported from Redis 7.0's `t_string.c`
//! with its argument order, error texts and reply types.
//!
//! Reads that Redis does with `lookupKeyRead` count keyspace hits and misses
//! ([`read_string`]); writes (`lookupKeyWrite`) do not.

pub(super) mod long_double;

use amber_storage::{clock, Guard, SetExpiry, StrValue, Value};

use super::args::{self, is_c, nth};
use super::error::{CmdError, CmdResult};
use super::{Ctx, Handler};
use crate::notify;
use long_double::{LongDouble, Parsed};

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("get", get),
    ("set", set),
    ("setnx", setnx),
    ("setex", setex),
    ("psetex", psetex),
    ("mget", mget),
    ("mset", mset),
    ("msetnx", msetnx),
    ("getset", getset),
    ("getdel", getdel),
    ("getex", getex),
    ("append", append),
    ("strlen", strlen),
    ("incr", incr),
    ("decr", decr),
    ("incrby", incrby),
    ("decrby", decrby),
    ("incrbyfloat", incrbyfloat),
    ("getrange", getrange),
    ("substr", getrange),
    ("setrange", setrange),
    ("lcs", lcs),
];

/// The string stored at `key`: `Ok(None)` when absent, `WRONGTYPE` when the
/// key holds another type. Counts a keyspace hit or miss.
pub fn read_string<'g>(
    ctx: &Ctx<'_>,
    g: &'g mut Guard<'_>,
    key: &[u8],
) -> Result<Option<&'g [u8]>, CmdError> {
    let found = g.get_str(key);
    ctx.srv.stats.hit(found.is_some());
    match found {
        None => Ok(None),
        Some(Ok(bytes)) => Ok(Some(bytes)),
        Some(Err(_)) => Err(CmdError::WrongType),
    }
}

/// The string inside an optional value, or `WRONGTYPE`. No statistics: for
/// the lookups Redis does with `lookupKeyWrite`.
pub fn string_of(found: Option<&Value>) -> Result<Option<&[u8]>, CmdError> {
    match found {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(&s.bytes)),
        #[allow(unreachable_patterns)]
        Some(_) => Err(CmdError::WrongType),
    }
}

/// The string at `key` for an in-place edit, or `WRONGTYPE`.
pub fn string_mut<'g>(
    g: &'g mut Guard<'_>,
    key: &[u8],
) -> Result<Option<&'g mut StrValue>, CmdError> {
    match g.get_mut(key) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        #[allow(unreachable_patterns)]
        Some(_) => Err(CmdError::WrongType),
    }
}

/// The string at `key`, which the caller has just seen exist, for an
/// in-place edit. Errors if the value cannot be loaded after all (a cold
/// record the arena can no longer read).
pub fn existing_string_mut<'g>(
    g: &'g mut Guard<'_>,
    key: &[u8],
) -> Result<&'g mut StrValue, CmdError> {
    string_mut(g, key)?.ok_or_else(|| CmdError::err("the value of the key could not be loaded"))
}

/// The configured `proto-max-bulk-len`: the largest string a command may build.
pub fn max_bulk_len(ctx: &Ctx<'_>) -> u64 {
    ctx.srv
        .config
        .hot
        .proto_max_bulk_len
        .load(std::sync::atomic::Ordering::Relaxed)
}

/// Redis's `checkStringLength`: may a string grow to `size + append` bytes?
pub fn check_string_length(ctx: &Ctx<'_>, size: u64, append: u64) -> CmdResult {
    match size.checked_add(append) {
        Some(total) if total <= max_bulk_len(ctx) && total <= i64::MAX as u64 => Ok(()),
        _ => Err(CmdError::err(
            "string exceeds maximum allowed size (proto-max-bulk-len)",
        )),
    }
}

/// A string value as Redis creates it with `createObject` (always `raw`).
pub fn raw_string(bytes: Vec<u8>) -> Value {
    Value::Str(StrValue {
        bytes,
        raw: true,
        no_int: false,
    })
}

fn get(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let mut g = ctx.lock_one(key)?;
    match read_string(ctx, &mut g, key)? {
        Some(v) => ctx.out.bulk(v),
        None => ctx.out.null(),
    }
    Ok(())
}

/// `invalid expire time in '<cmd>' command`.
pub fn invalid_expire(cmd: &str) -> CmdError {
    CmdError::err(format!("invalid expire time in '{cmd}' command"))
}

/// Turns an EX/PX/EXAT/PXAT argument into an absolute deadline in ms, with
/// Redis's checks (positive, no overflow).
pub fn deadline_ms(arg: &[u8], seconds: bool, relative: bool, cmd: &str) -> Result<u64, CmdError> {
    let v = args::int(arg)?;
    if v <= 0 || (seconds && v > i64::MAX / 1000) {
        return Err(invalid_expire(cmd));
    }
    let mut ms = if seconds { v * 1000 } else { v };
    if relative {
        ms = ms
            .checked_add(clock::now_ms() as i64)
            .ok_or_else(|| invalid_expire(cmd))?;
    }
    if ms <= 0 {
        return Err(invalid_expire(cmd));
    }
    Ok(ms as u64)
}

/// An expire option: where its argument is and how to read it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct ExpireArg {
    /// Index of the argument.
    at: usize,
    /// In seconds (EX, EXAT) rather than milliseconds.
    seconds: bool,
    /// Relative to now (EX, PX) rather than a Unix time.
    relative: bool,
}

impl ExpireArg {
    fn deadline(self, args: &[&[u8]], cmd: &str) -> Result<u64, CmdError> {
        deadline_ms(nth(args, self.at), self.seconds, self.relative, cmd)
    }
}

/// Options of SET (`nx`..`keepttl`) and GETEX (`persist`), parsed like
/// Redis's `parseExtendedStringArgumentsOrReply`.
#[derive(Default)]
struct StringOptions {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<ExpireArg>,
}

/// (seconds?, relative?) of an expire option name, if it is one.
fn expire_unit(opt: &[u8]) -> Option<(bool, bool)> {
    let opt = args::c_str(opt);
    if is_c(opt, "EX") {
        Some((true, true))
    } else if is_c(opt, "PX") {
        Some((false, true))
    } else if is_c(opt, "EXAT") {
        Some((true, false))
    } else if is_c(opt, "PXAT") {
        Some((false, false))
    } else {
        None
    }
}

fn parse_string_options(args: &[&[u8]], for_set: bool) -> Result<StringOptions, CmdError> {
    let mut o = StringOptions::default();
    let mut j = if for_set { 3 } else { 2 };
    while j < args.len() {
        let opt = nth(args, j);
        let has_next = j + 1 < args.len();
        if for_set && is_c(opt, "NX") && !o.xx {
            o.nx = true;
        } else if for_set && is_c(opt, "XX") && !o.nx {
            o.xx = true;
        } else if for_set && is_c(opt, "GET") {
            o.get = true;
        } else if for_set && is_c(opt, "KEEPTTL") && o.expire.is_none() {
            o.keepttl = true;
        } else if !for_set && is_c(opt, "PERSIST") && o.expire.is_none() {
            o.persist = true;
        } else if let Some((seconds, relative)) = expire_unit(opt).filter(|&unit| {
            // The same option may repeat (the last wins); two kinds may not.
            !o.keepttl
                && !o.persist
                && has_next
                && match o.expire {
                    None => true,
                    Some(e) => (e.seconds, e.relative) == unit,
                }
        }) {
            o.expire = Some(ExpireArg {
                at: j + 1,
                seconds,
                relative,
            });
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

fn set(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, value) = (nth(args, 1), nth(args, 2));
    let o = if args.len() > 3 {
        parse_string_options(args, true)?
    } else {
        StringOptions::default()
    };
    let expiry = match o.expire {
        Some(e) => SetExpiry::At(e.deadline(args, "set")?),
        None if o.keepttl => SetExpiry::Keep,
        None => SetExpiry::Persist,
    };
    let mut g = ctx.lock_one(key)?;
    if o.get {
        match read_string(ctx, &mut g, key)? {
            Some(old) => ctx.out.bulk(old),
            None => ctx.out.null(),
        }
    }
    if o.nx || o.xx {
        let found = g.exists(key);
        if (o.nx && found) || (o.xx && !found) {
            if !o.get {
                ctx.out.null();
            }
            return Ok(());
        }
    }
    g.set(key, Value::string(value), expiry)?;
    ctx.notify(notify::STRING, "set", key);
    if matches!(expiry, SetExpiry::At(_)) {
        ctx.notify(notify::GENERIC, "expire", key);
    }
    if !o.get {
        ctx.out.ok();
    }
    Ok(())
}

fn setnx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, value) = (nth(args, 1), nth(args, 2));
    let mut g = ctx.lock_one(key)?;
    if g.exists(key) {
        ctx.out.int(0);
    } else {
        g.set(key, Value::string(value), SetExpiry::Persist)?;
        ctx.notify(notify::STRING, "set", key);
        ctx.out.int(1);
    }
    Ok(())
}

fn setex_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], seconds: bool, cmd: &str) -> CmdResult {
    let (key, value) = (nth(args, 1), nth(args, 3));
    let deadline = deadline_ms(nth(args, 2), seconds, true, cmd)?;
    let mut g = ctx.lock_one(key)?;
    g.set(key, Value::string(value), SetExpiry::At(deadline))?;
    ctx.notify(notify::STRING, "set", key);
    ctx.notify(notify::GENERIC, "expire", key);
    ctx.out.ok();
    Ok(())
}

fn setex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    setex_generic(ctx, args, true, "setex")
}

fn psetex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    setex_generic(ctx, args, false, "psetex")
}

fn mget(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let keys = args.get(1..).unwrap_or_default();
    let mut g = ctx.lock(keys.iter().copied())?;
    ctx.out.array(keys.len());
    for &key in keys {
        let found = g.get(key);
        ctx.srv.stats.hit(found.is_some());
        match found {
            Some(Value::Str(s)) => ctx.out.bulk(&s.bytes),
            // Missing keys and keys of other types both read as nil.
            #[allow(unreachable_patterns)]
            _ => ctx.out.null(),
        }
    }
    Ok(())
}

fn mset_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], nx: bool) -> CmdResult {
    if args.len() & 1 == 0 {
        return Err(CmdError::Arity(if nx { "msetnx" } else { "mset" }.into()));
    }
    let pairs = args.get(1..).unwrap_or_default();
    let mut g = ctx.lock(pairs.iter().step_by(2).copied())?;
    if nx && pairs.chunks_exact(2).any(|p| g.exists(nth(p, 0))) {
        ctx.out.int(0);
        return Ok(());
    }
    for pair in pairs.chunks_exact(2) {
        g.set(
            nth(pair, 0),
            Value::string(nth(pair, 1)),
            SetExpiry::Persist,
        )?;
        ctx.notify(notify::STRING, "set", nth(pair, 0));
    }
    if nx {
        ctx.out.int(1);
    } else {
        ctx.out.ok();
    }
    Ok(())
}

fn mset(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    mset_generic(ctx, args, false)
}

fn msetnx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    mset_generic(ctx, args, true)
}

fn getset(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, value) = (nth(args, 1), nth(args, 2));
    let mut g = ctx.lock_one(key)?;
    match read_string(ctx, &mut g, key)? {
        Some(old) => ctx.out.bulk(old),
        None => ctx.out.null(),
    }
    g.set(key, Value::string(value), SetExpiry::Persist)?;
    ctx.notify(notify::STRING, "set", key);
    Ok(())
}

fn getdel(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let mut g = ctx.lock_one(key)?;
    match read_string(ctx, &mut g, key)? {
        Some(old) => ctx.out.bulk(old),
        None => {
            ctx.out.null();
            return Ok(());
        }
    }
    g.remove(key);
    ctx.notify(notify::GENERIC, "del", key);
    Ok(())
}

fn getex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let o = parse_string_options(args, false)?;
    let mut g = ctx.lock_one(key)?;
    // Redis validates the expire time only once it has found the string.
    if read_string(ctx, &mut g, key)?.is_none() {
        ctx.out.null();
        return Ok(());
    }
    let deadline = o.expire.map(|e| e.deadline(args, "getex")).transpose()?;
    if let Some(v) = string_of(g.peek(key))? {
        ctx.out.bulk(v);
    }
    match (deadline, o.expire) {
        (Some(ms), Some(e)) if !e.relative && ms <= clock::now_ms() => {
            // An absolute time already past deletes the key.
            g.remove(key);
            ctx.notify(notify::GENERIC, "del", key);
        }
        (Some(ms), _) => {
            g.set_expire_at(key, Some(ms));
            ctx.notify(notify::GENERIC, "expire", key);
        }
        _ if o.persist && g.expire_at(key).flatten().is_some() => {
            g.set_expire_at(key, None);
            ctx.notify(notify::GENERIC, "persist", key);
        }
        _ => {}
    }
    Ok(())
}

fn append(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, tail) = (nth(args, 1), nth(args, 2));
    let mut g = ctx.lock_one(key)?;
    let len = match string_of(g.get(key))? {
        None => {
            g.set(key, Value::string(tail), SetExpiry::Persist)?;
            tail.len()
        }
        Some(cur) => {
            check_string_length(ctx, cur.len() as u64, tail.len() as u64)?;
            let bytes = existing_string_mut(&mut g, key)?.bytes_mut();
            bytes.extend_from_slice(tail);
            bytes.len()
        }
    };
    ctx.notify(notify::STRING, "append", key);
    ctx.out.int(len as i64);
    Ok(())
}

fn strlen(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let mut g = ctx.lock_one(key)?;
    let len = read_string(ctx, &mut g, key)?.map_or(0, <[u8]>::len);
    ctx.out.int(len as i64);
    Ok(())
}

/// INCR and friends: adds `by` to the integer at `key` (absent counts as 0).
fn incr_by(ctx: &mut Ctx<'_>, key: &[u8], by: i64) -> CmdResult {
    let mut g = ctx.lock_one(key)?;
    let current = match string_of(g.get(key))? {
        None => None,
        Some(v) => Some(args::parse_i64(v).ok_or(CmdError::NotInteger)?),
    };
    let value = current
        .unwrap_or(0)
        .checked_add(by)
        .ok_or_else(|| CmdError::err("increment or decrement would overflow"))?;
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(value).as_bytes();
    match current {
        // Rewrite in place, reusing the allocation; the result is a fresh
        // integer as far as OBJECT ENCODING is concerned.
        Some(_) => {
            let s = existing_string_mut(&mut g, key)?;
            s.bytes.clear();
            s.bytes.extend_from_slice(digits);
            s.raw = false;
            s.no_int = false;
        }
        None => g.set(key, Value::string(digits), SetExpiry::Persist)?,
    }
    ctx.notify(notify::STRING, "incrby", key);
    ctx.out.int(value);
    Ok(())
}

fn incr(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    incr_by(ctx, nth(args, 1), 1)
}

fn decr(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    incr_by(ctx, nth(args, 1), -1)
}

fn incrby(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let by = args::int(nth(args, 2))?;
    incr_by(ctx, nth(args, 1), by)
}

fn decrby(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let by = args::int(nth(args, 2))?;
    if by == i64::MIN {
        return Err(CmdError::err("decrement would overflow"));
    }
    incr_by(ctx, nth(args, 1), -by)
}

/// A long double as `getLongDoubleFromObjectOrReply` reads it.
fn long_double_arg(arg: &[u8]) -> Result<Option<LongDouble>, CmdError> {
    match LongDouble::parse(arg) {
        Some(Parsed::Finite(v)) => Ok(Some(v)),
        Some(Parsed::Infinite) => Ok(None),
        None => Err(CmdError::NotFloat),
    }
}

fn incrbyfloat(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let mut g = ctx.lock_one(key)?;
    let current = match string_of(g.get(key))? {
        None => Some(LongDouble::from_i64(0)),
        Some(v) => long_double_arg(v)?,
    };
    let by = long_double_arg(nth(args, 2))?;
    let sum = match (current, by) {
        (Some(a), Some(b)) => a.add(b),
        _ => None,
    }
    .ok_or_else(|| CmdError::err("increment would produce NaN or Infinity"))?;
    let text = sum.to_human();
    // Redis overwrites the value but keeps the TTL; the new object is
    // created without trying the int encoding (`OBJECT ENCODING` says embstr).
    let value = Value::Str(StrValue::without_int(text.clone().into_bytes()));
    g.set(key, value, SetExpiry::Keep)?;
    ctx.notify(notify::STRING, "incrbyfloat", key);
    ctx.out.bulk(text.as_bytes());
    Ok(())
}

fn getrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let start = args::int(nth(args, 2))?;
    let end = args::int(nth(args, 3))?;
    let mut g = ctx.lock_one(key)?;
    let s = read_string(ctx, &mut g, key)?.unwrap_or_default();
    match byte_range(s.len(), start, end) {
        Some((from, to)) => ctx.out.bulk(s.get(from..=to).unwrap_or_default()),
        None => ctx.out.bulk(b""),
    }
    Ok(())
}

/// GETRANGE's index arithmetic: the inclusive byte range of a string of
/// `len` bytes, or `None` when empty.
fn byte_range(len: usize, start: i64, end: i64) -> Option<(usize, usize)> {
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let len_i = len as i64;
    let start = if start < 0 {
        len_i.wrapping_add(start)
    } else {
        start
    }
    .max(0);
    let mut end = if end < 0 {
        len_i.wrapping_add(end)
    } else {
        end
    }
    .max(0);
    if end >= len_i {
        end = len_i - 1;
    }
    if start > end || len == 0 {
        return None;
    }
    Some((start as usize, end as usize))
}

fn setrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, value) = (nth(args, 1), nth(args, 3));
    let offset = args::int(nth(args, 2))?;
    if offset < 0 {
        return Err(CmdError::err("offset is out of range"));
    }
    let offset = offset as u64;
    let mut g = ctx.lock_one(key)?;
    let Some(cur) = string_of(g.get(key))? else {
        if value.is_empty() {
            ctx.out.int(0);
            return Ok(());
        }
        check_string_length(ctx, offset, value.len() as u64)?;
        let mut bytes = vec![0u8; offset as usize];
        bytes.extend_from_slice(value);
        let len = bytes.len();
        g.set(key, raw_string(bytes), SetExpiry::Persist)?;
        ctx.notify(notify::STRING, "setrange", key);
        ctx.out.int(len as i64);
        return Ok(());
    };
    if value.is_empty() {
        ctx.out.int(cur.len() as i64);
        return Ok(());
    }
    check_string_length(ctx, offset, value.len() as u64)?;
    let bytes = existing_string_mut(&mut g, key)?.bytes_mut();
    let (from, to) = (offset as usize, offset as usize + value.len());
    if bytes.len() < to {
        bytes.resize(to, 0);
    }
    if let Some(dst) = bytes.get_mut(from..to) {
        dst.copy_from_slice(value);
    }
    let len = bytes.len();
    ctx.notify(notify::STRING, "setrange", key);
    ctx.out.int(len as i64);
    Ok(())
}

/// LCS options.
#[derive(Default)]
struct LcsOptions {
    len: bool,
    idx: bool,
    with_match_len: bool,
    min_match_len: u64,
}

fn lcs(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (ka, kb) = (nth(args, 1), nth(args, 2));
    let (a, b) = {
        let mut g = ctx.lock([ka, kb])?;
        // Both lookups happen (and count) before the type check.
        let a = g.get(ka).cloned();
        ctx.srv.stats.hit(a.is_some());
        let b = g.get(kb).cloned();
        ctx.srv.stats.hit(b.is_some());
        let text = |v: Option<Value>| match v {
            None => Ok(Vec::new()),
            Some(Value::Str(s)) => Ok(s.bytes),
            #[allow(unreachable_patterns)]
            Some(_) => Err(CmdError::err(
                "The specified keys must contain string values",
            )),
        };
        (text(a)?, text(b)?)
    };
    // The table is built without holding any lock.
    let mut o = LcsOptions::default();
    let mut j = 3;
    while j < args.len() {
        let opt = nth(args, j);
        if is_c(opt, "IDX") {
            o.idx = true;
        } else if is_c(opt, "LEN") {
            o.len = true;
        } else if is_c(opt, "WITHMATCHLEN") {
            o.with_match_len = true;
        } else if is_c(opt, "MINMATCHLEN") && j + 1 < args.len() {
            o.min_match_len = args::int(nth(args, j + 1))?.max(0) as u64;
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if o.len && o.idx {
        return Err(CmdError::err(
            "If you want both the length and indexes, please just use IDX.",
        ));
    }
    if a.len() as u64 >= u64::from(u32::MAX - 1) || b.len() as u64 >= u64::from(u32::MAX - 1) {
        return Err(CmdError::err("String too long for LCS"));
    }
    let cells = (a.len() as u64 + 1) * (b.len() as u64 + 1);
    let bytes = cells.checked_mul(4);
    if bytes.is_some_and(|n| n > max_bulk_len(ctx)) {
        return Err(CmdError::err(
            "Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    let table = bytes
        .and_then(|_| usize::try_from(cells).ok())
        .and_then(|n| {
            let mut t: Vec<u32> = Vec::new();
            t.try_reserve_exact(n).ok()?;
            t.resize(n, 0);
            Some(t)
        })
        .ok_or_else(|| {
            CmdError::err("Insufficient memory, failed allocating transient memory for LCS")
        })?;
    let found = lcs_table(&a, &b, table);
    let total = found.len();
    if o.idx {
        let ranges = found.ranges(&a, &b, o.min_match_len);
        ctx.out.map(2);
        ctx.out.bulk(b"matches");
        ctx.out.array(ranges.len());
        for r in &ranges {
            ctx.out.array(2 + usize::from(o.with_match_len));
            ctx.out.array(2);
            ctx.out.int(i64::from(r.a.0));
            ctx.out.int(i64::from(r.a.1));
            ctx.out.array(2);
            ctx.out.int(i64::from(r.b.0));
            ctx.out.int(i64::from(r.b.1));
            if o.with_match_len {
                ctx.out
                    .int(i64::from(r.a.1.wrapping_sub(r.a.0).wrapping_add(1)));
            }
        }
        ctx.out.bulk(b"len");
        ctx.out.int(i64::from(total));
    } else if o.len {
        ctx.out.int(i64::from(total));
    } else {
        ctx.out.bulk(&found.string(&a, &b));
    }
    Ok(())
}

/// The dynamic-programming table of LCS lengths: cell `(i, j)` holds the
/// length of the LCS of `a[..i]` and `b[..j]`.
struct LcsTable {
    cells: Vec<u32>,
    cols: usize,
    alen: usize,
    blen: usize,
}

/// One matching range: inclusive byte ranges in `a` and `b`.
struct LcsRange {
    a: (u32, u32),
    b: (u32, u32),
}

fn lcs_table(a: &[u8], b: &[u8], mut cells: Vec<u32>) -> LcsTable {
    let cols = b.len() + 1;
    for (i, &ca) in a.iter().enumerate() {
        for (j, &cb) in b.iter().enumerate() {
            let (up_left, up, left) = (i * cols + j, i * cols + j + 1, (i + 1) * cols + j);
            let at = |k: usize, cells: &[u32]| cells.get(k).copied().unwrap_or(0);
            let v = if ca == cb {
                at(up_left, &cells) + 1
            } else {
                at(up, &cells).max(at(left, &cells))
            };
            if let Some(c) = cells.get_mut((i + 1) * cols + j + 1) {
                *c = v;
            }
        }
    }
    LcsTable {
        cells,
        cols,
        alen: a.len(),
        blen: b.len(),
    }
}

impl LcsTable {
    fn at(&self, i: usize, j: usize) -> u32 {
        self.cells.get(i * self.cols + j).copied().unwrap_or(0)
    }

    fn len(&self) -> u32 {
        self.at(self.alen, self.blen)
    }

    /// The LCS itself, walking the table back from the end as Redis does.
    fn string(&self, a: &[u8], b: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; self.len() as usize];
        let mut idx = out.len();
        let (mut i, mut j) = (self.alen, self.blen);
        while i > 0 && j > 0 {
            let (ca, cb) = (a.get(i - 1), b.get(j - 1));
            if ca == cb {
                idx -= 1;
                if let (Some(slot), Some(&c)) = (out.get_mut(idx), ca) {
                    *slot = c;
                }
                i -= 1;
                j -= 1;
            } else if self.at(i - 1, j) > self.at(i, j - 1) {
                i -= 1;
            } else {
                j -= 1;
            }
        }
        out
    }

    /// The matching ranges for `IDX`, from the end of the strings backwards,
    /// exactly as Redis's `lcsCommand` emits them.
    fn ranges(&self, a: &[u8], b: &[u8], min_len: u64) -> Vec<LcsRange> {
        let mut out = Vec::new();
        let alen = self.alen as u32;
        let (mut a_start, mut a_end, mut b_start, mut b_end) = (alen, 0u32, 0u32, 0u32);
        let (mut i, mut j) = (self.alen, self.blen);
        while i > 0 && j > 0 {
            let mut emit = false;
            if a.get(i - 1) == b.get(j - 1) {
                let (i1, j1) = ((i - 1) as u32, (j - 1) as u32);
                if a_start == alen {
                    (a_start, a_end, b_start, b_end) = (i1, i1, j1, j1);
                } else if a_start == i as u32 && b_start == j as u32 {
                    a_start -= 1;
                    b_start -= 1;
                } else {
                    emit = true;
                }
                if a_start == 0 || b_start == 0 {
                    emit = true;
                }
                i -= 1;
                j -= 1;
            } else {
                if self.at(i - 1, j) > self.at(i, j - 1) {
                    i -= 1;
                } else {
                    j -= 1;
                }
                if a_start != alen {
                    emit = true;
                }
            }
            if emit {
                let match_len = u64::from(a_end.wrapping_sub(a_start).wrapping_add(1));
                if min_len == 0 || match_len >= min_len {
                    out.push(LcsRange {
                        a: (a_start, a_end),
                        b: (b_start, b_end),
                    });
                }
                a_start = alen;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getrange_indexes() {
        assert_eq!(byte_range(5, 0, -1), Some((0, 4)));
        assert_eq!(byte_range(5, -3, -1), Some((2, 4)));
        assert_eq!(byte_range(5, -1, -3), None);
        assert_eq!(byte_range(5, 3, 100), Some((3, 4)));
        assert_eq!(byte_range(5, 4, 2), None);
        assert_eq!(byte_range(0, 0, -1), None);
        assert_eq!(byte_range(5, i64::MIN, i64::MAX), Some((0, 4)));
        assert_eq!(byte_range(5, -100, 0), Some((0, 0)));
    }

    #[test]
    fn lcs_like_redis() {
        let (a, b) = (b"ohmytext".as_slice(), b"mynewtext".as_slice());
        let n = (a.len() + 1) * (b.len() + 1);
        let t = lcs_table(a, b, vec![0; n]);
        assert_eq!(t.len(), 6);
        assert_eq!(t.string(a, b), b"mytext");
        let r = t.ranges(a, b, 0);
        let flat: Vec<_> = r.iter().map(|r| (r.a, r.b)).collect();
        assert_eq!(flat, vec![((4, 7), (5, 8)), ((2, 3), (0, 1))]);
        assert_eq!(t.ranges(a, b, 4).len(), 1);
    }

    #[test]
    fn options_follow_redis_exclusions() {
        let parse = |v: &[&str], set: bool| {
            let args: Vec<&[u8]> = v.iter().map(|s| s.as_bytes()).collect();
            parse_string_options(&args, set).is_ok()
        };
        assert!(parse(&["set", "k", "v", "EX", "1", "EX", "2"], true));
        assert!(!parse(&["set", "k", "v", "EX", "1", "PX", "2"], true));
        assert!(!parse(&["set", "k", "v", "KEEPTTL", "EX", "1"], true));
        assert!(!parse(&["set", "k", "v", "NX", "XX"], true));
        assert!(parse(&["set", "k", "v", "nx\0x", "get"], true));
        assert!(!parse(&["set", "k", "v", "EX"], true));
        assert!(parse(&["getex", "k", "PERSIST"], false));
        assert!(!parse(&["getex", "k", "PERSIST", "EX", "1"], false));
        assert!(!parse(&["getex", "k", "NX"], false));
        assert!(!parse(&["getex", "k", "KEEPTTL"], false));
    }
}
