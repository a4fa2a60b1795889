//! Lua scripts across connections, against the real binary: a script is
//! atomic (a concurrent reader never sees half of its writes, concurrent
//! scripts never lose an increment), the script cache is shared by all
//! clients, and a script running past `busy-reply-threshold` makes other
//! clients get `-BUSY` and can be stopped with `SCRIPT KILL` (compared
//! with redis-server); likewise a busy function and `FUNCTION KILL`, and a
//! `FUNCTION DUMP` of either server restores into the other. Single-connection behaviour is compared with redis-server in
//! `tests/conformance/scripting.redis`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use std::time::Duration;

use amber_tests::connect;
use amber_tests::reply::show;
use amber_tests::Pair;

/// Increments every key of KEYS by one, one at a time.
const INCR_ALL: &str = "for i = 1, #KEYS do redis.call('incr', KEYS[i]) end return #KEYS";

/// Keys spread over shards: at least one pair lands in different shards.
fn keys() -> Vec<String> {
    (0..8).map(|i| format!("script-atom:{i}")).collect()
}

fn eval_args(keys: &[String]) -> Vec<String> {
    let mut args = vec![
        "EVAL".to_string(),
        INCR_ALL.to_string(),
        keys.len().to_string(),
    ];
    args.extend(keys.iter().cloned());
    args
}

