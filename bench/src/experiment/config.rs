//! The configurations compared by the out-of-DRAM experiment and the
//! experiment's parameters.

use std::path::PathBuf;
use std::time::Duration;

use crate::load::keydist::DistSpec;

/// One line of the chart: a server and how its memory is limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum ConfigKind {
    /// Amber, `dram-budget` = budget, arena on /dev/shm (pmem stand-in).
    AmberPmem,
    /// Amber, arena file on disk, in a memory cgroup of budget + slack.
    AmberDisk,
    /// redis-server in a memory cgroup of budget + slack, no swap.
    RedisOom,
    /// redis-server, `maxmemory` = budget, `noeviction`.
    RedisNoeviction,
    /// redis-server, `maxmemory` = budget, `allkeys-lru`.
    RedisLru,
    /// redis-server in a memory cgroup of budget + slack with a swap file.
    RedisSwap,
    /// redis-server with no memory limit at all: the whole data set in
    /// DRAM. Not a contender (it uses up to 8x the budget) but the ceiling:
    /// what the same load costs when DRAM is no limit, so the chart shows
    /// how much of a line's fall is the memory hierarchy (caches, TLB) and
    /// how much is the tiering.
    RedisDram,
    /// Amber with a `dram-budget` above the whole data set (every key stays
    /// hot), arena on /dev/shm as for `amber-pmem`. The same server without
    /// tiering: the gap between it and `amber-pmem` is what tiering costs,
    /// its own fall from 0.25x to 8x is the memory hierarchy's.
    AmberDram,
}

impl ConfigKind {
    /// Every configuration, in chart order.
    pub const ALL: [ConfigKind; 8] = [
        ConfigKind::AmberPmem,
        ConfigKind::AmberDisk,
        ConfigKind::RedisOom,
        ConfigKind::RedisNoeviction,
        ConfigKind::RedisLru,
        ConfigKind::RedisSwap,
        ConfigKind::RedisDram,
        ConfigKind::AmberDram,
    ];

    /// The configurations run when `--configs` is not given: all but
    /// `amber-dram`, a reference that would take the full preset past the
    /// 15 minutes it is meant to fit in (ask for it with `--configs`).
    pub fn defaults() -> Vec<ConfigKind> {
        Self::ALL
            .into_iter()
            .filter(|c| *c != ConfigKind::AmberDram)
            .collect()
    }

    /// Name used in the CSV, the table and the legend.
    pub fn name(self) -> &'static str {
        match self {
            ConfigKind::AmberPmem => "amber-pmem",
            ConfigKind::AmberDisk => "amber-disk",
            ConfigKind::RedisOom => "redis-oom",
            ConfigKind::RedisNoeviction => "redis-noeviction",
            ConfigKind::RedisLru => "redis-lru",
            ConfigKind::RedisSwap => "redis-swap",
            ConfigKind::RedisDram => "redis-dram",
            ConfigKind::AmberDram => "amber-dram",
        }
    }

    /// One-line meaning, for the report and the README.
    pub fn describe(self) -> &'static str {
        match self {
            ConfigKind::AmberPmem => {
                "Amber, dram-budget = budget, arena on /dev/shm (persistent-memory stand-in)"
            }
            ConfigKind::AmberDisk => {
                "Amber, arena file on disk, memory cgroup of budget + slack (flash-like tier)"
            }
            ConfigKind::RedisOom => {
                "redis-server, memory cgroup of budget + slack, no swap (OOM killer)"
            }
            ConfigKind::RedisNoeviction => {
                "redis-server, maxmemory = budget, noeviction (-OOM errors)"
            }
            ConfigKind::RedisLru => {
                "redis-server, maxmemory = budget, allkeys-lru (silent eviction)"
            }
            ConfigKind::RedisSwap => {
                "redis-server, memory cgroup of budget + slack, with a swap file"
            }
            ConfigKind::RedisDram => {
                "redis-server, no memory limit: all data in DRAM (reference ceiling, not budget-bound)"
            }
            ConfigKind::AmberDram => {
                "Amber, dram-budget above the data set: every key hot (reference: Amber without tiering)"
            }
        }
    }

    /// Runs Amber (else redis-server).
    pub fn is_amber(self) -> bool {
        matches!(
            self,
            ConfigKind::AmberPmem | ConfigKind::AmberDisk | ConfigKind::AmberDram
        )
    }

    /// Needs a memory cgroup.
    pub fn needs_cgroup(self) -> bool {
        matches!(
            self,
            ConfigKind::AmberDisk | ConfigKind::RedisOom | ConfigKind::RedisSwap
        )
    }

    /// Parses a name as printed by [`ConfigKind::name`].
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == s)
    }
}

