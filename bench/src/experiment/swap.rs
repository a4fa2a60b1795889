//! A swap file for the `redis-swap` configuration: made, enabled, and
//! registered for `swapoff` and deletion.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cleanup;

/// An enabled swap file.
#[derive(Debug)]
pub struct SwapFile {
    /// Its path.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    token: cleanup::Token,
}

fn run(cmd: &str, args: &[&std::ffi::OsStr]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl SwapFile {
    /// Writes a zero-filled file of `bytes` in `dir` (swap files may not have
    /// holes), `mkswap`s and `swapon`s it. Fails, with the reason, where the
    /// machine does not allow swap (no CAP_SYS_ADMIN, tmpfs, container).
    pub fn enable(dir: &Path, bytes: u64) -> Result<Self, String> {
        let path = dir.join(format!("amber-bench-{}.swap", std::process::id()));
        let token = cleanup::add_file(&path);
        let make = || -> Result<(), String> {
            let mut f = std::fs::File::create(&path)
                .map_err(|e| format!("create {}: {e}", path.display()))?;
            let chunk = vec![0u8; 1 << 20];
            let mut left = bytes;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                f.write_all(chunk.get(..n).unwrap_or(&[]))
                    .map_err(|e| format!("write {}: {e}", path.display()))?;
                left -= n as u64;
            }
            f.sync_all().map_err(|e| format!("sync swap file: {e}"))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| format!("chmod swap file: {e}"))?;
            run("mkswap", &[path.as_os_str()])?;
            run("swapon", &[path.as_os_str()])
        };
        if let Err(e) = make() {
            cleanup::release(token);
            return Err(e);
        }
        // From now on cleanup must swapoff before deleting.
        cleanup::release_without_undo(token);
        let token = cleanup::add_swap(&path);
        Ok(SwapFile { path, bytes, token })
    }

    /// `swapoff` and delete.
    pub fn disable(self) {
        cleanup::release(self.token);
    }
}
