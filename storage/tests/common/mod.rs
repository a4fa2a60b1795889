//! Helpers shared by the storage integration tests. Each file under
//! `storage/tests/` is a crate of its own and takes this module with
//! `mod common;`; a file uses what it needs.
#![allow(dead_code)]

use std::path::Path;

use amber_storage::{ArenaConfig, ArenaSync, KeyspaceConfig, Persistence};

/// A keyspace over `dir/amber.arena` of `size` bytes (64 KiB segments, no
/// syncs: the tests read the file, not the disk), 4 shards per database.
pub fn arena_config(
    dir: &Path,
    size: u64,
    budget: u64,
    persistence: Persistence,
) -> KeyspaceConfig {
    let mut arena = ArenaConfig::new(dir.join("amber.arena"), size);
    arena.segment_size = 64 << 10;
    arena.persistence = persistence;
    arena.sync = ArenaSync::No;
    KeyspaceConfig {
        shards_per_db: 4,
        dram_budget: budget,
        arena: Some(arena),
    }
}

/// [`arena_config`] with a 64 MiB arena in `persistence pmem`.
pub fn pmem_config(dir: &Path, budget: u64) -> KeyspaceConfig {
    arena_config(dir, 64 << 20, budget, Persistence::Pmem)
}

/// What a restart after `kill -9` would find: a copy of the arena file as
/// it is now (every store is in the shared mapping; nothing more reaches
/// the file after the copy).
pub fn crash_image(dir: &Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().expect("tempdir");
    std::fs::copy(dir.join("amber.arena"), copy.path().join("amber.arena")).expect("copy");
    copy
}
