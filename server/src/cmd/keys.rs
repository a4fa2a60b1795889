//! Generic key commands: DEL UNLINK EXISTS TYPE KEYS SCAN RANDOMKEY RENAME
//! RENAMENX MOVE COPY TOUCH.
//!
//! Keyspace statistics follow Redis 7.0's `lookupKey` rules: read lookups
//! (`EXISTS`, `TYPE`, `TOUCH`, `COPY`'s source, `SCAN ... TYPE`) count a hit
//! or a miss; write lookups (`DEL`, `RENAME`, `MOVE`, destinations) and the
//! whole-database commands (`KEYS`, `SCAN`, `RANDOMKEY`) count nothing.

use amber_storage::{glob, Guard, DB_COUNT};

use super::args::{self, is};
use super::error::{CmdError, CmdResult, DB_RANGE};
use super::{Ctx, Handler};
use crate::blocking;
use crate::notify;

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("del", del),
    ("unlink", unlink),
    ("exists", exists),
    ("type", type_cmd),
    ("keys", keys),
    ("scan", scan),
    ("randomkey", randomkey),
    ("rename", rename),
    ("renamenx", renamenx),
    ("move", move_cmd),
    ("copy", copy),
    ("touch", touch),
];

/// `ERR source and destination objects are the same`.
const SAME_OBJECT: &str = "ERR source and destination objects are the same";
/// `ERR no such key`.
const NO_SUCH_KEY: &str = "ERR no such key";

/// The argument at `i` (empty when missing; the dispatcher checked arity).
fn arg<'a>(args: &[&'a [u8]], i: usize) -> &'a [u8] {
    args.get(i).copied().unwrap_or_default()
}

/// Parses a database index like Redis's `getIntFromObjectOrReply` followed by
/// `selectDb`: not an integer, outside C `int`, then outside `0..DB_COUNT`,
/// each with its own error.
pub fn db_index(a: &[u8]) -> Result<usize, CmdError> {
    let v = args::int(a)?;
    if v < i32::MIN as i64 || v > i32::MAX as i64 {
        return Err(CmdError::err(format!(
            "value is out of range, value must between {} and {}",
            i32::MIN,
            i32::MAX
        )));
    }
    if v < 0 || v as usize >= DB_COUNT {
        return Err(CmdError::msg(DB_RANGE));
    }
    Ok(v as usize)
}

/// DEL and UNLINK: values are dropped at once either way (they are freed
/// outside any shared structure, so UNLINK has nothing to defer).
fn del(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let lazy = ctx.srv.config.get_bool("lazyfree-lazy-user-del");
    remove_keys(ctx, args, lazy)
}

/// `UNLINK`: `DEL` that frees big values in the background
/// (`crate::lazyfree`).
fn unlink(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    remove_keys(ctx, args, true)
}

/// Removes the keys of `DEL`/`UNLINK`; with `lazy`, their values are
/// freed after the locks are let go, the costly ones on the lazyfree
/// thread.
fn remove_keys(ctx: &mut Ctx<'_>, args: &[&[u8]], lazy: bool) -> CmdResult {
    let keys = args.get(1..).unwrap_or_default();
    let mut g = ctx.lock(keys.iter().copied())?;
    let mut removed = 0;
    let mut values = Vec::new();
    for key in keys {
        let gone = if lazy {
            g.unlink_key(key).map(|v| values.extend(v)).is_some()
        } else {
            g.delete_key(key)
        };
        if gone {
            removed += 1;
            ctx.notify(notify::GENERIC, "del", key);
        }
    }
    drop(g);
    for v in values {
        ctx.srv.lazyfree.free(v);
    }
    ctx.out.int(removed as i64);
    Ok(())
}

fn exists(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let keys = args.get(1..).unwrap_or_default();
    let mut g = ctx.lock(keys.iter().copied())?;
    let mut found = 0i64;
    for k in keys {
        let hit = g.exists(k);
        ctx.srv.stats.hit(hit);
        found += i64::from(hit);
    }
    drop(g);
    ctx.out.int(found);
    Ok(())
}

fn type_cmd(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = arg(args, 1);
    let mut g = ctx.lock_one(key)?;
    let name = g.peek(key).map_or("none", |v| v.value_type().name());
    ctx.srv.stats.hit(name != "none");
    drop(g);
    ctx.out.simple(name);
    Ok(())
}

