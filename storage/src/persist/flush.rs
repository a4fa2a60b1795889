//! CPU cache write-back instructions for DAX mappings.
//!
//! x86-64: `clwb` (writes the line back and may keep it cached), else
//! `clflushopt` (weakly ordered flush+invalidate), else `clflush` (strongly
//! ordered, slowest), then one `sfence` that orders them before any later
//! store. The choice is made once from CPUID leaf 7 (EBX bit 24 = CLWB,
//! bit 23 = CLFLUSHOPT); `clflush` is part of SSE2, which every x86-64 has.
//! Stable Rust has no `_mm_clwb` / `_mm_clflushopt`, so those two are emitted
//! with `asm!`.
//!
//! aarch64: `dc cvap` (clean to the point of persistence, ARMv8.2) per line,
//! written as its `sys` encoding so older assemblers accept it, then
//! `dsb ish`.
//!
//! Flushing ordinary (non-pmem) memory is harmless, which is how the unit
//! tests exercise every instruction the CPU has.

use std::sync::OnceLock;

/// Cache line size assumed for flushing. Flushing at a smaller stride than
/// the real line size is merely redundant, never wrong.
pub const CACHE_LINE: usize = 64;

/// Which write-back instruction this CPU uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushKind {
    /// x86-64 `clwb` + `sfence`.
    Clwb,
    /// x86-64 `clflushopt` + `sfence`.
    Clflushopt,
    /// x86-64 `clflush` + `sfence`.
    Clflush,
    /// aarch64 `dc cvap` + `dsb ish`.
    DcCvap,
    /// No known instruction on this architecture (flushes are no-ops; DAX
    /// mode is then never selected).
    Unsupported,
}

impl FlushKind {
    /// The best instruction this CPU supports, detected once.
    pub fn detect() -> FlushKind {
        static KIND: OnceLock<FlushKind> = OnceLock::new();
        *KIND.get_or_init(detect_now)
    }

    /// The instructions this CPU can run, best first (for tests).
    pub fn available() -> Vec<FlushKind> {
        let best = FlushKind::detect();
        let all = [
            FlushKind::Clwb,
            FlushKind::Clflushopt,
            FlushKind::Clflush,
            FlushKind::DcCvap,
        ];
        match all.iter().position(|k| *k == best) {
            Some(i) if best != FlushKind::DcCvap => all.get(i..3).unwrap_or(&[]).to_vec(),
            Some(_) => vec![FlushKind::DcCvap],
            None => Vec::new(),
        }
    }

    /// Writes back every cache line that `bytes` touches (no fence).
    pub fn flush(self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let start = bytes.as_ptr() as usize & !(CACHE_LINE - 1);
        let end = bytes.as_ptr() as usize + bytes.len();
        let mut line = start;
        while line < end {
            flush_line(self, line as *const u8);
            line += CACHE_LINE;
        }
    }

    /// Orders all earlier flushes before later stores (`sfence` / `dsb ish`).
    pub fn fence(self) {
        fence(self);
    }
}

impl std::fmt::Display for FlushKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FlushKind::Clwb => "clwb",
            FlushKind::Clflushopt => "clflushopt",
            FlushKind::Clflush => "clflush",
            FlushKind::DcCvap => "dc cvap",
            FlushKind::Unsupported => "none",
        })
    }
}

#[cfg(target_arch = "x86_64")]
fn detect_now() -> FlushKind {
    use core::arch::x86_64::__cpuid_count;
    let leaf0 = __cpuid_count(0, 0);
    if leaf0.eax >= 7 {
        let leaf7 = __cpuid_count(7, 0);
        if leaf7.ebx & (1 << 24) != 0 {
            return FlushKind::Clwb;
        }
        if leaf7.ebx & (1 << 23) != 0 {
            return FlushKind::Clflushopt;
        }
    }
    FlushKind::Clflush
}

#[cfg(target_arch = "aarch64")]
fn detect_now() -> FlushKind {
    FlushKind::DcCvap
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn detect_now() -> FlushKind {
    FlushKind::Unsupported
}

#[cfg(target_arch = "x86_64")]
fn flush_line(kind: FlushKind, line: *const u8) {
    match kind {
        // SAFETY: `line` lies inside a live `&[u8]` borrowed by `flush`
        // (rounded down to its cache line, which is mapped with the same
        // page). clwb only writes a line back; it changes no memory contents
        // and no registers, and CPUID said the CPU has it.
        FlushKind::Clwb => unsafe {
            core::arch::asm!("clwb [{0}]", in(reg) line, options(nostack, preserves_flags));
        },
        // SAFETY: as for clwb; clflushopt also invalidates the line, which
        // changes no memory contents.
        FlushKind::Clflushopt => unsafe {
            core::arch::asm!("clflushopt [{0}]", in(reg) line, options(nostack, preserves_flags));
        },
        // SAFETY: as above; clflush is SSE2, baseline on x86-64.
        FlushKind::Clflush => unsafe { core::arch::x86_64::_mm_clflush(line) },
        FlushKind::DcCvap | FlushKind::Unsupported => {}
    }
}

#[cfg(target_arch = "aarch64")]
fn flush_line(kind: FlushKind, line: *const u8) {
    if kind == FlushKind::DcCvap {
        // SAFETY: `line` lies inside a live borrowed slice. `dc cvap`
        // (encoded as `sys #3, c7, c12, #1`) cleans the line to the point of
        // persistence and changes no memory contents or flags.
        unsafe {
            core::arch::asm!("sys #3, c7, c12, #1, {0}", in(reg) line, options(nostack, preserves_flags));
        }
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn flush_line(_kind: FlushKind, _line: *const u8) {}

#[cfg(target_arch = "x86_64")]
fn fence(_kind: FlushKind) {
    // SAFETY: sfence is SSE, baseline on x86-64; it is a barrier and touches
    // no memory or registers.
    unsafe { core::arch::x86_64::_mm_sfence() };
}

#[cfg(target_arch = "aarch64")]
fn fence(_kind: FlushKind) {
    // SAFETY: a barrier instruction; touches no memory or registers.
    unsafe {
        core::arch::asm!("dsb ish", options(nostack, preserves_flags));
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn fence(_kind: FlushKind) {
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn detects_something_on_this_cpu() {
        let kind = FlushKind::detect();
        #[cfg(target_arch = "x86_64")]
        assert!(matches!(
            kind,
            FlushKind::Clwb | FlushKind::Clflushopt | FlushKind::Clflush
        ));
        assert!(FlushKind::available().contains(&kind));
    }

    #[test]
    fn every_available_instruction_runs_and_keeps_data() {
        let mut buf = vec![0u8; 4096 + 3];
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i * 7) as u8;
        }
        let kinds = FlushKind::available();
        assert!(!kinds.is_empty());
        for kind in kinds {
            // Unaligned start and odd length: every touched line is flushed.
            kind.flush(buf.get(3..).unwrap_or(&[]));
            kind.flush(&[]);
            kind.fence();
            for (i, b) in buf.iter().enumerate() {
                assert_eq!(*b, (i * 7) as u8, "{kind} changed memory");
            }
        }
    }
}
