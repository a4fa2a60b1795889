//! `DEBUG RELOAD` and its options side by side with redis-server: the data
//! and functions come back as they were; `NOFLUSH` without `MERGE` fails
//! on data already there; an unknown option is refused.

use amber_tests::reply::show;
use amber_tests::{Pair, RespClient};

fn scenario(c: &mut RespClient) -> Vec<String> {
    let mut out = Vec::new();
    let lib = "#!lua name=lib\nredis.register_function('f', function() return 'hi' end)";
    for cmd in [
        // Nothing loaded yet: NOFLUSH alone has nothing to collide with.
        &["DEBUG", "RELOAD", "NOFLUSH"][..],
        &["SET", "a", "1"],
        &["FUNCTION", "LOAD", lib],
        &["DEBUG", "RELOAD"],
        &["DEBUG", "RELOAD", "NOFLUSH"],
        &["DEBUG", "RELOAD", "noflush", "merge"],
        &["DEBUG", "RELOAD", "NOSAVE", "NOFLUSH", "MERGE"],
        &["DEBUG", "RELOAD", "FAST"],
        &["GET", "a"],
        &["FCALL", "f", "0"],
        &["FLUSHALL"],
        // Functions alone collide too.
        &["DEBUG", "RELOAD", "NOFLUSH"],
        &["FUNCTION", "FLUSH"],
        &["DEBUG", "RELOAD", "NOFLUSH"],
    ] {
        out.push(format!("{cmd:?} -> {}", show(&c.cmd(cmd))));
    }
    out
}

#[test]
fn reload_options_as_redis() {
    let pair = Pair::start(&["--enable-debug-command", "yes"], &[]);
    let (mut redis, mut amber) = pair.clients();
    let want = scenario(&mut redis);
    assert_eq!(scenario(&mut amber), want, "left: amber, right: redis");
}
