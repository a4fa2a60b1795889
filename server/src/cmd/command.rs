//! COMMAND and its subcommands, answered from Redis 7.0's raw metadata.
//!
//! Every reply about a command is built from the raw `COMMAND INFO` /
//! `COMMAND DOCS` bytes Redis itself produced (in the client's protocol), so
//! Amber answers byte for byte as Redis does for the commands it implements.
//! `COMMAND GETKEYS` interprets the key specs found in those same bytes, as
//! Redis's `getKeysUsingKeySpecs` does.

use std::sync::Arc;

use super::admin::reply_help;
use super::args::{is, parse_i64, text};
use super::error::{CmdError, CmdResult};
use super::table::{lookup, CommandDef, Flags};
use super::{Ctx, Handler};
use crate::resp::Protocol;
use crate::state::ServerState;

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("command", command),
    ("command|count", count),
    ("command|info", info),
    ("command|docs", docs),
    ("command|list", list),
    ("command|getkeys", getkeys),
    ("command|getkeysandflags", getkeysandflags),
    ("command|help", help),
];

fn proto_index(ctx: &Ctx<'_>) -> usize {
    usize::from(ctx.out.proto == Protocol::Resp3)
}

/// The raw `COMMAND INFO` (`docs == false`) or `COMMAND DOCS` entry of a
/// command in protocol `p`. Subcommands have no entry of their own in the
/// metadata dump: theirs is cut out of their container's entry.
fn raw_entry(srv: &ServerState, def: &CommandDef, p: usize, docs: bool) -> Vec<u8> {
    let own = if docs { &def.docs[p] } else { &def.info[p] };
    if !own.is_empty() {
        return own.clone();
    }
    let Some((parent, _)) = def.name.split_once('|') else {
        return own.clone();
    };
    let Some(parent) = srv.commands.get(parent.as_bytes()) else {
        return own.clone();
    };
    let raw = if docs {
        &parent.docs[p]
    } else {
        &parent.info[p]
    };
    sub_entry(raw, &def.name, docs).unwrap_or_default()
}

/// The spans of the elements of the aggregate starting at `start`.
fn children(b: &[u8], start: usize) -> Option<Vec<(usize, usize)>> {
    let rest = b.get(start..)?;
    let nl = rest.windows(2).position(|w| w == b"\r\n")?;
    let tag = *rest.first()?;
    let n: usize = std::str::from_utf8(rest.get(1..nl)?).ok()?.parse().ok()?;
    let count = if tag == b'%' { 2 * n } else { n };
    let mut pos = start + nl + 2;
    let mut out = Vec::new();
    for _ in 0..count {
        let s = pos;
        parse(b, &mut pos)?;
        out.push((s, pos));
    }
    Some(out)
}

/// A subcommand's entry inside its container's raw INFO or DOCS entry.
fn sub_entry(raw: &[u8], fullname: &str, docs: bool) -> Option<Vec<u8>> {
    let top = children(raw, 0)?;
    let subs = if docs {
        let pairs = top.chunks(2).find(|kv| {
            kv.first()
                .and_then(|&(s, e)| raw.get(s..e))
                .is_some_and(|k| k.ends_with(b"subcommands\r\n"))
        })?;
        *pairs.get(1)?
    } else {
        *top.get(9)?
    };
    let items = children(raw, subs.0)?;
    if docs {
        for kv in items.chunks(2) {
            let (ks, ke) = *kv.first()?;
            let mut pos = ks;
            if parse(raw, &mut pos).is_some_and(|k| k.text() == fullname.as_bytes()) && pos == ke {
                let (vs, ve) = *kv.get(1)?;
                return raw.get(vs..ve).map(<[u8]>::to_vec);
            }
        }
    } else {
        for (s, e) in items {
            let mut pos = s;
            let v = parse(raw, &mut pos)?;
            if v.items()
                .first()
                .is_some_and(|n| n.text() == fullname.as_bytes())
            {
                return raw.get(s..e).map(<[u8]>::to_vec);
            }
        }
    }
    None
}

