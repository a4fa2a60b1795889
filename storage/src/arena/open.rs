//! Opening an arena: file and mapping, superblock validation or formatting,
//! segment headers, the everysec flusher.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::config::{ArenaConfig, ArenaSync, Persistence, DATA_OFFSET};
use super::segment::{self, SegmentMeta, State, SEGMENT_HEADER_LEN};
use super::superblock::{Found, Superblock, CLEAN_OFFSET, SUPERBLOCK_LEN};
use super::{strategy_for, Arena, Inner, Lane, Strategy};
use crate::persist::{MappedFile, Medium};
use crate::{Error, Result};

impl Arena {
    /// Opens the arena at `config.path`.
    ///
    /// * `persistence none`: the file is wiped and formatted; the arena is
    ///   capacity only and ready for appends.
    /// * `persistence pmem`: a missing or empty file (or an all-zero
    ///   superblock) is formatted fresh; otherwise the superblock must be
    ///   valid and match `pmem-size`: a wrong magic, version, size or
    ///   checksum, or a truncated file, is an [`Error::BadArena`], never a
    ///   silent wipe. An arena last used with `persistence none` holds
    ///   nothing durable and is formatted afresh (logged). Call
    ///   [`Arena::recover`] next.
    pub fn open(config: &ArenaConfig) -> Result<Arena> {
        config.validate()?;
        let wipe = config.persistence == Persistence::None;
        let medium = MappedFile::open(&config.path, config.size, wipe)?;
        tracing::info!(
            "arena: {} ({} bytes, persistence {}, arena-sync {}, medium {})",
            config.path.display(),
            config.size,
            config.persistence,
            config.sync,
            medium.name()
        );
        Arena::with_medium(config, Arc::new(medium))
    }

