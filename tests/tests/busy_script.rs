//! A script running past `busy-reply-threshold`, compared byte for byte
//! with redis-server: every connection made while it runs gets Redis's
//! `-BUSY` error promptly (Amber sends new connections to the connection
//! threads the script does not hold), `SCRIPT KILL` / `FUNCTION KILL`
//! works from any of them, and a command on another thread that was
//! already waiting for the script when the threshold passed (a `PING`, an
//! `EXEC` that needs the keyspace alone) gets its `-BUSY` then, as in
//! Redis. `SHUTDOWN` without `NOSAVE` is refused while busy; `SHUTDOWN
//! NOSAVE` ends the server, script and all.
//!
//! Known difference: a connection that was already on the script's own
//! thread waits for the script to end (Amber runs a script on its
//! connection's thread, as Redis runs it on its only one, but cannot
//! answer that thread's other connections from inside it).
//!
//! Every read is bounded (a hang fails the test instead of stalling it),
//! and nothing waits by sleeping: a client polls until it sees the script.

use std::time::{Duration, Instant};

use amber_tests::reply::show;
use amber_tests::{connect, Pair, RespClient, ServerProcess};

/// Amber's connection threads in these tests.
const THREADS: usize = 2;
/// Fresh connections per round: several per thread, so they would share
/// the script's thread if new connections were not kept off it.
const FRESH: usize = 3 * THREADS;
/// How long a reply may take before the test calls it a hang.
const PROMPT: Duration = Duration::from_secs(5);

/// A script that never ends by itself (and writes nothing: killable).
const SPIN: &str = "local a = 1 while true do a = a + 1 end";
/// A library whose function never ends by itself.
const SPIN_LIBRARY: &str = "#!lua name=busylib\nredis.register_function('spin', function() local a = 1 while true do a = a + 1 end end)";

fn client(port: u16) -> RespClient {
    let c = connect(port);
    c.set_timeout(PROMPT);
    c
}

/// Sends `args` until the reply is no longer `quiet` (what it answers
/// before the script runs), and returns that reply: the first request that
/// met the running script. Panics if no reply comes within [`PROMPT`].
fn until_not(c: &mut RespClient, args: &[&str], quiet: &[u8]) -> Vec<u8> {
    until(c, args, |r| r == quiet)
}

/// [`until_not`] with a test for the quiet replies.
fn until(c: &mut RespClient, args: &[&str], quiet: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let deadline = Instant::now() + PROMPT;
    loop {
        let reply = c
            .try_cmd(args)
            .unwrap_or_else(|e| panic!("{args:?} got no reply (a hang): {e}"));
        if !quiet(&reply) {
            return reply;
        }
        assert!(Instant::now() < deadline, "{args:?} never met the script");
    }
}

/// One runaway script per round, killed from a different fresh connection
/// each round, all made once the script runs (`admin`, made before the
/// script's connection, is on another thread: connections go to the
/// threads in turn). `call` starts the script, `kill` is its kill command.
fn runaway_rounds(port: u16, setup: &[&[&str]], call: &[&str], kill: &[&str]) -> Vec<Vec<u8>> {
    let mut admin = client(port);
    let mut out = vec![admin.cmd(&["CONFIG", "SET", "busy-reply-threshold", "10"])];
    for step in setup {
        out.push(admin.cmd(step));
    }
    for round in 0..2 {
        let mut script = client(port);
        script.send(call).expect("send the script");
        out.push(until_not(&mut admin, &["PING"], b"+PONG\r\n"));
        let mut fresh: Vec<RespClient> = (0..FRESH).map(|_| client(port)).collect();
        // Each one's first reply that is not PONG: the script's -BUSY.
        for c in fresh.iter_mut() {
            out.push(until_not(c, &["PING"], b"+PONG\r\n"));
        }
        // Commands Redis allows while busy still answer.
        out.push(fresh[2].cmd(&["MULTI"]));
        out.push(fresh[2].cmd(&["DISCARD"]));
        out.push(fresh[round].cmd(kill));
        out.push(
            script
                .read_reply()
                .expect("the killed script's reply (a hang)"),
        );
        // Afterwards every connection works.
        for c in fresh.iter_mut().chain([&mut script, &mut admin]) {
            out.push(c.cmd(&["PING"]));
        }
    }
    out.push(admin.cmd(&["CONFIG", "SET", "busy-reply-threshold", "5000"]));
    out
}

