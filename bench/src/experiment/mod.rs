//! `amber-bench out-of-dram`: load data sets from 0.25x to 8x the DRAM
//! budget into each configuration, drive a mixed GET/SET load, and record
//! what happens (throughput, latency, lost keys, errors, memory, OOM kills).

pub mod cgroup;
pub mod chart;
pub mod config;
pub mod report;
pub mod server_proc;
pub mod swap;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use self::cgroup::{CgroupParent, MemCgroup};
use self::config::{ConfigKind, Params};
use self::report::Row;
use self::server_proc::{is_redis_binary, Exit, Launch, ServerProc};
use self::swap::SwapFile;
use crate::cleanup;
use crate::load::{run_phase, Bitmap, KeySpace, LoadSpec, Phase, Window};
use crate::procfs;
use crate::units::{human, redis_size};

/// What the machine allows, found once per run.
struct Capabilities {
    cgroup: Result<CgroupParent, String>,
}

/// Runs the whole experiment and writes CSV, Markdown and charts into
/// `params.out`. Returns the rows.
pub async fn run(params: &Params) -> Result<Vec<Row>, String> {
    std::fs::create_dir_all(&params.out)
        .map_err(|e| format!("create {}: {e}", params.out.display()))?;
    let work = tempfile::Builder::new()
        .prefix("amber-bench-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let caps = Capabilities {
        cgroup: if params.configs.iter().any(|c| c.needs_cgroup()) {
            cgroup::detect()
        } else {
            Err("not needed".into())
        },
    };
    if let Ok(cg) = &caps.cgroup {
        eprintln!(
            "cgroups: {:?} under {} (swap accounting: {})",
            cg.version,
            cg.dir.display(),
            cg.memsw
        );
    }
    let machine = procfs::machine_summary();
    let mut rows = Vec::new();
    for &cfg in &params.configs {
        let mut cfg_rows = run_config(params, cfg, &caps, work.path()).await;
        rows.append(&mut cfg_rows);
        // Keep partial results on disk as we go.
        report::write_csv(&params.out.join("results.csv"), &rows)?;
    }
    let charts = write_charts(params, &machine, &rows)?;
    report::write_csv(&params.out.join("results.csv"), &rows)?;
    report::write_markdown(
        &params.out.join("results.md"),
        params,
        &machine,
        &rows,
        &charts,
    )?;
    Ok(rows)
}

/// Draws one chart per key distribution; returns the PNG file names.
pub fn write_charts(params: &Params, machine: &str, rows: &[Row]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for d in &params.dists {
        let label = d.label();
        let these: Vec<&Row> = rows.iter().filter(|r| r.dist == label).collect();
        let stem = params.out.join(format!("chart-{label}"));
        let input = chart::ChartInput {
            rows: &these,
            title: format!(
                "Data larger than DRAM: Amber vs Redis, {label} keys, DRAM budget {}",
                human(params.budget)
            ),
            subtitle: format!(
                "{machine} | {} B values, SET:GET {}, {} conns x P{}, {:?} windows, arena in {}{} | red × = keys lost",
                params.value_size,
                params.ratio_label,
                params.connections,
                params.pipeline,
                params.window,
                params.pmem_dir.display(),
                if is_redis_binary(&params.amber_bin) {
                    " | Amber lines: redis-server STAND-IN"
                } else {
                    ""
                }
            ),
        };
        chart::write_chart(&input, &stem)?;
        out.push(format!("chart-{label}.png"));
    }
    Ok(out)
}

fn skipped_rows(params: &Params, cfg: ConfigKind, reason: &str) -> Vec<Row> {
    eprintln!("{}: skipped: {reason}", cfg.name());
    params
        .ratios
        .iter()
        .flat_map(|&ratio| {
            params.dists.iter().map(move |d| Row {
                config: cfg.name().into(),
                ratio,
                keys: params.keys_at(ratio),
                dataset_bytes: params.keys_at(ratio) * params.value_size as u64,
                dist: d.label(),
                status: "skipped".into(),
                note: reason.to_string(),
                ..Row::default()
            })
        })
        .collect()
}

