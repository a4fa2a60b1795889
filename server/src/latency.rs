//! The latency monitor (`LATENCY LATEST/HISTORY/RESET/GRAPH/DOCTOR`), as
//! Redis 7.0's `latency.c`: for each event (`command`, `fast-command`,
//! `expire-cycle`...) the latest [`SAMPLES`] spikes over
//! `latency-monitor-threshold` milliseconds, at most one per second (the
//! worst of that second), and the worst ever seen.
//!
//! Samples are added only when over the threshold
//! ([`LatencyMonitor::sample_if_needed`]), so the lock is never taken by
//! a fast command (see `crate::slowlog::worth_a_look`).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;

use crate::state::ServerState;

/// Samples kept per event (Redis's `LATENCY_TS_LEN`).
pub const SAMPLES: usize = 160;

/// One sample: when (unix seconds) and how long (ms).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// Unix time, seconds (0: an unused slot).
    pub time: u64,
    /// Latency, milliseconds.
    pub latency: u64,
}

/// One event's samples (Redis's `latencyTimeSeries`): a ring of
/// [`SAMPLES`] slots.
#[derive(Debug, Clone)]
pub struct Series {
    /// Next slot to write.
    idx: usize,
    /// Worst latency since the event was created or reset.
    pub max: u64,
    samples: [Sample; SAMPLES],
}

impl Series {
    fn new() -> Series {
        Series {
            idx: 0,
            max: 0,
            samples: [Sample::default(); SAMPLES],
        }
    }

    /// Adds a sample at `now`; a second sample in the same second only
    /// raises that second's latency.
    fn add(&mut self, now: u64, latency: u64) {
        self.max = self.max.max(latency);
        let prev = (self.idx + SAMPLES - 1) % SAMPLES;
        if let Some(p) = self.samples.get_mut(prev).filter(|p| p.time == now) {
            p.latency = p.latency.max(latency);
            return;
        }
        if let Some(slot) = self.samples.get_mut(self.idx) {
            *slot = Sample { time: now, latency };
        }
        self.idx = (self.idx + 1) % SAMPLES;
    }

    /// The samples held, oldest first.
    pub fn history(&self) -> Vec<Sample> {
        (0..SAMPLES)
            .filter_map(|j| self.samples.get((self.idx + j) % SAMPLES))
            .filter(|s| s.time != 0)
            .copied()
            .collect()
    }

    /// The newest sample.
    pub fn latest(&self) -> Sample {
        let last = (self.idx + SAMPLES - 1) % SAMPLES;
        self.samples.get(last).copied().unwrap_or_default()
    }
}

/// The server's latency events, in the order they first happened.
#[derive(Debug, Default)]
pub struct LatencyMonitor {
    events: Mutex<Vec<(String, Series)>>,
}

impl LatencyMonitor {
    /// Adds a sample of `latency_ms` to `event` if the monitor is on and
    /// the latency reaches its threshold (Redis's
    /// `latencyAddSampleIfNeeded`).
    pub fn sample_if_needed(&self, srv: &ServerState, event: &str, latency_ms: u64) {
        let threshold = srv
            .config
            .hot
            .latency_monitor_threshold
            .load(Ordering::Relaxed);
        if threshold != 0 && latency_ms >= threshold {
            self.add(event, latency_ms, amber_storage::clock::now_ms() / 1000);
        }
    }

    /// Adds a sample taken at `now` (unix seconds).
    pub fn add(&self, event: &str, latency_ms: u64, now: u64) {
        let mut events = self.events.lock();
        match events.iter_mut().find(|(name, _)| name == event) {
            Some((_, s)) => s.add(now, latency_ms),
            None => {
                let mut s = Series::new();
                s.add(now, latency_ms);
                events.push((event.to_string(), s));
            }
        }
    }

    /// Every event with its series (`LATENCY LATEST`, `DOCTOR`).
    pub fn all(&self) -> Vec<(String, Series)> {
        self.events.lock().clone()
    }

    /// One event's series (event names are case-sensitive, as in Redis).
    pub fn get(&self, event: &[u8]) -> Option<Series> {
        let events = self.events.lock();
        events
            .iter()
            .find(|(name, _)| name.as_bytes() == event)
            .map(|(_, s)| s.clone())
    }

    /// Whether no event was recorded since the start or the last reset.
    pub fn is_empty(&self) -> bool {
        self.events.lock().is_empty()
    }

    /// `LATENCY RESET [event]`: forgets `event` (case-insensitively), or
    /// every event; returns how many were forgotten.
    pub fn reset(&self, event: Option<&[u8]>) -> usize {
        let mut events = self.events.lock();
        let before = events.len();
        events.retain(|(name, _)| event.is_some_and(|e| !name.as_bytes().eq_ignore_ascii_case(e)));
        before - events.len()
    }
}

