//! Per-connection counters and latency histogram, merged at the end of a phase.

use hdrhistogram::Histogram;

/// Highest latency the histograms track, in microseconds (one minute).
const MAX_LATENCY_US: u64 = 60_000_000;

/// What one connection (or, merged, a whole phase) saw.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Latency of successful requests, in microseconds.
    pub hist: Histogram<u64>,
    /// Requests answered without an error reply.
    pub ok: u64,
    /// GETs sent and answered.
    pub gets: u64,
    /// SETs answered `+OK`.
    pub sets: u64,
    /// GETs that found a value.
    pub hits: u64,
    /// GETs that found nothing.
    pub misses: u64,
    /// Misses on keys that had been written successfully: lost data.
    pub lost_reads: u64,
    /// Distinct written keys found missing by a verify pass.
    pub lost_keys: u64,
    /// Keys checked by a verify pass.
    pub verified: u64,
    /// Error replies plus requests left unanswered by a broken connection.
    pub errors: u64,
    /// `-OOM` error replies (Redis `maxmemory` with `noeviction`).
    pub oom_errors: u64,
    /// Connections that failed (refused, reset, timed out).
    pub broken_connections: u64,
    /// The first error text seen, for the report.
    pub first_error: Option<String>,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    /// Empty stats.
    pub fn new() -> Self {
        // 3 significant figures over 1 µs .. 60 s: bounds are constants, so this cannot fail.
        #[allow(clippy::expect_used)]
        let hist = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
            .expect("constant histogram bounds are valid");
        Stats {
            hist,
            ok: 0,
            gets: 0,
            sets: 0,
            hits: 0,
            misses: 0,
            lost_reads: 0,
            lost_keys: 0,
            verified: 0,
            errors: 0,
            oom_errors: 0,
            broken_connections: 0,
            first_error: None,
        }
    }

    /// Records one latency sample (saturating at the histogram's top).
    pub fn record_latency_us(&mut self, us: u64) {
        let v = us.clamp(1, MAX_LATENCY_US);
        let _ = self.hist.record(v);
    }

    /// Notes an error; keeps the first message.
    pub fn note_error(&mut self, n: u64, text: impl FnOnce() -> String) {
        self.errors += n;
        if self.first_error.is_none() {
            self.first_error = Some(text());
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Stats) {
        let _ = self.hist.add(&other.hist);
        self.ok += other.ok;
        self.gets += other.gets;
        self.sets += other.sets;
        self.hits += other.hits;
        self.misses += other.misses;
        self.lost_reads += other.lost_reads;
        self.lost_keys += other.lost_keys;
        self.verified += other.verified;
        self.errors += other.errors;
        self.oom_errors += other.oom_errors;
        self.broken_connections += other.broken_connections;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }

    /// Latency at quantile `q` (0..1) in milliseconds; 0 with no samples.
    pub fn latency_ms(&self, q: f64) -> f64 {
        if self.hist.is_empty() {
            0.0
        } else {
            self.hist.value_at_quantile(q) as f64 / 1000.0
        }
    }

    /// Hits / GETs, or `None` without GETs.
    pub fn hit_rate(&self) -> Option<f64> {
        (self.gets > 0).then(|| self.hits as f64 / self.gets as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_and_quantiles() {
        let mut a = Stats::new();
        let mut b = Stats::new();
        for us in 1..=100 {
            a.record_latency_us(us * 10);
        }
        b.gets = 4;
        b.hits = 3;
        b.note_error(2, || "first".into());
        b.note_error(1, || "second".into());
        a.merge(&b);
        assert_eq!(a.errors, 3);
        assert_eq!(a.first_error.as_deref(), Some("first"));
        assert_eq!(a.hit_rate(), Some(0.75));
        let p50 = a.latency_ms(0.5);
        assert!((0.49..=0.51).contains(&p50), "{p50}");
    }
}
