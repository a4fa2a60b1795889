//! Power-cut simulation: a scripted workload (appends, overwrites, TTLs,
//! deletes, compaction with segment reuse, several writers) runs on the
//! simulator, the power is cut at EVERY persist point in turn, and recovery
//! from the durable image must find every acknowledged write with its newest
//! acknowledged value and deadline, never resurrect a deleted key, and never
//! return a corrupt record. Some values are larger than a segment (extents
//! of 2 or 3 segments), so cuts also land in the middle of large appends
//! and of freeing extents: a large record is all or nothing. Some writes are
//! delta records on a key's current record (here a delta appends its bytes
//! to the value; recovery must apply exactly the acknowledged chain or a
//! longer prefix of it, with the newest delta's deadline). Variants:
//! cache-flush media (each append persisted), msync media with group
//! commit, and random 8-byte tears of the unpersisted stores at the cut.

use std::collections::HashMap;
use std::sync::Arc;

use amber_storage::arena::{ArenaConfig, ArenaSync, Persistence};
use amber_storage::persist::{PersistMode, SimMedium};
use amber_storage::{Addr, Arena, DeltaIn, RecordIn};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const NOW: u64 = 1_800_000_000_000;
const SEG: u64 = 8192;
const SEGMENTS: u64 = 20;
const SIZE: u64 = 4096 + SEG * SEGMENTS;
const LANES: usize = 3;

fn config() -> ArenaConfig {
    let mut c = ArenaConfig::new("/nonexistent", SIZE);
    c.segment_size = SEG;
    c.persistence = Persistence::Pmem;
    c.sync = ArenaSync::Always;
    c.lanes = LANES;
    c
}

/// The result of one operation on a key: `Some((value, expire_at))` or
/// `None` for a delete.
type Outcome = Option<(Vec<u8>, u64)>;

/// What recovery found: (db, key) -> (value, expire_at).
type Found = HashMap<(u8, Vec<u8>), (Vec<u8>, u64)>;

#[derive(Default)]
struct KeyHistory {
    /// Outcomes in order; `acked` counts how many of the first ones were
    /// acknowledged (durable before the cut).
    ops: Vec<Outcome>,
    acked: usize,
}

#[derive(Default)]
struct Model {
    keys: HashMap<(u8, Vec<u8>), KeyHistory>,
}

impl Model {
    fn visible(o: &Outcome) -> Outcome {
        match o {
            Some((_, exp)) if *exp != 0 && *exp <= NOW => None,
            other => other.clone(),
        }
    }

    /// Checks a recovered state against the model.
    fn check(&self, found: &Found, label: &str) {
        for (k, h) in &self.keys {
            let got: Outcome = found.get(k).cloned();
            // Allowed: the last acknowledged outcome, or any later one.
            let from = h.acked.saturating_sub(1);
            let mut allowed: Vec<Outcome> = h.ops[from..].iter().map(Model::visible).collect();
            if h.acked == 0 {
                allowed.push(None); // nothing acknowledged: absent is fine
            }
            assert!(
                allowed.contains(&got),
                "{label}: key {:?} recovered as {:?}; acked {} of {} ops; allowed {:?}",
                String::from_utf8_lossy(&k.1),
                got.as_ref()
                    .map(|g| (String::from_utf8_lossy(&g.0).into_owned(), g.1)),
                h.acked,
                h.ops.len(),
                allowed.len()
            );
        }
        for k in found.keys() {
            assert!(self.keys.contains_key(k), "{label}: unknown key recovered");
        }
    }
}

/// The caller's side: index plus model, driving the arena.
struct Driver<'a> {
    arena: &'a Arena,
    sim: &'a SimMedium,
    index: HashMap<(u8, Vec<u8>), Addr>,
    /// Per key: the base's sequence number and the delta records on it.
    chains: HashMap<(u8, Vec<u8>), (u64, Vec<Addr>)>,
    model: Model,
    /// Keys touched since the last acknowledgement point (group mode).
    pending: Vec<(u8, Vec<u8>)>,
    group: bool,
    /// Values larger than a segment appended (extents).
    large: usize,
}

