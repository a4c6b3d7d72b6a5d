//! Mode-collapse metrics for the 2D mixtures, with the definitions of VEEGAN (Srivastava et al.
//! 2017) and PacGAN (Lin et al. 2018): a sample is high-quality when it lies within 3 standard
//! deviations of its nearest mode; a mode is captured when it is the nearest mode of at least
//! one high-quality sample; and the KL divergence from uniform of the histogram of high-quality
//! samples over modes measures how unevenly the captured modes are covered (0 when every mode
//! gets the same share, log K when one mode gets everything).
//!
//! PacGAN's figures for 2,500 samples: a vanilla GAN captures 6.3/8 modes with 98.2%
//! high-quality samples on the ring, 17.3/25 and 94.8% on the grid; the best methods reach 7.9/8
//! and 24.8/25. Real samples of these mixtures are 98.9% high-quality (1 − e^{−9/2}).

use crate::data::Mixture2d;

/// Samples the papers score per evaluation.
pub const EVAL_SAMPLES: usize = 2500;
/// A sample within this many standard deviations of its nearest mode is high-quality.
pub const QUALITY_STDS: f32 = 3.0;

#[derive(Clone, Debug, PartialEq)]
pub struct ModeStats {
    /// Modes that are the nearest mode of at least one high-quality sample.
    pub modes_captured: usize,
    pub total_modes: usize,
    /// Share of samples within 3 std of their nearest mode, in [0, 1].
    pub high_quality_fraction: f64,
    /// KL(histogram of high-quality samples over modes ‖ uniform) in nats; NaN without any
    /// high-quality sample.
    pub kl_from_uniform: f64,
    /// High-quality samples nearest each mode, in `Mixture2d::means` order.
    pub counts: Vec<usize>,
    pub samples: usize,
}

impl ModeStats {
    /// Column names for a metrics log: `modes,hq_fraction,kl_uniform`.
    pub const CSV_HEADER: &'static str = "modes,hq_fraction,kl_uniform";

    /// The values of `CSV_HEADER`'s columns.
    pub fn csv_fields(&self) -> String {
        format!(
            "{},{:.4},{:.4}",
            self.modes_captured, self.high_quality_fraction, self.kl_from_uniform
        )
    }

    /// "modes 7/8 | high-quality 97.4% | KL(modes‖uniform) 0.031"
    pub fn summary(&self) -> String {
        format!(
            "modes {}/{} | high-quality {:.1}% | KL(modes‖uniform) {:.3}",
            self.modes_captured,
            self.total_modes,
            100.0 * self.high_quality_fraction,
            self.kl_from_uniform
        )
    }
}

