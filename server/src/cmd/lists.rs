//! List commands, ported from Redis 7.0's `t_list.c` with its argument
//! order, error texts and reply types, and the blocking ones (`BLPOP`
//! `BRPOP` `BLMOVE` `BRPOPLPUSH` `BLMPOP`) over [`crate::blocking`].
//!
//! Reads that Redis does with `lookupKeyRead` (`LLEN`, `LINDEX`, `LRANGE`,
//! `LPOS`) count keyspace hits and misses; writes do not. A list emptied by
//! a command is removed, as Redis never keeps an empty list. Every command
//! that can give a list data to a key clients wait on locks with
//! [`blocking::lock_for_push`] and signals the key, so those clients are
//! served (first blocked, first served) before anything else sees the data.

use std::time::Instant;

use amber_storage::types::ListValue;
use amber_storage::{Guard, SetExpiry, Value};

use super::args::{self, is_c, nth};
use super::error::{CmdError, CmdResult};
use super::{Ctx, Handler};
use crate::blocking::{self, BlockedOp, Events, Outcome};
use crate::notify::{GENERIC, LIST};
use crate::resp::ReplyWriter;

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("lpush", lpush),
    ("rpush", rpush),
    ("lpushx", lpushx),
    ("rpushx", rpushx),
    ("linsert", linsert),
    ("llen", llen),
    ("lindex", lindex),
    ("lset", lset),
    ("lpop", lpop),
    ("rpop", rpop),
    ("lrange", lrange),
    ("ltrim", ltrim),
    ("lpos", lpos),
    ("lrem", lrem),
    ("lmove", lmove),
    ("rpoplpush", rpoplpush),
    ("lmpop", lmpop),
    ("blpop", blpop),
    ("brpop", brpop),
    ("blmove", blmove),
    ("brpoplpush", brpoplpush),
    ("blmpop", blmpop),
];

/// `ERR no such key`.
const NO_SUCH_KEY: &str = "ERR no such key";
/// `ERR index out of range`.
const OUT_OF_RANGE: &str = "ERR index out of range";

/// Which end of a list: Redis's `LIST_HEAD` (left) or `LIST_TAIL` (right).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Left,
    Right,
}

impl End {
    fn is_left(self) -> bool {
        self == End::Left
    }

    /// The keyspace event of a pop at this end.
    fn pop_event(self) -> &'static str {
        match self {
            End::Left => "lpop",
            End::Right => "rpop",
        }
    }

    /// The keyspace event of a push at this end.
    fn push_event(self) -> &'static str {
        match self {
            End::Left => "lpush",
            End::Right => "rpush",
        }
    }
}

/// `LEFT`/`RIGHT`, or a syntax error (`getListPositionFromObjectOrReply`).
fn end_arg(a: &[u8]) -> Result<End, CmdError> {
    if is_c(a, "left") {
        Ok(End::Left)
    } else if is_c(a, "right") {
        Ok(End::Right)
    } else {
        Err(CmdError::Syntax)
    }
}

/// A C `long` argument with Redis's default message.
fn long_arg(a: &[u8]) -> Result<i64, CmdError> {
    args::int(a)
}

/// `getRangeLongFromObjectOrReply(min, LONG_MAX, msg)`: the message serves
/// for "not an integer" too.
fn ranged_long(a: &[u8], min: i64, msg: &str) -> Result<i64, CmdError> {
    match args::parse_i64(a) {
        Some(v) if v >= min => Ok(v),
        _ => Err(CmdError::err(msg)),
    }
}

/// `getPositiveLongFromObjectOrReply` without a message.
fn positive_long(a: &[u8]) -> Result<i64, CmdError> {
    ranged_long(a, 0, "value is out of range, must be positive")
}

/// The list inside an optional value, or `WRONGTYPE`.
fn list_of(v: Option<&Value>) -> Result<Option<&ListValue>, CmdError> {
    match v {
        None => Ok(None),
        Some(Value::List(l)) => Ok(Some(l)),
        Some(_) => Err(CmdError::WrongType),
    }
}

