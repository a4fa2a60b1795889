//! Redis's `dump.rdb` (`dir`/`dbfilename`) both ways: loaded at start-up
//! into an empty keyspace, written by `SAVE`, `BGSAVE` and `SHUTDOWN
//! SAVE`. The file format is [`crate::rdb::file`]'s; this module walks
//! the keyspace.
//!
//! # Loading
//!
//! At start-up, when the keyspace is empty (no key in any database and no
//! function library: a fresh arena, `persistence none`, or no arena) and
//! the file exists, every entry is written through the normal keyspace
//! path (`Guard::set`), so that with `persistence pmem` it is in the arena
//! afterwards, and the libraries through the functions module. Keys whose
//! deadline has passed are skipped, as a Redis master does. When the
//! keyspace is not empty the arena wins: the file is ignored with a
//! warning. A file that does not load stops start-up with an error naming
//! the file and the problem, and whatever was loaded is removed again.
//!
//! With `persistence pmem`, the arena records the load in its metadata
//! ([`MARKER`]): `loading` while it runs, `loaded` once done. A load cut
//! short by a crash is rolled back and done again at the next start; once
//! `loaded`, the file is never loaded again into that arena, even if every
//! key is deleted later (delete the arena to load a new file).
//!
//! # Saving
//!
//! [`save`] writes the file as Redis's `rdbSave` does: a temporary file in
//! the same directory, fsync, rename, fsync of the directory. The caller
//! holds the keyspace's exclusive gate, so the file is a point-in-time
//! snapshot across every shard and database (`SAVE`, `SHUTDOWN SAVE`).
//! Cold values are read from the arena without being promoted
//! (`Guard::peek`). `BGSAVE`, the `save` points and a replica's full sync
//! use a live snapshot instead ([`live`], [`save_live`], and
//! `crate::replication::transfer`, which streams it to the replica's
//! socket or a temporary file): the same file, of the instant the snapshot
//! started, written while the server keeps serving.

pub mod live;

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use amber_storage::SetExpiry;

use crate::cmd::connection::REDIS_VERSION;
use crate::config::HotConfig;
use crate::rdb::file::{Entry, FileReader, FileWriter};
use crate::rdb::{read, write};
use crate::state::ServerState;

/// The arena metadata recording a load of the file (see the module docs).
pub const MARKER: &[u8] = b"rdb-load";

/// `INFO persistence`'s RDB figures.
#[derive(Debug)]
pub struct RdbStatus {
    /// A `BGSAVE` runs (`rdb_bgsave_in_progress`).
    pub bgsave_in_progress: AtomicBool,
    /// Replicas' full syncs producing their payload: `INFO` shows
    /// `rdb_bgsave_in_progress:1` meanwhile, as Redis does for its RDB
    /// child whatever its target (a socket or a file).
    pub replica_snapshots: AtomicUsize,
    /// The last `BGSAVE` succeeded (`rdb_last_bgsave_status`).
    pub last_bgsave_ok: AtomicBool,
    /// Seconds the last `BGSAVE` took, -1 before the first.
    pub last_bgsave_secs: AtomicI64,
    /// When the running `BGSAVE` started (Unix seconds), 0 when none runs.
    pub bgsave_started: AtomicU64,
    /// Keys the start-up load stored (`rdb_last_load_keys_loaded`).
    pub keys_loaded: AtomicU64,
    /// Keys it skipped because their deadline had passed.
    pub keys_expired: AtomicU64,
    /// A `BGSAVE` waits for its turn (`rdb_bgsave_scheduled`: asked inside
    /// `EXEC`, or with `SCHEDULE` while another snapshot ran).
    pub bgsave_scheduled: AtomicBool,
    /// `SHUTDOWN` already saved what it had to (the exit path then does
    /// not save again).
    pub shutdown_saved: AtomicBool,
}

impl RdbStatus {
    /// Whether Redis would have an RDB child (`CHILD_TYPE_RDB`): a
    /// `BGSAVE`, or a replica's full sync producing its payload (to a
    /// socket or a file; the file's sending comes after the child).
    /// `rdb_bgsave_in_progress` shows it, and `SAVE` and `BGSAVE` answer
    /// `Background save already in progress` meanwhile.
    pub fn child_running(&self) -> bool {
        self.bgsave_in_progress.load(Ordering::Acquire)
            || self.replica_snapshots.load(Ordering::Acquire) > 0
    }
}

