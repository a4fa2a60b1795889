//! Helpers shared by the harness tests.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The amber-bench binary built for these tests.
pub fn bench_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_amber-bench"))
}

/// The Amber server to test with: `$AMBER_BIN`, else the workspace's
/// `target/{release,debug}/amber-server`, built with `cargo build -p
/// amber-server` if missing. If it still cannot be had, redis-server stands
/// in (the harness is under test here, not the server).
pub fn amber_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("AMBER_BIN") {
        return PathBuf::from(p);
    }
    let p = amber_bench::default_amber_bin();
    if p.is_file() {
        return p;
    }
    let built = Command::new(env!("CARGO"))
        .args(["build", "-p", "amber-server"])
        .current_dir(amber_bench::workspace_root())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let p = amber_bench::default_amber_bin();
    if built && p.is_file() {
        return p;
    }
    eprintln!(
        "amber-server could not be built: testing the harness with redis-server as a stand-in"
    );
    redis_bin()
}

/// redis-server, which these tests need.
pub fn redis_bin() -> PathBuf {
    amber_bench::drivers::find_executable("redis-server")
        .expect("redis-server must be installed (Debian: redis-server)")
}

/// Runs amber-bench with `args`; returns (success, stdout, stderr).
pub fn run_bench(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bench_bin())
        .args(args)
        .output()
        .expect("amber-bench runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
