//! Records larger than a segment: extents of contiguous segments. Values of
//! 1x, 2.5x and 10x the segment size on the simulator and on a real file;
//! overwrite, delete, compaction, recovery after reopen; arena full when no
//! run of free segments is long enough (fragmentation), nothing previously
//! written lost; a power cut at every persist point of a large append and of
//! freeing an extent; record bytes that look like segment headers never come
//! back as records; `read_key` / `read_head`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use amber_storage::arena::record::{self, Header};
use amber_storage::arena::segment;
use amber_storage::arena::{ArenaConfig, ArenaSync, Persistence, DATA_OFFSET};
use amber_storage::persist::{PersistMode, SimMedium};
use amber_storage::{Addr, Arena, Error, RecordIn};
use parking_lot::Mutex;

const SEG: u64 = 16 << 10;
const SEGMENTS: u64 = 40;
const SIZE: u64 = DATA_OFFSET + SEG * SEGMENTS;

fn config(path: &Path) -> ArenaConfig {
    let mut c = ArenaConfig::new(path, SIZE);
    c.segment_size = SEG;
    c.persistence = Persistence::Pmem;
    c.sync = ArenaSync::Always;
    c.lanes = 2;
    c
}

/// A value of `len` bytes whose content depends on `seed` and the position
/// (so a misplaced or torn byte is noticed).
fn value(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
        .collect()
}

fn put(arena: &Arena, writer: usize, key: &[u8], value: &[u8]) -> Result<Addr, Error> {
    // Split the value in three parts: appends take it as parts.
    let a = value.len() / 3;
    let parts: [&[u8]; 3] = [&value[..a], &value[a..2 * a], &value[2 * a..]];
    arena
        .append(
            writer,
            RecordIn {
                db: 2,
                kind: 7,
                key,
                value: &parts,
                expire_at: 0,
            },
        )
        .map(|(a, _)| a)
}

fn recover(arena: &Arena) -> HashMap<Vec<u8>, Addr> {
    let out = Mutex::new(HashMap::new());
    arena
        .recover(|r| {
            assert!(out.lock().insert(r.key.to_vec(), r.addr).is_none());
        })
        .expect("recover");
    out.into_inner()
}

fn sim_arena() -> (Arc<SimMedium>, Arena) {
    let sim = Arc::new(SimMedium::new(SIZE as usize, PersistMode::CacheFlush));
    let arena = Arena::with_medium(&config(Path::new("/unused")), sim.clone()).expect("open");
    recover(&arena);
    (sim, arena)
}

fn reopen_sim(image: &[u8]) -> (Arc<SimMedium>, Arena, HashMap<Vec<u8>, Addr>) {
    let sim = Arc::new(SimMedium::from_image(image, PersistMode::CacheFlush));
    let arena = Arena::with_medium(&config(Path::new("/unused")), sim.clone()).expect("reopen");
    let found = recover(&arena);
    (sim, arena, found)
}

fn sizes() -> [(Vec<u8>, usize); 4] {
    [
        (b"one".to_vec(), SEG as usize), // just over a segment
        (b"two-and-a-half".to_vec(), SEG as usize * 5 / 2),
        (b"ten".to_vec(), SEG as usize * 10),
        (b"exactly-fits".to_vec(), SEG as usize - 64 - 40 - 12), // one segment
    ]
}

