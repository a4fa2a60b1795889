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

use std::sync::atomic::Ordering;

use crate::resp::ReplyWriter;
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
/// `t`: stream commands.
pub const STREAM: u32 = 1 << 10;
/// `x`: a key expired.
pub const EXPIRED: u32 = 1 << 8;
/// `e`: a key was evicted for maxmemory.
pub const EVICTED: u32 = 1 << 9;
/// `m`: a key was looked up and missed.
pub const KEY_MISS: u32 = 1 << 11;
/// `n`: a key was created.
pub const NEW: u32 = 1 << 14;

/// Tells the keyspace whether to report new keys (`n` in
/// `notify-keyspace-events`); called after every `CONFIG SET` and at start.
pub fn config_changed(srv: &ServerState) {
    let flags = srv.config.hot.notify_flags.load(Ordering::Relaxed);
    srv.keyspace.report_creations(flags & NEW != 0);
}

/// Publishes the event `event` of class `class` about `key` in database
/// `db`, if `notify-keyspace-events` asks for that class (Redis's
/// `notifyKeyspaceEvent`): `<event>` on `__keyspace@<db>__:<key>` with `K`,
/// `<key>` on `__keyevent@<db>__:<event>` with `E`.
pub fn publish(srv: &ServerState, db: usize, class: u32, event: &str, key: &[u8]) {
    publish_to(srv, db, class, event, key, None);
}

/// [`publish`], writing a message meant for the client `me` straight into its
/// reply buffer (so it precedes the reply of the command that caused it, as
/// in Redis).
pub fn publish_to(
    srv: &ServerState,
    db: usize,
    class: u32,
    event: &str,
    key: &[u8],
    mut me: Option<(u64, &mut ReplyWriter)>,
) {
    let flags = srv.config.hot.notify_flags.load(Ordering::Relaxed);
    if flags & class == 0 {
        return;
    }
    let limits = || {
        crate::pubsub::pubsub_limits(
            &srv.config
                .get("client-output-buffer-limit")
                .unwrap_or_default(),
        )
    };
    let mut channel = Vec::with_capacity(20 + key.len().max(event.len()));
    if flags & KEYSPACE != 0 {
        channel.extend_from_slice(b"__keyspace@");
        channel.extend_from_slice(itoa::Buffer::new().format(db).as_bytes());
        channel.extend_from_slice(b"__:");
        channel.extend_from_slice(key);
        let me = me.as_mut().map(|(id, out)| (*id, &mut **out));
        srv.pubsub
            .publish(&channel, event.as_bytes(), false, &limits, me);
    }
    if flags & KEYEVENT != 0 {
        channel.clear();
        channel.extend_from_slice(b"__keyevent@");
        channel.extend_from_slice(itoa::Buffer::new().format(db).as_bytes());
        channel.extend_from_slice(b"__:");
        channel.extend_from_slice(event.as_bytes());
        srv.pubsub.publish(&channel, key, false, &limits, me);
    }
}
