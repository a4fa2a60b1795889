//! Many clients pipelining batches that mix plain data commands with
//! everything that takes other locks or runs alone: commands that hold the
//! keyspace gate exclusively (`SWAPDB`, `FLUSHDB`, `MOVE`, `EXEC`), blocking
//! pops served by another client's push, whole-keyspace reads (`KEYS`,
//! `SCAN`, `DBSIZE`), pub/sub, administration and a rejected command.
//!
//! A deadlock shows up as a reply that does not come within the client's
//! timeout; a lost or doubled write as a wrong final count.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use amber_tests::reply::show;
use amber_tests::{RespClient, ServerProcess};

const WRITERS: usize = 4;
const BATCHES: usize = 150;

/// One batch of writer `t`: its own counters plus one "disturbing" command
/// chosen by the batch number. Returns the commands and how many INCRs,
/// LPUSHes and pushes to the shared queue it holds.
fn batch(t: usize, b: usize) -> (Vec<Vec<String>>, usize, usize, usize) {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let counter = format!("counter:{t}");
    let list = format!("list:{t}");
    let mut cmds = vec![s(&["SELECT", "0"])];
    let (mut incrs, mut pushes, mut queued) = (0, 0, 0);
    for i in 0..12 {
        cmds.push(s(&["INCR", &counter]));
        incrs += 1;
        if i % 3 == 0 {
            cmds.push(s(&["LPUSH", &list, "x"]));
            pushes += 1;
            cmds.push(s(&["ZADD", &format!("z:{t}"), &i.to_string(), "m"]));
            cmds.push(s(&["HSET", &format!("h:{t}"), "f", &b.to_string()]));
            cmds.push(s(&["GET", &counter]));
        }
        if i == 6 {
            // The disturbing command sits between two runs of plain ones.
            match (b + t) % 11 {
                0 => cmds.push(s(&["SWAPDB", "3", "4"])),
                1 => cmds.extend([s(&["SELECT", "5"]), s(&["FLUSHDB"]), s(&["SELECT", "0"])]),
                2 => cmds.extend([
                    s(&["SET", &format!("mv:{t}:{b}"), "1"]),
                    s(&["MOVE", &format!("mv:{t}:{b}"), "6"]),
                ]),
                3 => {
                    cmds.extend([s(&["MULTI"]), s(&["INCR", &counter]), s(&["EXEC"])]);
                    incrs += 1;
                }
                4 => cmds.push(s(&["KEYS", "counter:*"])),
                5 => cmds.push(s(&["SCAN", "0", "COUNT", "50"])),
                6 => cmds.push(s(&["DBSIZE"])),
                7 => {
                    cmds.push(s(&["RPUSH", "queue", "item"]));
                    queued += 1;
                }
                8 => cmds.push(s(&["PUBLISH", "chan", "hello"])),
                9 => cmds.push(s(&["CONFIG", "GET", "maxmemory"])),
                // An arity error in the middle of the batch.
                _ => cmds.push(s(&["MSET"])),
            }
        }
    }
    (cmds, incrs, pushes, queued)
}