#[test]
fn large_values_read_back_whole_and_contiguous() {
    let (_sim, arena) = sim_arena();
    let small = put(&arena, 0, b"small", b"v").expect("small");
    let mut addrs = Vec::new();
    for (i, (key, len)) in sizes().iter().enumerate() {
        let v = value(*len, i as u8);
        let addr = put(&arena, i, key, &v).expect("append large");
        assert_eq!(addr.get() % 8, 0);
        assert!(addr.get() < SIZE);
        let r = arena.read(addr).expect("read");
        assert_eq!(r.key, &key[..]);
        assert_eq!(r.value.len(), *len);
        assert!(r.value == &v[..], "value of {} differs", key.escape_ascii());
        assert_eq!((r.db(), r.kind()), (2, 7));
        assert_eq!(arena.read_key(addr).expect("read_key"), &key[..]);
        let h = arena.read_head(addr).expect("read_head");
        assert_eq!(h.value_len() as usize, *len);
        addrs.push(addr);
    }
    assert_eq!(arena.read(small).expect("small").value, b"v");
    // A large record occupies whole segments: 2 + 3 + 11 for the three
    // extents, plus the lane segments.
    let s = arena.stats();
    assert!(s.segments_total - s.segments_free > 16, "{s:?}");
    assert_eq!(s.live_bytes, s.used_bytes, "nothing dead yet: {s:?}");
    // An address inside an extent (its second segment) is refused.
    let inside = Addr::new(addrs[1].get() - 64 + SEG + 64);
    assert!(matches!(arena.read(inside), Err(Error::Corrupt(_))));
    assert!(matches!(arena.read_key(inside), Err(Error::Corrupt(_))));
}

#[test]
fn overwrite_delete_compact_and_recover_on_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("large.arena");
    let mut index: HashMap<Vec<u8>, (Addr, Vec<u8>)> = HashMap::new();
    {
        let arena = Arena::open(&config(&path)).expect("open");
        recover(&arena);
        for round in 0..3u8 {
            for (i, (key, len)) in sizes().iter().enumerate() {
                let v = value(*len, round * 16 + i as u8);
                let addr = put(&arena, i, key, &v).expect("append");
                if let Some((old, _)) = index.insert(key.clone(), (addr, v)) {
                    arena.release(old).expect("release");
                }
            }
            // Small keys in between.
            for k in 0..20u8 {
                let key = vec![b's', k];
                let v = value(100 + k as usize, round);
                let addr = put(&arena, k as usize, &key, &v).expect("append small");
                if let Some((old, _)) = index.insert(key, (addr, v)) {
                    arena.release(old).expect("release");
                }
            }
            // Compaction frees the dead extents as units.
            compact(&arena, &mut index);
        }
        let (gone, _) = index.remove(&b"two-and-a-half"[..]).expect("present");
        arena.delete(0, gone).expect("delete");
        let before = arena.stats();
        compact(&arena, &mut index);
        let after = arena.stats();
        assert!(
            after.segments_free > before.segments_free,
            "the deleted extent was freed: {before:?} -> {after:?}"
        );
        check(&arena, &index);
        arena.close().expect("close");
    }
    let arena = Arena::open(&config(&path)).expect("reopen");
    let found = recover(&arena);
    assert_eq!(found.len(), index.len());
    let index: HashMap<Vec<u8>, (Addr, Vec<u8>)> = index
        .into_iter()
        .map(|(k, (_, v))| {
            let a = found[&k];
            (k, (a, v))
        })
        .collect();
    check(&arena, &index);
    assert!(!found.contains_key(&b"two-and-a-half"[..]));
    // The recovered arena takes new large records.
    put(&arena, 0, b"after", &value(SEG as usize * 3, 9)).expect("append after reopen");
}

fn compact(arena: &Arena, index: &mut HashMap<Vec<u8>, (Addr, Vec<u8>)>) {
    for seg in arena.compaction_candidates(0.3, 64) {
        let recs: Vec<(Addr, Vec<u8>, bool)> = arena
            .segment_records(seg)
            .expect("segment_records")
            .map(|r| (r.addr, r.key.to_vec(), r.is_tombstone()))
            .collect();
        for (addr, key, tomb) in recs {
            if let Some(e) = index.get_mut(&key) {
                if !tomb && e.0 == addr {
                    e.0 = arena.relocate(addr).expect("relocate");
                }
            }
        }
        arena.free_segment(seg).expect("free_segment");
    }
}

