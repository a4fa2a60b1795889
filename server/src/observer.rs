//! The server's [`KeyObserver`]: what the storage layer reports about keys,
//! turned into `WATCH` invalidations ([`crate::watch`]), client-side caching
//! invalidations ([`crate::tracking`]), unblocked `XREADGROUP`s whose
//! stream went away (`crate::blocking`'s `lost_streams`) and `expired` / `evicted` keyspace
//! notifications ([`crate::notify`]).

use std::sync::{Arc, Weak};

use amber_storage::KeyObserver;

use crate::notify;
use crate::state::ServerState;

/// Forwards the keyspace's reports to the server (held weakly: the keyspace
/// is part of the server).
pub struct ServerObserver(Weak<ServerState>);

impl ServerObserver {
    /// Installs the observer on the server's keyspace.
    pub fn install(srv: &Arc<ServerState>) {
        let observer = Arc::new(ServerObserver(Arc::downgrade(srv)));
        srv.keyspace.set_observer(observer);
        notify::config_changed(srv);
    }
}

impl KeyObserver for ServerObserver {
    fn modified(&self, db: usize, key: &[u8], exists: bool) {
        if let Some(srv) = self.0.upgrade() {
            srv.blocking.note_change(&srv, db, key);
            srv.watches.touch(db, key, exists);
            if srv.tracking.active() {
                let by = crate::tracking::current_client();
                srv.tracking.invalidate(&srv, key, true, by);
            }
        }
    }

    fn created(&self, db: usize, key: &[u8]) {
        if let Some(srv) = self.0.upgrade() {
            notify::publish(&srv, db, notify::NEW, "new", key);
        }
    }

    fn expired(&self, db: usize, key: &[u8]) {
        // Redis's deleteExpiredKeyAndPropagate: notify, then signalModifiedKey.
        if let Some(srv) = self.0.upgrade() {
            notify::publish(&srv, db, notify::EXPIRED, "expired", key);
            srv.master.feed_deletion(&srv, db, key);
            srv.blocking.note_change(&srv, db, key);
            srv.watches.touch(db, key, false);
            if srv.tracking.active() {
                srv.tracking.invalidate(&srv, key, true, None);
            }
        }
    }

    fn expire_lazily(&self, _db: usize, _key: &[u8], expire: &mut dyn FnMut()) -> bool {
        // Its DEL must not overtake a write still on its way to replicas.
        match self.0.upgrade() {
            Some(srv) => srv.master.expire_in_order(expire),
            None => {
                expire();
                true
            }
        }
    }

    fn evicted(&self, db: usize, key: &[u8]) {
        // Redis's performEvictions: signalModifiedKey, then notify.
        if let Some(srv) = self.0.upgrade() {
            srv.blocking.note_change(&srv, db, key);
            srv.watches.touch(db, key, false);
            if srv.tracking.active() {
                srv.tracking.invalidate(&srv, key, true, None);
            }
            notify::publish(&srv, db, notify::EVICTED, "evicted", key);
            srv.master.feed_deletion(&srv, db, key);
        }
    }

    fn deadline_set(&self, db: usize, key: &[u8]) {
        // Reported only while a replica: a writable one expires the keys
        // its clients gave a deadline (`crate::replica_expires`).
        if let Some(srv) = self.0.upgrade() {
            if crate::replica_expires::remembers(&srv) {
                srv.replica_expires.remember(db, key);
            }
        }
    }

    fn replacing_db(&self, emptied: usize, replaced_with: Option<usize>) {
        if let Some(srv) = self.0.upgrade() {
            if replaced_with.is_none() {
                srv.replica_expires.forget_db(emptied);
            }
            srv.blocking.db_replaced(&srv, emptied, replaced_with);
            srv.watches.touch_db(&srv.keyspace, emptied, replaced_with);
        }
    }
}
