//! Test harness for Amber's end-to-end tests.
//!
//! Everything here talks to real processes over TCP on 127.0.0.1:
//! [`ServerProcess`] starts `amber-server` (found or built by [`binary`]) or
//! the reference `redis-server` on a free port in a temporary directory and
//! kills it on drop; [`RespClient`] sends requests and returns each reply's
//! exact bytes; [`script`] is the conformance-script format and normalizer;
//! [`support`] asks Amber which commands it implements; [`tools`] runs
//! `redis-cli` and `redis-benchmark`.

pub mod binary;
pub mod client;
pub mod minimal;
pub mod process;
pub mod replication;
pub mod reply;
pub mod restartable;
pub mod script;
pub mod support;
pub mod tools;
pub mod values;

pub use client::RespClient;
pub use process::{Kind, ServerProcess};
pub use restartable::RestartableServer;

/// A Redis and an Amber started side by side for differential tests.
pub struct Pair {
    /// The reference.
    pub redis: ServerProcess,
    /// The server under test.
    pub amber: ServerProcess,
}

impl Pair {
    /// Starts both; `amber_extra` goes to Amber only, `common` to both.
    pub fn start(common: &[&str], amber_extra: &[&str]) -> Pair {
        let mut a: Vec<&str> = common.to_vec();
        a.extend_from_slice(amber_extra);
        // Start both concurrently: each takes tens of milliseconds.
        let redis_args: Vec<String> = common.iter().map(|s| s.to_string()).collect();
        let t = std::thread::spawn(move || {
            let r: Vec<&str> = redis_args.iter().map(String::as_str).collect();
            ServerProcess::redis(&r)
        });
        let amber = ServerProcess::amber(&a);
        let redis = t.join().expect("redis start panicked");
        Pair { redis, amber }
    }

    /// Connects to both: (redis, amber).
    pub fn clients(&self) -> (RespClient, RespClient) {
        (self.redis.client(), self.amber.client())
    }
}

/// Sends the same bytes to both and asserts the replies are identical.
pub fn assert_same(redis: &mut RespClient, amber: &mut RespClient, args: &[&[u8]]) -> Vec<u8> {
    let r = redis.cmd(args);
    let a = amber.cmd(args);
    assert_eq!(
        reply::show(&a),
        reply::show(&r),
        "reply to {} differs (left: amber, right: redis)",
        reply::show(&args.join(&b' '))
    );
    a
}

/// Connects to a server on 127.0.0.1 at `port`; panics if it cannot.
pub fn connect(port: u16) -> RespClient {
    RespClient::connect(port).expect("connect")
}

/// Waits until the server at `port` reports `n` blocked clients in `INFO
/// clients` (polled every 10 ms); fails the test after 10 s.
pub fn wait_blocked(port: u16, n: usize) {
    let mut c = connect(port);
    let want = format!("blocked_clients:{n}\r\n");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let info = c.cmd(&["INFO", "clients"]);
        let text = String::from_utf8_lossy(&info);
        if text.contains(&want) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never {want:?}: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The lines of `INFO` `sections` that start with one of `prefixes`,
/// without their timing fields (`usec`, `usec_per_call`), sorted (Redis
/// lists commands in its table's hash order), one per line: the counts
/// of `errorstats`, `commandstats` and `stats` to compare side by side.
pub fn info_counts(c: &mut RespClient, sections: &[&str], prefixes: &[&str]) -> Vec<u8> {
    let mut lines = Vec::new();
    for section in sections {
        let info = c.cmd(&["INFO", section]);
        for line in String::from_utf8_lossy(&info).lines() {
            if prefixes.iter().any(|p| line.starts_with(p)) {
                let counts: Vec<&str> = line.split(',').filter(|f| !f.contains("usec")).collect();
                lines.push(counts.join(","));
            }
        }
    }
    lines.sort();
    lines.join("\n").into_bytes()
}

/// Starts a Redis and an Amber with `common` arguments, runs `scenario`
/// (given a server's port) on each, and asserts the collected replies are
/// identical, shown escaped.
pub fn differential(name: &str, common: &[&str], scenario: impl Fn(u16) -> Vec<Vec<u8>>) {
    differential_by(name, common, |port| {
        scenario(port).iter().map(|b| reply::show(b)).collect()
    });
}

/// [`differential`] for scenarios that collect their own (normalised)
/// values.
pub fn differential_by<T: PartialEq + std::fmt::Debug>(
    name: &str,
    common: &[&str],
    scenario: impl Fn(u16) -> Vec<T>,
) {
    let pair = Pair::start(common, &[]);
    let r = scenario(pair.redis.port);
    let a = scenario(pair.amber.port);
    assert_eq!(a, r, "{name}: replies differ (left: amber, right: redis)");
}