/// The columns of `LATENCY GRAPH` (Redis's `LATENCY_GRAPH_COLS`).
const GRAPH_COLS: usize = 80;

/// `LATENCY GRAPH event`'s text (Redis's `latencyCommandGenSparkeline`):
/// a title line, a rule, then a 4-row sparkline of the samples with each
/// one's age as a vertical label.
pub fn graph(event: &str, series: &Series, now: u64) -> String {
    let mut samples = Vec::new();
    for s in series.history() {
        let elapsed = now.saturating_sub(s.time);
        let label = if elapsed < 60 {
            format!("{elapsed}s")
        } else if elapsed < 3600 {
            format!("{}m", elapsed / 60)
        } else if elapsed < 3600 * 24 {
            format!("{}h", elapsed / 3600)
        } else {
            format!("{}d", elapsed / (3600 * 24))
        };
        samples.push((s.latency as f64, label));
    }
    let min = samples.iter().map(|s| s.0 as u64).min().unwrap_or(0);
    let max = samples.iter().map(|s| s.0 as u64).max().unwrap_or(0);
    let mut out = format!(
        "{event} - high {max} ms, low {min} ms (all time high {} ms)\n",
        series.max
    );
    out.push_str(&"-".repeat(GRAPH_COLS));
    out.push('\n');
    out.push_str(&sparkline(&samples, GRAPH_COLS, 4));
    out
}

/// Redis's `sparklineRender` with `SPARKLINE_FILL`: the samples in rows
/// of `columns`, each `rows` high, labels written downwards below.
fn sparkline(samples: &[(f64, String)], columns: usize, rows: usize) -> String {
    let mut out = String::new();
    let min = samples.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
    let max = samples
        .iter()
        .map(|s| s.0)
        .fold(f64::NEG_INFINITY, f64::max);
    for (n, chunk) in samples.chunks(columns).enumerate() {
        if n != 0 {
            out.push('\n');
        }
        render_range(&mut out, chunk, min, max, rows);
    }
    out
}

/// Redis's `sparklineRenderRange` (with fill, without log scale).
fn render_range(out: &mut String, chunk: &[(f64, String)], min: f64, max: f64, rows: usize) {
    const FILL: &[u8] = b"_o#";
    let charset_len = FILL.len() as i64;
    let mut relmax = max - min;
    if relmax == 0.0 {
        relmax = 1.0;
    }
    let steps = charset_len * rows as i64;
    let has_labels = chunk.iter().any(|s| !s.1.is_empty());
    let mut row = 0usize;
    loop {
        let mut more = false;
        let mut line = vec![b' '; chunk.len()];
        for (j, (value, label)) in chunk.iter().enumerate() {
            let relval = value - min;
            // As C's `(int)(relval*steps)/relmax`: truncate, then divide.
            let step = (((relval * steps as f64) as i64) as f64 / relmax) as i64;
            let step = step.clamp(0, steps - 1);
            if row < rows {
                let charidx = step - (rows - row - 1) as i64 * charset_len;
                more = true;
                if (0..charset_len).contains(&charidx) {
                    line[j] = FILL[charidx as usize];
                } else if charidx >= charset_len {
                    line[j] = b'|';
                }
            } else {
                // One blank row between the graph and the labels.
                if has_labels && row - rows < 1 {
                    more = true;
                    break;
                }
                let label_char = row - rows - 1;
                if let Some(c) = label.as_bytes().get(label_char) {
                    more = true;
                    line[j] = *c;
                }
            }
        }
        if !more {
            break;
        }
        row += 1;
        out.push_str(&String::from_utf8_lossy(&line));
        out.push('\n');
    }
}

