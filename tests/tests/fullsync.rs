//! Full resynchronization with bounded memory, both ways (Redis 7.0's
//! forms): as a master, Amber streams the diskless `$EOF:<mark>` payload
//! to a replica that announced `capa eof` (after `repl-diskless-sync-delay`
//! seconds), or sends `$<len>` from a temporary file; as a replica, Amber
//! receives the payload into a temporary file in `dir` and loads it from
//! there. Checked against redis-server 7.0 replicas and masters, with a
//! hand-made replica for the exact bytes, and with the resident memory of
//! both processes during the sync of a dataset far larger than the
//! buffers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amber_tests::replication::{assert_same_data, dataset, field, q, wait_synced, wait_until};
use amber_tests::{reply, Kind, RespClient, ServerProcess};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Runs a command that must not fail.
fn ok(c: &mut RespClient, args: &[&str]) {
    let r = c.cmd(args);
    assert!(!r.starts_with(b"-"), "{args:?}: {}", reply::show(&r));
}

/// Keys of every type in two databases, some with deadlines, plus `n`
/// plain strings.
fn fill(c: &mut RespClient, n: usize) {
    for db in ["0", "3"] {
        ok(c, &["SELECT", db]);
        ok(c, &["SET", "str", "hello"]);
        ok(c, &["SET", "ttl", "v", "EX", "500"]);
        ok(c, &["RPUSH", "list", "a", "b", "c"]);
        ok(c, &["HSET", "hash", "f1", "v1", "f2", "2"]);
        ok(c, &["SADD", "set", "x", "y", "z"]);
        ok(c, &["ZADD", "zset", "1", "a", "2.5", "b"]);
        ok(c, &["XADD", "stream", "1-1", "f", "v"]);
    }
    ok(c, &["SELECT", "0"]);
    let mut pipe = Vec::new();
    for i in 0..n {
        pipe.extend(reply::encode(&[
            "SET".to_string(),
            format!("key:{i}"),
            format!("value-{i}"),
        ]));
    }
    pipelined(c, &pipe, n);
}

/// Sends `bytes` (`n` commands) at once and checks every reply.
fn pipelined(c: &mut RespClient, bytes: &[u8], n: usize) {
    c.send_raw(bytes).expect("send");
    for _ in 0..n {
        let r = c.read_reply().expect("reply");
        assert!(!r.starts_with(b"-"), "{}", reply::show(&r));
    }
}

/// The form a full sync's payload came in.
#[derive(Debug, PartialEq, Eq)]
enum Form {
    Eof,
    Len,
}

/// A replica by hand: the handshake, `PSYNC ? -1`, then the raw bytes.
struct RawReplica {
    s: TcpStream,
    buf: Vec<u8>,
    /// Keep-alive newlines read so far.
    newlines: usize,
}

impl RawReplica {
    /// Connects and asks for a full sync, announcing `capa eof` or not.
    fn psync(port: u16, capa_eof: bool) -> RawReplica {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut r = RawReplica {
            s,
            buf: Vec::new(),
            newlines: 0,
        };
        r.send(&["REPLCONF", "listening-port", "1"]);
        assert_eq!(r.line(), "+OK");
        if capa_eof {
            r.send(&["REPLCONF", "capa", "eof", "capa", "psync2"]);
            assert_eq!(r.line(), "+OK");
        }
        r.send(&["PSYNC", "?", "-1"]);
        r
    }

    fn send(&mut self, args: &[&str]) {
        self.s.write_all(&reply::encode(args)).expect("send");
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.s.read(&mut chunk).expect("read from the master");
        assert!(n > 0, "the master closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// The next line that is not a keep-alive newline, without CRLF.
    fn line(&mut self) -> String {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = self.buf.drain(..=pos).collect();
                let text = String::from_utf8_lossy(&raw).trim_end().to_string();
                if text.is_empty() {
                    self.newlines += 1;
                    continue;
                }
                return text;
            }
            self.fill();
        }
    }