/// The list at `key` for a read lookup (counts a hit or miss).
fn read_list<'g>(
    ctx: &Ctx<'_>,
    g: &'g mut Guard<'_>,
    key: &[u8],
) -> Result<Option<&'g ListValue>, CmdError> {
    let found = g.get(key);
    ctx.srv.stats.hit(found.is_some());
    list_of(found)
}

/// The list at `key` for an in-place edit, or `WRONGTYPE`.
fn list_mut<'g>(g: &'g mut Guard<'_>, key: &[u8]) -> Result<Option<&'g mut ListValue>, CmdError> {
    match g.get_mut(key) {
        None => Ok(None),
        Some(Value::List(l)) => Ok(Some(l)),
        Some(_) => Err(CmdError::WrongType),
    }
}

/// Whether `key` holds something other than a list (a write lookup).
fn check_list_or_absent(g: &mut Guard<'_>, key: &[u8]) -> CmdResult {
    list_of(g.get(key)).map(|_| ())
}

/// Removes `key` if its list is now empty; true if it did.
fn remove_if_empty(g: &mut Guard<'_>, key: &[u8]) -> bool {
    if matches!(g.peek(key), Some(Value::List(l)) if l.is_empty()) {
        g.remove(key);
        return true;
    }
    false
}

/// Removes `key` if its list is now empty, with Redis's `del` event.
fn delete_if_empty(g: &mut Guard<'_>, key: &[u8], ev: &mut dyn Events) {
    if remove_if_empty(g, key) {
        ev.notify(GENERIC, "del", key);
    }
}

/// Converts a Redis range (`start`/`end`, negative from the tail) over a
/// list of `len` elements to positions, or `None` when empty.
fn range_positions(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let llen = len as i64;
    let mut start = if start < 0 { llen + start } else { start };
    let end = if end < 0 { llen + end } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= llen {
        return None;
    }
    let end = end.min(llen - 1);
    Some((start as usize, end as usize))
}

/// Pops up to `count` elements from `where` of the list at `key` (which the
/// caller saw holds a non-empty list), removes the key if emptied, and
/// returns them in pop order. Events as Redis's `listElementsRemoved`:
/// `lpop`/`rpop`, then `del` if the list is gone.
fn pop_n(
    g: &mut Guard<'_>,
    key: &[u8],
    end: End,
    count: usize,
    ev: &mut dyn Events,
) -> Vec<Box<[u8]>> {
    let mut popped = Vec::new();
    if let Ok(Some(l)) = list_mut(g, key) {
        let n = count.min(l.len());
        popped.reserve(n);
        for _ in 0..n {
            if let Some(v) = l.pop(end.is_left()) {
                popped.push(v);
            }
        }
    }
    if !popped.is_empty() {
        ev.notify(LIST, end.pop_event(), key);
    }
    delete_if_empty(g, key, ev);
    popped
}

/// Writes `[key, [elements...]]` (LMPOP, BLMPOP).
fn reply_key_and_elements(out: &mut ReplyWriter, key: &[u8], elems: &[Box<[u8]>]) {
    out.array(2);
    out.bulk(key);
    out.array(elems.len());
    for e in elems {
        out.bulk(e);
    }
}

/// Pushes `value` at `end` of the list at `dst`, creating it if needed (the
/// caller checked `dst` is a list or absent).
fn push_to(g: &mut Guard<'_>, dst: &[u8], end: End, value: &[u8]) -> CmdResult {
    if let Some(l) = list_mut(g, dst)? {
        l.push(end.is_left(), value);
        return Ok(());
    }
    let mut l = ListValue::new();
    l.push(end.is_left(), value);
    g.set(dst, Value::from(l), SetExpiry::Persist)?;
    Ok(())
}

// ----- pushes -----

fn lpush(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    push_generic(ctx, args, End::Left, false)
}

fn rpush(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    push_generic(ctx, args, End::Right, false)
}

fn lpushx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    push_generic(ctx, args, End::Left, true)
}

fn rpushx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    push_generic(ctx, args, End::Right, true)
}

