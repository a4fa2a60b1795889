//! SORT and SORT_RO: Redis 7.0's `sort.c`.
//!
//! `SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC]
//! [ALPHA] [STORE destination]` sorts the elements of a set, list or sorted
//! set, numerically (each element, or the value its `BY` pattern names,
//! read as a double) or by bytes (`ALPHA`), and replies with them (or with
//! the values the `GET` patterns name, `#` being the element itself), or
//! stores them as a list (`STORE`, not in `SORT_RO`).
//!
//! A pattern's first `*` is replaced by the element; `key->field` reads a
//! hash field instead of a string. `BY` without `*` means "do not sort".
//!
//! # Locking
//!
//! The keys a pattern names are known only once the source has been read,
//! but a guard locks its shards up front. So SORT locks the source (and
//! destination), reads the elements, works out every key its patterns
//! name, and if any was not locked, drops the guard and starts again with
//! those keys too. The result is computed under one guard holding every key
//! it reads, so SORT is atomic like any other command.
//!
//! # Lists and sorted sets
//!
//! The small functions under "lists and sorted sets" below are the only
//! places that know those types' layout.

use std::cmp::Ordering;
use std::collections::HashSet;

use amber_storage::types::{ListValue, SetValue, ZSetValue};
use amber_storage::{Guard, SetExpiry, Value};

use super::args::{self, c_str, is_c};
use super::error::{CmdError, CmdResult};
use super::{Ctx, Handler};
use crate::blocking::{self, PushGuard};
use crate::notify;

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[("sort", sort), ("sort_ro", sort_ro)];

// ------------------------------------------------- lists and sorted sets

/// The elements of a list, head to tail.
fn list_elements(l: &ListValue) -> Vec<Vec<u8>> {
    l.iter().map(|e| e.to_vec()).collect()
}

/// The members of a sorted set in ascending (score, member) order, as
/// `ZRANGE key 0 -1` returns them.
fn zset_elements(z: &ZSetValue) -> Vec<Vec<u8>> {
    z.iter().map(|(m, _)| m.to_vec()).collect()
}

/// A new list holding `items` head to tail, as `SORT ... STORE` writes it
/// (Redis 7.0 lists are always `quicklist`).
fn new_list(items: Vec<Vec<u8>>) -> Value {
    let mut l = ListValue::new();
    for i in &items {
        l.push_back(i);
    }
    Value::from(l)
}

/// The elements of a set, in the set's own order.
fn set_elements(s: &SetValue) -> Vec<Vec<u8>> {
    s.iter().map(|m| m.to_vec()).collect()
}

/// A key may name this many other keys before SORT stops re-locking and
/// treats the ones it could not lock as missing (only a source rewritten
/// between every attempt gets there).
const MAX_ROUNDS: usize = 8;

fn sort(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    sort_generic(ctx, args, false)
}

fn sort_ro(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    sort_generic(ctx, args, true)
}

/// SORT's options.
struct Options<'a> {
    desc: bool,
    alpha: bool,
    limit_start: i64,
    limit_count: i64,
    by: Option<&'a [u8]>,
    dontsort: bool,
    gets: Vec<&'a [u8]>,
    store: Option<&'a [u8]>,
}

/// Whether the client's user may read every key with this command (SORT's
/// BY and GET patterns need it), as Redis's
/// `ACLUserCheckCmdWithUnrestrictedKeyAccess`.
fn user_reads_all_keys(ctx: &Ctx<'_>, args: &[&[u8]]) -> bool {
    let srv = ctx.srv;
    if ctx.client.acl_unrestricted_at == srv.acl.epoch() {
        return true;
    }
    let Some(user) = srv.acl.get(&ctx.client.user) else {
        return false;
    };
    let Some(def) = args.first().and_then(|n| srv.commands.get(n)) else {
        return false;
    };
    user.all_keys_for(srv.acl.catalog(srv), def, args)
}

