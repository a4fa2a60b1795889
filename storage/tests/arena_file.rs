//! The arena on a real file: reopen and recover, start-up errors for bad
//! files, arena full, group commit, the everysec flusher, concurrent lanes,
//! compaction, `persistence none`.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use amber_storage::arena::{ArenaConfig, ArenaSync, Persistence};
use amber_storage::{Addr, Arena, Error, RecordIn};
use parking_lot::Mutex;

const SEG: u64 = 64 << 10;
const SIZE: u64 = 4096 + 16 * SEG;

fn config(path: &Path, sync: ArenaSync) -> ArenaConfig {
    let mut c = ArenaConfig::new(path, SIZE);
    c.segment_size = SEG;
    c.sync = sync;
    c.lanes = 4;
    c
}

fn put(
    arena: &Arena,
    writer: usize,
    key: &str,
    value: &str,
    expire_at: u64,
) -> (Addr, amber_storage::Ticket) {
    arena
        .append(
            writer,
            RecordIn {
                db: 0,
                kind: 2,
                key: key.as_bytes(),
                value: &[value.as_bytes()],
                expire_at,
            },
        )
        .expect("append")
}

fn recover_all(arena: &Arena) -> HashMap<Vec<u8>, (Addr, u64)> {
    let out = Mutex::new(HashMap::new());
    arena
        .recover(|r| {
            out.lock().insert(r.key.to_vec(), (r.addr, r.expire_at));
        })
        .expect("recover");
    out.into_inner()
}

#[test]
fn reopen_recovers_values_ttls_and_deletes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sub/dir/amber.arena");
    let far = amber_storage::clock::now_ms() + 3_600_000;
    {
        let arena = Arena::open(&config(&path, ArenaSync::Always)).expect("open fresh");
        assert!(path.exists(), "file and parent dirs created");
        let st = recover_all(&arena);
        assert!(st.is_empty());
        let (a1, _) = put(&arena, 0, "k1", "v1", 0);
        let (_, _) = put(&arena, 1, "k2", "v2", far);
        let (a3, t3) = put(&arena, 2, "k1", "v1-new", 0);
        arena.release(a1).expect("release");
        let (a4, _) = put(&arena, 3, "gone", "x", 0);
        arena.delete(0, a4).expect("delete");
        arena.wait_durable(t3).expect("durable");
        assert!(arena.is_durable(t3));
        assert_eq!(arena.read(a3).expect("read").value, b"v1-new");
        let s = arena.stats();
        assert!(!s.clean_shutdown_at_open);
        assert_eq!(s.medium, "msync", "no DAX on this machine");
        arena.close().expect("close");
    }
    let arena = Arena::open(&config(&path, ArenaSync::Always)).expect("reopen");
    assert!(arena.stats().clean_shutdown_at_open);
    let found = recover_all(&arena);
    assert_eq!(found.len(), 2, "{found:?}");
    let (a, exp) = found[&b"k1"[..].to_vec()];
    assert_eq!(arena.read(a).expect("read").value, b"v1-new");
    assert_eq!(exp, 0);
    let (a, exp) = found[&b"k2"[..].to_vec()];
    assert_eq!(arena.read(a).expect("read").value, b"v2");
    assert_eq!(exp, far);
    assert!(!found.contains_key(&b"gone"[..]));
    // Live bytes were rebuilt.
    assert!(arena.stats().live_bytes > 0);
}

#[test]
fn appends_before_recover_are_refused_on_an_existing_arena() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a");
    {
        let arena = Arena::open(&config(&path, ArenaSync::No)).expect("open");
        recover_all(&arena);
        put(&arena, 0, "k", "v", 0);
    }
    let arena = Arena::open(&config(&path, ArenaSync::No)).expect("reopen");
    let err = arena
        .append(
            0,
            RecordIn {
                db: 0,
                kind: 0,
                key: b"x",
                value: &[],
                expire_at: 0,
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::BadArena(_)), "{err}");
    recover_all(&arena);
    assert!(arena.recover(|_| {}).is_err(), "recover runs once");
    put(&arena, 0, "x", "y", 0);
}

fn corrupt(path: &Path, at: u64, bytes: &[u8]) {
    let mut f = OpenOptions::new().write(true).open(path).expect("open");
    f.seek(SeekFrom::Start(at)).expect("seek");
    f.write_all(bytes).expect("write");
}

fn make_arena(path: &Path) {
    let arena = Arena::open(&config(path, ArenaSync::No)).expect("open");
    recover_all(&arena);
    put(&arena, 0, "k", "v", 0);
}

fn open_err(path: &Path, cfg: Option<ArenaConfig>) -> String {
    let cfg = cfg.unwrap_or_else(|| config(path, ArenaSync::No));
    Arena::open(&cfg).expect_err("must refuse").to_string()
}

