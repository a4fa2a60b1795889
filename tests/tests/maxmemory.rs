//! `maxmemory` against the real binary, side by side with `redis-server`:
//! `CONFIG SET maxmemory` takes effect at once (the next write is refused
//! or makes room, even on an empty data set, since the memory in use is
//! never 0), and an evicting policy evicts without waiting for a write.

use amber_tests::{connect, differential};

/// Redis's refusal of a write when memory is full.
const OOM: &[u8] = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n";

#[test]
fn config_set_maxmemory_refuses_the_next_write() {
    differential("maxmemory noeviction", &[], |p| {
        let mut c = connect(p);
        let mut out = vec![c.cmd_str("CONFIG SET maxmemory 1")];
        // Right away: no background pass is waited for.
        out.push(c.cmd_str("SET k v"));
        out.push(c.cmd_str("GET k"));
        // Inside MULTI the refusal flags the transaction (Redis's
        // "EXEC fails if there are errors while queueing commands #2").
        out.push(c.cmd_str("MULTI"));
        out.push(c.cmd_str("SET x 1"));
        out.push(c.cmd_str("DISCARD"));
        out.push(c.cmd_str("CONFIG SET maxmemory 0"));
        out.push(c.cmd_str("SET k v"));
        out.push(c.cmd_str("GET k"));
        assert_eq!(out.get(1).map(Vec::as_slice), Some(OOM));
        out
    });
}

#[test]
fn config_set_maxmemory_evicts_without_a_write() {
    differential("maxmemory allkeys-lru", &[], |p| {
        let (mut c, mut sub) = (connect(p), connect(p));
        let mut out = vec![
            c.cmd_str("CONFIG SET notify-keyspace-events Ee"),
            c.cmd_str("CONFIG SET maxmemory-policy allkeys-lru"),
            c.cmd_str("SET foo bar"),
            sub.cmd_str("SUBSCRIBE __keyevent@0__:evicted"),
            c.cmd_str("CONFIG SET maxmemory 1"),
        ];
        // The eviction comes without another command on either connection.
        out.push(sub.read_reply().expect("the evicted event"));
        out.push(c.cmd_str("DBSIZE"));
        // Nothing left to evict and still over the limit: refused.
        out.push(c.cmd_str("SET k v"));
        out.push(c.cmd_str("CONFIG SET maxmemory 0"));
        out.push(c.cmd_str("SET k v"));
        out
    });
}

/// Out of memory while a transaction is open (Redis's `processCommand`):
/// queueing any command is refused (`GET` too), `EXEC` of a transaction
/// that queued a command that may use memory fails with `EXECABORT`, one
/// of reads only runs, and `DISCARD` still works.
#[test]
fn a_transaction_meets_memory_full() {
    differential("maxmemory multi", &[], |p| {
        let (mut c, mut admin) = (connect(p), connect(p));
        let mut out = vec![c.cmd_str("SET x 1")];
        // Queued before the limit: EXEC with a SET aborts.
        out.push(c.cmd_str("MULTI"));
        out.push(c.cmd_str("SET x 2"));
        out.push(c.cmd_str("GET x"));
        out.push(admin.cmd_str("CONFIG SET maxmemory 1"));
        out.push(c.cmd_str("EXEC"));
        // Reads only: EXEC runs them.
        out.push(admin.cmd_str("CONFIG SET maxmemory 0"));
        out.push(c.cmd_str("MULTI"));
        out.push(c.cmd_str("GET x"));
        out.push(admin.cmd_str("CONFIG SET maxmemory 1"));
        out.push(c.cmd_str("EXEC"));
        // Queueing while full is refused, even a read; DISCARD works.
        out.push(c.cmd_str("MULTI"));
        out.push(c.cmd_str("GET x"));
        out.push(c.cmd_str("DISCARD"));
        out.push(admin.cmd_str("CONFIG SET maxmemory 0"));
        out.push(c.cmd_str("GET x"));
        out
    });
}

