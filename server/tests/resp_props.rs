//! Property tests: our request parser and reply writer agree with the
//! `redis-protocol` crate, the reference implementation of RESP.
//!
//! - Random pipelines of valid multibulk requests (binary arguments,
//!   including CR, LF and empty ones), encoded by redis-protocol, parse to the
//!   same arguments with our parser, also when the bytes arrive in random
//!   pieces (the parser resumes across reads).
//! - Arbitrary bytes never panic the parser, and every error it reports is a
//!   `Protocol error: ...`.
//! - Random reply trees written by our `ReplyWriter` decode with
//!   redis-protocol to the same values, in RESP2 and in RESP3.

use amber_server::resp::{Frame, Protocol, ReplyWriter, RequestParser};
use proptest::prelude::*;
use redis_protocol::resp2::types::{OwnedFrame as F2, Resp2Frame};
use redis_protocol::resp3::types::OwnedFrame as F3;

type Request = Vec<Vec<u8>>;

fn encode_with_reference(reqs: &[Request]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in reqs {
        let frame = F2::Array(r.iter().map(|a| F2::BulkString(a.clone())).collect());
        let mut buf = vec![0u8; frame.encode_len(false)];
        let n = redis_protocol::resp2::encode::encode(&mut buf, &frame, false).expect("encode");
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// Feeds `bytes` to a parser in pieces ending at `cuts`, like a connection
/// whose reads return those pieces, and returns every request parsed.
fn parse_in_pieces(bytes: &[u8], cuts: &[usize]) -> Result<Vec<Request>, String> {
    let mut p = RequestParser::default();
    let mut consumed = 0;
    let mut out = Vec::new();
    let mut ends: Vec<usize> = cuts.iter().map(|&c| c.min(bytes.len())).collect();
    ends.push(bytes.len());
    ends.sort_unstable();
    for end in ends {
        let available = &bytes[..end];
        loop {
            let pending = &available[consumed..];
            match p.parse(pending, true) {
                Ok(Some(Frame::Multibulk { len })) => {
                    let args = p
                        .spans()
                        .iter()
                        .map(|r| pending[r.clone()].to_vec())
                        .collect();
                    out.push(args);
                    consumed += len;
                }
                Ok(Some(other)) => return Err(format!("unexpected frame {other:?}")),
                Ok(None) => break,
                Err(e) => return Err(e.0),
            }
        }
    }
    if consumed != bytes.len() {
        return Err(format!("{} bytes left unparsed", bytes.len() - consumed));
    }
    Ok(out)
}

fn request() -> impl Strategy<Value = Request> {
    let arg = prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..24),
        1 => prop::collection::vec(prop::sample::select(vec![b'\r', b'\n', b'$', b'*', b'a']), 0..8),
        1 => prop::collection::vec(any::<u8>(), 200..3000),
    ];
    prop::collection::vec(arg, 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn parser_agrees_with_redis_protocol(
        reqs in prop::collection::vec(request(), 1..6),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let bytes = encode_with_reference(&reqs);
        // The reference decodes its own encoding back to the requests...
        let mut rest = &bytes[..];
        let mut reference = Vec::new();
        while !rest.is_empty() {
            let (frame, n) = redis_protocol::resp2::decode::decode(rest)
                .expect("reference decode")
                .expect("complete frame");
            let F2::Array(items) = frame else { panic!("not an array") };
            reference.push(items.into_iter().map(|i| match i {
                F2::BulkString(b) => b,
                other => panic!("not a bulk: {other:?}"),
            }).collect::<Request>());
            rest = &rest[n..];
        }
        prop_assert_eq!(&reference, &reqs);
        // ...and ours agrees, whole and in pieces.
        prop_assert_eq!(parse_in_pieces(&bytes, &[]), Ok(reqs.clone()));
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        prop_assert_eq!(parse_in_pieces(&bytes, &cuts), Ok(reqs));
    }

    #[test]
    fn parser_never_panics_on_garbage(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..256),
            prop::collection::vec(prop::sample::select(b"*$\r\n0123456789-+ \"'ab".to_vec()), 0..256),
        ],
        authenticated in any::<bool>(),
    ) {
        let mut p = RequestParser::new(1024);
        let mut consumed = 0;
        // Each step consumes bytes or stops: bounded by the input length.
        for _ in 0..=bytes.len() {
            match p.parse(&bytes[consumed..], authenticated) {
                Ok(Some(Frame::Multibulk { len } | Frame::Inline { len } | Frame::Empty { len })) => {
                    prop_assert!(len > 0 && consumed + len <= bytes.len());
                    consumed += len;
                }
                Ok(None) => break,
                Err(e) => {
                    prop_assert!(e.0.starts_with("Protocol error: "), "{}", e.0);
                    break;
                }
            }
        }
    }
}

