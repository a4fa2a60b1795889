//! CONFIG GET / SET / RESETSTAT / REWRITE / HELP, as Redis 7.0's `config.c`.

use std::sync::atomic::Ordering;

use super::admin::reply_help;
use super::args::text;
use super::error::{CmdError, CmdResult};
use super::{Ctx, Handler};
use crate::config::{self, Directive, DirectiveFlags, Source, DIRECTIVES};

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("config|get", config_get),
    ("config|set", config_set),
    ("config|resetstat", config_resetstat),
    ("config|rewrite", config_rewrite),
    ("config|help", config_help),
];

/// One name under which a directive is known (its name or its alias).
#[derive(Clone, Copy)]
struct Entry {
    directive: &'static Directive,
    /// The name of this entry (the alias for alias entries).
    name: &'static str,
}

impl Entry {
    fn same(&self, other: &Entry) -> bool {
        std::ptr::eq(self.directive, other.directive) && self.name == other.name
    }
}

/// Every name the configuration answers to, as Redis registers them
/// (aliases are entries of their own).
fn entries() -> impl Iterator<Item = Entry> {
    DIRECTIVES.iter().flat_map(|&d| {
        std::iter::once(Entry {
            directive: d,
            name: d.name,
        })
        .chain(d.alias.map(|a| Entry {
            directive: d,
            name: a,
        }))
    })
}

fn find_entry(name: &str) -> Option<Entry> {
    entries().find(|e| e.name.eq_ignore_ascii_case(name))
}

fn config_get(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let mut matches: Vec<(String, Entry)> = Vec::new();
    let has =
        |m: &[(String, Entry)], name: &str| m.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    for &pat in args.iter().skip(2) {
        let name = text(pat);
        if !pat.iter().any(|c| matches!(c, b'[' | b'*' | b'?')) {
            if has(&matches, &name) {
                continue;
            }
            if let Some(e) = find_entry(&name) {
                matches.push((name, e));
            }
            continue;
        }
        for e in entries() {
            if e.directive.flags.has(DirectiveFlags::HIDDEN) || has(&matches, e.name) {
                continue;
            }
            if amber_storage::glob::matches(pat, e.name.as_bytes(), true) {
                matches.push((e.name.to_string(), e));
            }
        }
    }
    ctx.out.map(matches.len());
    for (key, e) in matches {
        ctx.out.bulk(key.as_bytes());
        ctx.out
            .bulk(ctx.srv.config.value_of(e.directive).as_bytes());
    }
    Ok(())
}

/// Whether `enable-protected-configs` lets this client change protected directives.
fn protected_allowed(ctx: &Ctx<'_>) -> bool {
    match ctx.srv.config.get("enable-protected-configs").as_deref() {
        Some("yes") => true,
        Some("local") => ctx.client.handle.addr.ip().is_loopback(),
        _ => false,
    }
}

