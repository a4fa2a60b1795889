//! The stream's ordering lock ([`Master::order`]) and the lazy expiries
//! that must respect it ([`Master::expire_in_order`]).
//!
//! Commands run on several threads, so a write's effects reach the
//! keyspace some time before they reach the stream. While the stream
//! runs, a write command holds the ordering lock from before its handler
//! until its effects are fed (the active expiry cycle takes it too): what
//! is fed in between is in keyspace order. A read command takes no such
//! lock, yet a key it meets past its deadline is deleted and its `DEL`
//! fed: that `DEL` may overtake another client's write of the key (a
//! `RENAME`, `COPY`, `RESTORE`, `SET ... PXAT` that made it with a
//! deadline already passed, or a `SWAPDB`) whose effects are in the
//! keyspace but not in the stream, and the replica then applies the two
//! the other way round. So a read expires a key only while it can take
//! the lock without waiting, and feeds the `DEL` under it; otherwise the
//! key stays, hidden from the read as a replica hides it, for the active
//! cycle or a later access.
//!
//! Eviction deletes keys and feeds their `DEL`s too, so it follows the
//! writers' rule ([`Master::evict_in_order`]): it waits for the lock, as
//! it runs before the command that needs the room holds any lock.

use std::cell::Cell;

use parking_lot::MutexGuard;

use super::Master;

thread_local! {
    /// Whether this thread holds [`Master::order`] (see [`Ordered`]).
    static ORDER_HELD: Cell<bool> = const { Cell::new(false) };
}

/// [`Master::order`] held by this thread: while it lives, the thread's
/// own lazy expiries need no lock (the lock is not reentrant: a try-lock
/// would fail and hide the key from the command that holds it).
pub struct Ordered<'a> {
    _lock: MutexGuard<'a, ()>,
    /// Whether the thread held it already (restored on drop).
    outer: bool,
}

impl<'a> Ordered<'a> {
    fn new(lock: MutexGuard<'a, ()>) -> Self {
        Ordered {
            _lock: lock,
            outer: ORDER_HELD.with(|h| h.replace(true)),
        }
    }
}

impl Drop for Ordered<'_> {
    fn drop(&mut self) {
        ORDER_HELD.with(|h| h.set(self.outer));
    }
}

impl Master {
    /// Held by a write command from before it runs until its effects are
    /// in the stream, while replicas are attached. Take it before any
    /// shard lock.
    pub fn order(&self) -> Ordered<'_> {
        Ordered::new(self.order.lock())
    }

    /// Runs `expire`, a lazy expiry (it deletes a key and feeds its
    /// `DEL`), unless that `DEL` could overtake another command's effects
    /// not in the stream yet; returns whether it ran (see the module
    /// docs). The caller holds the key's shard lock, and writers take the
    /// ordering lock before theirs, so this only tries it: waiting could
    /// deadlock. A thread that holds it already (a write command, `EXEC`,
    /// the active cycle) goes on. With no stream it costs one relaxed load.
    pub fn expire_in_order(&self, expire: &mut dyn FnMut()) -> bool {
        if !self.active() || ORDER_HELD.with(Cell::get) {
            expire();
            return true;
        }
        match self.order.try_lock() {
            Some(lock) => {
                let _held = Ordered::new(lock);
                expire();
                true
            }
            None => false,
        }
    }
}

impl Master {
    /// Runs `evict` (an eviction: it deletes keys and feeds their `DEL`s)
    /// holding the ordering lock while replicas are attached, so an
    /// evicted key's `DEL` cannot overtake another command's write of the
    /// key whose effects are not in the stream yet. The caller holds no
    /// shard lock (the lock comes before them), so unlike a lazy expiry
    /// it waits for it. A thread that holds it already (a write command,
    /// `EXEC`) goes on: the lock is not reentrant.
    pub fn evict_in_order<R>(&self, evict: impl FnOnce() -> R) -> R {
        if !self.active() || ORDER_HELD.with(Cell::get) {
            return evict();
        }
        let _held = self.order();
        evict()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use amber_storage::{SetExpiry, Value};

    use crate::test_support::{attach_replica, client, run, server, stream};

    fn words(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_string).collect()
    }

    /// A server whose keyspace reports expiries (so their `DEL`s are fed),
    /// with a replica attached; `k` in db 0 is already past its deadline.
    fn streaming() -> (Arc<crate::state::ServerState>, Arc<crate::pubsub::Mailbox>) {
        let srv = Arc::new(server());
        crate::observer::ServerObserver::install(&srv);
        let mailbox = attach_replica(&srv);
        let mut g = srv.keyspace.lock_one(0, b"k").expect("db 0");
        g.set(b"k", Value::string("v"), SetExpiry::At(1))
            .expect("set");
        drop(g);
        (srv, mailbox)
    }