/// LPUSH RPUSH LPUSHX RPUSHX (`pushGenericCommand`); `xx`: only if the key exists.
fn push_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], end: End, xx: bool) -> CmdResult {
    let key = nth(args, 1);
    let elems = args.get(2..).unwrap_or_default();
    let mut g = blocking::lock_for_push(ctx, &[key])?;
    let len = match list_mut(&mut g, key)? {
        Some(l) => {
            for e in elems {
                l.push(end.is_left(), e);
            }
            l.len()
        }
        None if xx => 0,
        None => {
            let mut l = ListValue::new();
            for e in elems {
                l.push(end.is_left(), e);
            }
            let n = l.len();
            g.set(key, Value::from(l), SetExpiry::Persist)?;
            n
        }
    };
    ctx.out.int(len as i64);
    if len > 0 {
        ctx.notify(LIST, end.push_event(), key);
        g.signal(ctx, key);
    }
    g.finish(ctx);
    Ok(())
}

fn linsert(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, pos, pivot, elem) = (nth(args, 1), nth(args, 2), nth(args, 3), nth(args, 4));
    let after = if is_c(pos, "after") {
        true
    } else if is_c(pos, "before") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    // The key exists whenever an element is inserted: no client can be
    // waiting on it, so there is nobody to serve.
    let mut g = ctx.lock_one(key)?;
    let Some(l) = list_mut(&mut g, key)? else {
        drop(g);
        ctx.out.int(0);
        return Ok(());
    };
    let found = l.iter().position(|e| e == pivot);
    match found {
        Some(i) => {
            l.insert(if after { i + 1 } else { i }, elem);
            ctx.out.int(l.len() as i64);
            ctx.notify(LIST, "linsert", key);
        }
        None => {
            g.unchanged(key);
            ctx.out.int(-1);
        }
    }
    Ok(())
}

// ----- reads -----

fn llen(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let mut g = ctx.lock_one(key)?;
    let n = read_list(ctx, &mut g, key)?.map_or(0, ListValue::len);
    drop(g);
    ctx.out.int(n as i64);
    Ok(())
}

fn lindex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let mut g = ctx.lock_one(key)?;
    let Some(l) = read_list(ctx, &mut g, key)? else {
        drop(g);
        ctx.out.null();
        return Ok(());
    };
    let index = long_arg(nth(args, 2))?;
    match l.get_signed(index) {
        Some(v) => ctx.out.bulk(v),
        None => ctx.out.null(),
    }
    Ok(())
}

fn lrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let start = long_arg(nth(args, 2))?;
    let end = long_arg(nth(args, 3))?;
    let mut g = ctx.lock_one(key)?;
    let Some(l) = read_list(ctx, &mut g, key)? else {
        drop(g);
        ctx.out.array(0);
        return Ok(());
    };
    match range_positions(start, end, l.len()) {
        Some((s, e)) => {
            ctx.out.array(e - s + 1);
            for v in l.range(s, e) {
                ctx.out.bulk(v);
            }
        }
        None => ctx.out.array(0),
    }
    Ok(())
}

/// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`.
fn lpos(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, ele) = (nth(args, 1), nth(args, 2));
    let (mut rank, mut count, mut maxlen): (i64, i64, i64) = (1, -1, 0);
    let mut j = 3;
    while j < args.len() {
        let opt = nth(args, j);
        let more = args.len() - 1 - j;
        if is_c(opt, "RANK") && more > 0 {
            j += 1;
            rank = long_arg(nth(args, j))?;
            if rank == 0 {
                return Err(CmdError::err(
                    "RANK can't be zero: use 1 to start from the first match, 2 from the second ... \
                     or use negative to start from the end of the list",
                ));
            }
        } else if is_c(opt, "COUNT") && more > 0 {
            j += 1;
            count = ranged_long(nth(args, j), 0, "COUNT can't be negative")?;
        } else if is_c(opt, "MAXLEN") && more > 0 {
            j += 1;
            maxlen = ranged_long(nth(args, j), 0, "MAXLEN can't be negative")?;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    // A negative rank searches from the tail (C negates with wrap-around).
    let from_tail = rank < 0;
    if from_tail {
        rank = rank.wrapping_neg();
    }
    let mut g = ctx.lock_one(key)?;
    let Some(l) = read_list(ctx, &mut g, key)? else {
        drop(g);
        if count != -1 {
            ctx.out.array(0);
        } else {
            ctx.out.null();
        }
        return Ok(());
    };
    let llen = l.len() as i64;
    let mut found: Vec<i64> = Vec::new();
    let mut matches: i64 = 0;
    let mut single: Option<i64> = None;
    let iter: Box<dyn Iterator<Item = &[u8]>> = if from_tail {
        Box::new(l.iter().rev())
    } else {
        Box::new(l.iter())
    };
    for (index, e) in (0i64..).zip(iter) {
        if maxlen != 0 && index >= maxlen {
            break;
        }
        if e != ele {
            continue;
        }
        matches += 1;
        let at = if from_tail { llen - index - 1 } else { index };
        if matches >= rank {
            if count != -1 {
                found.push(at);
                if count != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= count {
                    break;
                }
            } else {
                single = Some(at);
                break;
            }
        }
    }
    drop(g);
    if count != -1 {
        ctx.out.array(found.len());
        for i in found {
            ctx.out.int(i);
        }
    } else {
        match single {
            Some(i) => ctx.out.int(i),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

// ----- edits -----

fn lset(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let mut g = ctx.lock_one(key)?;
    let Some(l) = list_mut(&mut g, key)? else {
        return Err(CmdError::msg(NO_SUCH_KEY));
    };
    let index = long_arg(nth(args, 2))?;
    let Some(i) = l.resolve(index) else {
        return Err(CmdError::msg(OUT_OF_RANGE));
    };
    l.set(i, nth(args, 3));
    drop(g);
    ctx.out.ok();
    ctx.notify(LIST, "lset", key);
    Ok(())
}

fn ltrim(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let start = long_arg(nth(args, 2))?;
    let end = long_arg(nth(args, 3))?;
    let mut g = ctx.lock_one(key)?;
    if let Some(l) = list_mut(&mut g, key)? {
        match range_positions(start, end, l.len()) {
            Some((s, e)) => l.keep_range(s, e),
            None => l.keep_range(1, 0),
        }
        ctx.notify(LIST, "ltrim", key);
        delete_if_empty(&mut g, key, ctx);
    }
    drop(g);
    ctx.out.ok();
    Ok(())
}

fn lrem(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let count = long_arg(nth(args, 2))?;
    let elem = nth(args, 3);
    let mut g = ctx.lock_one(key)?;
    let removed = match list_mut(&mut g, key)? {
        Some(l) => {
            let n = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
            let removed = l.remove_matching(elem, n, count < 0);
            if removed > 0 {
                ctx.notify(LIST, "lrem", key);
            } else {
                g.unchanged(key);
            }
            delete_if_empty(&mut g, key, ctx);
            removed
        }
        None => 0,
    };
    drop(g);
    ctx.out.int(removed as i64);
    Ok(())
}

// ----- pops -----

fn lpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    pop_generic(ctx, args, End::Left)
}

fn rpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    pop_generic(ctx, args, End::Right)
}

/// LPOP/RPOP with an optional count (`popGenericCommand`).
fn pop_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], end: End) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Arity(
            String::from_utf8_lossy(nth(args, 0)).to_lowercase(),
        ));
    }
    let key = nth(args, 1);
    let count = match args.get(2) {
        Some(a) => Some(positive_long(a)?),
        None => None,
    };
    let mut g = ctx.lock_one(key)?;
    if list_of(g.get(key))?.is_none() {
        drop(g);
        match count {
            Some(_) => ctx.out.null_array(),
            None => ctx.out.null(),
        }
        return Ok(());
    }
    match count {
        None => {
            let popped = pop_n(&mut g, key, end, 1, ctx);
            drop(g);
            match popped.first() {
                Some(v) => ctx.out.bulk(v),
                None => ctx.out.null(),
            }
        }
        Some(0) => {
            drop(g);
            ctx.out.array(0);
        }
        Some(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            let popped = pop_n(&mut g, key, end, n, ctx);
            drop(g);
            ctx.out.array(popped.len());
            for v in &popped {
                ctx.out.bulk(v);
            }
        }
    }
    Ok(())
}

