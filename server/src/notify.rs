//! Keyspace notifications (`notify-keyspace-events`): the one call every
//! command makes after it changes a key, as Redis's `notifyKeyspaceEvent`.
//!
//! Commands call [`crate::cmd::Ctx::notify`] with the event's class (one of
//! the constants below, Redis's `NOTIFY_*` bits) and its name (`"set"`,
//! `"lpush"`, `"expired"`...), at the same places Redis's source calls
//! `notifyKeyspaceEvent`, in the same order. Whether anything is published
//! depends on the `notify-keyspace-events` directive; the publishing itself
//! (to `__keyspace@<db>__:<key>` and `__keyevent@<db>__:<event>`) lives in
//! [`publish`].

use crate::state::ServerState;

/// `K`: publish on `__keyspace@<db>__:<key>`.
pub const KEYSPACE: u32 = 1 << 0;
/// `E`: publish on `__keyevent@<db>__:<event>`.
pub const KEYEVENT: u32 = 1 << 1;
/// `g`: generic commands (DEL, EXPIRE, RENAME...).
pub const GENERIC: u32 = 1 << 2;
/// `$`: string commands.
pub const STRING: u32 = 1 << 3;
/// `l`: list commands.
pub const LIST: u32 = 1 << 4;
/// `s`: set commands.
pub const SET: u32 = 1 << 5;
/// `h`: hash commands.
pub const HASH: u32 = 1 << 6;
/// `z`: sorted-set commands.
pub const ZSET: u32 = 1 << 7;
/// `x`: a key expired.
pub const EXPIRED: u32 = 1 << 8;
/// `e`: a key was evicted for maxmemory.
pub const EVICTED: u32 = 1 << 9;
/// `m`: a key was looked up and missed.
pub const KEY_MISS: u32 = 1 << 11;
/// `n`: a key was created.
pub const NEW: u32 = 1 << 14;

/// Publishes the event `event` of class `class` about `key` in database
/// `db`, if `notify-keyspace-events` asks for that class.
pub fn publish(srv: &ServerState, db: usize, class: u32, event: &str, key: &[u8]) {
    // Filled in by the pub/sub work: until then there is no subscriber to
    // deliver to, so there is nothing to do.
    let _ = (srv, db, class, event, key);
}
