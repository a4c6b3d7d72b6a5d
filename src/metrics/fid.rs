//! Fréchet distance between Gaussians fitted to two feature sets (FID, Heusel et al. 2017):
//!
//! FID = ‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2 (Σ1^½ Σ2 Σ1^½)^½).
//!
//! The trace term is the trace of the geometric mean of Σ1 and Σ2. pytorch-fid takes scipy's
//! `sqrtm(Σ1 Σ2)` of a non-symmetric product and discards the imaginary parts roundoff leaves;
//! here both square roots are of symmetric positive semi-definite matrices, computed from
//! symmetric eigendecompositions with roundoff's small negative eigenvalues clamped to 0, so
//! singular covariances (fewer samples than features, dead features) need no regularising ε.

use super::dots::gram_columns_f64;
use super::{Features, check_pair};
use anyhow::{Result, bail};
use nalgebra::{DMatrix, SymmetricEigen};
use serde::{Deserialize, Serialize};

/// Mean and covariance of one feature set: compute the real data's once and reuse them (they
/// serialize with serde) against every batch of generated samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FidStats {
    /// Per-feature mean, `[d]`.
    pub mu: Vec<f64>,
    /// Unbiased covariance, row-major `[d, d]`.
    pub sigma: Vec<f64>,
    /// Samples the statistics were computed from.
    pub n: usize,
}

impl FidStats {
    /// Mean and unbiased covariance of `f` (at least 2 rows).
    pub fn from_features(f: Features) -> Result<Self> {
        let mu = mean(f);
        let sigma = covariance(f, &mu)?;
        Ok(Self {
            mu,
            sigma,
            n: f.n(),
        })
    }

    /// Features per sample.
    pub fn d(&self) -> usize {
        self.mu.len()
    }

    /// Errors on statistics that cannot have come from [`FidStats::from_features`] (a stale or
    /// corrupt cache).
    fn check(&self) -> Result<()> {
        let d = self.d();
        if d == 0 || self.sigma.len() != d * d {
            bail!(
                "FID statistics hold a mean of {d} and a covariance of {} values, not [{d}, {d}]: \
                 recompute them from features",
                self.sigma.len()
            );
        }
        if self.mu.iter().chain(&self.sigma).any(|v| !v.is_finite()) {
            bail!("FID statistics hold NaN/inf: recompute them from features");
        }
        Ok(())
    }
}

/// Per-feature mean of the rows of `f`, `[d]`.
pub fn mean(f: Features) -> Vec<f64> {
    let d = f.d();
    let mut sum = vec![0.0f64; d];
    for row in f.data().chunks_exact(d) {
        for (s, &v) in sum.iter_mut().zip(row) {
            *s += v as f64;
        }
    }
    let n = f.n().max(1) as f64;
    sum.iter().map(|s| s / n).collect()
}

/// Unbiased covariance of the rows of `f` around `mu` (dividing by n − 1, as NumPy's `cov` and
/// pytorch-fid), row-major `[d, d]`. Needs at least 2 rows.
pub fn covariance(f: Features, mu: &[f64]) -> Result<Vec<f64>> {
    let (n, d) = (f.n(), f.d());
    if n < 2 {
        bail!("a covariance needs at least 2 samples, got {n}: generate more samples");
    }
    if mu.len() != d {
        bail!(
            "mean has {} values for {d} features: pass the mean of these features",
            mu.len()
        );
    }
    let centred: Vec<f64> = f
        .data()
        .chunks_exact(d)
        .flat_map(|row| row.iter().zip(mu).map(|(&v, m)| v as f64 - m))
        .collect();
    let mut sigma = gram_columns_f64(&centred, d);
    let scale = 1.0 / (n - 1) as f64;
    sigma.iter_mut().for_each(|v| *v *= scale);
    Ok(sigma)
}

