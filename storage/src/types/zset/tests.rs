//! Unit and property tests of the sorted set against a naive model: a `Vec`
//! of `(score, member)` kept sorted in Redis's order.

use proptest::prelude::*;

use super::*;

/// The model: sorted `(score, member)` pairs.
#[derive(Debug, Default, Clone)]
struct Model(Vec<(f64, Vec<u8>)>);

impl Model {
    fn sort(&mut self) {
        self.0.sort_by(|a, b| {
            a.0.partial_cmp(&b.0)
                .unwrap_or(Ordering::Equal)
                .then_with(|| a.1.cmp(&b.1))
        });
    }
    fn set(&mut self, m: &[u8], s: f64) {
        self.0.retain(|(_, x)| x != m);
        self.0.push((s, m.to_vec()));
        self.sort();
    }
    fn remove(&mut self, m: &[u8]) -> Option<f64> {
        let i = self.0.iter().position(|(_, x)| x == m)?;
        Some(self.0.remove(i).0)
    }
}

fn check(z: &ZSetValue, model: &Model) {
    assert_eq!(z.len(), model.0.len());
    let got: Vec<(f64, Vec<u8>)> = z.iter().map(|(m, s)| (s, m.to_vec())).collect();
    assert_eq!(got, model.0);
    let back: Vec<(f64, Vec<u8>)> = z
        .iter_from(z.len().saturating_sub(1), true)
        .map(|(m, s)| (s, m.to_vec()))
        .collect();
    let mut rev = model.0.clone();
    rev.reverse();
    if !z.is_empty() {
        assert_eq!(back, rev);
    }
    for (i, (s, m)) in model.0.iter().enumerate() {
        assert_eq!(z.rank(m), Some(i));
        assert_eq!(z.score(m), Some(*s));
        assert_eq!(
            z.get(i).map(|(m, s)| (s, m.to_vec())),
            Some((*s, m.clone()))
        );
    }
    assert_eq!(z.get(model.0.len()), None);
}

#[derive(Debug, Clone)]
enum Op {
    Set(u8, i8),
    Remove(u8),
    RemoveRanks(u8, u8),
    Pop(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u8>(), -5i8..5).prop_map(|(m, s)| Op::Set(m % 64, s)),
        2 => any::<u8>().prop_map(|m| Op::Remove(m % 64)),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::RemoveRanks(a % 20, b % 20)),
        1 => any::<bool>().prop_map(Op::Pop),
    ]
}

