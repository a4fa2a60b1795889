//! Client-side caching (`CLIENT TRACKING`), as Redis 7.0.15's `tracking.c`.
//!
//! * **Default mode**: after a read-only command of a tracking client, its
//!   keys are remembered with the client's id ([`Tracking::remember`]). When
//!   such a key is modified, each client remembered for it gets one
//!   invalidation message and the key is forgotten.
//! * **BCAST**: a client registers prefixes instead; every modified key
//!   matching one is collected and sent, in key order, when the batch of
//!   the connection that modified it ends ([`Tracking::broadcast`]; Redis
//!   sends them before it sleeps).
//! * Keys are not tied to a database, as in Redis; `FLUSHDB`/`FLUSHALL`
//!   send every tracking client a null invalidation and empty the table.
//!
//! Modifications arrive through the storage observer ([`crate::observer`]),
//! exactly as for `WATCH`: the keyspace reports modifications only while
//! some client tracks (or watches), so with no tracking client a write
//! costs nothing more, and a command one relaxed load ([`Tracking::active`]
//! in `cmd::execute`).
//!
//! Messages for other clients go to their pub/sub mailbox. Invalidations for
//! the client running the command are kept aside (the observer runs under a
//! shard lock and has no reply buffer) and written after its reply, once the
//! top-level command (`EXEC`, `EVAL`...) is over, as Redis 7.0.15's
//! `tracking_pending_keys`.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::client::ClientHandle;
use crate::pubsub::Mailbox;
use crate::resp::{Protocol, ReplyWriter};
use crate::state::ServerState;

/// The pub/sub channel RESP2 clients receive invalidations on (through
/// `REDIRECT`).
pub const CHANNEL: &[u8] = b"__redis__:invalidate";

/// A client's tracking mode, kept by its own connection (reads check it
/// without any lock or atomic).
#[derive(Debug, Clone, Default)]
pub struct ClientTracking {
    /// `CLIENT TRACKING ON` is in force.
    pub on: bool,
    /// `BCAST`.
    pub bcast: bool,
    /// `OPTIN`.
    pub optin: bool,
    /// `OPTOUT`.
    pub optout: bool,
    /// `NOLOOP`.
    pub noloop: bool,
    /// `CLIENT CACHING YES|NO` was given for the next command (or the
    /// transaction being queued).
    pub caching: bool,
    /// `REDIRECT` target (0: none).
    pub redirect: u64,
    /// `BCAST` prefixes (in Redis's radix-tree order).
    pub prefixes: BTreeSet<Vec<u8>>,
}

/// What other clients see of a tracking client (`CLIENT LIST` flags `t`,
/// `R`, `B` and `redir=`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TrackingView {
    /// `REDIRECT` target (0: none).
    pub redirect: u64,
    /// `BCAST`.
    pub bcast: bool,
    /// The redirect target went away (`CLIENT_TRACKING_BROKEN_REDIR`).
    pub broken: bool,
}

/// A tracking client as the senders need it.
#[derive(Debug, Clone)]
struct Tracker {
    handle: Arc<ClientHandle>,
    mailbox: Arc<Mailbox>,
    redirect: u64,
    bcast: bool,
    noloop: bool,
}

/// One `BCAST` prefix: its clients and the keys modified since the last
/// broadcast, each with the client that modified it last (`None`: no
/// client, an expiry or eviction).
#[derive(Debug, Default)]
struct Bcast {
    clients: BTreeSet<u64>,
    keys: BTreeMap<Vec<u8>, Option<u64>>,
}

#[derive(Debug, Default)]
struct Table {
    /// Key to the ids of the clients that may cache it (default mode).
    keys: HashMap<Vec<u8>, HashSet<u64>>,
    /// Sum of the id sets' sizes (`tracking_total_items`).
    items: usize,
    prefixes: BTreeMap<Vec<u8>, Bcast>,
    clients: HashMap<u64, Tracker>,
}

/// The server's tracking state.
#[derive(Debug, Default)]
pub struct Tracking {
    /// Tracking clients (`tracking_clients`).
    count: AtomicUsize,
    /// Some client tracks, or the table still holds keys of clients that
    /// stopped (Redis forgets those lazily, when the key changes): the one
    /// load a command pays when it is false.
    live: AtomicBool,
    table: Mutex<Table>,
}

