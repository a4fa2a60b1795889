//! Chained replication (A master, B replica of A, C replica of B), the
//! same chain of redis-servers and of Ambers side by side: a replica
//! proxies its master's stream verbatim to its own replicas (same replid
//! and offsets), so C's data is A's, C continues (`+CONTINUE`) from B after
//! a cut link and across B's promotion, and B never adds expiries of its
//! own.

use std::time::Duration;

use amber_tests::replication::{assert_same_data, dataset, field, q, wait_synced, wait_until};
use amber_tests::{Kind, RespClient, ServerProcess};

fn follow(replica: &mut RespClient, master: &ServerProcess) {
    let port = master.port.to_string();
    assert_eq!(q(replica, &["REPLICAOF", "127.0.0.1", &port]).text(), "OK");
}

/// Waits until `c` (a replica of `b`) is linked and at `b`'s offset.
fn wait_linked(b: &mut RespClient, c: &mut RespClient) {
    wait_synced(b, c);
}

/// A mixed workload in two databases, some keys expiring soon.
fn workload(a: &mut RespClient) {
    for i in 0..40 {
        let k = format!("k{i}");
        q(a, &["SET", &k, &i.to_string()]);
        if i % 3 == 0 {
            q(a, &["PEXPIRE", &k, "150"]);
        }
    }
    q(a, &["SET", "soon", "x", "PX", "100"]);
    q(a, &["INCRBY", "counter", "5"]);
    q(a, &["RPUSH", "list", "a", "b", "c"]);
    q(a, &["HSET", "h", "f", "v", "g", "w"]);
    q(a, &["SELECT", "3"]);
    q(a, &["SADD", "s", "m1", "m2"]);
    q(a, &["SET", "t", "v", "EX", "1000"]);
    q(a, &["ZADD", "z", "1", "a", "2", "b"]);
    q(a, &["SET", "gone", "v", "PX", "120"]);
    q(a, &["SELECT", "0"]);
    q(a, &["LPOP", "list"]);
}

/// What one chain shows, the same for Redis and Amber.
fn chain(kinds: [Kind; 3]) -> Vec<String> {
    let start = |k: Kind| ServerProcess::start(k, &[]);
    let (a, b, c) = (start(kinds[0]), start(kinds[1]), start(kinds[2]));
    let (mut ac, mut bc, mut cc) = (a.client(), b.client(), c.client());
    let mut seen = Vec::new();
    // Data before the chain, with a database selected in A's stream.
    q(&mut ac, &["SELECT", "5"]);
    q(&mut ac, &["SET", "before", "1"]);
    follow(&mut bc, &a);
    wait_synced(&mut ac, &mut bc);
    q(&mut ac, &["SET", "in5", "1"]);
    wait_synced(&mut ac, &mut bc);
    follow(&mut cc, &b);
    wait_linked(&mut bc, &mut cc);
    // C's full sync starts in the database A's stream selected: the next
    // command in db 5 carries no SELECT.
    q(&mut ac, &["SET", "in5", "2"]);
    q(&mut ac, &["SELECT", "0"]);
    wait_synced(&mut ac, &mut cc);
    let replid = field(&mut ac, "replication", "master_replid");
    let same = |c: &mut RespClient, name: &str, want: &str| {
        format!("{name} {}", field(c, "replication", name) == want)
    };
    let offset = field(&mut ac, "replication", "master_repl_offset");
    seen.push(format!("B {}", same(&mut bc, "master_replid", &replid)));
    seen.push(format!("C {}", same(&mut cc, "master_replid", &replid)));
    seen.push(format!(
        "B {}",
        same(&mut bc, "master_repl_offset", &offset)
    ));
    seen.push(format!(
        "C {}",
        same(&mut cc, "master_repl_offset", &offset)
    ));
    seen.push(format!(
        "B connected_slaves:{}",
        field(&mut bc, "replication", "connected_slaves")
    ));
    workload(&mut ac);
    // The keys with a deadline expire on A; its DELs reach C through B.
    wait_until("A expired its keys", Duration::from_secs(10), || {
        field(&mut ac, "stats", "expired_keys") == "16"
    });
    wait_synced(&mut ac, &mut cc);
    assert_same_data(&dataset(&mut ac), &dataset(&mut cc));
    seen.push(format!("C dbsize {:?}", q(&mut cc, &["DBSIZE"]).integer()));
    // A cut link between B and C: C continues from B's backlog.
    q(&mut bc, &["CLIENT", "KILL", "TYPE", "replica"]);
    q(&mut ac, &["INCR", "counter"]);
    wait_until("C linked again", Duration::from_secs(10), || {
        field(&mut bc, "replication", "connected_slaves") == "1"
            && field(&mut bc, "stats", "sync_partial_ok") == "1"
    });
    wait_synced(&mut ac, &mut cc);
    for name in ["sync_full", "sync_partial_ok", "sync_partial_err"] {
        seen.push(format!("B {name}:{}", field(&mut bc, "stats", name)));
    }
    seen.push(format!(
        "C counter {:?}",
        q(&mut cc, &["GET", "counter"]).text()
    ));
    // B's promotion: C continues with B's new history.
    assert_eq!(q(&mut bc, &["REPLICAOF", "NO", "ONE"]).text(), "OK");
    q(&mut bc, &["SET", "from-b", "1"]);
    wait_until(
        "C continued from the promoted B",
        Duration::from_secs(10),
        || {
            field(&mut bc, "stats", "sync_partial_ok") == "2"
                && field(&mut cc, "replication", "master_link_status") == "up"
        },
    );
    wait_synced(&mut bc, &mut cc);
    for name in ["sync_full", "sync_partial_ok", "sync_partial_err"] {
        seen.push(format!("B {name}:{}", field(&mut bc, "stats", name)));
    }
    let new_id = field(&mut bc, "replication", "master_replid");
    seen.push(format!("B new id {}", new_id != replid));
    seen.push(format!("C {}", same(&mut cc, "master_replid", &new_id)));
    seen.push(format!("C {}", same(&mut cc, "master_replid2", &replid)));
    assert_same_data(&dataset(&mut bc), &dataset(&mut cc));
    seen
}

#[test]
fn a_chain_of_ambers_replicates_as_a_chain_of_redis_servers() {
    let redis = chain([Kind::Redis, Kind::Redis, Kind::Redis]);
    let amber = chain([Kind::Amber, Kind::Amber, Kind::Amber]);
    assert_eq!(amber, redis, "left: amber, right: redis");
}

#[test]
fn amber_in_the_middle_of_a_redis_chain() {
    let redis = chain([Kind::Redis, Kind::Redis, Kind::Redis]);
    let amber = chain([Kind::Redis, Kind::Amber, Kind::Redis]);
    assert_eq!(amber, redis, "left: amber in the middle, right: redis");
}