impl Default for RdbStatus {
    fn default() -> Self {
        RdbStatus {
            bgsave_in_progress: AtomicBool::new(false),
            replica_snapshots: AtomicUsize::new(0),
            last_bgsave_ok: AtomicBool::new(true),
            last_bgsave_secs: AtomicI64::new(-1),
            bgsave_started: AtomicU64::new(0),
            bgsave_scheduled: AtomicBool::new(false),
            keys_loaded: AtomicU64::new(0),
            keys_expired: AtomicU64::new(0),
            shutdown_saved: AtomicBool::new(false),
        }
    }
}

/// Where the file is: `dbfilename` in `dir`.
pub fn path(srv: &ServerState) -> PathBuf {
    let dir = srv.config.get("dir").unwrap_or_default();
    let name = srv.config.get("dbfilename").unwrap_or_default();
    Path::new(&dir).join(name)
}

/// What a load did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LoadReport {
    /// Keys stored.
    pub keys: u64,
    /// Keys skipped: their deadline had passed.
    pub expired: u64,
    /// Empty collections skipped (as Redis does).
    pub empty: u64,
    /// Function libraries loaded.
    pub functions: u64,
    /// The `repl-stream-db` aux field: the database the replication
    /// stream had selected at the snapshot (written by a replica, whose
    /// own replicas continue its master's stream).
    pub stream_db: Option<usize>,
}

/// Start-up: loads the file into an empty keyspace (see the module docs).
/// `Ok(None)` when there is no file or the keyspace was not empty. The
/// error names the file and the problem; the keyspace is then empty again.
pub fn load_at_startup(srv: &ServerState) -> Result<Option<LoadReport>, String> {
    let file = path(srv);
    let ks = &srv.keyspace;
    let marker = ks.meta(MARKER).ok().flatten();
    if marker.as_deref() == Some(b"loading") {
        tracing::warn!(file = %file.display(), "a previous load of the RDB file was cut short; its keys are removed and the file is loaded again");
        rollback(srv);
    }
    let data = match std::fs::read(&file) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "Fatal error loading the DB {}: {e}",
                file.display()
            ))
        }
    };
    let keys: usize = (0..databases(srv)).map(|db| ks.dbsize(db)).sum();
    let libraries = srv.scripting.functions.library_count();
    if keys > 0 || libraries > 0 {
        tracing::warn!(file = %file.display(), keys, libraries, "the keyspace recovered from the arena is not empty: the arena wins, the RDB file is ignored");
        return Ok(None);
    }
    if marker.as_deref() == Some(b"loaded") {
        tracing::warn!(file = %file.display(), "this arena already loaded the RDB file once (every key was deleted since): the RDB file is ignored; remove the arena to load it again");
        return Ok(None);
    }
    let started = Instant::now();
    let _ = ks.put_meta(MARKER, b"loading");
    match load_bytes(srv, &data) {
        Ok(report) => {
            if let Err(e) = ks.put_meta(MARKER, b"loaded") {
                rollback(srv);
                return Err(format!(
                    "Fatal error loading the DB {}: the arena cannot record the load: {e}",
                    file.display()
                ));
            }
            srv.rdb.keys_loaded.store(report.keys, Ordering::Relaxed);
            srv.rdb
                .keys_expired
                .store(report.expired, Ordering::Relaxed);
            tracing::info!(
                file = %file.display(),
                keys = report.keys,
                expired_keys_skipped = report.expired,
                empty_keys_skipped = report.empty,
                functions = report.functions,
                ms = started.elapsed().as_millis() as u64,
                "DB loaded from the RDB file"
            );
            Ok(Some(report))
        }
        Err(e) => {
            rollback(srv);
            Err(format!(
                "Fatal error loading the DB {}: {e}",
                file.display()
            ))
        }
    }
}

