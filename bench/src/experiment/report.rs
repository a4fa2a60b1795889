//! The experiment's results: one row per (configuration, ratio, key
//! distribution), written as CSV and as a Markdown table.

use std::fmt::Write as _;
use std::path::Path;

use super::config::{ConfigKind, Params};
use crate::units::human;

/// One measured (or skipped) point.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Configuration name.
    pub config: String,
    /// Data-set size / DRAM budget.
    pub ratio: f64,
    /// Keys loaded.
    pub keys: u64,
    /// Data-set bytes (keys × value size).
    pub dataset_bytes: u64,
    /// Key distribution label.
    pub dist: String,
    /// `ok`, `oom-killed`, `server-died`, `timeout`, `error`, `skipped`.
    pub status: String,
    /// Successful operations per second in the measured window.
    pub ops_per_sec: f64,
    /// GETs answered.
    pub gets: u64,
    /// SETs answered `+OK`.
    pub sets: u64,
    /// GET hit rate (hits / GETs), empty without GETs.
    pub hit_rate: Option<f64>,
    /// Keys written successfully (load + runs).
    pub written_keys: u64,
    /// Written keys missing at the end (verify pass); all of them if the server died.
    pub lost_keys: u64,
    /// GETs in the window that missed a written key.
    pub lost_reads: u64,
    /// SETs refused during the load phase.
    pub load_errors: u64,
    /// Error replies and unanswered requests in the window.
    pub errors: u64,
    /// `-OOM` replies in load + window.
    pub oom_errors: u64,
    /// Latency percentiles of the window, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Load phase throughput, SETs/s.
    pub load_ops_per_sec: f64,
    /// RssAnon at the end of the point (or the last sample before death).
    pub rss_anon: u64,
    /// Highest RssAnon sampled during the point.
    pub rss_anon_peak: u64,
    /// RssFile at the end.
    pub rss_file: u64,
    /// RssShmem at the end.
    pub rss_shmem: u64,
    /// VmSwap at the end.
    pub vm_swap: u64,
    /// `INFO tiering` fields, when reported.
    pub arena_bytes_used: Option<u64>,
    /// Hot keys.
    pub hot_keys: Option<u64>,
    /// Cold keys.
    pub cold_keys: Option<u64>,
    /// DRAM bytes accounted by the hot tier.
    pub dram_bytes: Option<u64>,
    /// Demotions so far.
    pub demotions: Option<u64>,
    /// Promotions so far.
    pub promotions: Option<u64>,
    /// `INFO memory used_memory`.
    pub used_memory: Option<u64>,
    /// `INFO stats evicted_keys`.
    pub evicted_keys: Option<u64>,
    /// OOM kills in the cgroup.
    pub oom_kills: u64,
    /// Why skipped, first error, stand-in notes.
    pub note: String,
}

/// CSV column names, in order.
pub const CSV_HEADER: &[&str] = &[
    "config",
    "ratio",
    "keys",
    "dataset_bytes",
    "dist",
    "status",
    "ops_per_sec",
    "gets",
    "sets",
    "hit_rate",
    "written_keys",
    "lost_keys",
    "lost_reads",
    "load_errors",
    "errors",
    "oom_errors",
    "p50_ms",
    "p99_ms",
    "p999_ms",
    "load_ops_per_sec",
    "rss_anon",
    "rss_anon_peak",
    "rss_file",
    "rss_shmem",
    "vm_swap",
    "arena_bytes_used",
    "hot_keys",
    "cold_keys",
    "dram_bytes",
    "demotions",
    "promotions",
    "used_memory",
    "evicted_keys",
    "oom_kills",
    "note",
];

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn csv_quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\"").replace('\n', " "))
    } else {
        s.to_string()
    }
}

impl Row {
    /// The row's CSV fields, in [`CSV_HEADER`] order.
    pub fn csv_fields(&self) -> Vec<String> {
        vec![
            self.config.clone(),
            format!("{}", self.ratio),
            self.keys.to_string(),
            self.dataset_bytes.to_string(),
            self.dist.clone(),
            self.status.clone(),
            format!("{:.1}", self.ops_per_sec),
            self.gets.to_string(),
            self.sets.to_string(),
            opt(self.hit_rate.map(|h| format!("{h:.4}"))),
            self.written_keys.to_string(),
            self.lost_keys.to_string(),
            self.lost_reads.to_string(),
            self.load_errors.to_string(),
            self.errors.to_string(),
            self.oom_errors.to_string(),
            format!("{:.3}", self.p50_ms),
            format!("{:.3}", self.p99_ms),
            format!("{:.3}", self.p999_ms),
            format!("{:.1}", self.load_ops_per_sec),
            self.rss_anon.to_string(),
            self.rss_anon_peak.to_string(),
            self.rss_file.to_string(),
            self.rss_shmem.to_string(),
            self.vm_swap.to_string(),
            opt(self.arena_bytes_used),
            opt(self.hot_keys),
            opt(self.cold_keys),
            opt(self.dram_bytes),
            opt(self.demotions),
            opt(self.promotions),
            opt(self.used_memory),
            opt(self.evicted_keys),
            self.oom_kills.to_string(),
            self.note.clone(),
        ]
    }

