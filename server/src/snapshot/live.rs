//! Point-in-time RDB snapshots written while the server keeps serving
//! (`BGSAVE`, the `save` points, a replica's full sync): Amber cannot fork,
//! so it uses the keyspace's live snapshots ([`amber_storage::snapshot`]).
//!
//! [`LiveSnapshot::begin`] runs under the exclusive gate: it starts the
//! keyspace snapshot (every shard of every database "not yet captured")
//! and copies what else the file holds at that instant (function
//! libraries, `ctime`, `used-mem`, the change counter). The gate is then
//! released and [`LiveSnapshot::write_to`], on a background thread, walks
//! the databases in order and the shards of each: it captures every shard
//! nobody captured yet and writes the captured shards of the database it
//! is in (`SELECTDB` and `RESIZEDB`, from the start's counts, before the
//! first key of a database; one without keys is left out). A command that locks a shard not yet captured captures it first
//! (the sink below encodes its keys to RDB entry bytes under the shard's
//! lock), so the file holds every shard as it was at the start.
//!
//! Memory: a shard captured by a command waits in DRAM, as RDB bytes, until
//! the writer reaches its database. At worst (commands touch every shard of
//! the later databases before the writer gets there) that is the encoded
//! size of every database but the one being written; shards the writer
//! captures itself are written at once.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use amber_storage::{ShardEntries, SnapshotSink, SnapshotTicket};
use parking_lot::Mutex;

use super::SaveReport;
use crate::rdb::file::{key_entry, FileWriter};
use crate::rdb::write;
use crate::state::ServerState;

/// A shard's keys encoded as RDB key entries.
struct Chunk {
    keys: u64,
    bytes: Vec<u8>,
}

/// What the sink holds until the writer takes it.
#[derive(Default)]
struct Held {
    /// Per database, captured shards not yet written.
    dbs: Vec<Vec<Chunk>>,
    /// Bytes in `dbs`, and the most they ever were.
    bytes: usize,
    peak: usize,
    /// The first key that could not be encoded or read.
    failed: Option<String>,
}

/// The keyspace snapshot's sink: encodes each captured shard.
struct Encoder {
    opts: write::Options,
    held: Mutex<Held>,
}

impl SnapshotSink for Encoder {
    fn capture(&self, db: usize, _shard: usize, entries: &ShardEntries<'_>) {
        if entries.is_empty() {
            return;
        }
        let mut bytes = Vec::new();
        let mut keys = 0u64;
        let mut failed = None;
        let unreadable = entries.for_each(&mut |key, value, deadline| {
            if failed.is_some() {
                return;
            }
            match key_entry(&mut bytes, key, value, deadline, self.opts) {
                Ok(()) => keys += 1,
                Err(e) => failed = Some(e.to_string()),
            }
        });
        if unreadable > 0 && failed.is_none() {
            failed = Some(format!("{unreadable} arena records could not be read"));
        }
        let mut held = self.held.lock();
        if let Some(e) = failed {
            held.failed.get_or_insert(e);
            return;
        }
        if held.dbs.len() <= db {
            held.dbs.resize_with(db + 1, Vec::new);
        }
        held.bytes += bytes.len();
        held.peak = held.peak.max(held.bytes);
        if let Some(d) = held.dbs.get_mut(db) {
            d.push(Chunk { keys, bytes });
        }
    }
}

/// A snapshot started under the gate, to be written by
/// [`LiveSnapshot::write_to`]. Dropping it ends the keyspace snapshot.
pub struct LiveSnapshot {
    srv: Arc<ServerState>,
    ticket: Option<SnapshotTicket>,
    encoder: Arc<Encoder>,
    checksum: bool,
    functions: Vec<Vec<u8>>,
    ctime: u64,
    used_mem: i64,
    /// The `repl-stream-db` to record (see [`super::header`]).
    stream_db: Option<usize>,
    /// The change counter at the start (what the file holds).
    pub dirty: u64,
}

