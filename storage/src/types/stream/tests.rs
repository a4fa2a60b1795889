use super::*;
use crate::types::journal::{apply, Changes};
use crate::value::Value;
use proptest::prelude::*;

fn id(ms: u64, seq: u64) -> StreamId {
    StreamId::new(ms, seq)
}

fn filled(n: u64) -> StreamValue {
    let mut s = StreamValue::new();
    for i in 1..=n {
        assert!(s.append(id(i, 0), &[b"f", b"v"], NodeLimits::default()));
    }
    s
}

#[test]
fn appends_need_growing_ids() {
    let mut s = filled(3);
    assert!(!s.append(id(3, 0), &[b"f", b"v"], NodeLimits::default()));
    assert!(!s.append(id(2, 5), &[b"f", b"v"], NodeLimits::default()));
    assert_eq!((s.len(), s.last_id(), s.entries_added()), (3, id(3, 0), 3));
    assert_eq!(s.first_id(), id(1, 0));
}

#[test]
fn nodes_hold_one_hundred_small_entries() {
    let s = filled(250);
    assert_eq!(s.node_count(), 3);
    let mut t = s.clone();
    // Approximate: only whole nodes go.
    assert_eq!(t.trim(Trim::MaxLen(160), true, 0), 0);
    assert_eq!(t.trim(Trim::MaxLen(150), true, 0), 100);
    assert_eq!(t.len(), 150);
    // Exact: into the node.
    assert_eq!(t.trim(Trim::MaxLen(10), false, 0), 140);
    assert_eq!(t.first_id(), id(241, 0));
    // MINID removes a node only when its last entry is below the id.
    let mut u = s.clone();
    assert_eq!(u.trim(Trim::MinId(id(100, 0)), true, 0), 0);
    assert_eq!(u.trim(Trim::MinId(id(101, 0)), true, 0), 100);
    assert_eq!(u.trim(Trim::MinId(id(105, 0)), false, 0), 4);
    // LIMIT bounds whole-node removal.
    let mut v = s;
    assert_eq!(v.trim(Trim::MaxLen(0), true, 150), 100);
}

#[test]
fn large_values_start_nodes_by_bytes() {
    let mut s = StreamValue::new();
    let big = [b'x'; 1000];
    for i in 1..=10 {
        s.append(id(i, 0), &[b"f", &big], NodeLimits::default());
    }
    // 4096-byte nodes hold four ~1000-byte values.
    assert_eq!(s.node_count(), 3);
}

#[test]
fn xdel_removes_empty_nodes_and_tracks_max_deleted() {
    let mut s = filled(3);
    assert!(s.delete(id(2, 0)));
    assert!(!s.delete(id(2, 0)));
    assert_eq!(s.max_deleted(), id(2, 0));
    assert!(s.delete(id(1, 0)) && s.delete(id(3, 0)));
    assert_eq!(
        (s.len(), s.node_count(), s.first_id()),
        (0, 0, StreamId::MIN)
    );
    assert_eq!(s.last_id(), id(3, 0));
}

#[test]
fn record_round_trip_with_groups() {
    let mut s = filled(120);
    s.delete(id(7, 0));
    s.set_meta(id(500, 1), Some(999), Some(id(8, 0)));
    assert!(s.create_group(b"g", id(5, 0), 5));
    s.touch_consumer(b"g", b"alice", 42);
    s.touch_consumer(b"g", b"bob", 43);
    s.set_pending(b"g", id(3, 0), b"alice", 100, 1);
    s.set_pending(b"g", id(4, 0), b"bob", 101, 1);
    s.set_pending(b"g", id(4, 0), b"alice", 102, 2);
    let bytes = s.encode();
    let back = StreamValue::decode(&bytes).expect("decodes");
    assert_eq!(back, s);
    let g = back.group(b"g").expect("group");
    assert_eq!(g.consumers[b"alice".as_slice()].pel.len(), 2);
    assert_eq!(g.pel[&id(4, 0)].delivery_count, 2);
    assert_eq!(StreamValue::decode(&bytes[..bytes.len() - 1]), None);
}

