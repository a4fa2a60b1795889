//! `ACL`: users and their permissions (see [`crate::acl`]).

use super::admin::reply_help;
use super::args::{self, text};
use super::error::{CmdError, CmdResult};
use super::{Ctx, Handler};
use crate::acl::{Denied, User};

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("acl|cat", cat),
    ("acl|deluser", deluser),
    ("acl|dryrun", dryrun),
    ("acl|genpass", genpass),
    ("acl|getuser", getuser),
    ("acl|help", help),
    ("acl|list", list),
    ("acl|load", load),
    ("acl|save", save),
    ("acl|log", log),
    ("acl|setuser", setuser),
    ("acl|users", users),
    ("acl|whoami", whoami),
];

fn arg<'a>(args: &[&'a [u8]], i: usize) -> &'a [u8] {
    args.get(i).copied().unwrap_or_default()
}

fn whoami(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let name = ctx.client.user.clone();
    ctx.out.bulk(&name);
    Ok(())
}

fn users(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let all = ctx.srv.acl.all();
    ctx.out.array(all.len());
    for u in all {
        ctx.out.bulk(&u.name);
    }
    Ok(())
}

fn list(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let cat = ctx.srv.acl.catalog(ctx.srv);
    let all = ctx.srv.acl.all();
    ctx.out.array(all.len());
    for u in all {
        let line = format!("user {} {}", text(&u.name), u.describe(cat));
        ctx.out.bulk(line.as_bytes());
    }
    Ok(())
}

/// Merges `(`...`)` selector arguments split by the client (see
/// [`crate::acl::merge_selectors`]), with Redis's error.
fn merge_selectors(ops: &[&[u8]]) -> Result<Vec<Vec<u8>>, CmdError> {
    crate::acl::merge_selectors(ops).map_err(|at| {
        CmdError::err(format!(
            "Unmatched parenthesis in acl selector starting at '{}'.",
            text(ops.get(at).copied().unwrap_or_default())
        ))
    })
}

fn setuser(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let srv = ctx.srv;
    let name = arg(args, 2);
    if name
        .iter()
        .any(|&c| c == 0 || c.is_ascii_whitespace() || c == 0x0b)
    {
        return Err(CmdError::err(
            "Usernames can't contain spaces or null characters",
        ));
    }
    let ops = merge_selectors(args.get(3..).unwrap_or_default())?;
    let cat = srv.acl.catalog(srv);
    let old = srv.acl.get(name);
    let mut user = match &old {
        Some(u) => (**u).clone(),
        None => User::new(cat, name),
    };
    for op in &ops {
        if let Err(e) = user.apply(cat, op) {
            return Err(CmdError::err(format!(
                "Error in ACL SETUSER modifier '{}': {}",
                text(op),
                e.text()
            )));
        }
    }
    // Subscribers whose channels are no longer allowed are disconnected
    // (this one after its reply), as Redis's `ACLKillPubsubClientsIfNeeded`.
    let revoked = old
        .as_ref()
        .map(|o| crate::acl::revoked_subscribers(srv, o, &user))
        .unwrap_or_default();
    srv.acl.put(user);
    for h in revoked {
        disconnect(ctx, &h);
    }
    ctx.out.ok();
    Ok(())
}

/// Closes client `h`: the one running this command after its reply,
/// any other at once.
fn disconnect(ctx: &mut Ctx<'_>, h: &crate::client::ClientHandle) {
    if h.id == ctx.client.handle.id {
        ctx.client.close_after_reply = true;
    } else {
        h.kill();
    }
}

fn deluser(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let srv = ctx.srv;
    let names = args.get(2..).unwrap_or_default();
    if names.iter().any(|n| *n == b"default") {
        return Err(CmdError::err("The 'default' user cannot be removed"));
    }
    let mut n = 0;
    for name in names {
        if srv.acl.remove(name) {
            n += 1;
            // Its connections close (this one after its reply), as Redis's
            // `ACLFreeUserAndKillClients`.
            for h in srv.clients.all() {
                if h.user_is(name) {
                    disconnect(ctx, &h);
                }
            }
        }
    }
    ctx.out.int(n);
    Ok(())
}

fn getuser(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let srv = ctx.srv;
    let Some(u) = srv.acl.get(arg(args, 2)) else {
        ctx.out.null();
        return Ok(());
    };
    let cat = srv.acl.catalog(srv);
    let out = &mut *ctx.out;
    out.map(6);
    out.bulk(b"flags");
    let flags = u.flags();
    out.array(flags.len());
    for f in flags {
        out.bulk(f.as_bytes());
    }
    out.bulk(b"passwords");
    out.array(u.passwords.len());
    for p in &u.passwords {
        out.bulk(p.as_bytes());
    }
    out.bulk(b"commands");
    out.bulk(u.root.describe_commands(cat).as_bytes());
    out.bulk(b"keys");
    out.bulk(u.root.describe_keys().as_bytes());
    out.bulk(b"channels");
    out.bulk(u.root.describe_channels().as_bytes());
    out.bulk(b"selectors");
    out.array(u.selectors.len());
    for s in &u.selectors {
        out.map(3);
        out.bulk(b"commands");
        out.bulk(s.describe_commands(cat).as_bytes());
        out.bulk(b"keys");
        out.bulk(s.describe_keys().as_bytes());
        out.bulk(b"channels");
        out.bulk(s.describe_channels().as_bytes());
    }
    Ok(())
}