/// Every top-level command, sorted by name (Redis answers in hash order).
fn all(ctx: &Ctx<'_>) -> Vec<Arc<CommandDef>> {
    let mut v: Vec<Arc<CommandDef>> = ctx.srv.commands.iter().cloned().collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// Finds a command by name, `container|sub` names included.
fn by_name<'a>(ctx: &'a Ctx<'_>, name: &[u8]) -> Option<&'a Arc<CommandDef>> {
    ctx.srv.commands.by_full_name(name)
}

fn command(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let p = proto_index(ctx);
    let cmds = all(ctx);
    ctx.out.array(cmds.len());
    for c in &cmds {
        ctx.out.raw(&c.info[p]);
    }
    Ok(())
}

fn count(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    ctx.out.int(ctx.srv.commands.len() as i64);
    Ok(())
}

fn info(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    if args.len() == 2 {
        return command(ctx, args);
    }
    let p = proto_index(ctx);
    let names = args.get(2..).unwrap_or_default();
    let found: Vec<Option<Vec<u8>>> = names
        .iter()
        .map(|n| by_name(ctx, n).map(|c| raw_entry(ctx.srv, c, p, false)))
        .collect();
    ctx.out.array(found.len());
    for f in found {
        match f {
            Some(raw) => ctx.out.raw(&raw),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

fn docs(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let p = proto_index(ctx);
    let found: Vec<(String, Vec<u8>)> = if args.len() == 2 {
        all(ctx)
            .iter()
            .map(|c| (c.name.clone(), c.docs[p].clone()))
            .collect()
    } else {
        args.get(2..)
            .unwrap_or_default()
            .iter()
            .filter_map(|n| {
                by_name(ctx, n).map(|c| (c.name.clone(), raw_entry(ctx.srv, c, p, true)))
            })
            .collect()
    };
    ctx.out.map(found.len());
    for (name, raw) in found {
        ctx.out.bulk(name.as_bytes());
        ctx.out.raw(&raw);
    }
    Ok(())
}

enum Filter {
    None,
    Module,
    AclCat(Option<String>),
    Pattern(Vec<u8>),
}

fn keep(c: &CommandDef, raw: &[u8], filter: &Filter) -> bool {
    match filter {
        Filter::None => true,
        // Amber has no modules.
        Filter::Module => false,
        Filter::AclCat(None) => false,
        Filter::AclCat(Some(cat)) => categories(raw).iter().any(|x| x == cat),
        Filter::Pattern(p) => amber_storage::glob::matches(p, c.name.as_bytes(), true),
    }
}

fn list(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let mut filter = Filter::None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = args.get(i).copied().unwrap_or_default();
        if is(opt, "filterby") && more == 2 {
            let kind = args.get(i + 1).copied().unwrap_or_default();
            let arg = args.get(i + 2).copied().unwrap_or_default();
            filter = if is(kind, "module") {
                Filter::Module
            } else if is(kind, "aclcat") {
                let cat = text(arg).to_ascii_lowercase();
                Filter::AclCat(
                    crate::acl::CATEGORIES
                        .contains(&cat.as_str())
                        .then_some(cat),
                )
            } else if is(kind, "pattern") {
                Filter::Pattern(arg.to_vec())
            } else {
                return Err(CmdError::Syntax);
            };
            i += 3;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let mut names = Vec::new();
    for c in all(ctx) {
        if keep(&c, &raw_entry(ctx.srv, &c, 0, false), &filter) {
            names.push(c.name.clone());
        }
        let mut subs: Vec<&Arc<CommandDef>> = c.subcommands.values().collect();
        subs.sort_by(|a, b| a.name.cmp(&b.name));
        for s in subs {
            if keep(s, &raw_entry(ctx.srv, s, 0, false), &filter) {
                names.push(s.name.clone());
            }
        }
    }
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n.as_bytes());
    }
    Ok(())
}

fn help(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    reply_help(
        ctx,
        args,
        &[
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
        ],
    );
    Ok(())
}

/// The key arguments of a call of `def` (`args[0]` its name), as Redis's
/// `getKeysFromCommand` finds them: by (first, last, step), or by the key
/// specs for a command with movable keys (client-side caching remembers
/// them for `CLIENT TRACKING`).
pub fn key_args<'a>(srv: &ServerState, def: &CommandDef, args: &[&'a [u8]]) -> Vec<&'a [u8]> {
    if !def.flags.has(Flags::MOVABLE_KEYS) {
        return def.keys(args);
    }
    let specs = key_specs(&raw_entry(srv, def, 0, false), false);
    keys_by_specs(&specs, args, def.arity as i64)
        .or_else(|| native_keys(&def.name, args))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(pos, _)| args.get(pos).copied())
        .collect()
}