fn check(arena: &Arena, index: &HashMap<Vec<u8>, (Addr, Vec<u8>)>) {
    for (k, (a, v)) in index {
        let r = arena.read(*a).expect("read");
        assert_eq!(r.key, &k[..]);
        assert!(r.value == &v[..], "value of {} differs", k.escape_ascii());
    }
}

#[test]
fn relocation_moves_a_live_extent_as_a_unit() {
    let (_sim, arena) = sim_arena();
    let v = value(SEG as usize * 2, 3);
    let addr = put(&arena, 0, b"big", &v).expect("append");
    let seg = arena.segment_of(addr).expect("segment");
    let new = arena.relocate(addr).expect("relocate");
    assert_ne!(new, addr);
    assert!(arena.read(new).expect("read").value == &v[..]);
    let free_before = arena.stats().segments_free;
    let out = arena.free_segment(seg).expect("free the old extent");
    assert_eq!(out.tombstones_kept + out.tombstones_dropped, 0);
    assert_eq!(arena.stats().segments_free, free_before + 3);
    // The old address is stale now: read_key catches it (free segment).
    assert!(arena.read_key(addr).is_err());
}

#[test]
fn arena_full_without_a_long_enough_run_loses_nothing() {
    let (sim, arena) = sim_arena();
    // Fill the arena with 2-segment extents (each 1.5 segments of value).
    let mut live = Vec::new();
    let err = loop {
        let key = format!("x{}", live.len()).into_bytes();
        let v = value(SEG as usize * 3 / 2, live.len() as u8);
        match put(&arena, 0, &key, &v) {
            Ok(a) => live.push((key, a, v)),
            Err(e) => break e,
        }
    };
    assert_eq!(err, Error::ArenaFull);
    let n = live.len();
    assert!(n >= 15, "only {n} extents");
    // Delete every other extent (not the last, next to the free reserve)
    // and free them: many free segments, but in runs of two.
    let mut freed = 0;
    let gone = |i: usize| i.is_multiple_of(2) && i + 1 < n;
    for i in (0..n).filter(|i| gone(*i)) {
        let (_, addr, _) = &live[i];
        let seg = arena.segment_of(*addr).expect("seg");
        arena.release(*addr).expect("release");
        arena.free_segment(seg).expect("free");
        freed += 2;
    }
    let s = arena.stats();
    assert!(s.segments_free >= freed, "{s:?}");
    // Three segments are needed: enough are free, but no run of three.
    let e = put(&arena, 0, b"three", &value(SEG as usize * 2 + 100, 1));
    assert_eq!(
        e,
        Err(Error::ArenaFull),
        "free {} segments",
        s.segments_free
    );
    // A two-segment record fits in a hole.
    let two = value(SEG as usize * 3 / 2, 77);
    let a2 = put(&arena, 0, b"two", &two).expect("fits in a hole");
    // Nothing previously written is lost.
    for (i, (key, addr, v)) in live.iter().enumerate() {
        if !gone(i) {
            let r = arena.read(*addr).expect("read");
            assert_eq!(r.key, &key[..]);
            assert!(r.value == &v[..]);
        }
    }
    assert!(arena.read(a2).expect("read").value == &two[..]);
    drop(arena);
    let (_s, arena, found) = reopen_sim(&sim.durable_image());
    assert_eq!(found.len(), (0..n).filter(|i| !gone(*i)).count() + 1);
    for (i, (key, _, v)) in live.iter().enumerate() {
        if !gone(i) {
            assert!(arena.read(found[key]).expect("read").value == &v[..]);
        } else {
            assert!(!found.contains_key(key));
        }
    }
}

#[test]
fn larger_than_the_arena_is_record_too_large() {
    let (_sim, arena) = sim_arena();
    let v = vec![0u8; SIZE as usize];
    assert_eq!(put(&arena, 0, b"k", &v), Err(Error::RecordTooLarge));
    // A large tombstone (huge key) works like any large record.
    let key = value(SEG as usize * 2, 5);
    let addr = put(&arena, 0, &key, b"v").expect("huge key");
    assert_eq!(arena.read_key(addr).expect("read_key"), &key[..]);
    arena
        .delete(0, addr)
        .expect("delete writes a large tombstone");
}

