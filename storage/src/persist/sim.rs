//! A power-cut simulator: an in-memory [`Medium`] that keeps two images.
//!
//! * the **volatile** image: what the CPU sees; every `write` lands here;
//! * the **durable** image: what would survive a power failure.
//!
//! `flush(range)` queues the range; the next `fence` is a **persist point**:
//! it copies every queued range from the volatile to the durable image.
//! (In [`PersistMode::Msync`] mode the simulator stands for a page-cache
//! mapping: the arena then drives it with group commit, exactly as it drives
//! `msync`.) Ranges are copied exactly as given, the most pessimistic choice:
//! real hardware writes back whole lines or pages, which only makes more
//! survive.
//!
//! [`SimMedium::cut_at`] schedules a power cut at the N-th persist point: that
//! fence and every later one have no effect on the durable image, which is
//! frozen as it was after persist point N-1. With a tear seed, the cut also
//! lets a random half of the not-yet-persisted 8-byte words reach the durable
//! image, modelling cache lines evicted early and pmem's 8-byte failure
//! atomicity (nothing smaller than an aligned word is ever torn).
//!
//! After the cut the workload may go on (its stores only reach the volatile
//! image); a test then builds a fresh medium from
//! [`SimMedium::durable_image`] and recovers from it.
//!
//! The simulator is meant for scripted single-threaded workloads when
//! cutting: a cut reads the whole volatile image.
#![allow(unsafe_code)]

use std::ptr::NonNull;

use parking_lot::Mutex;

use super::region::Region;
use super::{Medium, PersistMode};
use crate::Result;

/// The in-memory power-cut simulator. See the module docs.
#[derive(Debug)]
pub struct SimMedium {
    /// Owner of the volatile image (`Box<[u64]>` for 8-byte alignment),
    /// turned into a raw pointer so the region may alias it.
    raw: NonNull<[u64]>,
    region: Region,
    mode: PersistMode,
    state: Mutex<SimState>,
}

// SAFETY: `raw` is owned by this struct (freed only in Drop) and all access
// goes through `region`, whose contract is the medium's (see region.rs).
unsafe impl Send for SimMedium {}
// SAFETY: as above; the bookkeeping is behind a mutex.
unsafe impl Sync for SimMedium {}

#[derive(Debug)]
struct SimState {
    durable: Vec<u8>,
    pending: Vec<(u64, u64)>,
    points: u64,
    cut_at: Option<u64>,
    tear_seed: Option<u64>,
    cut: bool,
    writes: u64,
    flushes: u64,
}

impl SimMedium {
    /// A zeroed medium of `len` bytes (rounded up to 8).
    pub fn new(len: usize, mode: PersistMode) -> SimMedium {
        SimMedium::from_image(&vec![0u8; len], mode)
    }

    /// A medium whose volatile and durable images both start as `image`
    /// (e.g. the durable image of a medium that lost power).
    pub fn from_image(image: &[u8], mode: PersistMode) -> SimMedium {
        let words = image.len().div_ceil(8);
        let boxed: Box<[u64]> = vec![0u64; words].into_boxed_slice();
        let raw = NonNull::from(Box::leak(boxed));
        let ptr = raw.cast::<u8>();
        let region = Region::new(ptr, image.len());
        // Cannot fail: the region is exactly `image.len()` bytes.
        let _ = region.write(0, image);
        SimMedium {
            raw,
            region,
            mode,
            state: Mutex::new(SimState {
                durable: image.to_vec(),
                pending: Vec::new(),
                points: 0,
                cut_at: None,
                tear_seed: None,
                cut: false,
                writes: 0,
                flushes: 0,
            }),
        }
    }

    /// Schedules a power cut at persist point `n` (1-based): fences from the
    /// `n`-th on leave the durable image untouched.
    pub fn cut_at(&self, n: u64) {
        self.state.lock().cut_at = Some(n);
    }

    /// Like [`cut_at`](Self::cut_at), and at the cut a random half (chosen by
    /// `seed`) of the 8-byte words not yet persisted reach the durable image.
    pub fn cut_at_with_tear(&self, n: u64, seed: u64) {
        let mut st = self.state.lock();
        st.cut_at = Some(n);
        st.tear_seed = Some(seed);
    }

    /// Cuts the power now.
    pub fn cut_now(&self) {
        let mut st = self.state.lock();
        self.do_cut(&mut st);
    }

    /// Whether the power has been cut.
    pub fn is_cut(&self) -> bool {
        self.state.lock().cut
    }

