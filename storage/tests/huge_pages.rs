//! The arena's mapping asks for 2 MiB pages (`MADV_HUGEPAGE`), so a file
//! system that grants them on request (a tmpfs mounted `huge=advise`, the
//! pmem stand-in bench/README.md describes) maps the arena with them, also
//! after its space was reserved (`Medium::reserve`).
//!
//! Needs root to mount its own tmpfs; elsewhere it says so and does nothing.

use std::path::Path;
use std::process::Command;

use amber_storage::persist::{MappedFile, Medium};

/// Unmounts the test's tmpfs however the test ends.
struct Mounted<'a>(&'a Path);

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0).status();
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
    let dir = tempfile::tempdir().expect("temp dir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "huge=advise,size=64m", "none"])
        .arg(dir.path())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    }
    let _unmount = Mounted(dir.path());
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
