//! What /proc says about a server process: memory by kind and CPU time.

use std::sync::OnceLock;

/// Memory of one process from `/proc/PID/status`, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStatus {
    /// `RssAnon`: anonymous memory, what counts as DRAM used.
    pub rss_anon: u64,
    /// `RssFile`: file-backed pages mapped (an arena on disk or DAX).
    pub rss_file: u64,
    /// `RssShmem`: shared memory pages mapped (an arena on /dev/shm).
    pub rss_shmem: u64,
    /// `VmSwap`: anonymous memory swapped out.
    pub vm_swap: u64,
}

/// Reads `/proc/PID/status`; `None` if the process is gone.
pub fn memory_status(pid: u32) -> Option<MemoryStatus> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(parse_status(&text))
}

/// Parses the text of `/proc/PID/status` (fields in kB).
pub fn parse_status(text: &str) -> MemoryStatus {
    let mut m = MemoryStatus::default();
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let kb = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let bytes = kb * 1024;
        match name {
            "RssAnon" => m.rss_anon = bytes,
            "RssFile" => m.rss_file = bytes,
            "RssShmem" => m.rss_shmem = bytes,
            "VmSwap" => m.vm_swap = bytes,
            _ => {}
        }
    }
    m
}

/// CPU time (user + system) of a process so far, in seconds; `None` if gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = parse_stat_ticks(&text)?;
    Some(ticks as f64 / clock_ticks_per_second())
}

/// utime + stime (fields 14 and 15) from the text of `/proc/PID/stat`.
/// The command name (field 2) may hold spaces and parentheses, so fields
/// are counted after its last `)`.
pub fn parse_stat_ticks(text: &str) -> Option<u64> {
    let after = text.get(text.rfind(')')? + 1..)?;
    let mut fields = after.split_whitespace();
    // After the name come field 3 (state) .. ; utime is field 14 -> index 11 here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `USER_HZ` as reported by `getconf CLK_TCK` (100 on every mainstream Linux).
fn clock_ticks_per_second() -> f64 {
    static HZ: OnceLock<f64> = OnceLock::new();
    *HZ.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|v| *v > 0.0)
            .unwrap_or(100.0)
    })
}

/// A one-line description of this machine for chart titles: host, CPU model, cores, RAM.
pub fn machine_summary() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    format!(
        "{host}, {model}, {cores} cores, {:.0} GiB RAM",
        mem_kb as f64 / (1024.0 * 1024.0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_stat() {
        let s = "Name:\tredis\nVmRSS:\t  100 kB\nRssAnon:\t  60 kB\nRssFile:\t 30 kB\nRssShmem:\t 10 kB\nVmSwap:\t 2 kB\n";
        let m = parse_status(s);
        assert_eq!(m.rss_anon, 60 * 1024);
        assert_eq!(m.rss_file, 30 * 1024);
        assert_eq!(m.rss_shmem, 10 * 1024);
        assert_eq!(m.vm_swap, 2 * 1024);
        let stat = "123 (redis server) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0";
        assert_eq!(parse_stat_ticks(stat), Some(300));
    }

    #[test]
    fn own_process_is_readable() {
        let pid = std::process::id();
        assert!(memory_status(pid).is_some());
        assert!(cpu_seconds(pid).is_some());
    }
}