/// A reply as a command would write it.
#[derive(Debug, Clone)]
enum V {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Null,
    Bool(bool),
    Double(f64),
    Verbatim(String),
    Array(Vec<V>),
    /// Keys are distinct bulk strings.
    Map(Vec<(Vec<u8>, V)>),
    /// Distinct bulk strings.
    Set(Vec<Vec<u8>>),
}

fn reply_tree() -> impl Strategy<Value = V> {
    let leaf = prop_oneof![
        "[a-zA-Z0-9 ]{0,12}".prop_map(V::Simple),
        "(ERR|WRONGTYPE|NOAUTH) [a-z ]{0,12}".prop_map(V::Error),
        any::<i64>().prop_map(V::Int),
        prop::collection::vec(any::<u8>(), 0..32).prop_map(V::Bulk),
        Just(V::Null),
        any::<bool>().prop_map(V::Bool),
        prop_oneof![
            any::<f64>(),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(0.1),
            Just(-0.0),
            Just(1e300),
            Just(3.0)
        ]
        .prop_map(V::Double),
        "[a-z\n ]{0,16}".prop_map(V::Verbatim),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(V::Array),
            prop::collection::vec(inner, 0..5).prop_map(|vs| V::Map(
                vs.into_iter()
                    .enumerate()
                    .map(|(i, v)| (format!("key{i}").into_bytes(), v))
                    .collect()
            )),
            prop::collection::btree_set(prop::collection::vec(any::<u8>(), 0..8), 0..5)
                .prop_map(|s| V::Set(s.into_iter().collect())),
        ]
    })
}

fn write(w: &mut ReplyWriter, v: &V) {
    match v {
        V::Simple(s) => w.simple(s),
        V::Error(s) => w.error(s),
        V::Int(n) => w.int(*n),
        V::Bulk(b) => w.bulk(b),
        V::Null => w.null(),
        V::Bool(b) => w.boolean(*b),
        V::Double(d) => w.double(*d),
        V::Verbatim(t) => w.verbatim("txt", t.as_bytes()),
        V::Array(items) => {
            w.array(items.len());
            items.iter().for_each(|i| write(w, i));
        }
        V::Map(pairs) => {
            w.map(pairs.len());
            for (k, v) in pairs {
                w.bulk(k);
                write(w, v);
            }
        }
        V::Set(items) => {
            w.set(items.len());
            items.iter().for_each(|i| w.bulk(i));
        }
    }
}

fn same_double(text: &[u8], d: f64) -> bool {
    let got: Option<f64> = std::str::from_utf8(text).ok().and_then(|s| s.parse().ok());
    got.is_some_and(|g| g == d || (g.is_nan() && d.is_nan()))
}

fn check2(v: &V, f: &F2) -> Result<(), String> {
    let ok = match (v, f) {
        (V::Simple(s), F2::SimpleString(g)) => s.as_bytes() == &g[..],
        (V::Error(s), F2::Error(g)) => s == g,
        (V::Int(n), F2::Integer(g)) => n == g,
        (V::Bulk(b), F2::BulkString(g)) => b == g,
        (V::Null, F2::Null) => true,
        (V::Bool(b), F2::Integer(g)) => *g == *b as i64,
        (V::Double(d), F2::BulkString(g)) => same_double(g, *d),
        (V::Verbatim(t), F2::BulkString(g)) => t.as_bytes() == &g[..],
        (V::Array(items), F2::Array(g)) => {
            if items.len() != g.len() {
                return Err(format!("array length {} vs {}", items.len(), g.len()));
            }
            return items.iter().zip(g).try_for_each(|(i, g)| check2(i, g));
        }
        (V::Map(pairs), F2::Array(g)) => {
            if pairs.len() * 2 != g.len() {
                return Err("flattened map length".into());
            }
            for ((k, v), kv) in pairs.iter().zip(g.chunks(2)) {
                check2(&V::Bulk(k.clone()), &kv[0])?;
                check2(v, &kv[1])?;
            }
            return Ok(());
        }
        (V::Set(items), F2::Array(g)) => {
            items.len() == g.len()
                && items
                    .iter()
                    .zip(g)
                    .all(|(i, g)| check2(&V::Bulk(i.clone()), g).is_ok())
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("RESP2: wrote {v:?}, reference decoded {f:?}"))
    }
}