#[test]
fn bad_files_are_clear_errors_never_wiped() {
    let dir = tempfile::tempdir().expect("tempdir");

    let p = dir.path().join("magic");
    make_arena(&p);
    corrupt(&p, 0, b"NOTAMBER");
    let e = open_err(&p, None);
    assert!(e.contains("magic"), "{e}");
    // Still refused: nothing was overwritten.
    assert!(open_err(&p, None).contains("magic"));

    let p = dir.path().join("version");
    make_arena(&p);
    corrupt(&p, 8, &7u32.to_le_bytes());
    let e = open_err(&p, None);
    assert!(e.contains("version 7"), "{e}");

    let p = dir.path().join("crc");
    make_arena(&p);
    corrupt(&p, 30, &[0xff]);
    let e = open_err(&p, None);
    assert!(e.contains("checksum"), "{e}");

    let p = dir.path().join("truncated");
    make_arena(&p);
    OpenOptions::new()
        .write(true)
        .open(&p)
        .expect("open")
        .set_len(SIZE / 2)
        .expect("truncate");
    let e = open_err(&p, None);
    assert!(e.contains("truncated"), "{e}");

    let p = dir.path().join("size");
    make_arena(&p);
    let mut bigger = config(&p, ArenaSync::No);
    bigger.size = SIZE + SEG;
    let e = open_err(&p, Some(bigger));
    assert!(e.contains("pmem-size"), "{e}");

    let p = dir.path().join("not-an-arena");
    std::fs::write(&p, vec![7u8; SIZE as usize]).expect("write");
    let e = open_err(&p, None);
    assert!(e.contains("magic"), "{e}");

    // Two servers on one arena.
    let p = dir.path().join("locked");
    let a = Arena::open(&config(&p, ArenaSync::No)).expect("open");
    let e = open_err(&p, None);
    assert!(e.contains("in use"), "{e}");
    drop(a);
    Arena::open(&config(&p, ArenaSync::No)).expect("lock released on drop");
}

#[test]
fn a_corrupt_record_is_reported_and_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("rec");
    let (a1, a2) = {
        let arena = Arena::open(&config(&p, ArenaSync::Always)).expect("open");
        recover_all(&arena);
        let (a1, _) = put(&arena, 0, "first", "value-1", 0);
        let (a2, t) = put(&arena, 0, "second", "value-2", 0);
        arena.wait_durable(t).expect("durable");
        (a1, a2)
    };
    // Flip a value byte of the second record.
    corrupt(&p, a2.get() + 40 + 6 + 2, b"X");
    let arena = Arena::open(&config(&p, ArenaSync::Always)).expect("open");
    let found = recover_all(&arena);
    assert!(found.contains_key(&b"first"[..]));
    assert!(
        !found.contains_key(&b"second"[..]),
        "a corrupt record never counts"
    );
    assert!(matches!(arena.read(a2), Err(Error::Corrupt(_))));
    assert_eq!(arena.read(a1).expect("read").value, b"value-1");
    assert!(matches!(arena.read(Addr::new(3)), Err(Error::Corrupt(_))));
}

#[test]
fn arena_full_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("full");
    let value = vec![b'v'; 3000];
    let mut written = Vec::new();
    {
        let arena = Arena::open(&config(&p, ArenaSync::No)).expect("open");
        recover_all(&arena);
        let err = loop {
            let key = format!("key{}", written.len());
            match arena.append(
                written.len(),
                RecordIn {
                    db: 1,
                    kind: 0,
                    key: key.as_bytes(),
                    value: &[&value],
                    expire_at: 0,
                },
            ) {
                Ok((addr, _)) => written.push((key, addr)),
                Err(e) => break e,
            }
        };
        assert_eq!(err, Error::ArenaFull);
        // Larger than a segment: needs a run of free segments, there is none.
        let big = vec![0u8; SEG as usize];
        let e = arena.append(
            0,
            RecordIn {
                db: 0,
                kind: 0,
                key: b"h",
                value: &[&big],
                expire_at: 0,
            },
        );
        assert_eq!(e.unwrap_err(), Error::ArenaFull);
        // Larger than the whole arena.
        let huge = vec![0u8; SIZE as usize];
        let e = arena.append(
            0,
            RecordIn {
                db: 0,
                kind: 0,
                key: b"h",
                value: &[&huge],
                expire_at: 0,
            },
        );
        assert_eq!(e.unwrap_err(), Error::RecordTooLarge);
        for (key, addr) in &written {
            let r = arena.read(*addr).expect("read after full");
            assert_eq!(r.key, key.as_bytes());
        }
        let s = arena.stats();
        assert!(s.segments_free >= 1, "a reserve is kept for compaction");
        arena.sync().expect("sync");
    }
    let arena = Arena::open(&config(&p, ArenaSync::No)).expect("reopen");
    let found = recover_all(&arena);
    assert_eq!(found.len(), written.len());
}