/// Parses the options after the key, with Redis's errors, in its order.
fn parse_options<'a>(
    args: &[&'a [u8]],
    readonly: bool,
    all_keys: bool,
) -> Result<Options<'a>, CmdError> {
    let mut o = Options {
        desc: false,
        alpha: false,
        limit_start: 0,
        limit_count: -1,
        by: None,
        dontsort: false,
        gets: Vec::new(),
        store: None,
    };
    let mut j = 2;
    while j < args.len() {
        let opt = args::nth(args, j);
        let left = args.len() - j - 1;
        if is_c(opt, "asc") {
            o.desc = false;
        } else if is_c(opt, "desc") {
            o.desc = true;
        } else if is_c(opt, "alpha") {
            o.alpha = true;
        } else if is_c(opt, "limit") && left >= 2 {
            o.limit_start = args::int(args::nth(args, j + 1))?;
            o.limit_count = args::int(args::nth(args, j + 2))?;
            j += 2;
        } else if !readonly && is_c(opt, "store") && left >= 1 {
            o.store = Some(args::nth(args, j + 1));
            j += 1;
        } else if is_c(opt, "by") && left >= 1 {
            let p = args::nth(args, j + 1);
            o.by = Some(p);
            o.dontsort = !c_str(p).contains(&b'*');
            // A real pattern reads keys the ACL check did not see.
            if !o.dontsort && !all_keys {
                return Err(CmdError::err(
                    "BY option of SORT denied due to insufficient ACL permissions.",
                ));
            }
            j += 1;
        } else if is_c(opt, "get") && left >= 1 {
            if !all_keys {
                return Err(CmdError::err(
                    "GET option of SORT denied due to insufficient ACL permissions.",
                ));
            }
            o.gets.push(args::nth(args, j + 1));
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

/// What a pattern names for one element.
enum Target {
    /// The element itself (`#`).
    Element,
    /// Nothing (a pattern without `*`).
    Nothing,
    /// A string key.
    Key(Vec<u8>),
    /// A field of a hash key.
    Field(Vec<u8>, Vec<u8>),
}

/// Redis's `lookupKeyByPattern`, without the lookup: substitutes `elem`
/// for the pattern's first `*` and splits off a `->field`.
fn resolve(pattern: &[u8], elem: &[u8]) -> Target {
    if c_str(pattern) == b"#" {
        return Target::Element;
    }
    let Some(star) = c_str(pattern).iter().position(|&c| c == b'*') else {
        return Target::Nothing;
    };
    let after = pattern.get(star + 1..).unwrap_or_default();
    let arrow = c_str(after)
        .windows(2)
        .position(|w| w == b"->")
        .filter(|&a| c_str(after).len() > a + 2);
    let prefix = pattern.get(..star).unwrap_or_default();
    let (postfix, field) = match arrow {
        Some(a) => (
            after.get(..a).unwrap_or_default(),
            Some(after.get(a + 2..).unwrap_or_default()),
        ),
        None => (after, None),
    };
    let mut key = Vec::with_capacity(prefix.len() + elem.len() + postfix.len());
    key.extend_from_slice(prefix);
    key.extend_from_slice(elem);
    key.extend_from_slice(postfix);
    match field {
        Some(f) => Target::Field(key, f.to_vec()),
        None => Target::Key(key),
    }
}

/// The keys `pattern` names for `elem`, if any.
fn named_key(pattern: &[u8], elem: &[u8]) -> Option<Vec<u8>> {
    match resolve(pattern, elem) {
        Target::Key(k) | Target::Field(k, _) => Some(k),
        Target::Element | Target::Nothing => None,
    }
}

/// The value `pattern` names for `elem`: a string key's value or a hash
/// field; `None` when missing or of another type. Keys outside `locked` are
/// treated as missing (see [`MAX_ROUNDS`]).
fn lookup(
    ctx: &Ctx<'_>,
    g: &mut Guard<'_>,
    locked: &HashSet<Vec<u8>>,
    pattern: &[u8],
    elem: &[u8],
) -> Option<Vec<u8>> {
    let (key, field) = match resolve(pattern, elem) {
        Target::Element => return Some(elem.to_vec()),
        Target::Nothing => return None,
        Target::Key(k) => (k, None),
        Target::Field(k, f) => (k, Some(f)),
    };
    if !locked.contains(&key) {
        return None;
    }
    let found = g.get(&key);
    ctx.srv.stats.hit(found.is_some());
    match (found?, field) {
        (Value::Str(s), None) => Some(s.bytes.clone()),
        (Value::Hash(h), Some(f)) => h.get(&f).map(<[u8]>::to_vec),
        _ => None,
    }
}

/// The source's elements, and whether it is a set (the only unordered type).
fn load(ctx: &Ctx<'_>, g: &mut Guard<'_>, key: &[u8]) -> Result<(Vec<Vec<u8>>, bool), CmdError> {
    let found = g.get(key);
    ctx.srv.stats.hit(found.is_some());
    match found {
        None => Ok((Vec::new(), false)),
        Some(Value::Set(s)) => Ok((set_elements(s), true)),
        Some(Value::List(l)) => Ok((list_elements(l), false)),
        Some(Value::ZSet(z)) => Ok((zset_elements(z), false)),
        Some(_) => Err(CmdError::WrongType),
    }
}

/// Redis's LIMIT arithmetic: the `[start, end]` range of the output
/// (`end < start` when empty).
fn range(len: usize, start: i64, count: i64) -> (i64, i64) {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let mut start = start.max(0).min(len);
    let count = count.max(-1).min(len);
    let mut end = if count < 0 {
        len - 1
    } else {
        start + count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }
    (start, end)
}

/// `strtod` as SORT uses it: the whole text must be a number (leading
/// spaces allowed, an empty text is 0); overflow, underflow and NaN fail.
fn score(v: &[u8]) -> Option<f64> {
    let t = v
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))
        .map_or(&b""[..], |i| v.get(i..).unwrap_or_default());
    if t.is_empty() {
        return Some(0.0);
    }
    let s = std::str::from_utf8(t).ok()?;
    let lower = s.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    let d: f64 = s.parse().ok()?;
    let literal_inf = body == "inf" || body == "infinity";
    if d.is_nan() || (d.is_infinite() && !literal_inf) {
        return None;
    }
    if d == 0.0
        && body
            .bytes()
            .take_while(|c| *c != b'e')
            .any(|c| (b'1'..=b'9').contains(&c))
    {
        return None;
    }
    Some(d)
}