/// Parsed `numkeys key... LEFT|RIGHT [COUNT count]` of LMPOP/BLMPOP.
struct MpopArgs<'a> {
    keys: &'a [&'a [u8]],
    end: End,
    count: usize,
}

/// `lmpopGenericCommand`'s parsing; `numkeys_idx` is where numkeys is.
fn parse_mpop<'a>(args: &'a [&'a [u8]], numkeys_idx: usize) -> Result<MpopArgs<'a>, CmdError> {
    let numkeys = ranged_long(
        nth(args, numkeys_idx),
        1,
        "numkeys should be greater than 0",
    )?;
    let where_idx = usize::try_from(numkeys)
        .ok()
        .and_then(|n| n.checked_add(numkeys_idx + 1))
        .filter(|&i| i < args.len())
        .ok_or(CmdError::Syntax)?;
    let end = end_arg(nth(args, where_idx))?;
    let mut count: i64 = -1;
    let mut j = where_idx + 1;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if count == -1 && is_c(nth(args, j), "COUNT") && more > 0 {
            j += 1;
            count = ranged_long(nth(args, j), 1, "count should be greater than 0")?;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let keys = args.get(numkeys_idx + 1..where_idx).unwrap_or_default();
    Ok(MpopArgs {
        keys,
        end,
        count: usize::try_from(count.max(1)).unwrap_or(usize::MAX),
    })
}

/// The first key of `keys` holding a non-empty list; `WRONGTYPE` if a key
/// before it holds another type (write lookups, in order).
fn first_nonempty<'k>(g: &mut Guard<'_>, keys: &[&'k [u8]]) -> Result<Option<&'k [u8]>, CmdError> {
    for &k in keys {
        match list_of(g.get(k))? {
            Some(l) if !l.is_empty() => return Ok(Some(k)),
            _ => {}
        }
    }
    Ok(None)
}

fn lmpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let p = parse_mpop(args, 1)?;
    let mut g = ctx.lock(p.keys.iter().copied())?;
    match first_nonempty(&mut g, p.keys)? {
        Some(k) => {
            let popped = pop_n(&mut g, k, p.end, p.count, ctx);
            drop(g);
            reply_key_and_elements(ctx.out, k, &popped);
        }
        None => {
            drop(g);
            ctx.out.null_array();
        }
    }
    Ok(())
}

// ----- moves -----

fn lmove(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let from = end_arg(nth(args, 3))?;
    let to = end_arg(nth(args, 4))?;
    lmove_generic(ctx, nth(args, 1), nth(args, 2), from, to)
}

fn rpoplpush(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    lmove_generic(ctx, nth(args, 1), nth(args, 2), End::Right, End::Left)
}

/// Moves one element; `Ok(None)` when `src` is absent or empty. The
/// caller holds `src` and `dst` locked. Events as `lmoveGenericCommand`:
/// the push on `dst`, the pop on `src`, then `del` if `src` is gone.
fn move_one(
    g: &mut Guard<'_>,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
    ev: &mut dyn Events,
) -> Result<Option<Box<[u8]>>, CmdError> {
    match list_of(g.get(src))? {
        Some(l) if !l.is_empty() => {}
        _ => return Ok(None),
    }
    check_list_or_absent(g, dst)?;
    let Some(l) = list_mut(g, src)? else {
        return Ok(None);
    };
    let Some(v) = l.pop(from.is_left()) else {
        return Ok(None);
    };
    if src == dst {
        l.push(to.is_left(), &v);
        ev.notify(LIST, to.push_event(), dst);
        ev.notify(LIST, from.pop_event(), src);
    } else {
        // Redis removes the emptied source after the push; the order of
        // the two writes is invisible, only the events' order shows.
        let emptied = remove_if_empty(g, src);
        push_to(g, dst, to, &v)?;
        ev.notify(LIST, to.push_event(), dst);
        ev.notify(LIST, from.pop_event(), src);
        if emptied {
            ev.notify(GENERIC, "del", src);
        }
    }
    Ok(Some(v))
}

/// LMOVE and RPOPLPUSH (`lmoveGenericCommand`).
fn lmove_generic(ctx: &mut Ctx<'_>, src: &[u8], dst: &[u8], from: End, to: End) -> CmdResult {
    let mut g = blocking::lock_for_push(ctx, &[src, dst])?;
    match move_one(&mut g, src, dst, from, to, ctx)? {
        Some(v) => {
            ctx.out.bulk(&v);
            g.signal(ctx, dst);
        }
        None => ctx.out.null(),
    }
    g.finish(ctx);
    Ok(())
}

// ----- blocking -----

/// What a blocked list command does once served.
enum ListOp {
    /// BLPOP/BRPOP: `[key, element]`.
    Pop(End),
    /// BLMPOP: `[key, [elements]]`.
    MPop(End, usize),
    /// BLMOVE/BRPOPLPUSH: the element, pushed to `dst[0]`.
    Move {
        from: End,
        to: End,
        dst: Vec<Vec<u8>>,
    },
}

impl BlockedOp for ListOp {
    fn extra_keys(&self) -> &[Vec<u8>] {
        match self {
            ListOp::Move { dst, .. } => dst,
            _ => &[],
        }
    }

    fn effect(&self, key: &[u8], popped: usize) -> Option<Vec<Vec<u8>>> {
        let side = |e: &End| {
            if e.is_left() {
                b"LEFT".to_vec()
            } else {
                b"RIGHT".to_vec()
            }
        };
        let pop = |e: &End| {
            if e.is_left() {
                b"LPOP".to_vec()
            } else {
                b"RPOP".to_vec()
            }
        };
        Some(match self {
            ListOp::Pop(end) => vec![pop(end), key.to_vec()],
            ListOp::MPop(end, _) => {
                vec![pop(end), key.to_vec(), popped.to_string().into_bytes()]
            }
            ListOp::Move { from, to, dst } => vec![
                b"LMOVE".to_vec(),
                key.to_vec(),
                dst.first().cloned().unwrap_or_default(),
                side(from),
                side(to),
            ],
        })
    }

    fn serve(
        &self,
        g: &mut Guard<'_>,
        key: &[u8],
        out: &mut ReplyWriter,
        events: &mut dyn Events,
    ) -> Outcome {
        match g.get(key) {
            Some(Value::List(l)) if !l.is_empty() => {}
            Some(Value::List(_)) | None => return Outcome::Stop,
            Some(_) => return Outcome::Skip,
        }
        match self {
            ListOp::Pop(end) => {
                let popped = pop_n(g, key, *end, 1, events);
                let Some(v) = popped.first() else {
                    return Outcome::Stop;
                };
                out.array(2);
                out.bulk(key);
                out.bulk(v);
                Outcome::Served {
                    pushed: None,
                    popped: 1,
                }
            }
            ListOp::MPop(end, count) => {
                let popped = pop_n(g, key, *end, *count, events);
                reply_key_and_elements(out, key, &popped);
                Outcome::Served {
                    pushed: None,
                    popped: popped.len(),
                }
            }
            ListOp::Move { from, to, dst } => {
                let dst = dst.first().map(Vec::as_slice).unwrap_or_default();
                match move_one(g, key, dst, *from, *to, events) {
                    Ok(Some(v)) => {
                        out.bulk(&v);
                        Outcome::Served {
                            pushed: Some(dst.to_vec()),
                            popped: 1,
                        }
                    }
                    Ok(None) => Outcome::Stop,
                    // The destination holds another type: the waiter gets
                    // the error and is unblocked, the element stays.
                    Err(e) => {
                        out.error(&e.text());
                        Outcome::Served {
                            pushed: None,
                            popped: 1,
                        }
                    }
                }
            }
        }
    }
}

fn blpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    bpop_generic(ctx, args, End::Left)
}

fn brpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    bpop_generic(ctx, args, End::Right)
}

