//! CLIENT and its subcommands, as Redis 7.0's `networking.c`.
//!
//! Amber extensions (Redis 7.2's, absent from 7.0's metadata): `CLIENT
//! SETINFO` and `CLIENT NO-TOUCH`, registered through [`EXTENSIONS`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::admin::reply_help;
use super::args::{is, parse_i64, text};
use super::connection::check_client_name;
use super::error::{CmdError, CmdResult};
use super::table::{Extension, Flags};
use super::{Ctx, Handler};
use crate::client::ClientHandle;
use crate::pause::Mode;

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("client|id", client_id),
    ("client|setname", client_setname),
    ("client|getname", client_getname),
    ("client|list", client_list),
    ("client|info", client_info),
    ("client|kill", client_kill),
    ("client|no-evict", client_no_evict),
    ("client|unblock", client_unblock),
    ("client|pause", client_pause),
    ("client|unpause", client_unpause),
    ("client|reply", client_reply),
    ("client|help", client_help),
    ("client|tracking", client_tracking),
    ("client|caching", client_caching),
    ("client|getredir", client_getredir),
    ("client|trackinginfo", client_trackinginfo),
];

/// Amber's own CLIENT subcommands (Redis 7.2's SETINFO and NO-TOUCH), for
/// `cmd::all_extensions()`.
pub fn extensions() -> Vec<(Extension, Handler)> {
    vec![
        (
            Extension {
                name: "client|setinfo",
                arity: 4,
                flags: Flags::NO_AUTH,
                summary: "Set client or connection specific info: LIB-NAME or LIB-VER.",
            },
            client_setinfo as Handler,
        ),
        (
            Extension {
                name: "client|no-touch",
                arity: 3,
                flags: Flags::default(),
                summary: "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.",
            },
            client_no_touch as Handler,
        ),
    ]
}

fn client_id(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    ctx.out.int(ctx.client.handle.id as i64);
    Ok(())
}

fn client_setname(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let name = args.get(2).copied().unwrap_or_default();
    check_client_name(name)?;
    ctx.client.handle.info.lock().name = name.to_vec();
    ctx.out.ok();
    Ok(())
}

fn client_getname(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let name = ctx.client.handle.info.lock().name.clone();
    if name.is_empty() {
        ctx.out.null();
    } else {
        ctx.out.bulk(&name);
    }
    Ok(())
}

/// Client types for `TYPE` filters (Redis's `getClientTypeByName`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientType {
    Normal,
    Replica,
    Pubsub,
    Master,
}

fn client_type(name: &[u8]) -> Result<ClientType, CmdError> {
    if is(name, "normal") {
        Ok(ClientType::Normal)
    } else if is(name, "slave") || is(name, "replica") {
        Ok(ClientType::Replica)
    } else if is(name, "pubsub") {
        Ok(ClientType::Pubsub)
    } else if is(name, "master") {
        Ok(ClientType::Master)
    } else {
        Err(CmdError::err(format!(
            "Unknown client type '{}'",
            text(name)
        )))
    }
}

/// A replica of this server is of type `replica`, the link of this
/// replica's master of type `master`; every other client is normal
/// (subscriptions are not visible from here yet).
fn type_of(c: &ClientHandle) -> ClientType {
    let info = c.info.lock();
    if info.replica {
        ClientType::Replica
    } else if info.master {
        ClientType::Master
    } else {
        ClientType::Normal
    }
}

/// One `CLIENT LIST` line, in Redis 7.0.15's format (without the newline).
pub fn client_line(c: &ClientHandle, close_after_reply: bool) -> String {
    client_line_with(c, close_after_reply, None)
}