fn keys(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let found = ctx.srv.keyspace.keys(ctx.db(), arg(args, 1));
    ctx.out.array(found.len());
    for k in &found {
        ctx.out.bulk(k);
    }
    Ok(())
}

/// Parses a SCAN cursor like Redis's `strtoul`-based parser: an optional sign
/// (a negative value wraps, as C does), decimal digits, nothing else; the
/// empty string is cursor 0; leading spaces and overflow are refused.
pub fn parse_cursor(a: &[u8]) -> Option<u64> {
    let (neg, digits) = match a.split_first() {
        None => return Some(0),
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        Some(_) => (false, a),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

fn scan(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let cursor = parse_cursor(arg(args, 1)).ok_or_else(|| CmdError::err("invalid cursor"))?;
    let mut count: i64 = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut type_name: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        let (opt, value) = (arg(args, i), args.get(i + 1).copied());
        match value {
            Some(v) if is(opt, "COUNT") => {
                count = args::int(v)?;
                if count < 1 {
                    return Err(CmdError::Syntax);
                }
            }
            // `*` matches everything: no filter, as Redis.
            Some(v) if is(opt, "MATCH") => pattern = (v != b"*").then_some(v),
            Some(v) if is(opt, "TYPE") => type_name = Some(v),
            _ => return Err(CmdError::Syntax),
        }
        i += 2;
    }
    let stats = &ctx.srv.stats;
    let filter = |key: &[u8], value_type: amber_storage::ValueType| {
        if pattern.is_some_and(|p| !glob::matches(p, key, false)) {
            return false;
        }
        match type_name {
            Some(t) => {
                // Redis looks the key up to learn its type: a read lookup.
                stats.hit(true);
                t.eq_ignore_ascii_case(value_type.name().as_bytes())
            }
            None => true,
        }
    };
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let (next, found) = ctx.srv.keyspace.scan(ctx.db(), cursor, count, &filter);
    ctx.out.array(2);
    ctx.out.bulk(itoa::Buffer::new().format(next).as_bytes());
    ctx.out.array(found.len());
    for k in &found {
        ctx.out.bulk(k);
    }
    Ok(())
}

fn randomkey(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    match ctx.srv.keyspace.random_key(ctx.db()) {
        Some(k) => ctx.out.bulk(&k),
        None => ctx.out.null(),
    }
    Ok(())
}

fn rename(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    rename_generic(ctx, args, false)
}

fn renamenx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    rename_generic(ctx, args, true)
}

/// RENAME and RENAMENX: the value moves with its deadline. Redis adds the
/// destination anew (`dbAdd`), which wakes clients blocked on it when the
/// value is a list or a sorted set.
fn rename_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], nx: bool) -> CmdResult {
    let (src, dst) = (arg(args, 1), arg(args, 2));
    let mut g = blocking::lock_for_push(ctx, &[src, dst])?;
    // A write lookup: refreshes the access time, counts no hit.
    if g.get(src).is_none() {
        return Err(CmdError::msg(NO_SUCH_KEY));
    }
    let moved = if src == dst {
        // Renaming a key to itself is a no-op when the key exists.
        !nx
    } else if nx && g.exists(dst) {
        false
    } else {
        match g.take(src) {
            Some(d) => {
                g.put(dst, d)?;
                ctx.notify(notify::GENERIC, "rename_from", src);
                ctx.notify(notify::GENERIC, "rename_to", dst);
                g.signal(ctx, dst);
                true
            }
            None => false,
        }
    };
    g.finish(ctx);
    match (nx, moved) {
        (false, _) => ctx.out.ok(),
        (true, m) => ctx.out.int(i64::from(m)),
    }
    Ok(())
}