    /// Opens an arena on any medium (the simulator in tests); `config.path`
    /// is not used. Same validation as [`Arena::open`].
    pub fn with_medium(config: &ArenaConfig, medium: Arc<dyn Medium>) -> Result<Arena> {
        config.validate()?;
        if medium.len() != config.size {
            return Err(Error::BadArena(format!(
                "arena is {} bytes but pmem-size is {}",
                medium.len(),
                config.size
            )));
        }
        // The superblock page gets its space first: it is read through the
        // mapping and written below, and on a tmpfs even a load from a hole
        // allocates a page, which a full file system answers with SIGBUS.
        // Segment headers are read with `read_copy` (no page allocated for
        // a segment never used); a segment's space is reserved when it is
        // first taken. See `Medium::reserve`.
        medium.reserve(0, DATA_OFFSET).map_err(|e| match e {
            Error::ArenaFull => Error::BadArena(
                "the file system holding the arena has no space left for its superblock".into(),
            ),
            other => other,
        })?;
        let head = medium
            .read(0, SUPERBLOCK_LEN)
            .ok_or_else(|| Error::BadArena("arena shorter than its superblock".into()))?;
        let found = Superblock::decode(head)?;
        let existing = match (config.persistence, found) {
            (Persistence::None, _) | (Persistence::Pmem, Found::Blank) => None,
            (Persistence::Pmem, Found::Valid(sb)) if sb.mode == Persistence::None => {
                tracing::warn!(
                    "arena: last used with persistence none (nothing durable); formatting it for pmem"
                );
                None
            }
            (Persistence::Pmem, Found::Valid(sb)) => {
                if sb.size != config.size {
                    return Err(Error::BadArena(format!(
                        "the superblock says the arena is {} bytes but the file/pmem-size is {}",
                        sb.size, config.size
                    )));
                }
                Some(sb)
            }
        };
        let sb = match existing {
            Some(sb) => {
                if sb.segment_size != config.segment_size {
                    tracing::warn!(
                        "arena: keeping the segment size it was formatted with ({} bytes, config says {})",
                        sb.segment_size,
                        config.segment_size
                    );
                }
                sb
            }
            None => format(&*medium, config)?,
        };
        let fresh = existing.is_none();
        let count = usize::try_from(sb.segment_count)
            .map_err(|_| Error::BadArena("too many segments".into()))?;
        let metas: Box<[SegmentMeta]> = (0..count).map(|_| SegmentMeta::new()).collect();
        let mut free = VecDeque::with_capacity(count);
        let mut max_gen = 0;
        // Walk the headers in order; the segments an extent covers hold
        // record bytes, never a header, and are skipped (see `segment`).
        let mut i = 0usize;
        while let Some(meta) = metas.get(i) {
            let idx = i as u32;
            let base = DATA_OFFSET + i as u64 * sb.segment_size;
            let mut head = [0u8; SEGMENT_HEADER_LEN as usize];
            let found = if fresh || !medium.read_copy(base, &mut head) {
                None
            } else {
                segment::decode_header(&head, idx).filter(|(_, span)| (*span as usize) <= count - i)
            };
            match found {
                Some((g, span)) => {
                    meta.gen.store(g, Ordering::Relaxed);
                    meta.span.store(span, Ordering::Relaxed);
                    meta.set_state(State::Sealed);
                    max_gen = max_gen.max(g);
                    for m in metas.iter().skip(i + 1).take(span as usize - 1) {
                        m.set_state(State::Continued);
                    }
                    i += span as usize;
                }
                None => {
                    free.push_back(idx);
                    i += 1;
                }
            }
        }
        let in_use = count - free.len();
        let strategy = strategy_for(medium.mode(), config.persistence);
        let clean_at_open = existing.is_some_and(|s| s.clean);
        if config.persistence == Persistence::Pmem {
            // The arena is now in use: clear the clean word (one 8-byte
            // failure-atomic store).
            medium.write(CLEAN_OFFSET, &0u64.to_le_bytes())?;
            medium.persist(CLEAN_OFFSET, 8)?;
        }
        if !fresh {
            tracing::info!(
                "arena: existing arena, {in_use} of {count} segments in use, {} shutdown",
                if clean_at_open { "clean" } else { "unclean" }
            );
        }
        let lanes: Box<[Mutex<Lane>]> = (0..=config.lanes)
            .map(|_| Mutex::new(Lane::default()))
            .collect();
        let inner = Arc::new(Inner {
            medium,
            persistence: config.persistence,
            sync: config.sync,
            strategy,
            size: config.size,
            segment_size: sb.segment_size,
            metas,
            free: Mutex::new(free),
            space: super::space::Space::new(count),
            reserve: (count / 4).clamp(1, 2),
            lanes,
            extent_dirty: Mutex::new(Vec::new()),
            seq: AtomicU64::new(max_gen + 1),
            durable: AtomicU64::new(max_gen + 1),
            sync_lock: Mutex::new(()),
            compacting: Mutex::new(()),
            meta: Mutex::new(Default::default()),
            recovery_done: AtomicBool::new(false),
            commit: Mutex::new(false),
            commit_cv: Condvar::new(),
            poisoned: Mutex::new(None),
            is_poisoned: AtomicBool::new(false),
            recovered: AtomicBool::new(in_use == 0),
            closed: AtomicBool::new(false),
            persist_calls: AtomicU64::new(0),
            compactions: AtomicU64::new(0),
            clean_at_open,
            flusher_stop: Mutex::new(false),
            flusher_cv: Condvar::new(),
        });
        let reserver = {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("arena-reserver".into())
                .spawn(move || inner.reserver_loop())
                .map_err(|e| Error::Io(format!("spawning the arena reserver: {e}")))?
        };
        let flusher = if strategy == Strategy::Group && config.sync == ArenaSync::EverySec {
            let inner2 = Arc::clone(&inner);
            let spawned = std::thread::Builder::new()
                .name("arena-flusher".into())
                .spawn(move || inner2.flusher_loop());
            match spawned {
                Ok(handle) => Some(handle),
                Err(e) => {
                    inner.space.stop();
                    return Err(Error::Io(format!("spawning the arena flusher: {e}")));
                }
            }
        } else {
            None
        };
        Ok(Arena {
            inner,
            flusher: Mutex::new(flusher),
            reserver: Mutex::new(Some(reserver)),
        })
    }
}

/// Formats the medium: zeroes every segment header that is not already
/// zero (persisted), then writes the superblock (persisted).
fn format(medium: &dyn Medium, config: &ArenaConfig) -> Result<Superblock> {
    let sb = Superblock::fresh(config.persistence, config.size, config.segment_size);
    let zero = [0u8; SEGMENT_HEADER_LEN as usize];
    let mut dirty = false;
    for i in 0..sb.segment_count {
        let base = DATA_OFFSET + i * sb.segment_size;
        let mut head = zero;
        let is_zero = medium.read_copy(base, &mut head) && head == zero;
        if !is_zero {
            medium.write(base, &zero)?;
            medium.flush(base, SEGMENT_HEADER_LEN)?;
            dirty = true;
        }
    }
    if dirty {
        medium.fence();
    }
    // Everything but the magic first; the magic word commits the format.
    let bytes = sb.encode();
    let (magic, rest) = bytes.split_at(8);
    medium.write(8, rest)?;
    medium.persist(8, rest.len() as u64)?;
    medium.write(0, magic)?;
    medium.persist(0, SUPERBLOCK_LEN as u64)?;
    tracing::info!(
        "arena: formatted {} bytes as {} segments of {} bytes",
        sb.size,
        sb.segment_count,
        sb.segment_size
    );
    Ok(sb)
}
