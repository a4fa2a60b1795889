//! DEBUG: the subset of Redis's debugging subcommands that makes sense in
//! Amber (SLEEP, SET-ACTIVE-EXPIRE, OBJECT, RELOAD, LOADAOF,
//! CHANGE-REPL-ID, DIGEST, DIGEST-VALUE, PROTOCOL).
//!
//! DEBUG runs alone under the keyspace's exclusive gate, as it runs on
//! Redis's only thread: `DEBUG DIGEST` then sees one point in time, and
//! `DEBUG SLEEP` stalls every client as it does in Redis.
//!
//! As in Redis 7.0, DEBUG is refused unless `enable-debug-command` is `yes`
//! (or `local` and the client is on a loopback address).

use std::sync::atomic::Ordering;

use super::args::{is, text};
use super::error::{CmdError, CmdResult};
use super::{Ctx, Handler};

mod digest;
mod protocol;

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[("debug", debug)];

/// Whether a protected command (`DEBUG`, `MODULE`) may run: its
/// `enable-*-command` directive is `yes`, or `local` and the client is on a
/// loopback address. Otherwise it fails with [`not_allowed`].
pub fn allowed(ctx: &Ctx<'_>, directive: &str) -> bool {
    match ctx.srv.config.get(directive).as_deref() {
        Some("yes") => true,
        Some("local") => ctx.client.handle.addr.ip().is_loopback(),
        _ => false,
    }
}

/// Redis's refusal of a protected command `name` whose `directive` is off.
pub fn not_allowed(name: &str, directive: &str) -> CmdError {
    CmdError::err(format!(
        "{name} command not allowed. If the {directive} option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server."
    ))
}

/// C's `strtod(s, NULL)`: the longest numeric prefix, 0 when there is none.
fn strtod_prefix(s: &str) -> f64 {
    let s = s.trim_start();
    // A number longer than this is not a sleep anyone means; bound the scan.
    let s = s.get(..s.len().min(64)).unwrap_or_default();
    let mut end = 0;
    for i in (1..=s.len()).rev() {
        if s.is_char_boundary(i) && s.get(..i).and_then(|p| p.parse::<f64>().ok()).is_some() {
            end = i;
            break;
        }
    }
    s.get(..end).and_then(|p| p.parse().ok()).unwrap_or(0.0)
}

/// C's `atoi`: optional sign and leading digits, 0 when there are none.
fn atoi(s: &str) -> i64 {
    let t = s.trim_start();
    let (neg, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, t.get(1..).unwrap_or_default()),
        Some(b'+') => (false, t.get(1..).unwrap_or_default()),
        _ => (false, t),
    };
    let digits: String = rest
        .chars()
        .take_while(char::is_ascii_digit)
        .take(18)
        .collect();
    let v: i64 = digits.parse().unwrap_or(0);
    if neg {
        -v
    } else {
        v
    }
}

fn debug(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    if !allowed(ctx, "enable-debug-command") {
        return Err(not_allowed("DEBUG", "enable-debug-command"));
    }
    let sub = args.get(1).copied().unwrap_or_default();
    let arg = |i: usize| text(args.get(i).copied().unwrap_or_default());
    match args.len() {
        3 if is(sub, "sleep") => {
            let secs = strtod_prefix(&arg(2));
            if secs.is_finite() && secs > 0.0 {
                std::thread::sleep(std::time::Duration::from_secs_f64(secs.min(3600.0)));
            }
            ctx.out.ok();
        }
        3 if is(sub, "set-active-expire") => {
            ctx.srv
                .active_expire
                .store(atoi(&arg(2)) != 0, Ordering::Relaxed);
            ctx.out.ok();
        }
        3 if is(sub, "object") => {
            let key = args.get(2).copied().unwrap_or_default();
            let mut g = ctx.lock_one(key)?;
            let Some(v) = g.peek(key) else {
                return Err(CmdError::err("no such key"));
            };
            let encoding = v.encoding();
            let len = match v {
                amber_storage::Value::Str(s) => s.bytes.len(),
                #[allow(unreachable_patterns)]
                _ => v.mem_usage(),
            };
            let addr = v as *const amber_storage::Value as usize;
            let idle = g.idle_secs(key).unwrap_or(0);
            drop(g);
            // serializedlength: the RDB length of a string (length prefix + bytes).
            let serialized = if encoding == "int" { 2 } else { len + 1 };
            ctx.out.simple(&format!(
                "Value at:0x{addr:x} refcount:1 encoding:{encoding} serializedlength:{serialized} lru:0 lru_seconds_idle:{idle}"
            ));
        }
        _ if is(sub, "reload") => reload(ctx, args.get(2..).unwrap_or_default())?,
        3 if is(sub, "protocol") => protocol::reply(ctx, args.get(2).copied().unwrap_or_default())?,
        2 if is(sub, "change-repl-id") => ctx.out.ok(),
        _ if is(sub, "loadaof") => load_aof(ctx)?,
        2 if is(sub, "digest") => {
            let d = dataset_digest(ctx)?;
            ctx.out.simple(&digest::hex(&d));
        }
        _ if is(sub, "digest-value") => {
            let keys = args.get(2..).unwrap_or_default();
            ctx.out.array(keys.len());
            for key in keys {
                let mut g = ctx.lock_one(key)?;
                let has_expire = matches!(g.expire_at(key), Some(Some(_)));
                let mut d = [0; 20];
                if let Some(v) = g.peek(key) {
                    digest::mix_value(&mut d, v, has_expire);
                }
                drop(g);
                ctx.out.simple(&digest::hex(&d));
            }
        }
        _ => {
            return Err(CmdError::err(format!(
                "unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
                truncate(&arg(1), 128)
            )))
        }
    }
    Ok(())
}

