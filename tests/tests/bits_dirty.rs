//! SETBIT and BITFIELD count as changes only when they change the string
//! (tests/unit/bitops.tcl "SETBIT/BITFIELD only increase dirty when the
//! value changed"), side by side with redis-server: the same
//! `rdb_changes_since_last_save` steps, and the same commands reach a
//! replica (an unchanged write is not propagated).

use amber_tests::replication::{assert_same_side_by_side, field, wait_synced};
use amber_tests::reply::show;
use amber_tests::{Kind, ServerProcess};

/// The bitops.tcl sequence, grouped as it checks `dirty` between groups.
const STEPS: &[&[&[&str]]] = &[
    // A new key always counts.
    &[
        &["SETBIT", "foo", "0", "0"],
        &["BITFIELD", "foo2", "SET", "i5", "0", "0"],
    ],
    // No change.
    &[
        &["SETBIT", "foo", "0", "0"],
        &["BITFIELD", "foo2", "SET", "i5", "0", "0"],
    ],
    // A change and a no change, each twice.
    &[
        &["SETBIT", "foo", "0", "1"],
        &["SETBIT", "foo", "0", "1"],
        &["SETBIT", "foo", "0", "0"],
        &["SETBIT", "foo", "0", "0"],
        &["BITFIELD", "foo2", "SET", "i5", "0", "1"],
        &["BITFIELD", "foo2", "SET", "i5", "0", "1"],
        &["BITFIELD", "foo2", "SET", "i5", "0", "0"],
        &["BITFIELD", "foo2", "SET", "i5", "0", "0"],
    ],
    // INCRBY always changes.
    &[
        &["BITFIELD", "foo3", "INCRBY", "i5", "0", "1"],
        &["BITFIELD", "foo3", "INCRBY", "i5", "0", "1"],
    ],
    // Growing the string is a change, even writing zeros.
    &[
        &["SETBIT", "foo", "90", "0"],
        &["BITFIELD", "foo2", "SET", "i5", "90", "0"],
    ],
    // Unchanged, and a FAIL overflow on an existing string: no change.
    &[
        &["SETBIT", "foo", "90", "0"],
        &[
            "BITFIELD", "foo3", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "100",
        ],
        &["BITFIELD", "foo2", "GET", "u8", "0", "SET", "u8", "0", "0"],
    ],
];

fn changes(c: &mut amber_tests::RespClient) -> i64 {
    field(c, "persistence", "rdb_changes_since_last_save")
        .parse()
        .expect("rdb_changes_since_last_save")
}

/// Per group of steps: its replies, how much `dirty` grew, and whether
/// the replication stream grew (a replica is attached).
fn scenario(kind: Kind) -> Vec<(Vec<String>, i64, bool)> {
    // No PING on the stream while the steps run.
    let master = ServerProcess::start(kind, &["--repl-ping-replica-period", "3600"]);
    let port = master.port.to_string();
    let replica = ServerProcess::redis(&["--replicaof", "127.0.0.1", &port]);
    let (mut m, mut r) = (master.client(), replica.client());
    wait_synced(&mut m, &mut r);
    let mut out = Vec::new();
    for group in STEPS {
        let (dirty, offset) = (
            changes(&mut m),
            field(&mut m, "replication", "master_repl_offset"),
        );
        let replies = group.iter().map(|cmd| show(&m.cmd(cmd))).collect();
        let moved = field(&mut m, "replication", "master_repl_offset") != offset;
        out.push((replies, changes(&mut m) - dirty, moved));
    }
    // The replica holds what the master holds.
    wait_synced(&mut m, &mut r);
    for key in ["foo", "foo2", "foo3"] {
        assert_eq!(
            show(&r.cmd(&["GET", key])),
            show(&m.cmd(&["GET", key])),
            "{key}"
        );
    }
    out
}

#[test]
fn setbit_and_bitfield_count_only_changes() {
    assert_same_side_by_side(scenario);
}