fn compare(amber: &[Vec<u8>], redis: &[Vec<u8>]) {
    let all = |v: &[Vec<u8>]| v.iter().map(|b| show(b)).collect::<Vec<_>>();
    assert_eq!(
        all(amber),
        all(redis),
        "replies differ (left: amber, right: redis)"
    );
}

fn pair() -> Pair {
    Pair::start(&[], &["--threads", &THREADS.to_string()])
}

#[test]
fn every_connection_gets_busy_and_script_kill_works_from_any() {
    let pair = pair();
    let eval = ["EVAL", SPIN, "0"];
    let redis = runaway_rounds(pair.redis.port, &[], &eval, &["SCRIPT", "KILL"]);
    let amber = runaway_rounds(pair.amber.port, &[], &eval, &["SCRIPT", "KILL"]);
    compare(&amber, &redis);
}

#[test]
fn every_connection_gets_busy_and_function_kill_works_from_any() {
    let pair = pair();
    let load: &[&str] = &["FUNCTION", "LOAD", "REPLACE", SPIN_LIBRARY];
    let fcall = ["FCALL", "spin", "0"];
    let kill = ["FUNCTION", "KILL"];
    let redis = runaway_rounds(pair.redis.port, &[load], &fcall, &kill);
    let amber = runaway_rounds(pair.amber.port, &[load], &fcall, &kill);
    compare(&amber, &redis);
}

/// Connections on other threads than the script's: made after it in
/// turn with others between them (connections go to the threads in turn,
/// and the script may not have started yet to keep them off its thread).
fn off_the_script_thread(port: u16, n: usize) -> (Vec<RespClient>, Vec<RespClient>) {
    let mut kept = Vec::new();
    let mut between = Vec::new();
    for _ in 0..n {
        kept.push(client(port));
        between.push(client(port));
    }
    (kept, between)
}

/// Commands sent while the script runs but before the threshold passes
/// (a half-second threshold, and clients polling all along, at once): a
/// `PING`, an `EXEC` (which needs the keyspace alone; without `MULTI` it
/// answers an error at once while no script runs) and a `BGSAVE` (which
/// takes the keyspace alone for a moment) wait, then get `-BUSY` once it
/// passes.
fn waiting_when_the_threshold_passes(port: u16) -> Vec<Vec<u8>> {
    let mut admin = client(port);
    let mut out = vec![admin.cmd(&["CONFIG", "SET", "busy-reply-threshold", "500"])];
    let mut script = client(port);
    // The pollers' connections, on admin's thread.
    let (mut conns, _between) = off_the_script_thread(port, 3);
    script.send(&["EVAL", SPIN, "0"]).expect("send the script");
    let mut poll = |args: &'static [&'static str], quiet: fn(&[u8]) -> bool| {
        let mut c = conns.pop().expect("a connection");
        std::thread::spawn(move || {
            let reply = until(&mut c, args, quiet);
            (c, reply)
        })
    };
    let pinger = poll(&["PING"], |r| r == b"+PONG\r\n");
    let execer = poll(&["EXEC"], |r| r == b"-ERR EXEC without MULTI\r\n");
    let saver = poll(&["BGSAVE"], |r| !r.starts_with(b"-BUSY"));
    let mut met = |t: std::thread::JoinHandle<(RespClient, Vec<u8>)>| {
        let (c, reply) = t.join().expect("poller");
        out.push(reply);
        c
    };
    let (mut pinger, mut execer, _saver) = (met(pinger), met(execer), met(saver));
    // SHUTDOWN is allowed while busy, but only NOSAVE shuts down.
    out.push(execer.cmd(&["SHUTDOWN"]));
    out.push(pinger.cmd(&["SCRIPT", "KILL"]));
    out.push(script.read_reply().expect("the killed script's reply"));
    out.push(execer.cmd(&["EXEC"]));
    out.push(admin.cmd(&["CONFIG", "SET", "busy-reply-threshold", "5000"]));
    out
}