/// [`client_line`] with the query buffer's length when it is known better
/// than the handle's figure (the caller's own line: its buffer holds the
/// command being run, as Redis shows `qbuf=26` for `CLIENT LIST` itself).
pub fn client_line_with(c: &ClientHandle, close_after_reply: bool, qbuf: Option<usize>) -> String {
    let info = c.info.lock().clone();
    let mut flags = String::new();
    if info.replica {
        flags.push('S');
    }
    if info.monitor {
        flags.push('O');
    }
    if info.master {
        flags.push('M');
    }
    if info.pubsub {
        flags.push('P');
    }
    if info.multi.is_some() {
        flags.push('x');
    }
    if c.blocked.load(Ordering::Relaxed) {
        flags.push('b');
    }
    if let Some(t) = info.tracking {
        flags.push('t');
        if t.broken {
            flags.push('R');
        }
        if t.bcast {
            flags.push('B');
        }
    }
    if c.watch_dirty.load(Ordering::Relaxed) {
        flags.push('d');
    }
    if close_after_reply {
        flags.push('c');
    }
    if c.killed.load(Ordering::Relaxed) {
        flags.push('A');
    }
    if info.no_evict {
        flags.push('e');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let qbuf = qbuf.unwrap_or(info.qbuf);
    let qbuf_free = if qbuf == 0 {
        0
    } else {
        16 * 1024usize.saturating_sub(qbuf)
    };
    let tot_mem = 16 * 1024 + qbuf + info.name.len() + 1024;
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem=0 tot-mem={} events=r cmd={} user={} redir={} resp={}",
        c.id,
        c.addr,
        c.laddr,
        c.fd,
        String::from_utf8_lossy(&info.name),
        c.created.elapsed().as_secs(),
        c.idle_secs(),
        flags,
        c.db.load(Ordering::Relaxed),
        info.subs[0],
        info.subs[1],
        info.subs[2],
        info.multi.map_or(-1, |n| n as i64),
        qbuf,
        qbuf_free,
        tot_mem,
        if info.last_cmd.is_empty() { "NULL" } else { info.last_cmd.as_str() },
        String::from_utf8_lossy(&info.user),
        info.tracking.map_or(-1, |t| t.redirect as i64),
        c.resp.load(Ordering::Relaxed),
    )
}

fn line_for(ctx: &Ctx<'_>, c: &Arc<ClientHandle>) -> String {
    if Arc::ptr_eq(c, &ctx.client.handle) {
        let qbuf = ctx.client.batch_input_len;
        client_line_with(c, ctx.client.close_after_reply, Some(qbuf))
    } else {
        client_line(c, false)
    }
}

fn client_list(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let mut out = String::new();
    match args {
        [_, _] => {
            for c in ctx.srv.clients.all() {
                out.push_str(&line_for(ctx, &c));
                out.push('\n');
            }
        }
        [_, _, opt, ty] if is(opt, "type") => {
            let want = client_type(ty)?;
            for c in ctx.srv.clients.all() {
                if type_of(&c) == want {
                    out.push_str(&line_for(ctx, &c));
                    out.push('\n');
                }
            }
        }
        [_, _, opt, ids @ ..] if is(opt, "id") && !ids.is_empty() => {
            let mut wanted = Vec::new();
            for id in ids {
                let id = parse_i64(id).ok_or_else(|| CmdError::err("Invalid client ID"))?;
                wanted.push(id);
            }
            for id in wanted {
                if let Some(c) = u64::try_from(id)
                    .ok()
                    .and_then(|id| ctx.srv.clients.get(id))
                {
                    out.push_str(&line_for(ctx, &c));
                    out.push('\n');
                }
            }
        }
        _ => return Err(CmdError::Syntax),
    }
    ctx.out.verbatim("txt", out.as_bytes());
    Ok(())
}

fn client_info(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let mut line = line_for(ctx, &ctx.client.handle.clone());
    line.push('\n');
    ctx.out.verbatim("txt", line.as_bytes());
    Ok(())
}

