//! Pub/sub: who listens to which channel, and delivery of messages.
//!
//! Every connection owns a [`Mailbox`]: publishers append the encoded
//! message (RESP2 array or RESP3 push, as the subscriber speaks) to it and
//! wake the connection task, which writes whatever is pending. A publisher
//! never waits for a subscriber's socket. A message a client publishes to
//! itself goes straight into its own reply buffer, so it comes before the
//! reply of the command that published it, as in Redis.
//!
//! `client-output-buffer-limit pubsub <hard> <soft> <seconds>` applies to the
//! bytes waiting in a mailbox: past the hard limit, or past the soft limit for
//! longer than `seconds`, the subscriber is disconnected, as Redis does. Bytes
//! already handed to the socket are not counted.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::client::ClientHandle;
use crate::resp::ReplyWriter;

/// The three subscription kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `SUBSCRIBE` channels.
    Channel,
    /// `PSUBSCRIBE` glob patterns.
    Pattern,
    /// `SSUBSCRIBE` shard channels.
    Shard,
}

/// Where messages for one connection wait until its task writes them.
#[derive(Debug)]
pub struct Mailbox {
    handle: Arc<ClientHandle>,
    pending: Mutex<Pending>,
    /// Signalled when the connection took the payload (room for more) or
    /// ended: a full sync's producer waits on it ([`Mailbox::send_payload`]).
    room: Condvar,
}

#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    soft_since: Option<Instant>,
    /// Nothing is drained until [`Mailbox::release`]: a replica's stream
    /// waits behind its full-sync payload, still being written.
    held: bool,
    /// A replica's full-sync bytes (`+FULLRESYNC`, keep-alive newlines,
    /// the RDB payload) on their way: drained even while held, ahead of
    /// the held stream, and never more than [`PAYLOAD_WINDOW`] at a time.
    payload: Vec<u8>,
    /// The connection ended: a producer waiting for room gives up.
    closed: bool,
}

/// The most full-sync payload bytes waiting in a mailbox: the producer
/// waits for the connection to take them (backpressure from the socket),
/// so a payload of any size costs a few MiB of DRAM (this, the same again
/// in the connection's write buffer, and the socket's buffer).
pub const PAYLOAD_WINDOW: usize = 2 << 20;

/// Bytes below which a mailbox is never checked against the limits (so the
/// configuration is read only when a subscriber falls far behind).
const CHECK_ABOVE: usize = 64 * 1024;

impl Mailbox {
    /// A mailbox for the connection of `handle`.
    pub fn new(handle: Arc<ClientHandle>) -> Self {
        Mailbox {
            handle,
            pending: Mutex::new(Pending::default()),
            room: Condvar::new(),
        }
    }

    /// The client owning it.
    pub fn handle(&self) -> &Arc<ClientHandle> {
        &self.handle
    }

    /// The id of the client owning it.
    pub fn client_id(&self) -> u64 {
        self.handle.id
    }

    fn resp3(&self) -> bool {
        self.handle.resp.load(Ordering::Relaxed) == 3
    }

    /// Moves every pending message into `out` (the connection task): the
    /// full-sync payload first, then, unless held, the rest.
    pub fn drain_into(&self, out: &mut ReplyWriter) {
        let mut p = self.pending.lock();
        if !p.payload.is_empty() {
            out.raw(&p.payload);
            p.payload.clear();
            self.room.notify_all();
        }
        if p.held {
            return;
        }
        if !p.bytes.is_empty() {
            out.raw(&p.bytes);
            p.bytes.clear();
            p.soft_since = None;
        }
    }

    /// Holds what is posted from now on until [`Mailbox::release`] (a
    /// replica's stream while its full-sync payload is written).
    pub fn hold(&self) {
        self.pending.lock().held = true;
    }

