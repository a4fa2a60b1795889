//! Crash trials against the real binary: writers hammer an `amber-server`
//! with `persistence pmem`, the process is killed with SIGKILL at a random
//! moment, restarted on the same arena, and every acknowledged write must be
//! there.
//!
//! Each writer owns its keys, so it knows exactly what each key must hold:
//! the value of its last acknowledged write, or (for the one command in
//! flight when the process died) either the old or the new value. The next
//! trial starts from the recovered arena, so damage would accumulate and be
//! seen. The DRAM budget is small, so values are demoted, promoted and
//! compacted while the writers run, and a few values are large enough to
//! need multi-segment records. Each writer also owns a list and a hash that
//! grow to thousands of elements over the trials, changed one element at a
//! time: with a hot tier those writes are delta records on the
//! collection's last whole record, which recovery must apply. So does a
//! stream per writer, grown by `XADD` and cut by `XDEL` and `XTRIM`.
//!
//! `cargo test` runs a few trials; the soak is the same test with more:
//! `AMBER_CRASH_TRIALS=200 cargo test --release -p amber-tests --test crash`.
//! `AMBER_CRASH_SEED` replays a run (the seed is printed).
//!
//! (A process kill keeps whatever reached the shared mapping; losing power
//! on real pmem is simulated, at every persist point, by the storage crate's
//! power-cut tests.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use amber_tests::reply::{parse, Reply};
use amber_tests::{RespClient, RestartableServer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Writer threads per trial.
const WRITERS: usize = 4;
/// String keys each writer owns; after them come its list and its hash.
const KEYS_PER_WRITER: usize = 400;
/// Model slot of a writer's list (`w{id}:list`).
const LIST: usize = KEYS_PER_WRITER;
/// Model slot of a writer's hash (`w{id}:hash`).
const HASH: usize = KEYS_PER_WRITER + 1;
/// Model slot of a writer's stream (`w{id}:stream`).
const STREAM: usize = KEYS_PER_WRITER + 2;
/// Model slots per writer.
const SLOTS: usize = KEYS_PER_WRITER + 3;

/// The key of model slot `k` of writer `id`.
fn key_name(id: usize, k: usize) -> String {
    match k {
        LIST => format!("w{id}:list"),
        HASH => format!("w{id}:hash"),
        STREAM => format!("w{id}:stream"),
        _ => format!("w{id}:k{k}"),
    }
}

/// A list or hash as the model keeps it: its elements (for a hash,
/// `field=value`, sorted) one per line; `None` when empty (the key is gone).
fn lines(v: &Option<Vec<u8>>) -> Vec<Vec<u8>> {
    v.as_deref()
        .map(|b| b.split(|c| *c == b'\n').map(<[u8]>::to_vec).collect())
        .unwrap_or_default()
}

fn unlines(items: &[Vec<u8>]) -> Option<Vec<u8>> {
    (!items.is_empty()).then(|| items.join(&b'\n'))
}

/// The next collection command of a writer: its arguments, the collection's
/// model afterwards, and for `LPOP` the element the reply must carry.
fn collection_op(
    rng: &mut StdRng,
    key: &str,
    list: bool,
    old: &Option<Vec<u8>>,
    tag: u64,
) -> (Vec<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>) {
    let mut items = lines(old);
    let key = key.as_bytes().to_vec();
    if list {
        // Bounded, so a soak of hundreds of trials does not grow the list
        // past what `dram-budget 0` can rewrite whole on every write.
        if rng.gen_ratio(1, 4) || items.len() >= 400 {
            let popped = (!items.is_empty()).then(|| items.remove(0));
            return (vec![b"LPOP".to_vec(), key], unlines(&items), popped);
        }
        let v = format!("e{tag}").into_bytes();
        items.push(v.clone());
        return (vec![b"RPUSH".to_vec(), key, v], unlines(&items), None);
    }
    let field = format!("f{}", rng.gen_range(0..400)).into_bytes();
    let mut prefix = field.clone();
    prefix.push(b'=');
    items.retain(|i| !i.starts_with(&prefix));
    if rng.gen_ratio(1, 5) {
        return (vec![b"HDEL".to_vec(), key, field], unlines(&items), None);
    }
    let v = format!("v{tag}").into_bytes();
    let mut line = prefix;
    line.extend_from_slice(&v);
    items.push(line);
    items.sort();
    (vec![b"HSET".to_vec(), key, field, v], unlines(&items), None)
}

/// The next stream command of a writer and the stream's model afterwards
/// (one line `ms value` per entry, oldest first): `XADD` with the ID after
/// the newest entry, `XDEL` of the oldest, an exact `XTRIM` once it is long.
/// Only old entries are ever removed, so the newest entry's ID is the
/// stream's last ID and the next `XADD` always fits.
fn stream_op(
    rng: &mut StdRng,
    key: &str,
    old: &Option<Vec<u8>>,
    tag: u64,
) -> (Vec<Vec<u8>>, Option<Vec<u8>>) {
    let mut items = lines(old);
    let key = key.as_bytes().to_vec();
    if items.len() >= 400 {
        let keep = items.split_off(items.len() - 300);
        return (
            vec![b"XTRIM".to_vec(), key, b"MAXLEN".to_vec(), b"300".to_vec()],
            unlines(&keep),
        );
    }
    if items.len() > 1 && rng.gen_ratio(1, 8) {
        let first = items.remove(0);
        let ms = first
            .split(|c| *c == b' ')
            .next()
            .unwrap_or_default()
            .to_vec();
        return (vec![b"XDEL".to_vec(), key, ms], unlines(&items));
    }
    let last: u64 = items
        .last()
        .and_then(|l| {
            std::str::from_utf8(l.split(|c| *c == b' ').next()?)
                .ok()?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let v = format!("s{tag}").into_bytes();
    let mut line = format!("{} ", last + 1).into_bytes();
    line.extend_from_slice(&v);
    items.push(line);
    let id = format!("{}-0", last + 1).into_bytes();
    (
        vec![b"XADD".to_vec(), key, id, b"f".to_vec(), v],
        unlines(&items),
    )
}

/// What a key may hold after a crash.
#[derive(Clone, Debug, Default)]
struct KeyModel {
    /// The value of the last acknowledged write (None: absent).
    acked: Option<Vec<u8>>,
    /// The outcome of the write in flight when the server died, if any.
    in_flight: Option<Option<Vec<u8>>>,
}

/// A value of random length and content; now and then a large one.
fn random_value(rng: &mut StdRng, tag: u64) -> Vec<u8> {
    let len = if rng.gen_ratio(1, 200) {
        rng.gen_range(100_000..400_000)
    } else {
        rng.gen_range(1..2_000)
    };
    let mut v = format!("{tag}:").into_bytes();
    v.extend((0..len).map(|_| rng.gen_range(b'a'..=b'z')));
    v
}

fn bulk(r: &Reply) -> Option<Vec<u8>> {
    r.data.clone()
}

/// One writer: random SET / DEL / APPEND / INCRBY on its own keys until the
/// server dies (or `stop`). Returns its model.
fn writer(
    port: u16,
    id: usize,
    seed: u64,
    mut model: Vec<KeyModel>,
    stop: Arc<AtomicBool>,
) -> Vec<KeyModel> {
    let mut rng = StdRng::seed_from_u64(seed);
    let Ok(mut c) = RespClient::connect(port) else {
        return model;
    };
    c.set_timeout(Duration::from_secs(30));
    let mut tag = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let k = match rng.gen_range(0..12) {
            0 | 1 => LIST,
            2 | 3 => HASH,
            10 | 11 => STREAM,
            _ => rng.gen_range(0..KEYS_PER_WRITER),
        };
        let key = key_name(id, k);
        let counter = k % 8 == 0;
        let old = model[k].acked.clone();
        tag += 1;
        let mut popped = None;
        let (args, new): (Vec<Vec<u8>>, Option<Vec<u8>>) = match rng.gen_range(0..10) {
            _ if k == STREAM => stream_op(&mut rng, &key, &old, tag),
            _ if k == LIST || k == HASH => {
                let (args, new, p) = collection_op(&mut rng, &key, k == LIST, &old, tag);
                popped = p;
                (args, new)
            }
            0 => (vec![b"DEL".to_vec(), key.clone().into_bytes()], None),
            _ if counter => {
                let by: i64 = rng.gen_range(-1000..1000);
                let cur: i64 = old
                    .as_deref()
                    .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
                    .unwrap_or(0);
                (
                    vec![
                        b"INCRBY".to_vec(),
                        key.clone().into_bytes(),
                        by.to_string().into_bytes(),
                    ],
                    Some((cur + by).to_string().into_bytes()),
                )
            }
            1 | 2 => {
                let suffix = random_value(&mut rng, tag);
                let suffix = suffix[..suffix.len().min(300)].to_vec();
                let mut v = old.clone().unwrap_or_default();
                v.extend_from_slice(&suffix);
                (
                    vec![b"APPEND".to_vec(), key.clone().into_bytes(), suffix],
                    Some(v),
                )
            }
            _ => {
                let v = random_value(&mut rng, tag);
                (
                    vec![b"SET".to_vec(), key.clone().into_bytes(), v.clone()],
                    Some(v),
                )
            }
        };
        model[k].in_flight = Some(new.clone());
        match c.try_cmd(&args) {
            Ok(reply) => {
                let Ok(Some((r, _))) = parse(&reply) else {
                    panic!("unparsable reply {reply:?}");
                };
                assert!(!r.is_error(), "{key}: error reply {}", r.text());
                if k == LIST && args[0] == b"LPOP" {
                    assert_eq!(r.data, popped, "{key}: LPOP popped the wrong element");
                }
                model[k].acked = new;
                model[k].in_flight = None;
            }
            Err(_) => break, // the server died with this command in flight
        }
    }
    model
}

/// Checks every key against its model; returns the model of what is there
/// now (all acknowledged).
fn verify(port: u16, models: &mut [Vec<KeyModel>], trial: usize) {
    let mut c = RespClient::connect(port).expect("connect after restart");
    c.set_timeout(Duration::from_secs(30));
    let mut checked = 0;
    for (id, keys) in models.iter_mut().enumerate() {
        for (k, m) in keys.iter_mut().enumerate() {
            let key = key_name(id, k);
            let args = match k {
                LIST => vec!["LRANGE", key.as_str(), "0", "-1"],
                HASH => vec!["HGETALL", key.as_str()],
                STREAM => vec!["XRANGE", key.as_str(), "-", "+"],
                _ => vec!["GET", key.as_str()],
            };
            let reply = c.cmd(&args);
            let Ok(Some((r, _))) = parse(&reply) else {
                panic!("unparsable reply {reply:?}");
            };
            assert!(!r.is_error(), "trial {trial}: {args:?}: {}", r.text());
            let got = match k {
                LIST => unlines(&r.items.iter().filter_map(bulk).collect::<Vec<_>>()),
                // Entries `[ms-0, [f, value]]` as the model's `ms value` lines.
                STREAM => {
                    let entries: Vec<Vec<u8>> = r
                        .items
                        .iter()
                        .map(|e| {
                            let id = e.items.first().and_then(bulk).unwrap_or_default();
                            let mut line = id.strip_suffix(b"-0").unwrap_or(&id).to_vec();
                            line.push(b' ');
                            let fv = e
                                .items
                                .get(1)
                                .map(|f| f.items.as_slice())
                                .unwrap_or_default();
                            line.extend(fv.get(1).and_then(bulk).unwrap_or_default());
                            line
                        })
                        .collect();
                    unlines(&entries)
                }
                HASH => {
                    let mut pairs: Vec<Vec<u8>> = r
                        .items
                        .chunks(2)
                        .map(|p| {
                            let mut line = p[0].data.clone().unwrap_or_default();
                            line.push(b'=');
                            line.extend(p.get(1).and_then(bulk).unwrap_or_default());
                            line
                        })
                        .collect();
                    pairs.sort();
                    unlines(&pairs)
                }
                _ => bulk(&r),
            };
            let ok = got == m.acked || m.in_flight.as_ref().is_some_and(|f| *f == got);
            assert!(
                ok,
                "trial {trial}: {key} lost an acknowledged write: has {:?}, expected {:?} (or in-flight {:?})",
                got.as_ref().map(|v| String::from_utf8_lossy(&v[..v.len().min(40)]).into_owned()),
                m.acked.as_ref().map(|v| String::from_utf8_lossy(&v[..v.len().min(40)]).into_owned()),
                m.in_flight.as_ref().map(|f| f.as_ref().map(|v| String::from_utf8_lossy(&v[..v.len().min(40)]).into_owned())),
            );
            *m = KeyModel {
                acked: got,
                in_flight: None,
            };
            checked += 1;
        }
    }
    // Nothing else appeared.
    let size = parse(&c.cmd(&["DBSIZE"]))
        .ok()
        .flatten()
        .and_then(|(r, _)| r.integer())
        .expect("DBSIZE");
    let expected = models
        .iter()
        .flatten()
        .filter(|m| m.acked.is_some())
        .count();
    assert_eq!(
        size as usize, expected,
        "trial {trial}: DBSIZE after recovery"
    );
    assert_eq!(checked, WRITERS * SLOTS);
}

/// `arena_delta_writes` from `INFO tiering` (0 if the server is gone).
fn delta_writes(port: u16) -> u64 {
    let Ok(mut c) = RespClient::connect(port) else {
        return 0;
    };
    let Ok(reply) = c.try_cmd(&["INFO", "tiering"]) else {
        return 0;
    };
    let text = String::from_utf8_lossy(&reply).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("arena_delta_writes:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Runs the trials; `deltas`: whether collection writes must have been
/// written as delta records (there is a hot tier).
fn run_trials(label: &str, extra: &[&str], default_trials: usize, deltas: bool) {
    let trials: usize = std::env::var("AMBER_CRASH_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_trials);
    let seed: u64 = std::env::var("AMBER_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    eprintln!("crash trials [{label}]: {trials} trials, AMBER_CRASH_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let tmp = tempfile::Builder::new()
        .prefix("amber-crash-")
        .tempdir()
        .expect("tempdir");
    let mut args = vec!["--pmem-size", "128mb", "--persistence", "pmem"];
    args.extend_from_slice(extra);
    let mut server = RestartableServer::new(tmp.path(), &args);
    let mut models: Vec<Vec<KeyModel>> = vec![vec![KeyModel::default(); SLOTS]; WRITERS];
    let mut acked_total = 0usize;
    let mut delta_total = 0u64;
    for trial in 0..trials {
        server.start();
        if trial > 0 {
            verify(server.port, &mut models, trial);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = models
            .drain(..)
            .enumerate()
            .map(|(id, m)| {
                let (port, stop, s) = (server.port, stop.clone(), rng.gen());
                std::thread::spawn(move || writer(port, id, s, m, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.gen_range(150..900)));
        delta_total += delta_writes(server.port);
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        models = handles
            .into_iter()
            .map(|h| h.join().expect("writer thread"))
            .collect();
        acked_total += models
            .iter()
            .flatten()
            .filter(|m| m.acked.is_some())
            .count();
    }
    // The last crash, checked too.
    server.start();
    verify(server.port, &mut models, trials);
    let log = server.log();
    assert!(
        log.contains("unclean"),
        "the server log does not report an unclean shutdown after SIGKILL:\n{log}"
    );
    eprintln!(
        "crash trials [{label}]: ok ({acked_total} live keys checked over {trials} trials, \
         {delta_total} delta records written)"
    );
    if deltas {
        assert!(delta_total > 0, "no collection write became a delta record");
    } else {
        assert_eq!(delta_total, 0, "delta records without a hot tier");
    }
}

#[test]
fn kill9_loses_no_acknowledged_write_everysec() {
    run_trials(
        "everysec, 256kb budget",
        &["--arena-sync", "everysec", "--dram-budget", "256kb"],
        4,
        true,
    );
}

#[test]
fn kill9_loses_no_acknowledged_write_always_no_hot_tier() {
    run_trials(
        "always, no hot tier",
        &["--arena-sync", "always", "--dram-budget", "0"],
        3,
        false,
    );
}