impl Driver<'_> {
    fn ack(&mut self, ticket: amber_storage::Ticket) {
        if self.group {
            self.arena.wait_durable(ticket).expect("wait_durable");
        }
        if !self.sim.is_cut() {
            for k in self.pending.drain(..) {
                if let Some(h) = self.model.keys.get_mut(&k) {
                    h.acked = h.ops.len();
                }
            }
        }
        self.pending.clear();
    }

    fn set(
        &mut self,
        writer: usize,
        db: u8,
        key: &[u8],
        value: &[u8],
        expire_at: u64,
    ) -> Option<amber_storage::Ticket> {
        let half = value.len() / 2;
        let parts: [&[u8]; 2] = [&value[..half], &value[half..]];
        let rec = RecordIn {
            db,
            kind: 1,
            key,
            value: &parts,
            expire_at,
        };
        match self.arena.append(writer, rec) {
            Ok((addr, ticket)) => {
                if value.len() > SEG as usize {
                    self.large += 1;
                }
                let k = (db, key.to_vec());
                self.release_chain(&k);
                if let Some(old) = self.index.insert(k.clone(), addr) {
                    self.arena.release(old).expect("release");
                }
                self.model
                    .keys
                    .entry(k.clone())
                    .or_default()
                    .ops
                    .push(Some((value.to_vec(), expire_at)));
                self.pending.push(k);
                Some(ticket)
            }
            Err(amber_storage::Error::ArenaFull) => None,
            Err(e) => panic!("append: {e}"),
        }
    }

    fn release_chain(&mut self, k: &(u8, Vec<u8>)) {
        if let Some((_, deltas)) = self.chains.remove(k) {
            for a in deltas {
                self.arena.release(a).expect("release delta");
            }
        }
    }

    /// Appends `more` to the key's value as a delta record.
    fn delta(
        &mut self,
        writer: usize,
        db: u8,
        key: &[u8],
        more: &[u8],
        expire_at: u64,
    ) -> Option<amber_storage::Ticket> {
        let k = (db, key.to_vec());
        let base = *self.index.get(&k)?;
        let (base_seq, pos) = match self.chains.get(&k) {
            Some((seq, d)) => (*seq, d.len() as u32 + 1),
            None => (self.arena.read_head(base).expect("base").seq(), 1),
        };
        let d = DeltaIn {
            db,
            kind: 1,
            key,
            base_seq,
            pos,
            changes: more,
            expire_at,
        };
        match self.arena.append_delta(writer, d) {
            Ok((addr, ticket)) => {
                let chain = self
                    .chains
                    .entry(k.clone())
                    .or_insert((base_seq, Vec::new()));
                chain.1.push(addr);
                let h = self.model.keys.entry(k.clone()).or_default();
                let mut value = match h.ops.last() {
                    Some(Some((v, _))) => v.clone(),
                    _ => panic!("a delta on a key without a value"),
                };
                value.extend_from_slice(more);
                h.ops.push(Some((value, expire_at)));
                self.pending.push(k);
                Some(ticket)
            }
            Err(amber_storage::Error::ArenaFull) => None,
            Err(e) => panic!("append_delta: {e}"),
        }
    }

    fn del(&mut self, writer: usize, db: u8, key: &[u8]) -> Option<amber_storage::Ticket> {
        let k = (db, key.to_vec());
        let addr = *self.index.get(&k)?;
        self.release_chain(&k);
        match self.arena.delete(writer, addr) {
            Ok(ticket) => {
                self.index.remove(&k);
                self.model.keys.entry(k.clone()).or_default().ops.push(None);
                self.pending.push(k);
                Some(ticket)
            }
            Err(amber_storage::Error::ArenaFull) => None,
            Err(e) => panic!("delete: {e}"),
        }
    }

    fn compact(&mut self) {
        for seg in self.arena.compaction_candidates(0.4, 3) {
            let recs: Vec<(Addr, u8, Vec<u8>, bool)> = self
                .arena
                .segment_records(seg)
                .expect("segment_records")
                .map(|r| (r.addr, r.db(), r.key.to_vec(), r.is_tombstone()))
                .collect();
            for (addr, db, key, tomb) in recs {
                let k = (db, key);
                if !tomb && self.index.get(&k) == Some(&addr) {
                    let new = self.arena.relocate(addr).expect("relocate");
                    self.index.insert(k, new);
                } else if let Some(d) = self
                    .chains
                    .get_mut(&k)
                    .and_then(|(_, c)| c.iter_mut().find(|d| **d == addr))
                {
                    *d = self.arena.relocate(addr).expect("relocate delta");
                }
            }
            self.arena.free_segment(seg).expect("free_segment");
        }
    }
}

