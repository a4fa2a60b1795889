//! The arena's mapping asks for 2 MiB pages (`MADV_HUGEPAGE`), so a file
//! system that grants them on request (a tmpfs mounted `huge=advise`, the
//! pmem stand-in bench/README.md describes) maps the arena with them, also
//! after its space was reserved (`Medium::reserve`).
//!
//! Needs root to mount its own tmpfs; elsewhere it says so and does nothing.

use std::path::Path;
use std::process::Command;

use amber_storage::persist::{MappedFile, Medium};

/// A tmpfs mounted on a temporary directory, unmounted however the test
/// ends.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    /// Mounts a tmpfs with `options`; `None` (after saying so) where this
    /// process may not mount.
    fn mount(options: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "none"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        }
        mounted.then_some(Tmpfs(dir))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// `ShmemPmdMapped` of this process, in kB.
fn shmem_pmd_mapped_kb() -> u64 {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    rollup
        .lines()
        .find(|l| l.starts_with("ShmemPmdMapped:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn arena_mapping_gets_huge_pages_where_the_file_system_grants_them() {
    if !Path::new("/sys/kernel/mm/transparent_hugepage").exists() {
        eprintln!("skipped: this kernel has no transparent huge pages");
        return;
    }
    let Some(dir) = Tmpfs::mount("huge=advise,size=64m") else {
        return;
    };
    const SIZE: u64 = 16 << 20;
    let before = shmem_pmd_mapped_kb();
    let arena = MappedFile::open(&dir.path().join("arena"), SIZE, true).expect("map the arena");
    // Space is reserved as the arena does before a segment's first append:
    // the reservation must not cost the mapping its huge pages (`fallocate`
    // would hand the file 4 KiB pages).
    arena.reserve(0, SIZE).expect("reserve");
    for offset in (0..SIZE).step_by(4096) {
        arena.write(offset, &[1]).expect("write");
    }
    let after = shmem_pmd_mapped_kb();
    assert!(
        after >= before + 2048,
        "no 2 MiB page mapped for a 16 MiB arena on a huge=advise tmpfs \
         (ShmemPmdMapped {before} kB before, {after} kB after)"
    );
    drop(arena);
}

/// Bytes in use on the file system holding `path`.
fn used_bytes(path: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path");
    // SAFETY: statvfs fills the zeroed struct we own from a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0, "statvfs");
    (st.f_blocks - st.f_bfree) * st.f_frsize
}

#[test]
fn an_arena_on_a_huge_page_tmpfs_takes_memory_only_for_segments_it_uses() {
    use amber_storage::arena::ArenaConfig;
    use amber_storage::{Arena, RecordIn};
    let Some(dir) = Tmpfs::mount("huge=advise,size=1g") else {
        return;
    };
    // 128 segments of 4 MiB. Opening used to load every segment header
    // through the mapping, which on this mount allocated a 2 MiB page per
    // segment: 256 MiB for an empty arena.
    let config = ArenaConfig::new(&dir.path().join("amber.arena"), 512 << 20);
    // The superblock page, the segment written and the two the arena keeps
    // reserved ahead of its lanes.
    let limit = 24 << 20;
    for round in 0..2 {
        let arena = Arena::open(&config).expect("open");
        let seen = std::sync::atomic::AtomicUsize::new(0);
        arena
            .recover(|r| {
                assert_eq!(r.key, b"k");
                seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            })
            .expect("recover");
        assert_eq!(
            seen.into_inner(),
            round,
            "records recovered in round {round}"
        );
        if round == 0 {
            arena
                .append(
                    0,
                    RecordIn {
                        db: 0,
                        kind: 2,
                        key: b"k",
                        value: &[b"v"],
                        expire_at: 0,
                    },
                )
                .expect("append");
        }
        let used = used_bytes(dir.path());
        assert!(
            used <= limit,
            "round {round}: a 512 MiB arena holding one record takes {} MiB of the tmpfs",
            used >> 20
        );
        drop(arena);
    }
}
