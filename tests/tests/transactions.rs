//! Transactions across connections, against the real binary and
//! differentially against a real `redis-server`: WATCH invalidated by another
//! client's write, by FLUSHALL, by expiry, by SWAPDB; and EXEC atomicity (a
//! concurrent reader never sees half of a transaction).
//!
//! Each scenario runs the same steps on both servers and compares the
//! replies byte for byte. Single-connection behaviour is in
//! `tests/conformance/multi.redis`.

use std::time::Duration;

use amber_tests::reply::show;
use amber_tests::RespClient;
use amber_tests::{connect, differential};

/// WATCH k on `c1`, then `interfere` on `c2`, then MULTI / INCR k / EXEC.
fn watch_then(port: u16, setup: &[&str], interfere: &[&str], wait_ms: u64) -> Vec<Vec<u8>> {
    let (mut c1, mut c2) = (connect(port), connect(port));
    let mut out = vec![c1.cmd_str("FLUSHALL")];
    for s in setup {
        out.push(c1.cmd_str(s));
    }
    out.push(c1.cmd_str("WATCH k"));
    for s in interfere {
        out.push(c2.cmd_str(s));
    }
    std::thread::sleep(Duration::from_millis(wait_ms));
    out.push(c1.cmd_str("MULTI"));
    out.push(c1.cmd_str("SET k done"));
    out.push(c1.cmd_str("EXEC"));
    out.push(c1.cmd_str("GET k"));
    out
}

#[test]
fn watch_is_invalidated_by_other_clients() {
    differential("another client's write", &[], |p| {
        watch_then(p, &["SET k 1"], &["INCR k"], 0)
    });
    differential("a write to another key", &[], |p| {
        watch_then(p, &["SET k 1"], &["SET other 1", "GET k"], 0)
    });
    differential("another client's DEL", &[], |p| {
        watch_then(p, &["SET k 1"], &["DEL k"], 0)
    });
    differential("a DEL of a missing key", &[], |p| {
        watch_then(p, &[], &["DEL k"], 0)
    });
    differential("FLUSHALL of an existing key", &[], |p| {
        watch_then(p, &["SET k 1"], &["FLUSHALL"], 0)
    });
    differential("FLUSHALL of a missing key", &[], |p| {
        watch_then(p, &["SET other 1"], &["FLUSHALL"], 0)
    });
    differential("FLUSHDB of another database", &[], |p| {
        watch_then(p, &["SET k 1"], &["SELECT 5", "FLUSHDB"], 0)
    });
    differential("SWAPDB", &[], |p| {
        watch_then(p, &["SET k 1"], &["SWAPDB 0 1", "SWAPDB 0 1"], 0)
    });
    differential("SWAPDB bringing the key", &[], |p| {
        watch_then(p, &["SELECT 1", "SET k 1", "SELECT 0"], &["SWAPDB 0 1"], 0)
    });
    differential("EXPIRE by another client", &[], |p| {
        watch_then(p, &["SET k 1"], &["EXPIRE k 100"], 0)
    });
    differential("RENAME onto the key", &[], |p| {
        watch_then(p, &["SET k 1", "SET j 2"], &["RENAME j k"], 0)
    });
    differential("MOVE away", &[], |p| {
        watch_then(p, &["SET k 1"], &["MOVE k 3"], 0)
    });
}

#[test]
fn watch_is_invalidated_by_expiry() {
    // The key expires between WATCH and EXEC (actively or lazily): EXEC fails.
    differential("expiry", &[], |p| {
        watch_then(p, &["SET k 1 PX 100"], &[], 400)
    });
    // Redis checks expiry at EXEC even when active expiry has not run yet.
    differential("expiry, active expire off", &[], |p| {
        let mut c = connect(p);
        let off = c.cmd_str("DEBUG SET-ACTIVE-EXPIRE 0");
        let mut out = watch_then(p, &["SET k 1 PX 100"], &[], 300);
        c.cmd_str("DEBUG SET-ACTIVE-EXPIRE 1");
        out.push(off);
        out
    });
    // A TTL that does not run out changes nothing.
    differential("TTL not reached", &[], |p| {
        watch_then(p, &["SET k 1 EX 100"], &["TTL k"], 0)
    });
}

/// A concurrent reader never sees half of a MULTI that sets two keys (in
/// different shards) to the same value.
#[test]
fn exec_is_atomic() {
    let amber = amber_tests::ServerProcess::amber(&[]);
    let port = amber.port;
    let mut w = connect(port);
    // Keys spread over shards: at least one pair lands in different shards.
    let keys: Vec<String> = (0..8).map(|i| format!("atom:{i}")).collect();
    let mut mset: Vec<String> = vec!["MSET".into()];
    for k in &keys {
        mset.push(k.clone());
        mset.push("0".into());
    }
    w.cmd(&mset);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let keys = keys.clone();
        std::thread::spawn(move || {
            let mut r = connect(port);
            let mut mget: Vec<String> = vec!["MGET".into()];
            mget.extend(keys.iter().cloned());
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let reply = r.read_parsed_after(&mget);
                let values: Vec<Option<Vec<u8>>> =
                    reply.items.iter().map(|i| i.data.clone()).collect();
                assert!(
                    values.windows(2).all(|w| w[0] == w[1]),
                    "saw half a transaction: {values:?}"
                );
                reads += 1;
            }
            reads
        })
    };
    for i in 1..=300 {
        w.cmd_str("MULTI");
        for k in &keys {
            w.cmd(&["SET", k.as_str(), &i.to_string()]);
        }
        let exec = w.read_parsed_after(&["EXEC"]);
        assert_eq!(
            exec.items.len(),
            keys.len(),
            "EXEC replied {}",
            show(&exec.raw)
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reads = reader.join().expect("reader panicked");
    assert!(reads > 0);
}

/// Sends a command and reads its reply decoded.
trait ParsedCmd {
    fn read_parsed_after<A: AsRef<[u8]>>(&mut self, args: &[A]) -> amber_tests::reply::Reply;
}

impl ParsedCmd for RespClient {
    fn read_parsed_after<A: AsRef<[u8]>>(&mut self, args: &[A]) -> amber_tests::reply::Reply {
        self.send(args).expect("send");
        self.read_parsed().expect("reply")
    }
}
