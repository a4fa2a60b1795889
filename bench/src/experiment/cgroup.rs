//! Memory cgroups for the server under test: cgroup v2 where its memory
//! controller is usable, else v1 (`memory.limit_in_bytes`,
//! `memory.memsw.limit_in_bytes`). Only directories this bench makes are
//! touched, and they are registered for cleanup.

use std::path::{Path, PathBuf};

use crate::cleanup;

/// Which cgroup interface is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// The unified hierarchy.
    V2,
    /// The legacy memory controller hierarchy.
    V1,
}

/// Where this bench can create memory cgroups.
#[derive(Debug, Clone)]
pub struct CgroupParent {
    /// Interface version.
    pub version: Version,
    /// Directory under which children are created.
    pub dir: PathBuf,
    /// v1: whether swap accounting (`memory.memsw.*`) exists.
    pub memsw: bool,
}

/// A memory cgroup this bench created.
#[derive(Debug)]
pub struct MemCgroup {
    /// Its directory.
    pub dir: PathBuf,
    version: Version,
    token: cleanup::Token,
}

struct Mount {
    fstype: String,
    dir: PathBuf,
    options: String,
}

fn mounts() -> Vec<Mount> {
    let text = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(Mount {
                dir: PathBuf::from(f.get(1)?),
                fstype: (*f.get(2)?).to_string(),
                options: (*f.get(3)?).to_string(),
            })
        })
        .collect()
}

/// Our own cgroup path in a hierarchy (`0::/x` for v2, `N:memory:/x` for v1).
fn own_path(v2: bool) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (id, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = if v2 {
            id == "0" && ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| c == "memory")
        };
        hit.then(|| path.trim_start_matches('/').to_string())
    })
}

fn can_create_under(dir: &Path) -> Result<(), String> {
    let probe = dir.join(format!("amber-bench-probe-{}", std::process::id()));
    std::fs::create_dir(&probe).map_err(|e| format!("cannot create {}: {e}", probe.display()))?;
    let _ = std::fs::remove_dir(&probe);
    Ok(())
}

/// Finds a place to make memory cgroups, or says why there is none.
pub fn detect() -> Result<CgroupParent, String> {
    let ms = mounts();
    let mut reasons = Vec::new();
    // v2: the memory controller must be listed, and enabled (or enable-able)
    // for children of the directory we use.
    if let Some(m) = ms.iter().find(|m| m.fstype == "cgroup2") {
        let ctrls = std::fs::read_to_string(m.dir.join("cgroup.controllers")).unwrap_or_default();
        if ctrls.split_whitespace().any(|c| c == "memory") {
            let mut candidates = Vec::new();
            if let Some(own) = own_path(true).filter(|p| !p.is_empty()) {
                candidates.push(m.dir.join(own));
            }
            candidates.push(m.dir.clone());
            for dir in candidates {
                let sub = dir.join("cgroup.subtree_control");
                let enabled = std::fs::read_to_string(&sub)
                    .unwrap_or_default()
                    .split_whitespace()
                    .any(|c| c == "memory")
                    || std::fs::write(&sub, "+memory").is_ok();
                if enabled && can_create_under(&dir).is_ok() {
                    return Ok(CgroupParent {
                        version: Version::V2,
                        dir,
                        memsw: true,
                    });
                }
            }
            reasons.push(format!(
                "cgroup v2 at {} has a memory controller but it cannot be enabled for a child we can create",
                m.dir.display()
            ));
        } else {
            reasons.push(format!(
                "cgroup v2 at {} has no memory controller (it is on v1 here)",
                m.dir.display()
            ));
        }
    }
    if let Some(m) = ms
        .iter()
        .find(|m| m.fstype == "cgroup" && m.options.split(',').any(|o| o == "memory"))
    {
        let dir = match own_path(false) {
            Some(own) if !own.is_empty() && m.dir.join(&own).is_dir() => m.dir.join(own),
            _ => m.dir.clone(),
        };
        match can_create_under(&dir) {
            Ok(()) => {
                return Ok(CgroupParent {
                    version: Version::V1,
                    memsw: dir.join("memory.memsw.limit_in_bytes").exists(),
                    dir,
                })
            }
            Err(e) => reasons.push(format!("cgroup v1 memory: {e}")),
        }
    } else {
        reasons.push("no cgroup v1 memory hierarchy mounted".into());
    }
    Err(reasons.join("; "))
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("write {value} to {}: {e}", path.display()))
}

impl MemCgroup {
    /// Creates `name` under `parent` with a memory limit of `limit` bytes and
    /// `swap` bytes of swap allowed (0: none at all).
    pub fn create(
        parent: &CgroupParent,
        name: &str,
        limit: u64,
        swap: u64,
    ) -> Result<Self, String> {
        let dir = parent
            .dir
            .join(format!("amber-bench-{}-{name}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let token = cleanup::add_cgroup(&dir);
        let cg = MemCgroup {
            dir,
            version: parent.version,
            token,
        };
        let set = || -> Result<(), String> {
            match parent.version {
                Version::V2 => {
                    write(&cg.dir.join("memory.max"), &limit.to_string())?;
                    let swap_file = cg.dir.join("memory.swap.max");
                    if swap_file.exists() {
                        write(&swap_file, &swap.to_string())?;
                    } else if swap > 0 {
                        return Err("cgroup v2 without memory.swap.max: no swap accounting".into());
                    }
                }
                Version::V1 => {
                    write(&cg.dir.join("memory.limit_in_bytes"), &limit.to_string())?;
                    if parent.memsw {
                        write(
                            &cg.dir.join("memory.memsw.limit_in_bytes"),
                            &(limit + swap).to_string(),
                        )?;
                    } else if swap > 0 {
                        return Err("cgroup v1 without memory.memsw (swapaccount=0)".into());
                    }
                    let swappiness = if swap == 0 { "0" } else { "100" };
                    let _ = write(&cg.dir.join("memory.swappiness"), swappiness);
                }
            }
            Ok(())
        };
        match set() {
            Ok(()) => Ok(cg),
            Err(e) => {
                cg.remove();
                Err(e)
            }
        }
    }

    /// The file a process writes its pid into to join.
    pub fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// OOM kills inside this cgroup so far.
    pub fn oom_kills(&self) -> u64 {
        let file = match self.version {
            Version::V2 => "memory.events",
            Version::V1 => "memory.oom_control",
        };
        std::fs::read_to_string(self.dir.join(file))
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
            .unwrap_or(0)
    }

    /// Peak memory use recorded by the kernel, if it tells.
    pub fn peak_bytes(&self) -> Option<u64> {
        let file = match self.version {
            Version::V2 => "memory.peak",
            Version::V1 => "memory.max_usage_in_bytes",
        };
        std::fs::read_to_string(self.dir.join(file))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// Removes the cgroup (its processes must be gone).
    pub fn remove(self) {
        cleanup::release(self.token);
    }
}
