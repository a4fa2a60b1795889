//! MIGRATE: moves keys to another instance as Redis 7.0's `migrateCommand`
//! (`cluster.c`) does. The keys' `DUMP` payloads (from [`crate::rdb`], as
//! `DUMP` makes them) go as `RESTORE key ttl payload [REPLACE]` commands,
//! after `AUTH` and `SELECT` when needed, pipelined over a connection kept
//! per `host:port` ([`sockets`]); each key the target acknowledges is then
//! deleted here unless `COPY` is given.
//!
//! As in Redis the exchange is synchronous: the calling client's thread
//! waits for the target (for at most `timeout` milliseconds per read or
//! write). No shard lock is held meanwhile: the keys are read, the locks
//! released, and the acknowledged keys deleted afterwards.

pub mod sockets;

use std::time::Duration;

use super::args::{self, is, nth};
use super::error::{CmdError, CmdResult};
use super::{Ctx, Handler};
use crate::notify;
use crate::rdb::write;
use crate::resp::ReplyWriter;
use sockets::{ConnectFailure, IoFailure, TargetConn};

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[("migrate", migrate)];

/// Redis's reply when the connection cannot be made (`migrateGetSocket`).
const CONNECT_FAILED: &str = "IOERR error or timeout connecting to the client";

/// A key to send: its name, payload and remaining time to live in ms (0: none).
struct Item<'a> {
    key: &'a [u8],
    payload: Vec<u8>,
    ttl: i64,
}

/// What MIGRATE was asked to do, from its arguments.
struct Request<'a> {
    host: &'a [u8],
    port: &'a [u8],
    dbid: i64,
    timeout: Duration,
    copy: bool,
    replace: bool,
    auth: Option<(Option<&'a [u8]>, &'a [u8])>,
    keys: &'a [&'a [u8]],
}