/// MOVE runs alone (EXCLUSIVE), so holding two databases' shards at once
/// cannot deadlock, and serving the clients blocked on the key in the
/// destination database after the locks are released is still atomic.
fn move_cmd(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = arg(args, 1);
    let dst_db = db_index(arg(args, 2))?;
    if dst_db == ctx.db() {
        return Err(CmdError::msg(SAME_OBJECT));
    }
    let mut src = ctx.lock_one(key)?;
    let mut dst = lock_in(ctx, dst_db, key)?;
    let moved = if src.get(key).is_none() || dst.exists(key) {
        false
    } else {
        match src.take(key) {
            Some(d) => {
                dst.put(key, d)?;
                ctx.notify(notify::GENERIC, "move_from", key);
                let me = Some((ctx.client.handle.id, &mut *ctx.out));
                notify::publish_to(ctx.srv, dst_db, notify::GENERIC, "move_to", key, me);
                true
            }
            None => false,
        }
    };
    // The destination first: its record is written before the source's
    // tombstone, so a crash between the two cannot lose the key.
    drop(dst);
    drop(src);
    ctx.out.int(i64::from(moved));
    if moved {
        blocking::signal_keys(ctx, dst_db, vec![key.to_vec()]);
    }
    Ok(())
}

/// Locks `keys` in database `db` (not necessarily the client's), with the
/// client's touch setting.
fn lock_in<'a>(ctx: &Ctx<'a>, db: usize, key: &[u8]) -> Result<Guard<'a>, CmdError> {
    let mut g = ctx.srv.keyspace.lock_one(db, key)?;
    g.set_touch(!ctx.client.no_touch);
    Ok(g)
}

/// COPY source destination [DB index] [REPLACE]. Runs alone (EXCLUSIVE).
fn copy(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (src_key, dst_key) = (arg(args, 1), arg(args, 2));
    let mut replace = false;
    let mut dst_db = ctx.db();
    let mut i = 3;
    while i < args.len() {
        let opt = arg(args, i);
        if is(opt, "REPLACE") {
            replace = true;
        } else if is(opt, "DB") && i + 1 < args.len() {
            dst_db = db_index(arg(args, i + 1))?;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let same_db = dst_db == ctx.db();
    if same_db && src_key == dst_key {
        return Err(CmdError::msg(SAME_OBJECT));
    }
    let mut src = if same_db {
        ctx.lock([src_key, dst_key])?
    } else {
        ctx.lock_one(src_key)?
    };
    // A read lookup of the source: counts a hit or a miss.
    let dup = src.duplicate(src_key);
    ctx.srv.stats.hit(dup.is_some());
    let Some(dup) = dup else {
        drop(src);
        ctx.out.int(0);
        return Ok(());
    };
    let mut other = if same_db {
        None
    } else {
        Some(lock_in(ctx, dst_db, dst_key)?)
    };
    let dst = match other.as_mut() {
        Some(g) => g,
        None => &mut src,
    };
    let copied = if dst.exists(dst_key) && !replace {
        false
    } else {
        dst.put(dst_key, dup)?;
        true
    };
    drop(other);
    drop(src);
    if copied {
        let me = Some((ctx.client.handle.id, &mut *ctx.out));
        notify::publish_to(ctx.srv, dst_db, notify::GENERIC, "copy_to", dst_key, me);
    }
    ctx.out.int(i64::from(copied));
    if copied {
        // Redis adds the copy anew (`dbAdd`, after deleting a replaced key).
        blocking::signal_keys(ctx, dst_db, vec![dst_key.to_vec()]);
    }
    Ok(())
}

fn touch(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let keys = args.get(1..).unwrap_or_default();
    let mut g = ctx.lock(keys.iter().copied())?;
    let mut touched = 0i64;
    for k in keys {
        let hit = g.touch_key(k);
        ctx.srv.stats.hit(hit);
        touched += i64::from(hit);
    }
    drop(g);
    ctx.out.int(touched);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_like_strtoul() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"007"), Some(7));
        assert_eq!(parse_cursor(b"+5"), Some(5));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b"18446744073709551616"[..],
            b" 1",
            b"1 ",
            b"+",
            b"-",
            b"0x1",
            b"a",
        ] {
            assert_eq!(
                parse_cursor(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn db_indexes() {
        assert_eq!(db_index(b"0"), Ok(0));
        assert_eq!(db_index(b"15"), Ok(15));
        assert_eq!(db_index(b"16"), Err(CmdError::msg(DB_RANGE)));
        assert_eq!(db_index(b"-1"), Err(CmdError::msg(DB_RANGE)));
        assert_eq!(db_index(b"x"), Err(CmdError::NotInteger));
        assert!(matches!(db_index(b"2147483648"), Err(CmdError::Msg(m)) if m.contains("between")));
    }
}