async fn run_config(
    params: &Params,
    cfg: ConfigKind,
    caps: &Capabilities,
    work: &Path,
) -> Vec<Row> {
    let bin = if cfg.is_amber() {
        &params.amber_bin
    } else {
        &params.redis_bin
    };
    if !bin.is_file() {
        return skipped_rows(
            params,
            cfg,
            &format!("no server binary at {}", bin.display()),
        );
    }
    let cg_parent = if cfg.needs_cgroup() {
        match &caps.cgroup {
            Ok(p) => Some(p.clone()),
            Err(e) => return skipped_rows(params, cfg, &format!("no usable memory cgroup: {e}")),
        }
    } else {
        None
    };
    let max_ratio = params.ratios.iter().copied().fold(0.0, f64::max);
    let swap = if cfg == ConfigKind::RedisSwap {
        if !cg_parent.as_ref().is_some_and(|p| p.memsw) {
            return skipped_rows(
                params,
                cfg,
                "cgroup has no swap accounting, swap cannot be limited to the server",
            );
        }
        // Room for the largest data set in Redis's own format (~1.5x the values).
        let bytes =
            ((max_ratio * 1.5 * params.budget as f64) as u64 + (64 << 20)).div_ceil(1 << 20) << 20;
        match SwapFile::enable(&params.swap_dir, bytes) {
            Ok(s) => Some(s),
            Err(e) => return skipped_rows(params, cfg, &format!("swapon not possible here: {e}")),
        }
    } else {
        None
    };
    let mut rows = Vec::new();
    for &ratio in &params.ratios {
        let mut point =
            run_point(params, cfg, ratio, cg_parent.as_ref(), swap.as_ref(), work).await;
        rows.append(&mut point);
    }
    if let Some(s) = swap {
        s.disable();
    }
    rows
}

fn info_u64(m: &BTreeMap<String, String>, k: &str) -> Option<u64> {
    m.get(k).and_then(|v| v.parse::<u64>().ok())
}

/// Builds the server's arguments for one point; returns them with a note.
fn launch_args(
    params: &Params,
    cfg: ConfigKind,
    arena: &Path,
    keys: u64,
    workdir: &Path,
) -> (Vec<String>, String) {
    let redis_base = |dir: &Path| -> Vec<String> {
        vec![
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "no".into(),
            "--dir".into(),
            dir.display().to_string(),
            "--daemonize".into(),
            "no".into(),
        ]
    };
    match cfg {
        ConfigKind::AmberPmem | ConfigKind::AmberDisk | ConfigKind::AmberDram => {
            if is_redis_binary(&params.amber_bin) {
                (
                    redis_base(workdir),
                    "stand-in: redis-server run as Amber (no tiering flags)".into(),
                )
            } else {
                // amber-dram: room for every key hot (a hot 1 KiB string
                // is charged about 1.2 KiB), so nothing is ever demoted.
                let (budget, note) = if cfg == ConfigKind::AmberDram {
                    (
                        2 * keys * (params.value_size as u64 + 256) + (64 << 20),
                        "reference: dram-budget above the data set, every key hot".into(),
                    )
                } else {
                    (params.budget, String::new())
                };
                (
                    vec![
                        "--dram-budget".into(),
                        redis_size(budget),
                        "--pmem-path".into(),
                        arena.display().to_string(),
                        "--pmem-size".into(),
                        redis_size(params.arena_size(keys)),
                        "--persistence".into(),
                        "pmem".into(),
                    ],
                    note,
                )
            }
        }
        ConfigKind::RedisNoeviction | ConfigKind::RedisLru => {
            let mut a = redis_base(workdir);
            a.extend([
                "--maxmemory".into(),
                params.budget.to_string(),
                "--maxmemory-policy".into(),
                if cfg == ConfigKind::RedisLru {
                    "allkeys-lru".into()
                } else {
                    "noeviction".into()
                },
            ]);
            (a, String::new())
        }
        ConfigKind::RedisOom | ConfigKind::RedisSwap => (redis_base(workdir), String::new()),
        ConfigKind::RedisDram => (
            redis_base(workdir),
            "reference: no memory limit, uses DRAM beyond the budget".into(),
        ),
    }
}

