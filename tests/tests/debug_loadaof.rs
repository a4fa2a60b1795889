//! `DEBUG LOADAOF` side by side with redis-server (run with `appendonly
//! yes`, the only way Redis 7.0 survives it): `+OK`, every key and TTL
//! kept, and `rdb_changes_since_last_save` back to 0.

use amber_tests::replication::field;
use amber_tests::reply::show;
use amber_tests::{Pair, RespClient};

fn scenario(c: &mut RespClient) -> Vec<String> {
    let mut out = Vec::new();
    for cmd in [
        &["SET", "a", "1"][..],
        &["RPUSH", "l", "x", "y"],
        &["EXPIRE", "l", "1000"],
        &["SELECT", "2"],
        &["SADD", "s", "m"],
        &["SELECT", "0"],
    ] {
        out.push(show(&c.cmd(cmd)));
    }
    let before = field(c, "persistence", "rdb_changes_since_last_save");
    assert_ne!(before, "0");
    out.push(show(&c.cmd(&["DEBUG", "LOADAOF"])));
    out.push(field(c, "persistence", "rdb_changes_since_last_save"));
    for cmd in [
        &["DBSIZE"][..],
        &["GET", "a"],
        &["LRANGE", "l", "0", "-1"],
        &["TTL", "l"],
        &["TTL", "a"],
        &["SELECT", "2"],
        &["SMEMBERS", "s"],
    ] {
        out.push(show(&c.cmd(cmd)));
    }
    out
}

#[test]
fn loadaof_keeps_keys_and_ttls_and_clears_dirty() {
    let pair = Pair::start(
        &["--enable-debug-command", "yes", "--appendonly", "yes"],
        &[],
    );
    let (mut redis, mut amber) = pair.clients();
    let want = scenario(&mut redis);
    assert_eq!(scenario(&mut amber), want, "left: amber, right: redis");
}