/// The scripted workload: deterministic for a seed.
fn workload(d: &mut Driver<'_>, seed: u64, ops: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut version = 0u32;
    let mut last_ticket = None;
    for i in 0..ops {
        let key_no: u32 = rng.gen_range(0..24);
        let db = (key_no % 3) as u8;
        let key = format!("key:{key_no}").into_bytes();
        let writer = key_no as usize % LANES;
        let roll: u32 = rng.gen_range(0..100);
        let t = if (55..75).contains(&roll) && d.index.contains_key(&(db, key.clone())) {
            version += 1;
            let more = format!("+d{version}").into_bytes();
            let expire_at = if rng.gen_range(0..6) == 0 {
                NOW + 2000
            } else {
                0
            };
            d.delta(writer, db, &key, &more, expire_at)
        } else if roll < 75 {
            version += 1;
            // One set in 12 writes a value larger than a segment.
            let len = if rng.gen_range(0..12) == 0 {
                rng.gen_range(SEG as usize..SEG as usize * 5 / 2)
            } else {
                rng.gen_range(1..400)
            };
            let mut value = format!("{key_no}-v{version}-").into_bytes();
            value.resize(len.max(value.len()), b'a' + (version % 26) as u8);
            let expire_at = match rng.gen_range(0..10) {
                0 => NOW - 1,        // already expired at recovery time
                1..=2 => NOW + 1000, // a TTL that is still running
                _ => 0,
            };
            d.set(writer, db, &key, &value, expire_at)
        } else {
            d.del(writer, db, &key)
        };
        if t.is_some() {
            last_ticket = t;
        }
        // Acknowledge in pipelined batches of 1..4 operations.
        if rng.gen_range(0..3) == 0 || !d.group {
            if let Some(t) = last_ticket.take() {
                d.ack(t);
            }
        }
        if i % 25 == 24 {
            d.compact();
        }
    }
    if let Some(t) = last_ticket {
        d.ack(t);
    }
}

/// Recovers from a durable image and returns key -> (value, expire_at).
fn recover(image: &[u8], mode: PersistMode, label: &str) -> (Arena, Found) {
    let medium = Arc::new(SimMedium::from_image(image, mode));
    let arena =
        Arena::with_medium(&config(), medium).unwrap_or_else(|e| panic!("{label}: open: {e}"));
    let found = Mutex::new(Vec::new());
    let stats = arena
        .recover_at(NOW, |r| {
            found
                .lock()
                .push((r.addr, r.db, r.key.to_vec(), r.expire_at))
        })
        .unwrap_or_else(|e| panic!("{label}: recover: {e}"));
    let chains: HashMap<Addr, Vec<Addr>> = stats.chains.into_iter().collect();
    let mut map = HashMap::new();
    for (addr, db, key, exp) in found.into_inner() {
        let rec = arena
            .read(addr)
            .unwrap_or_else(|e| panic!("{label}: corrupt record returned: {e}"));
        assert_eq!(rec.key, &key[..]);
        assert_eq!(rec.expire_at(), exp);
        let (mut value, mut exp) = (rec.value.to_vec(), exp);
        for &d in chains.get(&addr).map_or(&[][..], |c| &c[..]) {
            let rec = arena
                .read(d)
                .unwrap_or_else(|e| panic!("{label}: corrupt delta returned: {e}"));
            assert_eq!(rec.key, &key[..], "{label}: a delta of another key");
            let (_, _, more) = amber_storage::arena::record::parse_delta(rec.value)
                .unwrap_or_else(|| panic!("{label}: malformed delta"));
            value.extend_from_slice(more);
            exp = rec.expire_at();
        }
        assert!(
            map.insert((db, key), (value, exp)).is_none(),
            "{label}: key reported twice"
        );
    }
    (arena, map)
}

fn run_workload(
    mode: PersistMode,
    seed: u64,
    ops: usize,
    cut: Option<(u64, Option<u64>)>,
) -> (Arc<SimMedium>, Model) {
    let sim = Arc::new(SimMedium::new(SIZE as usize, mode));
    if let Some((n, tear)) = cut {
        match tear {
            Some(s) => sim.cut_at_with_tear(n, s),
            None => sim.cut_at(n),
        }
    }
    let model = {
        let arena = Arena::with_medium(&config(), sim.clone()).expect("open");
        arena.recover_at(NOW, |_| {}).expect("recover fresh");
        let mut d = Driver {
            arena: &arena,
            sim: &sim,
            index: HashMap::new(),
            chains: HashMap::new(),
            model: Model::default(),
            pending: Vec::new(),
            group: mode == PersistMode::Msync,
            large: 0,
        };
        workload(&mut d, seed, ops);
        let stats = arena.stats();
        assert!(
            stats.compactions > 0 || cut.is_some(),
            "the workload must compact"
        );
        assert!(
            d.large >= 5 || cut.is_some(),
            "the workload must write large values: {}",
            d.large
        );
        d.model
        // Arena dropped here: close() persists more, after the workload.
    };
    (sim, model)
}