    /// Queues full-sync bytes ahead of everything held, waiting while
    /// [`PAYLOAD_WINDOW`] bytes are already queued (the connection has not
    /// taken them). Fails once the connection ended or was killed, so a
    /// producer never outlives its replica, and (`TimedOut`) after waiting
    /// `stall` for room: a replica that stopped reading.
    pub fn send_payload(&self, bytes: &[u8], stall: std::time::Duration) -> std::io::Result<()> {
        let mut p = self.pending.lock();
        let since = Instant::now();
        loop {
            if p.closed || self.handle.killed.load(Ordering::Relaxed) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "the replica's connection is closed",
                ));
            }
            if p.payload.len() < PAYLOAD_WINDOW {
                break;
            }
            if since.elapsed() >= stall {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the replica reads nothing",
                ));
            }
            // A timeout too: a kill does not signal the condition.
            self.room
                .wait_for(&mut p, std::time::Duration::from_millis(100));
        }
        p.payload.extend_from_slice(bytes);
        drop(p);
        self.handle.wake.notify_one();
        Ok(())
    }

    /// The connection ended: nothing will drain this mailbox again.
    pub fn close(&self) {
        self.pending.lock().closed = true;
        self.room.notify_all();
    }

    /// Whether [`Mailbox::close`] ran or the client was killed.
    pub fn is_closed(&self) -> bool {
        self.pending.lock().closed || self.handle.killed.load(Ordering::Relaxed)
    }

    /// Ends [`Mailbox::hold`]: `first`, then whatever was posted meanwhile,
    /// go out in that order (after any payload still queued).
    pub fn release(&self, first: &[u8]) {
        let mut p = self.pending.lock();
        let mut bytes = Vec::with_capacity(first.len() + p.bytes.len());
        bytes.extend_from_slice(first);
        bytes.append(&mut p.bytes);
        p.bytes = bytes;
        p.held = false;
        drop(p);
        self.handle.wake.notify_one();
    }

    /// Appends `msg` and wakes the connection; past the output buffer
    /// `limits` (hard, soft, seconds) the client is disconnected instead.
    pub fn post(&self, msg: &[u8], limits: &dyn Fn() -> (u64, u64, u64)) {
        let mut p = self.pending.lock();
        p.bytes.extend_from_slice(msg);
        let len = p.bytes.len();
        if len > CHECK_ABOVE {
            let (hard, soft, secs) = limits();
            let over_soft = soft > 0 && len as u64 > soft;
            if !over_soft {
                p.soft_since = None;
            }
            let since = *p.soft_since.get_or_insert_with(Instant::now);
            if (hard > 0 && len as u64 > hard) || (over_soft && since.elapsed().as_secs() >= secs) {
                tracing::warn!(
                    client = self.handle.id,
                    "Client scheduled to be closed ASAP for overcoming of output buffer limits."
                );
                p.bytes = Vec::new();
                drop(p);
                self.handle.kill();
                return;
            }
        }
        drop(p);
        // The connection drains its mailbox whenever it wakes.
        self.handle.wake.notify_one();
    }
}

type Registry = RwLock<HashMap<Vec<u8>, Vec<Arc<Mailbox>>>>;

/// Every subscription of the server.
#[derive(Debug, Default)]
pub struct PubSub {
    channels: Registry,
    patterns: Registry,
    shard: Registry,
    /// Number of (client, pattern) pairs: publishing skips the pattern scan when 0.
    pattern_subs: AtomicUsize,
}

/// What one client is subscribed to.
#[derive(Debug)]
pub struct Subscriptions {
    /// The client's mailbox.
    pub mailbox: Arc<Mailbox>,
    channels: HashSet<Vec<u8>>,
    patterns: Vec<Vec<u8>>,
    shard: HashSet<Vec<u8>>,
    /// Redis's `CLIENT_PUBSUB`: set by a subscribe, cleared when the last
    /// subscription goes.
    pub active: bool,
}

impl Subscriptions {
    /// No subscription yet.
    pub fn new(handle: Arc<ClientHandle>) -> Self {
        Subscriptions {
            mailbox: Arc::new(Mailbox::new(handle)),
            channels: HashSet::new(),
            patterns: Vec::new(),
            shard: HashSet::new(),
            active: false,
        }
    }

