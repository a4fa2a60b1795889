//! `amber-bench compare`: the same `redis-benchmark` workloads against Amber
//! and redis-server in one run, alternating which goes first, several
//! rounds, medians; throughput and the server's CPU time per request.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::drivers::redis_benchmark::{self, RedisBenchmarkArgs};
use crate::experiment::server_proc::{is_redis_binary, Launch, ServerProc};
use crate::procfs;

/// Which workloads to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Suite {
    /// SET and GET at each pipeline depth (issue 2).
    Strings,
    /// The data-type commands of issue 4 at pipeline 16.
    Types,
}

/// Parameters of a comparison.
#[derive(Debug, Clone)]
pub struct CompareParams {
    /// Amber executable.
    pub amber_bin: PathBuf,
    /// Extra arguments for Amber.
    pub amber_args: Vec<String>,
    /// redis-server executable.
    pub redis_bin: PathBuf,
    /// redis-benchmark executable.
    pub redis_benchmark: PathBuf,
    /// Workload suite.
    pub suite: Suite,
    /// Rounds (each workload runs once per round on each server).
    pub rounds: usize,
    /// Requests per run (`-n`).
    pub requests: u64,
    /// Clients (`-c`).
    pub clients: usize,
    /// Value size (`-d`).
    pub data_size: usize,
    /// Key range (`-r`).
    pub keyspace: u64,
    /// Pipeline depths (`-P`).
    pub pipelines: Vec<usize>,
    /// Tests override (default: per suite).
    pub tests: Option<Vec<String>>,
    /// Write `compare.md` here too.
    pub out: Option<PathBuf>,
}

/// One measured run.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// Requests per second reported by redis-benchmark.
    pub rps: f64,
    /// Server CPU (user + system) per request, microseconds.
    pub cpu_us_per_req: f64,
}

/// All rounds of one workload on both servers.
#[derive(Debug, Clone)]
pub struct Workload {
    /// `SET -P 16` etc.
    pub name: String,
    /// Amber's runs.
    pub amber: Vec<Run>,
    /// Redis's runs.
    pub redis: Vec<Run>,
}

/// Median of a list (NaN if empty).
pub fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s.get(m).copied().unwrap_or(f64::NAN)
    } else {
        (s.get(m - 1).copied().unwrap_or(f64::NAN) + s.get(m).copied().unwrap_or(f64::NAN)) / 2.0
    }
}

fn default_tests(suite: Suite) -> Vec<String> {
    let t: &[&str] = match suite {
        Suite::Strings => &["set", "get"],
        Suite::Types => &[
            "lpush",
            "rpush",
            "lpop",
            "rpop",
            "sadd",
            "hset",
            "spop",
            "zadd",
            "zpopmin",
            "lrange_100",
            "mset",
        ],
    };
    t.iter().map(|s| s.to_string()).collect()
}

fn redis_args(dir: &Path) -> Vec<String> {
    vec![
        "--save".into(),
        String::new(),
        "--appendonly".into(),
        "no".into(),
        "--dir".into(),
        dir.display().to_string(),
    ]
}

/// Default extra arguments for Amber in `compare`: no persistence, arena and
/// data files in a temporary folder under /dev/shm.
pub fn default_amber_args(dir: &Path) -> Vec<String> {
    vec![
        "--save".into(),
        String::new(),
        "--dir".into(),
        dir.display().to_string(),
        "--pmem-path".into(),
        dir.join("amber.arena").display().to_string(),
        "--persistence".into(),
        "none".into(),
    ]
}

fn measure(server: &ServerProc, bin: &Path, args: &RedisBenchmarkArgs) -> Result<Run, String> {
    let before = procfs::cpu_seconds(server.pid).ok_or("server is gone")?;
    let timeout = Duration::from_secs(600);
    let res = redis_benchmark::run(bin, args, timeout)?;
    let after = procfs::cpu_seconds(server.pid).ok_or("server died during the run")?;
    let rps = res
        .first()
        .map(|r| r.rps)
        .ok_or("redis-benchmark printed no result")?;
    Ok(Run {
        rps,
        cpu_us_per_req: (after - before) / args.requests as f64 * 1e6,
    })
}

