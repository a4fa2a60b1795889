//! Expiry commands: EXPIRE PEXPIRE EXPIREAT PEXPIREAT (NX XX GT LT), TTL
//! PTTL EXPIRETIME PEXPIRETIME PERSIST.
//!
//! As in Redis 7.0, a deadline at or before now deletes the key at once (the
//! command answers 1), negative relative times are allowed, and only an
//! overflow of the unit conversion or of `now + time` is an error.

use amber_storage::clock;

use super::args;
use super::error::{CmdError, CmdResult};
use super::strings::invalid_expire;
use super::{Ctx, Handler};
use crate::notify;

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("expire", expire),
    ("pexpire", pexpire),
    ("expireat", expireat),
    ("pexpireat", pexpireat),
    ("ttl", ttl),
    ("pttl", pttl),
    ("expiretime", expiretime),
    ("pexpiretime", pexpiretime),
    ("persist", persist),
];

fn expire(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, args, "expire", Unit::Seconds, true)
}

fn pexpire(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, args, "pexpire", Unit::Millis, true)
}

fn expireat(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, args, "expireat", Unit::Seconds, false)
}

fn pexpireat(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, args, "pexpireat", Unit::Millis, false)
}

/// The unit of an expire command's time argument.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Seconds,
    Millis,
}

/// The NX / XX / GT / LT conditions of the expire commands.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
struct Conditions {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

impl Conditions {
    /// Parses the options after the time, with Redis's checks and texts.
    fn parse(opts: &[&[u8]]) -> Result<Self, CmdError> {
        let mut c = Conditions::default();
        for opt in opts {
            if args::is(opt, "NX") {
                c.nx = true;
            } else if args::is(opt, "XX") {
                c.xx = true;
            } else if args::is(opt, "GT") {
                c.gt = true;
            } else if args::is(opt, "LT") {
                c.lt = true;
            } else {
                // Redis formats the option as a C string: it stops at a NUL.
                let shown = opt.split(|&b| b == 0).next().unwrap_or_default();
                return Err(CmdError::err(format!(
                    "Unsupported option {}",
                    args::text(shown)
                )));
            }
        }
        if c.nx && (c.xx || c.gt || c.lt) {
            return Err(CmdError::err(
                "NX and XX, GT or LT options at the same time are not compatible",
            ));
        }
        if c.gt && c.lt {
            return Err(CmdError::err(
                "GT and LT options at the same time are not compatible",
            ));
        }
        Ok(c)
    }

    /// Whether a new deadline `when` may replace `current` (`None`: no TTL,
    /// which GT and LT treat as an infinite TTL).
    fn allow(self, current: Option<i64>, when: i64) -> bool {
        if self.nx && current.is_some() {
            return false;
        }
        if self.xx && current.is_none() {
            return false;
        }
        let greater = match current {
            Some(c) => when > c,
            None => false,
        };
        if self.gt && !greater {
            return false;
        }
        if self.lt && current.is_some_and(|c| when >= c) {
            return false;
        }
        true
    }
}

/// The absolute deadline in ms an expire command asks for, with Redis's
/// overflow checks. May be negative or in the past.
fn deadline(arg: &[u8], unit: Unit, base: i64, cmd: &str) -> Result<i64, CmdError> {
    let mut when = args::int(arg)?;
    if unit == Unit::Seconds {
        when = when.checked_mul(1000).ok_or_else(|| invalid_expire(cmd))?;
    }
    when.checked_add(base).ok_or_else(|| invalid_expire(cmd))
}

fn expire_generic(
    ctx: &mut Ctx<'_>,
    args: &[&[u8]],
    cmd: &str,
    unit: Unit,
    relative: bool,
) -> CmdResult {
    let key = args.get(1).copied().unwrap_or_default();
    let cond = Conditions::parse(args.get(3..).unwrap_or_default())?;
    let base = if relative { clock::now_ms() as i64 } else { 0 };
    let when = deadline(args.get(2).copied().unwrap_or_default(), unit, base, cmd)?;
    let mut g = ctx.lock_one(key)?;
    // A write lookup: refreshes the access time, counts no hit.
    if g.get(key).is_none() {
        drop(g);
        ctx.out.int(0);
        return Ok(());
    }
    let current = g.expire_at(key).flatten().map(|t| t as i64);
    if !cond.allow(current, when) {
        drop(g);
        ctx.out.int(0);
        return Ok(());
    }
    if when <= g.now_ms() as i64 {
        g.delete_key(key);
        ctx.notify(notify::GENERIC, "del", key);
    } else {
        g.set_expire_at(key, Some(when as u64));
        ctx.notify(notify::GENERIC, "expire", key);
    }
    drop(g);
    ctx.out.int(1);
    Ok(())
}

fn ttl(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, args, false, false)
}