#[test]
fn lag_and_distance() {
    let mut s = filled(5);
    assert_eq!(s.estimate_distance(id(5, 0)), 5);
    assert_eq!(s.estimate_distance(id(1, 0)), 1);
    assert_eq!(s.estimate_distance(StreamId::MIN), 0);
    assert_eq!(s.estimate_distance(id(3, 0)), ENTRIES_READ_UNKNOWN);
    s.delete(id(2, 0));
    assert_eq!(s.group_lag(&Group::new(StreamId::MIN, 0)), None);
}

proptest! {
    #[test]
    fn record_round_trip(ops in proptest::collection::vec((0u8..4, 0u64..400, 0usize..300), 1..80)) {
        let mut s = StreamValue::new();
        let mut next = 1u64;
        for (op, x, len) in ops {
            match op {
                0 | 1 => {
                    let v = vec![b'v'; len];
                    let fields: [&[u8]; 4] = [b"a", &v, if x % 2 == 0 { b"b" } else { b"c" }, b"1"];
                    s.append(id(next, x % 3), &fields, NodeLimits { max_bytes: 4096, max_entries: 7 });
                    next += 1 + x % 2;
                }
                2 => { s.delete(id(x % (next + 1), 0)); }
                _ => { s.trim(if x % 2 == 0 { Trim::MaxLen(x % 30) } else { Trim::MinId(id(x % next, 0)) }, len % 2 == 0, (len % 3) as u64 * 5); }
            }
        }
        prop_assert_eq!(StreamValue::decode(&s.encode()), Some(s));
    }

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = StreamValue::decode(&bytes);
    }

    #[test]
    fn stream_ops_replay(ops in proptest::collection::vec((0u8..13, 0u64..60, 0usize..200), 1..60)) {
        let mut v = Value::from(StreamValue::new());
        v.journal_mut().expect("a collection").start();
        let mut next = 1u64;
        for (op, x, len) in ops {
            let before = crate::codec::encode(&v).1.into_owned();
            let Value::Stream(s) = &mut v else { unreachable!() };
            match op {
                0 | 1 => {
                    let val = vec![b'v'; len];
                    let fields: [&[u8]; 2] = [if x % 2 == 0 { b"a" } else { b"b" }, &val];
                    s.append(id(next, 0), &fields, NodeLimits { max_bytes: 1024, max_entries: 5 });
                    next += 1;
                }
                2 => { s.delete(id(x % next, 0)); }
                3 => { s.trim(if x % 2 == 0 { Trim::MaxLen(x % 20) } else { Trim::MinId(id(x % next, 0)) }, len % 2 == 0, (len % 3) as u64 * 3); }
                4 => { s.set_meta(id(next + x, 0), Some(s.entries_added() + x), None); next += x + 1; }
                5 => { s.create_group(if x % 2 == 0 { b"g" } else { b"h" }, id(x, 0), x as i64 - 1); }
                6 => { s.destroy_group(if len % 4 == 0 { b"g" } else { b"h" }); }
                7 => { s.set_group_cursor(b"g", id(x, 1), len as i64); }
                8 => { s.touch_consumer(b"g", if x % 2 == 0 { b"alice" } else { b"bob" }, len as u64); }
                9 => { s.delete_consumer(b"g", if x % 2 == 0 { b"alice" } else { b"bob" }); }
                10 | 11 => {
                    let owner: &[u8] = if len % 2 == 0 { b"alice" } else { b"bob" };
                    s.set_pending(b"g", id(x % next, 0), owner, len as u64, x);
                }
                _ => { s.ack(b"g", id(x % next, 0)); }
            }
            match v.journal_mut().expect("a collection").take() {
                Changes::Ops(ops) => {
                    let mut replayed = crate::codec::decode(crate::codec::KIND_STREAM, &before).expect("decodes");
                    apply(&mut replayed, &ops).expect("ops apply");
                    prop_assert_eq!(&replayed, &v);
                }
                Changes::Overflow => {}
                Changes::Unknown => panic!("journal stopped recording"),
            }
        }
    }
}