fn cat(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let srv = ctx.srv;
    match args.get(2) {
        None => {
            ctx.out.array(crate::acl::CATEGORIES.len());
            for c in crate::acl::CATEGORIES {
                ctx.out.bulk(c.as_bytes());
            }
        }
        Some(name) => {
            let Some(i) = crate::acl::CATEGORIES
                .iter()
                .position(|c| c.as_bytes().eq_ignore_ascii_case(name))
            else {
                return Err(CmdError::err(format!("Unknown category '{}'", text(name))));
            };
            let c = srv.acl.catalog(srv);
            let names: Vec<&String> = c
                .names
                .iter()
                .zip(&c.cats)
                .filter(|(_, bits)| *bits & (1 << i) != 0)
                .map(|(n, _)| n)
                .collect();
            ctx.out.array(names.len());
            for n in names {
                ctx.out.bulk(n.as_bytes());
            }
        }
    }
    Ok(())
}

fn genpass(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let bits = match args.get(2) {
        None => 256,
        Some(b) => args::parse_i64(b).ok_or(CmdError::NotInteger)?,
    };
    if !(1..=4096).contains(&bits) {
        return Err(CmdError::err(
            "ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
        ));
    }
    let chars = (bits as usize).div_ceil(4);
    let mut s = String::with_capacity(chars);
    while s.len() < chars {
        s.push_str(&format!("{:016x}", rand::random::<u64>()));
    }
    s.truncate(chars);
    ctx.out.bulk(s.as_bytes());
    Ok(())
}

fn dryrun(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let srv = ctx.srv;
    let name = arg(args, 2);
    let Some(u) = srv.acl.get(name) else {
        return Err(CmdError::err(format!("User '{}' not found", text(name))));
    };
    let argv = args.get(3..).unwrap_or_default();
    let def = match super::resolve(&srv.commands, argv) {
        super::Resolved::Found(def) => def,
        super::Resolved::Rejected(e) => {
            let known = argv.first().and_then(|n| srv.commands.get(n)).is_some();
            if known {
                return Err(e);
            }
            return Err(CmdError::err(format!(
                "Command '{}' not found",
                text(arg(argv, 0))
            )));
        }
    };
    let cat = srv.acl.catalog(srv);
    match u.check(srv, cat, def, argv) {
        Denied::None => ctx.out.ok(),
        Denied::Command => ctx.out.bulk(
            format!(
                "This user has no permissions to run the '{}' command",
                def.name
            )
            .as_bytes(),
        ),
        Denied::Key(i) => ctx.out.bulk(
            format!(
                "This user has no permissions to access the '{}' key",
                text(arg(argv, i))
            )
            .as_bytes(),
        ),
        Denied::Channel(i) => ctx.out.bulk(
            format!(
                "This user has no permissions to access the '{}' channel",
                text(arg(argv, i))
            )
            .as_bytes(),
        ),
    }
    Ok(())
}

const NO_ACLFILE: &str =
    "This Redis instance is not configured to use an ACL file. You may want to \
     specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have \
     a Redis configuration file set) in order to store users in the Redis configuration.";

fn aclfile(ctx: &Ctx<'_>) -> Result<String, CmdError> {
    let path = ctx.srv.config.get("aclfile").unwrap_or_default();
    if path.is_empty() {
        return Err(CmdError::err(NO_ACLFILE));
    }
    Ok(path.to_string())
}

fn load(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let srv = ctx.srv;
    let path = aclfile(ctx)?;
    srv.acl.load_file(srv, &path).map_err(CmdError::err)?;
    // Every user was replaced: their connections close (this one after
    // its reply), as Redis frees the old users; `default` stays.
    for h in srv.clients.all() {
        if !h.user_is(b"default") {
            disconnect(ctx, &h);
        }
    }
    ctx.out.ok();
    Ok(())
}

fn save(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let srv = ctx.srv;
    let path = aclfile(ctx)?;
    if let Err(e) = srv.acl.save_file(srv, &path) {
        tracing::warn!(error = %e, "ACL SAVE: cannot write the ACL file");
        return Err(CmdError::err(
            "There was an error trying to save the ACLs. Please check the server logs for more information",
        ));
    }
    ctx.out.ok();
    Ok(())
}

fn log(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let mut count = 10;
    if let Some(a) = args.get(2) {
        if args::is(a, "reset") {
            ctx.srv.acl.log.lock().clear();
            ctx.out.ok();
            return Ok(());
        }
        count = args::parse_i64(a).ok_or(CmdError::NotInteger)?.max(0) as usize;
    }
    let now = amber_storage::clock::now_ms();
    let entries: Vec<crate::acl::LogEntry> =
        ctx.srv.acl.log.lock().iter().take(count).cloned().collect();
    let out = &mut *ctx.out;
    out.array(entries.len());
    for e in entries {
        out.map(7);
        out.bulk(b"count");
        out.int(e.count as i64);
        out.bulk(b"reason");
        out.bulk(e.reason.as_bytes());
        out.bulk(b"context");
        out.bulk(e.context.as_bytes());
        out.bulk(b"object");
        out.bulk(&e.object);
        out.bulk(b"username");
        out.bulk(&e.username);
        out.bulk(b"age-seconds");
        out.double(now.saturating_sub(e.ctime_ms) as f64 / 1000.0);
        out.bulk(b"client-info");
        out.bulk(e.client_info.as_bytes());
    }
    Ok(())
}

fn help(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    reply_help(
        ctx,
        args,
        &[
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]",
            "    Delete a list of users.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command without executing the command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOAD",
            "    Reload users from the ACL file.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "SAVE",
            "    Save the current config to the ACL file.",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "    Create or modify a user with the specified attributes.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
        ],
    );
    Ok(())
}
