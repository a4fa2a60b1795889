//! The arena file mapped into memory: DAX (`MAP_SYNC`, cache-line flushes)
//! when the file system supports it, else a shared mapping made durable with
//! `msync`.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

use super::flush::FlushKind;
use super::region::Region;
use super::{Medium, PersistMode};
use crate::{Error, Result};

/// `MAP_SYNC` (Linux, same value on x86-64 and aarch64); the libc crate only
/// exports it for some targets.
const MAP_SYNC: libc::c_int = 0x80000;

/// A file mapped once, shared, read-write.
#[derive(Debug)]
pub struct MappedFile {
    region: Region,
    /// Kept open for the advisory lock (the mapping itself outlives a
    /// closed fd) and for reserving space ([`Medium::reserve`]).
    file: Option<File>,
    /// `Some` on a DAX mapping: the instruction used to write lines back.
    dax: Option<FlushKind>,
    page: usize,
    /// Set once the file system said it cannot `fallocate` (so there is
    /// nothing to reserve and no need to ask again).
    no_fallocate: AtomicBool,
    /// The file is on a tmpfs: space is reserved through the mapping (see
    /// [`MappedFile::populate`]) until the kernel refuses that.
    populate: AtomicBool,
}

impl MappedFile {
    /// Opens (creating it sparse, with parent directories, if missing) and
    /// maps the arena file at `path`, holding an exclusive advisory lock so
    /// two servers never share an arena.
    ///
    /// * `wipe`: truncate to zero and regrow (every byte reads as zero), for
    ///   `persistence none`.
    /// * Otherwise an empty file is grown to `size`; any other length that
    ///   differs from `size` is a clear error (a truncated file or a changed
    ///   `pmem-size`), never a resize.
    pub fn open(path: &Path, size: u64, wipe: bool) -> Result<MappedFile> {
        let io =
            |what: &str, e: std::io::Error| Error::Io(format!("{what} {}: {e}", path.display()));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io("creating the directory of", e))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io("opening", e))?;
        // SAFETY: flock on an fd we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err(Error::BadArena(format!(
                "{} is in use by another process ({})",
                path.display(),
                std::io::Error::last_os_error()
            )));
        }
        let len = file
            .metadata()
            .map_err(|e| io("reading the size of", e))?
            .len();
        if wipe {
            file.set_len(0).map_err(|e| io("wiping", e))?;
            file.set_len(size).map_err(|e| io("sizing", e))?;
        } else if len == 0 {
            file.set_len(size).map_err(|e| io("sizing", e))?;
        } else if len < size {
            return Err(Error::BadArena(format!(
                "{} is {len} bytes but pmem-size is {size}: the file is truncated or pmem-size changed",
                path.display()
            )));
        } else if len > size {
            return Err(Error::BadArena(format!(
                "{} is {len} bytes but pmem-size is {size}: pmem-size must match the existing arena",
                path.display()
            )));
        }
        let mut m = MappedFile::map(&file, size, false)?;
        m.file = Some(file);
        Ok(m)
    }

    /// Maps the first `len` bytes of `file` (opened read-write, at least
    /// `len` long). Tries `MAP_SHARED_VALIDATE | MAP_SYNC` first; where the
    /// file system refuses it (`EOPNOTSUPP` on ext4, tmpfs, ...), falls back
    /// to `MAP_SHARED` and `msync`. `force_msync` skips the DAX attempt.
    pub fn map(file: &File, len: u64, force_msync: bool) -> Result<MappedFile> {
        let len_usize = usize::try_from(len)
            .map_err(|_| Error::BadArena(format!("arena size {len} does not fit in memory")))?;
        if len_usize == 0 {
            return Err(Error::BadArena("arena size is zero".into()));
        }
        let fd = file.as_raw_fd();
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let kind = FlushKind::detect();
        let mut dax = None;
        let mut ptr = libc::MAP_FAILED;
        if !force_msync && kind != FlushKind::Unsupported {
            // SAFETY: a fresh mapping (addr NULL) of an open fd; the kernel
            // validates every argument and returns MAP_FAILED on error. No
            // existing memory is affected.
            ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len_usize,
                    prot,
                    libc::MAP_SHARED_VALIDATE | MAP_SYNC,
                    fd,
                    0,
                )
            };
            if ptr == libc::MAP_FAILED {
                let err = std::io::Error::last_os_error();
                tracing::info!(
                    "arena: MAP_SYNC refused ({err}); not a DAX file system, using msync"
                );
            } else {
                dax = Some(kind);
            }
        }
        if ptr == libc::MAP_FAILED {
            // SAFETY: as above, a fresh shared mapping of an open fd.
            ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len_usize,
                    prot,
                    libc::MAP_SHARED,
                    fd,
                    0,
                )
            };
        }
        if ptr == libc::MAP_FAILED {
            return Err(Error::Io(format!(
                "mmap of {len} bytes: {}",
                std::io::Error::last_os_error()
            )));
        }
        let ptr = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| Error::Io("mmap returned a null pointer".into()))?;
        // 2 MiB pages on a tmpfs that grants them on request (mounted
        // `huge=advise`; `huge=always` and DAX devices map them without
        // asking): a random record read then needs no 4 KiB TLB entry of its
        // own, which is most of what a cold read costs beyond the data's own
        // cache misses. Only on tmpfs, where it was measured: on a disk file
        // system a cold read waits for the page cache, not the TLB, and
        // large page-cache folios would only make its reclaim coarser.
        let tmpfs = on_tmpfs(fd);
        if tmpfs {
            // SAFETY: the range is exactly the mapping just created; the
            // advice never changes its contents.
            if unsafe { libc::madvise(ptr.as_ptr().cast(), len_usize, libc::MADV_HUGEPAGE) } != 0 {
                tracing::debug!(
                    "arena: no huge pages for this mapping ({})",
                    std::io::Error::last_os_error()
                );
            }
        }
        match dax {
            Some(k) => tracing::info!("arena: DAX mapping (MAP_SYNC), persisting with {k} + fence"),
            None => tracing::info!("arena: shared mapping, persisting with msync"),
        }
        // SAFETY (for the region): sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let page = usize::try_from(page).unwrap_or(4096).max(1);
        Ok(MappedFile {
            region: Region::new(ptr, len_usize),
            file: None,
            dax,
            page,
            no_fallocate: AtomicBool::new(false),
            populate: AtomicBool::new(tmpfs),
        })
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        // SAFETY: the region is exactly the mapping created in `map`, and
        // every borrow handed out by `read` is tied to `&self`, so none
        // outlives this call.
        unsafe {
            libc::munmap(self.region.ptr().as_ptr().cast(), self.region.len());
        }
    }
}

