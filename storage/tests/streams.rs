//! Streams in the tiered engine: a stream built by one append per command
//! is persisted as delta records, not rewritten whole (nor is it when a
//! consumer group reads it), and a reopen (after
//! a crash or a clean close) finds it exactly as it was, consumer groups
//! and pending entries included.

mod common;

use common::{crash_image, pmem_config};

use std::sync::atomic::Ordering;

use amber_storage::codec;
use amber_storage::types::stream::{NodeLimits, StreamId, Trim};
use amber_storage::types::StreamValue;
use amber_storage::{Keyspace, SetExpiry, Value};

/// Appends `n` entries to `key`, one guard (command) per entry.
fn append(ks: &Keyspace, key: &[u8], from: u64, n: u64) {
    for i in from..from + n {
        let mut g = ks.lock_one(0, key).expect("lock");
        let value = format!("value-{i:08}");
        let fv: [&[u8]; 4] = [b"field", value.as_bytes(), b"n", b"1"];
        match g.get_mut(key) {
            Some(Value::Stream(s)) => {
                assert!(s.append(StreamId::new(i, 0), &fv, NodeLimits::default()));
            }
            Some(_) => panic!("not a stream"),
            None => {
                let mut s = StreamValue::new();
                s.append(StreamId::new(i, 0), &fv, NodeLimits::default());
                g.set(key, Value::from(s), SetExpiry::Persist).expect("set");
            }
        }
    }
}

fn with_stream<T>(ks: &Keyspace, key: &[u8], f: impl FnOnce(&mut StreamValue) -> T) -> T {
    let mut g = ks.lock_one(0, key).expect("lock");
    match g.get_mut(key) {
        Some(Value::Stream(s)) => f(s),
        _ => panic!("no stream"),
    }
}

fn snapshot(ks: &Keyspace, key: &[u8]) -> Vec<u8> {
    let mut g = ks.lock_one(0, key).expect("lock");
    codec::encode(g.peek(key).expect("present")).1.into_owned()
}

#[test]
fn appends_are_deltas_and_the_stream_survives_a_crash_and_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ks = Keyspace::open(pmem_config(dir.path(), 64 << 20)).expect("open");
    append(&ks, b"s", 1, 3000);
    let deltas = ks.tiers.stats.delta_writes.load(Ordering::Relaxed);
    assert!(deltas > 2500, "only {deltas} of 3000 appends were deltas");
    let used = ks.tiers.arena.as_ref().expect("arena").stats().used_bytes;
    // Whole rewrites would be ~3000²/2 × ~30 bytes ≈ 135 MB.
    assert!(used < 8 << 20, "{used} bytes used for 3000 appends");
    // Deletions, trims, XSETID and consumer-group changes are deltas too.
    with_stream(&ks, b"s", |s| {
        assert!(s.delete(StreamId::new(5, 0)));
        assert_eq!(s.trim(Trim::MaxLen(2500), true, 0), 499);
        assert!(s.create_group(b"grp", StreamId::new(600, 0), 100));
    });
    // A group reading the stream entry by entry (as XREADGROUP COUNT 1
    // then XACK would) writes small deltas, not the whole stream.
    let deltas = ks.tiers.stats.delta_writes.load(Ordering::Relaxed);
    let used = ks.tiers.arena.as_ref().expect("arena").stats().used_bytes;
    for i in 601..801 {
        with_stream(&ks, b"s", |s| {
            let id = StreamId::new(i, 0);
            assert_eq!(s.touch_consumer(b"grp", b"alice", 1000 + i), Some(i == 601));
            assert!(s.set_pending(b"grp", id, b"alice", 1000 + i, 1));
            assert!(s.set_group_cursor(b"grp", id, i as i64));
        });
        if i % 2 == 0 {
            with_stream(&ks, b"s", |s| assert!(s.ack(b"grp", StreamId::new(i, 0))));
        }
    }
    let group_deltas = ks.tiers.stats.delta_writes.load(Ordering::Relaxed) - deltas;
    assert!(
        group_deltas >= 290,
        "only {group_deltas} of 300 group writes were deltas"
    );
    let grown = ks.tiers.arena.as_ref().expect("arena").stats().used_bytes - used;
    assert!(
        grown < 1 << 20,
        "{grown} bytes written for 300 group changes"
    );
    append(&ks, b"s", 3001, 50);
    with_stream(&ks, b"s", |s| {
        s.set_meta(StreamId::new(9999, 0), Some(4000), None)
    });
    let before = snapshot(&ks, b"s");
    let image = crash_image(dir.path());
    drop(ks);
    let ks = Keyspace::open(pmem_config(image.path(), 64 << 20)).expect("reopen");
    assert_eq!(snapshot(&ks, b"s"), before);
    with_stream(&ks, b"s", |s| {
        assert_eq!(s.len(), 2550);
        let g = s.group(b"grp").expect("group");
        assert_eq!(g.pel.len(), 100);
        assert_eq!(g.consumers[b"alice".as_slice()].pel.len(), 100);
        assert_eq!(g.last_id, StreamId::new(800, 0));
    });
    // Appends continue the chain after the restart; a clean close and a
    // reopen without a hot tier (every key decoded from its record) agree.
    append(&ks, b"s", 10_000, 20);
    let after = snapshot(&ks, b"s");
    ks.close().expect("close");
    drop(ks);
    let ks = Keyspace::open(pmem_config(image.path(), 0)).expect("reopen");
    assert_eq!(snapshot(&ks, b"s"), after);
}