fn config_set(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    if args.len() % 2 == 1 {
        return Err(CmdError::Syntax);
    }
    let pairs: Vec<(&[u8], &[u8])> = args
        .get(2..)
        .unwrap_or_default()
        .chunks(2)
        .filter_map(|c| Some((*c.first()?, *c.get(1)?)))
        .collect();
    // Find every directive first; the first problem decides the error.
    let mut chosen: Vec<Entry> = Vec::new();
    let mut failure: Option<CmdError> = None;
    for (name, _) in &pairs {
        let name = text(name);
        let Some(e) = find_entry(&name) else {
            failure.get_or_insert_with(|| {
                CmdError::err(format!(
                    "Unknown option or number of arguments for CONFIG SET - '{name}'"
                ))
            });
            continue;
        };
        if failure.is_some() {
            continue;
        }
        let d = e.directive;
        let why = if !d.mutable() {
            Some("can't set immutable config")
        } else if d.flags.has(DirectiveFlags::PROTECTED) && !protected_allowed(ctx) {
            Some("can't set protected config")
        } else if chosen.iter().any(|c| c.same(&e)) {
            Some("duplicate parameter")
        } else {
            None
        };
        if let Some(why) = why {
            failure = Some(set_failed(&name, why));
            continue;
        }
        chosen.push(e);
    }
    if let Some(e) = failure {
        return Err(e);
    }
    // Validate every value (all or nothing), then store them in order.
    let config = &ctx.srv.config;
    let mut staged: Vec<(&'static Directive, String)> = Vec::new();
    for (e, (_, value)) in chosen.iter().zip(&pairs) {
        let d = e.directive;
        let value = text(value);
        let args: Vec<&str> = if d.multi_arg() {
            config::split_value(&value)
        } else {
            vec![value.as_str()]
        };
        // Later pairs see earlier ones (client-output-buffer-limit is set in parts).
        let current = staged
            .iter()
            .rev()
            .find(|(sd, _)| std::ptr::eq(*sd, d))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| config.value_of(d));
        let canonical = match crate::config::value::canonical(d, &args, &current, Source::Runtime) {
            Ok(c) => c,
            Err(why) => return Err(set_failed(e.name, &why)),
        };
        if let Some(why) = cannot_apply(ctx, d, &canonical) {
            return Err(set_failed(e.name, why));
        }
        staged.push((d, canonical));
    }
    let requirepass = staged.iter().any(|(d, _)| d.name == "requirepass");
    let pubsub_default = staged.iter().any(|(d, _)| d.name == "acl-pubsub-default");
    let memory_limit = staged.iter().any(|(d, _)| {
        matches!(
            d.name,
            "maxmemory" | "maxmemory-policy" | "replica-ignore-maxmemory"
        )
    });
    for (d, v) in staged {
        config.store(d, v);
    }
    if requirepass {
        ctx.srv.acl.sync_requirepass(ctx.srv);
    }
    if pubsub_default {
        ctx.srv.acl.catalog(ctx.srv).sync_pubsub_default(ctx.srv);
    }
    if memory_limit
        && crate::maxmemory::refresh(ctx.srv)
        && crate::maxmemory::eviction_limit(ctx.srv) > 0
    {
        // Redis's warning; keys go (or writes are refused) from now on,
        // not from the background task's next pass.
        tracing::warn!(
            maxmemory = ctx.srv.config.get_u64("maxmemory"),
            "the new maxmemory is below the memory in use: keys will be evicted or writes refused, depending on maxmemory-policy"
        );
    }
    crate::notify::config_changed(ctx.srv);
    crate::slowlog::config_changed(ctx.srv);
    ctx.out.ok();
    Ok(())
}

/// Changes Redis would apply at once that Amber cannot make at run time:
/// refused with Redis's own error text for a failed apply.
fn cannot_apply(ctx: &Ctx<'_>, d: &Directive, new: &str) -> Option<&'static str> {
    let cfg = &ctx.srv.config;
    match d.name {
        "port" if new != cfg.value_of(d) => {
            let bound = ctx.srv.port.load(Ordering::Relaxed).to_string();
            (new != bound).then(|| {
                tracing::warn!("CONFIG SET port: Amber cannot move its listener at run time");
                "Unable to listen on this port. Check server logs."
            })
        }
        "bind" if new != cfg.value_of(d) => {
            tracing::warn!("CONFIG SET bind: Amber cannot rebind its listeners at run time");
            Some("Failed to bind to specified addresses.")
        }
        _ => None,
    }
}

fn set_failed(name: &str, why: &str) -> CmdError {
    CmdError::err(format!(
        "CONFIG SET failed (possibly related to argument '{name}') - {why}"
    ))
}

fn config_resetstat(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    ctx.srv.reset_stats();
    ctx.out.ok();
    Ok(())
}

fn config_rewrite(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let Some(path) = ctx.srv.config.file.clone() else {
        return Err(CmdError::err("The server is running without a config file"));
    };
    // Users are written here unless they live in an `aclfile`.
    let users = if ctx.srv.config.get("aclfile").unwrap_or_default().is_empty() {
        ctx.srv.acl.config_lines(ctx.srv)
    } else {
        Vec::new()
    };
    match crate::config::rewrite::rewrite_file(&ctx.srv.config, &path, &users) {
        Ok(()) => {
            tracing::warn!("CONFIG REWRITE executed with success.");
            ctx.out.ok();
            Ok(())
        }
        Err(e) => {
            let why = crate::config::value::strerror(&e);
            tracing::warn!("CONFIG REWRITE failed: {why}");
            Err(CmdError::err(format!("Rewriting config file: {why}")))
        }
    }
}

fn config_help(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    reply_help(
        ctx,
        args,
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    );
    Ok(())
}
