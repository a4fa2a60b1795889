//! How the generator picks keys: uniform, Zipfian (Gray et al., as in YCSB)
//! or Gaussian over `0..n`.

use rand::rngs::SmallRng;
use rand::Rng;

/// A key distribution over `0..n`, shared read-only by all connections.
#[derive(Debug, Clone)]
pub enum KeyDist {
    /// Every key equally likely.
    Uniform {
        /// Number of keys.
        n: u64,
    },
    /// Zipfian: rank r has probability ∝ 1/(r+1)^θ.
    Zipf(Zipf),
    /// Normal around the middle of the key range, clipped to it.
    Gaussian {
        /// Number of keys.
        n: u64,
        /// Standard deviation as a fraction of `n`.
        sigma: f64,
    },
}

/// The parsed form of `--dist` (`uniform`, `zipf`, `zipf:0.9`, `gaussian`, `gaussian:0.1`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DistSpec {
    /// Uniform.
    Uniform,
    /// Zipfian with this θ (0 < θ < 1).
    Zipf(f64),
    /// Gaussian with this σ as a fraction of the key range.
    Gaussian(f64),
}

impl DistSpec {
    /// Default θ, the YCSB constant.
    pub const DEFAULT_THETA: f64 = 0.99;
    /// Default σ as a fraction of the key range.
    pub const DEFAULT_SIGMA: f64 = 0.125;

    /// Short name for tables and file names (`uniform`, `zipf0.99`, `gauss0.125`).
    pub fn label(&self) -> String {
        match self {
            DistSpec::Uniform => "uniform".into(),
            DistSpec::Zipf(t) => format!("zipf{t}"),
            DistSpec::Gaussian(s) => format!("gauss{s}"),
        }
    }

    /// Builds the sampler for `n` keys.
    pub fn build(&self, n: u64) -> Result<KeyDist, String> {
        let n = n.max(1);
        Ok(match *self {
            DistSpec::Uniform => KeyDist::Uniform { n },
            DistSpec::Zipf(theta) => KeyDist::Zipf(Zipf::new(n, theta)?),
            DistSpec::Gaussian(sigma) => {
                if !(sigma > 0.0 && sigma.is_finite()) {
                    return Err(format!("gaussian sigma must be > 0, got {sigma}"));
                }
                KeyDist::Gaussian { n, sigma }
            }
        })
    }
}

impl std::str::FromStr for DistSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, param) = match s.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let num = |d: f64| -> Result<f64, String> {
            param.map_or(Ok(d), |p| {
                p.parse::<f64>()
                    .map_err(|_| format!("bad parameter {p:?} in {s:?}"))
            })
        };
        match name {
            "uniform" => Ok(DistSpec::Uniform),
            "zipf" | "zipfian" => Ok(DistSpec::Zipf(num(Self::DEFAULT_THETA)?)),
            "gauss" | "gaussian" | "normal" => Ok(DistSpec::Gaussian(num(Self::DEFAULT_SIGMA)?)),
            _ => Err(format!(
                "unknown distribution {s:?}: use uniform, zipf[:theta] or gaussian[:sigma]"
            )),
        }
    }
}

/// Zipfian sampler after Gray et al., "Quickly Generating Billion-Record
/// Synthetic Databases" (SIGMOD '94), the method YCSB uses: O(n) set-up to
/// compute ζ(n, θ), then O(1) per sample. Ranks are scrambled with FNV-1a
/// (YCSB's "scrambled Zipfian") so the hot keys are spread over the key range
/// instead of being the first keys loaded.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
    half_pow_theta: f64,
}

impl Zipf {
    /// Sets up a sampler over `n` items with skew `theta` (0 < θ < 1).
    pub fn new(n: u64, theta: f64) -> Result<Self, String> {
        if !(theta > 0.0 && theta < 1.0) {
            return Err(format!("zipf theta must be in (0, 1), got {theta}"));
        }
        let n = n.max(1);
        let zetan = zeta(n, theta);
        let zeta2 = zeta(2, theta);
        let eta = if n <= 2 {
            0.0
        } else {
            (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan)
        };
        Ok(Zipf {
            n,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zetan,
            eta,
            half_pow_theta: 0.5f64.powf(theta),
        })
    }

