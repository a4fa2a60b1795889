//! Everything the bench creates outside its own memory (server processes,
//! cgroups, swap files, arena files) is registered here, so it is removed on
//! a normal exit, on an error and on Ctrl-C / SIGTERM alike.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One thing to undo.
enum Resource {
    /// A child process we started (killed by its handle, never by name).
    Process(Child),
    /// A cgroup directory we made (removed once empty).
    Cgroup(PathBuf),
    /// A swap file we enabled (`swapoff`, then deleted).
    Swap(PathBuf),
    /// A file we created (deleted).
    File(PathBuf),
    /// A directory we created (deleted with its contents).
    Dir(PathBuf),
}

/// Handle to a registered resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Token(u64);

static NEXT: AtomicU64 = AtomicU64::new(1);
/// Set once an interrupt started the final cleanup: anything registered
/// after that is undone at once (the main thread may still be starting a
/// server while the signal thread cleans up).
static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);
static REGISTRY: Mutex<BTreeMap<u64, Resource>> = Mutex::new(BTreeMap::new());

fn registry() -> MutexGuard<'static, BTreeMap<u64, Resource>> {
    // A panic while holding the lock must not stop the cleanup.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

fn add(r: Resource) -> Token {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut reg = registry();
    if SHUTTING_DOWN.load(Ordering::SeqCst) {
        drop(reg);
        undo(r);
    } else {
        reg.insert(id, r);
    }
    Token(id)
}

/// Registers a child process; the registry owns it from now on.
pub fn add_process(child: Child) -> Token {
    add(Resource::Process(child))
}

/// Registers a cgroup directory.
pub fn add_cgroup(dir: &Path) -> Token {
    add(Resource::Cgroup(dir.to_path_buf()))
}

/// Registers an enabled swap file.
pub fn add_swap(path: &Path) -> Token {
    add(Resource::Swap(path.to_path_buf()))
}

/// Registers a file to delete.
pub fn add_file(path: &Path) -> Token {
    add(Resource::File(path.to_path_buf()))
}

/// Registers a directory to delete with its contents.
pub fn add_dir(path: &Path) -> Token {
    add(Resource::Dir(path.to_path_buf()))
}

/// Runs `f` on a registered child process, if it is still registered.
pub fn with_process<R>(token: Token, f: impl FnOnce(&mut Child) -> R) -> Option<R> {
    match registry().get_mut(&token.0) {
        Some(Resource::Process(c)) => Some(f(c)),
        _ => None,
    }
}

/// Undoes one resource now (kill + reap, rmdir, swapoff, delete) and forgets it.
pub fn release(token: Token) {
    let r = registry().remove(&token.0);
    if let Some(r) = r {
        undo(r);
    }
}

/// Forgets a resource without undoing it (its owner now registers it differently).
pub fn release_without_undo(token: Token) {
    registry().remove(&token.0);
}

/// Undoes everything still registered, newest first (processes before their
/// cgroups, swap after the processes that used it).
pub fn release_all() {
    let all: Vec<Resource> = {
        let mut reg = registry();
        let items = std::mem::take(&mut *reg);
        items.into_values().rev().collect()
    };
    // Processes first, whatever their order, so cgroups are empty.
    let (procs, rest): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|r| matches!(r, Resource::Process(_)));
    for r in procs.into_iter().chain(rest) {
        undo(r);
    }
}

fn undo(r: Resource) {
    match r {
        Resource::Process(mut c) => {
            let _ = c.kill();
            let _ = c.wait();
        }
        Resource::Cgroup(dir) => remove_cgroup_dir(&dir),
        Resource::Swap(path) => {
            let _ = std::process::Command::new("swapoff")
                .arg(&path)
                .stderr(std::process::Stdio::null())
                .status();
            let _ = std::fs::remove_file(&path);
        }
        Resource::File(path) => {
            let _ = std::fs::remove_file(&path);
        }
        Resource::Dir(path) => {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// rmdir a cgroup; retried for up to two seconds while the kernel reaps its tasks.
fn remove_cgroup_dir(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while std::fs::remove_dir(dir).is_err() && dir.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts a thread that waits for SIGINT or SIGTERM, releases everything and
/// exits with 130. Runs on its own small runtime, so it works even while the
/// main runtime's threads are busy.
pub fn install_signal_handler() {
    let spawned = std::thread::Builder::new()
        .name("amber-bench-signals".into())
        .spawn(|| {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let Ok(mut term) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                else {
                    return;
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                eprintln!("\namber-bench: interrupted, cleaning up servers, cgroups, swap files");
                SHUTTING_DOWN.store(true, Ordering::SeqCst);
                release_all();
                std::process::exit(130);
            });
        });
    if let Err(e) = spawned {
        eprintln!("amber-bench: cannot watch for Ctrl-C ({e}); cleanup only on normal exit");
    }
}

/// Releases everything when dropped: put one in `main` so an early return or
/// a panic still cleans up.
pub struct ReleaseOnDrop;

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        release_all();
    }
}
