//! Replicas that arrive within `repl-diskless-sync-delay` share one
//! diskless transfer (Redis feeds one RDB child to all of them), a
//! redis-server and an Amber master side by side, Redis replicas each.

use std::time::{Duration, Instant};

use amber_tests::replication::{assert_same_side_by_side, field, q};
use amber_tests::{Kind, RespClient, ServerProcess};

/// Whether three replicas arriving together were ever all receiving
/// their payload at once, and the master's `sync_full` after.
fn three_replicas_together(kind: Kind) -> Vec<String> {
    // 150 keys at 10 ms each: a payload takes about 1.5 s to produce.
    let master = ServerProcess::start(
        kind,
        &[
            "--rdb-key-save-delay",
            "10000",
            "--repl-diskless-sync-delay",
            "1",
        ],
    );
    let mut m = master.client();
    for i in 0..150 {
        q(&mut m, &["SET", &format!("k{i}"), "v"]);
    }
    let replicas: Vec<ServerProcess> = (0..3).map(|_| ServerProcess::redis(&[])).collect();
    let mut clients: Vec<RespClient> = replicas.iter().map(ServerProcess::client).collect();
    let port = master.port.to_string();
    for c in &mut clients {
        q(c, &["REPLICAOF", "127.0.0.1", &port]);
    }
    let mut together = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let states: Vec<(String, String)> = clients
            .iter_mut()
            .map(|c| {
                (
                    field(c, "replication", "master_sync_in_progress"),
                    field(c, "replication", "master_link_status"),
                )
            })
            .collect();
        together |= states.iter().all(|(sync, _)| sync == "1");
        if states.iter().all(|(_, link)| link == "up") {
            break;
        }
        assert!(Instant::now() < deadline, "never synced: {states:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    vec![
        format!("all three received at once: {together}"),
        format!("sync_full:{}", field(&mut m, "stats", "sync_full")),
        format!("dbsize:{:?}", q(&mut clients[2], &["DBSIZE"]).integer()),
    ]
}

#[test]
fn replicas_arriving_together_share_one_diskless_transfer() {
    assert_same_side_by_side(three_replicas_together);
}
