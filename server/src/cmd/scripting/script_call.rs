//! Commands called from a script (`redis.call`, `scriptCall` in Redis's
//! `script.c`): Redis's checks and texts, then Amber's normal command path
//! ([`crate::cmd::call`]) with the reply captured in a buffer of its own.
//!
//! The script already holds the keyspace's exclusive gate (the scripting
//! commands are in the table's exclusive set), so no other client's
//! command runs between a script's commands, as in `EXEC`.

use crate::cmd::{table, CommandDef, Ctx, Flags};
use crate::resp::{Protocol, ReplyWriter};

/// The state of one running script.
pub struct RunState<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    /// `redis.setresp(3)` was called: replies are read as RESP3.
    pub resp3: bool,
    read_only: bool,
    /// Memory was full when the script started and it does not declare
    /// `allow-oom`: its first command that may use memory is refused,
    /// unless it wrote before (Redis's `scriptVerifyOOM`).
    deny_oom: bool,
    /// The script called a write command.
    dirty: bool,
}

impl<'c, 'a> RunState<'c, 'a> {
    /// Starts a script for the client of `ctx`: like a transaction's
    /// commands, the script's commands never block, and clients blocked on
    /// keys it pushes to are served after it.
    ///
    /// Memory is full for the script when it was when its command started
    /// ([`crate::client::Client::script_oom`]), unless it `allow_oom`.
    pub fn new(ctx: &'c mut Ctx<'a>, read_only: bool, allow_oom: bool) -> Self {
        ctx.client.block.begin_deferral();
        ctx.client.in_exec = true;
        ctx.client.in_script = true;
        let deny_oom = ctx.client.script_oom && !allow_oom;
        RunState {
            ctx,
            resp3: false,
            read_only,
            deny_oom,
            dirty: false,
        }
    }

    /// Ends the script: the caller's database is the one it had before
    /// (`SELECT` in a script does not change it), blocked clients are served.
    pub fn finish(&mut self, caller_db: usize) {
        self.ctx.client.in_exec = false;
        self.ctx.client.in_script = false;
        self.ctx.client.script_keys = None;
        if self.ctx.client.db != caller_db {
            self.ctx.client.select(caller_db);
        }
        crate::blocking::end_deferral(self.ctx);
    }

    /// The server.
    pub fn srv(&self) -> &'a crate::state::ServerState {
        self.ctx.srv
    }

    /// The caller's context, to write the script's reply.
    pub fn into_ctx(self) -> &'c mut Ctx<'a> {
        self.ctx
    }
}

/// The command `argv` names (a subcommand of a container when there is
/// one), or `None` (`lookupCommand`).
pub fn lookup<'s>(srv: &'s crate::state::ServerState, argv: &[Vec<u8>]) -> Option<&'s CommandDef> {
    let def = srv.commands.get(argv.first()?)?;
    if def.is_container() && argv.len() >= 2 {
        return table::lookup(&def.subcommands, argv.get(1)?).map(|s| s.as_ref());
    }
    Some(def.as_ref())
}

/// `redis.acl_check_cmd`: whether the user running the script may run
/// `argv` (Redis's `ACLCheckAllUserCommandPerm`, nothing logged), or
/// `None` when it names no command.
pub fn acl_permits(state: &mut RunState<'_, '_>, argv: &[Vec<u8>]) -> Option<bool> {
    let def = lookup(state.ctx.srv, argv)?;
    let refs = argv_refs(argv);
    Some(crate::cmd::acl_check(state.ctx, def, &refs) == crate::acl::Denied::None)
}

fn argv_refs(argv: &[Vec<u8>]) -> Vec<&[u8]> {
    argv.iter().map(|a| a.as_slice()).collect()
}