#[test]
fn read_key_checks_header_key_and_generation_but_not_the_value() {
    let (sim, arena) = sim_arena();
    let a = put(&arena, 0, b"key-a", &value(3000, 1)).expect("a");
    let big = put(&arena, 1, b"key-big", &value(SEG as usize * 2, 2)).expect("big");
    for addr in [a, big] {
        let r = arena.read(addr).expect("read");
        let key = r.key.to_vec();
        let vlen = r.value.len() as u64;
        // Damage the last value byte: read_key still answers, read refuses.
        let at = addr.get() + 40 + key.len() as u64 + vlen - 1;
        let byte = sim.read(at, 1).expect("byte")[0];
        use amber_storage::persist::Medium;
        sim.write(at, &[byte ^ 0xff]).expect("write");
        assert_eq!(arena.read_key(addr).expect("read_key"), &key[..]);
        assert!(matches!(arena.read(addr), Err(Error::Corrupt(_))));
        // Damage a key byte: both refuse.
        let at = addr.get() + 40;
        let byte = sim.read(at, 1).expect("byte")[0];
        sim.write(at, &[byte ^ 0x01]).expect("write");
        assert!(matches!(arena.read_key(addr), Err(Error::Corrupt(_))));
        assert!(matches!(arena.read_head(addr), Err(Error::Corrupt(_))));
    }
}

#[test]
fn stale_addresses_into_reused_segments_are_refused() {
    let (_sim, arena) = sim_arena();
    let a = put(&arena, 0, b"key-a", b"va").expect("a");
    let b = put(&arena, 0, b"key-b", b"vb").expect("b");
    let seg0 = arena.segment_of(a).expect("seg");
    // Fill lane 0 through two segments, then free both.
    let mut fills = vec![a, b];
    let mut seg1_fill = None;
    loop {
        let f = put(&arena, 0, b"fill", &[0u8; 2000]).expect("fill");
        let s = arena.segment_of(f).expect("seg").0;
        if s == seg0.0 + 1 && seg1_fill.is_none() {
            seg1_fill = Some(f);
        }
        if s == seg0.0 + 2 {
            break;
        }
        fills.push(f);
    }
    for f in &fills {
        arena.release(*f).expect("release");
    }
    for s in [seg0.0, seg0.0 + 1] {
        arena
            .free_segment(amber_storage::arena::SegmentId(s))
            .expect("free");
    }
    assert!(arena.read_key(b).is_err(), "free segment");
    // First fit puts a two-segment extent on exactly those two segments.
    let v = value(SEG as usize * 3 / 2, 8);
    let x = put(&arena, 1, b"key-x", &v).expect("extent");
    assert_eq!(arena.segment_of(x), Some(seg0));
    assert_eq!(x, a, "the extent's record starts where `a` was");
    // `b` now points into the extent's bytes, written under a new
    // generation; the fill in the second segment is inside the record.
    assert!(matches!(arena.read_key(b), Err(Error::Corrupt(_))));
    assert!(matches!(arena.read(b), Err(Error::Corrupt(_))));
    let inside = seg1_fill.expect("a fill in the second segment");
    assert!(matches!(arena.read_key(inside), Err(Error::Corrupt(_))));
    assert!(arena.read(x).expect("read").value == &v[..]);
}