/// Runs the comparison and prints (and optionally writes) the table.
pub async fn run(p: &CompareParams) -> Result<Vec<Workload>, String> {
    let work = tempfile::Builder::new()
        .prefix("amber-bench-compare-")
        .tempdir_in(if Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        })
        .map_err(|e| format!("temp dir: {e}"))?;
    let amber_dir = work.path().join("amber");
    let redis_dir = work.path().join("redis");
    for d in [&amber_dir, &redis_dir] {
        std::fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
    }
    let amber_args = if is_redis_binary(&p.amber_bin) {
        redis_args(&amber_dir)
    } else if p.amber_args.is_empty() {
        default_amber_args(&amber_dir)
    } else {
        p.amber_args.clone()
    };
    let amber = ServerProc::start(
        &Launch {
            name: "amber".into(),
            bin: p.amber_bin.clone(),
            args: amber_args,
            cgroup_procs: None,
            log: work.path().join("amber.log"),
        },
        Duration::from_secs(15),
    )
    .await?;
    let redis = ServerProc::start(
        &Launch {
            name: "redis".into(),
            bin: p.redis_bin.clone(),
            args: redis_args(&redis_dir),
            cgroup_procs: None,
            log: work.path().join("redis.log"),
        },
        Duration::from_secs(15),
    )
    .await?;
    let tests = p.tests.clone().unwrap_or_else(|| default_tests(p.suite));
    let mut workloads: Vec<(String, usize, Workload)> = Vec::new();
    for &pl in &p.pipelines {
        for t in &tests {
            workloads.push((
                t.clone(),
                pl,
                Workload {
                    name: format!("{} -P {pl}", t.to_ascii_uppercase()),
                    amber: Vec::new(),
                    redis: Vec::new(),
                },
            ));
        }
    }
    let total = p.rounds * workloads.len() * 2;
    let mut done = 0;
    for round in 0..p.rounds {
        for (i, (test, pl, w)) in workloads.iter_mut().enumerate() {
            let args = |port| RedisBenchmarkArgs {
                port,
                tests: vec![test.clone()],
                requests: p.requests,
                clients: p.clients,
                pipeline: *pl,
                data_size: p.data_size,
                keyspace: Some(p.keyspace),
                threads: None,
            };
            let amber_first = (round + i) % 2 == 0;
            for which in 0..2 {
                let on_amber = (which == 0) == amber_first;
                let server = if on_amber { &amber } else { &redis };
                let run = measure(server, &p.redis_benchmark, &args(server.port)).map_err(|e| {
                    format!(
                        "{} on {}: {e}",
                        w.name,
                        if on_amber { "amber" } else { "redis" }
                    )
                })?;
                done += 1;
                eprintln!(
                    "[{done}/{total}] round {} {:<18} {:<6} {:>12.0} req/s  {:>6.2} µs CPU/req",
                    round + 1,
                    w.name,
                    if on_amber { "amber" } else { "redis" },
                    run.rps,
                    run.cpu_us_per_req
                );
                if on_amber {
                    w.amber.push(run);
                } else {
                    w.redis.push(run);
                }
            }
        }
    }
    amber.stop();
    redis.stop();
    let out: Vec<Workload> = workloads.into_iter().map(|(_, _, w)| w).collect();
    let table = render(p, &out);
    println!("{table}");
    if let Some(dir) = &p.out {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let path = dir.join("compare.md");
        std::fs::write(&path, &table).map_err(|e| format!("write {}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(out)
}

/// The Markdown table: medians, ratios, and every round.
pub fn render(p: &CompareParams, ws: &[Workload]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "redis-benchmark -n {} -c {} -d {} -r {}, {} rounds, alternating order; Amber: `{}`, Redis: `{}`; {}\n",
        p.requests,
        p.clients,
        p.data_size,
        p.keyspace,
        p.rounds,
        p.amber_bin.display(),
        p.redis_bin.display(),
        procfs::machine_summary()
    );
    let _ = writeln!(
        s,
        "| workload | Amber req/s | Redis req/s | Amber/Redis | Amber CPU µs/req | Redis CPU µs/req | CPU Amber/Redis | Amber rounds | Redis rounds |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---|---|");
    for w in ws {
        let ar: Vec<f64> = w.amber.iter().map(|r| r.rps).collect();
        let rr: Vec<f64> = w.redis.iter().map(|r| r.rps).collect();
        let ac = median(&w.amber.iter().map(|r| r.cpu_us_per_req).collect::<Vec<_>>());
        let rc = median(&w.redis.iter().map(|r| r.cpu_us_per_req).collect::<Vec<_>>());
        let (am, rm) = (median(&ar), median(&rr));
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            s,
            "| {} | {am:.0} | {rm:.0} | {:.2}x | {ac:.2} | {rc:.2} | {:.2}x | {} | {} |",
            w.name,
            am / rm,
            ac / rc,
            list(&ar),
            list(&rr)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