#[test]
fn scripts_are_atomic() {
    let amber = amber_tests::ServerProcess::amber(&[]);
    let port = amber.port;
    let keys = keys();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (stop, keys) = (stop.clone(), keys.clone());
            std::thread::spawn(move || {
                let mut r = connect(port);
                let mut mget = vec!["MGET".to_string()];
                mget.extend(keys.iter().cloned());
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    r.send(&mget).expect("send");
                    let reply = r.read_parsed().expect("reply");
                    let values: Vec<Option<Vec<u8>>> =
                        reply.items.iter().map(|i| i.data.clone()).collect();
                    assert_eq!(
                        values.len(),
                        keys.len(),
                        "MGET replied {}",
                        show(&reply.raw)
                    );
                    assert!(
                        values.windows(2).all(|w| w[0] == w[1]),
                        "saw half a script: {values:?}"
                    );
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    const SCRIPTS_PER_WRITER: usize = 200;
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let keys = keys.clone();
            std::thread::spawn(move || {
                let mut w = connect(port);
                let args = eval_args(&keys);
                for _ in 0..SCRIPTS_PER_WRITER {
                    let reply = w.cmd(&args);
                    assert_eq!(reply, format!(":{}\r\n", keys.len()).into_bytes());
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer panicked");
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().expect("reader panicked") > 0);
    }
    // No increment was lost between the two writers' scripts.
    let mut c = connect(port);
    let total = (2 * SCRIPTS_PER_WRITER).to_string();
    for k in &keys {
        let reply = c.cmd(&["GET", k.as_str()]);
        assert_eq!(
            reply,
            format!("${}\r\n{total}\r\n", total.len()).into_bytes(),
            "{k}"
        );
    }
}

#[test]
fn the_script_cache_is_shared_by_clients() {
    let amber = amber_tests::ServerProcess::amber(&[]);
    let (mut a, mut b) = (connect(amber.port), connect(amber.port));
    let sha = "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"; // sha1("return 1")
    assert!(b.cmd(&["EVALSHA", sha, "0"]).starts_with(b"-NOSCRIPT"));
    assert_eq!(a.cmd(&["EVAL", "return 1", "0"]), b":1\r\n");
    assert_eq!(b.cmd(&["EVALSHA", sha, "0"]), b":1\r\n");
    assert_eq!(a.cmd(&["SCRIPT", "FLUSH"]), b"+OK\r\n");
    assert!(b.cmd(&["EVALSHA", sha, "0"]).starts_with(b"-NOSCRIPT"));
}

#[test]
fn deeply_nested_values_do_not_overflow_the_stack() {
    let amber = amber_tests::ServerProcess::amber(&[]);
    let mut c = connect(amber.port);
    // A 900-level array reply (Redis replies the same; converting it
    // recurses once per level).
    let deep = "local t = {} local c = t for i = 1, 900 do c[1] = {} c = c[1] end return t";
    // (Read raw: the test client's parser stops at a smaller depth.)
    let raw = connect(amber.port);
    let mut raw = raw;
    raw.send(&["EVAL", deep, "0"]).expect("send");
    let mut expected = "*1\r\n".repeat(900).into_bytes();
    expected.extend_from_slice(b"*0\r\n");
    let mut reply = vec![0u8; expected.len()];
    std::io::Read::read_exact(&mut raw.stream(), &mut reply).expect("deep reply");
    assert_eq!(reply, expected);
    // cjson's own depth limits, 1000 levels each way.
    let decode =
        "return #cjson.encode(cjson.decode(string.rep('[', 1000) .. string.rep(']', 1000)))";
    assert_eq!(c.cmd(&["EVAL", decode, "0"]), b":2000\r\n");
    let too_deep = c.cmd(&["EVAL", "return cjson.decode(string.rep('[', 5000))", "0"]);
    assert!(
        too_deep.starts_with(b"-ERR user_script:1: Found too many nested data structures (1001)"),
        "{}",
        show(&too_deep)
    );
    // A deep MessagePack value (packing keeps 16 levels, as Redis does).
    let msgpack = "return #cmsgpack.pack(cmsgpack.unpack(string.rep('\\145', 900) .. '\\1'))";
    assert_eq!(c.cmd(&["EVAL", msgpack, "0"]), b":17\r\n");
    assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
}

/// A script running past the threshold, seen from another connection.
/// Amber serves connections on several threads; a script blocks its own,
/// so the other client must be on another one: with two threads,
/// consecutive connections are on different threads.
fn busy_scenario(port: u16) -> Vec<Vec<u8>> {
    let mut a = connect(port);
    let mut b = connect(port);
    let mut out = vec![b.cmd(&["CONFIG", "SET", "busy-reply-threshold", "100"])];
    out.push(b.cmd(&["SCRIPT", "KILL"]));
    // A script that never ends: killed.
    a.send(&["EVAL", "local i = 0 while true do i = i + 1 end", "0"])
        .expect("send");
    std::thread::sleep(Duration::from_millis(400));
    out.push(b.cmd(&["PING"]));
    out.push(b.cmd(&["GET", "busy:k"]));
    out.push(b.cmd(&["SCRIPT", "KILL"]));
    out.push(a.read_reply().expect("killed script's reply"));
    out.push(b.cmd(&["PING"]));
    out.push(b.cmd(&["SCRIPT", "KILL"]));
    // pcall cannot keep a killed script alive.
    let stubborn = "while true do pcall(function() while true do end end) end";
    a.send(&["EVAL", stubborn, "0"]).expect("send");
    std::thread::sleep(Duration::from_millis(400));
    out.push(b.cmd(&["SCRIPT", "KILL"]));
    out.push(a.read_reply().expect("killed script's reply"));
    // A script that wrote cannot be killed; it ends by itself.
    let wrote = "redis.call('set', 'busy:k', 'v') for i = 1, 3e8 do end return 'done'";
    a.send(&["EVAL", wrote, "0"]).expect("send");
    std::thread::sleep(Duration::from_millis(400));
    out.push(b.cmd(&["SCRIPT", "KILL"]));
    a.set_timeout(Duration::from_secs(60));
    out.push(a.read_reply().expect("the script's reply"));
    out.push(b.cmd(&["GET", "busy:k"]));
    out.push(b.cmd(&["CONFIG", "SET", "busy-reply-threshold", "5000"]));
    out
}

#[test]
fn a_busy_script_can_be_killed() {
    let pair = Pair::start(&[], &["--threads", "2"]);
    let r = busy_scenario(pair.redis.port);
    let a = busy_scenario(pair.amber.port);
    let show_all = |v: &[Vec<u8>]| v.iter().map(|b| show(b)).collect::<Vec<_>>();
    assert_eq!(
        show_all(&a),
        show_all(&r),
        "replies differ (left: amber, right: redis)"
    );
}

/// A client blocked on a list a script pushes to is served after the
/// script, with what the script left (as after `EXEC`).
fn blocked_scenario(port: u16) -> Vec<Vec<u8>> {
    let mut waiter = connect(port);
    let mut c = connect(port);
    let mut out = vec![c.cmd(&["DEL", "busy:q"])];
    waiter.send(&["BLPOP", "busy:q", "5"]).expect("send");
    std::thread::sleep(Duration::from_millis(200));
    let script = "redis.call('rpush', 'busy:q', 'a', 'b') redis.call('lpop', 'busy:q') return redis.call('llen', 'busy:q')";
    out.push(c.cmd(&["EVAL", script, "0"]));
    out.push(waiter.read_reply().expect("BLPOP's reply"));
    out.push(c.cmd(&["LLEN", "busy:q"]));
    out
}

#[test]
fn a_scripts_push_serves_blocked_clients_after_it() {
    let pair = Pair::start(&[], &[]);
    let r = blocked_scenario(pair.redis.port);
    let a = blocked_scenario(pair.amber.port);
    let show_all = |v: &[Vec<u8>]| v.iter().map(|b| show(b)).collect::<Vec<_>>();
    assert_eq!(
        show_all(&a),
        show_all(&r),
        "replies differ (left: amber, right: redis)"
    );
}

/// A library with a function that never ends.
const SPIN_LIBRARY: &str =
    "#!lua name=spin\nredis.register_function('spin', function() while true do end end)";

/// A function running past the threshold, seen from another connection:
/// other clients get the `-BUSY` of functions, only `FUNCTION KILL` stops
/// it, and `FUNCTION KILL` does not stop a script.
fn busy_function_scenario(port: u16) -> Vec<Vec<u8>> {
    let mut a = connect(port);
    let mut b = connect(port);
    let mut out = vec![b.cmd(&["CONFIG", "SET", "busy-reply-threshold", "100"])];
    out.push(b.cmd(&["FUNCTION", "LOAD", "REPLACE", SPIN_LIBRARY]));
    out.push(b.cmd(&["FUNCTION", "KILL"]));
    a.send(&["FCALL", "spin", "0"]).expect("send");
    std::thread::sleep(Duration::from_millis(400));
    out.push(b.cmd(&["PING"]));
    out.push(without_duration(&b.cmd(&["FUNCTION", "STATS"])));
    out.push(b.cmd(&["SCRIPT", "KILL"]));
    out.push(b.cmd(&["FUNCTION", "KILL"]));
    out.push(a.read_reply().expect("killed function's reply"));
    out.push(b.cmd(&["PING"]));
    // A script is killed with SCRIPT KILL only.
    a.send(&["EVAL", "while true do end", "0"]).expect("send");
    std::thread::sleep(Duration::from_millis(400));
    out.push(b.cmd(&["FUNCTION", "KILL"]));
    out.push(b.cmd(&["SCRIPT", "KILL"]));
    out.push(a.read_reply().expect("killed script's reply"));
    out.push(b.cmd(&["FUNCTION", "FLUSH"]));
    out.push(b.cmd(&["CONFIG", "SET", "busy-reply-threshold", "5000"]));
    out
}

/// A `FUNCTION STATS` reply with its `duration_ms` set to 0.
fn without_duration(reply: &[u8]) -> Vec<u8> {
    let key = b"duration_ms\r\n:";
    let Some(at) = reply.windows(key.len()).position(|w| w == key) else {
        return reply.to_vec();
    };
    let start = at + key.len();
    let end = start + reply[start..].iter().position(|&c| c == b'\r').unwrap_or(0);
    [&reply[..start], b"0", &reply[end..]].concat()
}

#[test]
fn a_busy_function_can_be_killed() {
    let pair = Pair::start(&[], &["--threads", "2"]);
    let r = busy_function_scenario(pair.redis.port);
    let a = busy_function_scenario(pair.amber.port);
    let show_all = |v: &[Vec<u8>]| v.iter().map(|b| show(b)).collect::<Vec<_>>();
    assert_eq!(
        show_all(&a),
        show_all(&r),
        "replies differ (left: amber, right: redis)"
    );
}

/// The bulk string of a reply.
fn bulk_of(reply: &[u8]) -> Vec<u8> {
    let text_end = reply
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("a bulk string header");
    assert_eq!(
        reply.first(),
        Some(&b'$'),
        "not a bulk string: {}",
        show(reply)
    );
    let len: usize = std::str::from_utf8(&reply[1..text_end])
        .expect("length")
        .parse()
        .expect("length");
    reply[text_end + 2..text_end + 2 + len].to_vec()
}

/// Loads two libraries on `from`, dumps them, restores the dump on `to`
/// (flushing what it had) and calls the functions there.
fn dump_and_restore(from: u16, to: u16) -> Vec<Vec<u8>> {
    let mut src = connect(from);
    let mut dst = connect(to);
    src.cmd(&["FUNCTION", "FLUSH"]);
    let libraries = [
        "#!lua name=first\nredis.register_function('one', function(keys, args) return {keys[1], args[1], 'one'} end)",
        "#!lua name=second\nredis.register_function{function_name='two', callback=function() return 'two two two two two two' end, flags={'no-writes'}, description='the second one'}",
    ];
    for code in libraries {
        src.cmd(&["FUNCTION", "LOAD", code]);
    }
    let payload = bulk_of(&src.cmd(&["FUNCTION", "DUMP"]));
    let restore: [&[u8]; 4] = [b"FUNCTION", b"RESTORE", &payload, b"FLUSH"];
    let mut out = vec![dst.cmd(&restore)];
    out.push(dst.cmd(&["FCALL", "one", "1", "k", "a"]));
    out.push(dst.cmd(&["FCALL_RO", "two", "0"]));
    out.push(dst.cmd(&["FUNCTION", "LIST", "LIBRARYNAME", "second", "WITHCODE"]));
    src.cmd(&["FUNCTION", "FLUSH"]);
    dst.cmd(&["FUNCTION", "FLUSH"]);
    out
}

#[test]
fn function_dumps_restore_across_redis_and_amber() {
    let pair = Pair::start(&[], &[]);
    let (redis, amber) = (pair.redis.port, pair.amber.port);
    let show_all = |v: &[Vec<u8>]| v.iter().map(|b| show(b)).collect::<Vec<_>>();
    let within_redis = show_all(&dump_and_restore(redis, redis));
    assert_eq!(show_all(&dump_and_restore(amber, amber)), within_redis);
    assert_eq!(show_all(&dump_and_restore(redis, amber)), within_redis);
    assert_eq!(show_all(&dump_and_restore(amber, redis)), within_redis);
}

/// Time stands still for a script's keys (Redis 7.0's `scriptTimeSnapshot`):
/// a key whose deadline passes while the script runs is still there for
/// its later commands, and `PTTL` (which counts on the wall clock) says 0
/// left. The next command sees it gone.
#[test]
fn a_key_does_not_expire_halfway_through_a_script() {
    amber_tests::differential("script time", &[], |p| {
        let mut c = connect(p);
        let wait_20ms = "local s = redis.call('time') local t \
             repeat t = redis.call('time') until (t[1]-s[1])*1000000 + (t[2]-s[2]) > 20000";
        let script = format!(
            "redis.call('set','k','v','px',5) {wait_20ms} \
             return {{redis.call('get','k'), redis.call('exists','k'), redis.call('pttl','k')}}"
        );
        vec![
            c.cmd(&["EVAL", &script, "0"]),
            c.cmd(&["EXISTS", "k"]),
            c.cmd(&["SET", "j", "v", "PX", "5"]),
            c.cmd(&[
                "EVAL",
                &format!("{wait_20ms} return redis.call('exists','j')"),
                "0",
            ]),
        ]
    });
}