fn check3(v: &V, f: &F3) -> Result<(), String> {
    let ok = match (v, f) {
        (V::Simple(s), F3::SimpleString { data, .. }) => s.as_bytes() == &data[..],
        (V::Error(s), F3::SimpleError { data, .. }) => s == data,
        (V::Int(n), F3::Number { data, .. }) => n == data,
        (V::Bulk(b), F3::BlobString { data, .. }) => b == data,
        (V::Null, F3::Null) => true,
        (V::Bool(b), F3::Boolean { data, .. }) => b == data,
        (V::Double(d), F3::Double { data, .. }) => data == d || (data.is_nan() && d.is_nan()),
        (V::Verbatim(t), F3::VerbatimString { data, format, .. }) => {
            t.as_bytes() == &data[..]
                && *format == redis_protocol::resp3::types::VerbatimStringFormat::Text
        }
        (V::Array(items), F3::Array { data, .. }) => {
            if items.len() != data.len() {
                return Err(format!("array length {} vs {}", items.len(), data.len()));
            }
            return items.iter().zip(data).try_for_each(|(i, g)| check3(i, g));
        }
        (V::Map(pairs), F3::Map { data, .. }) => {
            if pairs.len() != data.len() {
                return Err("map size".into());
            }
            for (k, v) in pairs {
                let key = F3::BlobString {
                    data: k.clone(),
                    attributes: None,
                };
                let got = data
                    .get(&key)
                    .ok_or_else(|| format!("map lacks key {k:?}"))?;
                check3(v, got)?;
            }
            return Ok(());
        }
        (V::Set(items), F3::Set { data, .. }) => {
            items.len() == data.len()
                && items.iter().all(|i| {
                    data.contains(&F3::BlobString {
                        data: i.clone(),
                        attributes: None,
                    })
                })
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("RESP3: wrote {v:?}, reference decoded {f:?}"))
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn writer_output_decodes_to_the_same_value(replies in prop::collection::vec(reply_tree(), 1..5)) {
        for proto in [Protocol::Resp2, Protocol::Resp3] {
            let mut w = ReplyWriter::new();
            w.proto = proto;
            replies.iter().for_each(|v| write(&mut w, v));
            let mut rest = w.as_bytes();
            for v in &replies {
                let n = match proto {
                    Protocol::Resp2 => {
                        let (f, n) = redis_protocol::resp2::decode::decode(rest)
                            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?
                            .ok_or_else(|| TestCaseError::fail("incomplete RESP2"))?;
                        check2(v, &f).map_err(TestCaseError::fail)?;
                        n
                    }
                    Protocol::Resp3 => {
                        let (f, n) = redis_protocol::resp3::decode::complete::decode(rest)
                            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?
                            .ok_or_else(|| TestCaseError::fail("incomplete RESP3"))?;
                        check3(v, &f).map_err(TestCaseError::fail)?;
                        n
                    }
                };
                rest = &rest[n..];
            }
            prop_assert!(rest.is_empty(), "{} trailing bytes", rest.len());
        }
    }
}

/// `%.17g` doubles written by the writer read back exactly (RESP3 `,`).
#[test]
fn doubles_round_trip() {
    for d in [
        0.1,
        1.0 / 3.0,
        1e-300,
        123456789.125,
        -2.5e17,
        f64::MAX,
        f64::MIN_POSITIVE,
    ] {
        let mut w = ReplyWriter::new();
        w.proto = Protocol::Resp3;
        w.double(d);
        let text = &w.as_bytes()[1..w.len() - 2];
        assert!(
            same_double(text, d),
            "{d} written as {}",
            String::from_utf8_lossy(text)
        );
    }
}