/// What an invalidation carries.
enum Payload<'a> {
    /// One key.
    Key(&'a [u8]),
    /// An already encoded array of keys (`BCAST`).
    Keys(&'a [u8]),
    /// Every key (a flush).
    Null,
}

thread_local! {
    /// The client whose top-level command runs on this thread (0: none).
    static CURRENT: Cell<u64> = const { Cell::new(0) };
    /// Invalidations for [`CURRENT`], sent after its reply (`None`: a flush).
    static OWN: RefCell<Vec<Option<Vec<u8>>>> = const { RefCell::new(Vec::new()) };
}

fn current() -> u64 {
    CURRENT.with(Cell::get)
}

impl Tracking {
    /// Whether any client tracks, or keys remain in the table (one
    /// relaxed load).
    #[inline]
    pub fn active(&self) -> bool {
        self.live.load(Ordering::Relaxed)
    }

    /// Keeps [`Tracking::active`] and the keyspace's modification reports
    /// in step with the table (called with its lock held).
    fn update_live(&self, srv: &ServerState, t: &Table) {
        let live = !t.clients.is_empty() || !t.keys.is_empty();
        if self.live.swap(live, Ordering::SeqCst) != live {
            srv.keyspace.track_modifications(live);
        }
    }

    /// `tracking_clients`.
    pub fn clients(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// (`tracking_total_keys`, `tracking_total_items`, `tracking_total_prefixes`).
    pub fn totals(&self) -> (usize, usize, usize) {
        let t = self.table.lock();
        (t.keys.len(), t.items, t.prefixes.len())
    }

    /// Redis's `enableTracking`, for a client whose options were checked.
    pub fn enable(
        &self,
        srv: &ServerState,
        mailbox: &Arc<Mailbox>,
        mode: &ClientTracking,
        new_prefixes: &[Vec<u8>],
    ) {
        let handle = mailbox.handle().clone();
        let id = handle.id;
        let mut t = self.table.lock();
        if mode.bcast {
            for p in new_prefixes {
                t.prefixes.entry(p.clone()).or_default().clients.insert(id);
            }
        }
        let tracker = Tracker {
            handle: handle.clone(),
            mailbox: mailbox.clone(),
            redirect: mode.redirect,
            bcast: mode.bcast,
            noloop: mode.noloop,
        };
        if t.clients.insert(id, tracker).is_none() {
            self.count.fetch_add(1, Ordering::SeqCst);
        }
        self.update_live(srv, &t);
        drop(t);
        handle.info.lock().tracking = Some(TrackingView {
            redirect: mode.redirect,
            bcast: mode.bcast,
            broken: false,
        });
    }

    /// Redis's `disableTracking` (`CLIENT TRACKING OFF`, `RESET`,
    /// disconnection). The keys it read stay in the table until modified,
    /// as in Redis.
    pub fn disable(&self, srv: &ServerState, handle: &ClientHandle, mode: &mut ClientTracking) {
        if !mode.on {
            return;
        }
        let mut t = self.table.lock();
        for p in &mode.prefixes {
            if let Some(b) = t.prefixes.get_mut(p) {
                b.clients.remove(&handle.id);
                if b.clients.is_empty() {
                    t.prefixes.remove(p);
                }
            }
        }
        if t.clients.remove(&handle.id).is_some() {
            self.count.fetch_sub(1, Ordering::SeqCst);
        }
        self.update_live(srv, &t);
        drop(t);
        handle.info.lock().tracking = None;
        *mode = ClientTracking::default();
    }

    /// Redis's `trackingRememberKeys`: client `id` read `keys`.
    pub fn remember(&self, id: u64, keys: &[&[u8]]) {
        if keys.is_empty() {
            return;
        }
        let mut t = self.table.lock();
        for k in keys {
            let ids = match t.keys.get_mut(*k) {
                Some(ids) => ids,
                None => t.keys.entry(k.to_vec()).or_default(),
            };
            if ids.insert(id) {
                t.items += 1;
            }
        }
    }

    /// Redis's `trackingInvalidateKey`: `key` changed (or is dropped from
    /// the table, without `bcast`). `modifier` is the client that changed
    /// it, if any. Called from the storage observer, under a shard lock.
    pub fn invalidate(&self, srv: &ServerState, key: &[u8], bcast: bool, modifier: Option<u64>) {
        let me = current();
        let targets: Vec<Tracker> = {
            let mut t = self.table.lock();
            if bcast && !t.prefixes.is_empty() {
                for (p, b) in t.prefixes.iter_mut() {
                    if key.starts_with(p) {
                        b.keys.insert(key.to_vec(), modifier);
                    }
                }
            }
            let Some(ids) = t.keys.remove(key) else {
                return;
            };
            t.items -= ids.len();
            if t.keys.is_empty() {
                self.update_live(srv, &t);
            }
            ids.iter()
                .filter_map(|id| t.clients.get(id))
                .filter(|c| !c.bcast)
                .cloned()
                .collect()
        };
        for target in targets {
            let id = target.handle.id;
            if id == me {
                if !target.noloop {
                    OWN.with(|o| o.borrow_mut().push(Some(key.to_vec())));
                }
                continue;
            }
            send(srv, &target, Payload::Key(key), &mut None);
        }
    }

    /// Redis's `trackingInvalidateKeysOnFlush`: a database was flushed by
    /// client `me`. Every tracking client gets a null invalidation (`me`'s
    /// after its reply); the table is emptied.
    pub fn flushed(&self, srv: &ServerState, me: u64) {
        let targets: Vec<Tracker> = {
            let mut t = self.table.lock();
            t.keys = HashMap::new();
            t.items = 0;
            self.update_live(srv, &t);
            t.clients.values().cloned().collect()
        };
        for target in targets {
            if target.handle.id == me {
                OWN.with(|o| o.borrow_mut().push(None));
            } else {
                send(srv, &target, Payload::Null, &mut None);
            }
        }
    }

    /// Redis's `trackingBroadcastInvalidationMessages`: sends the keys
    /// modified under each `BCAST` prefix since the last call. Messages for
    /// the client `me` go into its reply buffer.
    pub fn broadcast(&self, srv: &ServerState, mut me: Option<(u64, &mut ReplyWriter)>) {
        let mut sends: Vec<(Tracker, Vec<u8>)> = Vec::new();
        {
            let mut t = self.table.lock();
            let Table {
                prefixes, clients, ..
            } = &mut *t;
            for b in prefixes.values_mut() {
                if b.keys.is_empty() {
                    continue;
                }
                let keys = std::mem::take(&mut b.keys);
                let common = encode_keys(&keys, None);
                for id in &b.clients {
                    let Some(c) = clients.get(id) else {
                        continue;
                    };
                    let proto = if c.noloop {
                        encode_keys(&keys, Some(*id))
                    } else {
                        common.clone()
                    };
                    if let Some(proto) = proto {
                        sends.push((c.clone(), proto));
                    }
                }
            }
        }
        for (c, proto) in sends {
            send(srv, &c, Payload::Keys(&proto), &mut me);
        }
    }

    /// Redis's `trackingLimitUsedSlots` (before each command): past
    /// `tracking-table-max-keys`, keys are dropped from the table, their
    /// clients invalidated as if the keys changed.
    pub fn limit(&self, srv: &ServerState) {
        let max = srv.config.get_i64("tracking-table-max-keys");
        if max <= 0 {
            return;
        }
        let max = max as usize;
        loop {
            let victim = {
                let t = self.table.lock();
                if t.keys.len() <= max {
                    return;
                }
                // A hash table's first key is as good as a random walk.
                t.keys.keys().next().cloned()
            };
            let Some(key) = victim else {
                return;
            };
            self.invalidate(srv, &key, false, None);
        }
    }

    /// Sends the client `id` the invalidations kept for it while its
    /// command ran, into its reply buffer.
    pub fn flush_own(&self, srv: &ServerState, id: u64, out: &mut ReplyWriter) {
        let pending = OWN.with(|o| std::mem::take(&mut *o.borrow_mut()));
        if pending.is_empty() {
            return;
        }
        let Some(me) = self.table.lock().clients.get(&id).cloned() else {
            return;
        };
        let mut own = Some((id, out));
        for key in pending {
            let payload = match &key {
                Some(k) => Payload::Key(k),
                None => Payload::Null,
            };
            send(srv, &me, payload, &mut own);
        }
    }
}

/// Runs `f` as the top-level command of client `id` on this thread: its
/// own invalidations are kept for [`Tracking::flush_own`].
pub fn as_current<R>(id: u64, f: impl FnOnce() -> R) -> R {
    let prev = CURRENT.with(|c| c.replace(id));
    let r = f();
    CURRENT.with(|c| c.set(prev));
    r
}

/// The client running a command on this thread, if any.
pub fn current_client() -> Option<u64> {
    Some(current()).filter(|&id| id != 0)
}

/// `keys` as a RESP array, leaving out those last modified by `skip`
/// (NOLOOP); None when nothing is left.
fn encode_keys(keys: &BTreeMap<Vec<u8>, Option<u64>>, skip: Option<u64>) -> Option<Vec<u8>> {
    let kept: Vec<&Vec<u8>> = keys
        .iter()
        .filter(|(_, by)| skip.is_none() || **by != skip)
        .map(|(k, _)| k)
        .collect();
    if kept.is_empty() {
        return None;
    }
    let mut w = ReplyWriter::default();
    w.array(kept.len());
    for k in kept {
        w.bulk(k);
    }
    Some(w.as_bytes().to_vec())
}

/// Redis's `sendTrackingMessage`: one invalidation for the tracking client
/// `t`, to it (RESP3 push) or to its redirect target (RESP3 push, or a
/// `__redis__:invalidate` message to a RESP2 client in pub/sub mode).
fn send(
    srv: &ServerState,
    t: &Tracker,
    payload: Payload<'_>,
    me: &mut Option<(u64, &mut ReplyWriter)>,
) {
    let own_resp3 = t.handle.resp.load(Ordering::Relaxed) == 3;
    let (dest, redirected) = if t.redirect != 0 {
        let target = srv
            .clients
            .get(t.redirect)
            .and_then(|h| h.mailbox.get().and_then(std::sync::Weak::upgrade));
        match target {
            Some(mb) => (mb, true),
            None => {
                if let Some(view) = t.handle.info.lock().tracking.as_mut() {
                    view.broken = true;
                }
                if own_resp3 {
                    let mut w = resp3_writer();
                    w.push(2);
                    w.bulk(b"tracking-redir-broken");
                    w.int(t.redirect as i64);
                    deliver(srv, &t.mailbox, w.as_bytes(), me);
                }
                return;
            }
        }
    } else {
        (t.mailbox.clone(), false)
    };
    let dest_handle = dest.handle();
    let mut w = ReplyWriter::default();
    if dest_handle.resp.load(Ordering::Relaxed) == 3 {
        w.proto = Protocol::Resp3;
        w.push(2);
        w.bulk(b"invalidate");
    } else if redirected && dest_handle.info.lock().pubsub {
        w.array(3);
        w.bulk(b"message");
        w.bulk(CHANNEL);
    } else {
        // RESP2 without a subscribed redirect target: nowhere to send.
        return;
    }
    match payload {
        Payload::Key(k) => {
            w.array(1);
            w.bulk(k);
        }
        Payload::Keys(proto) => w.raw(proto),
        // The null of the tracking client's protocol, as Redis writes it.
        Payload::Null => w.raw(if own_resp3 { b"_\r\n" } else { b"$-1\r\n" }),
    }
    deliver(srv, &dest, w.as_bytes(), me);
}

fn resp3_writer() -> ReplyWriter {
    let mut w = ReplyWriter::default();
    w.proto = Protocol::Resp3;
    w
}

/// Into `me`'s reply buffer if `mb` is its mailbox, else into the mailbox.
fn deliver(
    srv: &ServerState,
    mb: &Arc<Mailbox>,
    msg: &[u8],
    me: &mut Option<(u64, &mut ReplyWriter)>,
) {
    match me.as_mut() {
        Some((id, out)) if *id == mb.client_id() => out.message(|w| w.raw(msg)),
        _ => {
            let limits = || {
                crate::pubsub::pubsub_limits(
                    &srv.config
                        .get("client-output-buffer-limit")
                        .unwrap_or_default(),
                )
            };
            mb.post(msg, &limits);
        }
    }
}