/// BLPOP/BRPOP `key... timeout`.
fn bpop_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], end: End) -> CmdResult {
    let keys = args
        .get(1..args.len().saturating_sub(1))
        .unwrap_or_default();
    let deadline = blocking::parse_timeout(nth(args, args.len().saturating_sub(1)))?;
    blocking_pop(ctx, keys, end, None, deadline)
}

/// `blockingPopGenericCommand`: pop at once if a key has data, else block.
/// `count`: `Some` for BLMPOP's reply shape.
fn blocking_pop(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    end: End,
    count: Option<usize>,
    deadline: Option<Instant>,
) -> CmdResult {
    let mut g = ctx.lock(keys.iter().copied())?;
    if let Some(k) = first_nonempty(&mut g, keys)? {
        let popped = pop_n(&mut g, k, end, count.unwrap_or(1), ctx);
        drop(g);
        match count {
            Some(_) => reply_key_and_elements(ctx.out, k, &popped),
            None => match popped.first() {
                Some(v) => {
                    ctx.out.array(2);
                    ctx.out.bulk(k);
                    ctx.out.bulk(v);
                }
                None => ctx.out.null_array(),
            },
        }
        return Ok(());
    }
    if ctx.client.block.blocking_denied() {
        drop(g);
        ctx.out.null_array();
        return Ok(());
    }
    let op = match count {
        Some(n) => ListOp::MPop(end, n),
        None => ListOp::Pop(end),
    };
    blocking::block(ctx, &g, keys, deadline, Box::new(op));
    Ok(())
}

