//! Property test: whatever is appended reads back byte for byte, and
//! survives a reopen + recovery (newest version per key).

use std::collections::HashMap;
use std::sync::Arc;

use amber_storage::arena::{ArenaConfig, ArenaSync, Persistence};
use amber_storage::persist::{PersistMode, SimMedium};
use amber_storage::{Arena, RecordIn};
use parking_lot::Mutex;
use proptest::prelude::*;

const SIZE: u64 = 4096 + 8 * 65536;

fn config() -> ArenaConfig {
    let mut c = ArenaConfig::new("/unused", SIZE);
    c.segment_size = 65536;
    c.persistence = Persistence::Pmem;
    c.sync = ArenaSync::Always;
    c.lanes = 2;
    c
}

#[derive(Debug, Clone)]
struct Op {
    db: u8,
    kind: u8,
    key: Vec<u8>,
    parts: Vec<Vec<u8>>,
    expire_at: u64,
}

fn op() -> impl Strategy<Value = Op> {
    (
        0u8..16,
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 0..24),
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..4),
        prop_oneof![Just(0u64), 1u64..u64::MAX],
    )
        .prop_map(|(db, kind, key, parts, expire_at)| Op {
            db,
            kind,
            key,
            parts,
            expire_at,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn append_read_recover_round_trip(ops in proptest::collection::vec(op(), 1..60)) {
        let sim = Arc::new(SimMedium::new(SIZE as usize, PersistMode::CacheFlush));
        let mut newest: HashMap<(u8, Vec<u8>), Op> = HashMap::new();
        {
            let arena = Arena::with_medium(&config(), sim.clone()).expect("open");
            arena.recover_at(0, |_| {}).expect("recover");
            let mut index = HashMap::new();
            for (i, op) in ops.iter().enumerate() {
                let parts: Vec<&[u8]> = op.parts.iter().map(|p| &p[..]).collect();
                let (addr, _) = arena.append(i, RecordIn {
                    db: op.db, kind: op.kind, key: &op.key, value: &parts, expire_at: op.expire_at,
                }).expect("append");
                prop_assert_eq!(addr.get() % 8, 0);
                let r = arena.read(addr).expect("read");
                prop_assert_eq!(r.key, &op.key[..]);
                prop_assert_eq!(r.value, &op.parts.concat()[..]);
                prop_assert_eq!(r.kind(), op.kind);
                prop_assert_eq!(r.db(), op.db);
                prop_assert_eq!(r.expire_at(), op.expire_at);
                if let Some(old) = index.insert((op.db, op.key.clone()), addr) {
                    arena.release(old).expect("release");
                }
                newest.insert((op.db, op.key.clone()), op.clone());
            }
        }
        let sim2 = Arc::new(SimMedium::from_image(&sim.durable_image(), PersistMode::CacheFlush));
        let arena = Arena::with_medium(&config(), sim2).expect("reopen");
        prop_assert!(arena.stats().clean_shutdown_at_open);
        let found = Mutex::new(Vec::new());
        // now = 0: nothing counts as expired.
        let stats = arena.recover_at(0, |r| found.lock().push((r.db, r.key.to_vec(), r.addr))).expect("recover");
        prop_assert_eq!(stats.live_keys as usize, newest.len());
        for (db, key, addr) in found.into_inner() {
            let want = newest.get(&(db, key.clone())).expect("known key");
            let r = arena.read(addr).expect("read");
            prop_assert_eq!(r.value, &want.parts.concat()[..]);
            prop_assert_eq!(r.kind(), want.kind);
            prop_assert_eq!(r.expire_at(), want.expire_at);
        }
    }
}