/// One element being sorted.
struct Item {
    elem: Vec<u8>,
    score: f64,
    by: Option<Vec<u8>>,
}

fn sort_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], readonly: bool) -> CmdResult {
    let o = parse_options(args, readonly, user_reads_all_keys(ctx, args))?;
    let key = args::nth(args, 1);
    let mut locked: HashSet<Vec<u8>> = HashSet::new();
    locked.insert(key.to_vec());
    if let Some(s) = o.store {
        locked.insert(s.to_vec());
    }
    let mut round = 0;
    loop {
        round += 1;
        // A stored list may wake clients blocked on the destination.
        let keys: Vec<&[u8]> = locked.iter().map(Vec::as_slice).collect();
        let mut g = blocking::lock_for_push(ctx, &keys)?;
        let (elems, is_set) = load(ctx, &mut g, key)?;
        let mut wanted: Vec<Vec<u8>> = Vec::new();
        for e in &elems {
            if let (Some(by), false) = (o.by, o.dontsort) {
                wanted.extend(named_key(by, e));
            }
            for p in &o.gets {
                wanted.extend(named_key(p, e));
            }
        }
        let missing: Vec<Vec<u8>> = wanted.into_iter().filter(|k| !locked.contains(k)).collect();
        if !missing.is_empty() && round < MAX_ROUNDS {
            drop(g);
            locked.extend(missing);
            continue;
        }
        return finish(ctx, g, &locked, &o, elems, is_set);
    }
}

