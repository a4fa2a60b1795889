//! Connections moving between connection threads (`threads 2`): clients
//! that keep pipelining on one key move to the thread serving its shard
//! (see `amber_server::cores`), in the middle of whatever state they are
//! in (a MULTI block, a pipeline cut between two reads), and nothing is
//! lost, doubled or answered out of order. A moved client can still block,
//! be woken by another client, and be killed.

use std::io::Write;
use std::time::Duration;

use amber_tests::reply::show;
use amber_tests::{RespClient, ServerProcess};

const CLIENTS: usize = 6;
const BATCHES: usize = 80;

/// `INFO stats`' `connection_moves`.
fn moves(c: &mut RespClient) -> u64 {
    let info = String::from_utf8_lossy(&c.cmd(&["INFO", "stats"])).into_owned();
    info.lines()
        .find_map(|l| l.strip_prefix("connection_moves:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("INFO stats has connection_moves")
}

fn encode(args: &[String]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

#[test]
fn clients_of_one_key_move_and_lose_nothing() {
    let amber = ServerProcess::amber(&["--threads", "2"]);
    let port = amber.port;
    let mut admin = amber.client();
    assert_eq!(moves(&mut admin), 0);
    let workers: Vec<_> = (0..CLIENTS)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = RespClient::connect(port).expect("connect");
                c.set_timeout(Duration::from_secs(20));
                let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
                let mut pushed = 0usize;
                for b in 0..BATCHES {
                    // Batch 40 opens a MULTI block that batch 41 executes: a
                    // move between them carries the queued commands along.
                    let mut cmds = Vec::new();
                    if b == 40 {
                        cmds.push(s(&["MULTI"]));
                    }
                    for i in 0..3 {
                        cmds.push(s(&["RPUSH", "hot", &format!("{t}:{b}:{i}")]));
                    }
                    if b == 41 {
                        cmds.push(s(&["EXEC"]));
                    }
                    let mut bytes: Vec<u8> = cmds.iter().flat_map(|a| encode(a)).collect();
                    // Every fifth batch arrives in two pieces, cut inside a
                    // request, so a half-read request may be what moves.
                    if b % 5 == 0 {
                        let cut = bytes.len() / 2 + 1;
                        let rest = bytes.split_off(cut);
                        c.send_raw(&bytes).expect("send");
                        c.stream().flush().expect("flush");
                        std::thread::sleep(Duration::from_millis(2));
                        c.send_raw(&rest).expect("send");
                    } else {
                        c.send_raw(&bytes).expect("send");
                    }
                    for cmd in &cmds {
                        let r = c.read_reply().expect("a reply for every request");
                        let what = format!("client {t} batch {b}: {:?}", cmd);
                        match cmd[0].as_str() {
                            "MULTI" => assert_eq!(show(&r), show(b"+OK\r\n"), "{what}"),
                            "EXEC" => {
                                // Three RPUSHes of batch 40 and three of 41.
                                assert!(r.starts_with(b"*6\r\n:"), "{what}: {}", show(&r));
                                pushed += 6;
                            }
                            _ if b == 40 || b == 41 => {
                                assert_eq!(show(&r), show(b"+QUEUED\r\n"), "{what}")
                            }
                            _ => {
                                assert!(r.starts_with(b":"), "{what}: {}", show(&r));
                                pushed += 1;
                            }
                        }
                    }
                }
                // Each client's own elements are in the order it pushed them.
                let all = c.cmd(&["LRANGE", "hot", "0", "-1"]);
                let text = String::from_utf8_lossy(&all).into_owned();
                let mine: Vec<&str> = text
                    .lines()
                    .filter(|l| l.starts_with(&format!("{t}:")))
                    .collect();
                let expected: Vec<String> = (0..BATCHES)
                    .flat_map(|b| (0..3).map(move |i| format!("{t}:{b}:{i}")))
                    .collect();
                assert_eq!(mine, expected, "client {t}: its pushes, in order");
                pushed
            })
        })
        .collect();
    let pushed: usize = workers
        .into_iter()
        .map(|w| w.join().expect("client panicked"))
        .sum();
    assert_eq!(pushed, CLIENTS * BATCHES * 3);
    assert_eq!(
        show(&admin.cmd(&["LLEN", "hot"])),
        show(format!(":{pushed}\r\n").as_bytes())
    );
    // New connections take the threads in turn, so exactly half of them
    // started away from the key's home thread, and each moved once.
    let moved = moves(&mut admin);
    assert_eq!(
        moved,
        (CLIENTS / 2) as u64,
        "moves for {CLIENTS} clients on one key"
    );
}

