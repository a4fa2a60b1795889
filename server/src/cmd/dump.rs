//! DUMP, RESTORE and RESTORE-ASKING: a value as Redis 7.0's serialized
//! payload (`dumpCommand`, `restoreCommand` in `cluster.c`), through the
//! RDB object codec of [`crate::rdb`].
//!
//! `RESTORE` writes through the normal keyspace path (`Guard::set`): the
//! value is persisted like any write, `WATCH`es of the key fail, the
//! `restore` keyspace event fires, and clients blocked on the key are
//! served (Redis's `dbAdd` signals the key).
//!
//! As Redis's `objectSetLRUOrLFU`, `FREQ` sets the key's LFU counter when
//! an LFU `maxmemory-policy` is selected, and `IDLETIME` sets its access
//! time when none is (up to Redis's 24-bit LRU range, see
//! `Guard::set_idle_secs`); otherwise each is validated and ignored. A key
//! restored straight into the arena (`dram-budget 0`) keeps neither.

use amber_storage::SetExpiry;

use super::args::{self, is, nth};
use super::error::{CmdError, CmdResult};
use super::{Ctx, Handler};
use crate::blocking;
use crate::config::HotConfig;
use crate::notify;
use crate::rdb;
use crate::rdb::read::{self, Limits, Reader};
use crate::rdb::write::{self, Options};

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("dump", dump),
    ("restore", restore),
    ("restore-asking", restore),
];

/// Redis's text for a payload whose footer does not check.
const BAD_PAYLOAD: &str = "ERR DUMP payload version or checksum are wrong";
/// Redis's text for a payload whose object does not load.
const BAD_FORMAT: &str = "ERR Bad data format";
/// `shared.busykeyerr`.
const BUSYKEY: &str = "BUSYKEY Target key name already exists.";

/// How values are written, from the configuration (also `MIGRATE`'s).
pub(super) fn options(ctx: &Ctx<'_>) -> Options {
    Options {
        compress: ctx.srv.config.get_bool("rdbcompression"),
        list_fill: ctx.srv.config.get_i64("list-max-listpack-size"),
    }
}

/// The encoding thresholds restored values are shaped with.
fn limits(ctx: &Ctx<'_>) -> Limits {
    let hot = &ctx.srv.config.hot;
    Limits {
        hash: super::hashes::limits(ctx),
        zset: super::zsets::limits(ctx),
        max_intset: HotConfig::count(&hot.set_max_intset_entries),
    }
}

/// `DUMP key`: the payload, or nil for a missing key.
fn dump(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let opts = options(ctx);
    let mut g = ctx.lock_one(key)?;
    // A read lookup: counts a hit or a miss.
    let payload = g.get(key).map(|v| write::payload(v, opts));
    drop(g);
    ctx.srv.stats.hit(payload.is_some());
    match payload {
        None => ctx.out.null(),
        Some(Ok(p)) => ctx.out.bulk(&p),
        // Not reachable with today's value types (see `Unsupported`).
        Some(Err(write::Unsupported)) => {
            return Err(CmdError::err("DUMP of this value type is not supported"))
        }
    }
    Ok(())
}

/// `RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]`,
/// checked in `restoreCommand`'s order: options, existing key, TTL,
/// payload footer, payload object.
fn restore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq): (Option<i64>, Option<i64>) = (None, None);
    let mut j = 4;
    while j < args.len() {
        let opt = nth(args, j);
        let more = j + 1 < args.len();
        if is(opt, "REPLACE") {
            replace = true;
        } else if is(opt, "ABSTTL") {
            absttl = true;
        } else if is(opt, "IDLETIME") && more && freq.is_none() {
            let v = args::int(nth(args, j + 1))?;
            if v < 0 {
                return Err(CmdError::err("Invalid IDLETIME value, must be >= 0"));
            }
            idle = Some(v);
            j += 1;
        } else if is(opt, "FREQ") && more && idle.is_none() {
            let v = args::int(nth(args, j + 1))?;
            if !(0..=255).contains(&v) {
                return Err(CmdError::err("Invalid FREQ value, must be >= 0 and <= 255"));
            }
            freq = Some(v);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let limits = limits(ctx);
    let lfu = ctx
        .srv
        .config
        .get("maxmemory-policy")
        .is_some_and(|p| p.ends_with("lfu"));
    let mut g = blocking::lock_for_push(ctx, &[key])?;
    // A write lookup (`lookupKeyWrite`): counts no hit.
    if !replace && g.exists(key) {
        return Err(CmdError::msg(BUSYKEY));
    }
    let ttl = args::int(nth(args, 2))?;
    if ttl < 0 {
        return Err(CmdError::err("Invalid TTL value, must be >= 0"));
    }
    let payload = nth(args, 3);
    if rdb::unseal(payload).is_none() {
        return Err(CmdError::msg(BAD_PAYLOAD));
    }
    // Redis reads the object from the whole payload, footer included: an
    // object that runs into the footer loads from its bytes.
    let Ok(value) = read::object(&mut Reader::new(payload), limits) else {
        return Err(CmdError::msg(BAD_FORMAT));
    };
    let deleted = replace && g.delete_key(key);
    let now = g.now_ms() as i64;
    let deadline = match ttl {
        0 => None,
        t if absttl => Some(t),
        t => Some(t.saturating_add(now)),
    };
    if deadline.is_some_and(|at| at <= now) {
        // Already expired: the key is gone (`checkAlreadyExpired`).
        drop(g);
        if deleted {
            ctx.notify(notify::GENERIC, "del", key);
        }
        ctx.out.ok();
        return Ok(());
    }
    let expiry = match deadline {
        Some(at) => SetExpiry::At(at as u64),
        None => SetExpiry::Persist,
    };
    g.set(key, value, expiry)?;
    match (lfu, freq, idle) {
        (true, Some(counter), _) => {
            // Validated to 0..=255 above.
            g.set_lfu(key, counter.clamp(0, 255) as u8);
        }
        (false, _, Some(secs)) => {
            g.set_idle_secs(key, secs as u64);
        }
        _ => {}
    }
    ctx.notify(notify::GENERIC, "restore", key);
    // `dbAdd` signals the key: clients blocked on it are served.
    g.signal(ctx, key);
    g.finish(ctx);
    ctx.out.ok();
    Ok(())
}
