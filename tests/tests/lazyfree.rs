//! `UNLINK` side by side with redis-server: a value that is costly to free
//! (Redis's `lazyfreeGetFreeEffort` above 64: a hash table of 1,000
//! members, a stream of 200 nodes with a consumer group) is freed in the
//! background and counted in `INFO memory`'s `lazyfreed_objects`; a small
//! one, and anything `DEL` removes with `lazyfree-lazy-user-del no`, is
//! freed at once and not counted. `FLUSHALL ASYNC` counts every key.

use std::time::{Duration, Instant};

use amber_tests::{connect, differential, RespClient};

fn field(c: &mut RespClient, name: &str) -> String {
    let info = String::from_utf8_lossy(&c.cmd(&["INFO", "memory"])).into_owned();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// `lazyfreed_objects` once nothing is pending.
fn freed(c: &mut RespClient) -> Vec<u8> {
    let start = Instant::now();
    while field(c, "lazyfree_pending_objects") != "0" && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    field(c, "lazyfreed_objects").into_bytes()
}

#[test]
fn unlink_frees_big_values_in_the_background() {
    differential("lazyfree", &[], |p| {
        let mut c = connect(p);
        let mut out = vec![c.cmd(&["CONFIG", "RESETSTAT"])];
        let members: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
        let mut sadd = vec!["SADD".to_string(), "big".into()];
        sadd.extend(members.iter().cloned());
        out.push(c.cmd(&sadd));
        out.push(c.cmd(&["SADD", "small", "a", "b"]));
        out.push(c.cmd(&["UNLINK", "small", "big", "missing"]));
        out.push(freed(&mut c));
        // DEL frees in place (lazyfree-lazy-user-del no).
        out.push(c.cmd(&sadd));
        out.push(c.cmd(&["DEL", "big"]));
        out.push(freed(&mut c));
        // Redis's "lazy free a stream with all types of metadata".
        out.push(c.cmd(&["CONFIG", "SET", "stream-node-max-entries", "5"]));
        for j in 0..1000 {
            c.cmd(&[
                "XADD",
                "stream",
                &format!("{}-1", j + 1),
                "foo",
                &j.to_string(),
            ]);
        }
        out.push(c.cmd(&["XGROUP", "CREATE", "stream", "mygroup", "0"]));
        out.push(c.cmd(&[
            "XREADGROUP",
            "GROUP",
            "mygroup",
            "Alice",
            "COUNT",
            "2",
            "STREAMS",
            "stream",
            ">",
        ]));
        out.push(c.cmd(&["XDEL", "stream", "2-1"]));
        out.push(c.cmd(&["XACK", "stream", "mygroup", "1-1"]));
        out.push(c.cmd(&["UNLINK", "stream"]));
        out.push(freed(&mut c));
        out.push(c.cmd(&["CONFIG", "RESETSTAT"]));
        out.push(freed(&mut c));
        // A flush in the background counts every key it frees; SYNC none.
        out.push(c.cmd(&["MSET", "a", "1", "b", "2", "c", "3"]));
        out.push(c.cmd(&["FLUSHALL", "ASYNC"]));
        out.push(freed(&mut c));
        out.push(c.cmd(&["MSET", "a", "1", "b", "2"]));
        out.push(c.cmd(&["FLUSHDB", "SYNC"]));
        out.push(freed(&mut c));
        out
    });
}