fn member(m: u8) -> Vec<u8> {
    format!("m{m}").into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn matches_sorted_vec(ops in prop::collection::vec(op(), 1..300)) {
        let mut z = ZSetValue::new();
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Set(m, s) => {
                    let s = f64::from(s) / 2.0;
                    z.insert(&member(m), s);
                    model.set(&member(m), s);
                }
                Op::Remove(m) => {
                    prop_assert_eq!(z.remove(&member(m)), model.remove(&member(m)));
                }
                Op::RemoveRanks(a, b) => {
                    let (a, b) = (a as usize, b as usize);
                    let n = z.remove_rank_range(a, b);
                    let want = if a <= b && a < model.0.len() {
                        let end = b.min(model.0.len() - 1);
                        model.0.drain(a..=end).count()
                    } else {
                        0
                    };
                    prop_assert_eq!(n, want);
                }
                Op::Pop(max) => {
                    let want = if max { model.0.pop() } else if model.0.is_empty() { None } else { Some(model.0.remove(0)) };
                    prop_assert_eq!(z.pop(max).map(|(m, s)| (s, m)), want);
                }
            }
            check(&z, &model);
        }
        // Score and lex ranges against the model.
        for (min, max, minex, maxex) in [(-2.0, 1.0, false, false), (-1.0, -1.0, false, false), (0.0, 2.0, true, true), (-9.0, 9.0, false, true), (1.0, 0.0, false, false)] {
            let r = ScoreRange { min, max, minex, maxex };
            let inside: Vec<usize> = model.0.iter().enumerate().filter(|(_, (s, _))| r.gte_min(*s) && r.lte_max(*s)).map(|(i, _)| i).collect();
            prop_assert_eq!(z.first_in_score_range(&r), inside.first().copied());
            prop_assert_eq!(z.last_in_score_range(&r), inside.last().copied());
            prop_assert_eq!(z.count_in_score_range(&r), inside.len());
        }
        let bytes = z.encode();
        prop_assert_eq!(ZSetValue::decode(&bytes), Some(z.clone()));
    }

    #[test]
    fn lex_ranges_with_one_score(members in prop::collection::btree_set(prop::collection::vec(b'a'..b'e', 0..4), 0..40), lo in prop::collection::vec(b'a'..b'e', 0..3), hi in prop::collection::vec(b'a'..b'e', 0..3), minex: bool, maxex: bool, listpack: bool) {
        let mut z = ZSetValue::new();
        z.set_listpack(listpack);
        for m in &members {
            z.insert(m, 0.0);
        }
        let sorted: Vec<&Vec<u8>> = members.iter().collect();
        for (min, max) in [(LexItem::Str(lo.clone()), LexItem::Str(hi.clone())), (LexItem::Min, LexItem::Str(hi.clone())), (LexItem::Str(lo.clone()), LexItem::Max), (LexItem::Min, LexItem::Max)] {
            let r = LexRange { min, max, minex, maxex };
            let inside: Vec<usize> = sorted.iter().enumerate().filter(|(_, m)| r.gte_min(m) && r.lte_max(m)).map(|(i, _)| i).collect();
            prop_assert_eq!(z.first_in_lex_range(&r), inside.first().copied());
            prop_assert_eq!(z.last_in_lex_range(&r), inside.last().copied());
            prop_assert_eq!(z.count_in_lex_range(&r), inside.len());
        }
    }
}

#[test]
fn redis_order_and_signed_zero() {
    let mut lp = ZSetValue::new();
    lp.insert(b"a", -0.0);
    assert!(lp.score(b"a").is_some_and(|s| s.is_sign_positive()));
    let mut z = ZSetValue::new_skiplist();
    z.insert(b"b", 0.0);
    z.insert(b"a", -0.0);
    z.insert(b"c", f64::NEG_INFINITY);
    z.insert(b"d", f64::INFINITY);
    let order: Vec<&[u8]> = z.iter().map(|(m, _)| m).collect();
    assert_eq!(order, vec![&b"c"[..], b"a", b"b", b"d"]);
    assert!(z.score(b"a").is_some_and(|s| s.is_sign_negative()));
    let back = ZSetValue::decode(&z.encode());
    assert!(back
        .as_ref()
        .and_then(|b| b.score(b"a"))
        .is_some_and(|s| s == 0.0 && s.is_sign_negative()));
    assert_eq!(back, Some(z.clone()));
    z.fit_encoding(ListpackLimits::default());
    assert_eq!(z.encoding(), "listpack");
    assert!(z.score(b"a").is_some_and(|s| s.is_sign_positive()));
}

#[test]
fn add_follows_zadd_flags_and_converts() {
    let lim = ListpackLimits {
        entries: 2,
        value: 3,
    };
    let mut z = ZSetValue::new();
    let f = AddFlags::default();
    assert_eq!(z.add(b"a", 1.0, f, lim), AddOutcome::Added(1.0));
    assert_eq!(z.add(b"a", 1.0, f, lim), AddOutcome::Unchanged(1.0));
    let gt = AddFlags { gt: true, ..f };
    assert_eq!(z.add(b"a", 0.5, gt, lim), AddOutcome::Skipped);
    assert_eq!(z.add(b"a", 2.0, gt, lim), AddOutcome::Updated(2.0));
    let incr = AddFlags { incr: true, ..f };
    assert_eq!(
        z.add(b"a", f64::INFINITY, incr, lim),
        AddOutcome::Updated(f64::INFINITY)
    );
    assert_eq!(
        z.add(b"a", f64::NEG_INFINITY, incr, lim),
        AddOutcome::NotANumber
    );
    assert_eq!(z.add(b"b", f64::NAN, f, lim), AddOutcome::NotANumber);
    let xx = AddFlags { xx: true, ..f };
    assert_eq!(z.add(b"b", 1.0, xx, lim), AddOutcome::Skipped);
    assert!(z.is_listpack());
    assert_eq!(z.add(b"long", 1.0, f, lim), AddOutcome::Added(1.0));
    assert!(!z.is_listpack());
    assert_eq!(z.encoding(), "skiplist");
    let back = ZSetValue::decode(&z.encode());
    assert_eq!(back.map(|b| b.encoding()), Some("skiplist"));
}

