//! Which commands Amber implements right now, asked at run time so tests
//! grow as commands land instead of failing (or silently passing) before.

use crate::client::RespClient;
use crate::reply;

/// Whether the server behind `c` implements `name` (a command name, e.g.
/// `incr`).
///
/// Asks `COMMAND INFO name` first (a null entry means unknown). While
/// `COMMAND` itself is not implemented, falls back to sending the command
/// with a wrong number of arguments (taken from `arity`, Redis's arity of the
/// command): an implemented command answers the arity error, a missing one
/// `unknown command`. Commands whose arity admits any count (`-1`) cannot be
/// probed that way and are reported missing until `COMMAND INFO` works.
pub fn supports(c: &mut RespClient, name: &str, arity: i64) -> bool {
    let r = c.cmd(&["COMMAND", "INFO", name]);
    if let Ok(Some((info, _))) = reply::parse(&r) {
        if info.kind == b'*' && info.items.len() == 1 {
            let entry = &info.items[0];
            return entry.kind == b'*' && !entry.items.is_empty();
        }
    }
    // COMMAND INFO unavailable: probe with a wrong argument count.
    let wrong = if arity > 0 {
        // Exact arity: one argument too many (never runs the command).
        arity as usize + 1
    } else if arity < -1 {
        // Minimum arity: just the name (too few).
        1
    } else {
        return false;
    };
    let mut args = vec![name.to_string()];
    args.extend((1..wrong).map(|i| format!("__probe{i}")));
    let r = c.cmd(&args);
    let text = String::from_utf8_lossy(&r).to_string();
    if text.contains("unknown command") {
        return false;
    }
    assert!(
        text.contains("wrong number of arguments"),
        "probing {name} with {wrong} args gave an unexpected reply: {}",
        reply::show(&r)
    );
    true
}

/// Redis's arity of a command, read from a real Redis's `COMMAND INFO`.
pub fn redis_arity(redis: &mut RespClient, name: &str) -> i64 {
    let r = redis.cmd(&["COMMAND", "INFO", name]);
    let parsed = reply::parse(&r).ok().flatten().map(|(r, _)| r);
    parsed
        .and_then(|r| r.items.first()?.items.get(1)?.integer())
        .unwrap_or_else(|| panic!("redis has no command {name}: {}", reply::show(&r)))
}

/// The subset of `names` Amber implements, using `redis` for arities.
/// Prints the ones skipped, with the reason, so a skip is visible.
pub fn supported_commands<'a>(
    amber: &mut RespClient,
    redis: &mut RespClient,
    names: &[&'a str],
    context: &str,
) -> Vec<&'a str> {
    let mut have = Vec::new();
    let mut missing = Vec::new();
    for &n in names {
        let arity = redis_arity(redis, n);
        if supports(amber, n, arity) {
            have.push(n);
        } else {
            missing.push(n);
        }
    }
    if !missing.is_empty() {
        eprintln!(
            "{context}: skipping commands Amber does not implement yet: {}",
            missing.join(" ")
        );
    }
    have
}