/// Everything the experiment needs to know.
#[derive(Debug, Clone)]
pub struct Params {
    /// DRAM budget in bytes (Amber's `dram-budget`, Redis's `maxmemory`, cgroup base).
    pub budget: u64,
    /// Extra cgroup memory above the budget (process overhead, index).
    pub slack: u64,
    /// Value size in bytes.
    pub value_size: usize,
    /// Data-set / budget ratios, one point each.
    pub ratios: Vec<f64>,
    /// Configurations to run.
    pub configs: Vec<ConfigKind>,
    /// Key distributions of the mixed load.
    pub dists: Vec<DistSpec>,
    /// Fraction of SETs in the mixed load.
    pub set_fraction: f64,
    /// How the SET:GET ratio was written (for titles), e.g. `1:10`.
    pub ratio_label: String,
    /// Warm-up before each measured window.
    pub warmup: Duration,
    /// Measured window per distribution.
    pub window: Duration,
    /// Connections of the generator.
    pub connections: usize,
    /// Pipeline depth per connection.
    pub pipeline: usize,
    /// Generator threads.
    pub threads: usize,
    /// Key prefix.
    pub key_prefix: String,
    /// Amber executable (a `redis-server` path makes it a stand-in).
    pub amber_bin: PathBuf,
    /// redis-server executable.
    pub redis_bin: PathBuf,
    /// Directory of the pmem stand-in arena (tmpfs, or a real DAX mount).
    pub pmem_dir: PathBuf,
    /// Directory of the on-disk arena (a real disk, not tmpfs).
    pub disk_dir: PathBuf,
    /// Directory for the swap file (a real disk).
    pub swap_dir: PathBuf,
    /// Output directory.
    pub out: PathBuf,
    /// Longest any one phase may take.
    pub phase_timeout: Duration,
    /// Longest a batch may wait for its replies.
    pub request_timeout: Duration,
    /// Draw progress bars.
    pub progress: bool,
    /// Random seed.
    pub seed: u64,
    /// The preset used, for the report (`quick`, `full`, `custom`).
    pub preset: String,
}

impl Params {
    /// Number of keys at data-set/budget `ratio`.
    pub fn keys_at(&self, ratio: f64) -> u64 {
        let data = ratio * self.budget as f64;
        ((data / self.value_size.max(1) as f64).ceil() as u64).max(1)
    }

    /// Arena size for a point with `keys` keys: room for every record twice
    /// (overwrites leave dead records until compaction) plus headroom.
    pub fn arena_size(&self, keys: u64) -> u64 {
        let per = self.value_size as u64 + self.key_prefix.len() as u64 + 12 + 64;
        let want = 2 * keys * per + (64 << 20);
        want.div_ceil(1 << 20) << 20
    }
}

/// Parses a memtier-style `SET:GET` ratio (`1:10`) into the fraction of SETs.
pub fn parse_set_get_ratio(s: &str) -> Result<f64, String> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| format!("ratio {s:?} must be SET:GET, e.g. 1:10"))?;
    let sets: f64 = a.trim().parse().map_err(|_| format!("bad ratio {s:?}"))?;
    let gets: f64 = b.trim().parse().map_err(|_| format!("bad ratio {s:?}"))?;
    if sets < 0.0 || gets < 0.0 || sets + gets <= 0.0 {
        return Err(format!("bad ratio {s:?}"));
    }
    Ok(sets / (sets + gets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_names() {
        assert!((parse_set_get_ratio("1:10").unwrap() - 1.0 / 11.0).abs() < 1e-9);
        assert_eq!(parse_set_get_ratio("1:0").unwrap(), 1.0);
        assert!(parse_set_get_ratio("0:0").is_err());
        assert!(parse_set_get_ratio("x").is_err());
        for c in ConfigKind::ALL {
            assert_eq!(ConfigKind::from_name(c.name()), Some(c));
        }
    }
}
