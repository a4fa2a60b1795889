//! A tiny out-of-DRAM experiment (tiny budget, few keys, short windows):
//! the CSV must hold every configuration and point, measured or skipped
//! with a reason; Amber must lose no key; the charts and table must exist.
//! Numbers are not asserted.

mod common;

use amber_bench::experiment::config::ConfigKind;
use amber_bench::experiment::report::{read_csv, CSV_HEADER};

#[test]
fn tiny_out_of_dram_covers_every_configuration_and_point() {
    let out = tempfile::tempdir().unwrap();
    let amber = common::amber_bin();
    let started = std::time::Instant::now();
    // Every line, also amber-dram, which the default leaves out.
    let configs = ConfigKind::ALL.map(|c| c.name()).join(",");
    let (ok, _stdout, stderr) = common::run_bench(&[
        "out-of-dram",
        "--configs",
        &configs,
        "--out",
        out.path().to_str().unwrap(),
        "--amber-bin",
        amber.to_str().unwrap(),
        "--budget",
        "2mb",
        "--slack",
        "40mb",
        "--value-size",
        "1kb",
        "--ratios",
        "0.5,2",
        "--dists",
        "uniform,zipf:0.99",
        "--warmup",
        "100ms",
        "--window",
        "300ms",
        "-c",
        "8",
        "-P",
        "8",
        "--phase-timeout",
        "20s",
        "--no-progress",
    ]);
    assert!(ok, "amber-bench failed:\n{stderr}");
    eprintln!("tiny experiment took {:?}\n{stderr}", started.elapsed());

    let (header, records) = read_csv(&out.path().join("results.csv")).unwrap();
    assert_eq!(header, CSV_HEADER);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (c_cfg, c_ratio, c_dist, c_status, c_lost, c_note) = (
        col("config"),
        col("ratio"),
        col("dist"),
        col("status"),
        col("lost_keys"),
        col("note"),
    );
    for cfg in ConfigKind::ALL {
        for ratio in ["0.5", "2"] {
            for dist in ["uniform", "zipf0.99"] {
                let row = records
                    .iter()
                    .find(|r| r[c_cfg] == cfg.name() && r[c_ratio] == ratio && r[c_dist] == dist)
                    .unwrap_or_else(|| panic!("no row for {} x{ratio} {dist}", cfg.name()));
                let status = &row[c_status];
                if status == "skipped" {
                    // Allowed only with a reason, and never for the lines
                    // that need nothing but the binaries.
                    assert!(
                        !row[c_note].is_empty(),
                        "{} skipped without a reason",
                        cfg.name()
                    );
                    assert!(
                        !matches!(
                            cfg,
                            ConfigKind::AmberPmem
                                | ConfigKind::AmberDram
                                | ConfigKind::RedisNoeviction
                                | ConfigKind::RedisLru
                                | ConfigKind::RedisDram
                        ),
                        "{} must run everywhere: {}",
                        cfg.name(),
                        row[c_note]
                    );
                } else if matches!(cfg, ConfigKind::AmberPmem | ConfigKind::AmberDram) {
                    let name = cfg.name();
                    assert_eq!(status, "ok", "{name} x{ratio}: {}", row[c_note]);
                    assert_eq!(row[c_lost], "0", "{name} lost keys at x{ratio}");
                } else if cfg.is_amber() && status == "ok" {
                    assert_eq!(row[c_lost], "0", "{} lost keys at x{ratio}", cfg.name());
                }
            }
        }
    }
    for f in [
        "results.md",
        "chart-uniform.svg",
        "chart-uniform.png",
        "chart-zipf0.99.svg",
        "chart-zipf0.99.png",
    ] {
        let meta = std::fs::metadata(out.path().join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(meta.len() > 1000, "{f} is nearly empty");
    }
    let md = std::fs::read_to_string(out.path().join("results.md")).unwrap();
    assert!(md.contains("| amber-pmem |"));
    // Nothing left behind: no cgroup, swap file or arena of ours.
    let pid_tag = "amber-bench-";
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    assert!(!swaps.contains(pid_tag), "swap file left enabled:\n{swaps}");
    if let Ok(entries) = std::fs::read_dir("/dev/shm") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                !(name.starts_with(pid_tag) && name.ends_with(".arena")),
                "arena left: {name}"
            );
        }
    }
}

#[test]
fn quick_and_out_flags_are_accepted() {
    let (ok, stdout, _) = common::run_bench(&["out-of-dram", "--help"]);
    assert!(ok);
    assert!(stdout.contains("--quick") && stdout.contains("--out"));
}