/// `LATENCY DOCTOR`'s report (Redis's `createLatencyReport`), for the
/// events Amber records.
pub fn doctor(srv: &ServerState, now: u64) -> String {
    let events = srv.latency.all();
    let hot = &srv.config.hot;
    let threshold = hot.latency_monitor_threshold.load(Ordering::Relaxed);
    if events.is_empty() && threshold == 0 {
        return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".to_string();
    }
    let slower_than = hot.slowlog_log_slower_than.load(Ordering::Relaxed);
    let mut report = String::new();
    let mut advices = 0;
    let (mut slowlog_enabled, mut slowlog_tuning, mut slowlog_inspect) = (false, false, false);
    let (mut scheduler, mut hz, mut large_objects, mut mass_eviction) =
        (false, false, false, false);
    for (n, (event, series)) in events.iter().enumerate() {
        if n == 0 {
            report.push_str("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n");
        }
        let history = series.history();
        let count = history.len() as u64;
        let avg = history.iter().map(|s| s.latency).sum::<u64>() / count.max(1);
        let mad = history.iter().map(|s| s.latency.abs_diff(avg)).sum::<u64>() / count.max(1);
        let oldest = history.iter().map(|s| s.time).min().unwrap_or(0);
        let period = if count == 0 {
            0
        } else {
            now.saturating_sub(oldest).max(1)
        };
        let _ = write!(
            report,
            "{}. {event}: {count} latency spikes (average {avg}ms, mean deviation {mad}ms, period {:.2} sec). Worst all time event {}ms.",
            n + 1,
            period as f64 / count as f64,
            series.max
        );
        match event.as_str() {
            "command" => {
                if slower_than < 0 {
                    slowlog_enabled = true;
                    advices += 1;
                } else if (slower_than / 1000) as u64 > threshold {
                    slowlog_tuning = true;
                    advices += 1;
                }
                slowlog_inspect = true;
                large_objects = true;
                advices += 2;
            }
            "fast-command" => {
                scheduler = true;
                advices += 1;
            }
            "expire-cycle" => {
                hz = true;
                large_objects = true;
                advices += 2;
            }
            "eviction-del" => {
                large_objects = true;
                advices += 1;
            }
            "eviction-cycle" => {
                mass_eviction = true;
                advices += 1;
            }
            _ => {}
        }
        report.push('\n');
    }
    if events.is_empty() && advices == 0 {
        report.push_str("Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n");
        return report;
    }
    if advices == 0 {
        report.push_str("\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis community to get some help, providing this report in your help request.\n");
        return report;
    }
    report.push_str("\nI have a few advices for you:\n\n");
    if slowlog_enabled {
        let _ = writeln!(report, "- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {}'. If the Slow log is disabled Redis is not able to log slow commands execution for you.", threshold * 1000);
    }
    if slowlog_tuning {
        let _ = writeln!(report, "- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {}'.", threshold * 1000);
    }
    if slowlog_inspect {
        report.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
    }
    if scheduler {
        report.push_str("- The system is slow to execute Redis code paths not containing system calls. This usually means the system does not provide Redis CPU time to run for long periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / VM just for Redis if you are running other software in the same system.\n  3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are using Jemalloc. However this may create fragmentation problems.\n");
    }
    if hz && srv.config.get_i64("hz") < 100 {
        report.push_str("- In order to make the Redis keys expiring process more incremental, try to set the 'hz' configuration parameter to 100 using 'CONFIG SET hz 100'.\n");
    }
    if large_objects {
        report.push_str("- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n");
    }
    if mass_eviction {
        report.push_str("- Sudden changes to the 'maxmemory' setting via 'CONFIG SET', or allocation of large objects via sets or sorted sets intersections, STORE option of SORT, Redis Cluster large keys migrations (RESTORE command), may create sudden memory pressure forcing the server to block trying to evict keys. \n");
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_per_second_the_worst() {
        let mut s = Series::new();
        s.add(100, 5);
        s.add(100, 9);
        s.add(100, 3);
        s.add(101, 4);
        assert_eq!(
            s.history(),
            vec![
                Sample {
                    time: 100,
                    latency: 9
                },
                Sample {
                    time: 101,
                    latency: 4
                }
            ]
        );
        assert_eq!(
            s.latest(),
            Sample {
                time: 101,
                latency: 4
            }
        );
        assert_eq!(s.max, 9);
    }

    #[test]
    fn keeps_the_newest_160_samples() {
        let mut s = Series::new();
        for t in 1..=200 {
            s.add(t, t);
        }
        let h = s.history();
        assert_eq!(h.len(), SAMPLES);
        assert_eq!(h.first().map(|s| s.time), Some(41));
        assert_eq!(h.last().map(|s| s.time), Some(200));
    }

    #[test]
    fn reset_is_case_insensitive_and_counts() {
        let m = LatencyMonitor::default();
        m.add("command", 10, 1);
        m.add("expire-cycle", 10, 1);
        assert_eq!(m.reset(Some(b"nope")), 0);
        assert_eq!(m.reset(Some(b"COMMAND")), 1);
        assert!(m.get(b"command").is_none());
        assert_eq!(m.reset(None), 1);
        assert!(m.is_empty());
    }

    #[test]
    fn graph_of_two_samples_matches_redis() {
        // Redis 7.0 for samples 300 ms (2 s ago) and 500 ms (now).
        let mut s = Series::new();
        s.add(98, 300);
        s.add(100, 500);
        let g = graph("command", &s, 100);
        let expected = format!(
            "command - high 500 ms, low 300 ms (all time high 500 ms)\n{}\n #\n |\n |\n_|\n  \n20\nss\n",
            "-".repeat(80)
        );
        assert_eq!(g, expected);
    }
}