/// The ACL categories (without `@`) of a command, from its metadata.
pub fn command_categories(srv: &ServerState, def: &CommandDef) -> Vec<String> {
    categories(&raw_entry(srv, def, 0, false))
}

/// The key arguments of a command for ACL checks: each key's position and
/// the permission it needs ([`crate::acl::READ`] for `access`,
/// [`crate::acl::WRITE`] for `insert`, `delete` or `update`), from its key
/// specs, as Redis's `ACLSelectorCheckKey`. A command whose keys cannot be
/// found from the specs asks for both on every argument after the name.
pub fn key_access(srv: &ServerState, def: &CommandDef, args: &[&[u8]]) -> Vec<(usize, u8)> {
    use crate::acl::{READ, WRITE};
    if matches!(def.name.as_str(), "sort" | "sort_ro") {
        return sort_key_access(args);
    }
    let specs = key_specs(&raw_entry(srv, def, 0, false), false);
    let keys = keys_by_specs_with(&specs, args, def.arity as i64, true)
        .or_else(|| native_keys(&def.name, args));
    let Some(keys) = keys else {
        return (1..args.len()).map(|i| (i, READ | WRITE)).collect();
    };
    keys.into_iter()
        .map(|(pos, spec)| {
            let raw = match specs.get(spec) {
                Some(s) if s.variable_flags => variable_key_flags(&def.name, args, false)
                    .unwrap_or_else(|| s.raw_flags.clone()),
                Some(s) => s.raw_flags.clone(),
                None => Vec::new(),
            };
            let has = |w: &[u8]| raw.windows(w.len()).any(|x| x == w);
            let mut need = 0;
            if has(b"access") {
                need |= READ;
            }
            if has(b"insert") || has(b"delete") || has(b"update") {
                need |= WRITE;
            }
            (pos, need)
        })
        .collect()
}

/// SORT's keys for ACL checks: the sorted key is read, the `STORE`
/// destination written.
fn sort_key_access(args: &[&[u8]]) -> Vec<(usize, u8)> {
    use crate::acl::{READ, WRITE};
    sort_keys(args)
        .into_iter()
        .map(|(pos, store)| (pos, if store { WRITE } else { READ }))
        .collect()
}

/// SORT's keys as Redis's `sortGetKeys` finds them, as (position, is the
/// `STORE` destination): the sorted key, and the destination of the last
/// `STORE` followed by an argument. `LIMIT` skips two arguments, `GET` and
/// `BY` one; `STORE` skips none (its argument is looked at as an option
/// too, as in Redis).
fn sort_keys(args: &[&[u8]]) -> Vec<(usize, bool)> {
    let mut keys = vec![(1, false)];
    let mut store = None;
    let mut j = 2;
    while j < args.len() {
        let a = args.get(j).copied().unwrap_or_default();
        if is(a, "limit") {
            j += 2;
        } else if is(a, "get") || is(a, "by") {
            j += 1;
        } else if is(a, "store") && j + 1 < args.len() {
            store = Some(j + 1);
        }
        j += 1;
    }
    keys.extend(store.map(|s| (s, true)));
    keys
}