fn blmove(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let from = end_arg(nth(args, 3))?;
    let to = end_arg(nth(args, 4))?;
    let deadline = blocking::parse_timeout(nth(args, 5))?;
    blmove_generic(ctx, nth(args, 1), nth(args, 2), from, to, deadline)
}

fn brpoplpush(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let deadline = blocking::parse_timeout(nth(args, 3))?;
    blmove_generic(
        ctx,
        nth(args, 1),
        nth(args, 2),
        End::Right,
        End::Left,
        deadline,
    )
}

/// `blmoveGenericCommand`: LMOVE if the source has data, else block.
fn blmove_generic(
    ctx: &mut Ctx<'_>,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
    deadline: Option<Instant>,
) -> CmdResult {
    let mut g = blocking::lock_for_push(ctx, &[src, dst])?;
    if list_of(g.get(src))?.is_some_and(|l| !l.is_empty()) {
        match move_one(&mut g, src, dst, from, to, ctx)? {
            Some(v) => {
                ctx.out.bulk(&v);
                g.signal(ctx, dst);
            }
            None => ctx.out.null(),
        }
        g.finish(ctx);
        return Ok(());
    }
    if ctx.client.block.blocking_denied() {
        drop(g);
        ctx.out.null();
        return Ok(());
    }
    let op = ListOp::Move {
        from,
        to,
        dst: vec![dst.to_vec()],
    };
    blocking::block(ctx, &g, &[src], deadline, Box::new(op));
    Ok(())
}

/// `BLMPOP timeout numkeys key... LEFT|RIGHT [COUNT count]`.
fn blmpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let p = parse_mpop(args, 2)?;
    let deadline = blocking::parse_timeout(nth(args, 1))?;
    blocking_pop(ctx, p.keys, p.end, Some(p.count), deadline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_like_redis() {
        assert_eq!(range_positions(0, -1, 3), Some((0, 2)));
        assert_eq!(range_positions(-100, 100, 3), Some((0, 2)));
        assert_eq!(range_positions(2, 1, 3), None);
        assert_eq!(range_positions(3, 5, 3), None);
        assert_eq!(range_positions(i64::MIN, i64::MAX, 3), Some((0, 2)));
        assert_eq!(range_positions(0, i64::MIN, 3), None);
        assert_eq!(range_positions(0, 0, 0), None);
    }
}
