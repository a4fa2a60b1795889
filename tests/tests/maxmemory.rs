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