fn getkeys(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    getkeys_impl(ctx, args, false)
}

fn getkeysandflags(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    getkeys_impl(ctx, args, true)
}

fn getkeys_impl(ctx: &mut Ctx<'_>, args: &[&[u8]], with_flags: bool) -> CmdResult {
    let argv = args.get(2..).unwrap_or_default();
    let Some(base) = argv.first().and_then(|n| ctx.srv.commands.get(n)) else {
        return Err(CmdError::err("Invalid command specified"));
    };
    let cmd: &Arc<CommandDef> = if base.is_container() && argv.len() >= 2 {
        match lookup(&base.subcommands, argv.get(1).copied().unwrap_or_default()) {
            Some(s) => s,
            None => return Err(CmdError::err("Invalid command specified")),
        }
    } else {
        base
    };
    let p = proto_index(ctx);
    let specs = key_specs(&raw_entry(ctx.srv, cmd, p, false), p == 1);
    if specs.iter().all(|s| s.not_key) {
        return Err(CmdError::err("The command has no key arguments"));
    }
    let argc = argv.len() as i64;
    let arity = cmd.arity as i64;
    if (arity > 0 && arity != argc) || argc < -arity {
        return Err(CmdError::err(
            "Invalid number of arguments specified for command",
        ));
    }
    // No key found is an error, unless the command may name none
    // (`no_mandatory_keys`: `EVAL s 0`), as Redis's `getKeysSubcommandImpl`.
    let keys = keys_by_specs(&specs, argv, arity)
        .or_else(|| native_keys(&cmd.name, argv))
        .filter(|k| !k.is_empty());
    let Some(keys) = keys else {
        if cmd.flags.has(Flags::NO_MANDATORY_KEYS) {
            ctx.out.array(0);
            return Ok(());
        }
        return Err(CmdError::err("Invalid arguments specified for command"));
    };
    let is_sort = matches!(cmd.name.as_str(), "sort" | "sort_ro");
    ctx.out.array(keys.len());
    for (pos, spec) in keys {
        let key = argv.get(pos).copied().unwrap_or_default();
        if with_flags {
            ctx.out.array(2);
            ctx.out.bulk(key);
            let raw = match specs.get(spec) {
                // SORT's flags come from its getkeys procedure, not its specs.
                _ if is_sort => {
                    let flags: &[&str] = if spec == 0 {
                        &["RO", "access"]
                    } else {
                        &["OW", "update"]
                    };
                    encode_flags(flags, p == 1)
                }
                Some(s) if s.variable_flags => variable_key_flags(&cmd.name, argv, p == 1)
                    .unwrap_or_else(|| s.raw_flags.clone()),
                Some(s) => s.raw_flags.clone(),
                None => Vec::new(),
            };
            ctx.out.raw(&raw);
        } else {
            ctx.out.bulk(key);
        }
    }
    Ok(())
}

/// A RESP value parsed from the raw metadata, with the bytes it spans.
#[derive(Debug)]
enum Resp {
    Str(Vec<u8>),
    Int(i64),
    Agg(Vec<Resp>),
    Nil,
}