/// Symmetric `[d, d]` matrix from row-major values, averaged with its transpose so roundoff
/// asymmetry never reaches the eigensolver.
fn symmetric(a: &[f64], d: usize) -> DMatrix<f64> {
    let m = DMatrix::from_row_slice(d, d, a);
    (&m + m.transpose()) * 0.5
}

fn sqrtm_psd_matrix(a: DMatrix<f64>) -> DMatrix<f64> {
    let eig = SymmetricEigen::new(a);
    let v = &eig.eigenvectors;
    let root = eig.eigenvalues.map(|l| l.max(0.0).sqrt());
    // V · diag(√λ) · Vᵀ
    let mut vr = v.clone();
    for (mut col, r) in vr.column_iter_mut().zip(root.iter()) {
        col *= *r;
    }
    &vr * v.transpose()
}

/// The symmetric positive semi-definite square root of a symmetric PSD matrix `a` (row-major
/// `[d, d]`): V·diag(√max(λ, 0))·Vᵀ from its eigendecomposition. Negative eigenvalues (roundoff
/// on a singular matrix) are clamped to 0.
pub fn sqrtm_psd(a: &[f64], d: usize) -> Vec<f64> {
    assert_eq!(a.len(), d * d, "sqrtm_psd needs a [d, d] matrix");
    let s = sqrtm_psd_matrix(symmetric(a, d));
    // Symmetric, so column-major storage is also row-major.
    s.as_slice().to_vec()
}

/// Fréchet distance between N(a.mu, a.sigma) and N(b.mu, b.sigma); ≥ 0 (roundoff below 0 is
/// clamped) and symmetric up to roundoff.
pub fn frechet_distance(a: &FidStats, b: &FidStats) -> Result<f64> {
    a.check()?;
    b.check()?;
    let d = a.d();
    if b.d() != d {
        bail!(
            "FID needs statistics of one width, got {d} and {}: compute both with the same \
             feature network",
            b.d()
        );
    }
    let mean_term: f64 = a.mu.iter().zip(&b.mu).map(|(x, y)| (x - y).powi(2)).sum();
    let s1 = symmetric(&a.sigma, d);
    let s2 = symmetric(&b.sigma, d);
    // As pytorch-fid does when the square root is not finite: retry with a small multiple of
    // the identity added to both covariances (nalgebra's eigensolver can return NaN on the
    // near-singular covariance of features with dead units).
    for offset in [0.0, 1e-6, 1e-4] {
        let eye = DMatrix::<f64>::identity(d, d) * offset;
        let trace_root = trace_sqrt_product(&s1 + &eye, &s2 + &eye);
        if trace_root.is_finite() {
            let fid = mean_term + s1.trace() + s2.trace() - 2.0 * trace_root;
            // Rounding can take a distance of ~0 just below 0.
            return Ok(fid.max(0.0));
        }
    }
    Ok(f64::NAN)
}

/// tr((Σ1^½ Σ2 Σ1^½)^½) = Σ √λ: Σ1^½ Σ2 Σ1^½ is symmetric PSD with the eigenvalues of Σ1Σ2, and
/// only its eigenvalues are needed. NaN when the eigensolver fails.
fn trace_sqrt_product(s1: DMatrix<f64>, s2: DMatrix<f64>) -> f64 {
    let root1 = sqrtm_psd_matrix(s1);
    let m = &root1 * &s2 * &root1;
    let m = (&m + m.transpose()) * 0.5;
    m.symmetric_eigenvalues()
        .iter()
        .map(|&l| if l.is_nan() { l } else { l.max(0.0).sqrt() })
        .sum()
}