#[test]
fn pipelined_batches_mixed_with_exclusive_and_blocking_commands_never_deadlock() {
    let amber = ServerProcess::amber(&[]);
    let port = amber.port;
    let stop = Arc::new(AtomicBool::new(false));
    let popped = Arc::new(AtomicUsize::new(0));
    // A client that keeps blocking on the queue the writers push to.
    let waiter = {
        let (stop, popped) = (stop.clone(), popped.clone());
        std::thread::spawn(move || {
            let mut c = RespClient::connect(port).expect("connect");
            while !stop.load(Ordering::Relaxed) {
                let r = c.cmd(&["BLPOP", "queue", "0.05"]);
                if r.starts_with(b"*2") {
                    popped.fetch_add(1, Ordering::Relaxed);
                } else {
                    assert_eq!(show(&r), show(b"*-1\r\n"), "BLPOP timeout reply");
                }
            }
        })
    };
    // A subscriber, so PUBLISH has someone to deliver to.
    let mut sub = RespClient::connect(port).expect("connect");
    sub.cmd(&["SUBSCRIBE", "chan"]);
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = RespClient::connect(port).expect("connect");
                let (mut incrs, mut pushes, mut queued) = (0, 0, 0);
                for b in 0..BATCHES {
                    let (cmds, i, p, q) = batch(t, b);
                    send_batch(&mut c, &cmds, &format!("writer {t} batch {b}"));
                    incrs += i;
                    pushes += p;
                    queued += q;
                }
                (incrs, pushes, queued)
            })
        })
        .collect();
    let mut queued_total = 0;
    let mut c = RespClient::connect(port).expect("connect");
    for (t, w) in writers.into_iter().enumerate() {
        let (incrs, pushes, queued) = w.join().expect("writer panicked");
        queued_total += queued;
        assert_eq!(
            show(&c.cmd(&["GET", &format!("counter:{t}")])),
            show(format!("${}\r\n{incrs}\r\n", incrs.to_string().len()).as_bytes()),
            "writer {t}: every INCR counted once"
        );
        assert_eq!(
            show(&c.cmd(&["LLEN", &format!("list:{t}")])),
            show(format!(":{pushes}\r\n").as_bytes()),
            "writer {t}: every LPUSH kept"
        );
    }
    // Let the waiter drain the queue, then stop it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while popped.load(Ordering::Relaxed) + queue_len(&mut c) < queued_total
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    waiter.join().expect("waiter panicked");
    assert_eq!(
        popped.load(Ordering::Relaxed) + queue_len(&mut c),
        queued_total,
        "every pushed item was popped by the waiter or is still queued"
    );
}

/// Sends `cmds` as one pipelined write and reads a reply to each.
fn send_batch(c: &mut RespClient, cmds: &[Vec<String>], who: &str) {
    let mut wire = Vec::new();
    for cmd in cmds {
        wire.extend(amber_tests::reply::encode(cmd));
    }
    c.send_raw(&wire).expect("send batch");
    for cmd in cmds {
        // A deadlock ends here, in the client's read timeout.
        c.read_reply()
            .unwrap_or_else(|e| panic!("{who}: no reply to {cmd:?}: {e}"));
    }
}

fn queue_len(c: &mut RespClient) -> usize {
    let r = c.cmd(&["LLEN", "queue"]);
    String::from_utf8_lossy(&r)
        .trim_start_matches(':')
        .trim()
        .parse()
        .expect("LLEN is an integer")
}

/// Batches whose keys are all one key take turns as whole batches (batch
/// leases, `server/src/lease.rs`), also when they hold `EXEC`, `SWAPDB` or
/// `FLUSHDB`, which take the whole keyspace. Many clients pipelining on one sorted set: no batch may
/// hang, and every increment must count once.
#[test]
fn batches_on_one_key_take_turns_without_losing_or_hanging() {
    const CLIENTS: usize = 6;
    const ROUNDS: usize = 120;
    let amber = ServerProcess::amber(&[]);
    let port = amber.port;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = RespClient::connect(port).expect("connect");
                let member = format!("m{t}");
                let incr = vec!["ZINCRBY".to_string(), "hot".into(), "1".into(), member];
                let mut counted = 0;
                for b in 0..ROUNDS {
                    let mut cmds: Vec<Vec<String>> = vec![incr.clone(); 16];
                    counted += 16;
                    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
                    match (b + t) % 5 {
                        0 => {
                            cmds.extend([s(&["MULTI"]), incr.clone(), s(&["EXEC"])]);
                            counted += 1;
                        }
                        1 => cmds.insert(8, s(&["SWAPDB", "3", "4"])),
                        2 => {
                            let flush = [s(&["SELECT", "5"]), s(&["FLUSHDB"]), s(&["SELECT", "0"])];
                            cmds.splice(4..4, flush);
                        }
                        _ => {}
                    }
                    send_batch(&mut c, &cmds, &format!("client {t} batch {b}"));
                }
                counted
            })
        })
        .collect();
    let mut c = RespClient::connect(port).expect("connect");
    for (t, h) in clients.into_iter().enumerate() {
        let counted = h.join().expect("client panicked");
        assert_eq!(
            show(&c.cmd(&["ZSCORE", "hot", &format!("m{t}")])),
            show(format!("${}\r\n{counted}\r\n", counted.to_string().len()).as_bytes()),
            "client {t}: every ZINCRBY counted once"
        );
    }
}