/// Removes every key and library a failed or interrupted load stored.
fn rollback(srv: &ServerState) {
    let _gate = srv.keyspace.exclusive();
    srv.keyspace.flush_all();
    let _ = srv.scripting.functions.flush(&srv.keyspace);
    let _ = srv.keyspace.put_meta(MARKER, b"");
}

fn databases(srv: &ServerState) -> usize {
    srv.config.get_i64("databases").max(1) as usize
}

/// The encoding thresholds loaded values are shaped with.
fn limits(srv: &ServerState) -> read::Limits {
    let hot = &srv.config.hot;
    let hash = amber_storage::types::hash::HashLimits {
        max_entries: HotConfig::count(&hot.hash_max_listpack_entries),
        max_value: HotConfig::count(&hot.hash_max_listpack_value),
    };
    let zset = amber_storage::types::zset::ListpackLimits {
        entries: HotConfig::count(&hot.zset_max_listpack_entries),
        value: HotConfig::count(&hot.zset_max_listpack_value),
    };
    read::Limits {
        hash,
        zset,
        max_intset: HotConfig::count(&hot.set_max_intset_entries),
    }
}

/// Loads every entry of `data`, the bytes of an RDB file, into the
/// keyspace through the keyspace path (`rdbLoadRioWithLoadingCtx`): the
/// start-up load and a replica's full sync (`crate::replica`). A key
/// already present is an error: the caller starts from an empty keyspace.
pub fn load_bytes(srv: &ServerState, data: &[u8]) -> Result<LoadReport, String> {
    let ks = &srv.keyspace;
    let mut reader = FileReader::new(data, limits(srv)).map_err(|e| e.to_string())?;
    let dbs = databases(srv);
    let lfu = srv
        .config
        .get("maxmemory-policy")
        .is_some_and(|p| p.ends_with("lfu"));
    let now = amber_storage::clock::now_ms() as i64;
    let mut report = LoadReport::default();
    let mut db = 0usize;
    let mut codes = Vec::new();
    amber_storage::tier::take_persist_failure();
    while let Some(entry) = reader.next_entry().map_err(|e| e.to_string())? {
        match entry {
            Entry::Aux { name, value } => {
                tracing::debug!(
                    name = %String::from_utf8_lossy(&name),
                    value = %String::from_utf8_lossy(&value),
                    "RDB aux field"
                );
                if name == b"repl-stream-db" {
                    report.stream_db = std::str::from_utf8(&value)
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .filter(|&n: &usize| n < dbs);
                }
            }
            Entry::Function(code) => codes.push(code),
            Entry::SelectDb(n) => {
                db = usize::try_from(n).unwrap_or(usize::MAX);
                if db >= dbs {
                    return Err(format!(
                        "FATAL: Data file was created with a Redis server configured to handle more than {dbs} databases"
                    ));
                }
            }
            Entry::ResizeDb { .. } => {}
            Entry::Key(k) => {
                let Some(value) = k.value else {
                    report.empty += 1;
                    tracing::warn!(key = %String::from_utf8_lossy(&k.key), "rdbLoadObject skipping empty key");
                    continue;
                };
                // A replica keeps them for its master's DEL (Redis loads
                // them when not `iAmMaster()`).
                let keep = amber_storage::lazy_expiry::current()
                    == amber_storage::lazy_expiry::Policy::Keep;
                if k.expire_ms.is_some_and(|at| at < now) && !keep {
                    report.expired += 1;
                    continue;
                }
                let mut g = ks.lock_one(db, &k.key).map_err(|e| e.to_string())?;
                if g.exists(&k.key) {
                    return Err(format!(
                        "RDB has duplicated key '{}' in DB {db}",
                        String::from_utf8_lossy(&k.key)
                    ));
                }
                let expiry = match k.expire_ms {
                    Some(at) => SetExpiry::At(at.max(0) as u64),
                    None => SetExpiry::Persist,
                };
                g.set(&k.key, value, expiry).map_err(|e| e.to_string())?;
                if let (Some(secs), false) = (k.idle_secs, lfu) {
                    g.set_idle_secs(&k.key, secs);
                }
                drop(g);
                if amber_storage::tier::take_persist_failure() {
                    return Err("the arena is full (or its file system failed): the keys do not fit; give it a larger pmem-size".into());
                }
                report.keys += 1;
            }
        }
    }
    if !codes.is_empty() {
        report.functions = srv
            .scripting
            .functions
            .load_codes(ks, &codes)
            .map_err(|e| format!("Failed loading library: {e}"))?;
    }
    // As after Redis's `rdbLoad`: nothing to save yet.
    srv.dirty_at_save.store(srv.dirty.get(), Ordering::Relaxed);
    Ok(report)
}