fn cut_everywhere(mode: PersistMode, seed: u64, ops: usize, tear: bool) -> u64 {
    let (sim, model) = run_workload(mode, seed, ops, None);
    // Without a cut the final image holds everything.
    let (_a, found) = recover(&sim.durable_image(), mode, "no cut");
    model.check(&found, "no cut");
    let points = sim.persist_points();
    assert!(points > 100, "only {points} persist points");
    for n in 1..=points {
        let tear_seed = tear.then_some(seed ^ (n * 0x9E37));
        let (sim, model) = run_workload(mode, seed, ops, Some((n, tear_seed)));
        let label = format!("{mode} seed {seed} cut at {n}/{points} tear {tear}");
        let (arena, found) = recover(&sim.durable_image(), mode, &label);
        model.check(&found, &label);
        // The recovered arena takes new writes and compacts.
        let (addr, _) = arena
            .append(
                0,
                RecordIn {
                    db: 0,
                    kind: 1,
                    key: b"after",
                    value: &[b"x"],
                    expire_at: 0,
                },
            )
            .unwrap_or_else(|e| panic!("{label}: append after recovery: {e}"));
        assert_eq!(arena.read(addr).expect("read").value, b"x");
    }
    points
}

#[test]
fn cut_at_every_persist_point_cache_flush() {
    let points = cut_everywhere(PersistMode::CacheFlush, 1, 260, false);
    eprintln!("cache-flush: {points} cuts");
}

#[test]
fn cut_at_every_persist_point_group_commit() {
    let points = cut_everywhere(PersistMode::Msync, 2, 400, false);
    eprintln!("group commit: {points} cuts");
}

#[test]
fn cut_at_every_persist_point_with_tears() {
    let a = cut_everywhere(PersistMode::CacheFlush, 3, 220, true);
    let b = cut_everywhere(PersistMode::Msync, 4, 400, true);
    eprintln!("torn: {a} + {b} cuts");
}

/// Two crashes: recover, keep working (compaction drops tombstones and
/// reuses segments), crash again, recover again. Deleted keys stay deleted.
#[test]
fn second_crash_after_recovery_and_compaction() {
    for seed in 10..16u64 {
        let mode = PersistMode::CacheFlush;
        let (sim, model) = run_workload(mode, seed, 300, None);
        let image = sim.durable_image();
        // Second life: recover, rebuild the index, run more work.
        let sim2 = Arc::new(SimMedium::from_image(&image, mode));
        let arena = Arena::with_medium(&config(), sim2.clone()).expect("open");
        let found = Mutex::new(Vec::new());
        let stats = arena
            .recover_at(NOW, |r| found.lock().push((r.addr, r.db, r.key.to_vec())))
            .expect("recover");
        // The recovered chains continue (the next delta takes the next position).
        let chains = stats
            .chains
            .into_iter()
            .map(|(base, deltas)| {
                let h = arena.read_head(base).expect("base");
                ((h.db(), h.key.to_vec()), (h.seq(), deltas))
            })
            .collect();
        let mut d = Driver {
            arena: &arena,
            sim: &sim2,
            index: found
                .into_inner()
                .into_iter()
                .map(|(a, db, k)| ((db, k), a))
                .collect(),
            chains,
            model,
            pending: Vec::new(),
            group: false,
            large: 0,
        };
        // Everything recovered counts as acknowledged now.
        for h in d.model.keys.values_mut() {
            h.acked = h.ops.len();
        }
        // Expired keys were dropped by recovery: the caller's view is "absent".
        for (k, h) in d.model.keys.iter_mut() {
            if !d.index.contains_key(k) && Model::visible(h.ops.last().unwrap_or(&None)).is_none() {
                h.ops.push(None);
                h.acked = h.ops.len();
            }
        }
        workload(&mut d, seed + 100, 300);
        for _ in 0..4 {
            d.compact();
        }
        let model = std::mem::take(&mut d.model);
        sim2.cut_now();
        drop(d);
        drop(arena);
        let (_a, found) = recover(&sim2.durable_image(), mode, "second crash");
        model.check(&found, &format!("second crash seed {seed}"));
    }
}
