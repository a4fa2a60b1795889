//! `amber-bench calibrate`: shows the load generator is not the bottleneck
//! by running the same workload with `redis-benchmark` and with our
//! generator against the same redis-server, and reporting both throughputs
//! and the generator's own CPU time per request.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::drivers::redis_benchmark::{self, RedisBenchmarkArgs};
use crate::experiment::server_proc::{Launch, ServerProc};
use crate::load::keydist::DistSpec;
use crate::load::{run_phase, Bitmap, KeySpace, LoadSpec, Phase, Window};
use crate::procfs;

/// Parameters of a calibration run.
#[derive(Debug, Clone)]
pub struct CalibrateParams {
    /// Server to start (a redis-server by default).
    pub server_bin: PathBuf,
    /// redis-benchmark executable.
    pub redis_benchmark: PathBuf,
    /// Requests per run.
    pub requests: u64,
    /// Connections / clients.
    pub clients: usize,
    /// Pipeline depths to try.
    pub pipelines: Vec<usize>,
    /// Value size.
    pub data_size: usize,
    /// Key range.
    pub keyspace: u64,
    /// Rounds (median reported).
    pub rounds: usize,
}

/// One row: tool, workload, throughput, CPU per request.
#[derive(Debug, Clone)]
pub struct CalRow {
    /// `SET -P 16`.
    pub workload: String,
    /// redis-benchmark req/s (median).
    pub redis_benchmark_rps: f64,
    /// amber-bench req/s (median).
    pub generator_rps: f64,
    /// Generator CPU per request, µs (median).
    pub generator_cpu_us: f64,
    /// Server CPU per request under redis-benchmark, µs.
    pub server_cpu_us_rb: f64,
    /// Server CPU per request under amber-bench, µs.
    pub server_cpu_us_gen: f64,
}

async fn generator_run(
    server: &ServerProc,
    p: &CalibrateParams,
    pipeline: usize,
    set: bool,
) -> Result<(f64, f64, f64), String> {
    let spec = LoadSpec {
        addr: server.addr(),
        connections: p.clients,
        pipeline,
        keys: KeySpace::new("key:", p.keyspace),
        value_size: p.data_size,
        request_timeout: Duration::from_secs(10),
        phase_timeout: Duration::from_secs(300),
        progress: false,
        seed: 42,
    };
    let written = Arc::new(Bitmap::new(p.keyspace));
    let phase = Phase::Mixed {
        dist: DistSpec::Uniform,
        set_fraction: if set { 1.0 } else { 0.0 },
        warmup: Duration::ZERO,
        window: Window::Requests(p.requests),
    };
    let me = std::process::id();
    let c0 = procfs::cpu_seconds(me).unwrap_or(0.0);
    let s0 = procfs::cpu_seconds(server.pid).unwrap_or(0.0);
    let r = run_phase(&spec, &phase, &written, "calibrate").await?;
    let c1 = procfs::cpu_seconds(me).unwrap_or(0.0);
    let s1 = procfs::cpu_seconds(server.pid).unwrap_or(0.0);
    if r.stats.errors > 0 {
        return Err(format!(
            "generator saw {} errors: {}",
            r.stats.errors,
            r.stats.first_error.unwrap_or_default()
        ));
    }
    let n = (r.stats.ok.max(1)) as f64;
    Ok((r.ops_per_sec(), (c1 - c0) / n * 1e6, (s1 - s0) / n * 1e6))
}

/// Runs the calibration and returns a Markdown table.
pub async fn run(p: &CalibrateParams) -> Result<(Vec<CalRow>, String), String> {
    let work = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let server = ServerProc::start(
        &Launch {
            name: "calibrate-server".into(),
            bin: p.server_bin.clone(),
            args: vec![
                "--save".into(),
                String::new(),
                "--appendonly".into(),
                "no".into(),
                "--dir".into(),
                work.path().display().to_string(),
            ],
            cgroup_procs: None,
            log: work.path().join("server.log"),
        },
        Duration::from_secs(15),
    )
    .await?;
    let mut rows = Vec::new();
    for &pl in &p.pipelines {
        for (test, set) in [("set", true), ("get", false)] {
            let (mut rb, mut gen, mut gcpu, mut s_rb, mut s_gen) =
                (vec![], vec![], vec![], vec![], vec![]);
            for round in 0..p.rounds {
                // Alternate which tool goes first.
                for which in 0..2 {
                    if (which == 0) == (round % 2 == 0) {
                        let s0 = procfs::cpu_seconds(server.pid).unwrap_or(0.0);
                        let res = redis_benchmark::run(
                            &p.redis_benchmark,
                            &RedisBenchmarkArgs {
                                port: server.port,
                                tests: vec![test.into()],
                                requests: p.requests,
                                clients: p.clients,
                                pipeline: pl,
                                data_size: p.data_size,
                                keyspace: Some(p.keyspace),
                                threads: None,
                            },
                            Duration::from_secs(300),
                        )?;
                        let s1 = procfs::cpu_seconds(server.pid).unwrap_or(0.0);
                        rb.push(res.first().map_or(f64::NAN, |r| r.rps));
                        s_rb.push((s1 - s0) / p.requests as f64 * 1e6);
                    } else {
                        let (rps, cpu, scpu) = generator_run(&server, p, pl, set).await?;
                        gen.push(rps);
                        gcpu.push(cpu);
                        s_gen.push(scpu);
                    }
                }
            }
            let m = crate::compare::median;
            let row = CalRow {
                workload: format!("{} -P {pl}", test.to_ascii_uppercase()),
                redis_benchmark_rps: m(&rb),
                generator_rps: m(&gen),
                generator_cpu_us: m(&gcpu),
                server_cpu_us_rb: m(&s_rb),
                server_cpu_us_gen: m(&s_gen),
            };
            eprintln!(
                "{}: redis-benchmark {:.0} req/s, amber-bench {:.0} req/s",
                row.workload, row.redis_benchmark_rps, row.generator_rps
            );
            rows.push(row);
        }
    }
    server.stop();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Same redis-server ({}), -n {} -c {} -d {} -r {}, uniform keys, {} rounds (median), alternating order; {}\n",
        p.server_bin.display(),
        p.requests,
        p.clients,
        p.data_size,
        p.keyspace,
        p.rounds,
        procfs::machine_summary()
    );
    let _ = writeln!(s, "| workload | redis-benchmark req/s | amber-bench req/s | amber-bench/redis-benchmark | amber-bench client CPU µs/req | server CPU µs/req (redis-benchmark) | server CPU µs/req (amber-bench) |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.0} | {:.2}x | {:.2} | {:.2} | {:.2} |",
            r.workload,
            r.redis_benchmark_rps,
            r.generator_rps,
            r.generator_rps / r.redis_benchmark_rps,
            r.generator_cpu_us,
            r.server_cpu_us_rb,
            r.server_cpu_us_gen
        );
    }
    Ok((rows, s))
}

/// Writes the table to `dir/calibrate.md`.
pub fn write(dir: &Path, table: &str) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    std::fs::write(dir.join("calibrate.md"), table).map_err(|e| format!("write: {e}"))
}
