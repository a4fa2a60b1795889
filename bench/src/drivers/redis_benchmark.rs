//! Driver for `redis-benchmark` (Debian package `redis-tools`), using its `--csv` output.

use std::path::Path;
use std::time::Duration;

use super::run_captured;

/// One `redis-benchmark` invocation.
#[derive(Debug, Clone)]
pub struct RedisBenchmarkArgs {
    /// Server port on 127.0.0.1.
    pub port: u16,
    /// Tests (`-t`), e.g. `set`, `get`, `lrange_100`.
    pub tests: Vec<String>,
    /// Requests per test (`-n`).
    pub requests: u64,
    /// Parallel clients (`-c`).
    pub clients: usize,
    /// Pipeline depth (`-P`).
    pub pipeline: usize,
    /// Value size in bytes (`-d`).
    pub data_size: usize,
    /// Random keys over this range (`-r`).
    pub keyspace: Option<u64>,
    /// Client threads (`--threads`), if more than one.
    pub threads: Option<usize>,
}

impl RedisBenchmarkArgs {
    /// The command-line arguments.
    pub fn to_args(&self) -> Vec<String> {
        let mut a = vec![
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.port.to_string(),
            "-t".into(),
            self.tests.join(","),
            "-n".into(),
            self.requests.to_string(),
            "-c".into(),
            self.clients.to_string(),
            "-P".into(),
            self.pipeline.to_string(),
            "-d".into(),
            self.data_size.to_string(),
            "--csv".into(),
        ];
        if let Some(r) = self.keyspace {
            a.push("-r".into());
            a.push(r.to_string());
        }
        if let Some(t) = self.threads.filter(|t| *t > 1) {
            a.push("--threads".into());
            a.push(t.to_string());
        }
        a
    }
}

/// One line of `redis-benchmark --csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResult {
    /// Test name as printed (`SET`, `LRANGE_100 (first 100 elements)`).
    pub test: String,
    /// Requests per second.
    pub rps: f64,
    /// Mean latency, ms.
    pub avg_ms: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
}

impl TestResult {
    /// Short lowercase name: the first word (`set`, `lrange_100`, `lpush`).
    pub fn key(&self) -> String {
        self.test
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
    }
}

/// Parses `redis-benchmark --csv` output (header line, then one line per test).
pub fn parse_csv(text: &str) -> Result<Vec<TestResult>, String> {
    let mut lines = text.lines().filter(|l| l.starts_with('"'));
    let header: Vec<String> = match lines.next() {
        Some(h) => split_csv(h),
        None => return Err(format!("no CSV in redis-benchmark output: {text:?}")),
    };
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(t), Some(rps)) = (col("test"), col("rps")) else {
        return Err(format!("unexpected redis-benchmark CSV header {header:?}"));
    };
    let mut out = Vec::new();
    for line in lines {
        let f = split_csv(line);
        let num = |c: Option<usize>| {
            c.and_then(|i| f.get(i))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        out.push(TestResult {
            test: f.get(t).cloned().unwrap_or_default(),
            rps: num(Some(rps)),
            avg_ms: num(col("avg_latency_ms")),
            p50_ms: num(col("p50_latency_ms")),
            p95_ms: num(col("p95_latency_ms")),
            p99_ms: num(col("p99_latency_ms")),
            max_ms: num(col("max_latency_ms")),
        });
    }
    Ok(out)
}

fn split_csv(line: &str) -> Vec<String> {
    line.split("\",\"")
        .map(|f| f.trim().trim_matches('"').to_string())
        .collect()
}

/// Runs `redis-benchmark` and parses its results.
pub fn run(
    bin: &Path,
    args: &RedisBenchmarkArgs,
    timeout: Duration,
) -> Result<Vec<TestResult>, String> {
    let out = run_captured(bin, &args.to_args(), timeout)?;
    parse_csv(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_redis_benchmark_7_csv() {
        let text = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
\"SET\",\"392156.88\",\"1.734\",\"0.336\",\"1.599\",\"2.855\",\"5.215\",\"5.359\"\n\
\"LPUSH (needed to benchmark LRANGE)\",\"392156.88\",\"1.834\",\"0.368\",\"1.615\",\"3.671\",\"6.423\",\"6.551\"\n";
        let r = parse_csv(text).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].key(), "set");
        assert_eq!(r[0].rps, 392156.88);
        assert_eq!(r[0].p99_ms, 5.215);
        assert_eq!(r[1].key(), "lpush");
        assert!(parse_csv("garbage").is_err());
    }
}
