//! Transactions: `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH`, with Redis
//! 7.0's semantics (`multi.c`).
//!
//! Between `MULTI` and `EXEC` the dispatcher ([`super::execute`]) queues
//! every command but `EXEC`, `DISCARD`, `MULTI`, `WATCH`, `QUIT` and `RESET`
//! ([`queue_or_run`]) and answers `+QUEUED`; a command refused at queue time
//! (unknown, wrong arity, not allowed in a transaction, ...) marks the
//! transaction failed ([`reject`]) and `EXEC` then answers `-EXECABORT`.
//!
//! `EXEC` holds the keyspace gate exclusively (it is in the table's
//! exclusive set), so no other client's command runs between its queued
//! commands, whatever shards they touch. The queued commands run through
//! [`super::call`], which does not take the gate again.
//!
//! `WATCH` is [`crate::watch`].

use smallvec::SmallVec;

use super::{CmdError, CmdResult, Ctx, Handler};

/// Commands of this family.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("multi", multi),
    ("exec", exec),
    ("discard", discard),
    ("watch", watch),
    ("unwatch", unwatch),
];

/// Redis's reply to `EXEC` after a queue-time error.
const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";

/// The transaction a client is building (between `MULTI` and `EXEC`).
#[derive(Debug, Default)]
pub struct MultiState {
    /// Queued commands, arguments owned (the read buffer moves on).
    queued: Vec<Vec<Vec<u8>>>,
    /// A command was refused while queueing (`CLIENT_DIRTY_EXEC`).
    failed: bool,
}

impl MultiState {
    /// The queued commands, each as its arguments.
    pub fn queued(&self) -> impl Iterator<Item = &Vec<Vec<u8>>> {
        self.queued.iter()
    }
}

/// Commands that run at once even inside `MULTI`.
fn runs_in_multi(name: &str) -> bool {
    matches!(
        name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

/// In a transaction, queues a command that is not one of those run at once
/// and answers `+QUEUED`; returns true if it did.
pub fn queue_or_run(ctx: &mut Ctx<'_>, name: &str, args: &[&[u8]]) -> bool {
    let Some(m) = ctx.client.multi.as_mut() else {
        return false;
    };
    if runs_in_multi(name) {
        return false;
    }
    // Nothing is kept once the transaction is doomed (Redis does the same).
    if !m.failed && !ctx.client.watch.is_dirty() {
        m.queued.push(args.iter().map(|a| a.to_vec()).collect());
    }
    let n = m.queued.len();
    ctx.client.handle.info.lock().multi = Some(n);
    ctx.out.simple("QUEUED");
    true
}

/// Redis's `rejectCommand`: a command refused before it ran. Inside a
/// transaction the transaction fails; a refused `EXEC` itself aborts it
/// (`execCommandAbort`), even outside a transaction, as in Redis.
pub fn reject(ctx: &mut Ctx<'_>, is_exec: bool, e: &CmdError) {
    if let Some(m) = ctx.client.multi.as_mut() {
        m.failed = true;
    }
    if is_exec {
        discard_transaction(ctx);
        let text = e.text();
        let reason = text.strip_prefix("ERR ").unwrap_or(&text);
        let abort = CmdError::msg(format!(
            "EXECABORT Transaction discarded because of: {reason}"
        ));
        super::reply_error(ctx, &abort);
    } else {
        super::reply_error(ctx, e);
    }
}

/// Redis's `discardTransaction`: forgets the queue, the failure and dirty
/// flags and every watched key.
pub fn discard_transaction(ctx: &mut Ctx<'_>) {
    ctx.client.multi = None;
    ctx.client.handle.info.lock().multi = None;
    ctx.client.watch.clear_dirty();
    ctx.srv
        .watches
        .unwatch_all(&ctx.srv.keyspace, &mut ctx.client.watch);
}

fn multi(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::err("MULTI calls can not be nested"));
    }
    ctx.client.multi = Some(MultiState::default());
    ctx.client.handle.info.lock().multi = Some(0);
    ctx.out.ok();
    Ok(())
}

fn discard(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    if ctx.client.multi.is_none() {
        return Err(CmdError::err("DISCARD without MULTI"));
    }
    discard_transaction(ctx);
    ctx.out.ok();
    Ok(())
}