/// Parses one RESP2/RESP3 value at `*pos`; None on malformed input.
fn parse(b: &[u8], pos: &mut usize) -> Option<Resp> {
    let start = *pos;
    let rest = b.get(start..)?;
    let nl = rest.windows(2).position(|w| w == b"\r\n")?;
    let line = rest.get(1..nl)?;
    let tag = *rest.first()?;
    *pos = start + nl + 2;
    let n = || std::str::from_utf8(line).ok()?.parse::<i64>().ok();
    match tag {
        b'+' | b'-' => Some(Resp::Str(line.to_vec())),
        b':' => Some(Resp::Int(n()?)),
        b'$' | b'=' => {
            let len = n()?;
            if len < 0 {
                return Some(Resp::Nil);
            }
            let len = len as usize;
            let data = b.get(*pos..*pos + len)?.to_vec();
            *pos += len + 2;
            Some(Resp::Str(data))
        }
        b'*' | b'~' | b'>' | b'%' => {
            let len = n()?;
            if len < 0 {
                return Some(Resp::Nil);
            }
            let count = if tag == b'%' { 2 * len } else { len };
            let mut items = Vec::with_capacity(count.clamp(0, 64) as usize);
            for _ in 0..count {
                items.push(parse(b, pos)?);
            }
            Some(Resp::Agg(items))
        }
        b'_' => Some(Resp::Nil),
        _ => None,
    }
}

impl Resp {
    fn items(&self) -> &[Resp] {
        match self {
            Resp::Agg(v) => v,
            _ => &[],
        }
    }

    fn text(&self) -> &[u8] {
        match self {
            Resp::Str(s) => s,
            _ => &[],
        }
    }

    fn int(&self) -> i64 {
        match self {
            Resp::Int(i) => *i,
            _ => 0,
        }
    }

    /// Looks up `key` in a map (flat key/value list).
    fn get(&self, key: &str) -> Option<&Resp> {
        self.items()
            .chunks(2)
            .find(|kv| kv.first().is_some_and(|k| k.text() == key.as_bytes()))
            .and_then(|kv| kv.get(1))
    }
}