/// FID between two feature sets (at least 2 samples each, same width).
pub fn fid(a: Features, b: Features) -> Result<f64> {
    check_pair("FID", a, b, 2)?;
    frechet_distance(&FidStats::from_features(a)?, &FidStats::from_features(b)?)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{gaussian_samples, random_spd};
    use super::*;

    fn mat(a: &[f64], d: usize) -> DMatrix<f64> {
        DMatrix::from_row_slice(d, d, a)
    }

    fn max_abs_diff(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
        (a - b).abs().max()
    }

    fn stats(mu: &[f64], sigma: &[f64]) -> FidStats {
        FidStats {
            mu: mu.to_vec(),
            sigma: sigma.to_vec(),
            n: 0,
        }
    }

    #[test]
    fn sqrtm_squares_back_to_spd_matrix() {
        let d = 12;
        let a = random_spd(d, 1, 0.1);
        let s = mat(&sqrtm_psd(&a, d), d);
        let a = mat(&a, d);
        assert!(max_abs_diff(&(&s * &s), &a) < 1e-10 * a.abs().max());
        assert!(max_abs_diff(&s, &s.transpose()) < 1e-12);
        let min_eig = s.symmetric_eigenvalues().min();
        assert!(
            min_eig > 0.0,
            "the root of an SPD matrix is SPD, min eigenvalue {min_eig}"
        );
    }

    #[test]
    fn sqrtm_of_singular_psd_matrix_is_psd_and_squares_back() {
        // A = B·Bᵀ with B 8×3: rank 3, five zero eigenvalues that roundoff makes ±1e-16.
        let (d, r) = (8, 3);
        let b: Vec<f64> = (0..d * r)
            .map(|i| ((i * 7 % 11) as f64 - 5.0) / 3.0)
            .collect();
        let b = DMatrix::from_row_slice(d, r, &b);
        let a = &b * b.transpose();
        let s = mat(&sqrtm_psd(a.as_slice(), d), d);
        assert!(s.iter().all(|v| v.is_finite()));
        assert!(max_abs_diff(&(&s * &s), &a) < 1e-9 * a.abs().max());
        let eig = s.symmetric_eigenvalues();
        assert!(eig.min() > -1e-7, "min eigenvalue {}", eig.min());
        let rank = eig.iter().filter(|&&l| l > 1e-6).count();
        assert_eq!(rank, r, "the root keeps the rank, eigenvalues {eig}");
    }

    #[test]
    fn sqrtm_matches_2x2_closed_form() {
        // For 2×2 SPD M: √M = (M + √det(M)·I) / √(tr M + 2√det(M)).
        let m = [3.0, 1.2, 1.2, 0.9];
        let det: f64 = m[0] * m[3] - m[1] * m[2];
        let t = (m[0] + m[3] + 2.0 * det.sqrt()).sqrt();
        let want = [
            (m[0] + det.sqrt()) / t,
            m[1] / t,
            m[2] / t,
            (m[3] + det.sqrt()) / t,
        ];
        let got = sqrtm_psd(&m, 2);
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-13, "{got:?} vs {want:?}");
        }
    }

    /// FID of two 2-D Gaussians in closed form: the eigenvalues of Σ1^½Σ2Σ1^½ are those of
    /// Σ1Σ2, and for a 2×2 PSD M, tr √M = √(tr M + 2√det M).
    fn frechet_2x2(mu1: [f64; 2], s1: [f64; 4], mu2: [f64; 2], s2: [f64; 4]) -> f64 {
        let det = |s: [f64; 4]| s[0] * s[3] - s[1] * s[2];
        let tr_prod = s1[0] * s2[0] + s1[1] * s2[2] + s1[2] * s2[1] + s1[3] * s2[3];
        let tr_root = (tr_prod + 2.0 * (det(s1) * det(s2)).sqrt()).sqrt();
        (mu1[0] - mu2[0]).powi(2) + (mu1[1] - mu2[1]).powi(2) + s1[0] + s1[3] + s2[0] + s2[3]
            - 2.0 * tr_root
    }

    const MU1: [f64; 2] = [0.5, -1.0];
    const S1: [f64; 4] = [2.0, 0.8, 0.8, 1.0];
    const MU2: [f64; 2] = [-0.3, 0.2];
    const S2: [f64; 4] = [0.6, -0.4, -0.4, 1.5];

    #[test]
    fn frechet_matches_closed_form_for_non_commuting_covariances() {
        let (a, b) = (mat(&S1, 2), mat(&S2, 2));
        assert!(
            max_abs_diff(&(&a * &b), &(&b * &a)) > 0.1,
            "covariances must not commute"
        );
        let got = frechet_distance(&stats(&MU1, &S1), &stats(&MU2, &S2)).unwrap();
        let want = frechet_2x2(MU1, S1, MU2, S2);
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        // A zero-mean-shift, non-trivial case: the trace term alone.
        let got = frechet_distance(&stats(&MU1, &S1), &stats(&MU1, &S2)).unwrap();
        let want = frechet_2x2(MU1, S1, MU1, S2);
        assert!(want > 0.1 && (got - want).abs() < 1e-12, "{got} vs {want}");
    }

    #[test]
    fn frechet_matches_closed_form_for_diagonal_covariances() {
        // Σ diagonal: FID = ‖Δμ‖² + Σ (√a_i − √b_i)², one of them zero.
        let va: [f64; 6] = [1.0, 4.0, 0.25, 2.0, 0.0, 9.0];
        let vb: [f64; 6] = [2.0, 1.0, 0.25, 0.5, 3.0, 16.0];
        let d = va.len();
        let diag = |v: &[f64]| {
            let mut s = vec![0.0; d * d];
            (0..d).for_each(|i| s[i * d + i] = v[i]);
            s
        };
        let mu_a: Vec<f64> = (0..d).map(|i| i as f64 * 0.1).collect();
        let mu_b: Vec<f64> = (0..d).map(|i| 1.0 - i as f64 * 0.2).collect();
        let want: f64 = (0..d)
            .map(|i| (mu_a[i] - mu_b[i]).powi(2) + (va[i].sqrt() - vb[i].sqrt()).powi(2))
            .sum();
        let got = frechet_distance(&stats(&mu_a, &diag(&va)), &stats(&mu_b, &diag(&vb))).unwrap();
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }

    #[test]
    fn frechet_matches_closed_form_for_scaled_dense_covariance() {
        // Σ2 = c²Σ1 with Σ1 dense: FID = ‖Δμ‖² + (1 − c)² tr Σ1, in 16 dimensions.
        let d = 16;
        let s1 = random_spd(d, 2, 0.05);
        let c = 1.7;
        let s2: Vec<f64> = s1.iter().map(|v| v * c * c).collect();
        let mu1 = vec![0.0; d];
        let mu2: Vec<f64> = (0..d).map(|i| (i as f64).sin()).collect();
        let trace: f64 = (0..d).map(|i| s1[i * d + i]).sum();
        let want = mu2.iter().map(|m| m * m).sum::<f64>() + (1.0 - c) * (1.0 - c) * trace;
        let got = frechet_distance(&stats(&mu1, &s1), &stats(&mu2, &s2)).unwrap();
        assert!((got - want).abs() < 1e-10 * want, "{got} vs {want}");
    }

    #[test]
    fn fid_of_gaussian_samples_approaches_closed_form() {
        let n = 200_000;
        let x = gaussian_samples(n, &MU1, &S1, 11);
        let y = gaussian_samples(n, &MU2, &S2, 12);
        let got = fid(Features::new(&x, 2).unwrap(), Features::new(&y, 2).unwrap()).unwrap();
        let want = frechet_2x2(MU1, S1, MU2, S2);
        // Sampling error: Δμ is off by ~0.004 along itself, which moves ‖Δμ‖² ≈ 2.1 by ~0.01;
        // the covariances' error moves the trace term by less.
        assert!((got - want).abs() < 0.05, "{got} vs {want}");
    }

    #[test]
    fn fid_of_diagonal_gaussian_samples_approaches_closed_form() {
        let d = 8;
        let va: Vec<f64> = (0..d).map(|i| 0.5 + i as f64 * 0.25).collect();
        let vb: Vec<f64> = (0..d).map(|i| 2.0 - i as f64 * 0.2).collect();
        let diag = |v: &[f64]| {
            let mut s = vec![0.0; d * d];
            (0..d).for_each(|i| s[i * d + i] = v[i]);
            s
        };
        let mu_b = vec![0.3; d];
        let n = 200_000;
        let x = gaussian_samples(n, &vec![0.0; d], &diag(&va), 21);
        let y = gaussian_samples(n, &mu_b, &diag(&vb), 22);
        let got = fid(Features::new(&x, d).unwrap(), Features::new(&y, d).unwrap()).unwrap();
        let want: f64 = (0..d)
            .map(|i| 0.09 + (va[i].sqrt() - vb[i].sqrt()).powi(2))
            .sum();
        // Plus the estimator's positive bias, O(d/n) per term.
        assert!((got - want).abs() < 0.05, "{got} vs {want}");
    }

    #[test]
    fn fid_of_a_set_with_itself_is_zero_and_fid_is_symmetric() {
        let d = 16;
        let x = gaussian_samples(500, &vec![0.2; d], &random_spd(d, 3, 0.1), 31);
        let y = gaussian_samples(700, &vec![-0.1; d], &random_spd(d, 4, 0.1), 32);
        let (x, y) = (Features::new(&x, d).unwrap(), Features::new(&y, d).unwrap());
        let sigma = FidStats::from_features(x).unwrap().sigma;
        let scale: f64 = (0..d).map(|i| sigma[i * d + i]).sum();
        let same = fid(x, x).unwrap();
        assert!((0.0..1e-9 * scale).contains(&same), "FID(x, x) = {same}");
        let (xy, yx) = (fid(x, y).unwrap(), fid(y, x).unwrap());
        assert!(xy > 1.0, "different sets must be apart, FID {xy}");
        assert!((xy - yx).abs() < 1e-9 * xy, "{xy} vs {yx}");
    }

    #[test]
    fn fid_handles_singular_covariances() {
        // 10 samples of 32 features: both covariances have rank ≤ 9.
        let d = 32;
        let x = gaussian_samples(10, &vec![0.0; d], &random_spd(d, 5, 0.1), 41);
        let y = gaussian_samples(10, &vec![0.5; d], &random_spd(d, 6, 0.1), 42);
        let (x, y) = (Features::new(&x, d).unwrap(), Features::new(&y, d).unwrap());
        let xy = fid(x, y).unwrap();
        assert!(xy.is_finite() && xy > 0.0, "FID {xy}");
        let same = fid(x, x).unwrap();
        assert!(same < 1e-8 * xy, "FID(x, x) = {same}");
    }

    #[test]
    fn covariance_is_unbiased() {
        // Rows (1, 2), (3, 6), (5, 4): mean (3, 4), deviations (−2, −2), (0, 2), (2, 0).
        let x = [1.0, 2.0, 3.0, 6.0, 5.0, 4.0];
        let f = Features::new(&x, 2).unwrap();
        let mu = mean(f);
        assert_eq!(mu, vec![3.0, 4.0]);
        let sigma = covariance(f, &mu).unwrap();
        // Σ = [[8, 4], [4, 8]] / (3 − 1)
        assert_eq!(sigma, vec![4.0, 2.0, 2.0, 4.0]);
    }

    #[test]
    fn bad_input_is_an_error() {
        let x = [0.0f32; 12];
        let a = Features::new(&x, 3).unwrap();
        let b = Features::new(&x, 4).unwrap();
        let err = fid(a, b).unwrap_err().to_string();
        assert!(err.contains("one width"), "{err}");
        let one = Features::new(&x[..3], 3).unwrap();
        let err = fid(one, a).unwrap_err().to_string();
        assert!(err.contains("at least 2 samples"), "{err}");
        let broken = FidStats {
            mu: vec![0.0; 3],
            sigma: vec![0.0; 8],
            n: 2,
        };
        let good = FidStats::from_features(a).unwrap();
        assert!(frechet_distance(&broken, &good).is_err());
    }
}