/// Runs one command for the script and returns its reply as RESP bytes,
/// or the text of a refusal (`luaPushError` adds `ERR`). A refusal counts
/// as an error reply and as a rejected call of the command, as Redis's
/// `scriptCall` (the script's own error reply then does not count again).
pub fn call(state: &mut RunState<'_, '_>, argv: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    let srv = state.ctx.srv;
    // A refusal counts as the error reply Redis's `afterErrorReply` makes.
    let refused = |text: String| {
        srv.stats
            .record_error(text.strip_prefix('-').unwrap_or("ERR"));
        text
    };
    let Some(def) = lookup(srv, argv) else {
        return Err(refused("Unknown Redis command called from script".into()));
    };
    if let Err(text) = refusal(state, def, argv) {
        def.stats.reject();
        return Err(refused(text));
    }
    if def.flags.has(Flags::WRITE) {
        state.dirty = true;
        srv.scripting.busy.note_write();
    }
    let args: Vec<&[u8]> = argv.iter().map(|a| a.as_slice()).collect();
    if def.flags.has(Flags::WRITE) {
        super::ldb::before_write(state.ctx, def, &args)?;
    }
    let mut out = ReplyWriter::new();
    out.proto = if state.resp3 {
        Protocol::Resp3
    } else {
        Protocol::Resp2
    };
    let mut sub = Ctx {
        srv,
        client: &mut *state.ctx.client,
        out: &mut out,
    };
    crate::cmd::call(&mut sub, def, &args);
    Ok(out.as_bytes().to_vec())
}

/// Redis's checks before a script's command runs, in its order
/// (`scriptCall`): the refusal's text, if any.
fn refusal(state: &mut RunState<'_, '_>, def: &CommandDef, argv: &[Vec<u8>]) -> Result<(), String> {
    let srv = state.ctx.srv;
    if !def.arity_ok(argv.len()) {
        return Err("Wrong number of args calling Redis command from script".into());
    }
    if def.flags.has(Flags::NO_SCRIPT) {
        return Err("This Redis command is not allowed from script".into());
    }
    // A script allowed to run stale calls only `stale` commands.
    if !def.flags.has(Flags::STALE) && srv.replication.refuses_stale(srv, state.ctx.client) {
        return Err("Can not execute the command on a stale replica".into());
    }
    // The calling user's permissions, as Redis's `scriptVerifyACL`.
    if state.ctx.client.acl_unrestricted_at != srv.acl.epoch() {
        let refs = argv_refs(argv);
        let denied = crate::cmd::acl_check(state.ctx, def, &refs);
        if denied != crate::acl::Denied::None {
            crate::cmd::log_denied(state.ctx, denied, def, &refs, "lua");
        }
        let why = match denied {
            crate::acl::Denied::None => None,
            crate::acl::Denied::Command => {
                Some("The user executing the script can't run this command or subcommand")
            }
            crate::acl::Denied::Key(_) => Some(
                "The user executing the script can't access at least one of the keys mentioned in the command arguments",
            ),
            crate::acl::Denied::Channel(_) => Some(
                "The user executing the script can't publish to the channel mentioned in the command",
            ),
        };
        if let Some(why) = why {
            return Err(why.into());
        }
    }
    // A may-replicate command (`PUBLISH`...) counts as a write here, as
    // Redis's `scriptVerifyWriteCommandAllow`.
    if state.read_only && (def.flags.has(Flags::WRITE) || def.flags.has(Flags::MAY_REPLICATE)) {
        return Err("Write commands are not allowed from read-only scripts.".into());
    }
    if def.flags.has(Flags::WRITE) && srv.replication.refuses_writes(srv, state.ctx.client) {
        return Err(format!("-{}", crate::replica::READONLY));
    }
    if def.flags.has(Flags::WRITE) && srv.master.lacks_replicas(srv) {
        return Err(format!("-{}", crate::replication::NOREPLICAS));
    }
    // `scriptVerifyOOM`: once the script wrote, it cannot stop halfway.
    if state.deny_oom && !state.dirty && def.flags.has(Flags::DENYOOM) {
        return Err(format!("-{}", crate::cmd::error::OOM));
    }
    Ok(())
}
