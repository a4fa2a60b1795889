//! What a master shows and answers while a replica's full sync produces
//! its payload, a redis-server and an Amber master side by side (a Redis
//! replica each): `sync_full` counts the sync once requested,
//! `min_slaves_good_slaves` counts only online replicas, and `BGSAVE`
//! (with `SCHEDULE` or not) and `SAVE` meet Redis's RDB child.

use std::time::Duration;

use amber_tests::replication::{assert_same_side_by_side, field, q, wait_until};
use amber_tests::{Kind, ServerProcess};

/// Observations around one slow full sync from a master of `kind`.
fn during_a_full_sync(kind: Kind) -> Vec<String> {
    // 200 keys at 10 ms each: the payload takes about 2 s to produce.
    let master = ServerProcess::start(
        kind,
        &[
            "--rdb-key-save-delay",
            "10000",
            "--min-replicas-to-write",
            "1",
            "--min-replicas-max-lag",
            "10",
        ],
    );
    let replica = ServerProcess::redis(&[]);
    let mut m = master.client();
    // Writes are refused without a good replica: fill with the limit off.
    q(&mut m, &["CONFIG", "SET", "min-replicas-to-write", "0"]);
    for i in 0..200 {
        q(&mut m, &["SET", &format!("k{i}"), "v"]);
    }
    q(&mut m, &["CONFIG", "SET", "min-replicas-to-write", "1"]);
    let mut seen = Vec::new();
    let mut r = replica.client();
    let port = master.port.to_string();
    q(&mut r, &["REPLICAOF", "127.0.0.1", &port]);
    wait_until("the payload is produced", Duration::from_secs(10), || {
        field(&mut m, "persistence", "rdb_bgsave_in_progress") == "1"
    });
    seen.push(format!("sync_full:{}", field(&mut m, "stats", "sync_full")));
    seen.push(format!(
        "good:{}",
        field(&mut m, "replication", "min_slaves_good_slaves")
    ));
    for cmd in [&["BGSAVE"][..], &["BGSAVE", "SCHEDULE"], &["SAVE"]] {
        seen.push(format!("{cmd:?}: {:?}", q(&mut m, cmd).text()));
    }
    wait_until("the replica is online", Duration::from_secs(20), || {
        field(&mut r, "replication", "master_link_status") == "up"
            && field(&mut m, "replication", "min_slaves_good_slaves") == "1"
    });
    seen.push(format!("sync_full:{}", field(&mut m, "stats", "sync_full")));
    seen
}

#[test]
fn a_master_during_a_full_sync_counts_and_answers_as_redis() {
    assert_same_side_by_side(during_a_full_sync);
}