impl Medium for MappedFile {
    fn len(&self) -> u64 {
        self.region.len() as u64
    }

    fn mode(&self) -> PersistMode {
        if self.dax.is_some() {
            PersistMode::CacheFlush
        } else {
            PersistMode::Msync
        }
    }

    fn name(&self) -> &'static str {
        if self.dax.is_some() {
            "dax"
        } else {
            "msync"
        }
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.region.write(offset, data)
    }

    fn read(&self, offset: u64, len: usize) -> Option<&[u8]> {
        self.region.read(offset, len)
    }

    fn prefetch(&self, offset: u64, len: u64) {
        // MADV_POPULATE_READ (Linux 5.14) populates the page tables at once;
        // older kernels refuse it, and MADV_WILLNEED at least starts the I/O.
        const MADV_POPULATE_READ: libc::c_int = 22;
        let page = self.page as u64;
        let start = offset / page * page;
        let Some(bytes) = self.region.span(start, offset + len - start) else {
            return;
        };
        let (ptr, n) = (bytes.as_ptr() as *mut libc::c_void, bytes.len());
        // SAFETY: the range lies inside our live mapping and starts on a page
        // boundary; these advices never modify its contents.
        unsafe {
            if libc::madvise(ptr, n, MADV_POPULATE_READ) != 0 {
                libc::madvise(ptr, n, libc::MADV_WILLNEED);
            }
        }
    }

    fn flush(&self, offset: u64, len: u64) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        if let Some(kind) = self.dax {
            let bytes = self
                .region
                .span(offset, len)
                .ok_or_else(|| Error::Corrupt(format!("flush past the end at {offset}+{len}")))?;
            kind.flush(bytes);
            return Ok(());
        }
        let page = self.page as u64;
        let start = offset / page * page;
        let end = offset
            .checked_add(len)
            .filter(|e| *e <= self.len())
            .ok_or_else(|| Error::Corrupt(format!("msync past the end at {offset}+{len}")))?;
        let base = self.region.ptr().as_ptr();
        // SAFETY: `start..end` lies inside the mapping (checked above) and
        // `start` is page aligned as msync requires (the mapping itself is
        // page aligned). msync reads no Rust-visible state.
        let rc = unsafe {
            libc::msync(
                base.add(start as usize).cast(),
                (end - start) as usize,
                libc::MS_SYNC,
            )
        };
        if rc != 0 {
            return Err(Error::Io(format!(
                "msync: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(())
    }

    fn fence(&self) {
        if let Some(kind) = self.dax {
            kind.fence();
        }
    }

    fn is_dax(&self) -> bool {
        self.dax.is_some()
    }

    fn read_copy(&self, offset: u64, buf: &mut [u8]) -> bool {
        use std::os::unix::fs::FileExt;
        if let Some(file) = &self.file {
            let in_bounds = offset
                .checked_add(buf.len() as u64)
                .is_some_and(|e| e <= self.len());
            if in_bounds && file.read_exact_at(buf, offset).is_ok() {
                return true;
            }
        }
        // A device without pread (devdax), or no file: the mapping.
        match self.region.read(offset, buf.len()) {
            Some(b) => {
                buf.copy_from_slice(b);
                true
            }
            None => false,
        }
    }

    fn reserve(&self, offset: u64, len: u64) -> Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if len == 0 || self.no_fallocate.load(Ordering::Relaxed) {
            return Ok(());
        }
        let end = offset.checked_add(len).filter(|e| *e <= self.len());
        let (Some(_), Ok(off), Ok(n)) = (end, i64::try_from(offset), i64::try_from(len)) else {
            return Err(Error::Corrupt(format!(
                "reserve past the end at {offset}+{len}"
            )));
        };
        if self.populate.load(Ordering::Relaxed) {
            if let Some(done) = self.populate(offset, len) {
                return done;
            }
        }
        // KEEP_SIZE: the file already has its length; only the blocks (or
        // tmpfs pages) behind the range are allocated. Ranges already
        // allocated cost a walk of their extents and nothing else.
        // SAFETY: fallocate on an fd we own; no memory is involved.
        let done = retry_interrupted(|| unsafe {
            libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, off, n)
        });
        let Err(err) = done else {
            return Ok(());
        };
        match err.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => {
                tracing::debug!(
                    "arena: the file system cannot back {len} more bytes at {offset} ({err})"
                );
                Err(Error::ArenaFull)
            }
            // No fallocate here (a device, an old or network file system):
            // nothing can be reserved, the mapping is all there is.
            _ => {
                tracing::info!(
                    "arena: space cannot be reserved on this file system ({err}); holes stay holes"
                );
                self.no_fallocate.store(true, Ordering::Relaxed);
                Ok(())
            }
        }
    }
}

