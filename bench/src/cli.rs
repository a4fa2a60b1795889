//! Command-line interface of `amber-bench`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::compare::Suite;
use crate::experiment::config::ConfigKind;
use crate::load::keydist::DistSpec;

/// Benchmarks for Amber: a load generator, the out-of-DRAM experiment, and
/// side-by-side comparisons with redis-server.
#[derive(Debug, Parser)]
#[command(name = "amber-bench", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Drive a GET/SET load against a server on 127.0.0.1.
    Load(LoadArgs),
    /// The out-of-DRAM experiment: data sets from 0.25x to 8x the DRAM budget.
    OutOfDram(OutOfDramArgs),
    /// redis-benchmark workloads against Amber and redis-server, side by side.
    Compare(CompareArgs),
    /// Show the generator is not the bottleneck: amber-bench vs redis-benchmark on one redis-server.
    Calibrate(CalibrateArgs),
    /// Run redis-benchmark or memtier_benchmark against a port and print the parsed results.
    Drive(DriveArgs),
}

/// Parses `10s`, `500ms`, `2m`, `1.5s` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, mult) = if let Some(v) = t.strip_suffix("ms") {
        (v, 0.001)
    } else if let Some(v) = t.strip_suffix('s') {
        (v, 1.0)
    } else if let Some(v) = t.strip_suffix('m') {
        (v, 60.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("bad duration {s:?}: use e.g. 10s, 500ms, 2m"))?;
    if !(v >= 0.0 && v.is_finite()) {
        return Err(format!("bad duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(v * mult))
}

fn parse_size(s: &str) -> Result<u64, String> {
    crate::units::parse_size(s)
}

/// Options of `load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Server port on 127.0.0.1 (ignored with --spawn).
    #[arg(long, default_value_t = 6379)]
    pub port: u16,
    /// Start this server binary on an ephemeral port for the run, then stop it.
    #[arg(long)]
    pub spawn: Option<PathBuf>,
    /// Parallel connections.
    #[arg(short = 'c', long, default_value_t = 50)]
    pub connections: usize,
    /// Requests in flight per connection.
    #[arg(short = 'P', long, default_value_t = 16)]
    pub pipeline: usize,
    /// Number of keys.
    #[arg(short = 'k', long, default_value_t = 1_000_000)]
    pub keys: u64,
    /// Key prefix (keys are prefix + 12-digit index).
    #[arg(long, default_value = "key:")]
    pub key_prefix: String,
    /// Value size (bytes, or with a unit: 1kb).
    #[arg(short = 'd', long, default_value = "100", value_parser = parse_size)]
    pub value_size: u64,
    /// Key distribution: uniform, zipf[:theta] (default 0.99), gaussian[:sigma].
    #[arg(long, default_value = "uniform")]
    pub dist: DistSpec,
    /// SET:GET ratio, memtier style.
    #[arg(long, default_value = "1:10")]
    pub ratio: String,
    /// SET every key once before the run.
    #[arg(long)]
    pub populate: bool,
    /// GET every written key after the run and count the missing ones.
    #[arg(long)]
    pub verify: bool,
    /// Unmeasured warm-up.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Measured window.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Send this many requests instead of a timed window.
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,
    /// Generator threads (1: a single-threaded runtime).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// No progress bars.
    #[arg(long)]
    pub no_progress: bool,
}

/// Options of `out-of-dram`.
#[derive(Debug, Args)]
pub struct OutOfDramArgs {
    /// Reduced preset for CI and a first look (< 2 minutes).
    #[arg(long)]
    pub quick: bool,
    /// Output folder (default results/out-of-dram-<date>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// DRAM budget (default 64mb; --quick 16mb).
    #[arg(long, value_parser = parse_size)]
    pub budget: Option<u64>,
    /// Cgroup memory above the budget for process overhead (default budget/2, at least 32mb).
    #[arg(long, value_parser = parse_size)]
    pub slack: Option<u64>,
    /// Value size (default 1kb).
    #[arg(long, value_parser = parse_size)]
    pub value_size: Option<u64>,
    /// Data-set / budget ratios, comma separated (default 0.25,0.5,1,1.5,2,4,8; --quick 0.5,2,8).
    #[arg(long, value_delimiter = ',')]
    pub ratios: Option<Vec<f64>>,
    /// Configurations (default all but amber-dram).
    #[arg(long, value_delimiter = ',')]
    pub configs: Option<Vec<ConfigKind>>,
    /// Key distributions, comma separated (default uniform,zipf:0.99).
    #[arg(long, value_delimiter = ',')]
    pub dists: Option<Vec<DistSpec>>,
    /// SET:GET ratio of the mixed load.
    #[arg(long, default_value = "1:10")]
    pub ratio: String,
    /// Warm-up per window (default 1s; --quick 300ms).
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// Measured window per distribution (default 5s; --quick 1s).
    #[arg(long, value_parser = parse_duration)]
    pub window: Option<Duration>,
    /// Generator connections.
    #[arg(short = 'c', long, default_value_t = 50)]
    pub connections: usize,
    /// Pipeline depth.
    #[arg(short = 'P', long, default_value_t = 16)]
    pub pipeline: usize,
    /// Generator threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Amber server binary (default target/release/amber-server, else target/debug/amber-server).
    #[arg(long)]
    pub amber_bin: Option<PathBuf>,
    /// redis-server binary.
    #[arg(long, default_value = "redis-server")]
    pub redis_bin: PathBuf,
    /// Folder for the pmem arena (tmpfs stand-in, or a DAX mount).
    #[arg(long, default_value = "/dev/shm")]
    pub pmem_dir: PathBuf,
    /// Folder for the on-disk arena (must be a real disk).
    #[arg(long, default_value = "/var/tmp")]
    pub disk_dir: PathBuf,
    /// Folder for the swap file (must be a real disk).
    #[arg(long, default_value = "/var/tmp")]
    pub swap_dir: PathBuf,
    /// Longest one phase (load, window, verify) may take.
    #[arg(long, value_parser = parse_duration)]
    pub phase_timeout: Option<Duration>,
    /// Key prefix.
    #[arg(long, default_value = "key:")]
    pub key_prefix: String,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// No progress bars.
    #[arg(long)]
    pub no_progress: bool,
}

/// Options of `compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// strings: SET/GET at -P 1 and 16; types: the issue-4 data-type commands at -P 16.
    #[arg(long, value_enum, default_value = "strings")]
    pub suite: Suite,
    /// Rounds.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Requests per run (-n).
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,
    /// Clients (-c).
    #[arg(short = 'c', long, default_value_t = 50)]
    pub clients: usize,
    /// Value size (-d).
    #[arg(short = 'd', long, default_value_t = 100)]
    pub data_size: usize,
    /// Key range (-r; default 1000000 for strings, 100000 for types).
    #[arg(short = 'r', long)]
    pub keyspace: Option<u64>,
    /// Pipeline depths, comma separated (default 1,16 for strings, 16 for types).
    #[arg(short = 'P', long, value_delimiter = ',')]
    pub pipelines: Option<Vec<usize>>,
    /// Tests, comma separated (overrides the suite's list).
    #[arg(short = 't', long, value_delimiter = ',')]
    pub tests: Option<Vec<String>>,
    /// Amber server binary.
    #[arg(long)]
    pub amber_bin: Option<PathBuf>,
    /// Extra Amber arguments (default: --persistence none, arena in a temp dir on /dev/shm).
    #[arg(long, allow_hyphen_values = true, num_args = 1..)]
    pub amber_args: Vec<String>,
    /// redis-server binary.
    #[arg(long, default_value = "redis-server")]
    pub redis_bin: PathBuf,
    /// redis-benchmark binary.
    #[arg(long, default_value = "redis-benchmark")]
    pub redis_benchmark: PathBuf,
    /// Also write compare.md into this folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Options of `calibrate`.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Server to start for the comparison.
    #[arg(long, default_value = "redis-server")]
    pub server_bin: PathBuf,
    /// redis-benchmark binary.
    #[arg(long, default_value = "redis-benchmark")]
    pub redis_benchmark: PathBuf,
    /// Requests per run.
    #[arg(short = 'n', long, default_value_t = 1_000_000)]
    pub requests: u64,
    /// Clients / connections.
    #[arg(short = 'c', long, default_value_t = 50)]
    pub clients: usize,
    /// Pipeline depths, comma separated.
    #[arg(short = 'P', long, value_delimiter = ',', default_value = "1,16")]
    pub pipelines: Vec<usize>,
    /// Value size.
    #[arg(short = 'd', long, default_value_t = 100)]
    pub data_size: usize,
    /// Key range.
    #[arg(short = 'r', long, default_value_t = 1_000_000)]
    pub keyspace: u64,
    /// Rounds (median).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Also write calibrate.md into this folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Which external tool `drive` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Tool {
    /// redis-benchmark (redis-tools).
    RedisBenchmark,
    /// memtier_benchmark (when installed).
    Memtier,
}

/// Options of `drive`.
#[derive(Debug, Args)]
pub struct DriveArgs {
    /// The tool.
    #[arg(long, value_enum)]
    pub tool: Tool,
    /// Server port on 127.0.0.1.
    #[arg(long, default_value_t = 6379)]
    pub port: u16,
    /// redis-benchmark tests.
    #[arg(short = 't', long, value_delimiter = ',', default_value = "set,get")]
    pub tests: Vec<String>,
    /// Requests per test (redis-benchmark).
    #[arg(short = 'n', long, default_value_t = 100_000)]
    pub requests: u64,
    /// Clients (redis-benchmark -c; memtier clients per thread).
    #[arg(short = 'c', long, default_value_t = 50)]
    pub clients: usize,
    /// Pipeline.
    #[arg(short = 'P', long, default_value_t = 1)]
    pub pipeline: usize,
    /// Value size.
    #[arg(short = 'd', long, default_value_t = 100)]
    pub data_size: usize,
    /// Key range.
    #[arg(short = 'r', long, default_value_t = 1_000_000)]
    pub keyspace: u64,
    /// memtier SET:GET ratio.
    #[arg(long, default_value = "1:10")]
    pub ratio: String,
    /// memtier run time in seconds.
    #[arg(long, default_value_t = 10)]
    pub test_time: u64,
}