/// Samples the server's RssAnon until stopped; keeps the peak and the last sample.
struct Sampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    last: Arc<std::sync::Mutex<Option<procfs::MemoryStatus>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let last = Arc::new(std::sync::Mutex::new(None));
        let (s, p, l) = (Arc::clone(&stop), Arc::clone(&peak), Arc::clone(&last));
        let task = tokio::spawn(async move {
            // Bounded by the stop flag and the process's life.
            while !s.load(Ordering::Relaxed) {
                match procfs::memory_status(pid) {
                    Some(m) if m.rss_anon > 0 || m.rss_file > 0 => {
                        p.fetch_max(m.rss_anon, Ordering::Relaxed);
                        if let Ok(mut g) = l.lock() {
                            *g = Some(m);
                        }
                    }
                    _ => break,
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Sampler {
            stop,
            peak,
            last,
            task,
        }
    }

    async fn finish(self) -> (u64, Option<procfs::MemoryStatus>) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let last = self.last.lock().ok().and_then(|g| *g);
        (self.peak.load(Ordering::Relaxed), last)
    }
}

async fn run_point(
    params: &Params,
    cfg: ConfigKind,
    ratio: f64,
    cg_parent: Option<&CgroupParent>,
    swap: Option<&SwapFile>,
    work: &Path,
) -> Vec<Row> {
    let keys = params.keys_at(ratio);
    let tag = format!("{}-{}", cfg.name(), ratio);
    let base = Row {
        config: cfg.name().into(),
        ratio,
        keys,
        dataset_bytes: keys * params.value_size as u64,
        ..Row::default()
    };
    let fail = |status: &str, note: String| -> Vec<Row> {
        eprintln!("{tag}: {status}: {note}");
        params
            .dists
            .iter()
            .map(|d| Row {
                dist: d.label(),
                status: status.into(),
                note: note.clone(),
                ..base.clone()
            })
            .collect()
    };
    let workdir = work.join(&tag);
    if let Err(e) = std::fs::create_dir_all(&workdir) {
        return fail("error", format!("create {}: {e}", workdir.display()));
    }
    let arena_dir = if cfg == ConfigKind::AmberDisk {
        &params.disk_dir
    } else {
        &params.pmem_dir
    };
    let arena = arena_dir.join(format!("amber-bench-{}-{tag}.arena", std::process::id()));
    let arena_token = cleanup::add_file(&arena);
    let (args, mut note) = launch_args(params, cfg, &arena, keys, &workdir);
    let cg = match cg_parent {
        Some(p) => {
            let swap_bytes = swap.map_or(0, |s| s.bytes);
            match MemCgroup::create(p, &tag, params.budget + params.slack, swap_bytes) {
                Ok(c) => Some(c),
                Err(e) => {
                    cleanup::release(arena_token);
                    return fail("skipped", format!("cannot set up the memory cgroup: {e}"));
                }
            }
        }
        None => None,
    };
    let launch = Launch {
        name: tag.clone(),
        bin: if cfg.is_amber() {
            params.amber_bin.clone()
        } else {
            params.redis_bin.clone()
        },
        args,
        cgroup_procs: cg.as_ref().map(MemCgroup::procs_file),
        log: workdir.join("server.log"),
    };
    let server = match ServerProc::start(&launch, Duration::from_secs(15)).await {
        Ok(s) => s,
        Err(e) => {
            if let Some(c) = cg {
                c.remove();
            }
            cleanup::release(arena_token);
            return fail("error", e);
        }
    };
    eprintln!(
        "{tag}: {} keys x {} B = {} (pid {}, port {})",
        keys,
        params.value_size,
        human(keys * params.value_size as u64),
        server.pid,
        server.port
    );
    let sampler = Sampler::start(server.pid);
    let spec = LoadSpec {
        addr: server.addr(),
        connections: params.connections,
        pipeline: params.pipeline,
        keys: KeySpace::new(&params.key_prefix, keys),
        value_size: params.value_size,
        request_timeout: params.request_timeout,
        phase_timeout: params.phase_timeout,
        progress: params.progress,
        seed: params.seed,
    };
    let written = Arc::new(Bitmap::new(keys));
    let mut rows = Vec::new();
    let load = run_phase(&spec, &Phase::Populate, &written, &format!("{tag} load")).await;
    let (load_ops, load_errors, load_oom, mut timed_out) = match &load {
        Ok(r) => (
            r.ops_per_sec(),
            r.stats.errors,
            r.stats.oom_errors,
            !r.completed,
        ),
        Err(e) => {
            note_push(&mut note, e);
            (0.0, keys, 0, false)
        }
    };
    if let Ok(r) = &load {
        if let Some(e) = &r.stats.first_error {
            note_push(&mut note, &format!("load: {e}"));
        }
    }
    for d in &params.dists {
        let alive = server.exit() == Exit::Running;
        let phase = Phase::Mixed {
            dist: *d,
            set_fraction: params.set_fraction,
            warmup: params.warmup,
            window: Window::Time(params.window),
        };
        let mut row = Row {
            dist: d.label(),
            load_ops_per_sec: load_ops,
            load_errors,
            ..base.clone()
        };
        if alive {
            match run_phase(&spec, &phase, &written, &format!("{tag} {}", d.label())).await {
                Ok(r) => {
                    row.ops_per_sec = r.ops_per_sec();
                    row.gets = r.stats.gets;
                    row.sets = r.stats.sets;
                    row.hit_rate = r.stats.hit_rate();
                    row.lost_reads = r.stats.lost_reads;
                    row.errors = r.stats.errors;
                    row.oom_errors = r.stats.oom_errors + load_oom;
                    row.p50_ms = r.stats.latency_ms(0.5);
                    row.p99_ms = r.stats.latency_ms(0.99);
                    row.p999_ms = r.stats.latency_ms(0.999);
                    timed_out |= !r.completed;
                    if let Some(e) = &r.stats.first_error {
                        row.note = format!("{}: {e}", d.label());
                    }
                }
                Err(e) => row.note = e,
            }
        } else {
            row.oom_errors = load_oom;
        }
        rows.push(row);
    }
    // Count lost keys: GET every key written, unless the server died.
    let alive = server.exit() == Exit::Running;
    let written_keys = written.count();
    let lost_keys = if alive {
        match run_phase(&spec, &Phase::Verify, &written, &format!("{tag} verify")).await {
            Ok(r) if r.completed && r.stats.errors == 0 => Some(r.stats.lost_keys),
            Ok(r) => {
                note_push(
                    &mut note,
                    &format!(
                        "verify incomplete: {}",
                        r.stats.first_error.unwrap_or_else(|| "timed out".into())
                    ),
                );
                Some(r.stats.lost_keys)
            }
            Err(e) => {
                note_push(&mut note, &e);
                None
            }
        }
    } else {
        Some(written_keys)
    };
    let (mut tiering, mut memory, mut stats) = Default::default();
    if server.exit() == Exit::Running {
        tiering = server.info("tiering").await.unwrap_or_default();
        memory = server.info("memory").await.unwrap_or_default();
        stats = server.info("stats").await.unwrap_or_default();
    }
    let now_mem = procfs::memory_status(server.pid);
    let (peak, last_mem) = sampler.finish().await;
    let mem = now_mem.or(last_mem).unwrap_or_default();
    let exit = server.exit();
    let oom_kills = cg.as_ref().map_or(0, MemCgroup::oom_kills);
    let status = match exit {
        Exit::Running if timed_out => "timeout".to_string(),
        Exit::Running => "ok".to_string(),
        Exit::Signal(9) if oom_kills > 0 => "oom-killed".to_string(),
        Exit::Signal(s) => format!("server-died (signal {s})"),
        Exit::Code(c) => format!("server-died (exit {c})"),
    };
    if exit != Exit::Running {
        let log = std::fs::read_to_string(&server.log).unwrap_or_default();
        let tail = crate::drivers::tail(&log, 200);
        if !tail.is_empty() && status != "oom-killed" {
            note_push(&mut note, &format!("server log: {tail}"));
        }
    }
    server.stop();
    if let Some(c) = cg {
        c.remove();
    }
    cleanup::release(arena_token);
    for r in &mut rows {
        r.status.clone_from(&status);
        r.written_keys = written_keys;
        r.lost_keys = lost_keys.unwrap_or(0);
        r.rss_anon = mem.rss_anon;
        r.rss_anon_peak = peak.max(mem.rss_anon);
        r.rss_file = mem.rss_file;
        r.rss_shmem = mem.rss_shmem;
        r.vm_swap = mem.vm_swap;
        r.arena_bytes_used = info_u64(&tiering, "arena_bytes_used");
        r.hot_keys = info_u64(&tiering, "hot_keys");
        r.cold_keys = info_u64(&tiering, "cold_keys");
        r.dram_bytes = info_u64(&tiering, "dram_bytes");
        r.demotions = info_u64(&tiering, "demotions");
        r.promotions = info_u64(&tiering, "promotions");
        r.used_memory = info_u64(&memory, "used_memory");
        r.evicted_keys = info_u64(&stats, "evicted_keys");
        r.oom_kills = oom_kills;
        let mut n = note.clone();
        if !r.note.is_empty() {
            note_push(&mut n, &r.note);
        }
        r.note = n;
        eprintln!(
            "{tag} {}: {} ops/s {:.0}, p99 {:.2} ms, lost {}, errors {}, RssAnon {} (peak {})",
            r.dist,
            r.status,
            r.ops_per_sec,
            r.p99_ms,
            r.lost_keys,
            r.errors + r.load_errors,
            human(r.rss_anon),
            human(r.rss_anon_peak)
        );
    }
    rows
}

fn note_push(note: &mut String, s: &str) {
    if !note.is_empty() {
        note.push_str("; ");
    }
    note.push_str(s);
}

/// Default output folder: `results/out-of-dram-<UTC date and time>/`.
pub fn default_out_dir() -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    PathBuf::from("results").join(format!("out-of-dram-{}", utc_stamp(secs)))
}

/// `YYYY-MM-DD-HHMMSS` in UTC for a Unix time (civil-from-days, no time zone database).
pub fn utc_stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_stamp_known_dates() {
        assert_eq!(super::utc_stamp(0), "1970-01-01-000000");
        assert_eq!(super::utc_stamp(1_700_000_000), "2023-11-14-221320");
    }
}