#[test]
fn a_moved_client_blocks_is_woken_and_can_be_killed() {
    let amber = ServerProcess::amber(&["--threads", "2"]);
    let mut admin = amber.client();
    // Two clients, so one of them starts away from the key's home thread.
    let mut clients: Vec<RespClient> = (0..2).map(|_| amber.client()).collect();
    for c in clients.iter_mut() {
        for _ in 0..40 {
            c.send_raw(&encode(&["INCR".into(), "k".into()]))
                .expect("send");
            c.send_raw(&encode(&["INCR".into(), "k".into()]))
                .expect("send");
            c.read_reply().expect("reply");
            c.read_reply().expect("reply");
        }
    }
    assert_eq!(moves(&mut admin), 1, "one of the two clients moved");
    assert_eq!(show(&admin.cmd(&["GET", "k"])), show(b"$3\r\n160\r\n"));
    // Both block, and a third client's pushes wake them.
    for c in clients.iter_mut() {
        c.send(&["BLPOP", "q", "10"]).expect("send");
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(show(&admin.cmd(&["RPUSH", "q", "a", "b"])), show(b":2\r\n"));
    let mut got: Vec<String> = clients
        .iter_mut()
        .map(|c| show(&c.read_reply().expect("woken")))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            show(b"*2\r\n$1\r\nq\r\n$1\r\na\r\n"),
            show(b"*2\r\n$1\r\nq\r\n$1\r\nb\r\n")
        ]
    );
    // CLIENT KILL reaches each of them, wherever it now runs.
    for c in clients.iter_mut() {
        let id = String::from_utf8_lossy(&c.cmd(&["CLIENT", "ID"]))
            .trim_start_matches(':')
            .trim()
            .to_string();
        assert_eq!(
            show(&admin.cmd(&["CLIENT", "KILL", "ID", &id])),
            show(b":1\r\n")
        );
        let (_, closed) = c.read_until_close(Duration::from_secs(5));
        assert!(closed, "killed client {id} was disconnected");
    }
}

#[test]
fn clients_running_scripts_gather_on_one_thread() {
    let amber = ServerProcess::amber(&["--threads", "2"]);
    let mut admin = amber.client();
    // Four clients in a row: two start on each thread.
    let mut clients: Vec<RespClient> = (0..4).map(|_| amber.client()).collect();
    let eval = encode(&[
        "EVAL".into(),
        "return redis.call('INCR', KEYS[1])".into(),
        "1".into(),
        "n".into(),
    ]);
    let mut last = 0i64;
    for round in 0..20 {
        for c in clients.iter_mut() {
            for _ in 0..4 {
                c.send_raw(&eval).expect("send");
            }
            for _ in 0..4 {
                let r = c.read_reply().expect("reply");
                let n: i64 = String::from_utf8_lossy(&r)
                    .trim_start_matches(':')
                    .trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("round {round}: {}", show(&r)));
                assert_eq!(n, last + 1, "each script ran once, in order");
                last = n;
            }
        }
    }
    // Scripts take turns on one gate: the two clients away from the
    // scripts' thread moved there, once each.
    assert_eq!(moves(&mut admin), 2);
    assert_eq!(show(&admin.cmd(&["GET", "n"])), show(b"$3\r\n320\r\n"));
}