    #[test]
    fn a_read_does_not_expire_a_key_ahead_of_a_write_not_in_the_stream_yet() {
        let (srv, mailbox) = streaming();
        // Another client's write is between its handler and its feed: it
        // holds the ordering lock, and `k` (past its deadline) is its effect.
        let writer = srv.master.order();
        let mut reader = client(&srv);
        let reply = std::thread::scope(|s| {
            s.spawn(|| run(&srv, &mut reader, "GET k"))
                .join()
                .expect("the read ran")
        });
        assert_eq!(reply, "$-1\r\n", "missing to the read");
        assert_eq!(srv.keyspace.dbsize(0), 1, "left in place");
        assert_eq!(stream(&mailbox), Vec::<Vec<String>>::new(), "no DEL yet");
        let write = words("SET k v PXAT 1").into_iter().map(String::into_bytes);
        srv.master.feed(&srv, &[(Some(0), write.collect())]);
        drop(writer);
        // Now a read expires it, and its DEL follows the write.
        assert_eq!(run(&srv, &mut reader, "EXISTS k"), ":0\r\n");
        assert_eq!(srv.keyspace.dbsize(0), 0);
        let expected: Vec<Vec<String>> = ["SELECT 0", "SET k v PXAT 1", "DEL k"]
            .iter()
            .map(|l| words(l))
            .collect();
        assert_eq!(stream(&mailbox), expected);
    }

    #[test]
    fn a_command_holding_the_lock_expires_keys_itself() {
        // A write (and a read inside EXEC) holds the lock it would try:
        // it still deletes the key, and feeds its DEL before its own effects.
        let (srv, mailbox) = streaming();
        let mut c = client(&srv);
        assert_eq!(run(&srv, &mut c, "INCR k"), ":1\r\n");
        let mut g = srv.keyspace.lock_one(0, b"j").expect("db 0");
        g.set(b"j", Value::string("v"), SetExpiry::At(1))
            .expect("set");
        drop(g);
        run(&srv, &mut c, "MULTI");
        run(&srv, &mut c, "GET j");
        run(&srv, &mut c, "SET x 1");
        assert_eq!(run(&srv, &mut c, "EXEC"), "*2\r\n$-1\r\n+OK\r\n");
        assert_eq!(srv.keyspace.dbsize(0), 2, "k and x");
        // (One command of a transaction goes alone, as Redis 7.0 sends it.)
        let expected: Vec<Vec<String>> = ["SELECT 0", "DEL k", "INCR k", "DEL j", "SET x 1"]
            .iter()
            .map(|l| words(l))
            .collect();
        assert_eq!(stream(&mailbox), expected);
        assert_eq!(
            srv.keyspace
                .stats
                .expired_keys
                .load(std::sync::atomic::Ordering::Relaxed),
            2
        );
    }

    #[test]
    fn eviction_waits_for_a_write_not_in_the_stream_yet() {
        // One shard per database and a key in each, so an eviction always
        // finds a victim.
        let config = amber_storage::KeyspaceConfig {
            shards_per_db: 1,
            ..Default::default()
        };
        let srv = Arc::new(crate::state::ServerState::with_keyspace(
            crate::config::Config::default(),
            amber_storage::Keyspace::new(config),
        ));
        crate::observer::ServerObserver::install(&srv);
        for db in 0..16 {
            let mut g = srv.keyspace.lock_one(db, b"k").expect("a db");
            g.set(b"k", Value::string("v"), SetExpiry::Keep)
                .expect("set");
        }
        srv.config
            .set("maxmemory-policy", &[b"allkeys-random"], false)
            .expect("a policy");
        assert!(srv.keyspace.tiers.refresh_pressure(1, 2), "memory full");
        let mailbox = attach_replica(&srv);
        // Another client's write is between its handler and its feed.
        let writer = srv.master.order();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut c = client(&srv);
                let reply = run(&srv, &mut c, "SET y 1");
                done.send(reply).expect("the test waits");
            });
            // It must not evict (and feed DELs) before the write is fed;
            // a regression shows at once, so a short bound suffices.
            let early = finished.recv_timeout(std::time::Duration::from_millis(300));
            assert!(early.is_err(), "the eviction did not wait: {early:?}");
            assert_eq!(stream(&mailbox), Vec::<Vec<String>>::new(), "no DEL yet");
            let write = words("SET k w").into_iter().map(String::into_bytes);
            srv.master.feed(&srv, &[(Some(0), write.collect())]);
            drop(writer);
        });
        assert_eq!(finished.recv().expect("the SET ran"), "+OK\r\n");
        let s = stream(&mailbox);
        assert_eq!(s[..2], [words("SELECT 0"), words("SET k w")], "{s:?}");
        assert!(
            s[2..].iter().any(|c| c[0] == "DEL"),
            "evictions after: {s:?}"
        );
    }
}