/// Parses the arguments in `migrateCommand`'s order: options, then
/// `timeout`, then `destination-db`.
fn parse<'a>(args: &'a [&'a [u8]]) -> Result<Request<'a>, CmdError> {
    let (mut copy, mut replace, mut auth) = (false, false, None);
    let mut keys = args.get(3..4).unwrap_or_default();
    let mut j = 6;
    while j < args.len() {
        let opt = nth(args, j);
        let more = args.len() - 1 - j;
        if is(opt, "COPY") {
            copy = true;
        } else if is(opt, "REPLACE") {
            replace = true;
        } else if is(opt, "AUTH") {
            if more < 1 {
                return Err(CmdError::Syntax);
            }
            auth = Some((None, nth(args, j + 1)));
            j += 1;
        } else if is(opt, "AUTH2") {
            if more < 2 {
                return Err(CmdError::Syntax);
            }
            auth = Some((Some(nth(args, j + 1)), nth(args, j + 2)));
            j += 2;
        } else if is(opt, "KEYS") {
            if !nth(args, 3).is_empty() {
                return Err(CmdError::err(
                    "When using MIGRATE KEYS option, the key argument must be set to the empty string",
                ));
            }
            keys = args.get(j + 1..).unwrap_or_default();
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let timeout = args::int(nth(args, 5))?;
    let dbid = args::int(nth(args, 4))?;
    let timeout = if timeout <= 0 { 1000 } else { timeout };
    Ok(Request {
        host: nth(args, 1),
        port: nth(args, 2),
        dbid,
        timeout: Duration::from_millis(timeout as u64),
        copy,
        replace,
        auth,
        keys,
    })
}

/// The positions of MIGRATE's keys, as Redis's `migrateGetKeys` finds
/// them: after `KEYS` (options' own arguments skipped), none when `KEYS`
/// comes with a key argument that is not empty, else the key argument.
pub fn key_positions(argv: &[&[u8]]) -> std::ops::Range<usize> {
    let mut j = 6;
    while j < argv.len() {
        let a = nth(argv, j);
        if is(a, "KEYS") {
            if !nth(argv, 3).is_empty() {
                return 0..0;
            }
            return j + 1..argv.len();
        } else if is(a, "AUTH") {
            j += 1;
        } else if is(a, "AUTH2") {
            j += 2;
        }
        j += 1;
    }
    3..4
}

/// `atoi`: the leading decimal digits of `s` (0 when none), as Redis
/// reads the port.
fn atoi(s: &[u8]) -> u16 {
    let s = String::from_utf8_lossy(s);
    let t = s.trim_start();
    let (sign, digits) = match t.strip_prefix('-') {
        Some(rest) => (-1i64, rest),
        None => (1, t.strip_prefix('+').unwrap_or(t)),
    };
    let n = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |n, d| {
            n.saturating_mul(10).saturating_add(i64::from(d - b'0'))
        });
    // A port is 16 bits: C's conversion keeps the low ones.
    (sign * n) as u16
}

/// `MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE]
/// [AUTH password] [AUTH2 username password] [KEYS key ...]`.
fn migrate(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let req = parse(args)?;
    let items = read_keys(ctx, &req)?;
    if items.is_empty() {
        // Nothing to move (often keys that just expired): not an error.
        ctx.out.simple("NOKEY");
        return Ok(());
    }
    let host = String::from_utf8_lossy(req.host).into_owned();
    let name = format!("{host}:{}", String::from_utf8_lossy(req.port));
    let port = atoi(req.port);
    let sockets = &ctx.srv.migrate_sockets;
    let mut may_retry = true;
    loop {
        let attempt = match sockets.take_or_connect(&name, &host, port, req.timeout) {
            Ok(mut conn) => exchange(&mut conn, &req, &items).map(|done| (conn, done)),
            Err(ConnectFailure::Unresolved) => return Err(CmdError::msg(CONNECT_FAILED)),
            // As in Redis, the failure shows when writing.
            Err(ConnectFailure::Io(failure)) => Err(Failed {
                writing: true,
                failure,
            }),
        };
        match attempt {
            Ok((
                mut conn,
                Done {
                    acked,
                    target_error,
                },
            )) => {
                let socket_error = acked.failure.is_some();
                if !req.copy {
                    delete_keys(ctx, &acked.keys)?;
                }
                if let Some(e) = target_error {
                    // The SELECT (or AUTH) may not have worked: sent again next time.
                    conn.last_dbid = -1;
                    if !socket_error {
                        sockets.keep(name, conn);
                    }
                    return Err(CmdError::err(format!(
                        "Target instance replied with error: {}",
                        String::from_utf8_lossy(e.get(1..).unwrap_or_default())
                    )));
                }
                if socket_error {
                    return Err(io_error(false));
                }
                conn.last_dbid = req.dbid;
                sockets.keep(name, conn);
                ctx.out.ok();
                return Ok(());
            }
            Err(Failed { writing, failure }) => {
                // The connection was dropped (closed); a cached one the
                // target closed meanwhile is worth one more try.
                if failure != IoFailure::TimedOut && may_retry {
                    may_retry = false;
                    continue;
                }
                return Err(io_error(writing));
            }
        }
    }
}

/// Redis's `-IOERR` after the connection was made.
fn io_error(writing: bool) -> CmdError {
    let what = if writing { "writing" } else { "reading" };
    CmdError::msg(format!("IOERR error or timeout {what} to target instance"))
}

/// The keys present, with their payloads and TTLs (`lookupKeyRead`: each
/// counts a hit or a miss).
fn read_keys<'a>(ctx: &mut Ctx<'_>, req: &Request<'a>) -> Result<Vec<Item<'a>>, CmdError> {
    let opts = super::dump::options(ctx);
    let mut g = ctx.lock(req.keys.iter().copied())?;
    let now = g.now_ms() as i64;
    let mut items = Vec::new();
    for &key in req.keys {
        let payload = g.get(key).map(|v| write::payload(v, opts));
        ctx.srv.stats.hit(payload.is_some());
        let Some(payload) = payload else { continue };
        let payload =
            payload.map_err(|_| CmdError::err("DUMP of this value type is not supported"))?;
        let ttl = match g.expire_at(key).flatten() {
            // At least 1 ms: 0 would mean "no TTL" to RESTORE.
            Some(at) => (at as i64 - now).max(1),
            None => 0,
        };
        items.push(Item { key, payload, ttl });
    }
    Ok(items)
}

/// The keys the target acknowledged, and the failure that cut the
/// replies short, if any.
struct Acked<'a> {
    keys: Vec<&'a [u8]>,
    failure: Option<IoFailure>,
}

/// An exchange whose replies were read (some, when `acked.failure` is
/// set after the first); `target_error` is the first error line the
/// target sent.
struct Done<'a> {
    acked: Acked<'a>,
    target_error: Option<Vec<u8>>,
}