/// Sorts `elems` and replies or stores, under the guard holding every key.
fn finish(
    ctx: &mut Ctx<'_>,
    mut g: PushGuard<'_>,
    locked: &HashSet<Vec<u8>>,
    o: &Options<'_>,
    elems: Vec<Vec<u8>>,
    is_set: bool,
) -> CmdResult {
    let (mut dontsort, mut alpha, mut by) = (o.dontsort, o.alpha, o.by);
    // A set stored unsorted would store its hash order: Redis sorts it.
    if dontsort && is_set && o.store.is_some() {
        dontsort = false;
        alpha = true;
        by = None;
    }
    let (start, end) = range(elems.len(), o.limit_start, o.limit_count);
    let mut items: Vec<Item> = elems
        .into_iter()
        .map(|elem| Item {
            elem,
            score: 0.0,
            by: None,
        })
        .collect();
    if dontsort && !is_set && o.desc {
        // Lists and sorted sets keep their order, reversed for DESC.
        items.reverse();
    }
    let mut conversion_error = false;
    if !dontsort {
        for it in &mut items {
            let value = match by {
                Some(p) => match lookup(ctx, &mut g, locked, p, &it.elem) {
                    Some(v) => v,
                    None => continue,
                },
                None => it.elem.clone(),
            };
            if alpha {
                if by.is_some() {
                    it.by = Some(value);
                }
            } else {
                match score(&value) {
                    Some(s) => it.score = s,
                    None => conversion_error = true,
                }
            }
        }
        let compare = |a: &Item, b: &Item| -> Ordering {
            let c = if !alpha {
                a.score
                    .partial_cmp(&b.score)
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| a.elem.cmp(&b.elem))
            } else if by.is_some() {
                match (&a.by, &b.by) {
                    (Some(x), Some(y)) => x.cmp(y),
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                }
            } else {
                a.elem.cmp(&b.elem)
            };
            if o.desc {
                c.reverse()
            } else {
                c
            }
        };
        items.sort_by(compare);
    }
    if conversion_error {
        return Err(CmdError::err(
            "One or more scores can't be converted into double",
        ));
    }
    let chosen: &[Item] = if end >= start {
        let (s, e) = (
            usize::try_from(start).unwrap_or(0),
            usize::try_from(end).unwrap_or(0),
        );
        items.get(s..=e).unwrap_or_default()
    } else {
        &[]
    };
    let mut output: Vec<Option<Vec<u8>>> = Vec::new();
    for it in chosen {
        if o.gets.is_empty() {
            output.push(Some(it.elem.clone()));
        }
        for p in &o.gets {
            output.push(lookup(ctx, &mut g, locked, p, &it.elem));
        }
    }
    match o.store {
        None => {
            drop(g);
            ctx.out.array(output.len());
            for v in &output {
                match v {
                    Some(v) => ctx.out.bulk(v),
                    None => ctx.out.null(),
                }
            }
        }
        Some(dst) => {
            let n = output.len();
            if n > 0 {
                let items = output.into_iter().map(Option::unwrap_or_default).collect();
                // `setKey`: only a new key is signaled (`dbAdd`); a list
                // overwriting another value wakes nobody, as in Redis 7.0.
                let created = !g.exists(dst);
                g.set(dst, new_list(items), SetExpiry::Persist)?;
                ctx.notify(notify::LIST, "sortstore", dst);
                if created {
                    g.signal(ctx, dst);
                }
                g.finish(ctx);
            } else {
                let deleted = g.delete_key(dst);
                drop(g);
                if deleted {
                    ctx.notify(notify::GENERIC, "del", dst);
                }
            }
            ctx.out.int(n as i64);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_resolve_like_redis() {
        assert!(matches!(resolve(b"#", b"e"), Target::Element));
        assert!(matches!(resolve(b"fixed", b"e"), Target::Nothing));
        assert!(matches!(resolve(b"w_*", b"e"), Target::Key(k) if k == b"w_e"));
        assert!(matches!(resolve(b"w_*_x", b"e"), Target::Key(k) if k == b"w_e_x"));
        assert!(
            matches!(resolve(b"h_*->f", b"e"), Target::Field(k, f) if k == b"h_e" && f == b"f")
        );
        // An arrow with no field after it is part of the key name.
        assert!(matches!(resolve(b"h_*->", b"e"), Target::Key(k) if k == b"h_e->"));
        // Only the first star is substituted.
        assert!(matches!(resolve(b"a*b*", b"e"), Target::Key(k) if k == b"aeb*"));
    }

    #[test]
    fn limit_ranges_like_redis() {
        assert_eq!(range(5, 0, -1), (0, 4));
        assert_eq!(range(5, 1, 2), (1, 2));
        assert_eq!(range(5, 10, 2), (4, 3));
        assert_eq!(range(5, -3, 2), (0, 1));
        assert_eq!(range(5, 2, 100), (2, 4));
        // sort.c: an empty vector gives start -1, end -2 (nothing).
        assert_eq!(range(0, 0, -1), (-1, -2));
        assert_eq!(range(5, i64::MAX, i64::MAX), (4, 3));
    }

    #[test]
    fn scores_parse_like_strtod() {
        assert_eq!(score(b"1.5"), Some(1.5));
        assert_eq!(score(b" 2"), Some(2.0));
        assert_eq!(score(b""), Some(0.0));
        assert_eq!(score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(score(b"2 "), None);
        assert_eq!(score(b"abc"), None);
        assert_eq!(score(b"nan"), None);
        assert_eq!(score(b"1e400"), None);
        assert_eq!(score(b"1e-400"), None);
        assert_eq!(score(b"0.0"), Some(0.0));
    }
}