/// Whether a `save` directive's point is reached (Redis's `serverCron`):
/// some `<seconds> <changes>` pair with at least `changes` changes and
/// more than `seconds` since the last save. `save ""` has no points.
pub fn save_point_due(save: &str, changes: u64, secs_since_save: u64) -> bool {
    let words: Vec<&str> = save.split_whitespace().collect();
    words.chunks(2).any(|p| match p {
        [secs, min] => match (secs.parse::<u64>(), min.parse::<u64>()) {
            (Ok(secs), Ok(min)) => changes >= min && secs_since_save > secs,
            _ => false,
        },
        _ => false,
    })
}

/// What a save did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SaveReport {
    /// Keys written.
    pub keys: u64,
}

/// Writes the whole keyspace and the function libraries to the file
/// (`rdbSave`). The caller holds the keyspace's exclusive gate (see the
/// module docs). The error is for the log.
pub fn save(srv: &ServerState) -> Result<SaveReport, String> {
    save_with(srv, |out| write_to(srv, out))
}

/// The file of `SAVE` and `BGSAVE`: `produce` writes its bytes to a
/// temporary file in the same directory; then fsync, rename, fsync of the
/// directory (`rdbSave`).
fn save_with(
    srv: &ServerState,
    produce: impl FnOnce(
        BufWriter<std::fs::File>,
    ) -> std::io::Result<(SaveReport, BufWriter<std::fs::File>)>,
) -> Result<SaveReport, String> {
    let file = path(srv);
    let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let tmp = dir.join(format!("temp-{}.rdb", std::process::id()));
    let started = Instant::now();
    let result = write_file(&tmp, produce).and_then(|report| {
        std::fs::rename(&tmp, &file)
            .map_err(|e| format!("cannot rename {} to {}: {e}", tmp.display(), file.display()))?;
        // The rename itself is durable once the directory is.
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("cannot fsync the directory {}: {e}", dir.display()))?;
        Ok(report)
    });
    match &result {
        Ok(r) => tracing::info!(
            file = %file.display(),
            keys = r.keys,
            ms = started.elapsed().as_millis() as u64,
            "DB saved on disk"
        ),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(file = %file.display(), error = %e, "Failed saving the DB");
        }
    }
    result
}

/// `BGSAVE`'s file from a snapshot started under the gate (see
/// [`live`]), then a save point; runs without the gate, on the background
/// thread. The error is for the log.
pub fn save_live(snap: live::LiveSnapshot) -> Result<SaveReport, String> {
    let srv = snap.server().clone();
    let dirty = snap.dirty;
    let report = save_with(&srv, |out| snap.write_to(out))?;
    srv.save_point()?;
    srv.dirty_at_save.store(dirty, Ordering::Relaxed);
    Ok(report)
}

/// [`save`], then a save point in the arena (which `LASTSAVE` and
/// `rdb_saves` count). The caller holds the exclusive gate.
pub fn save_and_sync(srv: &ServerState) -> Result<SaveReport, String> {
    // The changes made before the save started are in the file.
    let dirty = srv.dirty.get();
    let report = save(srv)?;
    srv.save_point()?;
    srv.dirty_at_save.store(dirty, Ordering::Relaxed);
    Ok(report)
}

fn write_file(
    tmp: &Path,
    produce: impl FnOnce(
        BufWriter<std::fs::File>,
    ) -> std::io::Result<(SaveReport, BufWriter<std::fs::File>)>,
) -> Result<SaveReport, String> {
    let io = |e: std::io::Error| format!("cannot write {}: {e}", tmp.display());
    let out = std::fs::File::create(tmp).map_err(io)?;
    let (report, out) = produce(BufWriter::with_capacity(1 << 20, out)).map_err(io)?;
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    Ok(report)
}