fn pttl(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, args, true, false)
}

fn expiretime(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, args, false, true)
}

fn pexpiretime(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, args, true, true)
}

/// TTL, PTTL, EXPIRETIME, PEXPIRETIME: -2 for a missing key, -1 without a
/// deadline; seconds are rounded to the nearest, as Redis does.
fn ttl_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], millis: bool, absolute: bool) -> CmdResult {
    let key = args.get(1).copied().unwrap_or_default();
    let mut g = ctx.lock_one(key)?;
    let found = g.expire_at(key);
    // The time left is counted on the wall clock, even in a script whose
    // keys see the time it started (Redis's `mstime()` here): a key past
    // its deadline there has 0 left.
    let now = if ctx.client.in_script {
        amber_storage::clock::now_ms()
    } else {
        g.now_ms()
    };
    drop(g);
    ctx.srv.stats.hit(found.is_some());
    let reply = match found {
        None => -2,
        Some(None) => -1,
        Some(Some(at)) => {
            // Deadlines are at most i64::MAX, so rounding in u64 cannot
            // overflow (Redis's C arithmetic gives the same exact result).
            let t = if absolute { at } else { at.saturating_sub(now) };
            let t = if millis {
                t
            } else {
                t.saturating_add(500) / 1000
            };
            i64::try_from(t).unwrap_or(i64::MAX)
        }
    };
    ctx.out.int(reply);
    Ok(())
}

fn persist(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = args.get(1).copied().unwrap_or_default();
    let mut g = ctx.lock_one(key)?;
    // A write lookup: refreshes the access time, counts no hit.
    let had_ttl = g.get(key).is_some() && matches!(g.expire_at(key), Some(Some(_)));
    if had_ttl {
        g.set_expire_at(key, None);
        ctx.notify(notify::GENERIC, "persist", key);
    }
    drop(g);
    ctx.out.int(i64::from(had_ttl));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(opts: &[&str]) -> Result<Conditions, CmdError> {
        let v: Vec<&[u8]> = opts.iter().map(|s| s.as_bytes()).collect();
        Conditions::parse(&v)
    }

    #[test]
    fn condition_errors() {
        assert!(parse(&["nx", "NX"]).is_ok());
        assert!(parse(&["gt", "xx"]).is_ok());
        for bad in [&["nx", "xx"][..], &["nx", "gt"], &["lt", "nx"]] {
            assert!(matches!(parse(bad), Err(CmdError::Msg(m)) if m.starts_with("ERR NX and XX")));
        }
        assert!(
            matches!(parse(&["gt", "lt"]), Err(CmdError::Msg(m)) if m.starts_with("ERR GT and LT"))
        );
        assert_eq!(
            parse(&["foo"]),
            Err(CmdError::msg("ERR Unsupported option foo"))
        );
    }

    #[test]
    fn conditions() {
        let c = |o: &[&str]| parse(o).expect("valid");
        assert!(c(&[]).allow(None, 5));
        assert!(!c(&["nx"]).allow(Some(1), 5));
        assert!(c(&["nx"]).allow(None, 5));
        assert!(!c(&["xx"]).allow(None, 5));
        assert!(!c(&["gt"]).allow(None, 5));
        assert!(!c(&["gt"]).allow(Some(5), 5));
        assert!(c(&["gt"]).allow(Some(4), 5));
        assert!(c(&["lt"]).allow(None, 5));
        assert!(!c(&["lt"]).allow(Some(5), 5));
        assert!(c(&["lt", "xx"]).allow(Some(6), 5));
        assert!(!c(&["lt", "xx"]).allow(None, 5));
    }

    #[test]
    fn deadlines_overflow_like_redis() {
        let e = |a: &str, u, b| deadline(a.as_bytes(), u, b, "expire");
        assert_eq!(e("-5", Unit::Seconds, 1000), Ok(-4000));
        assert_eq!(
            e("9223372036854775", Unit::Seconds, 0),
            Ok(9223372036854775000)
        );
        assert!(e("9223372036854776", Unit::Seconds, 0).is_err());
        assert!(e("-9223372036854776", Unit::Seconds, 0).is_err());
        assert!(e("9223372036854775807", Unit::Millis, 1).is_err());
        assert_eq!(e("-9223372036854775808", Unit::Millis, 5), Ok(i64::MIN + 5));
        assert!(e("x", Unit::Millis, 0).is_err());
    }
}
