//! Criterion benches of the RESP front end, in ns per request:
//! parsing a pipelined batch of `SET key value` / `GET key` requests with our
//! `RequestParser` (and, for scale, with `redis-protocol`), and writing their
//! replies with `ReplyWriter`.
//!
//! Run: `cargo bench -p amber-server --bench resp`.

use amber_server::resp::{Frame, ReplyWriter, RequestParser};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const BATCH: usize = 1000;

fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn pipeline(set: bool) -> Vec<u8> {
    let value = vec![b'v'; 100];
    let mut buf = Vec::new();
    for i in 0..BATCH {
        let key = format!("key:{:012}", i);
        if set {
            buf.extend(encode(&[b"SET", key.as_bytes(), &value]));
        } else {
            buf.extend(encode(&[b"GET", key.as_bytes()]));
        }
    }
    buf
}

/// Parses every request of `buf`, touching each argument like the dispatcher.
fn parse_all(p: &mut RequestParser, buf: &[u8]) -> usize {
    let mut consumed = 0;
    let mut total = 0;
    while let Ok(Some(frame)) = p.parse(&buf[consumed..], true) {
        match frame {
            Frame::Multibulk { len } => {
                total += p.spans().iter().map(|r| r.len()).sum::<usize>();
                consumed += len;
            }
            Frame::Inline { len } | Frame::Empty { len } => consumed += len,
        }
    }
    total
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (name, buf) in [("set", pipeline(true)), ("get", pipeline(false))] {
        g.bench_function(format!("amber/{name}"), |b| {
            let mut p = RequestParser::default();
            b.iter(|| black_box(parse_all(&mut p, black_box(&buf))))
        });
        g.bench_function(format!("redis-protocol/{name}"), |b| {
            b.iter(|| {
                let mut rest = black_box(&buf[..]);
                let mut n = 0;
                while let Ok(Some((_, used))) = redis_protocol::resp2::decode::decode(rest) {
                    rest = &rest[used..];
                    n += 1;
                }
                black_box(n)
            })
        });
    }
    g.finish();
}

fn write(c: &mut Criterion) {
    let mut g = c.benchmark_group("write");
    g.throughput(Throughput::Elements(BATCH as u64));
    let value = vec![b'v'; 100];
    g.bench_function("set-replies", |b| {
        b.iter_batched_ref(
            ReplyWriter::new,
            |w| {
                for _ in 0..BATCH {
                    w.ok();
                }
                black_box(w.len())
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("get-replies", |b| {
        b.iter_batched_ref(
            ReplyWriter::new,
            |w| {
                for _ in 0..BATCH {
                    w.bulk(black_box(&value));
                }
                black_box(w.len())
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, parse, write);
criterion_main!(benches);