    /// The payload after `+FULLRESYNC`: its form and the RDB bytes.
    fn payload(&mut self) -> (Form, Vec<u8>) {
        let header = self.line();
        if let Some(mark) = header.strip_prefix("$EOF:") {
            assert_eq!(mark.len(), 40, "EOF mark of 40 bytes: {header}");
            let mark = mark.as_bytes().to_vec();
            // Nothing follows the mark before this replica acknowledges.
            while !self.buf.ends_with(&mark) {
                self.fill();
            }
            let mut rdb = std::mem::take(&mut self.buf);
            rdb.truncate(rdb.len() - 40);
            return (Form::Eof, rdb);
        }
        let len: usize = header
            .strip_prefix('$')
            .and_then(|l| l.parse().ok())
            .unwrap_or_else(|| panic!("bad payload header {header:?}"));
        while self.buf.len() < len {
            self.fill();
        }
        (Form::Len, self.buf.drain(..len).collect())
    }
}

/// An RDB file's bytes: the magic, and the `EOF` opcode before the
/// 8-byte checksum.
fn assert_rdb(rdb: &[u8]) {
    assert!(rdb.starts_with(b"REDIS00"), "RDB magic");
    assert_eq!(rdb.get(rdb.len() - 9), Some(&0xff), "EOF opcode at the end");
}

/// Files whose name starts with `prefix` in `dir`.
fn temp_files(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix) && n.ends_with(".rdb"))
        .collect()
}

#[test]
fn redis_replica_and_hand_made_replicas_get_the_payload_in_both_forms() {
    for diskless in ["yes", "no"] {
        let amber = ServerProcess::amber(&["--repl-diskless-sync", diskless]);
        let mut m = amber.client();
        fill(&mut m, 500);
        // With `capa eof`, the form follows `repl-diskless-sync`.
        let mut raw = RawReplica::psync(amber.port, true);
        assert!(raw.line().starts_with("+FULLRESYNC "));
        let (form, rdb) = raw.payload();
        let expected = if diskless == "yes" {
            Form::Eof
        } else {
            Form::Len
        };
        assert_eq!(form, expected, "repl-diskless-sync {diskless}");
        assert_rdb(&rdb);
        drop(raw);
        // Without it, always `$<len>`.
        let mut raw = RawReplica::psync(amber.port, false);
        assert!(raw.line().starts_with("+FULLRESYNC "));
        let (form, rdb) = raw.payload();
        assert_eq!(form, Form::Len);
        assert_rdb(&rdb);
        drop(raw);
        // A real replica (it announces `capa eof`) gets every key.
        let port = amber.port.to_string();
        let redis = ServerProcess::redis(&["--replicaof", "127.0.0.1", &port]);
        let mut r = redis.client();
        wait_synced(&mut m, &mut r);
        assert_same_data(&dataset(&mut m), &dataset(&mut r));
        // The stream follows the payload.
        ok(&mut m, &["SET", "after", "sync"]);
        wait_synced(&mut m, &mut r);
        assert_eq!(q(&mut r, &["GET", "after"]).text(), "sync");
        assert_eq!(
            temp_files(amber.dir(), "temp-"),
            Vec::<String>::new(),
            "the disk-based sync's file is removed"
        );
    }
}

