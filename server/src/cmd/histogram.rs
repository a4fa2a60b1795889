//! Per-command latency histograms (`latency-tracking`, Redis 7.0): what
//! `LATENCY HISTOGRAM` and `INFO latencystats` report.
//!
//! Redis keeps an HDR histogram (2 significant figures) per command and
//! reports it through a logarithmic iterator: buckets of 1024 ns × 2^k,
//! each labelled with its highest equivalent value in microseconds (1, 2,
//! 4, 8, 16, 33, 66, 132...). Amber counts durations straight into those
//! buckets (one relaxed add on a per-thread stripe per call), so
//! `LATENCY HISTOGRAM` has Redis's labels and cumulative counts; the
//! percentiles of `INFO latencystats` are the label of the bucket that
//! holds them (power-of-two resolution, where Redis's sub-buckets give two
//! significant figures).
//!
//! Not the `hdrhistogram` crate the bench uses: its `record` takes
//! `&mut self`, so every command of every connection thread would take a
//! lock; per-thread stripes of buckets cost one uncontended add (a plain store
//! on a connection thread, which owns its stripe).

use std::time::Duration;

use amber_storage::striped::Counters;

/// Buckets: 1024 ns × 2^k for k in 0..BUCKETS (the last one, about 1 s,
/// also takes everything slower, as Redis clamps to its maximum).
const BUCKETS: usize = 21;

/// The highest value (ns) HDR treats as equal to 1024 × 2^k at 2
/// significant figures: the bucket's upper bound.
fn highest(k: usize) -> u64 {
    (1u64 << (10 + k)) + (1u64 << (k + 3)) - 1
}

/// The bucket of a duration of `ns` nanoseconds.
fn bucket(ns: u64) -> usize {
    let mut k = if ns <= 1024 {
        0
    } else {
        (64 - (ns - 1).leading_zeros()) as usize - 10
    };
    if k > 0 && ns <= highest(k - 1) {
        k -= 1;
    }
    k.min(BUCKETS - 1)
}

/// One command's latency histogram.
#[derive(Debug, Default)]
pub struct LatencyHistogram(Counters<BUCKETS>);

impl LatencyHistogram {
    /// Counts one call that took `elapsed`, in whole microseconds as Redis
    /// measures it (`c->duration` × 1000 ns: a call under 1 µs counts as 0).
    pub fn record(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_micros())
            .unwrap_or(u64::MAX)
            .saturating_mul(1000);
        self.0.add(bucket(ns), 1);
    }

    /// Forgets every call (`CONFIG RESETSTAT`).
    pub fn reset(&self) {
        self.0.reset();
    }

    /// Calls counted in each bucket, all threads together.
    fn counts(&self) -> [u64; BUCKETS] {
        self.0.all()
    }

    /// Calls counted, and `LATENCY HISTOGRAM`'s `histogram_usec` entries:
    /// (bucket label in µs, calls up to it), for each bucket that adds
    /// calls, as Redis's `fillCommandCDF`.
    pub fn cdf(&self) -> (u64, Vec<(u64, u64)>) {
        let mut total = 0;
        let mut out = Vec::new();
        for (k, n) in self.counts().into_iter().enumerate() {
            if n > 0 {
                total += n;
                out.push((highest(k) / 1000, total));
            }
        }
        (total, out)
    }

    /// The value (µs) at each percentile, as `INFO latencystats` shows it;
    /// `None` when no call was counted.
    pub fn percentiles(&self, ps: &[f64]) -> Option<Vec<f64>> {
        let counts = self.counts();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        Some(
            ps.iter()
                .map(|p| {
                    // HDR's `hdr_value_at_percentile`: the first value whose
                    // cumulative count reaches the rank (at least 1).
                    let rank = ((p / 100.0 * total as f64 + 0.5) as u64).clamp(1, total);
                    let mut seen = 0;
                    let k = counts
                        .iter()
                        .position(|n| {
                            seen += n;
                            seen >= rank
                        })
                        .unwrap_or(BUCKETS - 1);
                    highest(k) as f64 / 1000.0
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_redis_log_iterator_labels() {
        let labels: Vec<u64> = (0..8).map(|k| highest(k) / 1000).collect();
        assert_eq!(labels, [1, 2, 4, 8, 16, 33, 66, 132]);
    }

    #[test]
    fn durations_fall_in_the_bucket_that_covers_them() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1031), 0);
        assert_eq!(bucket(1032), 1);
        assert_eq!(bucket(2063), 1);
        assert_eq!(bucket(2064), 2);
        assert_eq!(bucket(33_023), 5);
        assert_eq!(bucket(33_024), 6);
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn cdf_and_percentiles() {
        let h = LatencyHistogram::default();
        for _ in 0..98 {
            h.record(Duration::from_nanos(1700));
        }
        h.record(Duration::from_micros(3));
        h.record(Duration::from_micros(20));
        let (total, cdf) = h.cdf();
        assert_eq!(total, 100);
        assert_eq!(cdf, [(1, 98), (4, 99), (33, 100)]);
        assert_eq!(
            h.percentiles(&[50.0, 99.0, 99.9]),
            Some(vec![1.031, 4.127, 33.023])
        );
        h.reset();
        assert_eq!(h.percentiles(&[50.0]), None);
    }
}