    /// Whether the point was measured (not skipped).
    pub fn ran(&self) -> bool {
        self.status != "skipped"
    }
}

/// Writes the rows as CSV.
pub fn write_csv(path: &Path, rows: &[Row]) -> Result<(), String> {
    let mut s = CSV_HEADER.join(",");
    s.push('\n');
    for r in rows {
        let fields: Vec<String> = r.csv_fields().iter().map(|f| csv_quote(f)).collect();
        s.push_str(&fields.join(","));
        s.push('\n');
    }
    std::fs::write(path, s).map_err(|e| format!("write {}: {e}", path.display()))
}

/// Reads a CSV written by [`write_csv`] back as header + records (for tests and re-charting).
pub fn read_csv(path: &Path) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let mut lines = text.lines();
    let header = lines
        .next()
        .ok_or("empty CSV")?
        .split(',')
        .map(String::from)
        .collect();
    let records = lines.map(split_csv_line).collect();
    Ok((header, records))
}

fn split_csv_line(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Writes the Markdown report: parameters, configurations, skipped lines, table.
pub fn write_markdown(
    path: &Path,
    params: &Params,
    machine: &str,
    rows: &[Row],
    charts: &[String],
) -> Result<(), String> {
    let mut s = String::new();
    let _ = writeln!(s, "# Out-of-DRAM benchmark\n");
    let _ = writeln!(s, "- Machine: {machine}");
    let _ = writeln!(
        s,
        "- DRAM budget {}, cgroup slack {}, values {} B, SET:GET {}, {} connections x pipeline {}, warm-up {:?}, window {:?} per distribution, preset `{}`",
        human(params.budget),
        human(params.slack),
        params.value_size,
        params.ratio_label,
        params.connections,
        params.pipeline,
        params.warmup,
        params.window,
        params.preset
    );
    let _ = writeln!(s, "- Amber binary: `{}`", params.amber_bin.display());
    let _ = writeln!(s, "- Redis binary: `{}`\n", params.redis_bin.display());
    let _ = writeln!(s, "## Configurations\n");
    for c in &params.configs {
        let skipped = rows
            .iter()
            .find(|r| r.config == c.name() && !r.ran())
            .map(|r| format!(" — **skipped**: {}", r.note))
            .unwrap_or_default();
        let _ = writeln!(s, "- `{}`: {}{skipped}", c.name(), c.describe());
    }
    let notes: Vec<&Row> = rows
        .iter()
        .filter(|r| r.ran() && !r.note.is_empty())
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(s, "\n## Notes\n");
        let mut seen = std::collections::BTreeSet::new();
        for r in notes {
            if seen.insert((r.config.clone(), r.note.clone())) {
                let _ = writeln!(s, "- `{}` x{}: {}", r.config, r.ratio, r.note);
            }
        }
    }
    if !charts.is_empty() {
        let _ = writeln!(s, "\n## Charts\n");
        for c in charts {
            let _ = writeln!(s, "![{c}]({c})\n");
        }
    }
    let _ = writeln!(s, "\n## Results\n");
    let _ = writeln!(
        s,
        "| config | data/DRAM | keys | dist | status | ops/s | hit rate | lost keys | errors | p50 ms | p99 ms | p99.9 ms | RssAnon | RssAnon peak | RssFile+Shmem | arena used | hot/cold keys | OOM kills |"
    );
    let _ = writeln!(s, "|{}", "---|".repeat(18));
    for r in rows.iter().filter(|r| r.ran()) {
        let hc = match (r.hot_keys, r.cold_keys) {
            (Some(h), Some(c)) => format!("{h}/{c}"),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "| {} | {}x | {} | {} | {} | {:.0} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {} | {} | {} | {} | {} | {} |",
            r.config,
            r.ratio,
            r.keys,
            r.dist,
            r.status,
            r.ops_per_sec,
            r.hit_rate.map(|h| format!("{:.1}%", h * 100.0)).unwrap_or_default(),
            r.lost_keys,
            r.errors + r.load_errors,
            r.p50_ms,
            r.p99_ms,
            r.p999_ms,
            human(r.rss_anon),
            human(r.rss_anon_peak),
            human(r.rss_file + r.rss_shmem),
            r.arena_bytes_used.map(human).unwrap_or_default(),
            hc,
            r.oom_kills
        );
    }
    std::fs::write(path, s).map_err(|e| format!("write {}: {e}", path.display()))
}

/// The configurations present in `rows`, in chart order.
pub fn configs_in(rows: &[Row]) -> Vec<ConfigKind> {
    ConfigKind::ALL
        .into_iter()
        .filter(|c| rows.iter().any(|r| r.config == c.name()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trips_notes_with_commas() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.csv");
        let row = Row {
            config: "redis-lru".into(),
            note: "evicted, \"silently\"".into(),
            ..Row::default()
        };
        write_csv(&p, &[row]).unwrap();
        let (h, recs) = read_csv(&p).unwrap();
        assert_eq!(h.len(), CSV_HEADER.len());
        assert_eq!(recs[0].len(), CSV_HEADER.len());
        assert_eq!(recs[0][h.len() - 1], "evicted, \"silently\"");
        assert_eq!(Row::default().csv_fields().len(), CSV_HEADER.len());
    }
}
