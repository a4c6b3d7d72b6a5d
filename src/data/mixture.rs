//! Classic 2-D Gaussian-mixture toy targets for GAN mode-coverage checks.

use std::f64::consts::TAU;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A 2-D mixture of equal-weight isotropic Gaussians.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mixture2d {
    /// 8 modes on the unit circle at angles 2πi/8, std 0.01.
    Ring8,
    /// 25 modes at {-4,-2,0,2,4}², std 0.05.
    Grid25,
}

impl Mixture2d {
    /// Parses a CLI name: `"ring8"` or `"grid25"` (case-insensitive).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "ring8" => Some(Self::Ring8),
            "grid25" => Some(Self::Grid25),
            _ => None,
        }
    }

    /// The CLI name accepted by [`Mixture2d::parse`].
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ring8 => "ring8",
            Self::Grid25 => "grid25",
        }
    }

    /// Mode centres as `[x, y]`.
    pub fn means(&self) -> Vec<[f32; 2]> {
        match self {
            Self::Ring8 => (0..8)
                .map(|i| {
                    let a = TAU * i as f64 / 8.0;
                    [a.cos() as f32, a.sin() as f32]
                })
                .collect(),
            Self::Grid25 => {
                let coords = [-4.0, -2.0, 0.0, 2.0, 4.0];
                coords
                    .iter()
                    .flat_map(|&x| coords.iter().map(move |&y| [x, y]))
                    .collect()
            }
        }
    }

    /// Per-axis standard deviation of every mode.
    pub fn std(&self) -> f32 {
        match self {
            Self::Ring8 => 0.01,
            Self::Grid25 => 0.05,
        }
    }

    /// Half-width of a square plot that shows all modes with margin.
    pub fn extent(&self) -> f32 {
        match self {
            Self::Ring8 => 1.5,
            Self::Grid25 => 6.0,
        }
    }

    /// `n` samples as an `n × 2` row-major `[x0, y0, x1, y1, ...]` buffer: a
    /// uniformly chosen mode plus Gaussian noise (Box–Muller). Deterministic for
    /// a given `seed` (StdRng), so runs and tests are reproducible.
    pub fn sample(&self, n: usize, seed: u64) -> Vec<f32> {
        let means = self.means();
        let std = f64::from(self.std());
        let mut rng = StdRng::seed_from_u64(seed);
        let mut out = Vec::with_capacity(n * 2);
        for _ in 0..n {
            let [mx, my] = means[rng.random_range(0..means.len())];
            let (zx, zy) = box_muller(&mut rng);
            out.push((f64::from(mx) + std * zx) as f32);
            out.push((f64::from(my) + std * zy) as f32);
        }
        out
    }
}

/// Two independent standard normals from two uniforms.
fn box_muller(rng: &mut impl Rng) -> (f64, f64) {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]: ln(u1) is finite
    let u2: f64 = rng.random();
    let r = (-2.0 * u1.ln()).sqrt();
    let (s, c) = (TAU * u2).sin_cos();
    (r * c, r * s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nearest(means: &[[f32; 2]], p: [f32; 2]) -> (usize, f32) {
        means
            .iter()
            .enumerate()
            .map(|(i, m)| (i, ((p[0] - m[0]).powi(2) + (p[1] - m[1]).powi(2)).sqrt()))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap()
    }

    #[test]
    fn samples_cluster_on_every_mode() {
        for mix in [Mixture2d::Ring8, Mixture2d::Grid25] {
            let means = mix.means();
            let n = 20_000;
            let s = mix.sample(n, 7);
            assert_eq!(s.len(), 2 * n);
            let mut counts = vec![0usize; means.len()];
            let mut close = 0;
            for p in s.chunks_exact(2) {
                let (i, d) = nearest(&means, [p[0], p[1]]);
                counts[i] += 1;
                close += usize::from(d <= 4.0 * mix.std());
            }
            assert!(
                close as f64 > 0.99 * n as f64,
                "{mix:?}: {close}/{n} within 4 std"
            );
            let expect = n / means.len();
            for (i, &c) in counts.iter().enumerate() {
                assert!(
                    c > expect / 2 && c < expect * 3 / 2,
                    "{mix:?} mode {i}: {c} samples"
                );
            }
            // Noise scale: mean squared offset per axis ≈ std².
            let msq: f64 = s
                .chunks_exact(2)
                .map(|p| f64::from(nearest(&means, [p[0], p[1]]).1).powi(2))
                .sum::<f64>()
                / (2 * n) as f64;
            let rel = msq.sqrt() / f64::from(mix.std());
            assert!(
                (0.95..1.05).contains(&rel),
                "{mix:?}: noise std ratio {rel}"
            );
        }
    }

    #[test]
    fn deterministic_per_seed() {
        let m = Mixture2d::Grid25;
        assert_eq!(m.sample(100, 42), m.sample(100, 42));
        assert_ne!(m.sample(100, 42), m.sample(100, 43));
        assert!(m.sample(0, 1).is_empty());
    }

    #[test]
    fn layout_and_parse() {
        let ring = Mixture2d::Ring8.means();
        assert_eq!(ring.len(), 8);
        assert!((ring[2][0]).abs() < 1e-6 && (ring[2][1] - 1.0).abs() < 1e-6);
        let grid = Mixture2d::Grid25.means();
        assert_eq!(grid.len(), 25);
        assert!(grid.contains(&[-4.0, 4.0]) && grid.contains(&[0.0, 0.0]));
        assert_eq!(Mixture2d::parse("ring8"), Some(Mixture2d::Ring8));
        assert_eq!(Mixture2d::parse("GRID25"), Some(Mixture2d::Grid25));
        assert_eq!(Mixture2d::parse("ring"), None);
        for m in [Mixture2d::Ring8, Mixture2d::Grid25] {
            assert_eq!(Mixture2d::parse(m.name()), Some(m));
            assert!(
                m.means()
                    .iter()
                    .all(|p| p[0].abs() < m.extent() && p[1].abs() < m.extent())
            );
        }
    }
}
