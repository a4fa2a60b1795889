//! Finding (and if needed building) the `amber-server` binary under test.
//!
//! Order: `AMBER_SERVER_BIN`; else `<target>/debug/amber-server`, where
//! `<target>` is `CARGO_TARGET_DIR` or the workspace's `target/`. When that
//! binary is missing or older than the server's sources, it is built once
//! with `cargo build -p amber-server --bin amber-server`: once per process
//! (a `OnceLock`) and once at a time across processes (an `flock` on a file
//! in the target directory; Cargo's own lock also serializes builds).
//! `cargo test --workspace` already builds the binary (amber-server has
//! integration tests), so the build step only runs for `-p amber-tests`.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                workspace_root().join(d)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// Newest modification time of the inputs of the server binary.
fn newest_source(root: &Path) -> Option<SystemTime> {
    let mut newest = None;
    let mut stack = vec![
        root.join("server/src"),
        root.join("storage/src"),
        root.join("server/Cargo.toml"),
        root.join("storage/Cargo.toml"),
        root.join("Cargo.lock"),
    ];
    // Bounded walk: the source trees are small.
    let mut budget = 10_000;
    while let Some(p) = stack.pop() {
        budget -= 1;
        if budget == 0 {
            break;
        }
        let Ok(meta) = fs::metadata(&p) else { continue };
        if meta.is_dir() {
            if let Ok(rd) = fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        } else if let Ok(m) = meta.modified() {
            newest = Some(newest.map_or(m, |n: SystemTime| n.max(m)));
        }
    }
    newest
}

fn is_stale(bin: &Path) -> bool {
    let Ok(built) = fs::metadata(bin).and_then(|m| m.modified()) else {
        return true;
    };
    newest_source(&workspace_root()).is_some_and(|src| src > built)
}

fn cargo() -> PathBuf {
    if let Some(c) = std::env::var_os("CARGO") {
        return PathBuf::from(c);
    }
    if let Some(home) = std::env::var_os("HOME") {
        let c = PathBuf::from(home).join(".cargo/bin/cargo");
        if c.exists() {
            return c;
        }
    }
    PathBuf::from("cargo")
}

/// Takes an exclusive `flock` on `file` until the returned handle drops.
fn lock_file(path: &Path) -> Option<File> {
    use std::os::fd::AsRawFd;
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .ok()?;
    // SAFETY: flock on a valid descriptor we own; blocks until granted.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    (rc == 0).then_some(f)
}

fn build(bin: &Path) -> Result<(), String> {
    let target = target_dir();
    let _ = fs::create_dir_all(&target);
    let _lock = lock_file(&target.join(".amber-tests-build.lock"));
    // Another process may have built it while we waited.
    if !is_stale(bin) {
        return Ok(());
    }
    eprintln!(
        "amber-tests: building {} (missing or older than the sources)",
        bin.display()
    );
    let status = Command::new(cargo())
        .args(["build", "-p", "amber-server", "--bin", "amber-server"])
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build -p amber-server failed: {status}"));
    }
    Ok(())
}

/// The path of the `amber-server` binary, built if missing or stale.
pub fn amber_server_bin() -> PathBuf {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("AMBER_SERVER_BIN") {
            let p = PathBuf::from(p);
            return if p.exists() {
                Ok(p)
            } else {
                Err(format!("AMBER_SERVER_BIN={} does not exist", p.display()))
            };
        }
        let bin = target_dir().join("debug/amber-server");
        if is_stale(&bin) {
            build(&bin)?;
        }
        Ok(bin)
    })
    .clone()
    .unwrap_or_else(|e| panic!("{e}"))
}