fn client_kill(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let mut addr: Option<String> = None;
    let mut laddr: Option<String> = None;
    let mut ty: Option<ClientType> = None;
    let mut user: Option<Vec<u8>> = None;
    let mut id: u64 = 0;
    let mut skipme = true;
    let old_form = args.len() == 3;
    if old_form {
        addr = Some(text(args.get(2).copied().unwrap_or_default()));
        skipme = false;
    } else {
        let mut i = 2;
        while i < args.len() {
            let opt = args.get(i).copied().unwrap_or_default();
            let Some(&val) = args.get(i + 1) else {
                return Err(CmdError::Syntax);
            };
            if is(opt, "id") {
                match parse_i64(val) {
                    Some(n) if n >= 1 => id = n as u64,
                    _ => return Err(CmdError::err("client-id should be greater than 0")),
                }
            } else if is(opt, "type") {
                ty = Some(client_type(val)?);
            } else if is(opt, "addr") {
                addr = Some(text(val));
            } else if is(opt, "laddr") {
                laddr = Some(text(val));
            } else if is(opt, "user") {
                if ctx.srv.acl.get(val).is_none() {
                    return Err(CmdError::err(format!("No such user '{}'", text(val))));
                }
                user = Some(val.to_vec());
            } else if is(opt, "skipme") {
                if is(val, "yes") {
                    skipme = true;
                } else if is(val, "no") {
                    skipme = false;
                } else {
                    return Err(CmdError::Syntax);
                }
            } else {
                return Err(CmdError::Syntax);
            }
            i += 2;
        }
    }
    let mut killed = 0;
    let mut close_me = false;
    for c in ctx.srv.clients.all() {
        if addr.as_ref().is_some_and(|a| *a != c.addr.to_string()) {
            continue;
        }
        if laddr.as_ref().is_some_and(|a| *a != c.laddr.to_string()) {
            continue;
        }
        if ty.is_some_and(|t| t != type_of(&c)) {
            continue;
        }
        if user.as_ref().is_some_and(|u| !c.user_is(u)) {
            continue;
        }
        if id != 0 && c.id != id {
            continue;
        }
        let me = Arc::ptr_eq(&c, &ctx.client.handle);
        if me && skipme {
            continue;
        }
        if me {
            close_me = true;
        } else {
            c.kill();
        }
        killed += 1;
    }
    if old_form {
        if killed == 0 {
            return Err(CmdError::err("No such client"));
        }
        ctx.out.ok();
    } else {
        ctx.out.int(killed);
    }
    if close_me {
        ctx.client.close_after_reply = true;
    }
    Ok(())
}

fn on_off(arg: &[u8]) -> Result<bool, CmdError> {
    if is(arg, "on") {
        Ok(true)
    } else if is(arg, "off") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

/// `CLIENT UNBLOCK id [TIMEOUT|ERROR]` (`clientCommand`): 1 if the client
/// was blocked and is now answered (its timeout reply, or
/// `-UNBLOCKED client unblocked via CLIENT UNBLOCK`), else 0.
fn client_unblock(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    if args.len() > 4 {
        return Err(CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            text(args.get(1).copied().unwrap_or_default())
        )));
    }
    let error = match args.get(3) {
        None => false,
        Some(a) if is(a, "timeout") => false,
        Some(a) if is(a, "error") => true,
        Some(_) => {
            return Err(CmdError::err(
                "CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ))
        }
    };
    let id = super::args::int(args.get(2).copied().unwrap_or_default())?;
    let done = u64::try_from(id).is_ok_and(|id| ctx.srv.blocking.unblock(id, error));
    ctx.out.int(i64::from(done));
    Ok(())
}

/// `CLIENT PAUSE timeout [WRITE|ALL]` (see `crate::pause`).
fn client_pause(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let mode = match args {
        [_, _, _] => Mode::All,
        [_, _, _, m] if is(m, "all") => Mode::All,
        [_, _, _, m] if is(m, "write") => Mode::Write,
        [_, _, _, _] => return Err(CmdError::err("CLIENT PAUSE mode must be WRITE or ALL")),
        _ => {
            return Err(CmdError::err(format!(
                "unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
                text(args.get(1).copied().unwrap_or_default())
            )))
        }
    };
    let ms = crate::blocking::parse_timeout_ms(args.get(2).copied().unwrap_or_default())?;
    let now = Instant::now();
    // Redis 7.0 takes any timeout (a pause for ever, in effect, until
    // CLIENT UNPAUSE); an Instant cannot reach that far.
    let end = now
        .checked_add(Duration::from_millis(ms))
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
    ctx.srv.pause.pause(mode, end);
    ctx.out.ok();
    Ok(())
}

/// `CLIENT UNPAUSE`.
fn client_unpause(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    ctx.srv.pause.unpause();
    ctx.out.ok();
    Ok(())
}

/// `CLIENT REPLY ON|OFF|SKIP`: only `ON` answers (the connection drops
/// what the others would have said; see `ReplyMode`).
fn client_reply(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let mode = args.get(2).copied().unwrap_or_default();
    let reply = &mut ctx.client.reply;
    if is(mode, "on") {
        reply.off = false;
        reply.skip = false;
        ctx.out.ok();
    } else if is(mode, "off") {
        reply.off = true;
    } else if is(mode, "skip") {
        if !reply.off {
            reply.skip_next = true;
        }
    } else {
        return Err(CmdError::Syntax);
    }
    Ok(())
}

fn client_no_evict(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let on = on_off(args.get(2).copied().unwrap_or_default())?;
    ctx.client.handle.info.lock().no_evict = on;
    ctx.out.ok();
    Ok(())
}

fn client_no_touch(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let on = on_off(args.get(2).copied().unwrap_or_default())?;
    ctx.client.no_touch = on;
    ctx.client.handle.info.lock().no_touch = on;
    ctx.out.ok();
    Ok(())
}

fn client_setinfo(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let attr = args.get(2).copied().unwrap_or_default();
    let val = args.get(3).copied().unwrap_or_default();
    let lib_name = if is(attr, "lib-name") {
        true
    } else if is(attr, "lib-ver") {
        false
    } else {
        return Err(CmdError::err(format!(
            "Unrecognized option '{}'",
            text(attr)
        )));
    };
    if val.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CmdError::err(format!(
            "{} cannot contain spaces, newlines or special characters.",
            text(attr)
        )));
    }
    let mut info = ctx.client.handle.info.lock();
    if lib_name {
        info.lib_name = val.to_vec();
    } else {
        info.lib_ver = val.to_vec();
    }
    drop(info);
    ctx.out.ok();
    Ok(())
}

