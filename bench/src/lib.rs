//! amber-bench: the load generator, the out-of-DRAM experiment, and the
//! side-by-side comparisons of Amber with redis-server.
//!
//! Layout: `load/` is the generator (RESP encoding, key distributions,
//! pipelined connections, stats); `drivers/` runs and parses the standard
//! tools; `experiment/` is the out-of-DRAM experiment (configurations,
//! cgroups, swap, server processes, report, chart); `compare` and
//! `calibrate` are the side-by-side runs; `cleanup` undoes everything the
//! bench created, also on Ctrl-C.

#![warn(missing_docs)]
#![deny(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod calibrate;
pub mod cleanup;
pub mod cli;
pub mod compare;
pub mod drivers;
pub mod experiment;
pub mod load;
pub mod procfs;
pub mod units;

use std::path::{Path, PathBuf};

/// The workspace root (the folder holding `bench/`), as built.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where Amber's binary is by default: `target/release/amber-server` of the
/// workspace, else `target/debug/amber-server`, else next to this executable.
/// Returns the release path when none exists (the caller reports it missing).
pub fn default_amber_bin() -> PathBuf {
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let mut candidates = vec![
        target.join("release").join("amber-server"),
        target.join("debug").join("amber-server"),
    ];
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        candidates.push(dir.join("amber-server"));
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| target.join("release").join("amber-server"))
}

/// Resolves a binary given by name through `PATH` (paths are kept as they are).
pub fn resolve_bin(p: &Path) -> PathBuf {
    p.to_str()
        .and_then(drivers::find_executable)
        .unwrap_or_else(|| p.to_path_buf())
}