#[test]
fn commands_waiting_for_a_script_get_busy_when_it_passes_the_threshold() {
    let pair = pair();
    let redis = waiting_when_the_threshold_passes(pair.redis.port);
    let amber = waiting_when_the_threshold_passes(pair.amber.port);
    compare(&amber, &redis);
}

/// `SHUTDOWN NOSAVE` from any connection ends a server whose script never
/// ends, as Redis's test "SHUTDOWN NOSAVE can kill a timedout script
/// anyway".
fn shutdown_nosave_during_a_runaway_script(server: &mut ServerProcess) -> Vec<Vec<u8>> {
    let port = server.port;
    let mut admin = client(port);
    admin.cmd(&["CONFIG", "SET", "busy-reply-threshold", "10"]);
    let mut script = client(port);
    script.send(&["EVAL", SPIN, "0"]).expect("send the script");
    let busy = until_not(&mut admin, &["PING"], b"+PONG\r\n");
    // Made while the script runs: off its thread.
    let mut others: Vec<RespClient> = (0..FRESH).map(|_| client(port)).collect();
    let last = others.last_mut().expect("connections");
    last.send(&["SHUTDOWN", "NOSAVE"]).expect("send");
    let status = server.wait_exit(PROMPT);
    assert!(
        status.is_some(),
        "{} still runs after SHUTDOWN NOSAVE",
        server.kind.name()
    );
    // The script's client sees the connection close, with no reply.
    let (reply, closed) = script.read_until_close(PROMPT);
    assert!(
        closed,
        "{}: the script's connection stays open",
        server.kind.name()
    );
    vec![busy, reply]
}

#[test]
fn shutdown_nosave_ends_a_server_running_a_runaway_script() {
    let mut pair = pair();
    let redis = shutdown_nosave_during_a_runaway_script(&mut pair.redis);
    let amber = shutdown_nosave_during_a_runaway_script(&mut pair.amber);
    compare(&amber, &redis);
}

/// SIGTERM while a script runs: Redis acts on it only between commands
/// (`serverCron`), so the server goes on answering `-BUSY` (nothing
/// closes) until the script is killed, then shuts down.
fn sigterm_during_a_runaway_script(server: &mut ServerProcess) -> Vec<Vec<u8>> {
    let port = server.port;
    let mut admin = client(port);
    let mut out = vec![admin.cmd(&["CONFIG", "SET", "busy-reply-threshold", "10"])];
    let mut script = client(port);
    script.send(&["EVAL", SPIN, "0"]).expect("send the script");
    let mut other = client(port);
    out.push(until_not(&mut other, &["PING"], b"+PONG\r\n"));
    server.signal(libc::SIGTERM);
    // A bounded wait for something that must not happen.
    assert!(
        server.wait_exit(Duration::from_millis(500)).is_none(),
        "{} exited under a running script",
        server.kind.name()
    );
    out.push(other.cmd(&["PING"]));
    out.push(admin.cmd(&["PING"]));
    out.push(other.cmd(&["SCRIPT", "KILL"]));
    // The script's reply is not compared: Redis exits in the same event
    // loop turn that ends the script, usually before writing it.
    drop(script);
    assert!(
        server.wait_exit(PROMPT).is_some(),
        "{} did not shut down once the script ended",
        server.kind.name()
    );
    out
}

#[test]
fn sigterm_waits_for_a_running_script() {
    let mut pair = pair();
    let redis = sigterm_during_a_runaway_script(&mut pair.redis);
    let amber = sigterm_during_a_runaway_script(&mut pair.amber);
    compare(&amber, &redis);
}

