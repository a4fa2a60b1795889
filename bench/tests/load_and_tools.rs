//! The load generator, the calibration against redis-benchmark, and the
//! tool drivers, each on a tiny workload against a redis-server the bench
//! starts itself.

mod common;

/// Runs `amber-bench load --spawn redis-server ARGS --json --no-progress`
/// and returns its JSON result.
fn load_against_redis(args: &[&str]) -> serde_json::Value {
    let redis = common::redis_bin();
    let mut all = vec!["load", "--spawn", redis.to_str().unwrap()];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", "--no-progress"]);
    let (ok, stdout, stderr) = common::run_bench(&all);
    assert!(ok, "{stderr}");
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

#[test]
fn load_populates_runs_and_verifies() {
    let v = load_against_redis(&[
        "--keys",
        "2000",
        "-c",
        "4",
        "-P",
        "8",
        "--dist",
        "zipf:0.9",
        "--populate",
        "--verify",
        "-n",
        "5000",
    ]);
    assert_eq!(v["errors"], 0);
    assert_eq!(v["lost_keys"], 0);
    assert_eq!(v["misses"], 0, "every key was populated");
    let done = v["gets"].as_u64().unwrap() + v["sets"].as_u64().unwrap();
    assert!(done >= 5000, "{done} requests");
}

/// Without `--populate`, GETs of a key race other connections' SETs of it.
/// A GET sent before the SET was acknowledged may find nothing: that is a
/// miss, not a lost key (the generator counted 7-144 "lost reads" per run
/// here against a redis-server that loses nothing).
#[test]
fn gets_racing_sets_are_misses_not_lost_keys() {
    let v = load_against_redis(&["--keys", "1000", "-n", "20000"]);
    assert_eq!(v["errors"], 0);
    assert!(
        v["misses"].as_u64().unwrap() > 0,
        "the race was not exercised: {v}"
    );
    assert_eq!(v["lost_reads"], 0, "{v}");
}

#[test]
fn calibrate_runs_both_tools() {
    if amber_bench::drivers::find_executable("redis-benchmark").is_none() {
        eprintln!("redis-benchmark not installed: skipped");
        return;
    }
    let redis = common::redis_bin();
    let (ok, stdout, stderr) = common::run_bench(&[
        "calibrate",
        "--server-bin",
        redis.to_str().unwrap(),
        "-n",
        "5000",
        "-c",
        "8",
        "-P",
        "4",
        "--rounds",
        "1",
        "-r",
        "1000",
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("| SET -P 4 |") && stdout.contains("| GET -P 4 |"),
        "{stdout}"
    );
}

#[test]
fn compare_runs_both_servers_with_cpu_per_request() {
    if amber_bench::drivers::find_executable("redis-benchmark").is_none() {
        eprintln!("redis-benchmark not installed: skipped");
        return;
    }
    let amber = common::amber_bin();
    let out = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = common::run_bench(&[
        "compare",
        "--amber-bin",
        amber.to_str().unwrap(),
        "-n",
        "3000",
        "-c",
        "8",
        "--rounds",
        "2",
        "-P",
        "1,16",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    for w in [
        "| SET -P 1 |",
        "| GET -P 1 |",
        "| SET -P 16 |",
        "| GET -P 16 |",
    ] {
        assert!(stdout.contains(w), "missing {w} in\n{stdout}");
    }
    assert!(out.path().join("compare.md").is_file());
}

#[test]
fn memtier_driver_skips_cleanly_when_absent() {
    let (ok, stdout, stderr) = common::run_bench(&["drive", "--tool", "memtier", "--port", "1"]);
    if amber_bench::drivers::find_executable("memtier_benchmark").is_none() {
        assert!(ok, "{stderr}");
        assert!(stdout.contains("not installed"));
    }
}
