//! Small sampling helpers for the generator: weighted picks, log-normal and exponential draws,
//! Zipf weights and percentiles. Hand-written so the dataset depends only on the seeded
//! ChaCha stream and these formulas, not on a distribution crate's version.

use rand::Rng;

/// Picks indices with probability proportional to fixed weights (binary search on the CDF).
pub struct WeightedIndex {
    cumulative: Vec<f64>,
}

impl WeightedIndex {
    pub fn new(weights: &[f64]) -> anyhow::Result<Self> {
        let mut cumulative = Vec::with_capacity(weights.len());
        let mut total = 0.0;
        for &w in weights {
            anyhow::ensure!(w.is_finite() && w >= 0.0, "invalid weight {w}");
            total += w;
            cumulative.push(total);
        }
        anyhow::ensure!(total > 0.0, "weights sum to zero");
        Ok(WeightedIndex { cumulative })
    }

    pub fn sample<R: Rng>(&self, rng: &mut R) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let x = rng.gen::<f64>() * total;
        let i = self.cumulative.partition_point(|&c| c <= x);
        i.min(self.cumulative.len().saturating_sub(1))
    }
}

/// A standard normal draw (Box–Muller).
pub fn normal<R: Rng>(rng: &mut R) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]
    let u2: f64 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A log-normal draw with the given mean and shape `sigma`.
pub fn lognormal_with_mean<R: Rng>(rng: &mut R, mean: f64, sigma: f64) -> f64 {
    let mu = mean.ln() - sigma * sigma / 2.0;
    (mu + sigma * normal(rng)).exp()
}

/// An exponential draw with the given mean.
pub fn exponential<R: Rng>(rng: &mut R, mean: f64) -> f64 {
    let u: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]
    -mean * u.ln()
}

/// `1 / (rank + 1)^s` for each entry of `ranks` (rank 0 is the most popular).
pub fn zipf_weights(ranks: &[usize], s: f64) -> Vec<f64> {
    ranks
        .iter()
        .map(|&r| 1.0 / ((r + 1) as f64).powf(s))
        .collect()
}

/// Nearest-rank percentiles of `values` (sorted in place), as a JSON object.
pub fn percentiles(values: &mut [u64]) -> serde_json::Value {
    values.sort_unstable();
    let at = |q: f64| -> u64 {
        if values.is_empty() {
            return 0;
        }
        let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
        values[rank - 1]
    };
    let sum: u64 = values.iter().sum();
    let mean = if values.is_empty() {
        0.0
    } else {
        sum as f64 / values.len() as f64
    };
    serde_json::json!({
        "min": values.first().copied().unwrap_or(0),
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "p99.9": at(0.999),
        "max": values.last().copied().unwrap_or(0),
        "mean": (mean * 100.0).round() / 100.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;

    #[test]
    fn weighted_index_follows_the_weights() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let index = WeightedIndex::new(&[1.0, 0.0, 3.0]).expect("valid weights");
        let mut counts = [0u32; 3];
        for _ in 0..40_000 {
            counts[index.sample(&mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        let ratio = f64::from(counts[2]) / f64::from(counts[0]);
        assert!((2.7..3.3).contains(&ratio), "{counts:?}");
        assert!(WeightedIndex::new(&[0.0]).is_err());
    }

    #[test]
    fn lognormal_mean_is_close() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let n = 200_000;
        let sum: f64 = (0..n)
            .map(|_| lognormal_with_mean(&mut rng, 30.0, 1.0))
            .sum();
        let mean = sum / f64::from(n);
        assert!((28.5..31.5).contains(&mean), "{mean}");
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut values: Vec<u64> = (1..=100).rev().collect();
        let p = percentiles(&mut values);
        assert_eq!(p["p50"], 50);
        assert_eq!(p["p99"], 99);
        assert_eq!(p["max"], 100);
    }
}
