//! String commands: GET SET and friends.

use amber_storage::{clock, Guard, SetExpiry, Value};

use super::args::{self, is};
use super::error::{CmdError, CmdResult};
use super::{Ctx, Handler};

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[("get", get), ("set", set)];

/// The string stored at `key`: `Ok(None)` when absent, `WRONGTYPE` when the
/// key holds another type. Counts a keyspace hit or miss.
pub fn read_string<'g>(
    ctx: &Ctx<'_>,
    g: &'g mut Guard<'_>,
    key: &[u8],
) -> Result<Option<&'g [u8]>, CmdError> {
    let found = g.get(key);
    ctx.srv.stats.hit(found.is_some());
    match found {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(&s.bytes)),
        #[allow(unreachable_patterns)]
        Some(_) => Err(CmdError::WrongType),
    }
}

fn get(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = args.get(1).copied().unwrap_or_default();
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

#[derive(Default)]
struct SetOptions {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    /// (argument, seconds?, relative?)
    expire: Option<(usize, bool, bool)>,
}

fn parse_set_options(args: &[&[u8]]) -> Result<SetOptions, CmdError> {
    let mut o = SetOptions::default();
    let mut j = 3;
    while j < args.len() {
        let opt = args.get(j).copied().unwrap_or_default();
        let has_next = j + 1 < args.len();
        let no_expire = o.expire.is_none();
        if is(opt, "NX") && !o.xx {
            o.nx = true;
        } else if is(opt, "XX") && !o.nx {
            o.xx = true;
        } else if is(opt, "GET") {
            o.get = true;
        } else if is(opt, "KEEPTTL") && no_expire {
            o.keepttl = true;
        } else if (is(opt, "EX") || is(opt, "PX") || is(opt, "EXAT") || is(opt, "PXAT"))
            && !o.keepttl
            && has_next
            && (no_expire || o.expire.is_some_and(|(_, s, r)| (s, r) == unit_of(opt)))
        {
            let (seconds, relative) = unit_of(opt);
            o.expire = Some((j + 1, seconds, relative));
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

/// (seconds?, relative?) of an expire option name.
fn unit_of(opt: &[u8]) -> (bool, bool) {
    if is(opt, "EX") {
        (true, true)
    } else if is(opt, "PX") {
        (false, true)
    } else if is(opt, "EXAT") {
        (true, false)
    } else {
        (false, false)
    }
}

fn set(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, value) = (
        args.get(1).copied().unwrap_or_default(),
        args.get(2).copied().unwrap_or_default(),
    );
    let o = parse_set_options(args)?;
    let expiry = match o.expire {
        Some((i, seconds, relative)) => SetExpiry::At(deadline_ms(
            args.get(i).copied().unwrap_or_default(),
            seconds,
            relative,
            "set",
        )?),
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
    let found = g.exists(key);
    if (o.nx && found) || (o.xx && !found) {
        if !o.get {
            ctx.out.null();
        }
        return Ok(());
    }
    g.set(key, Value::string(value), expiry)?;
    if !o.get {
        ctx.out.ok();
    }
    Ok(())
}