/// A pipeline with a runaway script between commands on one key: the
/// other clients of that key get `-BUSY` too (Amber runs a batch on one
/// shard holding its shard's batch lease, except one with a script), and
/// the rest of the pipeline runs, in order, once the script is killed.
fn pipeline_around_a_runaway_script(port: u16) -> Vec<Vec<u8>> {
    let mut admin = client(port);
    let mut out = vec![admin.cmd(&["CONFIG", "SET", "busy-reply-threshold", "10"])];
    let mut script = client(port);
    let mut batch = amber_tests::reply::encode(&["SET", "busy:p", "1"]);
    batch.extend(amber_tests::reply::encode(&["EVAL", SPIN, "0"]));
    batch.extend(amber_tests::reply::encode(&["INCR", "busy:p"]));
    script.send_raw(&batch).expect("send the pipeline");
    out.push(until_not(&mut admin, &["PING"], b"+PONG\r\n"));
    // Made while the script runs: off its thread.
    let mut other = client(port);
    let mut probe = amber_tests::reply::encode(&["GET", "busy:p"]);
    probe.extend(amber_tests::reply::encode(&["GET", "busy:p"]));
    // Each probe is two GETs of the key (one shard, a lease's kind of
    // batch); the first two replies that are not the key's value are the
    // `-BUSY`s.
    let deadline = Instant::now() + PROMPT;
    let busy = loop {
        other.send_raw(&probe).expect("send");
        let replies = [other.read_reply(), other.read_reply()]
            .map(|r| r.unwrap_or_else(|e| panic!("GET got no reply (a hang): {e}")));
        if replies.iter().all(|r| r.starts_with(b"-")) {
            break replies;
        }
        assert!(Instant::now() < deadline, "the GETs never met the script");
    };
    out.extend(busy);
    out.push(other.cmd(&["SCRIPT", "KILL"]));
    for _ in 0..3 {
        out.push(script.read_reply().expect("the pipeline's replies"));
    }
    out.push(other.cmd(&["GET", "busy:p"]));
    out
}

#[test]
fn a_pipeline_around_a_script_keeps_nothing_others_wait_for() {
    let pair = pair();
    let redis = pipeline_around_a_runaway_script(pair.redis.port);
    let amber = pipeline_around_a_runaway_script(pair.amber.port);
    compare(&amber, &redis);
}

/// A save point that falls due while a script runs long waits for the
/// script (Redis's cron does not run under a script): no save attempt, and
/// no "Saving..." line in the log every tick meanwhile; once the script is
/// killed, the save happens.
#[test]
fn a_save_point_waits_for_a_long_script() {
    let amber = ServerProcess::amber(&[
        "--threads",
        "2",
        "--save",
        "1 1",
        "--busy-reply-threshold",
        "100",
        "--loglevel",
        "notice",
    ]);
    let mut c = client(amber.port);
    assert_eq!(show(&c.cmd(&["SET", "k", "v"])), show(b"+OK\r\n"));
    let mut runner = client(amber.port);
    runner.send(&["EVAL", SPIN, "0"]).expect("send");
    let mut other = client(amber.port);
    until(&mut other, &["PING"], |r| r == b"+PONG\r\n");
    // The save point (one change, one second) falls due while it runs.
    std::thread::sleep(Duration::from_millis(2500));
    let saving = |log: &str| log.matches("Saving...").count();
    assert_eq!(saving(&amber.log_text()), 0, "{}", amber.log_text());
    assert_eq!(show(&other.cmd(&["SCRIPT", "KILL"])), show(b"+OK\r\n"));
    let killed = runner.read_reply().expect("the script's end");
    assert!(
        killed.starts_with(b"-ERR Script killed by user"),
        "{}",
        show(&killed)
    );
    let start = Instant::now();
    while saving(&amber.log_text()) == 0 && start.elapsed() < PROMPT {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(saving(&amber.log_text()), 1, "{}", amber.log_text());
}
