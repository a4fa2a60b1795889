//! Connection commands: PING ECHO QUIT HELLO AUTH SELECT RESET.

use std::sync::atomic::Ordering;

use amber_storage::DB_COUNT;

use super::args::{self, is};
use super::error::{CmdError, CmdResult, DB_RANGE};
use super::{Ctx, Handler};
use crate::resp::Protocol;

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("ping", ping),
    ("echo", echo),
    ("quit", quit),
    ("hello", hello),
    ("auth", auth),
    ("select", select),
    ("reset", reset),
];

/// The Redis version Amber reports to clients (`HELLO`, `INFO`), so clients
/// enable the Redis 7.0 features Amber implements.
pub const REDIS_VERSION: &str = "7.0.15";

fn ping(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    if args.len() > 2 {
        return Err(CmdError::Arity("ping".into()));
    }
    // A RESP2 subscriber gets PING's answer as a message-like array.
    if ctx.client.subs.active && ctx.out.proto == Protocol::Resp2 {
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out.bulk(args.get(1).copied().unwrap_or_default());
        return Ok(());
    }
    match args.get(1) {
        None => ctx.out.simple("PONG"),
        Some(msg) => ctx.out.bulk(msg),
    }
    Ok(())
}

fn echo(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    ctx.out.bulk(args.get(1).copied().unwrap_or_default());
    Ok(())
}

fn quit(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    ctx.out.ok();
    ctx.client.close_after_reply = true;
    Ok(())
}

/// Checks a password for `user` (enabled, and `nopass` or one of its
/// passwords), as Redis's `ACLCheckUserCredentials`; a failure goes to
/// `ACL LOG`.
fn password_ok(ctx: &Ctx<'_>, user: &[u8], pass: &[u8]) -> bool {
    let ok = ctx.srv.acl.get(user).is_some_and(|u| u.password_ok(pass));
    if !ok {
        let context = if ctx.client.multi.is_some() {
            "multi"
        } else {
            "toplevel"
        };
        super::log_acl(ctx, "auth", context, b"AUTH", user);
    }
    ok
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

fn auth(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (user, pass) = match args {
        [_, pass] => {
            if !ctx.srv.auth_required() {
                return Err(CmdError::err(
                    "AUTH <password> called without any password configured for the default user. \
                     Are you sure your configuration is correct?",
                ));
            }
            (&b"default"[..], *pass)
        }
        [_, user, pass] => (*user, *pass),
        _ => return Err(CmdError::Syntax),
    };
    if password_ok(ctx, user, pass) {
        ctx.client.login(user);
        ctx.out.ok();
        Ok(())
    } else {
        Err(CmdError::msg(WRONGPASS))
    }
}

fn hello(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let mut version = None;
    if let Some(v) = args.get(1) {
        let v = args::parse_i64(v)
            .ok_or_else(|| CmdError::err("Protocol version is not an integer or out of range"))?;
        if !(2..=3).contains(&v) {
            return Err(CmdError::msg("NOPROTO unsupported protocol version"));
        }
        version = Some(v);
    }
    let mut i = 2;
    let mut name = None;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = args.get(i).copied().unwrap_or_default();
        if is(opt, "AUTH") && more >= 2 {
            let (user, pass) = (
                args.get(i + 1).copied().unwrap_or_default(),
                args.get(i + 2).copied().unwrap_or_default(),
            );
            if !password_ok(ctx, user, pass) {
                return Err(CmdError::msg(WRONGPASS));
            }
            ctx.client.login(user);
            i += 3;
        } else if is(opt, "SETNAME") && more >= 1 {
            let n = args.get(i + 1).copied().unwrap_or_default();
            check_client_name(n)?;
            name = Some(n.to_vec());
            i += 2;
        } else {
            return Err(CmdError::err(format!(
                "Syntax error in HELLO option '{}'",
                args::text(opt)
            )));
        }
    }
    if !ctx.client.authenticated && ctx.srv.auth_required() {
        return Err(CmdError::msg(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH \
             <user> <pass> option can be used to authenticate the client and select the RESP protocol \
             version at the same time",
        ));
    }
    if let Some(n) = name {
        ctx.client.handle.info.lock().name = n;
    }
    if let Some(v) = version {
        ctx.out.proto = if v == 3 {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        };
        ctx.client.handle.resp.store(v as usize, Ordering::Relaxed);
    }
    let proto = if ctx.out.proto == Protocol::Resp3 {
        3
    } else {
        2
    };
    let out = &mut *ctx.out;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(proto);
    out.bulk(b"id");
    out.int(ctx.client.handle.id as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
    Ok(())
}

/// Redis's rule for client names: no spaces, newlines or other special characters.
pub fn check_client_name(name: &[u8]) -> CmdResult {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CmdError::err(
            "Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

fn select(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let db =
        args::parse_i64(args.get(1).copied().unwrap_or_default()).ok_or(CmdError::NotInteger)?;
    if db < 0 || db as usize >= DB_COUNT {
        return Err(CmdError::msg(DB_RANGE));
    }
    ctx.client.select(db as usize);
    ctx.out.ok();
    Ok(())
}

fn reset(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    super::multi::reset_client(ctx);
    super::replication::stop_monitoring(ctx);
    let handle = ctx.client.handle.clone();
    ctx.srv
        .tracking
        .disable(ctx.srv, &handle, &mut ctx.client.tracking);
    ctx.client.select(0);
    ctx.client.no_touch = false;
    ctx.client.authenticated = !ctx.srv.auth_required();
    ctx.client.user = b"default".to_vec();
    ctx.client.acl_unrestricted_at = 0;
    ctx.client.handle.info.lock().user = b"default".to_vec();
    ctx.out.proto = Protocol::Resp2;
    ctx.client.handle.resp.store(2, Ordering::Relaxed);
    {
        let mut info = ctx.client.handle.info.lock();
        info.name.clear();
        info.no_evict = false;
        info.no_touch = false;
    }
    ctx.out.simple("RESET");
    Ok(())
}
