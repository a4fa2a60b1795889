//! Power cuts while metadata records are written: a scripted workload puts
//! a metadata blob again and again (small ones, and ones larger than a
//! segment, in an extent of their own) between writes of ordinary keys and
//! compaction rounds that move the metadata record, on the simulator; the
//! power is cut at EVERY persist point in turn, and recovery must find the
//! last blob whose `put_meta` returned before the cut, or the one being
//! written at the cut: never an older one, never a mix, never none once one
//! was acknowledged. Variants: cache-flush media, msync media with group
//! commit, and random 8-byte tears of the unpersisted stores at the cut.

use std::collections::HashMap;
use std::sync::Arc;

use amber_storage::arena::{ArenaConfig, ArenaSync, Persistence};
use amber_storage::persist::{PersistMode, SimMedium};
use amber_storage::{Addr, Arena, RecordIn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const NOW: u64 = 1_800_000_000_000;
const SEG: u64 = 8192;
const SEGMENTS: u64 = 20;
const SIZE: u64 = 4096 + SEG * SEGMENTS;
const NAME: &[u8] = b"functions";

fn config() -> ArenaConfig {
    let mut c = ArenaConfig::new("/nonexistent", SIZE);
    c.segment_size = SEG;
    c.persistence = Persistence::Pmem;
    c.sync = ArenaSync::Always;
    c.lanes = 2;
    c
}

/// The `i`-th blob: its number at both ends, a length that varies (one in
/// six is larger than a segment).
fn blob(i: usize, rng: &mut StdRng) -> Vec<u8> {
    let len = if rng.gen_range(0..6) == 0 {
        rng.gen_range(SEG as usize..SEG as usize * 2)
    } else {
        rng.gen_range(0..600)
    };
    let mut b = format!("blob {i} [").into_bytes();
    b.resize(b.len() + len, b'a' + (i % 26) as u8);
    b.extend_from_slice(format!("] blob {i}").as_bytes());
    b
}

/// What a run wrote: every blob in order, and how many of them were
/// acknowledged (`put_meta` returned before the cut).
struct Written {
    blobs: Vec<Vec<u8>>,
    acked: usize,
    /// Metadata records moved by compaction.
    moved: usize,
}

fn workload(arena: &Arena, sim: &SimMedium, seed: u64, ops: usize) -> Written {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut index: HashMap<Vec<u8>, Addr> = HashMap::new();
    let mut w = Written {
        blobs: Vec::new(),
        acked: 0,
        moved: 0,
    };
    for i in 0..ops {
        // Phases of 40 operations: blobs among key writes, then key
        // writes only, so compaction finds the newest metadata record in
        // segments emptied by the keys' churn and has to move it.
        let meta_phase = (i / 40) % 2 == 0;
        match rng.gen_range(0..10) {
            0..=2 if meta_phase => {
                let b = blob(w.blobs.len(), &mut rng);
                w.blobs.push(b.clone());
                match arena.put_meta(NAME, &b) {
                    Ok(()) if !sim.is_cut() => w.acked = w.blobs.len(),
                    Ok(()) => {}
                    // A full arena leaves the previous blob: this one is
                    // never acknowledged, and never allowed either.
                    Err(amber_storage::Error::ArenaFull) => {
                        w.blobs.pop();
                    }
                    Err(e) => panic!("put_meta: {e}"),
                }
            }
            _ => {
                let key = format!("key:{}", rng.gen_range(0..12)).into_bytes();
                let value = vec![b'v'; rng.gen_range(1..900)];
                let rec = RecordIn {
                    db: 0,
                    kind: 1,
                    key: &key,
                    value: &[&value],
                    expire_at: 0,
                };
                match arena.append(i, rec) {
                    Ok((addr, _)) => {
                        if let Some(old) = index.insert(key, addr) {
                            arena.release(old).expect("release");
                        }
                    }
                    Err(amber_storage::Error::ArenaFull) => {}
                    Err(e) => panic!("append: {e}"),
                }
            }
        }
        if i % 10 == 9 {
            for seg in arena.compaction_candidates(0.4, 3) {
                let recs: Vec<(Addr, u8, Vec<u8>, bool)> = arena
                    .segment_records(seg)
                    .expect("segment_records")
                    .map(|r| (r.addr, r.db(), r.key.to_vec(), r.is_tombstone()))
                    .collect();
                for (addr, db, key, tomb) in recs {
                    if db == amber_storage::arena::meta::META_DB {
                        if arena.relocate_meta(addr).expect("relocate_meta") {
                            w.moved += 1;
                        }
                    } else if !tomb && index.get(&key) == Some(&addr) {
                        let new = arena.relocate(addr).expect("relocate");
                        index.insert(key, new);
                    }
                }
                arena.free_segment(seg).expect("free_segment");
            }
        }
    }
    w
}

fn run(
    mode: PersistMode,
    seed: u64,
    ops: usize,
    cut: Option<(u64, Option<u64>)>,
) -> (Arc<SimMedium>, Written) {
    let sim = Arc::new(SimMedium::new(SIZE as usize, mode));
    match cut {
        Some((n, Some(tear))) => sim.cut_at_with_tear(n, tear),
        Some((n, None)) => sim.cut_at(n),
        None => {}
    }
    let written = {
        let arena = Arena::with_medium(&config(), sim.clone()).expect("open");
        arena.recover_at(NOW, |_| {}).expect("recover fresh");
        workload(&arena, &sim, seed, ops)
    };
    (sim, written)
}

/// Recovers the durable image; checks the blob found against what was
/// acknowledged and that no metadata reached the caller's visitor.
fn check(image: &[u8], mode: PersistMode, w: &Written, label: &str) -> Arena {
    let arena = Arena::with_medium(&config(), Arc::new(SimMedium::from_image(image, mode)))
        .unwrap_or_else(|e| panic!("{label}: open: {e}"));
    let stats = arena
        .recover_at(NOW, |r| {
            assert_eq!(r.db, 0, "{label}: a metadata record reported as a key");
        })
        .unwrap_or_else(|e| panic!("{label}: recover: {e}"));
    let got = arena
        .meta(NAME)
        .unwrap_or_else(|e| panic!("{label}: corrupt metadata: {e}"));
    // The last acknowledged blob, or the one being written at the cut.
    let mut allowed: Vec<Option<&Vec<u8>>> = Vec::new();
    allowed.push(w.acked.checked_sub(1).and_then(|i| w.blobs.get(i)));
    if let Some(next) = w.blobs.get(w.acked) {
        allowed.push(Some(next));
    }
    assert!(
        allowed.contains(&got.as_ref()),
        "{label}: recovered {:?}, acked {} of {}",
        got.as_ref()
            .map(|b| String::from_utf8_lossy(&b[..b.len().min(12)]).into_owned()),
        w.acked,
        w.blobs.len()
    );
    assert_eq!(stats.meta_records, u64::from(got.is_some()), "{label}");
    arena
}

fn cut_everywhere(mode: PersistMode, seed: u64, ops: usize, tear: bool) -> u64 {
    let (sim, w) = run(mode, seed, ops, None);
    assert!(w.acked > 15, "only {} blobs written", w.acked);
    assert!(w.moved > 0, "compaction never moved the metadata record");
    assert!(
        w.blobs.iter().any(|b| b.len() > SEG as usize),
        "no blob larger than a segment"
    );
    check(&sim.durable_image(), mode, &w, "no cut");
    let points = sim.persist_points();
    for n in 1..=points {
        let tear_seed = tear.then_some(seed ^ (n * 0x9E37));
        let (sim, w) = run(mode, seed, ops, Some((n, tear_seed)));
        let label = format!("{mode} seed {seed} cut at {n}/{points} tear {tear}");
        let arena = check(&sim.durable_image(), mode, &w, &label);
        // The recovered arena takes a new blob, which replaces the old one.
        arena
            .put_meta(NAME, b"after")
            .unwrap_or_else(|e| panic!("{label}: put_meta after recovery: {e}"));
        assert_eq!(
            arena.meta(NAME).expect("meta").as_deref(),
            Some(&b"after"[..])
        );
    }
    points
}

#[test]
fn metadata_survives_a_cut_at_every_persist_point_cache_flush() {
    let points = cut_everywhere(PersistMode::CacheFlush, 21, 160, false);
    eprintln!("cache-flush: {points} cuts");
}

#[test]
fn metadata_survives_a_cut_at_every_persist_point_group_commit() {
    let points = cut_everywhere(PersistMode::Msync, 22, 160, false);
    eprintln!("group commit: {points} cuts");
}

#[test]
fn metadata_survives_a_cut_at_every_persist_point_with_tears() {
    let a = cut_everywhere(PersistMode::CacheFlush, 23, 160, true);
    let b = cut_everywhere(PersistMode::Msync, 24, 160, true);
    eprintln!("torn: {a} + {b} cuts");
}