impl MappedFile {
    /// Reserves a range of a tmpfs file by faulting its pages in, writable,
    /// through the mapping (`MADV_POPULATE_WRITE`, Linux 5.14), rather than
    /// with `fallocate`: pages allocated by `fallocate` have no mapping to
    /// take `MADV_HUGEPAGE` from, so on a `huge=advise` tmpfs they come as
    /// 4 KiB pages and the arena loses its 2 MiB ones. The pages are also
    /// mapped and zeroed here, once per segment, instead of one fault per
    /// page under the appends. `None` when the kernel cannot do it (then
    /// `fallocate` is used from now on).
    fn populate(&self, offset: u64, len: u64) -> Option<Result<()>> {
        const MADV_POPULATE_WRITE: libc::c_int = 23;
        let page = self.page as u64;
        let start = offset / page * page;
        let bytes = self.region.span(start, offset + len - start)?;
        let (ptr, n) = (bytes.as_ptr() as *mut libc::c_void, bytes.len());
        // SAFETY: the range lies inside our live mapping and starts on a
        // page boundary; populating never changes the contents.
        let done = retry_interrupted(|| unsafe { libc::madvise(ptr, n, MADV_POPULATE_WRITE) });
        let Err(err) = done else {
            return Some(Ok(()));
        };
        match err.raw_os_error() {
            // A page the file system cannot back (EFAULT: "would SIGBUS"),
            // or no memory for it.
            Some(libc::EFAULT) | Some(libc::ENOMEM) => {
                tracing::debug!(
                    "arena: the file system cannot back {len} more bytes at {offset} ({err})"
                );
                Some(Err(Error::ArenaFull))
            }
            _ => {
                tracing::info!(
                    "arena: cannot populate the mapping ({err}); reserving with fallocate"
                );
                self.populate.store(false, Ordering::Relaxed);
                None
            }
        }
    }
}

/// Runs a system call (0 on success, -1 and errno on failure) again while
/// a signal interrupts it.
fn retry_interrupted(mut call: impl FnMut() -> libc::c_int) -> std::io::Result<()> {
    loop {
        if call() == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Whether `fd` is a file on a tmpfs (`/dev/shm` and its kind).
fn on_tmpfs(fd: std::os::fd::RawFd) -> bool {
    // SAFETY: fstatfs fills the zeroed struct we own from an open fd.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    unsafe { libc::fstatfs(fd, &mut st) == 0 && st.f_type == libc::TMPFS_MAGIC }
}