#[test]
fn amber_replica_receives_into_a_temporary_file_from_amber_and_redis() {
    for (kind, diskless) in [
        (Kind::Amber, "yes"),
        (Kind::Amber, "no"),
        (Kind::Redis, "yes"),
        (Kind::Redis, "no"),
    ] {
        let what = format!("{} master, repl-diskless-sync {diskless}", kind.name());
        // 2000 keys at 0.5 ms each: the payload takes a second to produce,
        // long enough to see the replica's file while it arrives.
        let master = ServerProcess::start(
            kind,
            &[
                "--repl-diskless-sync",
                diskless,
                "--rdb-key-save-delay",
                "500",
            ],
        );
        let mut m = master.client();
        fill(&mut m, 2000);
        let port = master.port.to_string();
        let amber = ServerProcess::amber(&["--replicaof", "127.0.0.1", &port]);
        wait_until(
            &format!("{what}: the replica's temporary payload file"),
            Duration::from_secs(20),
            || !temp_files(amber.dir(), "temp-").is_empty(),
        );
        let mut r = amber.client();
        wait_synced(&mut m, &mut r);
        assert_same_data(&dataset(&mut m), &dataset(&mut r));
        assert_eq!(
            temp_files(amber.dir(), "temp-"),
            Vec::<String>::new(),
            "{what}: the payload file is removed after the load"
        );
        ok(&mut m, &["SET", "after", "sync"]);
        wait_synced(&mut m, &mut r);
        assert_eq!(q(&mut r, &["GET", "after"]).text(), "sync", "{what}");
    }
}

#[test]
fn diskless_sync_waits_the_delay_unless_enough_replicas_wait() {
    // The directives answer as Redis's do.
    let pair = amber_tests::Pair::start(&[], &[]);
    let (mut redis, mut amber) = pair.clients();
    // (One name at a time: a pattern's order is Redis's hash table's.)
    for args in [
        vec!["CONFIG", "GET", "repl-diskless-sync"],
        vec!["CONFIG", "GET", "repl-diskless-sync-delay"],
        vec!["CONFIG", "SET", "repl-diskless-sync-delay", "-1"],
        vec!["CONFIG", "SET", "repl-diskless-sync", "maybe"],
        vec!["CONFIG", "SET", "repl-diskless-sync-max-replicas", "2"],
        vec!["CONFIG", "GET", "repl-diskless-sync-max-replicas"],
    ] {
        amber_tests::assert_same(
            &mut redis,
            &mut amber,
            &args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>(),
        );
    }
    drop(pair);

    let amber = ServerProcess::amber(&["--repl-diskless-sync-delay", "2"]);
    let mut m = amber.client();
    fill(&mut m, 10);
    let started = Instant::now();
    let mut raw = RawReplica::psync(amber.port, true);
    // Meanwhile the replica is listed, waiting; no snapshot runs yet.
    wait_until(
        "the waiting replica is listed",
        Duration::from_secs(5),
        || field(&mut m, "replication", "connected_slaves") == "1",
    );
    let slave0 = field(&mut m, "replication", "slave0");
    assert!(slave0.contains("state=wait_bgsave"), "{slave0}");
    assert_eq!(field(&mut m, "persistence", "rdb_bgsave_in_progress"), "0");
    assert!(raw.line().starts_with("+FULLRESYNC "));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2),
        "+FULLRESYNC after {waited:?}, before repl-diskless-sync-delay"
    );
    assert!(raw.newlines >= 1, "keep-alive newlines while waiting");
    let (form, rdb) = raw.payload();
    assert_eq!(form, Form::Eof);
    assert_rdb(&rdb);
    drop(raw);

    // Enough replicas waiting start the transfer before the delay ends.
    ok(&mut m, &["CONFIG", "SET", "repl-diskless-sync-delay", "60"]);
    ok(
        &mut m,
        &["CONFIG", "SET", "repl-diskless-sync-max-replicas", "1"],
    );
    let started = Instant::now();
    let mut raw = RawReplica::psync(amber.port, true);
    assert!(raw.line().starts_with("+FULLRESYNC "));
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(raw.payload().0, Form::Eof);
}