fn exec(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let Some(m) = ctx.client.multi.take() else {
        return Err(CmdError::err("EXEC without MULTI"));
    };
    let srv = ctx.srv;
    // A watched key that was alive at WATCH and has expired since aborts.
    let dirty = ctx.client.watch.is_dirty() || ctx.client.watch.any_expired(&srv.keyspace);
    if m.failed || dirty {
        discard_transaction(ctx);
        if m.failed {
            return Err(CmdError::msg(EXECABORT));
        }
        ctx.out.null_array();
        return Ok(());
    }
    // Unwatch before running: the transaction's own writes must not matter.
    srv.watches
        .unwatch_all(&srv.keyspace, &mut ctx.client.watch);
    // The client stays in MULTI (flag `x`, `multi=N` in CLIENT LIST) while
    // its queue runs, as in Redis; `discard_transaction` ends it.
    ctx.out.array(m.queued.len());
    // Blocking commands queued in the transaction must not block, and
    // clients blocked on keys it pushes to are served only after it
    // (server/src/blocking.rs, "Transactions (EXEC)").
    ctx.client.block.begin_deferral();
    ctx.client.in_exec = true;
    for queued in &m.queued {
        let args: SmallVec<[&[u8]; 8]> = queued.iter().map(|a| a.as_slice()).collect();
        match super::resolve(&srv.commands, &args) {
            super::Resolved::Found(def) => {
                // Users may have changed since the command was queued.
                if ctx.client.acl_unrestricted_at != srv.acl.epoch() {
                    let denied = super::acl_check(ctx, def, &args);
                    if denied != crate::acl::Denied::None {
                        super::log_denied(ctx, denied, def, &args, "multi");
                    }
                    let reason = match denied {
                        crate::acl::Denied::None => None,
                        crate::acl::Denied::Command => {
                            Some("no permission to execute the command or subcommand")
                        }
                        crate::acl::Denied::Key(_) => {
                            Some("no permission to touch the specified keys")
                        }
                        crate::acl::Denied::Channel(_) => {
                            Some("no permission to access one of the channels used as arguments")
                        }
                    };
                    if let Some(reason) = reason {
                        let e = CmdError::msg(format!(
                            "NOPERM ACLs rules changed between the moment the transaction was \
                             accumulated and the EXEC call. This command is no longer allowed for \
                             the following reason: {reason}"
                        ));
                        super::reply_error(ctx, &e);
                        continue;
                    }
                }
                super::call(ctx, def, &args)
            }
            super::Resolved::Rejected(e) => super::reply_error(ctx, &e),
        }
    }
    ctx.client.in_exec = false;
    crate::blocking::end_deferral(ctx);
    discard_transaction(ctx);
    Ok(())
}

fn watch(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::err("WATCH inside MULTI is not allowed"));
    }
    // No point in watching once a watched key changed.
    if !ctx.client.watch.is_dirty() {
        let (srv, db) = (ctx.srv, ctx.client.db);
        for key in args.iter().skip(1) {
            srv.watches
                .watch(&srv.keyspace, &mut ctx.client.watch, db, key);
        }
    }
    ctx.out.ok();
    Ok(())
}

fn unwatch(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let srv = ctx.srv;
    srv.watches
        .unwatch_all(&srv.keyspace, &mut ctx.client.watch);
    ctx.client.watch.clear_dirty();
    ctx.out.ok();
    Ok(())
}

/// Forgets a closed connection's transaction, watched keys and
/// subscriptions.
pub fn forget_client(srv: &crate::state::ServerState, client: &mut crate::client::Client) {
    client.multi = None;
    srv.watches.unwatch_all(&srv.keyspace, &mut client.watch);
    srv.pubsub.unsubscribe_all(&mut client.subs);
}

/// `RESET`'s share of this family and pub/sub (`clearClientConnectionState`):
/// discards the transaction, unwatches, and drops every subscription.
pub fn reset_client(ctx: &mut Ctx<'_>) {
    discard_transaction(ctx);
    ctx.srv.pubsub.unsubscribe_all(&mut ctx.client.subs);
    crate::cmd::pubsub::publish_counts(ctx);
}