/// A value that carries, at the start of every segment the extent will
/// cover, a valid segment header followed by a valid record of key
/// "forged". Written at `first`, the record starts at offset 64 of the
/// extent, so segment `first + k` begins `k * SEG - 64 - 40 - key.len()`
/// bytes into the value.
fn forging_value(first: u32, span: u32, key: &[u8], len: usize) -> Vec<u8> {
    let mut v = value(len, 0x5a);
    for k in 1..span {
        let seg = first + k;
        let gen = 1_000_000 + u64::from(k);
        let mut bytes = segment::encode_header(seg, gen, 1).to_vec();
        let h = Header {
            kind: 1,
            flags: 0,
            db: 2,
            key_len: 6,
            value_len: 4,
            expire_at: 0,
            seq: u64::MAX / 2,
        };
        bytes.extend_from_slice(&record::encode(gen, &h, b"forged", &[b"evil"]));
        let at = (u64::from(k) * SEG - 64 - 40) as usize - key.len();
        v[at..at + bytes.len()].copy_from_slice(&bytes);
    }
    v
}

#[test]
fn record_bytes_that_look_like_headers_never_become_records() {
    let (sim, arena) = sim_arena();
    let span = 4;
    let len = SEG as usize * 3 + 100;
    // The first free run of 4 starts after the lane segment taken below.
    let small = put(&arena, 0, b"small", b"s").expect("small");
    let first = arena.segment_of(small).expect("seg").0 + 1;
    let v = forging_value(first, span, b"victim", len);
    let addr = put(&arena, 1, b"victim", &v).expect("append");
    assert_eq!(arena.segment_of(addr).map(|s| s.0), Some(first));
    assert!(arena.read(addr).expect("read").value == &v[..]);
    // Reopen with the extent alive: the walk skips covered segments.
    let image = sim.durable_image();
    let (_s, _a, found) = reopen_sim(&image);
    assert!(found.contains_key(&b"victim"[..]));
    assert!(
        !found.contains_key(&b"forged"[..]),
        "forged record recovered"
    );
    // Delete and free the extent with a power cut at every persist point of
    // the free: the forged headers never surface.
    for cut in 1..=4u64 {
        let (sim2, arena2, found) = reopen_sim(&image);
        let addr = found[&b"victim"[..]];
        let seg = arena2.segment_of(addr).expect("seg");
        arena2.delete(0, addr).expect("delete");
        let start = sim2.persist_points();
        sim2.cut_at_with_tear(start + cut, cut);
        let _ = arena2.free_segment(seg);
        sim2.cut_now();
        let img = sim2.durable_image();
        drop(arena2);
        let (_s, _a, found) = reopen_sim(&img);
        assert!(
            !found.contains_key(&b"forged"[..]),
            "cut {cut}: forged record recovered"
        );
        assert!(
            !found.contains_key(&b"victim"[..]),
            "cut {cut}: deleted key is back"
        );
        assert!(found.contains_key(&b"small"[..]));
    }
    // And after a clean free.
    arena.delete(0, addr).expect("delete");
    let seg = arena.segment_of(addr).expect("seg");
    arena.free_segment(seg).expect("free");
    drop(arena);
    let (_s, _a, found) = reopen_sim(&sim.durable_image());
    assert!(!found.contains_key(&b"forged"[..]));
}