    /// θ of this sampler.
    pub fn theta(&self) -> f64 {
        self.theta
    }

    /// A rank in `0..n`, 0 the most popular (not scrambled).
    pub fn rank(&self, rng: &mut SmallRng) -> u64 {
        let u: f64 = rng.gen();
        let uz = u * self.zetan;
        if uz < 1.0 || self.n == 1 {
            return 0;
        }
        if uz < 1.0 + self.half_pow_theta || self.n == 2 {
            return 1.min(self.n - 1);
        }
        let r = (self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        r.min(self.n - 1)
    }

    /// Probability of rank `r` (for tests and reports).
    pub fn probability(&self, r: u64) -> f64 {
        1.0 / ((r + 1) as f64).powf(self.theta) / self.zetan
    }
}

fn zeta(n: u64, theta: f64) -> f64 {
    (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum()
}

/// FNV-1a over the 8 bytes of `v`.
pub fn fnv1a64(v: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in v.to_le_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl KeyDist {
    /// Number of keys the distribution covers.
    pub fn n(&self) -> u64 {
        match self {
            KeyDist::Uniform { n } | KeyDist::Gaussian { n, .. } => *n,
            KeyDist::Zipf(z) => z.n,
        }
    }

    /// Draws one key index in `0..n`.
    pub fn sample(&self, rng: &mut SmallRng) -> u64 {
        match self {
            KeyDist::Uniform { n } => rng.gen_range(0..*n),
            KeyDist::Zipf(z) => fnv1a64(z.rank(rng)) % z.n,
            KeyDist::Gaussian { n, sigma } => {
                let mean = *n as f64 / 2.0;
                let sd = sigma * *n as f64;
                // Box-Muller; redraw (a bounded number of times) outside the range.
                for _ in 0..8 {
                    let u1: f64 = rng.gen::<f64>().max(f64::MIN_POSITIVE);
                    let u2: f64 = rng.gen();
                    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                    let x = mean + z * sd;
                    if x >= 0.0 && x < *n as f64 {
                        return x as u64;
                    }
                }
                (mean as u64).min(n - 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn zipf_matches_its_probabilities() {
        let z = Zipf::new(1000, 0.99).unwrap();
        let mut rng = SmallRng::seed_from_u64(7);
        let mut counts = vec![0u32; 1000];
        let draws = 200_000;
        for _ in 0..draws {
            counts[z.rank(&mut rng) as usize] += 1;
        }
        // Ranks 0 and 1 are exact by construction; the rest follow the
        // method's continuous approximation, so check the mass of the head.
        for r in [0u64, 1] {
            let want = z.probability(r);
            let got = counts[r as usize] as f64 / draws as f64;
            assert!(
                (got - want).abs() < want * 0.05,
                "rank {r}: {got} vs {want}"
            );
        }
        let head_want: f64 = (0..100).map(|r| z.probability(r)).sum();
        let head_got = counts[..100].iter().sum::<u32>() as f64 / draws as f64;
        assert!(
            (head_got - head_want).abs() < head_want * 0.1,
            "{head_got} vs {head_want}"
        );
        assert!(Zipf::new(10, 1.0).is_err());
    }

    #[test]
    fn samples_stay_in_range() {
        let mut rng = SmallRng::seed_from_u64(1);
        for spec in ["uniform", "zipf", "zipf:0.5", "gaussian", "gaussian:2"] {
            let d: DistSpec = spec.parse().unwrap();
            let k = d.build(100).unwrap();
            for _ in 0..10_000 {
                assert!(k.sample(&mut rng) < 100);
            }
        }
        let one = DistSpec::Zipf(0.99).build(1).unwrap();
        assert_eq!(one.sample(&mut rng), 0);
        assert!("pareto".parse::<DistSpec>().is_err());
    }

    #[test]
    fn gaussian_is_centred() {
        let mut rng = SmallRng::seed_from_u64(3);
        let k = DistSpec::Gaussian(0.1).build(10_000).unwrap();
        let mean: f64 = (0..20_000).map(|_| k.sample(&mut rng) as f64).sum::<f64>() / 20_000.0;
        assert!((mean - 5000.0).abs() < 100.0, "{mean}");
    }
}