#[test]
fn a_replica_leaving_mid_transfer_stops_the_producer() {
    for diskless in ["yes", "no"] {
        // 2000 keys at 5 ms each: ten seconds to produce the whole payload.
        let amber = ServerProcess::amber(&[
            "--rdb-key-save-delay",
            "5000",
            "--repl-diskless-sync",
            diskless,
        ]);
        let mut m = amber.client();
        fill(&mut m, 2000);
        let mut raw = RawReplica::psync(amber.port, true);
        assert!(raw.line().starts_with("+FULLRESYNC "));
        if diskless == "yes" {
            // Streamed as produced.
            assert!(raw.line().starts_with("$EOF:"));
        } else {
            // The file is being written.
            wait_until("the sync's file", Duration::from_secs(10), || {
                !temp_files(amber.dir(), "temp-sync-").is_empty()
            });
        }
        // The payload is being produced.
        assert_eq!(field(&mut m, "persistence", "rdb_bgsave_in_progress"), "1");
        let slave0 = field(&mut m, "replication", "slave0");
        assert!(slave0.contains("state=wait_bgsave"), "{slave0}");
        // ROLE lists only replicas past their full sync, as Redis's does.
        let role = q(&mut m, &["ROLE"]);
        assert_eq!(
            role.items.get(2).map(|r| r.items.len()),
            Some(0),
            "{}",
            reply::show(&role.raw)
        );
        let left = Instant::now();
        drop(raw);
        wait_until(
            &format!("repl-diskless-sync {diskless}: the producer stops once the replica left"),
            Duration::from_secs(5),
            || {
                field(&mut m, "persistence", "rdb_bgsave_in_progress") == "0"
                    && field(&mut m, "replication", "connected_slaves") == "0"
            },
        );
        assert_eq!(temp_files(amber.dir(), "temp-sync-"), Vec::<String>::new());
        // The one live snapshot is free again, long before the payload
        // would have been complete.
        assert_eq!(q(&mut m, &["BGSAVE"]).text(), "Background saving started");
        assert!(left.elapsed() < Duration::from_secs(8));
        assert_eq!(q(&mut m, &["PING"]).text(), "PONG");
        let mut other = amber.client();
        assert_eq!(q(&mut other, &["DBSIZE"]).integer(), Some(2000 + 7));
    }
}

/// `VmRSS` or `RssAnon` of a process, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| {
            v.trim_start_matches(':')
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// `mib` MiB of incompressible values on an Amber master, then a full sync
/// to an Amber replica whose values go to its arena (`dram-budget 0`):
/// neither process's memory may grow by anything near the payload.
fn full_sync_memory_stays_bounded(mib: usize, diskless: &str) {
    const VALUE: usize = 64 * 1024;
    let keys = mib * 1024 * 1024 / VALUE;
    let master = ServerProcess::amber(&[
        "--repl-diskless-sync",
        diskless,
        "--rdbcompression",
        "no",
        "--pmem-size",
        "2gb",
    ]);
    let mut m = master.client();
    let mut rng = StdRng::seed_from_u64(7);
    for batch in 0..keys.div_ceil(64) {
        let mut pipe = Vec::new();
        let n = (keys - batch * 64).min(64);
        for i in 0..n {
            let value: Vec<u8> = (0..VALUE).map(|_| rng.gen()).collect();
            let key = format!("big:{}", batch * 64 + i);
            pipe.extend(reply::encode(&[b"SET".as_slice(), key.as_bytes(), &value]));
        }
        pipelined(&mut m, &pipe, n);
    }
    let replica_dir = tempfile::tempdir().expect("tempdir");
    let arena = replica_dir.path().join("replica.arena");
    let arena = arena.to_str().expect("utf-8 path");
    let replica = ServerProcess::amber(&[
        "--dram-budget",
        "0",
        "--pmem-path",
        arena,
        "--pmem-size",
        "2gb",
    ]);
    // Baselines: both loaded and started, nothing synced yet.
    let (mpid, rpid) = (master.pid(), replica.pid());
    let m0 = status_kib(mpid, "VmRSS");
    let r0 = status_kib(rpid, "RssAnon");
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let (mut mp, mut rp) = (0, 0);
            while !done.load(Ordering::Relaxed) {
                mp = mp.max(status_kib(mpid, "VmRSS"));
                rp = rp.max(status_kib(rpid, "RssAnon"));
                std::thread::sleep(Duration::from_millis(5));
            }
            (mp, rp)
        })
    };
    let mut r = replica.client();
    let port = master.port.to_string();
    ok(&mut r, &["REPLICAOF", "127.0.0.1", &port]);
    wait_synced(&mut m, &mut r);
    done.store(true, Ordering::Relaxed);
    let (mp, rp) = sampler.join().expect("sampler");
    assert_eq!(q(&mut r, &["DBSIZE"]).integer(), Some(keys as i64));
    let payload_kib = (mib * 1024) as u64;
    let (mg, rg) = (mp.saturating_sub(m0), rp.saturating_sub(r0));
    eprintln!("payload {payload_kib} KiB; master VmRSS +{mg} KiB, replica RssAnon +{rg} KiB");
    // The buffers are a few MiB; a payload held whole would be all of it.
    assert!(
        mg < payload_kib / 3 && rg < payload_kib / 3,
        "for a {payload_kib} KiB payload the master grew by {mg} KiB, the replica by {rg} KiB"
    );
}