    /// Channels plus patterns (the count in (un)subscribe replies).
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Shard channels (the count in `SSUBSCRIBE` replies).
    pub fn shard_count(&self) -> usize {
        self.shard.len()
    }

    /// Number of subscriptions of a kind (`CLIENT LIST` `sub=`, `psub=`, `ssub=`).
    pub fn len(&self, kind: Kind) -> usize {
        match kind {
            Kind::Channel => self.channels.len(),
            Kind::Pattern => self.patterns.len(),
            Kind::Shard => self.shard.len(),
        }
    }

    /// The reply count for a kind.
    pub fn reply_count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.shard_count(),
            _ => self.count(),
        }
    }

    /// Every subscription of a kind.
    pub fn names(&self, kind: Kind) -> Vec<Vec<u8>> {
        match kind {
            Kind::Channel => self.channels.iter().cloned().collect(),
            Kind::Pattern => self.patterns.clone(),
            Kind::Shard => self.shard.iter().cloned().collect(),
        }
    }

    /// Records a subscription; false if it was already there.
    fn add(&mut self, kind: Kind, name: &[u8]) -> bool {
        match kind {
            Kind::Channel => self.channels.insert(name.to_vec()),
            Kind::Shard => self.shard.insert(name.to_vec()),
            Kind::Pattern => {
                if self.patterns.iter().any(|p| p == name) {
                    false
                } else {
                    self.patterns.push(name.to_vec());
                    true
                }
            }
        }
    }

    fn remove(&mut self, kind: Kind, name: &[u8]) -> bool {
        match kind {
            Kind::Channel => self.channels.remove(name),
            Kind::Shard => self.shard.remove(name),
            Kind::Pattern => match self.patterns.iter().position(|p| p == name) {
                Some(i) => {
                    self.patterns.remove(i);
                    true
                }
                None => false,
            },
        }
    }
}

/// Redis's `client-output-buffer-limit` for the pubsub class: (hard, soft, seconds).
pub fn pubsub_limits(value: &str) -> (u64, u64, u64) {
    class_limits(value, "pubsub")
}

/// The replica class's `client-output-buffer-limit` (replicas, and
/// monitors, which Redis counts as replicas).
pub fn replica_limits(srv: &crate::state::ServerState) -> (u64, u64, u64) {
    // Stored as Redis shows it: the class is named `slave`.
    let value = srv
        .config
        .get("client-output-buffer-limit")
        .unwrap_or_default();
    match class_limits(&value, "slave") {
        (0, 0, 0) => class_limits(&value, "replica"),
        limits => limits,
    }
}

/// Redis's `client-output-buffer-limit` for client class `name` (`normal`,
/// `pubsub`, `replica`): (hard, soft, seconds); zeros when not set.
pub fn class_limits(value: &str, name: &str) -> (u64, u64, u64) {
    let words: Vec<&str> = value.split_whitespace().collect();
    for w in words.chunks(4) {
        if let [class, hard, soft, secs] = w {
            if class.eq_ignore_ascii_case(name) {
                let num = |s: &str| crate::config::parse_memory(s).unwrap_or(0);
                return (num(hard), num(soft), secs.parse().unwrap_or(0));
            }
        }
    }
    (0, 0, 0)
}