#[test]
fn decode_rejects_malformed() {
    let mut z = ZSetValue::new();
    z.insert(b"x", 1.0);
    z.insert(b"y", 2.0);
    let good = z.encode();
    assert!(ZSetValue::decode(&good).is_some());
    for cut in 0..good.len() {
        assert_eq!(ZSetValue::decode(&good[..cut]), None, "cut at {cut}");
    }
    let mut extra = good.clone();
    extra.push(0);
    assert_eq!(ZSetValue::decode(&extra), None);
    let mut bad_version = good.clone();
    bad_version[0] = 9;
    assert_eq!(ZSetValue::decode(&bad_version), None);
    let mut nan = good.clone();
    nan[6..14].copy_from_slice(&f64::NAN.to_bits().to_le_bytes());
    assert_eq!(ZSetValue::decode(&nan), None);
    // A duplicate member.
    let mut dup = vec![1, 0, 2, 0, 0, 0];
    for _ in 0..2 {
        dup.extend_from_slice(&1.0f64.to_bits().to_le_bytes());
        dup.extend_from_slice(&1u32.to_le_bytes());
        dup.push(b'a');
    }
    assert_eq!(ZSetValue::decode(&dup), None);
    let empty = ZSetValue::new();
    assert_eq!(ZSetValue::decode(&empty.encode()), Some(empty));
}

#[test]
fn large_set_ranks() {
    let mut z = ZSetValue::new_skiplist();
    for i in 0..10_000u32 {
        z.insert(format!("{i:05}").as_bytes(), f64::from(i % 100));
    }
    for i in (0..10_000usize).step_by(997) {
        let (m, _) = z.get(i).map(|(m, s)| (m.to_vec(), s)).unwrap_or_default();
        assert_eq!(z.rank(&m), Some(i));
    }
    let r = ScoreRange {
        min: 10.0,
        max: 20.0,
        minex: true,
        maxex: false,
    };
    assert_eq!(z.count_in_score_range(&r), 1000);
    assert_eq!(z.remove_rank_range(0, 4999), 5000);
    assert_eq!(z.len(), 5000);
}

/// Thousands of members, so nodes taller than the levels a node holds
/// inline exist, churned (re-scored, removed, emptied, refilled) so the
/// slots of their upper links are freed and reused: order, ranks and
/// scores stay those of the model.
#[test]
fn tall_nodes_survive_churn() {
    let mut z = ZSetValue::new_skiplist();
    let mut model = Model::default();
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for round in 0..3 {
        for _ in 0..6_000 {
            let r = next();
            let m = format!("m{}", r % 2_000).into_bytes();
            if r % 5 == 0 {
                assert_eq!(z.remove(&m), model.remove(&m), "round {round}");
            } else {
                let s = f64::from((r >> 20) as u32 % 300);
                z.insert(&m, s);
                model.set(&m, s);
            }
        }
        check(&z, &model);
        // Empty it (the list gives its slots back), then refill.
        while let Some((m, s)) = z.pop(round % 2 == 0) {
            let i = model.0.iter().position(|(_, x)| *x == m).expect("in model");
            assert_eq!(model.0.remove(i), (s, m));
        }
        assert!(model.0.is_empty() && z.is_empty());
    }
}