/// About 200 MB (nine seconds alone on a 2-core VM in a debug build,
/// most of it loading the master).
#[test]
fn full_sync_memory_stays_bounded_diskless() {
    full_sync_memory_stays_bounded(200, "yes");
}

#[test]
fn full_sync_memory_stays_bounded_from_disk() {
    full_sync_memory_stays_bounded(96, "no");
}

#[test]
fn a_transfer_cut_short_leaves_no_file_on_the_replica() {
    // 2000 keys at 5 ms each: ten seconds to produce the whole payload.
    let master = ServerProcess::amber(&["--rdb-key-save-delay", "5000"]);
    let mut m = master.client();
    fill(&mut m, 2000);
    let port = master.port.to_string();
    let amber = ServerProcess::amber(&["--replicaof", "127.0.0.1", &port]);
    wait_until(
        "the replica's temporary payload file",
        Duration::from_secs(20),
        || !temp_files(amber.dir(), "temp-").is_empty(),
    );
    // The master goes away mid-transfer.
    drop(m);
    drop(master);
    let mut r = amber.client();
    wait_until(
        "the replica removes its file once the link fails",
        Duration::from_secs(10),
        || temp_files(amber.dir(), "temp-").is_empty(),
    );
    assert_eq!(field(&mut r, "replication", "master_link_status"), "down");
    assert_eq!(q(&mut r, &["PING"]).text(), "PONG");
}

#[test]
fn a_replica_that_stops_reading_is_dropped_after_repl_timeout() {
    // 32 MiB of incompressible values: more than the payload window, the
    // connection's buffer and both sockets' buffers together.
    let amber = ServerProcess::amber(&["--repl-timeout", "1", "--rdbcompression", "no"]);
    let mut m = amber.client();
    let mut rng = StdRng::seed_from_u64(3);
    for batch in 0..8 {
        let mut pipe = Vec::new();
        for i in 0..64 {
            let value: Vec<u8> = (0..64 * 1024).map(|_| rng.gen()).collect();
            let key = format!("big:{}", batch * 64 + i);
            pipe.extend(reply::encode(&[b"SET".as_slice(), key.as_bytes(), &value]));
        }
        pipelined(&mut m, &pipe, 64);
    }
    // Asks for the payload, then reads nothing.
    let raw = RawReplica::psync(amber.port, true);
    wait_until(
        "the producer gives up on the replica",
        Duration::from_secs(15),
        || {
            field(&mut m, "persistence", "rdb_bgsave_in_progress") == "0"
                && field(&mut m, "replication", "connected_slaves") == "0"
        },
    );
    assert_eq!(q(&mut m, &["BGSAVE"]).text(), "Background saving started");
    // Its connection ends while it still reads nothing (not stuck in a
    // write)...
    wait_until(
        "the master closes the replica's connection",
        Duration::from_secs(10),
        || field(&mut m, "clients", "connected_clients") == "1",
    );
    // ...and reading on reaches the end.
    let mut s = raw.s;
    s.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let mut sink = [0u8; 64 * 1024];
    loop {
        match s.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the master kept the connection open: {e}"),
        }
    }
}
