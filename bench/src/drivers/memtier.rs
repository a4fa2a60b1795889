//! Driver for `memtier_benchmark` (used when installed; Debian does not
//! package it). Parses the `Totals` row of its summary table.

use std::path::Path;
use std::time::Duration;

use super::run_captured;

/// One `memtier_benchmark` invocation (Redis protocol, random keys).
#[derive(Debug, Clone)]
pub struct MemtierArgs {
    /// Server port on 127.0.0.1.
    pub port: u16,
    /// Client threads (`-t`).
    pub threads: usize,
    /// Clients per thread (`-c`).
    pub clients: usize,
    /// Pipeline depth.
    pub pipeline: usize,
    /// Value size in bytes (`-d`).
    pub data_size: usize,
    /// `SET:GET` ratio, e.g. `1:10`.
    pub ratio: String,
    /// Keys are drawn from `1..=key_maximum`.
    pub key_maximum: u64,
    /// Seconds to run (`--test-time`).
    pub test_time_secs: u64,
}

impl MemtierArgs {
    /// The command-line arguments.
    pub fn to_args(&self) -> Vec<String> {
        vec![
            "-s".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.port.to_string(),
            "--protocol=redis".into(),
            "-t".into(),
            self.threads.to_string(),
            "-c".into(),
            self.clients.to_string(),
            format!("--pipeline={}", self.pipeline),
            "-d".into(),
            self.data_size.to_string(),
            format!("--ratio={}", self.ratio),
            "--key-pattern=R:R".into(),
            format!("--key-maximum={}", self.key_maximum),
            format!("--test-time={}", self.test_time_secs),
            "--hide-histogram".into(),
        ]
    }
}

/// One row of memtier's summary (`Sets`, `Gets`, `Totals`).
#[derive(Debug, Clone, PartialEq)]
pub struct MemtierRow {
    /// Row name.
    pub kind: String,
    /// Operations per second.
    pub ops_per_sec: f64,
    /// Hits per second (GETs that found a value).
    pub hits_per_sec: f64,
    /// Misses per second.
    pub misses_per_sec: f64,
    /// Mean latency, ms.
    pub avg_ms: f64,
    /// Median latency, ms (memtier 1.3+).
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
}

/// Parses memtier's summary table: the header row starting `Type` names the
/// columns, so older versions (without percentiles) parse too (as NaN).
pub fn parse_summary(text: &str) -> Result<Vec<MemtierRow>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let Some(hpos) = lines
        .iter()
        .rposition(|l| l.split_whitespace().next() == Some("Type"))
    else {
        return Err("no summary table in memtier output".into());
    };
    // Column names are separated by runs of spaces; names hold single spaces.
    let header: Vec<String> = lines
        .get(hpos)
        .copied()
        .unwrap_or("")
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let col = |want: &str| header.iter().position(|h| h == want);
    let mut rows = Vec::new();
    for line in lines.iter().skip(hpos + 1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let Some(&kind) = f.first() else { continue };
        if kind.starts_with('-') {
            continue;
        }
        if !matches!(kind, "Sets" | "Gets" | "Waits" | "Totals") {
            break;
        }
        let num = |c: Option<usize>| {
            c.and_then(|i| f.get(i))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        rows.push(MemtierRow {
            kind: kind.to_string(),
            ops_per_sec: num(col("ops/sec")),
            hits_per_sec: num(col("hits/sec")),
            misses_per_sec: num(col("misses/sec")),
            avg_ms: num(col("avg. latency")),
            p50_ms: num(col("p50 latency")),
            p99_ms: num(col("p99 latency")),
            p999_ms: num(col("p99.9 latency")),
        });
    }
    if rows.iter().any(|r| r.kind == "Totals") {
        Ok(rows)
    } else {
        Err("memtier summary has no Totals row".into())
    }
}

/// Runs `memtier_benchmark` and parses its summary.
pub fn run(bin: &Path, args: &MemtierArgs, timeout: Duration) -> Result<Vec<MemtierRow>, String> {
    let out = run_captured(bin, &args.to_args(), timeout)?;
    parse_summary(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
ALL STATS
============================================================================================================================
Type         Ops/sec     Hits/sec   Misses/sec    Avg. Latency     p50 Latency     p99 Latency   p99.9 Latency       KB/sec 
----------------------------------------------------------------------------------------------------------------------------
Sets        12007.52          ---          ---         1.52044         1.43100         3.61500         9.08700      1295.54 
Gets       120069.30     96000.10     24069.20         1.50731         1.42300         3.56700         8.95900      9814.81 
Waits           0.00          ---          ---             ---             ---             ---             ---          --- 
Totals     132076.82     96000.10     24069.20         1.50850         1.42300         3.58300         8.95900     11110.35 
";

    #[test]
    fn parses_totals() {
        let rows = parse_summary(SAMPLE).unwrap();
        let t = rows.iter().find(|r| r.kind == "Totals").unwrap();
        assert_eq!(t.ops_per_sec, 132076.82);
        assert_eq!(t.hits_per_sec, 96000.10);
        assert_eq!(t.p99_ms, 3.583);
        assert_eq!(t.p999_ms, 8.959);
        let s = rows.iter().find(|r| r.kind == "Sets").unwrap();
        assert!(s.hits_per_sec.is_nan());
        assert!(parse_summary("nothing").is_err());
    }
}
