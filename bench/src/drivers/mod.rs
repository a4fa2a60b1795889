//! Drivers for the standard tools (`redis-benchmark`, `memtier_benchmark`):
//! build their command lines, run them with a time limit, parse their output.

pub mod memtier;
pub mod redis_benchmark;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cleanup;

/// Finds an executable by name in `PATH` (or returns the path if it has a slash and exists).
pub fn find_executable(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Runs `bin args` with stdout and stderr captured in files, for at most
/// `timeout`; returns stdout, or an error with the tail of stderr.
pub fn run_captured(bin: &Path, args: &[String], timeout: Duration) -> Result<String, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let out = std::fs::File::create(&out_path).map_err(|e| format!("{e}"))?;
    let err = std::fs::File::create(&err_path).map_err(|e| format!("{e}"))?;
    let child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let token = cleanup::add_process(child);
    let deadline = Instant::now() + timeout;
    let status = loop {
        let polled = cleanup::with_process(token, |c| c.try_wait());
        match polled {
            Some(Ok(Some(st))) => break Some(st),
            Some(Ok(None)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            _ => break None,
        }
    };
    cleanup::release(token);
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    match status {
        Some(st) if st.success() => Ok(stdout),
        Some(st) => Err(format!(
            "{} exited with {st}: {}",
            bin.display(),
            tail(&stderr, 400)
        )),
        None => Err(format!(
            "{} did not finish within {timeout:?} and was killed",
            bin.display()
        )),
    }
}

/// The last `n` bytes of `s` (on a char boundary), trimmed.
pub fn tail(s: &str, n: usize) -> String {
    let start = s.len().saturating_sub(n);
    let start = (start..=s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    s.get(start..).unwrap_or("").trim().to_string()
}