    /// Persist points (fences) seen so far, including those after a cut.
    pub fn persist_points(&self) -> u64 {
        self.state.lock().points
    }

    /// `(writes, flushes, fences)` seen so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        let st = self.state.lock();
        (st.writes, st.flushes, st.points)
    }

    /// What would be on the media if the power failed now (or what was on
    /// it when the power was cut).
    pub fn durable_image(&self) -> Vec<u8> {
        self.state.lock().durable.clone()
    }

    fn do_cut(&self, st: &mut SimState) {
        if st.cut {
            return;
        }
        st.cut = true;
        let Some(seed) = st.tear_seed else { return };
        let Some(volatile) = self.region.read(0, self.region.len()) else {
            return;
        };
        let mut rng = seed;
        for (d, v) in st.durable.chunks_mut(8).zip(volatile.chunks(8)) {
            if d != v && splitmix(&mut rng) & 1 == 1 {
                d.copy_from_slice(v);
            }
        }
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Drop for SimMedium {
    fn drop(&mut self) {
        // SAFETY: `raw` came from `Box::leak` in `from_image` and is freed
        // only here; borrows from `read` are tied to `&self` and are gone.
        unsafe { drop(Box::from_raw(self.raw.as_ptr())) };
    }
}

impl Medium for SimMedium {
    fn len(&self) -> u64 {
        self.region.len() as u64
    }

    fn mode(&self) -> PersistMode {
        self.mode
    }

    fn name(&self) -> &'static str {
        "sim"
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.region.write(offset, data)?;
        self.state.lock().writes += 1;
        Ok(())
    }

    fn read(&self, offset: u64, len: usize) -> Option<&[u8]> {
        self.region.read(offset, len)
    }

    fn flush(&self, offset: u64, len: u64) -> Result<()> {
        let mut st = self.state.lock();
        st.flushes += 1;
        st.pending.push((offset, len));
        Ok(())
    }

    fn fence(&self) {
        let mut st = self.state.lock();
        st.points += 1;
        if st.cut_at.is_some_and(|n| st.points >= n) {
            self.do_cut(&mut st);
        }
        let pending = std::mem::take(&mut st.pending);
        if st.cut {
            return;
        }
        for (off, len) in pending {
            let (Ok(start), Ok(n)) = (usize::try_from(off), usize::try_from(len)) else {
                continue;
            };
            if let (Some(src), Some(dst)) = (
                self.region.read(off, n),
                st.durable.get_mut(start..start.saturating_add(n)),
            ) {
                dst.copy_from_slice(src);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_fenced_flushes_survive_a_cut() {
        let m = SimMedium::new(256, PersistMode::CacheFlush);
        m.write(0, &[1; 8]).unwrap();
        m.persist(0, 8).unwrap(); // point 1
        m.write(8, &[2; 8]).unwrap();
        m.flush(8, 8).unwrap(); // flushed but never fenced
        m.write(16, &[3; 8]).unwrap(); // never flushed
        m.cut_at(2);
        m.fence(); // point 2: the cut
        m.write(24, &[4; 8]).unwrap();
        m.persist(24, 8).unwrap(); // after the cut: lost
        assert!(m.is_cut());
        let img = m.durable_image();
        assert_eq!(&img[0..8], &[1; 8]);
        assert_eq!(&img[8..32], &[0; 24]);
        // The volatile image has everything.
        assert_eq!(m.read(24, 8).unwrap(), &[4; 8]);
    }

    #[test]
    fn tear_copies_whole_words_only() {
        let m = SimMedium::new(4096, PersistMode::CacheFlush);
        let data: Vec<u8> = (0..4096u32).map(|i| (i % 251 + 1) as u8).collect();
        m.write(0, &data).unwrap();
        m.cut_at_with_tear(1, 42);
        m.fence();
        let img = m.durable_image();
        let mut copied = 0;
        for (w, d) in img.chunks(8).zip(data.chunks(8)) {
            assert!(w == d || w == [0; 8], "word torn inside");
            copied += usize::from(w == d);
        }
        assert!(copied > 100 && copied < 412, "about half survive: {copied}");
    }

    #[test]
    fn from_image_round_trips() {
        let m = SimMedium::from_image(&[9; 24], PersistMode::Msync);
        assert_eq!(m.read(0, 24).unwrap(), &[9; 24]);
        assert_eq!(m.durable_image(), vec![9; 24]);
        assert_eq!(m.mode(), PersistMode::Msync);
        assert_eq!(m.read(20, 8), None);
    }
}