/// Scores `points` (n × 2 row-major) against the modes of `mixture`. Non-finite points count as
/// samples that are not high-quality.
pub fn mode_stats(points: &[f32], mixture: Mixture2d) -> ModeStats {
    let means = mixture.means();
    let radius = QUALITY_STDS * mixture.std();
    let mut counts = vec![0usize; means.len()];
    let samples = points.len() / 2;
    let mut high_quality = 0usize;
    for p in points.chunks_exact(2) {
        let (mut best, mut best_d2) = (0, f32::INFINITY);
        for (i, m) in means.iter().enumerate() {
            let d2 = (p[0] - m[0]).powi(2) + (p[1] - m[1]).powi(2);
            if d2 < best_d2 {
                (best, best_d2) = (i, d2);
            }
        }
        if best_d2 <= radius * radius {
            counts[best] += 1;
            high_quality += 1;
        }
    }
    let k = means.len() as f64;
    let kl_from_uniform = if high_quality == 0 {
        f64::NAN
    } else {
        counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let q = c as f64 / high_quality as f64;
                q * (q * k).ln()
            })
            .sum()
    };
    ModeStats {
        modes_captured: counts.iter().filter(|&&c| c > 0).count(),
        total_modes: means.len(),
        high_quality_fraction: high_quality as f64 / samples.max(1) as f64,
        kl_from_uniform,
        counts,
        samples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `per_mode[i]` points at mode i, nudged by `offset` (in std units) along x.
    fn at_modes(mixture: Mixture2d, per_mode: &[usize], offset: f32) -> Vec<f32> {
        let s = mixture.std();
        let mut out = Vec::new();
        for (m, &c) in mixture.means().iter().zip(per_mode) {
            for _ in 0..c {
                out.extend([m[0] + offset * s, m[1]]);
            }
        }
        out
    }

    #[test]
    fn every_mode_evenly_is_perfect() {
        for mix in [Mixture2d::Ring8, Mixture2d::Grid25] {
            let k = mix.means().len();
            let s = mode_stats(&at_modes(mix, &vec![10; k], 0.5), mix);
            assert_eq!((s.modes_captured, s.total_modes), (k, k));
            assert_eq!(s.high_quality_fraction, 1.0);
            assert!(s.kl_from_uniform.abs() < 1e-12, "{}", s.kl_from_uniform);
            assert_eq!(s.samples, 10 * k);
        }
    }

    #[test]
    fn collapse_to_one_mode_is_log_k() {
        let mut per = vec![0; 8];
        per[3] = 100;
        let s = mode_stats(&at_modes(Mixture2d::Ring8, &per, 0.0), Mixture2d::Ring8);
        assert_eq!(s.modes_captured, 1);
        assert!((s.kl_from_uniform - 8f64.ln()).abs() < 1e-12);
        assert_eq!(s.counts[3], 100);
    }

    #[test]
    fn the_three_std_boundary_and_far_points() {
        let mix = Mixture2d::Grid25;
        let mut per = vec![0; 25];
        per[0] = 1;
        // Just inside 3 std is high-quality; just outside is not, and captures nothing.
        let inside = at_modes(mix, &per, 2.99);
        let outside = at_modes(mix, &per, 3.01);
        assert_eq!(mode_stats(&inside, mix).modes_captured, 1);
        let s = mode_stats(&outside, mix);
        assert_eq!((s.modes_captured, s.high_quality_fraction), (0, 0.0));
        assert!(s.kl_from_uniform.is_nan());
        // Halfway between two grid modes is far from both; NaN points are never high-quality.
        let s = mode_stats(&[1.0, 0.0, f32::NAN, 0.0, 0.0, 0.0], mix);
        assert_eq!(s.modes_captured, 1);
        assert!((s.high_quality_fraction - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn uneven_coverage_has_the_histogram_kl() {
        // Modes 0 and 1 of the ring with 3:1 of the high-quality samples, plus 4 misses.
        let mix = Mixture2d::Ring8;
        let mut pts = at_modes(mix, &[3, 1, 0, 0, 0, 0, 0, 0], 1.0);
        pts.extend([0.0; 8]);
        let s = mode_stats(&pts, mix);
        assert_eq!(s.modes_captured, 2);
        assert_eq!(s.high_quality_fraction, 0.5);
        let want = 0.75 * (0.75f64 * 8.0).ln() + 0.25 * (0.25f64 * 8.0).ln();
        assert!((s.kl_from_uniform - want).abs() < 1e-12);
        assert_eq!(s.csv_fields(), format!("2,0.5000,{want:.4}"));
    }

    #[test]
    fn real_samples_score_as_the_papers_expect() {
        for mix in [Mixture2d::Ring8, Mixture2d::Grid25] {
            let s = mode_stats(&mix.sample(EVAL_SAMPLES, 3), mix);
            assert_eq!(s.modes_captured, s.total_modes, "{mix:?}");
            // 1 − e^{−9/2} = 98.9% of a 2D Gaussian lies within 3 std.
            assert!(
                (s.high_quality_fraction - 0.989).abs() < 0.01,
                "{mix:?}: {}",
                s.high_quality_fraction
            );
            assert!(s.kl_from_uniform < 0.02, "{mix:?}: {}", s.kl_from_uniform);
        }
    }
}