impl PubSub {
    fn registry(&self, kind: Kind) -> &Registry {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard,
        }
    }

    /// Subscribes a client; false if it already was.
    pub fn subscribe(&self, subs: &mut Subscriptions, kind: Kind, name: &[u8]) -> bool {
        if !subs.add(kind, name) {
            return false;
        }
        self.registry(kind)
            .write()
            .entry(name.to_vec())
            .or_default()
            .push(subs.mailbox.clone());
        if kind == Kind::Pattern {
            self.pattern_subs.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// Unsubscribes a client; false if it was not subscribed.
    pub fn unsubscribe(&self, subs: &mut Subscriptions, kind: Kind, name: &[u8]) -> bool {
        if !subs.remove(kind, name) {
            return false;
        }
        let mut reg = self.registry(kind).write();
        if let Some(list) = reg.get_mut(name) {
            list.retain(|m| !Arc::ptr_eq(m, &subs.mailbox));
            if list.is_empty() {
                reg.remove(name);
            }
        }
        if kind == Kind::Pattern {
            self.pattern_subs.fetch_sub(1, Ordering::Relaxed);
        }
        true
    }

    /// Drops every subscription of a client (disconnection, `RESET`).
    pub fn unsubscribe_all(&self, subs: &mut Subscriptions) {
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            for name in subs.names(kind) {
                self.unsubscribe(subs, kind, &name);
            }
        }
        subs.active = false;
    }

    /// Publishes `msg` on `channel` (shard channels with `shard`), returning
    /// the number of receivers. A message for the client `me` (if given) is
    /// written into its own reply buffer `out` instead of its mailbox.
    pub fn publish(
        &self,
        channel: &[u8],
        msg: &[u8],
        shard: bool,
        limits: &dyn Fn() -> (u64, u64, u64),
        mut me: Option<(u64, &mut ReplyWriter)>,
    ) -> usize {
        let mut receivers = 0;
        let mut deliver = |mb: &Mailbox, parts: &[&[u8]]| {
            receivers += 1;
            match me.as_mut() {
                Some((id, out)) if *id == mb.client_id() => out.message(|w| encode_into(w, parts)),
                _ => {
                    let mut w = ReplyWriter::default();
                    if mb.resp3() {
                        w.proto = crate::resp::Protocol::Resp3;
                    }
                    encode_into(&mut w, parts);
                    mb.post(w.as_bytes(), limits);
                }
            }
        };
        let (reg, kind): (&Registry, &[u8]) = if shard {
            (&self.shard, b"smessage")
        } else {
            (&self.channels, b"message")
        };
        if let Some(list) = reg.read().get(channel) {
            for mb in list {
                deliver(mb, &[kind, channel, msg]);
            }
        }
        if shard || self.pattern_subs.load(Ordering::Relaxed) == 0 {
            return receivers;
        }
        for (pattern, list) in self.patterns.read().iter() {
            if !amber_storage::glob::matches(pattern, channel, false) {
                continue;
            }
            for mb in list {
                deliver(mb, &[b"pmessage", pattern, channel, msg]);
            }
        }
        receivers
    }

    /// Active channels of a kind matching `pattern` (`PUBSUB CHANNELS`).
    pub fn channels(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        self.registry(kind)
            .read()
            .keys()
            .filter(|c| pattern.is_none_or(|p| amber_storage::glob::matches(p, c, false)))
            .cloned()
            .collect()
    }

    /// The channels (or patterns) of a kind the client `id` is subscribed
    /// to, read from the registry (a client's own list lives on its
    /// connection).
    pub fn subscriptions_of(&self, kind: Kind, id: u64) -> Vec<Vec<u8>> {
        self.registry(kind)
            .read()
            .iter()
            .filter(|(_, subs)| subs.iter().any(|m| m.client_id() == id))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Subscribers of a channel (`PUBSUB NUMSUB`).
    pub fn numsub(&self, kind: Kind, channel: &[u8]) -> usize {
        self.registry(kind).read().get(channel).map_or(0, Vec::len)
    }

    /// Number of distinct channels of a kind with subscribers
    /// (`INFO stats` `pubsub_channels`, `PUBSUB NUMPAT` for patterns).
    pub fn len(&self, kind: Kind) -> usize {
        self.registry(kind).read().len()
    }
}

/// Writes a pub/sub message (an array in RESP2, a push in RESP3).
pub fn encode_into(out: &mut ReplyWriter, parts: &[&[u8]]) {
    out.push(parts.len());
    for p in parts {
        out.bulk(p);
    }
}