/// `DEBUG RELOAD [MERGE|NOFLUSH|NOSAVE ...]`. Amber's data is already in
/// its store (DRAM and the arena), so a save point stands in for Redis's
/// save, flush and load, which gives the data back as it was. What a
/// client can tell apart is kept: the options are checked, and `NOFLUSH`
/// without `MERGE` fails as Redis's load fails on a key or library it
/// already has (the file holds what is in memory, unless nothing is).
fn reload(ctx: &mut Ctx<'_>, options: &[&[u8]]) -> CmdResult {
    let (mut merge, mut flush) = (false, true);
    for opt in options {
        if is(opt, "merge") {
            merge = true;
        } else if is(opt, "noflush") {
            flush = false;
        } else if !is(opt, "nosave") {
            return Err(CmdError::err(
                "DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.",
            ));
        }
    }
    let srv = ctx.srv;
    let databases = srv.config.get_i64("databases").max(1) as usize;
    let has_data = (0..databases).any(|db| srv.keyspace.dbsize(db) > 0)
        || srv.scripting.functions.library_count() > 0;
    if !flush && !merge && has_data {
        return Err(CmdError::err("Error trying to load the RDB dump"));
    }
    srv.save_point().map_err(CmdError::err)?;
    tracing::warn!("DB reloaded by DEBUG RELOAD");
    ctx.out.ok();
    Ok(())
}

/// `DEBUG LOADAOF`. Redis flushes its append-only file, empties the
/// dataset and loads it back from that file, then zeroes `dirty`: to a
/// client, every key and TTL is still there and `rdb_changes_since_last_save`
/// is 0. Amber keeps no AOF: its durable copy is the arena, which already
/// holds every acknowledged write, so the honest equivalent is to make the
/// arena durable (as `DEBUG RELOAD` does) and count the changes as
/// persisted. (With `appendonly no` Redis 7.0 finds no AOF to load and
/// exits; Amber answers `+OK` whatever `appendonly` says, as its
/// persistence does not depend on it.)
fn load_aof(ctx: &mut Ctx<'_>) -> CmdResult {
    let srv = ctx.srv;
    srv.save_point().map_err(CmdError::err)?;
    srv.dirty_at_save.store(srv.dirty.get(), Ordering::Relaxed);
    tracing::warn!("Append Only File loaded by DEBUG LOADAOF (Amber: the arena synced)");
    ctx.out.ok();
    Ok(())
}

/// `computeDatasetDigest`: every database, every key. The caller runs
/// alone (DEBUG is an exclusive command), so each key is seen once.
fn dataset_digest(ctx: &Ctx<'_>) -> Result<digest::Digest, CmdError> {
    let ks = &ctx.srv.keyspace;
    let databases = ctx.srv.config.get_i64("databases").max(1) as usize;
    let mut all = digest::DatasetDigest::default();
    for db in 0..databases {
        if ks.db_info(db).keys == 0 {
            continue;
        }
        all.begin_db(db);
        let mut cursor = 0;
        loop {
            let (next, keys) = ks.scan(db, cursor, 1024, &|_, _| true);
            for key in keys {
                let mut g = ks.lock_one(db, &key)?;
                let has_expire = matches!(g.expire_at(&key), Some(Some(_)));
                // Without touching or promoting a cold value.
                if let Some(v) = g.peek(&key) {
                    all.add_key(&key, v, has_expire);
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    Ok(all.finish())
}

fn truncate(s: &str, n: usize) -> &str {
    let mut end = s.len().min(n);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_number_prefixes() {
        assert_eq!(strtod_prefix("0.5abc"), 0.5);
        assert_eq!(strtod_prefix("abc"), 0.0);
        assert_eq!(atoi("12x"), 12);
        assert_eq!(atoi("-3"), -3);
        assert_eq!(atoi("x"), 0);
    }
}
