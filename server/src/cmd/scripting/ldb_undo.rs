//! Undoing a `SCRIPT DEBUG YES` session's writes. Redis debugs such a
//! script in a forked child whose dataset is thrown away; Amber cannot
//! fork, so before the script first writes a key its value is saved (a
//! `DUMP` payload and its `PEXPIRETIME`), and when the session ends every
//! saved key is put back (`DEL`, then `RESTORE ... ABSTTL` if it existed).
//!
//! Saving goes by the command's declared key positions, so commands whose
//! effect reaches beyond them (other databases, the whole keyspace,
//! movable keys) are refused in such a session rather than left undone.

use std::collections::HashSet;

use crate::cmd::{CommandDef, Ctx, Flags};
use crate::resp::ReplyWriter;

/// Amber's refusal (Redis has none: its fork undoes anything) of a
/// command it could not undo, in a `SCRIPT DEBUG YES` session.
const CANNOT_UNDO: &str =
    "This command cannot be undone after a SCRIPT DEBUG YES session; use SCRIPT DEBUG SYNC";

/// Commands that change more than their declared keys.
const UNDOABLE_ONLY_BY_FORK: &[&str] = &["flushall", "flushdb", "swapdb", "move", "copy"];

/// A key's saved value: its `DUMP` payload and `PEXPIRETIME` (-1: none).
type Saved = Option<(Vec<u8>, i64)>;

/// The saved keys of a session, in the order first written.
#[derive(Default)]
pub struct Journal {
    seen: HashSet<(usize, Vec<u8>)>,
    /// (database, key, saved value: payload and absolute expiry or -1).
    saved: Vec<(usize, Vec<u8>, Saved)>,
}

/// Runs one command for the journal, its reply in a buffer of its own.
fn run(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Vec<u8> {
    let srv = ctx.srv;
    let argv: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
    let Some(def) = super::script_call::lookup(srv, &argv) else {
        return Vec::new();
    };
    let mut out = ReplyWriter::new();
    let mut sub = Ctx {
        srv,
        client: &mut *ctx.client,
        out: &mut out,
    };
    crate::cmd::call(&mut sub, def, args);
    out.as_bytes().to_vec()
}

impl Journal {
    /// Saves the keys `args` (a call of `def`) is about to write, or
    /// refuses the call.
    pub fn before_write(
        &mut self,
        ctx: &mut Ctx<'_>,
        def: &CommandDef,
        args: &[&[u8]],
    ) -> Result<(), String> {
        let root = def.name.split('|').next().unwrap_or_default();
        if def.flags.has(Flags::MOVABLE_KEYS) || UNDOABLE_ONLY_BY_FORK.contains(&root) {
            return Err(CANNOT_UNDO.into());
        }
        let db = ctx.client.db;
        for key in def.keys(args) {
            if !self.seen.insert((db, key.to_vec())) {
                continue;
            }
            let payload = match super::convert::parse_reply(&run(ctx, &[b"DUMP", key])) {
                Some(super::convert::Reply::Bulk(p)) => Some(p),
                _ => None,
            };
            let saved = payload.map(|p| {
                let at = match super::convert::parse_reply(&run(ctx, &[b"PEXPIRETIME", key])) {
                    Some(super::convert::Reply::Int(n)) => n,
                    _ => -1,
                };
                (p, at)
            });
            self.saved.push((db, key.to_vec(), saved));
        }
        Ok(())
    }

    /// Puts every saved key back as it was.
    pub fn undo(self, ctx: &mut Ctx<'_>) {
        let caller_db = ctx.client.db;
        for (db, key, saved) in self.saved.into_iter().rev() {
            if ctx.client.db != db {
                ctx.client.select(db);
            }
            run(ctx, &[b"DEL", &key]);
            if let Some((payload, at)) = saved {
                let ttl = at.max(0).to_string();
                run(
                    ctx,
                    &[b"RESTORE", &key, ttl.as_bytes(), &payload, b"ABSTTL"],
                );
            }
        }
        if ctx.client.db != caller_db {
            ctx.client.select(caller_db);
        }
    }
}