impl LiveSnapshot {
    /// Starts a snapshot of the keyspace and the function libraries. The
    /// caller holds the keyspace's exclusive gate. Fails when a snapshot
    /// already runs.
    pub fn begin(srv: Arc<ServerState>) -> Result<Self, String> {
        let (opts, checksum) = super::options(&srv);
        let encoder = Arc::new(Encoder {
            opts,
            held: Mutex::new(Held::default()),
        });
        let ticket = srv
            .keyspace
            .snapshot_begin(encoder.clone())
            .map_err(|e| e.to_string())?;
        let ks = &srv.keyspace;
        Ok(LiveSnapshot {
            ticket: Some(ticket),
            encoder,
            checksum,
            functions: srv.scripting.functions.codes(),
            ctime: amber_storage::clock::now_ms() / 1000,
            used_mem: ks.tiers.stats.hot_bytes.load(Ordering::Relaxed).max(0),
            dirty: srv.dirty.get(),
            stream_db: super::stream_db(&srv),
            srv: srv.clone(),
        })
    }

    /// The server it snapshots.
    pub fn server(&self) -> &Arc<ServerState> {
        &self.srv
    }

    /// Writes the RDB file's bytes to `out` (see the module docs); meant for
    /// a background thread. Ends the keyspace snapshot once every shard is
    /// captured. Returns what it wrote and `out`.
    pub fn write_to<W: Write>(mut self, out: W) -> std::io::Result<(SaveReport, W)> {
        let srv = self.srv.clone();
        let ks = &srv.keyspace;
        let (opts, _) = super::options(&srv);
        let mut w = FileWriter::new(out, self.checksum, opts)?;
        super::header(
            &mut w,
            self.ctime,
            self.used_mem,
            self.stream_db,
            &self.functions,
        )?;
        let delay = srv.config.get_i64("rdb-key-save-delay");
        let per_db = ks.shards_per_db();
        let mut report = SaveReport::default();
        let ticket = self
            .ticket
            .take()
            .ok_or_else(|| std::io::Error::other("the snapshot already ended"))?;
        let result = (|| -> std::io::Result<()> {
            for db in 0..super::databases(&srv) {
                let Some(counts) = ticket.counts.get(db).copied() else {
                    break;
                };
                // `SELECTDB` before the database's first key: an empty
                // database is left out (the counts are only hints).
                let mut selected = false;
                for shard in 0..per_db {
                    ks.snapshot_capture(&ticket, db, shard);
                    let chunks = {
                        let mut held = self.encoder.held.lock();
                        let chunks = held.dbs.get_mut(db).map(std::mem::take);
                        let n: usize = chunks.iter().flatten().map(|c| c.bytes.len()).sum();
                        held.bytes = held.bytes.saturating_sub(n);
                        chunks.unwrap_or_default()
                    };
                    for c in chunks {
                        if !selected {
                            w.select_db(db as u64, counts.keys, counts.expires)?;
                            selected = true;
                        }
                        w.key_entries(&c.bytes)?;
                        report.keys += c.keys;
                        if delay > 0 {
                            // `rdb-key-save-delay`: microseconds per key
                            // (Redis's test knob).
                            let us = (delay as u64).saturating_mul(c.keys);
                            std::thread::sleep(std::time::Duration::from_micros(us));
                        }
                    }
                }
            }
            Ok(())
        })();
        ks.snapshot_end(ticket);
        result?;
        let held = std::mem::take(&mut *self.encoder.held.lock());
        if let Some(e) = held.failed {
            return Err(std::io::Error::other(e));
        }
        tracing::debug!(
            peak_held_bytes = held.peak,
            "live snapshot: most bytes captured ahead of the writer"
        );
        Ok((report, w.finish()?))
    }
}

impl Drop for LiveSnapshot {
    fn drop(&mut self) {
        if let Some(t) = self.ticket.take() {
            self.srv.keyspace.snapshot_end(t);
        }
    }
}