/// Out of memory and scripts (Redis's `evalGetCommandFlags`,
/// `scriptPrepareForRun` and `scriptVerifyOOM`): a script that declares
/// flags may write unless it says `allow-oom` or `no-writes`, so it is
/// refused before it runs; a script without a shebang runs, and only its
/// first command that may use memory is refused (before any write). The
/// refused command counts as rejected, its error once.
#[test]
fn scripts_meet_memory_full() {
    differential("maxmemory scripts", &[], |p| {
        let (mut c, mut admin) = (connect(p), connect(p));
        let stats = |admin: &mut amber_tests::RespClient| {
            amber_tests::info_counts(
                admin,
                &["errorstats", "commandstats"],
                &[
                    "errorstat_",
                    "cmdstat_set:",
                    "cmdstat_incr:",
                    "cmdstat_eval",
                    "cmdstat_fcall",
                ],
            )
        };
        let mut out = vec![
            c.cmd(&["SET", "x", "123"]),
            c.cmd(&[
                "FUNCTION",
                "LOAD",
                "#!lua name=lib\n\
                 redis.register_function('plain', function() return redis.call('set', 'x', '1') end)\n\
                 redis.register_function{function_name='ro', callback=function() return 'hello' end, flags={'no-writes'}}\n\
                 redis.register_function{function_name='oomok', callback=function() return redis.call('set', 'x', '2') end, flags={'allow-oom'}}",
            ]),
            c.cmd(&["SCRIPT", "LOAD", "#!lua\nreturn 1"]),
            admin.cmd(&["CONFIG", "RESETSTAT"]),
            admin.cmd(&["CONFIG", "SET", "maxmemory", "1"]),
        ];
        let evals: &[&[&str]] = &[
            // No shebang: the first write is refused, reads run.
            &["EVAL", "return redis.call('set','x','y')", "1", "x"],
            &["EVAL", "return redis.call('get','x')", "1", "x"],
            &["EVAL_RO", "return redis.call('get','x')", "1", "x"],
            &[
                "EVAL",
                "local t = redis.pcall('set','x','y'); return t['err']",
                "1",
                "x",
            ],
            &["EVAL", "return redis.pcall('set','x','y')", "1", "x"],
            // A write after a read is refused too; INCR of a new key as well.
            &[
                "EVAL",
                "redis.call('get','x'); return redis.call('incr','n')",
                "1",
                "n",
            ],
            // Other refusals count the same way.
            &["EVAL_RO", "return redis.call('set','x','1')", "1", "x"],
            &["EVAL", "return redis.pcall('nosuch')", "0"],
            // Declared flags: refused before the script runs...
            &["EVAL", "#!lua\nreturn 1", "0"],
            &["EVAL", "#!lua flags=\nreturn 1", "0"],
            &["EVALSHA", "cb70127618f0b0be70c53cf6bfcfa54a29d9b0c0", "0"],
            &["FCALL", "plain", "0"],
            // ...unless they allow it.
            &[
                "EVAL",
                "#!lua flags=allow-oom\nreturn redis.call('set','x','1')",
                "1",
                "x",
            ],
            &[
                "EVAL",
                "#!lua flags=no-writes\nreturn redis.call('get','x')",
                "0",
            ],
            &[
                "EVAL_RO",
                "#!lua flags=no-writes\nreturn redis.call('get','x')",
                "1",
                "x",
            ],
            &["FCALL", "ro", "0"],
            &["FCALL_RO", "ro", "0"],
            &["FCALL", "oomok", "0"],
        ];
        for e in evals {
            out.push(c.cmd(e));
        }
        out.push(stats(&mut admin));
        out.push(admin.cmd(&["CONFIG", "SET", "maxmemory", "0"]));
        out.push(c.cmd(&["EVAL", "#!lua\nreturn 1", "0"]));
        out.push(c.cmd(&["GET", "x"]));
        out
    });
}

/// A sparse keyspace gives its keys up at once: one key with a deadline
/// in database 5, among keys without one, is what a volatile policy
/// evicts when memory is full, at the next command.
#[test]
fn a_volatile_policy_finds_a_lone_volatile_key() {
    differential("maxmemory sparse volatile", &[], |p| {
        let (mut c, mut admin) = (connect(p), connect(p));
        let mut out = vec![
            c.cmd_str("SET p1 1"),
            c.cmd_str("SELECT 5"),
            c.cmd_str("SET p2 2"),
            c.cmd_str("SETEX v 1000 x"),
            admin.cmd_str("CONFIG SET maxmemory-policy volatile-ttl"),
            admin.cmd_str("CONFIG SET maxmemory 1"),
        ];
        // Redis evicted it at CONFIG SET; Amber at this command at the latest.
        out.push(c.cmd_str("EXISTS v"));
        out.push(c.cmd_str("DBSIZE"));
        out.push(c.cmd_str("SET w 1"));
        out.push(admin.cmd_str("CONFIG SET maxmemory 0"));
        out.push(admin.cmd_str("CONFIG SET maxmemory-policy noeviction"));
        out
    });
}
