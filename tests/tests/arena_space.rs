//! The file system under the arena runs out of space: writes get Redis's
//! `-OOM` (never a crash: a store into an unbacked page of a shared mapping
//! is a SIGBUS), every acknowledged write survives a `kill -9`, and once
//! space is freed beside the arena, writes succeed again.
//!
//! The arena (256 MiB) sits on a 96 MiB tmpfs the test mounts, next to a
//! 32 MiB ballast file. Needs root to mount; elsewhere it says so and does
//! nothing (CI runs as root).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use amber_tests::client::RespClient;
use amber_tests::process::ServerProcess;

const OOM: &[u8] = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n";
const VALUE_LEN: usize = 1000;

/// A tmpfs mounted on a temporary directory, unmounted however the test ends.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("temp dir");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "none"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn value_of(i: usize) -> Vec<u8> {
    let mut v = format!("v{i}:").into_bytes();
    v.resize(VALUE_LEN, b'a' + (i % 26) as u8);
    v
}

fn start(arena: &Path, budget: &str) -> ServerProcess {
    let arena = arena.display().to_string();
    ServerProcess::amber(&[
        "--pmem-path",
        &arena,
        "--pmem-size",
        "256mb",
        "--persistence",
        "pmem",
        "--dram-budget",
        budget,
    ])
}

/// SETs `k0, k1, ...` in pipelined batches until `stop_after` `-OOM`
/// replies; returns the keys acknowledged with `+OK`. Any other reply fails.
fn fill(c: &mut RespClient, stop_after: usize) -> Vec<usize> {
    let mut acked = Vec::new();
    let mut refused = 0;
    let mut next = 0;
    while refused < stop_after {
        assert!(next < 200_000, "no -OOM after {next} writes of 1 KB");
        let batch: Vec<usize> = (next..next + 64).collect();
        next += 64;
        for &i in &batch {
            c.send(&[b"SET".as_slice(), format!("k{i}").as_bytes(), &value_of(i)])
                .expect("send");
        }
        for &i in &batch {
            let r = c.read_reply().expect("reply");
            if r == b"+OK\r\n" {
                acked.push(i);
            } else {
                assert_eq!(r, OOM, "SET k{i}: {}", String::from_utf8_lossy(&r));
                refused += 1;
            }
        }
    }
    acked
}

/// Every acknowledged key holds its value.
fn check_all(c: &mut RespClient, acked: &[usize], when: &str) {
    for chunk in acked.chunks(64) {
        for &i in chunk {
            c.send(&["GET", &format!("k{i}")]).expect("send");
        }
        for &i in chunk {
            let r = c.read_reply().expect("reply");
            let v = value_of(i);
            let want = [
                format!("${}\r\n", v.len()).into_bytes(),
                v,
                b"\r\n".to_vec(),
            ]
            .concat();
            assert!(r == want, "{when}: acknowledged key k{i} lost or wrong");
        }
    }
}

/// `arena_bytes_unbacked` from `INFO tiering`.
fn unbacked_bytes(c: &mut RespClient) -> u64 {
    let info = String::from_utf8_lossy(&c.cmd(&["INFO", "tiering"])).into_owned();
    info.lines()
        .find_map(|l| l.strip_prefix("arena_bytes_unbacked:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no arena_bytes_unbacked in INFO:\n{info}"))
}

fn run(budget: &str) {
    let Some(fs) = Tmpfs::mount("96m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let ballast: PathBuf = fs.path().join("ballast");
    std::fs::write(&ballast, vec![1u8; 32 << 20]).expect("ballast");
    let arena = fs.path().join("amber.arena");

    let mut server = start(&arena, budget);
    let mut c = server.client();
    let acked = fill(&mut c, 200);
    // The arena took what the file system had: ~60 MiB of 1 KB values.
    assert!(
        acked.len() > 20_000,
        "budget {budget}: only {} writes before -OOM",
        acked.len()
    );
    assert!(server.is_running(), "budget {budget}: the server died");
    assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
    let unbacked = unbacked_bytes(&mut c);
    assert!(
        unbacked >= 64 << 20,
        "budget {budget}: INFO says {unbacked} bytes of the 256 MiB arena cannot be backed"
    );
    check_all(&mut c, &acked, "before the crash");

    // kill -9, then the same arena again.
    drop(c);
    drop(server);
    let server = start(&arena, budget);
    let mut c = server.client();
    check_all(&mut c, &acked, "after kill -9 and restart");
    let r = c.cmd(&[b"SET".as_slice(), b"again", &value_of(1)]);
    assert_eq!(r, OOM, "budget {budget}: the file system is still full");

    // Space freed beside the arena: within a few seconds writes work again
    // and the arena backs its segments again. (A first +OK can come from
    // the one segment the reserver thread backs before the periodic retry
    // has given every lane its own; and the retry backs segments a few at a
    // time, while every writer lane needs one of its own beyond the
    // compaction reserve. So wait until the unbacked bytes have dropped by
    // at least 16 MiB and then stayed put for longer than a retry period.)
    let unbacked = unbacked_bytes(&mut c);
    std::fs::remove_file(&ballast).expect("remove ballast");
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut seen, mut since) = (unbacked, Instant::now());
    loop {
        let r = c.cmd(&[b"SET".as_slice(), b"again", &value_of(1)]);
        let now = unbacked_bytes(&mut c);
        if now != seen {
            (seen, since) = (now, Instant::now());
        }
        if r == b"+OK\r\n"
            && now + (16 << 20) <= unbacked
            && since.elapsed() > Duration::from_millis(1500)
        {
            break;
        }
        assert!(
            r == b"+OK\r\n" || r == OOM,
            "{}",
            String::from_utf8_lossy(&r)
        );
        assert!(
            Instant::now() < deadline,
            "budget {budget}: still -OOM or unbacked 15 s after 32 MiB were freed: {}, {} bytes unbacked",
            String::from_utf8_lossy(&r),
            unbacked_bytes(&mut c)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let more = fill(&mut c, 1);
    assert!(
        more.len() > 1000,
        "budget {budget}: only {} more writes after 32 MiB were freed",
        more.len()
    );
}

#[test]
fn full_file_system_under_the_arena_with_every_value_in_the_arena() {
    run("0");
}

#[test]
fn full_file_system_under_the_arena_with_a_hot_tier() {
    run("8mb");
}
