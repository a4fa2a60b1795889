//! `COMMAND GETKEYS` / `GETKEYSANDFLAGS` for `SORT` and `SORT_RO`, whose
//! keys Redis finds with a procedure of its own (`sortGetKeys`,
//! `sortROGetKeys`) rather than its key specs, side by side with
//! redis-server, in RESP2 and RESP3; and of commands that may name no
//! key (`no_mandatory_keys`: `EVAL s 0`), which answer an empty array.

use amber_tests::differential;

#[test]
fn sort_keys_and_flags_as_redis() {
    differential("sort getkeys", &[], |port| {
        let mut c = amber_tests::connect(port);
        let calls: &[&[&str]] = &[
            &["COMMAND", "GETKEYSANDFLAGS", "sort", "k1", "store", "k2"],
            &["COMMAND", "GETKEYS", "sort", "k1", "store", "k2"],
            &["COMMAND", "GETKEYSANDFLAGS", "sort", "k1"],
            &[
                "COMMAND", "GETKEYS", "sort", "k1", "limit", "0", "1", "store", "a", "STORE", "b",
            ],
            &[
                "COMMAND", "GETKEYS", "sort", "k1", "get", "store", "store", "k9",
            ],
            &["COMMAND", "GETKEYS", "sort", "k1", "store"],
            &[
                "COMMAND",
                "GETKEYSANDFLAGS",
                "sort_ro",
                "k1",
                "by",
                "x",
                "get",
                "y",
            ],
        ];
        let mut replies: Vec<Vec<u8>> = calls.iter().map(|args| c.cmd(args)).collect();
        // RESP3: flags as sets (HELLO's reply has the client id: not kept).
        c.cmd(&["HELLO", "3"]);
        replies.push(c.cmd(&["COMMAND", "GETKEYSANDFLAGS", "sort", "k1", "store", "k2"]));
        replies
    });
}

#[test]
fn calls_naming_no_key_as_redis() {
    differential("getkeys without keys", &[], |port| {
        let mut c = amber_tests::connect(port);
        let calls: &[&[&str]] = &[
            &["COMMAND", "GETKEYS", "eval", "return 1", "0"],
            &["COMMAND", "GETKEYS", "eval", "return 1", "abc"],
            &["COMMAND", "GETKEYS", "eval", "return 1", "2", "k"],
            &["COMMAND", "GETKEYSANDFLAGS", "eval_ro", "return 1", "0"],
            &["COMMAND", "GETKEYS", "fcall", "f", "0"],
            &["COMMAND", "GETKEYS", "zunionstore", "dst", "0", "k"],
            &["COMMAND", "GETKEYS", "sintercard", "0", "k"],
        ];
        calls.iter().map(|args| c.cmd(args)).collect()
    });
}
