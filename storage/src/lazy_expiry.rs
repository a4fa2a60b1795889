//! What a read does with a key past its deadline, on the calling thread
//! (Redis's `expireIfNeeded` and the replica rules of `lookupKey`).
//!
//! A master deletes such a key when a command meets it ([`Policy::Delete`],
//! the default). A replica never expires keys itself: its master sends a
//! `DEL` when the key expires there. Until then the replica's clients see
//! the key as missing ([`Policy::Hide`]: it stays in the keyspace, so
//! `DBSIZE` still counts it), while the commands of the master's own
//! stream see it as live ([`Policy::Keep`]: "when replicating commands
//! from the master, keys are never considered expired"). The server sets
//! the policy around each command it runs with a [`Scoped`] value; a plain
//! thread-local cell, so the master's hot path pays nothing.

use std::cell::Cell;

/// How a key past its deadline is treated (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Deleted when met, and reported missing (a master; a write on a
    /// writable replica).
    #[default]
    Delete,
    /// Reported missing, left in place for the master's `DEL` (a client
    /// of a replica).
    Hide,
    /// Treated as live (the master's stream on a replica).
    Keep,
}

thread_local! {
    static POLICY: Cell<Policy> = const { Cell::new(Policy::Delete) };
}

/// The calling thread's policy.
#[inline]
pub fn current() -> Policy {
    POLICY.with(Cell::get)
}

/// Sets the calling thread's policy while it lives; dropping it restores
/// the previous one (commands nest inside `EXEC` and scripts).
#[must_use = "the policy lasts while the value lives"]
pub struct Scoped {
    previous: Policy,
}

impl Scoped {
    /// Sets `policy` on this thread.
    pub fn new(policy: Policy) -> Self {
        Scoped {
            previous: POLICY.with(|p| p.replace(policy)),
        }
    }
}

impl Drop for Scoped {
    fn drop(&mut self) {
        POLICY.with(|p| p.set(self.previous));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_nest_and_restore() {
        assert_eq!(current(), Policy::Delete);
        {
            let _outer = Scoped::new(Policy::Hide);
            assert_eq!(current(), Policy::Hide);
            {
                let _inner = Scoped::new(Policy::Keep);
                assert_eq!(current(), Policy::Keep);
            }
            assert_eq!(current(), Policy::Hide);
        }
        assert_eq!(current(), Policy::Delete);
    }
}
