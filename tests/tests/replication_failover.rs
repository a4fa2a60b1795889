//! A Sentinel-style failover, the same topology of redis-servers and of
//! Ambers side by side: master A with replicas B and C; B is promoted
//! (`REPLICAOF NO ONE`), C is pointed at B, and A is demoted to a replica
//! of B. As Redis's replicas, C offers B the old master's id and the
//! offset it processed, and A its own id and offset (Redis's cached
//! master), so B continues both (`+CONTINUE`, `sync_partial_ok`) with no
//! full sync, and the data after a workload on each side of the switch is
//! the same everywhere. A replica switched to a master of an unrelated
//! history falls back to a full sync and ends with that master's data.

use std::time::Duration;

use amber_tests::replication::{
    assert_same_data, assert_same_side_by_side, dataset, field, q, wait_synced, wait_until,
};
use amber_tests::{Kind, RespClient, ServerProcess};

/// No `PING` from a master while the test runs: one fed to A's stream
/// between B's promotion and A's demotion would put A ahead of B, and A
/// could then only resync in full (with Redis as with Amber).
const QUIET: &[&str] = &["--repl-ping-replica-period", "3600"];

fn follow(replica: &mut RespClient, master: &ServerProcess) {
    let port = master.port.to_string();
    assert_eq!(q(replica, &["REPLICAOF", "127.0.0.1", &port]).text(), "OK");
}

/// A mixed workload in two databases; `tag` makes each round's values
/// its own. Deadlines are long: an expiry on the old master between the
/// promotion and its demotion would be a write the new master lacks.
fn workload(c: &mut RespClient, tag: &str) {
    for i in 0..30 {
        let k = format!("k{i}");
        q(c, &["SET", &k, &format!("{tag}{i}")]);
        if i % 4 == 0 {
            q(c, &["EXPIRE", &k, "1000"]);
        }
    }
    q(c, &["INCRBY", "counter", "5"]);
    q(c, &["RPUSH", "list", tag, "b", "c"]);
    q(c, &["LPOP", "list"]);
    q(c, &["HSET", "h", tag, "v", "g", "w"]);
    q(c, &["SELECT", "3"]);
    q(c, &["SADD", "s", tag, "m2"]);
    q(c, &["SET", "t", tag, "EX", "1000"]);
    q(c, &["ZADD", "z", "1", tag, "2", "b"]);
    q(c, &["XADD", "x", "*", "f", tag]);
    q(c, &["DEL", "k-none"]);
    q(c, &["SELECT", "0"]);
    q(c, &["DEL", "k1"]);
}