#[test]
fn group_commit_wakes_every_waiter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("gc");
    let arena = Arc::new(Arena::open(&config(&p, ArenaSync::Always)).expect("open"));
    recover_all(&arena);
    let threads = 8;
    let per = 200;
    std::thread::scope(|s| {
        for t in 0..threads {
            let arena = Arc::clone(&arena);
            s.spawn(move || {
                for i in 0..per {
                    let (addr, ticket) = put(&arena, t, &format!("t{t}-{i}"), "value", 0);
                    arena.wait_durable(ticket).expect("durable");
                    assert!(arena.is_durable(ticket));
                    assert_eq!(arena.read(addr).expect("read").value, b"value");
                }
            });
        }
    });
    let s = arena.stats();
    let writes = (threads * per) as u64;
    assert!(s.persist_calls > 0);
    // Group commit: fewer msync batches than writes (followers ride along).
    eprintln!(
        "group commit: {writes} acknowledged writes, {} msync batches",
        s.persist_calls
    );
    assert!(s.persist_calls <= writes + 1);
}

#[test]
fn everysec_flusher_makes_appends_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("es");
    let arena = Arena::open(&config(&p, ArenaSync::EverySec)).expect("open");
    recover_all(&arena);
    let (_, t) = put(&arena, 0, "k", "v", 0);
    // everysec: the reply does not wait.
    arena.wait_durable(t).expect("no wait");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !arena.is_durable(t) {
        assert!(std::time::Instant::now() < deadline, "flusher never ran");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(arena.stats().persist_calls >= 1);
}

#[test]
fn concurrent_lanes_and_compaction_then_recover() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("cc");
    let mut cfg = config(&p, ArenaSync::No);
    cfg.size = 4096 + 40 * SEG; // 40-byte record headers since format 2
    let index: Vec<Mutex<HashMap<Vec<u8>, Addr>>> =
        (0..4).map(|_| Mutex::new(HashMap::new())).collect();
    {
        let arena = Arena::open(&cfg).expect("open");
        recover_all(&arena);
        std::thread::scope(|s| {
            for (w, shard) in index.iter().enumerate() {
                let arena = &arena;
                s.spawn(move || {
                    for i in 0..3000u32 {
                        let key = format!("w{w}-k{}", i % 50).into_bytes();
                        let value = format!("w{w}-i{i}-{}", "x".repeat((i % 200) as usize));
                        let mut idx = shard.lock();
                        let (addr, _) = arena
                            .append(
                                w,
                                RecordIn {
                                    db: 0,
                                    kind: 0,
                                    key: &key,
                                    value: &[value.as_bytes()],
                                    expire_at: 0,
                                },
                            )
                            .expect("append");
                        if let Some(old) = idx.insert(key, addr) {
                            arena.release(old).expect("release");
                        }
                    }
                });
            }
            // Compactor running alongside the writers.
            s.spawn(|| {
                for _ in 0..200 {
                    for seg in arena.compaction_candidates(0.5, 2) {
                        let recs: Vec<(Addr, Vec<u8>, bool)> = arena
                            .segment_records(seg)
                            .expect("records")
                            .map(|r| (r.addr, r.key.to_vec(), r.is_tombstone()))
                            .collect();
                        for (addr, key, tomb) in recs {
                            if tomb {
                                continue;
                            }
                            let w = (key[1] - b'0') as usize;
                            let mut idx = index[w].lock();
                            if idx.get(&key) == Some(&addr) {
                                let new = arena.relocate(addr).expect("relocate");
                                idx.insert(key, new);
                            }
                        }
                        arena.free_segment(seg).expect("free");
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            });
        });
        let s = arena.stats();
        assert!(s.compactions > 0, "{s:?}");
        for shard in &index {
            for (k, a) in shard.lock().iter() {
                assert_eq!(arena.read(*a).expect("read").key, &k[..]);
            }
        }
    }
    let arena = Arena::open(&cfg).expect("reopen");
    let found = recover_all(&arena);
    let expected: usize = index.iter().map(|s| s.lock().len()).sum();
    assert_eq!(found.len(), expected);
    for shard in &index {
        for (k, a) in shard.lock().iter() {
            let (fa, _) = found[k];
            let got = arena.read(fa).expect("read");
            let want_suffix = arena.read(*a).expect("read").value.to_vec();
            assert_eq!(got.value, &want_suffix[..]);
        }
    }
}

#[test]
fn persistence_none_wipes_and_writes_no_tombstones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("none");
    let mut cfg = config(&p, ArenaSync::No);
    {
        let arena = Arena::open(&cfg).expect("open pmem");
        recover_all(&arena);
        put(&arena, 0, "k", "v", 0);
    }
    cfg.persistence = Persistence::None;
    {
        let arena = Arena::open(&cfg).expect("open none");
        // Appends work at once; no recovery needed.
        let (a, _) = put(&arena, 0, "x", "y", 0);
        let before = arena.stats().used_bytes;
        let t = arena.delete(0, a).expect("delete");
        assert_eq!(t, amber_storage::Ticket::NONE);
        assert_eq!(arena.stats().used_bytes, before, "no tombstone written");
        assert!(recover_all(&arena).is_empty());
    }
    // Back to pmem: the capacity-only arena is formatted afresh.
    cfg.persistence = Persistence::Pmem;
    let arena = Arena::open(&cfg).expect("open pmem again");
    assert!(recover_all(&arena).is_empty());
}
