//! Criterion bench of the sorted set's hot operation under `redis-benchmark
//! -t zadd -r 100000`: re-scoring a random member of a 100,000-member set
//! (a hash probe, then a skip-list removal and insertion, each a walk of
//! dependent cache misses). Members are named as `redis-benchmark` names
//! them (`element:` and twelve digits).
//!
//! Run: `cargo bench -p amber-storage --bench zset`.

use amber_storage::types::zset::ZSetValue;
use criterion::{criterion_group, criterion_main, Criterion};

const MEMBERS: usize = 100_000;

/// xorshift64: a fixed, cheap stream of random numbers.
fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

fn rescore(c: &mut Criterion) {
    let mut next = rng(0x2545_F491_4F6C_DD1D);
    let members: Vec<Vec<u8>> = (0..MEMBERS)
        .map(|i| format!("element:{i:012}").into_bytes())
        .collect();
    let mut z = ZSetValue::new_skiplist();
    for m in &members {
        z.insert(m, (next() % MEMBERS as u64) as f64);
    }
    c.bench_function("zset re-score, 100k members", |b| {
        b.iter(|| {
            let r = next();
            let m = &members[(r % MEMBERS as u64) as usize];
            z.insert(m, ((r >> 24) % MEMBERS as u64) as f64)
        })
    });
}

criterion_group!(benches, rescore);
criterion_main!(benches);
