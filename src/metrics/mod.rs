//! Sample-quality metrics on feature vectors: FID (Heusel et al. 2017), KID (Bińkowski et al.
//! 2018) and k-NN precision/recall (Kynkäänniemi et al. 2019).
//!
//! Every metric takes two feature matrices, row-major f32 `[n, d]` (one row per image), and does
//! its sums in f64. The features come from duel's own small MNIST feature network, not from
//! Inception-v3, so **these numbers are not comparable with the Inception-based FID/KID/precision/
//! recall reported in papers**: compare them only with each other and with the real-vs-real
//! baseline computed on the same network.
//!
//! - [`fid()`]: Fréchet distance between Gaussians fitted to the two sets; [`FidStats`] holds one
//!   set's mean and covariance so the real data's can be computed once and reused.
//! - [`kid()`]: unbiased MMD² with the cubic polynomial kernel, averaged over random subsets as
//!   torch-fidelity does, seeded for reproducibility.
//! - [`precision_recall()`]: fraction of generated samples inside the real k-NN manifold, and the
//!   converse.

mod dots;
pub mod eval;
pub mod fid;
pub mod kid;
pub mod modes;
pub mod parzen;
pub mod precision_recall;
pub mod stats_file;

pub use fid::{FidStats, covariance, fid, frechet_distance, mean, sqrtm_psd};
pub use kid::{Kid, KidOptions, kid, mmd2_unbiased, poly_kernel};
pub use precision_recall::{DEFAULT_K, Manifold, PrecisionRecall, knn_radii, precision_recall};

use anyhow::{Result, bail};

/// A borrowed feature matrix: `n` rows of `d` features, row-major (`data[i * d + j]`).
#[derive(Clone, Copy, Debug)]
pub struct Features<'a> {
    data: &'a [f32],
    n: usize,
    d: usize,
}

impl<'a> Features<'a> {
    /// Views `data` as rows of `d` features; rejects ragged data and non-finite values (a
    /// generator or feature network that produced NaN would otherwise yield a NaN score).
    pub fn new(data: &'a [f32], d: usize) -> Result<Self> {
        if d == 0 {
            bail!("feature width is 0: pass the number of features per sample");
        }
        if !data.len().is_multiple_of(d) {
            bail!(
                "{} values do not split into rows of {d} features: pass a [n, {d}] matrix",
                data.len()
            );
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            bail!(
                "feature row {} holds a non-finite value ({}): the samples or the feature \
                 network produced NaN/inf",
                i / d,
                data[i]
            );
        }
        Ok(Self {
            data,
            n: data.len() / d,
            d,
        })
    }

    /// Number of samples (rows).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Features per sample (columns).
    pub fn d(&self) -> usize {
        self.d
    }

    /// The row-major values, `[n, d]`.
    pub fn data(&self) -> &'a [f32] {
        self.data
    }

    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.d..(i + 1) * self.d]
    }
}

/// Errors unless both sets have the same width and at least `min_rows` rows each.
fn check_pair(what: &str, a: Features, b: Features, min_rows: usize) -> Result<()> {
    if a.d != b.d {
        bail!(
            "{what} needs features of one width, got {} and {}: extract both sets with the same \
             feature network",
            a.d,
            b.d
        );
    }
    for (name, f) in [("first", a), ("second", b)] {
        if f.n < min_rows {
            bail!(
                "{what} needs at least {min_rows} samples per set, the {name} set has {}: \
                 generate more samples",
                f.n
            );
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod test_support {
    use crate::rng::{self, RngKey};
    use nalgebra::DMatrix;

    /// `n` draws of N(mu, sigma) (sigma row-major `[d, d]`, positive definite) as row-major f32
    /// `[n, d]`: x = μ + L·z with L the Cholesky factor and z from Philox normals.
    pub fn gaussian_samples(n: usize, mu: &[f64], sigma: &[f64], seed: u64) -> Vec<f32> {
        let d = mu.len();
        let l = DMatrix::from_row_slice(d, d, sigma)
            .cholesky()
            .expect("covariance must be positive definite")
            .l();
        let key = RngKey::new(seed, rng::stream::TEST, 0);
        let mut out = Vec::with_capacity(n * d);
        for i in 0..n {
            let z =
                nalgebra::DVector::from_fn(d, |j, _| rng::normal(key, (i * d + j) as u64) as f64);
            let x = &l * z;
            out.extend(x.iter().zip(mu).map(|(v, m)| (v + m) as f32));
        }
        out
    }

    /// A dense positive-definite `[d, d]` matrix: B·Bᵀ/d + eps·I with B's entries uniform in
    /// [−1, 1) from `seed`.
    pub fn random_spd(d: usize, seed: u64, eps: f64) -> Vec<f64> {
        let key = RngKey::new(seed, rng::stream::TEST, 1 << 40);
        let b = DMatrix::from_fn(d, d, |i, j| {
            rng::uniform(key, (i * d + j) as u64, -1.0, 1.0) as f64
        });
        let a = &b * b.transpose() / d as f64 + DMatrix::identity(d, d) * eps;
        // Symmetric: column-major is row-major.
        a.as_slice().to_vec()
    }
}