/// An exchange that got no reply: writing or reading failed.
struct Failed {
    writing: bool,
    failure: IoFailure,
}

/// Sends the commands and reads their replies.
fn exchange<'a>(
    conn: &mut TargetConn,
    req: &Request<'_>,
    items: &[Item<'a>],
) -> Result<Done<'a>, Failed> {
    let select = conn.last_dbid != req.dbid;
    let mut cmd = ReplyWriter::new();
    if let Some((user, password)) = req.auth {
        cmd.array(if user.is_some() { 3 } else { 2 });
        cmd.bulk(b"AUTH");
        if let Some(user) = user {
            cmd.bulk(user);
        }
        cmd.bulk(password);
    }
    if select {
        cmd.array(2);
        cmd.bulk(b"SELECT");
        cmd.bulk_int(req.dbid);
    }
    for item in items {
        cmd.array(if req.replace { 5 } else { 4 });
        cmd.bulk(b"RESTORE");
        cmd.bulk(item.key);
        cmd.bulk_int(item.ttl);
        cmd.bulk(&item.payload);
        if req.replace {
            cmd.bulk(b"REPLACE");
        }
    }
    if let Err(failure) = conn.write_all(cmd.as_bytes(), req.timeout) {
        return Err(Failed {
            writing: true,
            failure,
        });
    }
    let mut first_error = None;
    for sent in [req.auth.is_some(), select] {
        if !sent {
            continue;
        }
        match conn.read_line(req.timeout) {
            Ok(line) if line.first() == Some(&b'-') => {
                first_error.get_or_insert(line);
            }
            Ok(_) => {}
            Err(failure) => {
                return Err(Failed {
                    writing: false,
                    failure,
                })
            }
        }
    }
    let mut acked = Acked {
        keys: Vec::new(),
        failure: None,
    };
    let mut target_error = None;
    for (j, item) in items.iter().enumerate() {
        let line = match conn.read_line(req.timeout) {
            Ok(line) => line,
            // Only when the first reply is missing may the whole thing be retried.
            Err(failure) if j == 0 => {
                return Err(Failed {
                    writing: false,
                    failure,
                })
            }
            Err(failure) => {
                acked.failure = Some(failure);
                break;
            }
        };
        if first_error.is_some() || line.first() == Some(&b'-') {
            target_error.get_or_insert_with(|| first_error.clone().unwrap_or(line));
        } else {
            acked.keys.push(item.key);
        }
    }
    Ok(Done {
        acked,
        target_error,
    })
}

/// Deletes the keys the target acknowledged (`dbDelete`, the `del` event)
/// and propagates their deletion as one `DEL`, as Redis rewrites `MIGRATE`
/// (a replica must not migrate the keys again).
fn delete_keys(ctx: &mut Ctx<'_>, keys: &[&[u8]]) -> CmdResult {
    if keys.is_empty() {
        return Ok(());
    }
    let mut g = ctx.lock(keys.iter().copied())?;
    let mut del = vec![b"DEL".to_vec()];
    for key in keys {
        if g.delete_key(key) {
            ctx.notify(notify::GENERIC, "del", key);
            del.push(key.to_vec());
        }
    }
    drop(g);
    if del.len() > 1 {
        crate::replication::propagate::also(ctx.db(), del);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_as_atoi() {
        assert_eq!(atoi(b"6379"), 6379);
        assert_eq!(atoi(b"12ab"), 12);
        assert_eq!(atoi(b"abc"), 0);
        assert_eq!(atoi(b" 80"), 80);
    }
}