/// The ACL categories (without `@`) of a raw `COMMAND INFO` entry.
fn categories(raw: &[u8]) -> Vec<String> {
    let mut pos = 0;
    let Some(v) = parse(raw, &mut pos) else {
        return Vec::new();
    };
    v.items()
        .get(6)
        .map(|c| {
            c.items()
                .iter()
                .map(|x| {
                    String::from_utf8_lossy(x.text())
                        .trim_start_matches('@')
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Where to start looking for keys.
#[derive(Debug)]
enum BeginSearch {
    Index(i64),
    Keyword { keyword: Vec<u8>, startfrom: i64 },
    Unknown,
}

/// How to find the keys from there.
#[derive(Debug)]
enum FindKeys {
    Range {
        lastkey: i64,
        keystep: i64,
        limit: i64,
    },
    Keynum {
        keynumidx: i64,
        firstkey: i64,
        keystep: i64,
    },
    Unknown,
}

/// One key spec of a command.
#[derive(Debug)]
struct KeySpec {
    begin: BeginSearch,
    find: FindKeys,
    not_key: bool,
    incomplete: bool,
    /// The flags depend on the arguments (Redis asks the command's own getkeys).
    variable_flags: bool,
    /// The raw flags set, in the client's protocol.
    raw_flags: Vec<u8>,
}

/// The key specs of a raw `COMMAND INFO` entry (element 9).
fn key_specs(raw: &[u8], resp3: bool) -> Vec<KeySpec> {
    let mut pos = 0;
    let Some(v) = parse(raw, &mut pos) else {
        return Vec::new();
    };
    // Find the raw bytes of each spec's flags by re-walking the entry.
    let mut specs = Vec::new();
    let Some(list) = v.items().get(8) else {
        return specs;
    };
    for spec in list.items() {
        let flags: Vec<&[u8]> = spec
            .get("flags")
            .map(|f| f.items().iter().map(Resp::text).collect())
            .unwrap_or_default();
        let has = |name: &str| flags.contains(&name.as_bytes());
        let bs = spec.get("begin_search");
        let bs_spec = bs.and_then(|b| b.get("spec"));
        let begin = match bs.and_then(|b| b.get("type")).map(Resp::text) {
            Some(b"index") => {
                BeginSearch::Index(bs_spec.and_then(|s| s.get("index")).map_or(0, Resp::int))
            }
            Some(b"keyword") => BeginSearch::Keyword {
                keyword: bs_spec
                    .and_then(|s| s.get("keyword"))
                    .map(|k| k.text().to_vec())
                    .unwrap_or_default(),
                startfrom: bs_spec
                    .and_then(|s| s.get("startfrom"))
                    .map_or(0, Resp::int),
            },
            _ => BeginSearch::Unknown,
        };
        let fk = spec.get("find_keys");
        let fk_spec = fk.and_then(|f| f.get("spec"));
        let field = |name: &str| fk_spec.and_then(|s| s.get(name)).map_or(0, Resp::int);
        let find = match fk.and_then(|f| f.get("type")).map(Resp::text) {
            Some(b"range") => FindKeys::Range {
                lastkey: field("lastkey"),
                keystep: field("keystep"),
                limit: field("limit"),
            },
            Some(b"keynum") => FindKeys::Keynum {
                keynumidx: field("keynumidx"),
                firstkey: field("firstkey"),
                keystep: field("keystep"),
            },
            _ => FindKeys::Unknown,
        };
        specs.push(KeySpec {
            begin,
            find,
            not_key: has("not_key"),
            incomplete: has("incomplete"),
            variable_flags: has("variable_flags"),
            raw_flags: Vec::new(),
        });
    }
    // Raw flag bytes: re-encode the flag names in the entry's own set type.
    let set_tag = if resp3 { b'~' } else { b'*' };
    for (spec, parsed) in specs.iter_mut().zip(list.items()) {
        let names: Vec<&[u8]> = parsed
            .get("flags")
            .map(|f| f.items().iter().map(Resp::text).collect())
            .unwrap_or_default();
        let mut out = Vec::new();
        out.push(set_tag);
        out.extend_from_slice(names.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        for n in names {
            out.push(b'+');
            out.extend_from_slice(n);
            out.extend_from_slice(b"\r\n");
        }
        spec.raw_flags = out;
    }
    specs
}

/// The key flags of commands whose flags depend on their arguments, as
/// Redis's `setGetKeys` and `bitfieldGetKeys` give them.
fn variable_key_flags(name: &str, argv: &[&[u8]], resp3: bool) -> Option<Vec<u8>> {
    let flags: &[&str] = match name {
        "set" => {
            if argv.iter().skip(3).any(|a| is(a, "get")) {
                &["RW", "access", "update"]
            } else {
                &["OW", "update"]
            }
        }
        "bitfield" => {
            let writes = argv.iter().skip(2).any(|a| is(a, "set") || is(a, "incrby"));
            if writes {
                &["RW", "access", "update"]
            } else {
                &["RO", "access"]
            }
        }
        _ => return None,
    };
    Some(encode_flags(flags, resp3))
}

/// Key flags as a RESP set (RESP2: an array) of simple strings.
fn encode_flags(flags: &[&str], resp3: bool) -> Vec<u8> {
    let mut out = Vec::new();
    out.push(if resp3 { b'~' } else { b'*' });
    out.extend_from_slice(flags.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for f in flags {
        out.push(b'+');
        out.extend_from_slice(f.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Redis's `getkeys_proc` of a command whose key specs cannot find its
/// keys (an `incomplete` spec), as (argument position, spec index whose
/// flags the keys have).
fn native_keys(name: &str, argv: &[&[u8]]) -> Option<Vec<(usize, usize)>> {
    match name {
        "migrate" => Some(
            super::migrate::key_positions(argv)
                .map(|pos| (pos, 0))
                .collect(),
        ),
        // `sortROGetKeys`: only the sorted key.
        "sort_ro" => Some(vec![(1, 0)]),
        "sort" => Some(
            sort_keys(argv)
                .into_iter()
                .map(|(pos, store)| (pos, usize::from(store)))
                .collect(),
        ),
        _ => None,
    }
}

/// Redis's `getKeysUsingKeySpecs`: (argument position, spec index) of every
/// key, or None when the arguments do not fit the specs.
fn keys_by_specs(specs: &[KeySpec], argv: &[&[u8]], arity: i64) -> Option<Vec<(usize, usize)>> {
    keys_by_specs_with(specs, argv, arity, false)
}

/// [`keys_by_specs`]; `zero_ok`: a key count of 0 (`EVAL s 0`) names no
/// key instead of failing.
fn keys_by_specs_with(
    specs: &[KeySpec],
    argv: &[&[u8]],
    arity: i64,
    zero_ok: bool,
) -> Option<Vec<(usize, usize)>> {
    let argc = argv.len() as i64;
    let mut keys = Vec::new();
    for (j, spec) in specs.iter().enumerate() {
        if spec.not_key {
            continue;
        }
        let mut first = match &spec.begin {
            BeginSearch::Index(p) => *p,
            BeginSearch::Keyword { keyword, startfrom } => {
                let start = if *startfrom > 0 {
                    *startfrom
                } else {
                    argc + startfrom
                };
                let end = if *startfrom > 0 { argc - 1 } else { 1 };
                let mut found = 0;
                let mut i = start;
                loop {
                    if i == end || i >= argc || i < 1 {
                        break;
                    }
                    if argv
                        .get(i as usize)
                        .is_some_and(|a| a.eq_ignore_ascii_case(keyword))
                    {
                        found = i + 1;
                        break;
                    }
                    i = if start <= end { i + 1 } else { i - 1 };
                }
                if found == 0 {
                    continue;
                }
                found
            }
            BeginSearch::Unknown => return None,
        };
        let (last, step) = match spec.find {
            FindKeys::Range {
                lastkey,
                keystep,
                limit,
            } => {
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    first + ((argc - first) / limit + lastkey)
                };
                (last, keystep)
            }
            FindKeys::Keynum {
                keynumidx,
                firstkey,
                keystep,
            } => {
                if keynumidx >= argc {
                    return None;
                }
                let n = argv
                    .get((first + keynumidx) as usize)
                    .and_then(|a| parse_i64(a))
                    .filter(|n| *n >= 0);
                // A bad count fails the command itself: no keys for ACL.
                let n = n.or(if zero_ok { Some(0) } else { None })?;
                first += firstkey;
                if n == 0 && zero_ok {
                    continue;
                }
                (first + n - 1, keystep)
            }
            FindKeys::Unknown => return None,
        };
        if last >= argc || last < first || first >= argc || step <= 0 {
            return None;
        }
        let mut i = first;
        while i <= last {
            if i >= argc || i < first {
                if arity < 0 {
                    i += step;
                    continue;
                }
                return None;
            }
            keys.push((i as usize, j));
            i += step;
        }
        if spec.incomplete {
            return None;
        }
    }
    Some(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_from_raw_info() {
        let raw = b"*10\r\n$3\r\nget\r\n:2\r\n~2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n~3\r\n+@read\r\n+@string\r\n+@fast\r\n~0\r\n~1\r\n%3\r\n$5\r\nflags\r\n~2\r\n+RO\r\n+access\r\n$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n%1\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n%2\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n%3\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n~0\r\n";
        let specs = key_specs(raw, true);
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].raw_flags, b"~2\r\n+RO\r\n+access\r\n");
        let argv: Vec<&[u8]> = vec![b"get", b"k"];
        assert_eq!(keys_by_specs(&specs, &argv, 2), Some(vec![(1, 0)]));
        assert_eq!(categories(raw), vec!["read", "string", "fast"]);
    }

    #[test]
    fn malformed_raw_is_harmless() {
        assert!(key_specs(b"*3\r\n:1", false).is_empty());
        assert!(categories(b"").is_empty());
    }
}