#[test]
fn power_cut_in_the_middle_of_a_large_append_is_all_or_nothing() {
    // The forging value makes "half written" dangerous: every covered
    // segment starts with a valid-looking header.
    for mode in [PersistMode::CacheFlush, PersistMode::Msync] {
        for tear in [false, true] {
            let mut cut = 1;
            loop {
                let sim = Arc::new(SimMedium::new(SIZE as usize, mode));
                let arena =
                    Arena::with_medium(&config(Path::new("/unused")), sim.clone()).expect("open");
                recover(&arena);
                let (old, t) = arena
                    .append(
                        0,
                        RecordIn {
                            db: 2,
                            kind: 7,
                            key: b"victim",
                            value: &[b"old value"],
                            expire_at: 0,
                        },
                    )
                    .expect("old");
                arena.wait_durable(t).expect("durable");
                let first = arena.segment_of(old).expect("seg").0 + 1;
                let v = forging_value(first, 4, b"victim", SEG as usize * 3 + 100);
                let start = sim.persist_points();
                if tear {
                    sim.cut_at_with_tear(start + cut, cut * 31);
                } else {
                    sim.cut_at(start + cut);
                }
                let (new, t) = arena
                    .append(
                        1,
                        RecordIn {
                            db: 2,
                            kind: 7,
                            key: b"victim",
                            value: &[&v],
                            expire_at: 0,
                        },
                    )
                    .expect("large append");
                arena.release(old).expect("release");
                arena.wait_durable(t).expect("durable");
                let acked = !sim.is_cut();
                let points = sim.persist_points() - start;
                sim.cut_now();
                assert_eq!(arena.segment_of(new).map(|s| s.0), Some(first));
                let img = sim.durable_image();
                drop(arena);
                let sim = Arc::new(SimMedium::from_image(&img, mode));
                let arena =
                    Arena::with_medium(&config(Path::new("/unused")), sim.clone()).expect("reopen");
                let found = recover(&arena);
                let label = format!("{mode} tear {tear} cut {cut}/{points}");
                assert!(!found.contains_key(&b"forged"[..]), "{label}: forged");
                let got = arena.read(found[&b"victim"[..]]).expect("read");
                if acked {
                    assert!(got.value == &v[..], "{label}: acknowledged write lost");
                } else {
                    assert!(
                        got.value == b"old value" || got.value == &v[..],
                        "{label}: neither version"
                    );
                }
                // The arena is usable: the whole run is free again or holds
                // the record; a new large append works.
                put(&arena, 0, b"after", &value(SEG as usize * 2, 1)).expect("append after");
                if cut > points {
                    break;
                }
                cut += 1;
            }
        }
    }
}

/// Through the keyspace: in `persistence pmem` mode a 10 MB SET (ten
/// segments of 1 MiB) is persisted and survives a reopen.
#[test]
fn keyspace_persists_values_larger_than_a_segment() {
    use amber_storage::{Keyspace, KeyspaceConfig, SetExpiry, Value};
    let dir = tempfile::tempdir().expect("tempdir");
    let config = || {
        let mut arena = ArenaConfig::new(dir.path().join("ks.arena"), 64 << 20);
        arena.segment_size = 1 << 20;
        arena.persistence = Persistence::Pmem;
        arena.sync = ArenaSync::No;
        KeyspaceConfig {
            shards_per_db: 4,
            dram_budget: 0,
            arena: Some(arena),
        }
    };
    let set = |ks: &Keyspace, key: &[u8], v: &[u8]| {
        let mut g = ks.lock_one(0, key).expect("lock");
        g.set(key, Value::string(v.to_vec()), SetExpiry::Persist)
            .expect("set");
    };
    let get = |ks: &Keyspace, key: &[u8]| -> Option<Vec<u8>> {
        let mut g = ks.lock_one(0, key).expect("lock");
        match g.get(key) {
            Some(Value::Str(s)) => Some(s.bytes.clone()),
            _ => None,
        }
    };
    let ten = value(10 << 20, 1);
    let two = value(5 << 19, 2);
    {
        let ks = Keyspace::open(config()).expect("open");
        set(&ks, b"ten", &value(10 << 20, 9));
        set(&ks, b"ten", &ten); // overwrite
        set(&ks, b"two", &two);
        set(&ks, b"gone", &value(3 << 20, 3));
        ks.lock_one(0, b"gone").expect("lock").remove(b"gone");
        set(&ks, b"small", b"s");
        while ks.compact_step(0.5, 16) > 0 {}
        assert!(get(&ks, b"ten") == Some(ten.clone()));
        ks.close().expect("close");
    }
    let ks = Keyspace::open(config()).expect("reopen");
    assert!(get(&ks, b"ten") == Some(ten), "10 MB value lost");
    assert!(get(&ks, b"two") == Some(two));
    assert_eq!(get(&ks, b"gone"), None);
    assert_eq!(get(&ks, b"small"), Some(b"s".to_vec()));
}