/// How objects are written (`rdbcompression`, `list-max-listpack-size`)
/// and whether the file has a checksum (`rdbchecksum`).
fn options(srv: &ServerState) -> (write::Options, bool) {
    let opts = write::Options {
        compress: srv.config.get_bool("rdbcompression"),
        list_fill: srv.config.get_i64("list-max-listpack-size"),
    };
    (opts, srv.config.get_bool("rdbchecksum"))
}

/// The `repl-stream-db` a snapshot records: on a replica, the database
/// its master's stream has selected (Redis's `rdbPopulateSaveInfo`), so
/// its own replicas, which continue that stream verbatim, apply it there.
fn stream_db(srv: &ServerState) -> Option<usize> {
    srv.replication
        .is_replica()
        .then(|| srv.replication.stream_db.load(Ordering::Relaxed))
}

/// The aux fields (`ctime` in Unix seconds, `used-mem` in bytes, the
/// replication stream's database) and the function libraries, which open
/// every file.
fn header<W: std::io::Write>(
    w: &mut FileWriter<W>,
    ctime: u64,
    used_mem: i64,
    stream_db: Option<usize>,
    functions: &[Vec<u8>],
) -> std::io::Result<()> {
    w.aux(b"redis-ver", REDIS_VERSION.as_bytes())?;
    w.aux(b"redis-bits", b"64")?;
    w.aux(b"ctime", ctime.to_string().as_bytes())?;
    w.aux(b"used-mem", used_mem.to_string().as_bytes())?;
    if let Some(db) = stream_db {
        w.aux(b"repl-stream-db", db.to_string().as_bytes())?;
    }
    w.aux(b"aof-base", b"0")?;
    for code in functions {
        w.function(code)?;
    }
    Ok(())
}

/// Writes the RDB file's bytes to `out`: aux fields, libraries, every
/// database (see the module docs). Returns what it wrote and `out`.
fn write_to<W: std::io::Write>(srv: &ServerState, out: W) -> std::io::Result<(SaveReport, W)> {
    let ks = &srv.keyspace;
    let (opts, checksum) = options(srv);
    let mut w = FileWriter::new(out, checksum, opts)?;
    let ctime = amber_storage::clock::now_ms() / 1000;
    let used = ks.tiers.stats.hot_bytes.load(Ordering::Relaxed).max(0);
    header(
        &mut w,
        ctime,
        used,
        stream_db(srv),
        &srv.scripting.functions.codes(),
    )?;
    // `rdb-key-save-delay`: microseconds per key (Redis's test knob).
    let delay = srv.config.get_i64("rdb-key-save-delay");
    let mut report = SaveReport::default();
    for db in 0..databases(srv) {
        let info = ks.db_info(db);
        if info.keys == 0 {
            continue;
        }
        w.select_db(db as u64, info.keys as u64, info.expires as u64)?;
        let mut cursor = 0;
        loop {
            // Under the exclusive gate nothing changes between steps: each
            // key comes once.
            let (next, keys) = ks.scan(db, cursor, 1024, &|_, _| true);
            for key in keys {
                let mut g = ks
                    .lock_one(db, &key)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                let deadline = g.expire_at(&key).flatten();
                // Without touching or promoting a cold value.
                let Some(value) = g.peek(&key) else { continue };
                w.key(&key, value, deadline)?;
                report.keys += 1;
                drop(g);
                if delay > 0 {
                    std::thread::sleep(std::time::Duration::from_micros(delay as u64));
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    Ok((report, w.finish()?))
}

#[cfg(test)]
mod save_point_tests {
    use super::save_point_due;

    #[test]
    fn save_points_need_both_changes_and_time() {
        let save = "3600 1 300 100 60 10000";
        assert!(!save_point_due(save, 0, 100_000));
        assert!(!save_point_due(save, 1, 3600));
        assert!(save_point_due(save, 1, 3601));
        assert!(save_point_due(save, 100, 301));
        assert!(!save_point_due(save, 99, 301));
        assert!(save_point_due(save, 10_000, 61));
        assert!(!save_point_due("", 1_000_000, 1_000_000));
        assert!(save_point_due("1 1", 1, 2));
    }
}