/// `CLIENT TRACKING ON|OFF [REDIRECT id] [BCAST] [PREFIX p ...] [OPTIN]
/// [OPTOUT] [NOLOOP]`, with Redis 7.0.15's checks in its order.
fn client_tracking(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let mut redirect: i64 = 0;
    let (mut bcast, mut optin, mut optout, mut noloop) = (false, false, false, false);
    let mut prefixes: Vec<Vec<u8>> = Vec::new();
    let mut j = 3;
    while j < args.len() {
        let opt = args.get(j).copied().unwrap_or_default();
        let more = j + 1 < args.len();
        if is(opt, "redirect") && more {
            j += 1;
            if redirect != 0 {
                return Err(CmdError::err(
                    "A client can only redirect to a single other client",
                ));
            }
            redirect = super::args::int(args.get(j).copied().unwrap_or_default())?;
            let exists = u64::try_from(redirect)
                .ok()
                .and_then(|id| ctx.srv.clients.get(id))
                .is_some();
            if !exists {
                return Err(CmdError::err(
                    "The client ID you want redirect to does not exist",
                ));
            }
        } else if is(opt, "bcast") {
            bcast = true;
        } else if is(opt, "optin") {
            optin = true;
        } else if is(opt, "optout") {
            optout = true;
        } else if is(opt, "noloop") {
            noloop = true;
        } else if is(opt, "prefix") && more {
            j += 1;
            prefixes.push(args.get(j).copied().unwrap_or_default().to_vec());
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let mode = args.get(2).copied().unwrap_or_default();
    let handle = ctx.client.handle.clone();
    if is(mode, "off") {
        ctx.srv
            .tracking
            .disable(ctx.srv, &handle, &mut ctx.client.tracking);
        ctx.out.ok();
        return Ok(());
    }
    if !is(mode, "on") {
        return Err(CmdError::Syntax);
    }
    let cur = &ctx.client.tracking;
    if !bcast && !prefixes.is_empty() {
        return Err(CmdError::err(
            "PREFIX option requires BCAST mode to be enabled",
        ));
    }
    if cur.on && cur.bcast != bcast {
        return Err(CmdError::err(
            "You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.",
        ));
    }
    if bcast && (optin || optout) {
        return Err(CmdError::err(
            "OPTIN and OPTOUT are not compatible with BCAST",
        ));
    }
    if optin && optout {
        return Err(CmdError::err(
            "You can't specify both OPTIN mode and OPTOUT mode",
        ));
    }
    if (optin && cur.optout) || (optout && cur.optin) {
        return Err(CmdError::err(
            "You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.",
        ));
    }
    if bcast {
        check_prefixes(ctx, &prefixes)?;
        if prefixes.is_empty() {
            prefixes.push(Vec::new());
        }
    }
    let t = &mut ctx.client.tracking;
    t.on = true;
    t.bcast = bcast;
    t.optin = optin;
    t.optout = optout;
    t.noloop = noloop;
    t.redirect = redirect as u64;
    // Redis keeps a CLIENT CACHING given before; OPTIN/OPTOUT keep theirs.
    t.prefixes.extend(prefixes.iter().cloned());
    let mode = t.clone();
    let mailbox = ctx.client.subs.mailbox.clone();
    ctx.srv.tracking.enable(ctx.srv, &mailbox, &mode, &prefixes);
    ctx.out.ok();
    Ok(())
}

/// Redis's `checkPrefixCollisionsOrReply`: no new prefix may be a prefix of
/// an existing one or of another new one (or the other way round).
/// Redis 7.0.15 answers an overlap among the new prefixes found after the
/// first one with the error and then goes on enabling tracking (two
/// replies): so does this.
fn check_prefixes(ctx: &mut Ctx<'_>, prefixes: &[Vec<u8>]) -> CmdResult {
    let overlap = |a: &[u8], b: &[u8]| {
        let n = a.len().min(b.len());
        a.get(..n) == b.get(..n)
    };
    for (i, p) in prefixes.iter().enumerate() {
        if let Some(old) = ctx
            .client
            .tracking
            .prefixes
            .iter()
            .find(|old| overlap(old, p))
        {
            return Err(CmdError::err(format!(
                "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                text(p),
                text(old)
            )));
        }
        for q in prefixes.iter().skip(i + 1) {
            if overlap(p, q) {
                let e = CmdError::err(format!(
                    "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                    text(p),
                    text(q)
                ));
                if i == 0 {
                    return Err(e);
                }
                super::reply_error(ctx, &e);
                return Ok(());
            }
        }
    }
    Ok(())
}

/// `CLIENT CACHING YES|NO` (OPTIN / OPTOUT modes).
fn client_caching(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let t = &mut ctx.client.tracking;
    if !t.on {
        return Err(CmdError::err(
            "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        ));
    }
    let opt = args.get(2).copied().unwrap_or_default();
    if is(opt, "yes") {
        if !t.optin {
            return Err(CmdError::err(
                "CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if is(opt, "no") {
        if !t.optout {
            return Err(CmdError::err(
                "CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(CmdError::Syntax);
    }
    t.caching = true;
    ctx.out.ok();
    Ok(())
}

/// `CLIENT GETREDIR`: the redirect target, 0 without one, -1 when not tracking.
fn client_getredir(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let t = &ctx.client.tracking;
    ctx.out.int(if t.on { t.redirect as i64 } else { -1 });
    Ok(())
}

/// `CLIENT TRACKINGINFO`: flags, redirect, prefixes.
fn client_trackinginfo(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let t = ctx.client.tracking.clone();
    let broken = ctx
        .client
        .handle
        .info
        .lock()
        .tracking
        .is_some_and(|v| v.broken);
    let mut flags: Vec<&str> = vec![if t.on { "on" } else { "off" }];
    if t.bcast {
        flags.push("bcast");
    }
    if t.optin {
        flags.push("optin");
        if t.caching {
            flags.push("caching-yes");
        }
    }
    if t.optout {
        flags.push("optout");
        if t.caching {
            flags.push("caching-no");
        }
    }
    if t.noloop {
        flags.push("noloop");
    }
    if broken {
        flags.push("broken_redirect");
    }
    let out = &mut *ctx.out;
    out.map(3);
    out.bulk(b"flags");
    out.set(flags.len());
    for f in flags {
        out.bulk(f.as_bytes());
    }
    out.bulk(b"redirect");
    out.int(if t.on { t.redirect as i64 } else { -1 });
    out.bulk(b"prefixes");
    out.array(t.prefixes.len());
    for p in &t.prefixes {
        out.bulk(p);
    }
    Ok(())
}

fn client_help(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    reply_help(
        ctx,
        args,
        &[
            "CACHING (YES|NO)",
            "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
            "GETREDIR",
            "    Return the client ID we are redirecting to when tracking is enabled.",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "UNPAUSE",
            "    Stop the current client pause, resuming traffic.",
            "PAUSE <timeout> [WRITE|ALL]",
            "    Suspend all, or just write, clients for <timeout> milliseconds.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
            "         [OPTIN] [OPTOUT] [NOLOOP]",
            "    Control server assisted client side caching.",
            "TRACKINGINFO",
            "    Report tracking status for the current connection.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
        ],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::table::{lookup, CommandTable};

    #[test]
    fn extensions_register_as_subcommands() {
        let mut ext = extensions();
        ext.extend(crate::cmd::object::extensions());
        let table = CommandTable::build(&crate::cmd::all_handlers(), &ext);
        let client = table.get(b"CLIENT").expect("client");
        for sub in [&b"setinfo"[..], b"no-touch", b"list", b"kill"] {
            assert!(lookup(&client.subcommands, sub).is_some(), "{sub:?}");
        }
        let object = table.get(b"object").expect("object");
        assert!(lookup(&object.subcommands, b"TIER").is_some());
        assert!(lookup(&object.subcommands, b"encoding").is_some());
    }
}
