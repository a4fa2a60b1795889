//! `amber-bench`: see `bench/README.md`.

#![deny(clippy::unwrap_used)]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use amber_bench::cli::{Cli, Command, DriveArgs, LoadArgs, OutOfDramArgs, Tool};
use amber_bench::experiment::config::{parse_set_get_ratio, ConfigKind, Params};
use amber_bench::experiment::server_proc::{Launch, ServerProc};
use amber_bench::load::keydist::DistSpec;
use amber_bench::load::{self, run_phase, Bitmap, KeySpace, LoadSpec, Phase, Window};
use amber_bench::units::MIB;
use amber_bench::{
    calibrate, cleanup, compare, default_amber_bin, drivers, experiment, resolve_bin,
};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    cleanup::install_signal_handler();
    let _release = cleanup::ReleaseOnDrop;
    let threads = match &cli.command {
        Command::Load(a) => a.threads,
        Command::OutOfDram(a) => a.threads,
        _ => 1,
    };
    let rt = match load::runtime(threads) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("amber-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Load(a) => cmd_load(a).await,
            Command::OutOfDram(a) => cmd_out_of_dram(a).await,
            Command::Compare(a) => cmd_compare(a).await,
            Command::Calibrate(a) => cmd_calibrate(a).await,
            Command::Drive(a) => cmd_drive(a),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("amber-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn cmd_load(a: LoadArgs) -> Result<(), String> {
    let set_fraction = parse_set_get_ratio(&a.ratio)?;
    let work = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let spawned = match &a.spawn {
        Some(bin) => Some(
            ServerProc::start(
                &Launch {
                    name: "server".into(),
                    bin: resolve_bin(bin),
                    args: vec![
                        "--save".into(),
                        String::new(),
                        "--dir".into(),
                        work.path().display().to_string(),
                    ],
                    cgroup_procs: None,
                    log: work.path().join("server.log"),
                },
                Duration::from_secs(15),
            )
            .await?,
        ),
        None => None,
    };
    let port = spawned.as_ref().map_or(a.port, |s| s.port);
    let spec = LoadSpec {
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        connections: a.connections.max(1),
        pipeline: a.pipeline.max(1),
        keys: KeySpace::new(&a.key_prefix, a.keys),
        value_size: usize::try_from(a.value_size).map_err(|_| "value size too large")?,
        request_timeout: Duration::from_secs(10),
        phase_timeout: a.warmup + a.duration + Duration::from_secs(3600),
        progress: !a.no_progress,
        seed: a.seed,
    };
    let written = Arc::new(Bitmap::new(a.keys));
    let mut out = serde_json::Map::new();
    if a.populate {
        let r = run_phase(&spec, &Phase::Populate, &written, "populate").await?;
        eprintln!(
            "populate: {} keys in {:.1} s ({:.0} SET/s), {} errors",
            r.stats.sets,
            r.elapsed.as_secs_f64(),
            r.ops_per_sec(),
            r.stats.errors
        );
        out.insert("populate_ops_per_sec".into(), r.ops_per_sec().into());
    }
    let window = a
        .requests
        .map_or(Window::Time(a.duration), Window::Requests);
    let phase = Phase::Mixed {
        dist: a.dist,
        set_fraction,
        warmup: if a.requests.is_some() {
            Duration::ZERO
        } else {
            a.warmup
        },
        window,
    };
    let r = run_phase(&spec, &phase, &written, &a.dist.label()).await?;
    let s = &r.stats;
    println!(
        "{} {} keys, {} conns x P{}, SET:GET {}: {:.0} ops/s over {:.2} s | GET {} (hits {}, misses {}, lost {}) SET {} | errors {} | p50 {:.3} ms p99 {:.3} ms p99.9 {:.3} ms",
        a.dist.label(),
        a.keys,
        spec.connections,
        spec.pipeline,
        a.ratio,
        r.ops_per_sec(),
        r.elapsed.as_secs_f64(),
        s.gets,
        s.hits,
        s.misses,
        s.lost_reads,
        s.sets,
        s.errors,
        s.latency_ms(0.5),
        s.latency_ms(0.99),
        s.latency_ms(0.999)
    );
    if let Some(e) = &s.first_error {
        eprintln!("first error: {e}");
    }
    for (k, v) in [
        ("ops_per_sec", r.ops_per_sec()),
        ("p50_ms", s.latency_ms(0.5)),
        ("p99_ms", s.latency_ms(0.99)),
        ("p999_ms", s.latency_ms(0.999)),
    ] {
        out.insert(k.into(), v.into());
    }
    for (k, v) in [
        ("gets", s.gets),
        ("sets", s.sets),
        ("hits", s.hits),
        ("misses", s.misses),
        ("lost_reads", s.lost_reads),
        ("errors", s.errors),
    ] {
        out.insert(k.into(), v.into());
    }
    if a.verify {
        let v = run_phase(&spec, &Phase::Verify, &written, "verify").await?;
        println!(
            "verify: {} written keys checked, {} lost",
            v.stats.verified, v.stats.lost_keys
        );
        out.insert("lost_keys".into(), v.stats.lost_keys.into());
    }
    if a.json {
        println!("{}", serde_json::Value::Object(out));
    }
    if let Some(s) = spawned {
        s.stop();
    }
    Ok(())
}

async fn cmd_out_of_dram(a: OutOfDramArgs) -> Result<(), String> {
    let q = a.quick;
    let budget = a.budget.unwrap_or(if q { 16 * MIB } else { 64 * MIB });
    let ratios = a.ratios.clone().unwrap_or_else(|| {
        if q {
            vec![0.5, 2.0, 8.0]
        } else {
            vec![0.25, 0.5, 1.0, 1.5, 2.0, 4.0, 8.0]
        }
    });
    if ratios.is_empty() || ratios.iter().any(|r| !(*r > 0.0 && r.is_finite())) {
        return Err("ratios must be positive numbers".into());
    }
    let dists = a
        .dists
        .clone()
        .unwrap_or_else(|| vec![DistSpec::Uniform, DistSpec::Zipf(DistSpec::DEFAULT_THETA)]);
    let preset = if q {
        "quick"
    } else if a.budget.is_some() || a.ratios.is_some() || a.window.is_some() {
        "custom"
    } else {
        "full"
    };
    let params = Params {
        budget,
        slack: a.slack.unwrap_or((budget / 2).max(32 * MIB)),
        value_size: usize::try_from(a.value_size.unwrap_or(1024))
            .map_err(|_| "value size too large")?,
        ratios,
        configs: a.configs.clone().unwrap_or_else(ConfigKind::defaults),
        dists,
        set_fraction: parse_set_get_ratio(&a.ratio)?,
        ratio_label: a.ratio.clone(),
        warmup: a
            .warmup
            .unwrap_or(Duration::from_millis(if q { 300 } else { 1000 })),
        window: a
            .window
            .unwrap_or(Duration::from_secs(if q { 1 } else { 5 })),
        connections: a.connections.max(1),
        pipeline: a.pipeline.max(1),
        threads: a.threads,
        key_prefix: a.key_prefix.clone(),
        amber_bin: a
            .amber_bin
            .as_deref()
            .map(resolve_bin)
            .unwrap_or_else(default_amber_bin),
        redis_bin: resolve_bin(&a.redis_bin),
        pmem_dir: a.pmem_dir.clone(),
        disk_dir: a.disk_dir.clone(),
        swap_dir: a.swap_dir.clone(),
        out: a.out.clone().unwrap_or_else(experiment::default_out_dir),
        phase_timeout: a
            .phase_timeout
            .unwrap_or(Duration::from_secs(if q { 30 } else { 180 })),
        request_timeout: Duration::from_secs(5),
        progress: !a.no_progress,
        seed: a.seed,
        preset: preset.into(),
    };
    let start = std::time::Instant::now();
    let rows = experiment::run(&params).await?;
    let ran = rows.iter().filter(|r| r.ran()).count();
    eprintln!(
        "out-of-dram: {ran} measured rows, {} skipped, in {:.0} s; results in {}",
        rows.len() - ran,
        start.elapsed().as_secs_f64(),
        params.out.display()
    );
    Ok(())
}

async fn cmd_compare(a: amber_bench::cli::CompareArgs) -> Result<(), String> {
    let types = a.suite == compare::Suite::Types;
    let p = compare::CompareParams {
        amber_bin: a
            .amber_bin
            .as_deref()
            .map(resolve_bin)
            .unwrap_or_else(default_amber_bin),
        amber_args: a.amber_args,
        redis_bin: resolve_bin(&a.redis_bin),
        redis_benchmark: resolve_bin(&a.redis_benchmark),
        suite: a.suite,
        rounds: a.rounds.max(1),
        requests: a.requests.unwrap_or(1_000_000),
        clients: a.clients,
        data_size: a.data_size,
        keyspace: a
            .keyspace
            .unwrap_or(if types { 100_000 } else { 1_000_000 }),
        pipelines: a
            .pipelines
            .unwrap_or_else(|| if types { vec![16] } else { vec![1, 16] }),
        tests: a.tests,
        out: a.out,
    };
    if !p.amber_bin.is_file() {
        return Err(format!(
            "no Amber binary at {} (build it: cargo build --release -p amber-server, or pass --amber-bin)",
            p.amber_bin.display()
        ));
    }
    compare::run(&p).await.map(|_| ())
}

async fn cmd_calibrate(a: amber_bench::cli::CalibrateArgs) -> Result<(), String> {
    let p = calibrate::CalibrateParams {
        server_bin: resolve_bin(&a.server_bin),
        redis_benchmark: resolve_bin(&a.redis_benchmark),
        requests: a.requests,
        clients: a.clients,
        pipelines: a.pipelines,
        data_size: a.data_size,
        keyspace: a.keyspace,
        rounds: a.rounds.max(1),
    };
    let (_, table) = calibrate::run(&p).await?;
    println!("{table}");
    if let Some(dir) = a.out {
        calibrate::write(&dir, &table)?;
    }
    Ok(())
}

fn cmd_drive(a: DriveArgs) -> Result<(), String> {
    let timeout = Duration::from_secs(3600);
    match a.tool {
        Tool::RedisBenchmark => {
            let bin = drivers::find_executable("redis-benchmark")
                .ok_or("redis-benchmark is not installed (Debian: apt-get install redis-tools)")?;
            let args = drivers::redis_benchmark::RedisBenchmarkArgs {
                port: a.port,
                tests: a.tests,
                requests: a.requests,
                clients: a.clients,
                pipeline: a.pipeline,
                data_size: a.data_size,
                keyspace: Some(a.keyspace),
                threads: None,
            };
            println!("test,rps,avg_ms,p50_ms,p95_ms,p99_ms,max_ms");
            for r in drivers::redis_benchmark::run(&bin, &args, timeout)? {
                println!(
                    "{},{:.0},{},{},{},{},{}",
                    r.key(),
                    r.rps,
                    r.avg_ms,
                    r.p50_ms,
                    r.p95_ms,
                    r.p99_ms,
                    r.max_ms
                );
            }
        }
        Tool::Memtier => {
            let Some(bin) = drivers::find_executable("memtier_benchmark") else {
                println!("memtier_benchmark is not installed here: skipped");
                return Ok(());
            };
            let args = drivers::memtier::MemtierArgs {
                port: a.port,
                threads: 1,
                clients: a.clients,
                pipeline: a.pipeline,
                data_size: a.data_size,
                ratio: a.ratio,
                key_maximum: a.keyspace,
                test_time_secs: a.test_time,
            };
            println!("kind,ops_per_sec,hits_per_sec,misses_per_sec,avg_ms,p50_ms,p99_ms,p999_ms");
            for r in drivers::memtier::run(&bin, &args, timeout)? {
                println!(
                    "{},{:.0},{:.0},{:.0},{},{},{},{}",
                    r.kind,
                    r.ops_per_sec,
                    r.hits_per_sec,
                    r.misses_per_sec,
                    r.avg_ms,
                    r.p50_ms,
                    r.p99_ms,
                    r.p999_ms
                );
            }
        }
    }
    Ok(())
}