/// `INFO stats`' resync counters of a server.
fn sync_counters(c: &mut RespClient, who: &str) -> String {
    ["sync_full", "sync_partial_ok", "sync_partial_err"]
        .iter()
        .map(|n| format!("{who} {n}:{}", field(c, "stats", n)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The failover of A (master) to B, with C and then A following B; what
/// it shows, the same whichever server plays each role.
fn failover(kinds: [Kind; 3]) -> Vec<String> {
    let start = |k: Kind| ServerProcess::start(k, QUIET);
    let (a, b, c) = (start(kinds[0]), start(kinds[1]), start(kinds[2]));
    let (mut ac, mut bc, mut cc) = (a.client(), b.client(), c.client());
    let mut seen = Vec::new();
    workload(&mut ac, "before-sync-");
    follow(&mut bc, &a);
    follow(&mut cc, &a);
    wait_synced(&mut ac, &mut bc);
    wait_synced(&mut ac, &mut cc);
    // Stream traffic, with A's stream left in database 3.
    workload(&mut ac, "streamed-");
    q(&mut ac, &["SELECT", "3"]);
    q(&mut ac, &["SET", "last-in-3", "1"]);
    q(&mut ac, &["SELECT", "0"]);
    wait_synced(&mut ac, &mut bc);
    wait_synced(&mut ac, &mut cc);
    let old_id = field(&mut ac, "replication", "master_replid");
    seen.push(sync_counters(&mut ac, "A"));

    // The failover, in Sentinel's order.
    assert_eq!(q(&mut bc, &["REPLICAOF", "NO", "ONE"]).text(), "OK");
    follow(&mut cc, &b);
    follow(&mut ac, &b);
    wait_until("C and A follow B", Duration::from_secs(20), || {
        field(&mut bc, "replication", "connected_slaves") == "2"
            && field(&mut cc, "replication", "master_link_status") == "up"
            && field(&mut ac, "replication", "master_link_status") == "up"
    });
    workload(&mut bc, "after-failover-");
    q(&mut bc, &["SELECT", "3"]);
    q(&mut bc, &["INCR", "in-3"]);
    q(&mut bc, &["SELECT", "0"]);
    wait_synced(&mut bc, &mut cc);
    wait_synced(&mut bc, &mut ac);

    seen.push(sync_counters(&mut bc, "B"));
    let new_id = field(&mut bc, "replication", "master_replid");
    seen.push(format!("B new id {}", new_id != old_id));
    seen.push(format!(
        "B replid2 is A's {}",
        field(&mut bc, "replication", "master_replid2") == old_id
    ));
    for (who, conn) in [("C", &mut cc), ("A", &mut ac)] {
        seen.push(format!(
            "{who} replid is B's {}, replid2 is A's old {}",
            field(conn, "replication", "master_replid") == new_id,
            field(conn, "replication", "master_replid2") == old_id
        ));
    }
    let on_b = dataset(&mut bc);
    assert_same_data(&on_b, &dataset(&mut cc));
    assert_same_data(&on_b, &dataset(&mut ac));
    seen.push(format!("keys {}", on_b.len()));
    seen
}

#[test]
fn ambers_fail_over_as_redis_servers_do() {
    let redis = failover([Kind::Redis, Kind::Redis, Kind::Redis]);
    let amber = failover([Kind::Amber, Kind::Amber, Kind::Amber]);
    assert_eq!(amber, redis, "left: amber, right: redis");
}

#[test]
fn an_amber_replica_switches_to_a_promoted_redis_sibling() {
    let redis = failover([Kind::Redis, Kind::Redis, Kind::Redis]);
    let amber = failover([Kind::Redis, Kind::Redis, Kind::Amber]);
    assert_eq!(amber, redis, "left: amber as C, right: redis");
}

#[test]
fn an_amber_master_is_demoted_to_a_replica_of_its_promoted_redis_replica() {
    let redis = failover([Kind::Redis, Kind::Redis, Kind::Redis]);
    let amber = failover([Kind::Amber, Kind::Redis, Kind::Redis]);
    assert_eq!(amber, redis, "left: amber as A, right: redis");
}

/// C, a replica of A, is pointed at D, a master of its own unrelated
/// history: D refuses to continue A's history (`sync_partial_err`), sends
/// a full copy, and C ends with D's data only.
#[test]
fn a_replica_switched_to_an_unrelated_master_resyncs_in_full() {
    assert_same_side_by_side(|kind| {
        let (a, d, c) = (
            ServerProcess::start(kind, QUIET),
            ServerProcess::start(kind, QUIET),
            ServerProcess::start(kind, QUIET),
        );
        let (mut ac, mut dc, mut cc) = (a.client(), d.client(), c.client());
        workload(&mut ac, "a-");
        q(&mut ac, &["SET", "only-on-a", "1"]);
        follow(&mut cc, &a);
        wait_synced(&mut ac, &mut cc);
        q(&mut ac, &["SET", "streamed-from-a", "1"]);
        wait_synced(&mut ac, &mut cc);
        workload(&mut dc, "d-");
        follow(&mut cc, &d);
        wait_until("C follows D", Duration::from_secs(20), || {
            field(&mut dc, "replication", "connected_slaves") == "1"
                && field(&mut cc, "replication", "master_link_status") == "up"
        });
        q(&mut dc, &["SET", "streamed-from-d", "1"]);
        wait_synced(&mut dc, &mut cc);
        let on_d = dataset(&mut dc);
        assert_same_data(&on_d, &dataset(&mut cc));
        vec![
            sync_counters(&mut dc, "D"),
            format!(
                "C has only-on-a {:?}",
                q(&mut cc, &["EXISTS", "only-on-a"]).integer()
            ),
            format!(
                "C replid is D's {}",
                field(&mut cc, "replication", "master_replid")
                    == field(&mut dc, "replication", "master_replid")
            ),
            format!("keys {}", on_d.len()),
        ]
    });
}

/// `INFO replication`'s backlog fields of a master: none before a
/// replica, then a backlog that, while still empty, starts at the next
/// byte of the stream (`master_repl_offset + 1`, Redis's
/// `createReplicationBacklog`), then holds the writes.
#[test]
fn an_empty_backlog_starts_at_the_next_byte_of_the_stream() {
    let backlog = |c: &mut RespClient| -> String {
        [
            "master_repl_offset",
            "repl_backlog_active",
            "repl_backlog_first_byte_offset",
            "repl_backlog_histlen",
        ]
        .iter()
        .map(|n| format!("{n}:{}", field(c, "replication", n)))
        .collect::<Vec<_>>()
        .join(" ")
    };
    assert_same_side_by_side(|kind| {
        let (m, r) = (
            ServerProcess::start(kind, QUIET),
            ServerProcess::start(kind, QUIET),
        );
        let (mut mc, mut rc) = (m.client(), r.client());
        let mut seen = vec![backlog(&mut mc)];
        follow(&mut rc, &m);
        wait_synced(&mut mc, &mut rc);
        seen.push(backlog(&mut mc));
        q(&mut mc, &["SET", "k", "v"]);
        wait_synced(&mut mc, &mut rc);
        seen.push(backlog(&mut mc));
        seen
    });
}
